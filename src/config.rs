//! Configuration: the TOML file (`RawConfig`, serde, unknown keys refused)
//! and the validated `Config` every actor takes its slice of.
//!
//! Validation happens before anything is fetched, and every error names the
//! key and, where the value came from the file, its line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use crate::api::{self, ApiSort};

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

/// The file as written. Every field optional so that defaults live in one
/// place (`Config::from_raw`) and command-line flags can fill gaps.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub site: RawSite,
    #[serde(default)]
    pub fetch: RawFetch,
    #[serde(default)]
    pub output: RawOutput,
    #[serde(default)]
    pub tag_sets: BTreeMap<String, RawTagSet>,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub api: RawApi,
}

/// `[api]`: where the Stack Exchange API lives and how its quota is spent.
/// There is deliberately no `key` field: the app key comes only from the
/// environment, so it never sits in a file that gets shared or committed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub site: Option<Spanned<String>>,
    pub base_url: Option<Spanned<String>>,
    pub filter: Option<Spanned<String>>,
    pub daily_quota: Option<Spanned<i64>>,
    pub stop_at_quota_remaining: Option<Spanned<i64>>,
    pub throttle_violation_pause_secs: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub base_url: Option<Spanned<String>>,
    pub user_agent: Option<Spanned<String>>,
    pub obey_robots: Option<bool>,
    pub robots_unreachable: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFetch {
    pub fetchers: Option<Spanned<i64>>,
    pub rate: Option<Spanned<f64>>,
    pub burst: Option<Spanned<i64>>,
    pub timeout_secs: Option<Spanned<f64>>,
    pub connect_timeout_secs: Option<Spanned<f64>>,
    pub max_retries: Option<Spanned<i64>>,
    pub retry_base_ms: Option<Spanned<i64>>,
    pub max_body_bytes: Option<Spanned<i64>>,
    pub read_timeout_secs: Option<Spanned<f64>>,
    pub daily_budget: Option<Spanned<i64>>,
    pub budget_file: Option<String>,
    pub status_every_secs: Option<Spanned<i64>>,
    pub block_pause_secs: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub path: Option<Spanned<String>>,
    pub failures: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTagSet {
    pub tags: Option<Spanned<Vec<String>>>,
    pub tab: Option<Spanned<String>>,
    pub pagesize: Option<Spanned<i64>>,
    pub pages: Option<Spanned<i64>>,
    pub every: Option<Spanned<String>>,
    pub source: Option<Spanned<String>>,
    pub sort: Option<Spanned<String>>,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Jsonl,
    Csv,
}

/// Where a tag set's questions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Source {
    /// The site's tag listing pages, parsed from HTML.
    #[default]
    Html,
    /// The Stack Exchange API's `/questions` method: JSON with exact figures.
    Api,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Html => "html",
            Source::Api => "api",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagSet {
    pub name: String,
    pub tags: Vec<String>,
    pub source: Source,
    /// The listing tab (html tag sets).
    pub tab: Tab,
    /// The API's order (api tag sets).
    pub sort: ApiSort,
    pub pagesize: u32,
    pub pages: u32,
    /// How often `run` repeats this tag set.
    pub every: Duration,
}

impl TagSet {
    /// Whether pages list the newest questions first (a Newest tab, or the
    /// API's `creation` order), so that a page of known questions means
    /// everything after it is known too.
    pub fn is_newest_first(&self) -> bool {
        match self.source {
            Source::Html => self.tab == Tab::Newest,
            Source::Api => self.sort == ApiSort::Creation,
        }
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
    /// The SQLite store `run` keeps questions and their history in.
    pub store_path: PathBuf,
    pub api: ApiSettings,
}

/// The environment variable the Stack Exchange app key is read from.
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

/// The validated `[api]` table, plus the key from the environment.
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
        format!("api:{}", self.host)
    }
}

/// Gentle defaults: the real site promises nothing for HTML pages, so one
/// request a second from two fetchers, far below the 30/s ceiling.
const DEFAULT_FETCHERS: i64 = 2;
const DEFAULT_RATE: f64 = 1.0;
const DEFAULT_BURST: i64 = 1;
const DEFAULT_TIMEOUT_SECS: f64 = 60.0;
const DEFAULT_READ_TIMEOUT_SECS: f64 = 20.0;
/// The Stack Exchange API's daily quota with an app key; used for HTML too.
const DEFAULT_DAILY_BUDGET: i64 = 10_000;
const DEFAULT_STATUS_EVERY_SECS: i64 = 30;
/// A block page means the site distrusts us: back off for minutes, not seconds.
const DEFAULT_BLOCK_PAUSE_SECS: f64 = 300.0;
/// The budget file's name inside the user's state directory.
const BUDGET_FILE_NAME: &str = "stackcrawl/budget.sqlite";
const DEFAULT_CONNECT_TIMEOUT_SECS: f64 = 10.0;
const DEFAULT_MAX_RETRIES: i64 = 4;
const DEFAULT_RETRY_BASE_MS: i64 = 500;
const DEFAULT_MAX_BODY_BYTES: i64 = 8 * 1024 * 1024;
const DEFAULT_OUTPUT: &str = "questions.jsonl";
const DEFAULT_TAB: Tab = Tab::Newest;
const DEFAULT_PAGESIZE: i64 = 50;
const DEFAULT_PAGES: i64 = 1;
const MAX_FETCHERS: i64 = 64;
const DEFAULT_EVERY: Duration = Duration::from_secs(3600);
/// The largest page the API serves: fewer requests for the same questions.
const DEFAULT_API_PAGESIZE: i64 = api::MAX_PAGESIZE as i64;
/// The API's documented daily quotas per IP, without and with an app key.
const API_QUOTA_WITHOUT_KEY: i64 = 300;
const API_QUOTA_WITH_KEY: i64 = 10_000;
/// Stop a few requests short of the quota: requests already in flight spend
/// it too, and a spent quota answers every request with an error until
/// midnight UTC.
const DEFAULT_STOP_AT_QUOTA_REMAINING: i64 = 5;
const DEFAULT_STORE: &str = "stackcrawl.db";

