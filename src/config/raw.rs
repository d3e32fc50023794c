//! The config file as written: serde structs that mirror the TOML tables,
//! every field optional and spanned, unknown keys refused.
//!
//! Kept apart from validation so that the file format can be read (and its
//! line numbers recovered) without knowing any of the ranges or defaults,
//! and so that tests and embedders can build a `RawConfig` by hand.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, API_KEY_ENV};

/// The file as written. Every field optional so that defaults live in one
/// place (`validate`) and command-line flags can fill gaps.
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
    #[serde(default)]
    pub status: RawStatus,
    #[serde(default)]
    pub fleet: RawFleet,
    #[serde(default)]
    pub archive: super::archive::RawArchive,
}

/// `[status]`: the optional live status page, JSON and metrics.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatus {
    pub addr: Option<Spanned<String>>,
    pub allow_remote: Option<bool>,
}

/// `[fleet]`: how this process takes part in a fleet sharing one
/// PostgreSQL store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    pub name: Option<Spanned<String>>,
    pub lease_secs: Option<Spanned<f64>>,
    pub local_address: Option<Spanned<String>>,
    pub shared_quota: Option<Spanned<String>>,
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
    pub give_up_secs: Option<Spanned<i64>>,
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
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub collapse: Option<Spanned<String>>,
    pub crawl: Option<Spanned<super::archive::RawCrawls>>,
}

/// Parses TOML text; `origin` names it in errors.
pub(super) fn parse(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
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
    })
}
