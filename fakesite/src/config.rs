//! The configs the tests and benches build for a [`FakeSite`], and the crawl
//! they run with one.
//!
//! ```no_run
//! # use stackcrawl_fakesite::{config::TestConfig, FakeSite};
//! # let site = FakeSite::builder().tag("a", 100).start();
//! # let dir = tempfile::tempdir().unwrap();
//! let config = TestConfig::new(&site, dir.path())
//!     .fetch("fetchers = 2\nmax_retries = 1")
//!     .tag_set("a", &["a"], 3)
//!     .build();
//! ```
//!
//! Every config names its own budget file inside its directory, so a test
//! never counts against the user's daily budget (the default file is per
//! user) nor against another test's. A test that shares one names it with
//! `.fetch("budget_file = ...")`, inside its own directory too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stackcrawl::config::{Config, Overrides};
use stackcrawl::engine::plan::Plan;
use stackcrawl::model::RunSummary;
use stackcrawl::{crawl, CrawlError, Sink};

use crate::FakeSite;

/// No test crawl may hang: the longest pause any test asks for is seconds.
pub const CRAWL_BOUND: Duration = Duration::from_secs(60);

/// A TOML config for a fake site, built up table by table.
///
/// The defaults: `[site] base_url` and (once asked for) `[api] base_url`
/// point at the site, `[fetch]` has `rate = 30.0`, `retry_base_ms = 20` and
/// `budget_file = "DIR/budget.sqlite"`, and `[output] path` is
/// `DIR/q.jsonl`. A `[fetch]` line naming a key that is already there
/// replaces it, so a test can change any default.
#[derive(Debug, Clone)]
pub struct TestConfig {
    base_url: String,
    dir: PathBuf,
    site: Vec<String>,
    /// `(key, line)` in the order they were first given.
    fetch: Vec<(String, String)>,
    /// Lines of `[api]`, after its `base_url` and `site`; `None`: no table.
    api: Option<Vec<String>>,
    output: PathBuf,
    /// The store's name: a path, or a PostgreSQL URL.
    store: Option<String>,
    /// Lines of `[fleet]`; `None`: no table.
    fleet: Option<Vec<String>>,
    sets: String,
}

impl TestConfig {
    /// A config for `site`, keeping its files in `dir`.
    pub fn new(site: &FakeSite, dir: &Path) -> TestConfig {
        TestConfig::at(&site.base_url(), dir)
    }

    /// A config for whatever answers at `base_url` (a closed port, say).
    pub fn at(base_url: &str, dir: &Path) -> TestConfig {
        TestConfig {
            base_url: base_url.to_string(),
            dir: dir.to_path_buf(),
            site: Vec::new(),
            fetch: Vec::new(),
            api: None,
            output: dir.join("q.jsonl"),
            store: None,
            fleet: None,
            sets: String::new(),
        }
        .fetch(format!(
            "rate = 30.0\nretry_base_ms = 20\nbudget_file = \"{}\"",
            dir.join("budget.sqlite").display()
        ))
    }

    /// What `stackcrawl run` needs: a store (`DIR/store.db`), and a status
    /// line every second.
    pub fn service(site: &FakeSite, dir: &Path) -> TestConfig {
        TestConfig::new(site, dir)
            .fetch("status_every_secs = 1")
            .store()
    }

    /// Adds lines to `[site]`.
    pub fn site(mut self, lines: impl AsRef<str>) -> TestConfig {
        self.site.extend(non_empty_lines(lines.as_ref()));
        self
    }

