//! Configuration: the validated `Config` every actor takes its slice of,
//! the domain types it is made of (`TagSet`, `Tab`, `Source`, ...), its
//! errors, and the entry points that load it.
//!
//! The work is split by concern: `raw` is the file as written, `validate`
//! turns it into a `Config`, `url` spells listing URLs. This module keeps
//! the types and re-exports the rest, so `crate::config::X` paths hold.

mod api;
pub mod archive;
mod raw;
mod url;
mod validate;

pub use crate::store::OutputFormat;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::model::Archive;
use crate::store::StoreLocation;

pub use api::{ApiSort, UnknownSort, DEFAULT_API_BASE, MAX_PAGESIZE, THROTTLE_VIOLATION_MIN_PAUSE};
pub use archive::{ArchiveQuery, ArchiveSettings, Collapse, RawArchive};
pub use raw::{RawApi, RawConfig, RawFetch, RawFleet, RawOutput, RawSite, RawStore, RawTagSet};
pub use url::encode_tag;
pub use validate::api_site_for_host;
pub(crate) use validate::check_tag;

/// The documented Stack Exchange per-IP ceiling: more than this is dropped
/// and can get the IP banned, so no configuration may ask for it.
pub const MAX_RATE_PER_SEC: f64 = 30.0;

pub const DEFAULT_BASE_URL: &str = "https://stackoverflow.com";
pub const DEFAULT_USER_AGENT: &str = concat!(
    "stackcrawl/",
    env!("CARGO_PKG_VERSION"),
    " (polite tag-listing crawler; set site.user_agent to include your contact)"
);

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Syntax, type and unknown-key errors; toml's message carries the line.
    #[error("config {origin}: {message}")]
    Toml { origin: String, message: String },
    #[error("config {origin}: `{key}`{at}: {reason}")]
    Invalid {
        origin: String,
        key: String,
        at: LineRef,
        reason: String,
    },
}

/// ` (line N)` when the offending value came from the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineRef(pub Option<usize>);

impl fmt::Display for LineRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " (line {line})"),
            None => Ok(()),
        }
    }
}

/// The listing tabs Stack Overflow offers on a tag page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tab {
    Newest,
    Active,
    Bountied,
    Unanswered,
    Frequent,
    Votes,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Newest,
        Tab::Active,
        Tab::Bountied,
        Tab::Unanswered,
        Tab::Frequent,
        Tab::Votes,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Tab::Newest => "Newest",
            Tab::Active => "Active",
            Tab::Bountied => "Bountied",
            Tab::Unanswered => "Unanswered",
            Tab::Frequent => "Frequent",
            Tab::Votes => "Votes",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Tab> {
        Tab::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Tab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Values from the command line that override the file or stand in for it.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub base_url: Option<String>,
    pub output: Option<PathBuf>,
    pub tags: Vec<String>,
    pub tab: Option<String>,
    pub pages: Option<i64>,
    pub pagesize: Option<i64>,
    pub fetchers: Option<i64>,
    pub rate: Option<f64>,
    pub burst: Option<i64>,
    /// The pages come from a failures file (`--retry-failed`), so the
    /// config may name no tag set.
    pub pages_from_file: bool,
    /// `--status-addr HOST:PORT`: serve the status page there.
    pub status_addr: Option<String>,
}

/// Where a tag set's questions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Source {
    /// The site's tag listing pages, parsed from HTML.
    #[default]
    Html,
    /// The Stack Exchange API's `/questions` method: JSON with exact figures.
    Api,
    /// The Wayback Machine's captures of the tag's listing pages.
    Wayback,
    /// Common Crawl's captures of the tag's listing pages.
    CommonCrawl,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Html => "html",
            Source::Api => "api",
            Source::Wayback => "wayback",
            Source::CommonCrawl => "commoncrawl",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tag set's source with the one ordering that source knows: a listing
/// tab for HTML, a sort for the API. One type, so no tag set carries a field
/// that means nothing for its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    Listing(Tab),
    Api(ApiSort),
    /// An archive's captures, oldest first.
    Archive(Archive),
}

impl Order {
    pub fn source(self) -> Source {
        match self {
            Order::Listing(_) => Source::Html,
            Order::Api(_) => Source::Api,
            Order::Archive(Archive::Wayback) => Source::Wayback,
            Order::Archive(Archive::CommonCrawl) => Source::CommonCrawl,
        }
    }

