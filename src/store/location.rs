//! Where a store lives: a SQLite file (a plain path or `sqlite:PATH`, the
//! embedded default) or a PostgreSQL database (`postgres://…`), which a
//! fleet of processes shares.
//!
//! One name for both, so that `[store] path`, `crawl --store` and the
//! `report`/`export` commands take either without a flag per backend.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    /// A libpq-style URL; it may carry a password, so `Display` hides it.
    Postgres(String),
}

impl StoreLocation {
    /// Reads a store name: `postgres://…` or `postgresql://…` is a
    /// PostgreSQL database, `sqlite:PATH` or anything else a SQLite file.
    pub fn parse(name: &str) -> StoreLocation {
        if name.starts_with("postgres://") || name.starts_with("postgresql://") {
            StoreLocation::Postgres(name.to_string())
        } else {
            let path = name.strip_prefix("sqlite:").unwrap_or(name);
            StoreLocation::Sqlite(PathBuf::from(path))
        }
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
            StoreLocation::Sqlite("crawl.db".into())
        );
        assert_eq!(
            StoreLocation::parse("sqlite:/var/lib/s.db"),
            StoreLocation::Sqlite("/var/lib/s.db".into())
        );
        for url in [
            "postgres://h/db",
            "postgresql://u@h:5433/db?sslmode=require",
        ] {
            assert_eq!(
                StoreLocation::parse(url),
                StoreLocation::Postgres(url.into())
            );
        }
    }

    #[test]
    fn a_password_never_reaches_the_log() {
        let shown =
            StoreLocation::parse("postgres://crawler:s3cret@db.example:5432/sc?sslmode=require")
                .to_string();
        assert_eq!(
            shown,
            "postgres://crawler:***@db.example:5432/sc?sslmode=require"
        );
        assert_eq!(
            StoreLocation::parse("postgres://crawler@db/sc").to_string(),
            "postgres://crawler@db/sc"
        );
    }
}