impl Config {
    /// Reads and validates a config file, then applies command-line
    /// overrides.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string(), overrides)
    }

    /// Validates TOML text; `origin` names it in errors (a path, or
    /// "command line" when there is no file).
    pub fn from_toml(
        text: &str,
        origin: &str,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let mut message = e.to_string().trim_end().to_string();
            // serde's "unknown field" alone would leave the user guessing
            // where the key belongs; it belongs in no file at all.
            if message.contains("unknown field `key`") {
                message.push_str(&format!(
                    "\n(the Stack Exchange app key is read only from the {API_KEY_ENV} environment variable, never from the config file)"
                ));
            }
            ConfigError::Toml {
                origin: origin.to_string(),
                message,
            }
        })?;
        Config::from_raw(raw, text, origin, overrides)
    }

    /// Validates a parsed file; the app key comes from `STACKCRAWL_API_KEY`.
    pub fn from_raw(
        raw: RawConfig,
        text: &str,
        origin: &str,
        ov: &Overrides,
    ) -> Result<Config, ConfigError> {
        let key = std::env::var(API_KEY_ENV).ok();
        Config::from_raw_with_key(raw, text, origin, ov, key.as_deref())
    }

    /// `from_raw` with the app key given rather than read from the
    /// environment, so tests and embedders control it.
    pub fn from_raw_with_key(
        raw: RawConfig,
        text: &str,
        origin: &str,
        ov: &Overrides,
        key: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let v = Validator { text, origin };

        let base_url = match &ov.base_url {
            Some(u) => v.base_url("--base-url", u, None)?,
            None => match &raw.site.base_url {
                Some(s) => v.base_url("site.base_url", s.get_ref(), Some(s.span().start))?,
                None => DEFAULT_BASE_URL.to_string(),
            },
        };
        let site = host_of(&base_url).unwrap_or_default();
        let user_agent = match &raw.site.user_agent {
            Some(s) if s.get_ref().trim().is_empty() => {
                return Err(v.err(
                    "site.user_agent",
                    Some(s.span().start),
                    "must not be empty: a descriptive User-Agent is required",
                ))
            }
            Some(s) => s.get_ref().trim().to_string(),
            None => DEFAULT_USER_AGENT.to_string(),
        };

        let f = &raw.fetch;
        let fetchers = v.int(
            "fetch.fetchers",
            "--fetchers",
            ov.fetchers,
            &f.fetchers,
            DEFAULT_FETCHERS,
            1..=MAX_FETCHERS,
        )?;
        let rate = match (ov.rate, &f.rate) {
            (Some(r), _) => v.rate("--rate", r, None)?,
            (None, Some(r)) => v.rate("fetch.rate", *r.get_ref(), Some(r.span().start))?,
            (None, None) => DEFAULT_RATE,
        };
        let burst = v.int(
            "fetch.burst",
            "--burst",
            ov.burst,
            &f.burst,
            DEFAULT_BURST,
            1..=30,
        )?;
        let timeout = v.secs("fetch.timeout_secs", &f.timeout_secs, DEFAULT_TIMEOUT_SECS)?;
        let connect_timeout = v.secs(
            "fetch.connect_timeout_secs",
            &f.connect_timeout_secs,
            DEFAULT_CONNECT_TIMEOUT_SECS,
        )?;
        let max_retries = v.int(
            "fetch.max_retries",
            "",
            None,
            &f.max_retries,
            DEFAULT_MAX_RETRIES,
            0..=20,
        )?;
        let read_timeout = v.secs(
            "fetch.read_timeout_secs",
            &f.read_timeout_secs,
            DEFAULT_READ_TIMEOUT_SECS,
        )?;
        let daily_budget = v.int(
            "fetch.daily_budget",
            "",
            None,
            &f.daily_budget,
            DEFAULT_DAILY_BUDGET,
            1..=10_000_000,
        )?;
        let status_every = v.int(
            "fetch.status_every_secs",
            "",
            None,
            &f.status_every_secs,
            DEFAULT_STATUS_EVERY_SECS,
            1..=86_400,
        )?;
        let block_pause = v.secs(
            "fetch.block_pause_secs",
            &f.block_pause_secs,
            DEFAULT_BLOCK_PAUSE_SECS,
        )?;
        let robots_unreachable_allows = match &raw.site.robots_unreachable {
            None => false,
            Some(s) => match s.get_ref().as_str() {
                "deny" => false,
                "allow" => true,
                other => {
                    return Err(v.err(
                        "site.robots_unreachable",
                        Some(s.span().start),
                        format!("must be \"deny\" or \"allow\", got `{other}`"),
                    ))
                }
            },
        };
        let retry_base_ms = v.int(
            "fetch.retry_base_ms",
            "",
            None,
            &f.retry_base_ms,
            DEFAULT_RETRY_BASE_MS,
            1..=600_000,
        )?;
        let max_body_bytes = v.int(
            "fetch.max_body_bytes",
            "",
            None,
            &f.max_body_bytes,
            DEFAULT_MAX_BODY_BYTES,
            1024..=256 * 1024 * 1024,
        )?;

        let output = match (&ov.output, &raw.output.path) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => PathBuf::from(p.get_ref()),
            (None, None) => PathBuf::from(DEFAULT_OUTPUT),
        };
        let output_format = match output.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("jsonl") => OutputFormat::Jsonl,
            Some(e) if e.eq_ignore_ascii_case("csv") => OutputFormat::Csv,
            _ => {
                let line = raw.output.path.as_ref().map(|p| p.span().start);
                let key = if ov.output.is_some() {
                    "--output"
                } else {
                    "output.path"
                };
                return Err(v.err(
                    key,
                    line.filter(|_| ov.output.is_none()),
                    format!("`{}` must end in .jsonl or .csv", output.display()),
                ));
            }
        };

        let tag_sets = v.tag_sets(&raw.tag_sets, ov)?;
        let uses_api = tag_sets.iter().any(|s| s.source == Source::Api);
        let api = v.api(&raw.api, &site, key, uses_api)?;
        let failures_path = match &raw.output.failures {
            Some(p) => PathBuf::from(p),
            None => output.with_extension("failed.jsonl"),
        };
        let budget_file = match &f.budget_file {
            Some(p) => PathBuf::from(p),
            None => default_budget_file(),
        };

        Ok(Config {
            base_url,
            site,
            user_agent,
            fetchers: fetchers as usize,
            rate,
            burst: burst as u32,
            timeout,
            connect_timeout,
            read_timeout,
            max_retries: max_retries as u32,
            retry_base: Duration::from_millis(retry_base_ms as u64),
            max_body_bytes: max_body_bytes as usize,
            output,
            output_format,
            failures_path,
            tag_sets,
            obey_robots: raw.site.obey_robots.unwrap_or(true),
            robots_unreachable_allows,
            daily_budget: daily_budget as u64,
            budget_file,
            status_every: Duration::from_secs(status_every as u64),
            block_pause,
            store_path: PathBuf::from(raw.store.path.as_deref().unwrap_or(DEFAULT_STORE)),
            api,
        })
    }

    /// The listing URL of one page: the tag is percent-encoded as a single
    /// path segment, so `c#` and `c++` reach the right page.
    pub fn listing_url(&self, tag: &str, tab: Tab, page: u32, pagesize: u32) -> String {
        format!(
            "{}/questions/tagged/{}?tab={}&page={}&pagesize={}",
            self.base_url,
            encode_tag(tag),
            tab.as_str(),
            page,
            pagesize
        )
    }
}

