//! The plan: every page a crawl would fetch, built from the config without
//! fetching anything (like `dask.delayed`), and the `PageJob` each becomes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::config::{Config, Order, Source, TagSet};
use crate::model::FailedPage;
use crate::source::cdx::{self, Capture};
/// A page to fetch is its source's to build; the plan lists them.
pub use crate::source::PageJob;

/// The pages of one run, in the order they are handed out: page 1 of every
/// tag first, so each tag learns early whether it runs out.
///
/// A plan is a list of (tag lane, page) pairs, 8 bytes a page: its jobs
/// are built one at a time as they are submitted, so a 50,000-page pass
/// does not hold 50,000 URLs and contexts.
#[derive(Debug, Clone)]
pub struct Plan {
    config: Arc<Config>,
    lanes: Vec<PlanLane>,
    /// (index into `lanes`, page), in plan order.
    pages: Vec<(u32, u32)>,
    /// Every page waits for the one before it (an incremental pass).
    after_previous: bool,
    /// The captures an archive lane's pages fetch, by (lane, page): known
    /// once its index was asked ([`Plan::add_captures`]).
    captures: HashMap<(u32, u32), Capture>,
    /// The plan's archive lanes are listed by their index before the pass
    /// (a plan from the config); a plan from a failures file holds its
    /// captures already.
    asks_index: bool,
}

/// A tag as the plan pages it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PlanLane {
    tag: String,
    order: Order,
    pagesize: u32,
}

/// One page of a plan, without its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanPage<'a> {
    pub tag: &'a str,
    /// The tab or API sort, as `PageContext.tab` records it.
    pub tab: &'static str,
    pub page: u32,
    pub source: Source,
}

impl Plan {
    pub fn from_config(config: &Config) -> Plan {
        Plan::from_tag_sets(config, &config.tag_sets)
    }

    /// The pages of some of the config's tag sets (`run` plans one at a time).
    pub fn from_tag_sets(config: &Config, sets: &[TagSet]) -> Plan {
        // Two tag sets naming the same tag, order and page size would fetch
        // the same pages twice; the larger page count wins.
        let mut lanes: Vec<PlanLane> = Vec::new();
        let mut last_page: Vec<u32> = Vec::new();
        for set in sets {
            for tag in &set.tags {
                let lane = PlanLane {
                    tag: tag.clone(),
                    order: set.order,
                    pagesize: set.pagesize,
                };
                // An index lists these pages; they join the plan then.
                let pages = if set.source().pages_from_index() {
                    0
                } else {
                    set.pages
                };
                match lanes.iter().position(|l| *l == lane) {
                    Some(i) => last_page[i] = last_page[i].max(pages),
                    None => {
                        lanes.push(lane);
                        last_page.push(pages);
                    }
                }
            }
        }
        // The same tag and order at another page size lists the same
        // questions: a page number an earlier lane plans is not planned again.
        let first_page: Vec<u32> = (0..lanes.len())
            .map(|i| {
                let earlier = (0..i)
                    .filter(|&j| lanes[j].tag == lanes[i].tag && lanes[j].order == lanes[i].order);
                earlier.map(|j| last_page[j] + 1).max().unwrap_or(1)
            })
            .collect();
        let max_pages = last_page.iter().copied().max().unwrap_or(0);
        let mut pages = Vec::new();
        for page in 1..=max_pages {
            for (i, &last) in last_page.iter().enumerate() {
                if (first_page[i]..=last).contains(&page) {
                    pages.push((i as u32, page));
                }
            }
        }
        Plan {
            config: Arc::new(config.clone()),
            lanes,
            pages,
            after_previous: false,
            captures: HashMap::new(),
            asks_index: true,
        }
    }

    /// The (tag, order) of every lane whose pages an index lists.
    pub fn index_lanes(&self) -> Vec<(String, Order)> {
        self.lanes
            .iter()
            .filter(|l| self.asks_index && l.order.source().pages_from_index())
            .map(|l| (l.tag.clone(), l.order))
            .collect()
    }