    /// Adds `key = value` lines to `[fetch]`, replacing any earlier value of
    /// the same key.
    pub fn fetch(mut self, lines: impl AsRef<str>) -> TestConfig {
        for line in non_empty_lines(lines.as_ref()) {
            let key = line
                .split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            match self.fetch.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = line,
                None => self.fetch.push((key, line)),
            }
        }
        self
    }

    /// Writes an `[api]` table pointing at the site (`site =
    /// "stackoverflow"`), with these lines added.
    pub fn api(mut self, lines: impl AsRef<str>) -> TestConfig {
        let table = self.api.get_or_insert_with(Vec::new);
        table.extend(non_empty_lines(lines.as_ref()));
        self
    }

    /// The output file: `name` inside the directory (or an absolute path).
    pub fn output(mut self, name: impl AsRef<Path>) -> TestConfig {
        self.output = self.dir.join(name);
        self
    }

    /// Keeps a store at `DIR/store.db`.
    pub fn store(mut self) -> TestConfig {
        self.store = Some(self.dir.join("store.db").display().to_string());
        self
    }

    /// Keeps the store `name` names (a PostgreSQL URL, say).
    pub fn store_at(mut self, name: &str) -> TestConfig {
        self.store = Some(name.to_string());
        self
    }

    /// Adds lines to `[fleet]`.
    pub fn fleet(mut self, lines: impl AsRef<str>) -> TestConfig {
        let table = self.fleet.get_or_insert_with(Vec::new);
        table.extend(non_empty_lines(lines.as_ref()));
        self
    }

    /// Adds tag sets as TOML text.
    pub fn sets(mut self, text: impl AsRef<str>) -> TestConfig {
        self.sets.push_str(text.as_ref());
        if !self.sets.ends_with('\n') {
            self.sets.push('\n');
        }
        self
    }

    /// An HTML tag set: `[tag_sets.NAME]` with these tags and pages.
    pub fn tag_set(self, name: &str, tags: &[impl AsRef<str>], pages: u32) -> TestConfig {
        self.sets(format!(
            "[tag_sets.{name}]\ntags = [{}]\npages = {pages}\n",
            quoted(tags)
        ))
    }

    /// An API tag set, `[tag_sets.so]`, sorted by creation; it brings the
    /// `[api]` table that points at the site.
    pub fn api_set(self, tags: &[impl AsRef<str>], pagesize: u32, pages: u32) -> TestConfig {
        self.api("").sets(format!(
            "[tag_sets.so]\nsource = \"api\"\ntags = [{}]\nsort = \"creation\"\npagesize = {pagesize}\npages = {pages}\n",
            quoted(tags)
        ))
    }

    /// The config as TOML text.
    pub fn toml(&self) -> String {
        let mut text = format!("[site]\nbase_url = \"{}\"\n", self.base_url);
        for line in &self.site {
            text.push_str(&format!("{line}\n"));
        }
        text.push_str("[fetch]\n");
        for (_, line) in &self.fetch {
            text.push_str(&format!("{line}\n"));
        }
        if let Some(lines) = &self.api {
            text.push_str(&format!(
                "[api]\nbase_url = \"{}\"\nsite = \"stackoverflow\"\n",
                self.base_url
            ));
            for line in lines {
                text.push_str(&format!("{line}\n"));
            }
        }
        text.push_str(&format!("[output]\npath = \"{}\"\n", self.output.display()));
        if let Some(store) = &self.store {
            text.push_str(&format!("[store]\npath = \"{store}\"\n"));
        }
        if let Some(lines) = &self.fleet {
            text.push_str("[fleet]\n");
            for line in lines {
                text.push_str(&format!("{line}\n"));
            }
        }
        text.push_str(&self.sets);
        text
    }

    /// The validated config. No app key: the test runner's environment is
    /// never read.
    pub fn build(&self) -> Config {
        Config::from_toml(&self.toml(), "test", &Overrides::default()).expect("valid test config")
    }

    /// Writes the TOML to `DIR/stackcrawl.toml`, for the binary, and returns
    /// the path. Writing again (for a reload) replaces it.
    pub fn write(&self) -> PathBuf {
        let path = self.dir.join("stackcrawl.toml");
        std::fs::write(&path, self.toml()).expect("write the test config");
        path
    }
}

fn non_empty_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
}

fn quoted(tags: &[impl AsRef<str>]) -> String {
    let tags: Vec<String> = tags.iter().map(|t| format!("\"{}\"", t.as_ref())).collect();
    tags.join(", ")
}

/// Plans and runs a crawl of the config, its records to the configured
/// output, as `stackcrawl crawl` does; bounded by [`CRAWL_BOUND`].
pub async fn crawl_site(config: Config) -> Result<RunSummary, CrawlError> {
    let plan = Plan::from_config(&config);
    let sink = Sink::create(&config.output, config.output_format).expect("output");
    tokio::time::timeout(
        CRAWL_BOUND,
        crawl(config, plan, sink, None, std::future::pending()),
    )
    .await
    .expect("the crawl ends in bounded time")
}

/// The requests a budget file has counted, over all days.
pub fn budget_used(path: &Path) -> u64 {
    let conn = rusqlite::Connection::open(path).expect("budget file");
    conn.query_row("SELECT COALESCE(SUM(used), 0) FROM requests", [], |r| {
        r.get::<_, i64>(0)
    })
    .expect("budget query") as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TestConfig {
        TestConfig::at("http://127.0.0.1:9", Path::new("/tmp/t")).tag_set("a", &["a"], 1)
    }

    #[test]
    fn the_budget_file_is_always_in_the_configs_directory() {
        let c = config().fetch("fetchers = 2").build();
        assert_eq!(c.budget_file, Path::new("/tmp/t/budget.sqlite"));
        let shared = config()
            .fetch("budget_file = \"/tmp/t/shared.sqlite\"")
            .build();
        assert_eq!(shared.budget_file, Path::new("/tmp/t/shared.sqlite"));
    }

    #[test]
    fn a_fetch_key_given_again_replaces_the_default() {
        let text = config()
            .fetch("rate = 10.0\nburst = 3")
            .fetch("burst = 4")
            .toml();
        assert_eq!(text.matches("rate = ").count(), 1, "{text}");
        assert!(text.contains("rate = 10.0\n"), "{text}");
        assert!(text.contains("burst = 4\n") && !text.contains("burst = 3"));
        let c = config().fetch("rate = 10.0").build();
        assert_eq!(c.rate, 10.0);
    }

    #[test]
    fn tables_come_out_in_order_and_valid() {
        let c = TestConfig::at("http://127.0.0.1:9", Path::new("/tmp/t"))
            .site("obey_robots = false")
            .store()
            .api("throttle_violation_pause_secs = 1.5")
            .tag_set("web", &["c++", "c#"], 2)
            .api_set(&["rust"], 100, 3)
            .output("out.jsonl");
        let text = c.toml();
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s}: {text}"));
        assert!(at("[site]") < at("obey_robots") && at("obey_robots") < at("[fetch]"));
        assert!(at("[fetch]") < at("[api]") && at("[api]") < at("[output]"));
        assert_eq!(text.matches("[api]").count(), 1, "{text}");
        assert!(text.contains("path = \"/tmp/t/out.jsonl\""));
        assert!(text.contains("path = \"/tmp/t/store.db\""));
        assert!(text.contains("tags = [\"c++\", \"c#\"]\npages = 2\n"));
        c.build();
    }
}