/// One budget per user and machine, wherever the crawl writes its output:
/// the quota it stands for belongs to the IP (and the API key), not to a
/// directory. `$XDG_STATE_HOME/stackcrawl/budget.sqlite`, by default
/// `~/.local/state/stackcrawl/budget.sqlite`.
fn default_budget_file() -> PathBuf {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/state"))
        })
        .map_or_else(
            || PathBuf::from(".stackcrawl-budget.sqlite"),
            |d| d.join(BUDGET_FILE_NAME),
        )
}

/// Percent-encodes everything but the characters Stack Exchange tags are
/// spelled with, so `+` and `#` never turn into a space or a fragment.
pub fn encode_tag(tag: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const KEEP: &percent_encoding::AsciiSet =
        &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');
    utf8_percent_encode(tag, KEEP).to_string()
}

fn host_of(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
}

/// Stack Exchange tag names: lower-case letters, digits and `+ # - . _`,
/// at most 35 characters. Anything else (a slash, `..`, whitespace) could
/// change the request path and is refused.
pub(crate) fn check_tag(tag: &str) -> Result<String, String> {
    let t = tag.trim().to_lowercase();
    if t.is_empty() {
        return Err("a tag is empty".into());
    }
    if t.len() > 35 {
        return Err(format!("tag `{t}` is longer than 35 characters"));
    }
    if t.chars().all(|c| c == '.') {
        return Err(format!("tag `{t}` is not a tag name"));
    }
    if let Some(bad) = t
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "+#-._".contains(*c)))
    {
        return Err(format!(
            "tag `{t}` contains `{bad}`; tags use only a-z, 0-9 and + # - . _"
        ));
    }
    Ok(t)
}

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Validator<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(0, |s| s.bytes().filter(|b| *b == b'\n').count())
            + 1
    }

    fn err(&self, key: &str, offset: Option<usize>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            key: key.to_string(),
            at: LineRef(offset.map(|o| self.line(o))),
            reason: reason.into(),
        }
    }

    fn base_url(&self, key: &str, url: &str, at: Option<usize>) -> Result<String, ConfigError> {
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|e| self.err(key, at, format!("`{url}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(self.err(key, at, "only http and https URLs are crawled"));
        }
        if parsed.host_str().is_none() {
            return Err(self.err(key, at, "the URL has no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(self.err(key, at, "the base URL must not carry a query or fragment"));
        }
        Ok(parsed.as_str().trim_end_matches('/').to_string())
    }

    fn rate(&self, key: &str, rate: f64, at: Option<usize>) -> Result<f64, ConfigError> {
        if !rate.is_finite() || rate <= 0.0 {
            return Err(self.err(
                key,
                at,
                format!(
                    "rate must be a finite number of requests/s above 0 and at most {MAX_RATE_PER_SEC}, got {rate}"
                ),
            ));
        }
        if rate > MAX_RATE_PER_SEC {
            return Err(self.err(
                key,
                at,
                format!(
                    "{rate} requests/s is above the Stack Exchange ceiling of {MAX_RATE_PER_SEC}/s per IP"
                ),
            ));
        }
        Ok(rate)
    }

    /// An integer from the command line, the file, or the default, checked
    /// against its range.
    fn int(
        &self,
        key: &str,
        flag: &str,
        cli: Option<i64>,
        file: &Option<Spanned<i64>>,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, ConfigError> {
        let (value, name, at) = match (cli, file) {
            (Some(v), _) => (v, flag, None),
            (None, Some(s)) => (*s.get_ref(), key, Some(s.span().start)),
            (None, None) => return Ok(default),
        };
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(self.err(
                name,
                at,
                format!(
                    "must be between {} and {}, got {value}",
                    range.start(),
                    range.end()
                ),
            ))
        }
    }

    fn secs(
        &self,
        key: &str,
        file: &Option<Spanned<f64>>,
        default: f64,
    ) -> Result<Duration, ConfigError> {
        let Some(s) = file else {
            return Ok(Duration::from_secs_f64(default));
        };
        let v = *s.get_ref();
        if !v.is_finite() || v <= 0.0 || v > 3600.0 {
            return Err(self.err(
                key,
                Some(s.span().start),
                format!("must be between 0 and 3600 seconds, got {v}"),
            ));
        }
        Ok(Duration::from_secs_f64(v))
    }

    fn tag_sets(
        &self,
        raw: &BTreeMap<String, RawTagSet>,
        ov: &Overrides,
    ) -> Result<Vec<TagSet>, ConfigError> {
        let mut sets = Vec::new();
        if !ov.tags.is_empty() {
            // Tags on the command line form their own set and replace the
            // file's, so a quick crawl never also runs the configured ones.
            let mut tags = Vec::new();
            for t in &ov.tags {
                tags.push(check_tag(t).map_err(|r| self.err("--tag", None, r))?);
            }
            sets.push(self.tag_set("cli", tags, &RawTagSet::default(), ov)?);
        } else {
            for (name, set) in raw {
                let key = format!("tag_sets.{name}.tags");
                let Some(tags) = &set.tags else {
                    return Err(self.err(&key, None, "missing: a tag set needs a list of tags"));
                };
                let at = Some(tags.span().start);
                if tags.get_ref().is_empty() {
                    return Err(self.err(&key, at, "the tag list is empty"));
                }
                let mut clean = Vec::new();
                for t in tags.get_ref() {
                    clean.push(check_tag(t).map_err(|r| self.err(&key, at, r))?);
                }
                sets.push(self.tag_set(name, clean, set, ov)?);
            }
        }
        if sets.is_empty() && !ov.pages_from_file {
            return Err(self.err(
                "tag_sets",
                None,
                "no tags to crawl: add a [tag_sets.NAME] table or pass --tag",
            ));
        }
        Ok(sets)
    }

    fn tag_set(
        &self,
        name: &str,
        tags: Vec<String>,
        raw: &RawTagSet,
        ov: &Overrides,
    ) -> Result<TagSet, ConfigError> {
        let prefix = format!("tag_sets.{name}");
        let source = match &raw.source {
            None => Source::Html,
            Some(s) => match s.get_ref().trim() {
                "html" => Source::Html,
                "api" => Source::Api,
                other => {
                    return Err(self.err(
                        &format!("{prefix}.source"),
                        Some(s.span().start),
                        format!("must be \"html\" or \"api\", got `{other}`"),
                    ))
                }
            },
        };
        let (tab, sort, pagesize) = match source {
            Source::Html => {
                if let Some(s) = &raw.sort {
                    return Err(self.err(
                        &format!("{prefix}.sort"),
                        Some(s.span().start),
                        "sort is for source = \"api\" tag sets; an html tag set orders by tab",
                    ));
                }
                let tab = match (&ov.tab, &raw.tab) {
                    (Some(t), _) => {
                        Tab::parse(t).ok_or_else(|| self.err("--tab", None, bad_tab(t)))?
                    }
                    (None, Some(t)) => Tab::parse(t.get_ref()).ok_or_else(|| {
                        self.err(
                            &format!("{prefix}.tab"),
                            Some(t.span().start),
                            bad_tab(t.get_ref()),
                        )
                    })?,
                    (None, None) => DEFAULT_TAB,
                };
                let pagesize = self.int(
                    &format!("{prefix}.pagesize"),
                    "--pagesize",
                    ov.pagesize,
                    &raw.pagesize,
                    DEFAULT_PAGESIZE,
                    15..=50,
                )?;
                if ![15, 30, 50].contains(&pagesize) {
                    let at = raw.pagesize.as_ref().map(|s| s.span().start);
                    let key = if ov.pagesize.is_some() {
                        "--pagesize".to_string()
                    } else {
                        format!("{prefix}.pagesize")
                    };
                    return Err(self.err(
                        &key,
                        at.filter(|_| ov.pagesize.is_none()),
                        format!("must be 15, 30 or 50 (the sizes the site offers), got {pagesize}"),
                    ));
                }
                (tab, ApiSort::default(), pagesize)
            }
            Source::Api => self.api_listing(&prefix, raw, ov)?,
        };
        let pages = self.int(
            &format!("{prefix}.pages"),
            "--pages",
            ov.pages,
            &raw.pages,
            DEFAULT_PAGES,
            1..=100_000,
        )?;
        let every = match &raw.every {
            None => DEFAULT_EVERY,
            Some(e) => {
                let key = format!("{prefix}.every");
                let at = Some(e.span().start);
                let d = humantime::parse_duration(e.get_ref().trim()).map_err(|err| {
                    self.err(
                        &key,
                        at,
                        format!("`{}` is not a duration like \"15m\": {err}", e.get_ref()),
                    )
                })?;
                if d < Duration::from_secs(1) {
                    return Err(self.err(&key, at, "must be at least 1s"));
                }
                d
            }
        };
        Ok(TagSet {
            name: name.to_string(),
            tags,
            source,
            tab,
            sort,
            pagesize: pagesize as u32,
            pages: pages as u32,
            every,
        })
    }
}

impl Validator<'_> {
    /// An api tag set's order and page size. `--tab` is for listings and
    /// leaves api tag sets alone; `--pagesize` applies, within the API's limit.
    fn api_listing(
        &self,
        prefix: &str,
        raw: &RawTagSet,
        ov: &Overrides,
    ) -> Result<(Tab, ApiSort, i64), ConfigError> {
        if let Some(t) = &raw.tab {
            return Err(self.err(
                &format!("{prefix}.tab"),
                Some(t.span().start),
                "tab is for html tag sets; an api tag set orders by sort = \"creation\", \"activity\" or \"votes\"",
            ));
        }
        let sort = match &raw.sort {
            None => ApiSort::default(),
            Some(s) => s.get_ref().parse::<ApiSort>().map_err(|e| {
                self.err(
                    &format!("{prefix}.sort"),
                    Some(s.span().start),
                    e.to_string(),
                )
            })?,
        };
        let pagesize = self.int(
            &format!("{prefix}.pagesize"),
            "--pagesize",
            ov.pagesize,
            &raw.pagesize,
            DEFAULT_API_PAGESIZE,
            1..=api::MAX_PAGESIZE as i64,
        )?;
        Ok((DEFAULT_TAB, sort, pagesize))
    }

    /// `[api]`, with the key from the environment. The site name is needed
    /// (and checked) only when a tag set uses the API.
    fn api(
        &self,
        raw: &RawApi,
        host: &str,
        key: Option<&str>,
        uses_api: bool,
    ) -> Result<ApiSettings, ConfigError> {
        let base_url = match &raw.base_url {
            Some(u) => self.base_url("api.base_url", u.get_ref(), Some(u.span().start))?,
            None => api::DEFAULT_API_BASE.to_string(),
        };
        let api_host = host_of(&base_url).unwrap_or_default();
        let derived = api_site_for_host(host);
        let site = match &raw.site {
            Some(s) => {
                let at = Some(s.span().start);
                let name = check_api_site(s.get_ref()).map_err(|r| self.err("api.site", at, r))?;
                // One config crawls one site: records are labelled with the
                // host of site.base_url, so the API must fetch that same site.
                if let Some(d) = derived.as_ref().filter(|d| **d != name && name != host) {
                    return Err(self.err(
                        "api.site",
                        at,
                        format!(
                            "`{name}` is not the site of site.base_url ({host}, API name `{d}`); set site.base_url to the site you want"
                        ),
                    ));
                }
                Some(name)
            }
            None => derived,
        };
        if uses_api && site.is_none() {
            return Err(self.err(
                "api.site",
                None,
                format!(
                    "missing: `{host}` is not a Stack Exchange host, so the API site cannot be derived from site.base_url; set it, e.g. site = \"stackoverflow\""
                ),
            ));
        }
        let key = match key.map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            // The value is never quoted back: it may be a real key, pasted wrong.
            Some(k) if k.len() > 200 || !k.chars().all(|c| c.is_ascii_graphic()) => {
                return Err(self.err(
                    API_KEY_ENV,
                    None,
                    "is not an app key: expected up to 200 printable ASCII characters without spaces",
                ))
            }
            Some(k) => Some(ApiKey(k.to_string())),
        };
        let default_quota = if key.is_some() {
            API_QUOTA_WITH_KEY
        } else {
            API_QUOTA_WITHOUT_KEY
        };
        let daily_quota = self.int(
            "api.daily_quota",
            "",
            None,
            &raw.daily_quota,
            default_quota,
            1..=10_000_000,
        )?;
        let stop_at = self.int(
            "api.stop_at_quota_remaining",
            "",
            None,
            &raw.stop_at_quota_remaining,
            DEFAULT_STOP_AT_QUOTA_REMAINING,
            0..=10_000_000,
        )?;
        if stop_at >= daily_quota {
            return Err(self.err(
                "api.stop_at_quota_remaining",
                raw.stop_at_quota_remaining.as_ref().map(|s| s.span().start),
                format!("must be below api.daily_quota ({daily_quota}), got {stop_at}"),
            ));
        }
        let throttle_violation_pause = self.secs(
            "api.throttle_violation_pause_secs",
            &raw.throttle_violation_pause_secs,
            api::THROTTLE_VIOLATION_MIN_PAUSE.as_secs_f64(),
        )?;
        let filter = match &raw.filter {
            None => None,
            Some(f) => {
                let v = f.get_ref().trim();
                if v.is_empty() || v.len() > 100 || !v.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(self.err(
                        "api.filter",
                        Some(f.span().start),
                        "must be a filter id the API minted (e.g. \"!9_bDDxJY5\"), or left out",
                    ));
                }
                Some(v.to_string())
            }
        };
        Ok(ApiSettings {
            base_url,
            host: api_host,
            site,
            key,
            filter,
            daily_quota: daily_quota as u64,
            stop_at_quota_remaining: stop_at as u64,
            throttle_violation_pause,
        })
    }
}