    /// Adds the captures an index listed for `tag` in `order`, one page
    /// each, after the plan's other pages.
    pub fn add_captures(&mut self, tag: &str, order: Order, captures: Vec<Capture>) {
        let Some(lane) = self
            .lanes
            .iter()
            .position(|l| l.tag == tag && l.order == order)
        else {
            return;
        };
        for c in captures {
            let key = (lane as u32, c.page());
            if self.captures.insert(key, c).is_none() {
                self.pages.push(key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The plan's jobs in order, each built as it is taken.
    pub fn jobs(&self) -> impl ExactSizeIterator<Item = PageJob> + '_ {
        self.pages.iter().map(|&(lane, page)| self.job(lane, page))
    }

    /// The plan's pages in order, without building their jobs.
    pub fn pages(&self) -> impl ExactSizeIterator<Item = PlanPage<'_>> + '_ {
        self.pages
            .iter()
            .map(|&(lane, page)| plan_page(&self.lanes, lane, page))
    }

    /// How many pages each tag has in the plan.
    pub fn pages_per_tag(&self) -> BTreeMap<String, u64> {
        let mut per_tag: BTreeMap<String, u64> = BTreeMap::new();
        for p in self.pages() {
            match per_tag.get_mut(p.tag) {
                Some(n) => *n += 1,
                None => {
                    per_tag.insert(p.tag.to_string(), 1);
                }
            }
        }
        per_tag
    }

    /// Keeps only the pages `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(PlanPage<'_>) -> bool) {
        let lanes = &self.lanes;
        self.pages
            .retain(|&(lane, page)| keep(plan_page(lanes, lane, page)));
    }

    /// Every page goes out only once the page before it of its tag came
    /// back (an incremental pass: page N+1 is worth a request only if page
    /// N showed new or changed questions).
    pub fn wait_for_previous(&mut self) {
        self.after_previous = true;
    }

    /// Where a process of a fleet begins its walk of a pass (issue 20 §1):
    /// every process walks the same plan, and from the same first page they
    /// would all ask for the same next page at once, the losers parking it
    /// and asking again later. A stable hash of the process's name turns
    /// the plan's listing pages past page 1 so that each starts elsewhere;
    /// they meet only where one runs into pages another has done, which a
    /// claim answers at once. Page 1 of every tag stays first (each tag
    /// still learns early whether it runs out), and pages that wait for the
    /// one before them (API pages, an incremental pass) keep their places.
    pub fn start_at(&mut self, name: &str) {
        if self.after_previous {
            return;
        }
        let lanes = &self.lanes;
        let movable: Vec<usize> = (0..self.pages.len())
            .filter(|&i| {
                let (lane, page) = self.pages[i];
                page > 1 && matches!(lanes[lane as usize].order.source(), Source::Html)
            })
            .collect();
        if movable.len() < 2 {
            return;
        }
        let by = (fnv1a(name.as_bytes()) % movable.len() as u64) as usize;
        let turned: Vec<(u32, u32)> = (0..movable.len())
            .map(|k| self.pages[movable[(k + by) % movable.len()]])
            .collect();
        for (&i, page) in movable.iter().zip(turned) {
            self.pages[i] = page;
        }
    }

    fn job(&self, lane: u32, page: u32) -> PageJob {
        let l = &self.lanes[lane as usize];
        let mut job = match (l.order, self.captures.get(&(lane, page))) {
            (Order::Archive(archive), Some(c)) => {
                PageJob::capture(&self.config, archive, &l.tag, c)
            }
            _ => PageJob::of(&self.config, l.order, &l.tag, page, l.pagesize),
        };
        job.after_previous |= self.after_previous;
        job
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's
/// hasher, so one name starts one place whichever binary runs it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn plan_page(lanes: &[PlanLane], lane: u32, page: u32) -> PlanPage<'_> {
    let l = &lanes[lane as usize];
    PlanPage {
        tag: &l.tag,
        tab: l.order.as_str(),
        page,
        source: l.order.source(),
    }
}

/// Why a failures file could not be written or read back into a plan.
#[derive(Debug, Error)]
pub enum PlanError {
    #[error("cannot write the failures file {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// An entry that is not JSON, or names a page the plan would not build.
    #[error("{} line {line}: {reason}", path.display())]
    Entry {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Writes the failures file, or removes a stale one when nothing failed, so
/// the file always lists exactly the pages the last run lost.
pub fn write_failures(path: &Path, pages: &[FailedPage]) -> Result<(), PlanError> {
    let failed = |source| PlanError::Write {
        path: path.to_path_buf(),
        source,
    };
    if pages.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        };
    }
    let mut text = String::new();
    for p in pages {
        text.push_str(&serde_json::to_string(p).map_err(|e| failed(e.into()))?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(failed)
}

impl Plan {
    /// The pages listed in a failures file, to fetch again. Each entry is
    /// checked as strictly as the config (tag, tab or sort, page, page
    /// size) and its URL must be exactly the one the plan builds for them
    /// on the configured site: an edited or foreign file can neither send
    /// requests elsewhere nor smuggle a path into a tag.
    pub fn from_failures(path: &Path, config: &Config) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut lanes: Vec<PlanLane> = Vec::new();
        let mut index: HashMap<PlanLane, u32> = HashMap::new();
        let mut pages = Vec::new();
        let mut captures = HashMap::new();
        // A page listed twice (the file appended to by two runs) is one
        // job: two would be fetched twice, or wait for each other.
        let mut seen = HashSet::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let at = |reason: String| PlanError::Entry {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            let f: FailedPage = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
            // An archive index that could not be read is asked again by
            // the tag set's next pass; it is no page to fetch.
            if f.kind == KIND_INDEX {
                continue;
            }
            let mut captured = None;
            let (lane, page) = failed_page(&f, config, &mut captured).map_err(at)?;
            let n = *index.entry(lane.clone()).or_insert_with(|| {
                lanes.push(lane);
                lanes.len() as u32 - 1
            });
            if !seen.insert((n, page)) {
                continue;
            }
            pages.push((n, page));
            if let Some((page, c)) = captured {
                captures.insert((n, page), c);
            }
        }
        // Jobs are submitted a window at a time, and a page that waits for
        // the one before it only waits for a page already submitted: each
        // tag's pages go in ascending order, as a plan built from a config
        // does.
        pages.sort_by_key(|&(_, page)| page);
        Ok(Plan {
            config: Arc::new(config.clone()),
            lanes,
            pages,
            after_previous: false,
            captures,
            asks_index: false,
        })
    }
}

/// The failures-file kind of an archive index that could not be read.
pub const KIND_INDEX: &str = "index";

/// Rebuilds a failures-file entry's page from its validated fields.
fn failed_page(
    f: &FailedPage,
    config: &Config,
    captured: &mut Option<(u32, Capture)>,
) -> Result<(PlanLane, u32), String> {
    let ctx = &f.ctx;
    let tag = crate::config::check_tag(&ctx.tag)?;
    if tag != ctx.tag {
        return Err(format!(
            "tag `{}` is not written as a tag (`{tag}`)",
            ctx.tag
        ));
    }
    if ctx.page == 0 {
        return Err("page 0: pages start at 1".into());
    }
    let url = reqwest::Url::parse(&f.url).map_err(|e| format!("`{}` is not a URL: {e}", f.url))?;
    let source = Source::of_url(config, &f.url);
    // A capture's page is its capture time, its URL names it whole.
    let capture = match source.order_named(&ctx.tab, 0) {
        Ok(Order::Archive(archive)) => Some((
            archive,
            cdx::capture_of_url(&config.archive, archive, &f.url, ctx.page)
                .ok_or_else(|| format!("{} is not a capture's URL", f.url))?,
        )),
        _ => None,
    };
    let (order, pagesize, job) = match capture {
        Some((archive, c)) => {
            let job = PageJob::capture(config, archive, &tag, &c);
            let page = (job.ctx.page, c);
            *captured = Some(page);
            (Order::Archive(archive), 0, job)
        }
        None => {
            let pagesize: u32 = url
                .query_pairs()
                .find(|(k, _)| k == "pagesize")
                .and_then(|(_, v)| v.parse().ok())
                .ok_or_else(|| format!("{} has no pagesize", f.url))?;
            let order = source.order_named(&ctx.tab, pagesize)?;
            (
                order,
                pagesize,
                PageJob::of(config, order, &tag, ctx.page, pagesize),
            )
        }
    };
    if job.url != f.url {
        return Err(format!(
            "{} is not the URL of tag {tag} {} page {} on {}: expected {}",
            f.url, ctx.tab, ctx.page, config.base_url, job.url
        ));
    }
    let lane = PlanLane {
        tag,
        order,
        pagesize,
    };
    Ok((lane, ctx.page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::archive::parse_timestamp;
    use crate::config::ApiSort;
    use crate::config::Overrides;
    use crate::model::{Archive, PageContext};

    /// A config whose one tag set reads [rust] from `source`, and a
    /// directory for its failures file.
    fn rust_set(source: &str) -> (tempfile::TempDir, Config) {
        let text = format!("[tag_sets.a]\nsource = \"{source}\"\ntags = [\"rust\"]\n");
        let c = Config::from_toml(&text, "t", &Overrides::default()).unwrap();
        (tempfile::tempdir().unwrap(), c)
    }

    #[test]
    fn failed_api_pages_are_fetched_again_as_api_pages() {
        let (dir, c) = rust_set("api");
        let path = dir.path().join("failed.jsonl");
        let job = PageJob::api(&c, "rust", ApiSort::Creation, 3, 100);
        let line = FailedPage {
            ctx: job.ctx.clone(),
            url: job.url.clone(),
            attempts: 5,
            kind: "internal_error".into(),
            error: "API error 500".into(),
        };
        write_failures(&path, &[line]).unwrap();
        let plan = Plan::from_failures(&path, &c).unwrap();
        assert_eq!(plan.jobs().collect::<Vec<_>>(), [job]);
    }

    #[test]
    fn a_page_listed_twice_in_a_failures_file_is_one_job() {
        let (dir, c) = rust_set("api");
        let path = dir.path().join("failed.jsonl");
        let line = |page| {
            let job = PageJob::api(&c, "rust", ApiSort::Creation, page, 100);
            FailedPage {
                ctx: job.ctx.clone(),
                url: job.url.clone(),
                attempts: 5,
                kind: "internal_error".into(),
                error: "API error 500".into(),
            }
        };
        write_failures(&path, &[line(3), line(2), line(3)]).unwrap();
        let plan = Plan::from_failures(&path, &c).unwrap();
        let pages: Vec<u32> = plan.jobs().map(|j| j.ctx.page).collect();
        assert_eq!(pages, [2, 3]);
    }

    #[test]
    fn failed_captures_are_fetched_again_and_a_foreign_one_is_refused() {
        let (dir, c) = rust_set("wayback");
        let path = dir.path().join("failed.jsonl");
        let capture = Capture {
            at: parse_timestamp("20190301123456").unwrap(),
            original: "https://stackoverflow.com/questions/tagged/rust?tab=votes".into(),
            warc: None,
        };
        let job = PageJob::capture(&c, Archive::Wayback, "rust", &capture);
        let entry = |url: &str, kind: &str| FailedPage {
            ctx: job.ctx.clone(),
            url: url.to_string(),
            attempts: 1,
            kind: kind.into(),
            error: "HTTP 404".into(),
        };
        write_failures(
            &path,
            &[
                entry(&job.url, "status"),
                entry("https://web.archive.org/cdx/search/cdx?url=x", KIND_INDEX),
            ],
        )
        .unwrap();
        let plan = Plan::from_failures(&path, &c).unwrap();
        assert_eq!(
            plan.jobs().collect::<Vec<_>>(),
            std::slice::from_ref(&job),
            "the index entry is the next pass's"
        );
        assert!(plan.index_lanes().is_empty(), "a retry asks no index");
        let elsewhere = job.url.replace("20190301123456", "20190301123457");
        write_failures(&path, &[entry(&elsewhere, "status")]).unwrap();
        assert!(matches!(
            Plan::from_failures(&path, &c),
            Err(PlanError::Entry { .. })
        ));
    }

    fn retry_plan(entries: &[FailedPage]) -> Result<Plan, PlanError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("failed.jsonl");
        write_failures(&path, entries).unwrap();
        let c = Config::from_toml(
            "[site]\nbase_url = \"http://127.0.0.1:8080\"\n",
            "t",
            &Overrides {
                pages_from_file: true,
                ..Overrides::default()
            },
        )
        .unwrap();
        Plan::from_failures(&path, &c)
    }

    fn listing_entry(tag: &str, tab: &str, page: u32, url: &str) -> FailedPage {
        FailedPage {
            ctx: PageContext {
                site: "127.0.0.1".into(),
                base_url: "http://127.0.0.1:8080".into(),
                tag: tag.into(),
                tab: tab.into(),
                page,
            },
            url: url.into(),
            attempts: 5,
            kind: "server_error".into(),
            error: "HTTP 500".into(),
        }
    }

    #[test]
    fn a_failures_file_line_is_flat_json_without_the_site_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("failed.jsonl");
        let url = "http://127.0.0.1:8080/questions/tagged/c%23?tab=Votes&page=3&pagesize=30";
        let entry = listing_entry("c#", "Votes", 3, url);
        write_failures(&path, std::slice::from_ref(&entry)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"tag\":\"c#\",\"tab\":\"Votes\",\"page\":3,\"url\":\"{url}\",\
                 \"attempts\":5,\"kind\":\"server_error\",\"error\":\"HTTP 500\"}}\n"
            )
        );
        let back: FailedPage = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(back, entry, "the site fields come back from the URL");
    }

    #[test]
    fn a_failures_file_entry_is_rebuilt_from_its_checked_fields() {
        let url = "http://127.0.0.1:8080/questions/tagged/c%23?tab=Votes&page=3&pagesize=30";
        let plan = retry_plan(&[listing_entry("c#", "Votes", 3, url)]).unwrap();
        let jobs: Vec<_> = plan.jobs().collect();
        assert_eq!(jobs.len(), 1);
        let job = &jobs[0];
        assert_eq!(job.url, url);
        assert_eq!(
            (job.ctx.tag.as_str(), job.ctx.tab.as_str(), job.ctx.page),
            ("c#", "Votes", 3)
        );
        assert!(
            job.source.obeys_robots() && !job.after_previous,
            "a listing page, fetched as any other"
        );
    }

    #[test]
    fn a_failures_file_entry_is_checked_as_strictly_as_the_config() {
        let base = "http://127.0.0.1:8080";
        let cases = [
            // A tag that changes the path, with the URL it would make.
            (
                listing_entry(
                    "../admin",
                    "Newest",
                    1,
                    &format!("{base}/questions/admin?tab=Newest&page=1&pagesize=50"),
                ),
                "../admin",
            ),
            (
                listing_entry(
                    "a",
                    "Bogus",
                    1,
                    &format!("{base}/questions/tagged/a?tab=Bogus&page=1&pagesize=50"),
                ),
                "tab `Bogus`",
            ),
            (
                listing_entry(
                    "a",
                    "Newest",
                    0,
                    &format!("{base}/questions/tagged/a?tab=Newest&page=0&pagesize=50"),
                ),
                "page 0",
            ),
            (
                listing_entry(
                    "a",
                    "Newest",
                    1,
                    &format!("{base}/questions/tagged/a?tab=Newest&page=1&pagesize=7"),
                ),
                "pagesize 7",
            ),
            // Fields and URL that disagree: the URL is not trusted.
            (
                listing_entry(
                    "a",
                    "Newest",
                    2,
                    &format!("{base}/admin/questions/tagged/a?tab=Newest&page=2&pagesize=50"),
                ),
                "expected http://127.0.0.1:8080/questions/tagged/a?tab=Newest&page=2&pagesize=50",
            ),
            (
                listing_entry(
                    "a",
                    "Newest",
                    1,
                    "http://192.0.2.1/questions/tagged/a?tab=Newest&page=1&pagesize=50",
                ),
                "is not the URL",
            ),
        ];
        for (entry, why) in cases {
            let err = retry_plan(std::slice::from_ref(&entry)).expect_err(why);
            assert!(
                matches!(&err, PlanError::Entry { line: 1, reason, .. } if reason.contains(why)),
                "{entry:?}: {err}"
            );
            assert!(err.to_string().contains("failed.jsonl line 1"), "{err}");
        }
    }

    #[test]
    fn plan_interleaves_tags_and_merges_duplicate_sets() {
        let text = r#"
[tag_sets.a]
tags = ["rust", "c#"]
pages = 2
[tag_sets.b]
tags = ["rust"]
pages = 3
"#;
        let c = Config::from_toml(text, "t", &Overrides::default()).unwrap();
        let plan = Plan::from_config(&c);
        let got: Vec<_> = plan.pages().map(|p| (p.tag, p.page)).collect();
        assert_eq!(
            got,
            [("rust", 1), ("c#", 1), ("rust", 2), ("c#", 2), ("rust", 3)]
        );
        assert_eq!(
            plan.jobs().nth(1).unwrap().url,
            "https://stackoverflow.com/questions/tagged/c%23?tab=Newest&page=1&pagesize=50"
        );
    }

    /// Issue 20 §1: fleet members start their walks at different pages,
    /// each one the same wherever it runs, without moving page 1 of a tag
    /// or any page that waits for the one before it.
    #[test]
    fn a_fleet_member_starts_where_its_name_says_and_paging_rules_hold() {
        let text = r#"
[tag_sets.html]
tags = ["rust", "go"]
pages = 20
[tag_sets.api]
source = "api"
tags = ["python"]
pages = 20
"#;
        let c = Config::from_toml(text, "t", &Overrides::default()).unwrap();
        let plan = Plan::from_config(&c);
        let walk = |p: &Plan| -> Vec<(String, u32)> {
            p.pages().map(|p| (p.tag.to_string(), p.page)).collect()
        };
        let before = walk(&plan);
        let member = |name: &str| {
            let mut p = plan.clone();
            p.start_at(name);
            walk(&p)
        };
        let starts: HashMap<Vec<(String, u32)>, ()> =
            (0..5).map(|i| (member(&format!("w{i}")), ())).collect();
        assert_eq!(starts.len(), 5, "five names, five starting points");
        assert_eq!(member("w3"), member("w3"));

        let a = member("w3");
        let mut sorted = a.clone();
        sorted.sort();
        let mut all = before.clone();
        all.sort();
        assert_eq!(sorted, all, "the same pages, once each");
        for (i, (tag, page)) in before.iter().enumerate() {
            if *page == 1 || tag == "python" {
                assert_eq!(&a[i], &before[i], "{tag} page {page} kept its place");
            }
        }
        // The moved pages are the plan's own order, turned.
        let moved = |w: &[(String, u32)]| -> Vec<(String, u32)> {
            w.iter()
                .filter(|(t, p)| *p > 1 && t != "python")
                .cloned()
                .collect()
        };
        let (was, now) = (moved(&before), moved(&a));
        let by = was.iter().position(|p| *p == now[0]).unwrap();
        assert!(by > 0);
        assert_eq!([&was[by..], &was[..by]].concat(), now);

        let mut incremental = plan.clone();
        incremental.wait_for_previous();
        incremental.start_at("w3");
        assert_eq!(
            walk(&incremental),
            before,
            "an incremental pass keeps its order"
        );
    }
}
