//! Validation: turns a `RawConfig` plus command-line overrides into a
//! `Config`, applying defaults and checking every range, tag and URL.
//!
//! It runs before anything is fetched, and every error names the key and,
//! where the value came from the file, its line (recovered from the spans
//! the raw structs keep).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::api::{self, ApiSort};
use super::archive::DEFAULT_CAPTURES_PER_PASS;
use super::raw::{RawApi, RawConfig, RawFleet, RawTagSet};
use super::{
    ApiKey, ApiSettings, Config, ConfigError, Environment, FleetSettings, LineRef, Order,
    OutputFormat, Overrides, Source, Tab, TagSet, API_KEY_ENV, DEFAULT_BASE_URL,
    DEFAULT_USER_AGENT, MAX_RATE_PER_SEC,
};
use crate::model::Archive;
use crate::store::StoreLocation;

mod api_table;
mod archive_table;
pub use api_table::api_site_for_host;

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
/// How long the store or the budget may not answer before the crawl stops:
/// long enough for a PostgreSQL failover or a backup holding the budget file.
const DEFAULT_GIVE_UP_SECS: i64 = 300;
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
/// Long enough for a page's retries on a slow day, short enough that a
/// dead process's pages are taken over within a minute.
const DEFAULT_LEASE_SECS: f64 = 60.0;

/// Validates a parsed file against its text (for line numbers) and the
/// command-line overrides; `env` holds what the caller took from the
/// process.
pub(super) fn validate(
    raw: RawConfig,
    text: &str,
    origin: &str,
    ov: &Overrides,
    env: &Environment,
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
    // One policy for every part that waits on the store or the budget.
    let give_up = v.int(
        "store.give_up_secs",
        "",
        None,
        &raw.store.give_up_secs,
        DEFAULT_GIVE_UP_SECS,
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
        Some(e) if e.eq_ignore_ascii_case("parquet") => OutputFormat::Parquet,
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
                format!(
                    "`{}` must end in .jsonl, .csv or .parquet",
                    output.display()
                ),
            ));
        }
    };

    let tag_sets = v.tag_sets(&raw.tag_sets, ov)?;
    let store = StoreLocation::parse(raw.store.path.as_deref().unwrap_or(DEFAULT_STORE))
        .map_err(|e| v.err("store.path", None, e.to_string()))?;
    let uses_api = tag_sets.iter().any(|s| s.source() == Source::Api);
    let api = v.api(&raw.api, &site, env.api_key.as_deref(), uses_api)?;
    let failures_path = match &raw.output.failures {
        Some(p) => PathBuf::from(p),
        None => output.with_extension("failed.jsonl"),
    };
    let budget_file = match &f.budget_file {
        Some(p) => PathBuf::from(p),
        None => default_budget_file(env.state_dir.as_deref()),
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
        output_named: ov.output.is_some() || raw.output.path.is_some(),
        output,
        output_format,
        failures_path,
        tag_sets,
        obey_robots: raw.site.obey_robots.unwrap_or(true),
        robots_unreachable_allows,
        daily_budget: daily_budget as u64,
        budget_file,
        status_every: Duration::from_secs(status_every as u64),
        store_give_up: Duration::from_secs(give_up as u64),
        block_pause,
        fleet: v.fleet(&raw.fleet, &store)?,
        store,
        api,
        status_addr: v.status_addr(&raw.status, ov)?,
        archive: v.archive(&raw.archive)?,
    })
}

/// One budget per user and machine, wherever the crawl writes its output:
/// the quota it stands for belongs to the IP (and the API key), not to a
/// directory. So it lives in the user's state directory; only without one
/// does it fall back to the current directory.
fn default_budget_file(state_dir: Option<&Path>) -> PathBuf {
    state_dir.map_or_else(
        || PathBuf::from(".stackcrawl-budget.sqlite"),
        |d| d.join(BUDGET_FILE_NAME),
    )
}

fn host_of(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
}

/// Stack Exchange tag names: letters and digits of any script (`日本語`,
/// `javascript-функции`, `programação`) and `+ # - . _`, at most 35
/// characters. Anything that could change the request's path or query is
/// refused: `/`, `?`, `%`, `&`, `=`, `..`, whitespace and control characters
/// (and every other symbol, which no site's tags use).
pub(crate) fn check_tag(tag: &str) -> Result<String, String> {
    let t = tag.trim().to_lowercase();
    if t.is_empty() {
        return Err("a tag is empty".into());
    }
    if t.chars().count() > 35 {
        return Err(format!("tag `{t}` is longer than 35 characters"));
    }
    if t.chars().all(|c| c == '.') || t.contains("..") {
        return Err(format!(
            "tag `{t}` is not a tag name (`..` could change the URL path)"
        ));
    }
    if let Some(bad) = t
        .chars()
        .find(|c| !(c.is_alphanumeric() || "+#-._".contains(*c)))
    {
        return Err(format!(
            "tag `{t}` contains {bad:?}; tags use only letters and digits (of any script) and + # - . _"
        ));
    }
    Ok(t)
}