    /// What `PageContext.tab` records: the tab's or the sort's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Listing(tab) => tab.as_str(),
            Order::Api(sort) => sort.as_str(),
            Order::Archive(a) => a.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagSet {
    pub name: String,
    pub tags: Vec<String>,
    /// Where its pages come from and in what order.
    pub order: Order,
    pub pagesize: u32,
    pub pages: u32,
    /// How often `run` repeats this tag set.
    pub every: Duration,
    /// What an archive tag set asks its index for (`None` for the others);
    /// `pages` caps its captures per tag and pass.
    pub archive: Option<ArchiveQuery>,
}

impl TagSet {
    /// Whether pages list the newest questions first (a Newest tab, or the
    /// API's `creation` order), so that a page of known questions means
    /// everything after it is known too.
    pub fn is_newest_first(&self) -> bool {
        matches!(
            self.order,
            Order::Listing(Tab::Newest) | Order::Api(ApiSort::Creation)
        )
    }

    pub fn source(&self) -> Source {
        self.order.source()
    }
}

/// A validated configuration: every value in range, every tag safe to put
/// in a URL path.
#[derive(Debug, Clone)]
pub struct Config {
    /// Scheme, host and optional path prefix, without a trailing slash.
    pub base_url: String,
    /// Host name, recorded as each question's `site`.
    pub site: String,
    pub user_agent: String,
    pub fetchers: usize,
    pub rate: f64,
    pub burst: u32,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_retries: u32,
    pub retry_base: Duration,
    pub max_body_bytes: usize,
    pub output: PathBuf,
    pub output_format: OutputFormat,
    /// The config file or `--output` named the output. `crawl` writes one
    /// either way; `run` rewrites it after each pass only when named, so a
    /// service never leaves a file nobody asked for.
    pub output_named: bool,
    /// Where pages lost after their retries are listed for `--retry-failed`.
    pub failures_path: PathBuf,
    pub tag_sets: Vec<TagSet>,
    /// robots.txt is honoured unless the config explicitly says otherwise.
    pub obey_robots: bool,
    /// What an unreachable robots.txt means: deny (the default) or allow.
    pub robots_unreachable_allows: bool,
    pub daily_budget: u64,
    pub budget_file: PathBuf,
    /// Seconds between periodic status lines.
    pub status_every: Duration,
    /// How long the pool stops after a captcha or block page.
    pub block_pause: Duration,
    /// The store `run` keeps questions and their history in: a SQLite file
    /// or a PostgreSQL database a fleet shares.
    pub store: StoreLocation,
    /// How long a store or budget that does not answer is waited for
    /// (status lines say so meanwhile) before the crawl stops.
    pub store_give_up: Duration,
    pub api: ApiSettings,
    /// Where the live status page listens, if anywhere (`[status] addr`,
    /// `--status-addr`). Loopback only unless `[status] allow_remote`: the
    /// page has no authentication.
    pub status_addr: Option<std::net::SocketAddr>,
    pub fleet: FleetSettings,
    /// `[archive]`: where the web archives live and how fast they are asked.
    pub archive: ArchiveSettings,
}

/// The validated `[fleet]` table.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// This process in logs, the status line and the store (who fetched a
    /// page): `host:pid` unless the config names it.
    pub name: String,
    /// How long a page leased from a shared store stays this process's:
    /// if it dies, the others take the page over once this has passed.
    pub lease: Duration,
    /// The local address requests leave from: one egress IP per process.
    pub local_address: Option<std::net::IpAddr>,
    /// Processes behind one egress IP that share its per-second quota
    /// through the database name it alike; `None`: this process's own.
    pub shared_quota: Option<String>,
}

impl FleetSettings {
    /// `host:pid`: unique among processes of one machine, and says where
    /// to look for the process.
    pub fn default_name() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".to_string());
        format!("{host}:{}", std::process::id())
    }
}

/// The environment variable the binary reads the Stack Exchange app key
/// from. Config only names it, in errors about the key.
pub const API_KEY_ENV: &str = "STACKCRAWL_API_KEY";

/// A Stack Exchange app key. It raises the daily quota from 300 to 10,000
/// and is not a secret in OAuth terms, but it identifies the owner's app, so
/// it is kept out of every log line, error and file: `Debug` prints
/// `REDACTED` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key itself, for the one place that builds the request URL.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(REDACTED)")
    }
}

