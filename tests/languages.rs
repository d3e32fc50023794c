//! Every Stack Exchange site in every language: tags in Japanese, Cyrillic
//! and Portuguese validate, plan to correctly encoded URLs for both sources,
//! and crawl against the fake site; tags that could leave the URL path are
//! still refused.

use std::collections::HashSet;

use stackcrawl::config::{Config, ConfigError, Overrides};
use stackcrawl::engine::plan::Plan;
use stackcrawl_fakesite::{crawl_site, read_jsonl, FakeSite, TestConfig};

const TAGS: [&str; 3] = ["日本語", "python-библиотеки", "programação"];
/// The tags as one URL path segment or query value: UTF-8, percent-encoded.
const ENCODED: [&str; 3] = [
    "%E6%97%A5%E6%9C%AC%E8%AA%9E",
    "python-%D0%B1%D0%B8%D0%B1%D0%BB%D0%B8%D0%BE%D1%82%D0%B5%D0%BA%D0%B8",
    "programa%C3%A7%C3%A3o",
];

fn config(base_url: &str, tags: &str) -> Result<Config, ConfigError> {
    let text = format!(
        "[site]\nbase_url = \"{base_url}\"\n\
         [tag_sets.html]\ntags = [{tags}]\npages = 2\n\
         [tag_sets.api]\nsource = \"api\"\ntags = [{tags}]\nsort = \"creation\"\npages = 1\n"
    );
    Config::from_toml(&text, "test", &Overrides::default())
}

fn quoted(tags: &[&str]) -> String {
    tags.iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn tags_of_every_script_plan_to_encoded_urls_for_both_sources() {
    for (host, api_site) in [
        ("ja.stackoverflow.com", "ja.stackoverflow"),
        ("ru.stackoverflow.com", "ru.stackoverflow"),
        ("pt.stackoverflow.com", "pt.stackoverflow"),
        ("es.stackoverflow.com", "es.stackoverflow"),
    ] {
        let c = config(&format!("https://{host}"), &quoted(&TAGS)).expect("valid config");
        let urls: HashSet<String> = Plan::from_config(&c).jobs().map(|j| j.url).collect();
        for enc in ENCODED {
            for page in 1..=2 {
                let html = format!(
                    "https://{host}/questions/tagged/{enc}?tab=Newest&page={page}&pagesize=50"
                );
                assert!(urls.contains(&html), "{html} not planned: {urls:?}");
            }
            let api = format!(
                "https://api.stackexchange.com/2.3/questions?tagged={enc}&site={api_site}&sort=creation&order=desc&page=1&pagesize=100"
            );
            assert!(
                urls.iter().any(|u| u.starts_with(&api)),
                "{api} not planned: {urls:?}"
            );
        }
    }
}

#[test]
fn the_api_site_is_derived_from_any_stack_exchange_host_or_given() {
    for (host, site) in [
        ("math.stackexchange.com", "math"),
        ("serverfault.com", "serverfault"),
        ("ru.stackoverflow.com", "ru.stackoverflow"),
        ("meta.ja.stackoverflow.com", "meta.ja.stackoverflow"),
    ] {
        let c = config(&format!("https://{host}"), "\"x\"").expect("valid config");
        let urls: Vec<String> = Plan::from_config(&c).jobs().map(|j| j.url).collect();
        assert!(
            urls.iter().any(|u| u.contains(&format!("&site={site}&"))),
            "{host}: {urls:?}"
        );
    }
}

#[test]
fn path_changing_tags_are_still_refused_in_any_script() {
    for bad in ["日本/語", "..", "тег?x=1", "a%2Fb", "ação#x/y"] {
        let err = config("https://pt.stackoverflow.com", &quoted(&[bad]))
            .expect_err(bad)
            .to_string();
        assert!(
            err.contains(".tags`") && err.contains(&format!("tag `{}`", bad.to_lowercase())),
            "{bad}: {err}"
        );
    }
}

#[actix::test]
async fn tags_of_every_script_crawl_against_the_fake_site_by_html_and_api() {
    let mut b = FakeSite::builder();
    for t in TAGS {
        b = b.tag(t, 60);
    }
    let site = b.start();

    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2\nrate = 30.0\nburst = 5")
        .tag_set("a", &TAGS, 2)
        .build();
    let out = cfg.output.clone();
    crawl_site(cfg).await.expect("html crawl runs");
    let paths: HashSet<String> = site
        .page_hits()
        .iter()
        .map(|h| h.raw_path.clone())
        .collect();
    for enc in ENCODED {
        let p = format!("/questions/tagged/{enc}?tab=Newest&page=2&pagesize=50");
        assert!(paths.contains(&p), "{p} not requested; got {paths:?}");
    }
    let records = read_jsonl(&out);
    for t in TAGS {
        let ids: HashSet<u64> = records
            .iter()
            .filter(|r| r.tag == t)
            .map(|r| r.question_id)
            .collect();
        let served: HashSet<u64> = site.questions(t).iter().map(|q| q.id).collect();
        assert_eq!(ids, served, "{t}");
        assert!(records
            .iter()
            .filter(|r| r.tag == t)
            .all(|r| r.tags.iter().any(|x| x == t)));
    }

    let dir = tempfile::tempdir().unwrap();
    let cfg = TestConfig::new(&site, dir.path())
        .fetch("fetchers = 2")
        .api_set(&TAGS, 100, 2)
        .build();
    let out = cfg.output.clone();
    crawl_site(cfg).await.expect("api crawl runs");
    for enc in ENCODED {
        assert!(
            site.api_hits()
                .iter()
                .any(|h| h.raw_path.contains(&format!("tagged={enc}&"))),
            "{enc} not requested by the API"
        );
    }
    let records = read_jsonl(&out);
    for t in TAGS {
        assert_eq!(records.iter().filter(|r| r.tag == t).count(), 60, "{t}");
    }
}
