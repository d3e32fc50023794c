//! The evolving site both simulations crawl, and the truth they check the
//! store against: its tag sets, how it changes between two passes of a
//! set, and which questions a pass had to read.
//!
//! Every change is drawn from the caller's seeded generator, so a seed
//! replays the same site history.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::api::ApiFault;
use crate::{FakeQuestion, FakeSite, Fault};

/// One tag set of the simulated config.
pub(crate) struct Set {
    pub name: &'static str,
    pub api: bool,
    pub tags: &'static [&'static str],
    pub pages: usize,
    pub pagesize: usize,
}

pub(crate) const SETS: [Set; 2] = [
    Set {
        name: "web",
        api: false,
        tags: &["alpha", "beta", "gamma"],
        pages: 4,
        pagesize: 15,
    },
    Set {
        name: "api",
        api: true,
        tags: &["delta", "eps"],
        pages: 3,
        pagesize: 20,
    },
];

/// The tag that never gets a new question, and may be deleted down to none.
const DRY_TAG: &str = "gamma";

/// The figures the store keeps and compares to decide "changed".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Figures {
    pub votes: i64,
    pub answers: u64,
    pub views: u64,
    pub accepted: bool,
    /// The listing shows it closed (`[closed]` after the title).
    pub closed: bool,
}

impl From<&FakeQuestion> for Figures {
    fn from(q: &FakeQuestion) -> Self {
        Figures {
            votes: q.votes,
            answers: q.answers,
            views: q.views,
            accepted: q.accepted,
            closed: q.title.ends_with(CLOSED),
        }
    }
}

impl Figures {
    /// What a snapshot keeps of them: the figures that change, not the
    /// marks.
    pub fn in_snapshot(self) -> Figures {
        Figures {
            accepted: false,
            closed: false,
            ..self
        }
    }
}

const CLOSED: &str = " [closed]";

/// The site at its first version, answering after `latency`.
pub(crate) fn site(latency: Duration, api_key: Option<&str>) -> FakeSite {
    let mut b = FakeSite::builder().latency(latency);
    for (tag, n) in [
        ("alpha", 70),
        ("beta", 40),
        ("gamma", 20),
        ("delta", 50),
        ("eps", 30),
    ] {
        b = b.tag(tag, n);
    }
    if let Some(key) = api_key {
        b = b.api_key(key);
    }
    b.start()
}

/// The `[tag_sets.*]` tables of the simulated config, each set due `every`
/// after its last pass began.
pub(crate) fn sets_toml(every: &str) -> String {
    let mut text = String::new();
    for set in &SETS {
        let tags: Vec<String> = set.tags.iter().map(|t| format!("\"{t}\"")).collect();
        text.push_str(&format!(
            "[tag_sets.{}]\ntags = [{}]\npages = {}\npagesize = {}\nevery = \"{every}\"\n",
            set.name,
            tags.join(", "),
            set.pages,
            set.pagesize
        ));
        if set.api {
            text.push_str("source = \"api\"\nsort = \"creation\"\n");
        }
    }
    text
}

pub(crate) fn set_named(v: &serde_json::Value) -> Option<&'static Set> {
    SETS.iter().find(|s| v.as_str() == Some(s.name))
}

/// The site's version of the set's tags, and the questions a pass of the
/// set had to read at it, given what the store held before (`model`): every
/// page up to `pages`, except that an incremental pass stops a tag at its
/// first page with nothing new or changed, and the API at its last page.
pub(crate) fn expected(
    site: &FakeSite,
    set: &Set,
    model: &HashMap<u64, Figures>,
    incremental: bool,
) -> Result<(u64, BTreeMap<u64, Figures>), String> {
    let epoch = site.version(set.tags[0]);
    let mut expected = BTreeMap::new();
    for tag in set.tags {
        if site.version(tag) != epoch {
            return Err(format!("tags of {} at different versions", set.name));
        }
        let content = site.questions(tag);
        for page in 1..=set.pages {
            let from = ((page - 1) * set.pagesize).min(content.len());
            let to = (page * set.pagesize).min(content.len());
            let slice = &content[from..to];
            if slice.is_empty() {
                break;
            }
            let unchanged = slice
                .iter()
                .all(|q| model.get(&q.id) == Some(&Figures::from(q)));
            for q in slice {
                expected.insert(q.id, Figures::from(q));
            }
            let has_more = to < content.len();
            if (incremental && unchanged) || (set.api && !has_more) {
                break;
            }
        }
    }
    Ok((epoch, expected))
}