/// The validated `[api]` table, plus the app key the caller passed in.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Scheme and host of the API, without a trailing slash.
    pub base_url: String,
    /// The API's host: it gets its own quota and daily budget, and it is the
    /// one other host a redirect may lead to.
    pub host: String,
    /// The API's name for the site (`stackoverflow`, `serverfault`, ...).
    /// `None` only when no tag set uses the API and none could be derived.
    pub site: Option<String>,
    pub key: Option<ApiKey>,
    pub filter: Option<String>,
    /// Requests per UTC day, counted across restarts like `daily_budget`.
    pub daily_quota: u64,
    /// The crawl stops cleanly once the API reports this few requests left.
    pub stop_at_quota_remaining: u64,
    /// The shortest pool-wide pause after a `throttle_violation`.
    pub throttle_violation_pause: Duration,
}

impl ApiSettings {
    /// The daily budget file's entry for the API. The API counts its quota
    /// per IP (or per key), across all sites, so one entry per API host.
    pub fn budget_key(&self) -> String {
        format!("api:{}", budget_host(&self.base_url, &self.host))
    }
}

/// The budget's entry for `host` served at `base_url`: the host, with the
/// port where the URL names one other than its scheme's, so that two sites
/// on one host (a site on 127.0.0.1:8080, another on :8098) keep their
/// counts and pauses apart. A key without a port is the default port's, as
/// every key of a budget file written before keys had ports.
fn budget_host(base_url: &str, host: &str) -> String {
    match reqwest::Url::parse(base_url).ok().and_then(|u| u.port()) {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// What loading a config needs from the process it runs in. Config reads
/// no environment variables itself: the binary gathers these once at start
/// and passes them in, so loading is a function of its arguments alone and
/// tests and embedders decide what it sees.
#[derive(Clone, Default)]
pub struct Environment {
    /// The Stack Exchange app key (`STACKCRAWL_API_KEY`), if any.
    pub api_key: Option<String>,
    /// The user's state directory (`$XDG_STATE_HOME`, else
    /// `~/.local/state`): the default budget file is
    /// `stackcrawl/budget.sqlite` under it. `None` falls back to
    /// `.stackcrawl-budget.sqlite` in the current directory.
    pub state_dir: Option<PathBuf>,
}

/// The key is redacted for the same reason `ApiKey`'s is.
impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("api_key", &self.api_key.as_ref().map(|_| "REDACTED"))
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

impl Config {
    /// Reads and validates a config file, then applies command-line
    /// overrides; `env` supplies the app key and the state directory.
    pub fn load(
        path: &Path,
        overrides: &Overrides,
        env: &Environment,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_in(&text, &path.display().to_string(), overrides, env)
    }

    /// `from_toml_in` with an empty environment: no app key, and the
    /// budget file in the current directory unless the text names one.
    pub fn from_toml(
        text: &str,
        origin: &str,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        Config::from_toml_in(text, origin, overrides, &Environment::default())
    }

    /// Validates TOML text; `origin` names it in errors (a path, or
    /// "command line" when there is no file).
    pub fn from_toml_in(
        text: &str,
        origin: &str,
        overrides: &Overrides,
        env: &Environment,
    ) -> Result<Config, ConfigError> {
        let raw = raw::parse(text, origin)?;
        Config::from_raw(raw, text, origin, overrides, env)
    }

    /// Validates a parsed file; `text` is what it was parsed from, for the
    /// line numbers in errors.
    pub fn from_raw(
        raw: RawConfig,
        text: &str,
        origin: &str,
        ov: &Overrides,
        env: &Environment,
    ) -> Result<Config, ConfigError> {
        validate::validate(raw, text, origin, ov, env)
    }

    /// `from_raw` with an app key and no state directory: all most tests
    /// need, since they name their budget file.
    pub fn from_raw_with_key(
        raw: RawConfig,
        text: &str,
        origin: &str,
        ov: &Overrides,
        key: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let env = Environment {
            api_key: key.map(str::to_string),
            state_dir: None,
        };
        Config::from_raw(raw, text, origin, ov, &env)
    }

    /// The daily budget file's entry for the site's HTML pages (see
    /// [`ApiSettings::budget_key`] for the API's).
    pub fn budget_key(&self) -> String {
        budget_host(&self.base_url, &self.site)
    }

    /// The listing URL of one page: the tag is percent-encoded as a single
    /// path segment, so `c#` and `c++` reach the right page.
    pub fn listing_url(&self, tag: &str, tab: Tab, page: u32, pagesize: u32) -> String {
        url::listing_url(&self.base_url, tag, tab, page, pagesize)
    }
}

#[cfg(test)]
mod tests;