/// `localhost` is the one host name taken: anything else must be an IP
/// address, so what the page is exposed to is never a DNS lookup's answer.
fn parse_status_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    let literal = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_string(),
    };
    literal
        .parse()
        .map_err(|_| format!("`{text}` is not HOST:PORT with an IP address (e.g. 127.0.0.1:9898)"))
}

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Validator<'_> {
    /// The status page's address: the flag wins over the file. A
    /// non-loopback address is refused unless the file says
    /// `allow_remote = true`, since anyone who reaches the page sees it.
    fn status_addr(
        &self,
        raw: &super::raw::RawStatus,
        ov: &Overrides,
    ) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let (text, key, at) = match (&ov.status_addr, &raw.addr) {
            (Some(a), _) => (a.as_str(), "--status-addr", None),
            (None, Some(a)) => (a.get_ref().as_str(), "status.addr", Some(a.span().start)),
            (None, None) => return Ok(None),
        };
        let addr = parse_status_addr(text).map_err(|why| self.err(key, at, why))?;
        if !addr.ip().is_loopback() && raw.allow_remote != Some(true) {
            return Err(self.err(
                key,
                at,
                format!(
                    "{addr} is reachable from other machines and the status page has no authentication; use a loopback address (127.0.0.1), or set `allow_remote = true` under [status] to expose it deliberately"
                ),
            ));
        }
        Ok(Some(addr))
    }

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

    fn fleet(&self, raw: &RawFleet, store: &StoreLocation) -> Result<FleetSettings, ConfigError> {
        let name = match &raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(self.err("fleet.name", Some(n.span().start), "must not be empty"))
            }
            Some(n) => n.get_ref().trim().to_string(),
            None => FleetSettings::default_name(),
        };
        let local_address = raw
            .local_address
            .as_ref()
            .map(|a| {
                a.get_ref().trim().parse::<std::net::IpAddr>().map_err(|e| {
                    self.err(
                        "fleet.local_address",
                        Some(a.span().start),
                        format!("not an IP address ({e}): {:?}", a.get_ref()),
                    )
                })
            })
            .transpose()?;
        let shared_quota =
            match &raw.shared_quota {
                Some(q) if !matches!(store, StoreLocation::Postgres(_)) => return Err(self.err(
                    "fleet.shared_quota",
                    Some(q.span().start),
                    "a shared quota is kept in PostgreSQL: [store] path must be a postgres:// URL",
                )),
                Some(q) if q.get_ref().trim().is_empty() => {
                    return Err(self.err(
                        "fleet.shared_quota",
                        Some(q.span().start),
                        "must not be empty",
                    ))
                }
                Some(q) => Some(q.get_ref().trim().to_string()),
                None => None,
            };
        Ok(FleetSettings {
            shared_quota,
            name,
            lease: self.secs("fleet.lease_secs", &raw.lease_secs, DEFAULT_LEASE_SECS)?,
            local_address,
        })
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
                "wayback" => Source::Wayback,
                "commoncrawl" => Source::CommonCrawl,
                other => {
                    return Err(self.err(
                        &format!("{prefix}.source"),
                        Some(s.span().start),
                        format!(
                        "must be \"html\", \"api\", \"wayback\" or \"commoncrawl\", got `{other}`"
                    ),
                    ))
                }
            },
        };
        let (order, pagesize) = match source {
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
                (Order::Listing(tab), pagesize)
            }
            Source::Api => self.api_listing(&prefix, raw, ov)?,
            Source::Wayback => (Order::Archive(Archive::Wayback), 0),
            Source::CommonCrawl => (Order::Archive(Archive::CommonCrawl), 0),
        };
        let archive = self.archive_query(&prefix, source, raw)?;
        let pages = self.int(
            &format!("{prefix}.pages"),
            "--pages",
            ov.pages,
            &raw.pages,
            // An archive tag set's `pages` caps its captures per tag and pass.
            if archive.is_some() {
                DEFAULT_CAPTURES_PER_PASS
            } else {
                DEFAULT_PAGES
            },
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
            order,
            pagesize: pagesize as u32,
            pages: pages as u32,
            every,
            archive,
        })
    }
}

fn bad_tab(t: &str) -> String {
    let names: Vec<_> = Tab::ALL.iter().map(|t| t.as_str()).collect();
    format!("unknown tab `{t}`; one of {}", names.join(", "))
}