/// Which questions a pass had to read and did not store, and which it
/// stored and had not to read; `None` when it stored exactly them.
pub(crate) fn differ<A, B>(
    expected: &BTreeMap<u64, A>,
    stored: &BTreeMap<u64, B>,
) -> Option<String> {
    let missing: Vec<_> = expected
        .keys()
        .filter(|id| !stored.contains_key(id))
        .collect();
    let extra: Vec<_> = stored
        .keys()
        .filter(|id| !expected.contains_key(id))
        .collect();
    (!missing.is_empty() || !extra.is_empty()).then(|| {
        format!(
            "{} questions missing {missing:?}, {} unexpected {extra:?}",
            missing.len(),
            extra.len()
        )
    })
}

/// Changes the set's tags for its next pass: new questions on top (never
/// on the dry tag), figures changed, a question closed or deleted.
/// `next_id` numbers the new questions.
fn evolve(site: &FakeSite, rng: &mut fastrand::Rng, set: &Set, next_id: &mut u64) {
    for tag in set.tags {
        let arrivals = if *tag != DRY_TAG && rng.bool() {
            rng.u64(1..=35)
        } else {
            0
        };
        let fresh: Vec<FakeQuestion> = (0..arrivals)
            .map(|i| {
                *next_id += 1;
                let mut q = FakeQuestion::generated(tag, 50, (*next_id + i) % 997);
                q.id = 90_000_000 + *next_id;
                q
            })
            .collect();
        let changes: Vec<(usize, i64, u64, u64)> = (0..rng.usize(0..6))
            .map(|_| {
                (
                    rng.usize(..1000),
                    rng.i64(-2..=5),
                    rng.u64(0..=1),
                    rng.u64(1..=500),
                )
            })
            .collect();
        let delete = rng.f64() < 0.2;
        let victim = rng.usize(..1000);
        // Closing shows in the HTML listing's title; the API has no
        // such mark in the fields the crawler reads.
        let close = !set.api && rng.f64() < 0.25;
        let to_close = rng.usize(..1000);
        site.edit(tag, |qs| {
            for q in fresh.into_iter().rev() {
                qs.insert(0, q);
            }
            if !qs.is_empty() {
                for (i, dv, da, dw) in changes {
                    let n = qs.len();
                    let q = &mut qs[i % n];
                    q.votes += dv;
                    q.answers += da;
                    q.views += dw;
                }
                if close {
                    let n = qs.len();
                    let q = &mut qs[to_close % n];
                    if !q.title.ends_with(CLOSED) {
                        q.title.push_str(CLOSED);
                    }
                }
                if delete {
                    let n = qs.len();
                    qs.remove(victim % n);
                }
            }
        });
    }
}

/// Scripts up to two faults on the set's first pages for its next pass
/// (5xx, a dropped connection, a truncated body, 429 + Retry-After; an
/// API backoff or error); returns how many.
fn script_faults(site: &FakeSite, rng: &mut fastrand::Rng, set: &Set) -> u64 {
    let n = rng.usize(0..=2);
    for _ in 0..n {
        let tag = set.tags[rng.usize(..set.tags.len())];
        let page = rng.u32(1..=2);
        if set.api {
            let fault = if rng.bool() {
                ApiFault::Backoff(1)
            } else {
                ApiFault::error(500, "internal_error", "simulated")
            };
            site.push_api_fault(tag, page, fault);
        } else {
            let fault = match rng.u32(0..5) {
                0 => Fault::Status {
                    status: 500,
                    retry_after: None,
                },
                1 => Fault::Status {
                    status: 503,
                    retry_after: None,
                },
                2 => Fault::Drop,
                3 => Fault::Truncate,
                _ => Fault::Status {
                    status: 429,
                    retry_after: Some("1".into()),
                },
            };
            site.push_fault(tag, page, fault);
        }
    }
    n as u64
}

/// The set's next version, once its pass is checked: the site changed
/// (`evolve`) and faults scripted (`script_faults`, whose count it
/// returns). Fails if the set's next pass began before the change: the
/// set is due a while after its last pass began, and the change is made
/// as soon as that pass's "pass finished" line is read.
pub(crate) fn next_version(
    site: &FakeSite,
    rng: &mut fastrand::Rng,
    set: &Set,
    next_id: &mut u64,
) -> Result<u64, String> {
    let old_epoch = site.version(set.tags[0]);
    let before = hits_at(site, set, old_epoch);
    evolve(site, rng, set, next_id);
    if hits_at(site, set, old_epoch) != before {
        return Err(format!(
            "the next {} pass began before the site changed",
            set.name
        ));
    }
    Ok(script_faults(site, rng, set))
}

/// Requests for the set's tags served at this version of them.
fn hits_at(site: &FakeSite, set: &Set, version: u64) -> usize {
    site.hits()
        .iter()
        .filter(|h| h.tag.as_deref().is_some_and(|t| set.tags.contains(&t)) && h.version == version)
        .count()
}