/// The API's short name for a Stack Exchange host (the API also accepts the
/// full domain, used where the short form is not certain). `None` for hosts
/// that are not Stack Exchange sites: a mirror or a test server.
pub fn api_site_for_host(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    const DOT_COM: [&str; 5] = [
        "stackoverflow.com",
        "serverfault.com",
        "superuser.com",
        "askubuntu.com",
        "stackapps.com",
    ];
    if let Some(sub) = host.strip_suffix(".stackexchange.com") {
        // `unix.stackexchange.com` is `unix`; a nested meta is named by domain.
        return Some(if sub.contains('.') {
            host.to_string()
        } else {
            sub.to_string()
        });
    }
    if DOT_COM
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    {
        // `meta.stackoverflow.com` is `meta.stackoverflow`, `pt.stackoverflow.com` is `pt.stackoverflow`.
        return host.strip_suffix(".com").map(str::to_string);
    }
    if host == "mathoverflow.net" || host.ends_with(".mathoverflow.net") {
        return Some(host.to_string());
    }
    None
}

/// An API site name: a short name (`stackoverflow`, `unix`, `meta.serverfault`)
/// or a domain (`mathoverflow.net`). It goes into a query string, so only
/// lower-case letters, digits, `.` and `-`.
fn check_api_site(name: &str) -> Result<String, String> {
    let n = name.trim().to_lowercase();
    if n.is_empty() || n.len() > 64 {
        return Err(
            "must be the API's name for a site, e.g. \"stackoverflow\" or \"serverfault\"".into(),
        );
    }
    let plausible = n
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && n.chars().any(|c| c.is_ascii_lowercase())
        && !n.starts_with(['.', '-'])
        && !n.ends_with(['.', '-'])
        && !n.contains("..");
    if !plausible {
        return Err(format!(
            "`{n}` is not an API site name: use letters, digits, `.` and `-`, e.g. \"stackoverflow\""
        ));
    }
    Ok(n)
}

