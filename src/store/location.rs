//! Where a store lives: a SQLite file (a plain path or `sqlite:PATH`, the
//! embedded default) or a PostgreSQL database (`postgres://…`), which a
//! fleet of processes shares.
//!
//! One name for both, so that `[store] path`, `crawl --store` and the
//! `report`/`export` commands take either without a flag per backend.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    /// A libpq-style URL; it may carry a password, so `Display` hides it.
    Postgres(String),
}

/// A store name with a URL scheme stackcrawl does not speak.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "`{scheme}://` is not a store stackcrawl can use: give a SQLite file \
     (PATH or sqlite:PATH) or a PostgreSQL URL (postgres://…)"
)]
pub struct UnknownScheme {
    /// Only the scheme: the rest of the URL may carry a password.
    pub scheme: String,
}

impl StoreLocation {
    /// Reads a store name: `postgres://…` or `postgresql://…` is a
    /// PostgreSQL database, `sqlite:PATH` or a path a SQLite file. Any other
    /// `scheme://` (`mysql://…`) is refused rather than taken for a file
    /// name, which would create a SQLite file named after the URL.
    pub fn parse(name: &str) -> Result<StoreLocation, UnknownScheme> {
        if name.starts_with("postgres://") || name.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(name.to_string()));
        }
        if let Some((scheme, _)) = name.split_once("://") {
            let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
            if is_scheme && !scheme.eq_ignore_ascii_case("sqlite") {
                return Err(UnknownScheme {
                    scheme: scheme.to_string(),
                });
            }
        }
        let path = name.strip_prefix("sqlite:").unwrap_or(name);
        Ok(StoreLocation::Sqlite(PathBuf::from(path)))
    }

    /// The SQLite file, if the store is one.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            StoreLocation::Sqlite(p) => Some(p),
            StoreLocation::Postgres(_) => None,
        }
    }
}

impl fmt::Display for StoreLocation {
    /// The name as given, but a password in a PostgreSQL URL (the
    /// `user:secret@` part) is written as `***`: the name goes into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(p) => write!(f, "{}", p.display()),
            StoreLocation::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_says_which_backend() {
        assert_eq!(
            StoreLocation::parse("crawl.db"),
            Ok(StoreLocation::Sqlite("crawl.db".into()))
        );
        assert_eq!(
            StoreLocation::parse("sqlite:/var/lib/s.db"),
            Ok(StoreLocation::Sqlite("/var/lib/s.db".into()))
        );
        for url in [
            "postgres://h/db",
            "postgresql://u@h:5433/db?sslmode=require",
        ] {
            assert_eq!(
                StoreLocation::parse(url),
                Ok(StoreLocation::Postgres(url.into()))
            );
        }
    }

    #[test]
    fn an_unknown_scheme_is_refused_naming_only_the_scheme() {
        for (name, scheme) in [
            ("mysql://u:secret@h/db", "mysql"),
            ("redis://h", "redis"),
            ("HTTP://h/x.db", "HTTP"),
        ] {
            let e = StoreLocation::parse(name).unwrap_err();
            assert_eq!(e.scheme, scheme);
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        // A path is a path, even with `://` past its first component.
        assert_eq!(
            StoreLocation::parse("data/a://b.db"),
            Ok(StoreLocation::Sqlite("data/a://b.db".into()))
        );
    }

    #[test]
    fn a_password_never_reaches_the_log() {
        let shown =
            StoreLocation::parse("postgres://crawler:s3cret@db.example:5432/sc?sslmode=require")
                .unwrap()
                .to_string();
        assert_eq!(
            shown,
            "postgres://crawler:***@db.example:5432/sc?sslmode=require"
        );
        assert_eq!(
            StoreLocation::parse("postgres://crawler@db/sc")
                .unwrap()
                .to_string(),
            "postgres://crawler@db/sc"
        );
    }
}