fn bad_tab(t: &str) -> String {
    let names: Vec<_> = Tab::ALL.iter().map(|t| t.as_str()).collect();
    format!("unknown tab `{t}`; one of {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, "test.toml", &Overrides::default())
    }

    const GOOD: &str = r#"
[site]
base_url = "http://127.0.0.1:8080/"

[fetch]
fetchers = 8
rate = 20.0
burst = 4

[output]
path = "out.csv"

[tag_sets.langs]
tags = ["C++", "c#", ".net", "node.js"]
tab = "votes"
pagesize = 30
pages = 3
"#;

    #[test]
    fn good_config_is_validated_and_normalised() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
        assert_eq!(c.site, "127.0.0.1");
        assert_eq!(c.fetchers, 8);
        assert_eq!(c.burst, 4);
        assert_eq!(c.output_format, OutputFormat::Csv);
        let set = &c.tag_sets[0];
        assert_eq!(set.tags, ["c++", "c#", ".net", "node.js"]);
        assert_eq!(set.tab, Tab::Votes);
        assert_eq!((set.pagesize, set.pages), (30, 3));
    }

    #[test]
    fn tags_are_percent_encoded_into_one_path_segment() {
        let c = load(GOOD).unwrap();
        assert_eq!(
            c.listing_url("c++", Tab::Newest, 2, 50),
            "http://127.0.0.1:8080/questions/tagged/c%2B%2B?tab=Newest&page=2&pagesize=50"
        );
        assert_eq!(encode_tag("c#"), "c%23");
        assert_eq!(encode_tag(".net"), ".net");
        assert_eq!(encode_tag("node.js"), "node.js");
    }

    fn invalid(text: &str) -> (String, Option<usize>, String) {
        match load(text) {
            Err(ConfigError::Invalid {
                key, at, reason, ..
            }) => (key, at.0, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn rate_above_ceiling_names_key_and_line() {
        let (key, line, reason) = invalid("[fetch]\nrate = 31.0\n[tag_sets.a]\ntags=[\"x\"]\n");
        assert_eq!(key, "fetch.rate");
        assert_eq!(line, Some(2));
        assert!(reason.contains("ceiling"), "{reason}");
    }

    #[test]
    fn zero_or_negative_rate_is_refused() {
        assert_eq!(
            invalid("[fetch]\nrate = 0.0\n[tag_sets.a]\ntags=[\"x\"]").0,
            "fetch.rate"
        );
        assert_eq!(
            invalid("[fetch]\nrate = -2.0\n[tag_sets.a]\ntags=[\"x\"]").0,
            "fetch.rate"
        );
    }

    #[test]
    fn an_infinite_rate_is_told_the_range() {
        let ov = Overrides {
            tags: vec!["rust".into()],
            rate: Some(f64::INFINITY),
            ..Overrides::default()
        };
        match Config::from_toml("", "command line", &ov) {
            Err(e @ ConfigError::Invalid { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains("--rate")
                        && message.contains("finite")
                        && message.contains("at most 30"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_tag_list_and_bad_pagesize_are_refused() {
        let (key, line, _) = invalid("[tag_sets.a]\n\ntags = []\n");
        assert_eq!((key.as_str(), line), ("tag_sets.a.tags", Some(3)));
        let (key, line, _) = invalid("[tag_sets.a]\ntags = [\"x\"]\npagesize = 40\n");
        assert_eq!((key.as_str(), line), ("tag_sets.a.pagesize", Some(3)));
    }

    #[test]
    fn path_changing_tags_are_refused() {
        for bad in ["../admin", "a/b", "a b", "..", "a?b"] {
            let text = format!("[tag_sets.a]\ntags = [\"{bad}\"]\n");
            let (key, _, _) = invalid(&text);
            assert_eq!(key, "tag_sets.a.tags", "{bad}");
        }
    }

    #[test]
    fn unknown_key_and_wrong_type_name_the_line() {
        match load("[fetch]\nrate = 1.0\nfetcherz = 3\n") {
            Err(ConfigError::Toml { message, .. }) => {
                assert!(message.contains("fetcherz"), "{message}");
                assert!(message.contains("line 3"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match load("[fetch]\nfetchers = \"eight\"\n") {
            Err(ConfigError::Toml { message, .. }) => {
                assert!(message.contains("line 2"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn command_line_stands_in_for_the_file() {
        let ov = Overrides {
            tags: vec!["rust".into()],
            pages: Some(4),
            rate: Some(2.5),
            ..Overrides::default()
        };
        let c = Config::from_toml("", "command line", &ov).unwrap();
        assert_eq!(c.tag_sets.len(), 1);
        assert_eq!(c.tag_sets[0].pages, 4);
        assert_eq!(c.rate, 2.5);
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        let ov = Overrides {
            rate: Some(50.0),
            ..ov
        };
        match Config::from_toml("", "command line", &ov) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "--rate"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_default_budget_is_one_per_user_not_one_per_output_directory() {
        // Regression: it defaulted to a file beside the output, so each
        // output directory had a "daily" budget of its own.
        let a =
            load("[output]\npath = \"/tmp/x/a.jsonl\"\n[tag_sets.a]\ntags = [\"x\"]\n").unwrap();
        let b = load("[output]\npath = \"/srv/y/b.csv\"\n[tag_sets.a]\ntags = [\"x\"]\n").unwrap();
        assert_eq!(a.budget_file, b.budget_file);
        assert!(!a.budget_file.starts_with("/tmp/x"), "{:?}", a.budget_file);
        assert!(
            a.budget_file.ends_with("stackcrawl/budget.sqlite"),
            "{:?}",
            a.budget_file
        );
    }

    #[test]
    fn every_is_a_duration() {
        let c = load("[tag_sets.a]\ntags = [\"x\"]\nevery = \"15m\"\n").unwrap();
        assert_eq!(c.tag_sets[0].every, Duration::from_secs(900));
        let (key, line, _) = invalid("[tag_sets.a]\ntags = [\"x\"]\nevery = \"soon\"\n");
        assert_eq!((key.as_str(), line), ("tag_sets.a.every", Some(3)));
    }

    /// Like `load`, with the app key given instead of read from the
    /// environment, so the tests do not depend on the shell they run in.
    fn load_key(text: &str, key: Option<&str>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).expect("test TOML parses");
        Config::from_raw_with_key(raw, text, "test.toml", &Overrides::default(), key)
    }

    fn invalid_key(text: &str, key: Option<&str>) -> (String, Option<usize>, String) {
        match load_key(text, key) {
            Err(ConfigError::Invalid {
                key, at, reason, ..
            }) => (key, at.0, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    const API_SET: &str = "[tag_sets.so]\nsource = \"api\"\ntags = [\"c++\", \"rust\"]\nsort = \"votes\"\npages = 5\n";

    #[test]
    fn api_tag_set_defaults_and_site_from_the_base_url() {
        let c = load_key(API_SET, None).unwrap();
        let set = &c.tag_sets[0];
        assert_eq!(set.source, Source::Api);
        assert_eq!(set.sort, ApiSort::Votes);
        assert_eq!((set.pagesize, set.pages), (100, 5));
        assert_eq!(c.api.site.as_deref(), Some("stackoverflow"));
        assert_eq!(c.api.base_url, api::DEFAULT_API_BASE);
        assert_eq!(c.api.host, "api.stackexchange.com");
        assert_eq!(c.api.daily_quota, 300, "without a key");
        assert_eq!(c.api.stop_at_quota_remaining, 5);
        assert_eq!(c.api.throttle_violation_pause, Duration::from_secs(30));
        assert!(c.api.key.is_none());
    }

    #[test]
    fn the_key_raises_the_quota_and_is_never_printed() {
        let c = load_key(API_SET, Some(" s3cr3t((key ")).unwrap();
        assert_eq!(c.api.daily_quota, 10_000);
        assert_eq!(c.api.key.as_ref().map(ApiKey::expose), Some("s3cr3t((key"));
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(load_key(API_SET, Some("  ")).unwrap().api.key.is_none());
        let (key, _, reason) = invalid_key(API_SET, Some("two words"));
        assert_eq!(key, API_KEY_ENV);
        assert!(!reason.contains("two words"), "{reason}");
    }

    #[test]
    fn a_key_in_the_file_is_refused_with_its_line() {
        let text = format!("[api]\nsite = \"stackoverflow\"\nkey = \"abc\"\n{API_SET}");
        match Config::from_toml(&text, "test.toml", &Overrides::default()) {
            Err(ConfigError::Toml { message, .. }) => {
                assert!(message.contains("line 3"), "{message}");
                assert!(message.contains(API_KEY_ENV), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn api_pagesize_sort_and_tab_name_key_and_line() {
        let (key, line, _) = invalid_key(
            "[tag_sets.a]\nsource = \"api\"\ntags = [\"x\"]\npagesize = 101\n",
            None,
        );
        assert_eq!((key.as_str(), line), ("tag_sets.a.pagesize", Some(4)));
        let (key, line, reason) = invalid_key(
            "[tag_sets.a]\nsource = \"api\"\ntags = [\"x\"]\nsort = \"hot\"\n",
            None,
        );
        assert_eq!((key.as_str(), line), ("tag_sets.a.sort", Some(4)));
        assert!(reason.contains("creation"), "{reason}");
        let (key, _, _) = invalid_key(
            "[tag_sets.a]\nsource = \"api\"\ntags = [\"x\"]\ntab = \"Votes\"\n",
            None,
        );
        assert_eq!(key, "tag_sets.a.tab");
        let (key, _, _) = invalid_key("[tag_sets.a]\ntags = [\"x\"]\nsort = \"votes\"\n", None);
        assert_eq!(key, "tag_sets.a.sort", "sort is not for html sets");
        let (key, line, _) = invalid_key("[tag_sets.a]\ntags = [\"x\"]\nsource = \"rss\"\n", None);
        assert_eq!((key.as_str(), line), ("tag_sets.a.source", Some(3)));
        // An API page may hold 1 to 100 questions; a listing still only 15/30/50.
        let c = load_key(
            "[tag_sets.a]\nsource = \"api\"\ntags = [\"x\"]\npagesize = 40\n",
            None,
        );
        assert_eq!(c.unwrap().tag_sets[0].pagesize, 40);
    }

    #[test]
    fn api_site_is_required_off_stack_exchange_and_checked() {
        let local = "[site]\nbase_url = \"http://127.0.0.1:8080\"\n";
        let (key, _, reason) = invalid_key(&format!("{local}{API_SET}"), None);
        assert_eq!(key, "api.site");
        assert!(reason.contains("127.0.0.1"), "{reason}");
        // HTML-only configs need no API site.
        assert!(load_key(&format!("{local}[tag_sets.a]\ntags = [\"x\"]\n"), None).is_ok());
        let c = load_key(
            &format!("{local}[api]\nsite = \"stackoverflow\"\n{API_SET}"),
            None,
        );
        assert_eq!(c.unwrap().api.site.as_deref(), Some("stackoverflow"));
        let (key, line, _) = invalid_key(
            &format!("{local}[api]\nsite = \"stack overflow&x=1\"\n{API_SET}"),
            None,
        );
        assert_eq!((key.as_str(), line), ("api.site", Some(4)));
    }

    #[test]
    fn api_site_must_be_the_site_of_the_base_url() {
        let (key, _, reason) =
            invalid_key(&format!("[api]\nsite = \"serverfault\"\n{API_SET}"), None);
        assert_eq!(key, "api.site");
        assert!(reason.contains("site.base_url"), "{reason}");
        let c = load_key(
            &format!("[site]\nbase_url = \"https://serverfault.com\"\n[api]\nsite = \"serverfault\"\n{API_SET}"),
            None,
        )
        .unwrap();
        assert_eq!(c.api.site.as_deref(), Some("serverfault"));
        assert_eq!(c.site, "serverfault.com");
    }

    #[test]
    fn api_site_names_follow_the_host() {
        for (host, name) in [
            ("stackoverflow.com", Some("stackoverflow")),
            ("www.superuser.com", Some("superuser")),
            ("meta.stackoverflow.com", Some("meta.stackoverflow")),
            ("pt.stackoverflow.com", Some("pt.stackoverflow")),
            ("unix.stackexchange.com", Some("unix")),
            ("mathoverflow.net", Some("mathoverflow.net")),
            ("127.0.0.1", None),
            ("example.com", None),
        ] {
            assert_eq!(api_site_for_host(host).as_deref(), name, "{host}");
        }
    }

    #[test]
    fn api_quota_settings_are_bounded() {
        let (key, line, _) = invalid_key(
            &format!("[api]\ndaily_quota = 10\nstop_at_quota_remaining = 10\n{API_SET}"),
            None,
        );
        assert_eq!(
            (key.as_str(), line),
            ("api.stop_at_quota_remaining", Some(3))
        );
        let (key, _, _) = invalid_key(
            &format!("[api]\nthrottle_violation_pause_secs = 0.0\n{API_SET}"),
            None,
        );
        assert_eq!(key, "api.throttle_violation_pause_secs");
        let (key, _, _) = invalid_key(&format!("[api]\nbase_url = \"ftp://x\"\n{API_SET}"), None);
        assert_eq!(key, "api.base_url");
        let c = load_key(
            &format!("[api]\nbase_url = \"http://127.0.0.1:9/\"\ndaily_quota = 50\nthrottle_violation_pause_secs = 1.5\n{API_SET}"),
            None,
        )
        .unwrap();
        assert_eq!(c.api.base_url, "http://127.0.0.1:9");
        assert_eq!(c.api.daily_quota, 50);
        assert_eq!(c.api.throttle_violation_pause, Duration::from_millis(1500));
    }

    #[test]
    fn example_api_tag_set_is_valid_once_uncommented() {
        let text = include_str!("../config/example.toml");
        let (head, block) = text
            .split_once("# [tag_sets.python-data-api]")
            .expect("the example documents an api tag set");
        // Uncomment the TOML lines of the block, leave the prose comments.
        let block: String = std::iter::once("[tag_sets.python-data-api]")
            .chain(block.lines().map(|l| match l.strip_prefix("# ") {
                Some(toml)
                    if toml.split_once(" = ").is_some_and(|(k, _)| {
                        k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
                {
                    toml
                }
                _ => l,
            }))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = load_key(&format!("{head}{block}"), None).unwrap();
        let set = c.tag_sets.iter().find(|s| s.source == Source::Api).unwrap();
        assert_eq!(set.tags, ["pandas", "dask"]);
        assert_eq!(
            (set.sort, set.pagesize, set.pages),
            (ApiSort::Creation, 100, 10)
        );
        assert_eq!(c.api.site.as_deref(), Some("stackoverflow"));
        assert_eq!(c.api.base_url, api::DEFAULT_API_BASE);
    }

    #[test]
    fn no_tags_anywhere_is_an_error() {
        assert!(matches!(load(""), Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn stackoverflow_api_config_is_valid_and_gentle() {
        let text = include_str!("../config/stackoverflow-api.toml");
        let c = Config::from_toml(text, "config/stackoverflow-api.toml", &Overrides::default())
            .unwrap();
        assert!(c.rate <= 1.0);
        assert_eq!(c.tag_sets[0].tags, ["pandas", "dask"]);
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../config/example.toml");
        let c = Config::from_toml(text, "config/example.toml", &Overrides::default()).unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert!(
            c.rate <= 2.0,
            "the example must be gentle with the real site"
        );
    }
}
