//! The validated config end to end: TOML text in, `Config` or a located
//! error out. Kept out of `mod.rs` because most of it exercises `validate`
//! through the public entry points rather than any one file.

use super::api::{self, ApiSort};
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

/// Two sites on one host keep their budget entries apart by port; a
/// default port is no port, as the entries of older budget files are.
#[test]
fn budget_keys_carry_a_port_only_where_the_url_names_one() {
    let keys = |site: &str, api: &str| {
        let c = load(&format!(
            "[site]\nbase_url = \"{site}\"\n[api]\nsite = \"stackoverflow\"\nbase_url = \"{api}\"\n{API_SET}"
        ))
        .unwrap();
        (c.budget_key(), c.api.budget_key())
    };
    assert_eq!(
        keys("http://127.0.0.1:8080/", "http://127.0.0.1:8098/2.3"),
        ("127.0.0.1:8080".into(), "api:127.0.0.1:8098".into())
    );
    assert_eq!(
        keys(
            "https://stackoverflow.com:443",
            "https://api.stackexchange.com/2.3"
        ),
        (
            "stackoverflow.com".into(),
            "api:api.stackexchange.com".into()
        )
    );
    assert_eq!(
        keys("http://[::1]:8080", "http://localhost:80/2.3"),
        ("[::1]:8080".into(), "api:localhost".into())
    );
}

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
    assert_eq!(set.order, Order::Listing(Tab::Votes));
    assert_eq!((set.pagesize, set.pages), (30, 3));
}

#[test]
fn tags_are_percent_encoded_into_one_path_segment() {
    let c = load(GOOD).unwrap();
    assert_eq!(
        c.listing_url("c++", Tab::Newest, 2, 50),
        "http://127.0.0.1:8080/questions/tagged/c%2B%2B?tab=Newest&page=2&pagesize=50"
    );
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
fn tags_of_every_script_are_accepted_and_nothing_that_leaves_the_path() {
    for (tag, want) in [
        ("日本語", "日本語"),
        ("Python-Библиотеки", "python-библиотеки"),
        ("programação", "programação"),
        ("español", "español"),
        ("c++", "c++"),
        ("c#", "c#"),
        (".net", ".net"),
        ("asp.net-core", "asp.net-core"),
        ("e-mail_2", "e-mail_2"),
    ] {
        assert_eq!(super::check_tag(tag).as_deref(), Ok(want), "{tag}");
    }
    for bad in [
        "a\u{0}b",
        "a\u{7}b",
        "a\tb",
        "те\nг",
        "a\u{200b}b",
        "a\u{202e}b",
        "a\\b",
        "%2e%2e",
        "a;b",
        "¿qué?",
        &"я".repeat(36),
    ] {
        assert!(super::check_tag(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn path_changing_tags_are_refused() {
    for bad in [
        "../admin",
        "a/b",
        "a b",
        "..",
        "a?b",
        "a%2fb",
        "a..b",
        "日本/語",
        "a&b=c",
        "a#b?c",
    ] {
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
    let env = Environment {
        api_key: None,
        state_dir: Some(PathBuf::from("/home/u/.local/state")),
    };
    let load_in = |text: &str| Config::from_toml_in(text, "test.toml", &Overrides::default(), &env);
    let a = load_in("[output]\npath = \"/tmp/x/a.jsonl\"\n[tag_sets.a]\ntags = [\"x\"]\n").unwrap();
    let b = load_in("[output]\npath = \"/srv/y/b.csv\"\n[tag_sets.a]\ntags = [\"x\"]\n").unwrap();
    assert_eq!(a.budget_file, b.budget_file);
    assert!(!a.budget_file.starts_with("/tmp/x"), "{:?}", a.budget_file);
    assert_eq!(
        a.budget_file,
        Path::new("/home/u/.local/state/stackcrawl/budget.sqlite")
    );
}

#[test]
fn without_a_state_directory_the_budget_falls_back_to_the_working_directory() {
    let c = load("[tag_sets.a]\ntags = [\"x\"]\n").unwrap();
    assert_eq!(c.budget_file, Path::new(".stackcrawl-budget.sqlite"));
}

#[test]
fn the_key_comes_from_the_environment_it_is_given_and_from_nowhere_else() {
    let with_key = Environment {
        api_key: Some("k3y".into()),
        state_dir: None,
    };
    let c = Config::from_toml_in(API_SET, "test.toml", &Overrides::default(), &with_key).unwrap();
    assert_eq!(c.api.key.as_ref().map(ApiKey::expose), Some("k3y"));
    assert!(!format!("{with_key:?}").contains("k3y"));
    // `from_toml` passes an empty environment whatever the shell holds.
    assert!(load(API_SET).unwrap().api.key.is_none());
}

#[test]
fn every_is_a_duration() {
    let c = load("[tag_sets.a]\ntags = [\"x\"]\nevery = \"15m\"\n").unwrap();
    assert_eq!(c.tag_sets[0].every, Duration::from_secs(900));
    let (key, line, _) = invalid("[tag_sets.a]\ntags = [\"x\"]\nevery = \"soon\"\n");
    assert_eq!((key.as_str(), line), ("tag_sets.a.every", Some(3)));
}

/// Like `load`, with an app key.
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

const API_SET: &str =
    "[tag_sets.so]\nsource = \"api\"\ntags = [\"c++\", \"rust\"]\nsort = \"votes\"\npages = 5\n";

#[test]
fn api_tag_set_defaults_and_site_from_the_base_url() {
    let c = load_key(API_SET, None).unwrap();
    let set = &c.tag_sets[0];
    assert_eq!(set.source(), Source::Api);
    assert_eq!(set.order, Order::Api(ApiSort::Votes));
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
    let (key, _, reason) = invalid_key(&format!("[api]\nsite = \"serverfault\"\n{API_SET}"), None);
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
    let text = include_str!("../../config/example.toml");
    let (head, block) = text
        .split_once("# [tag_sets.python-data-api]")
        .expect("the example documents an api tag set");
    // Up to the archive tag set documented after it.
    let block = block
        .split("\n\n# A tag set from a web archive")
        .next()
        .unwrap();
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
    let set = c
        .tag_sets
        .iter()
        .find(|s| s.source() == Source::Api)
        .unwrap();
    assert_eq!(set.tags, ["pandas", "dask"]);
    assert_eq!(
        (set.order, set.pagesize, set.pages),
        (Order::Api(ApiSort::Creation), 100, 10)
    );
    assert_eq!(c.api.site.as_deref(), Some("stackoverflow"));
    assert_eq!(c.api.base_url, api::DEFAULT_API_BASE);
}

#[test]
fn example_archive_tag_set_is_valid_once_uncommented() {
    let text = include_str!("../../config/example.toml");
    let (head, block) = text
        .split_once("# [tag_sets.python-data-past]")
        .expect("the example documents an archive tag set");
    let block: String = std::iter::once("[tag_sets.python-data-past]")
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
    let c = load(&format!("{head}{block}")).unwrap();
    let set = c
        .tag_sets
        .iter()
        .find(|s| s.source() == Source::Wayback)
        .unwrap();
    let q = set.archive.as_ref().unwrap();
    assert_eq!((set.pages, q.collapse), (200, Some(Collapse::Month)));
    assert!(q.from.unwrap() < q.to.unwrap());
    assert_eq!(c.archive, ArchiveSettings::default());
}

#[test]
fn archive_keys_are_checked_with_their_line() {
    let cases = [
        ("source = \"commoncrawl\"\n", "crawl"),
        (
            "source = \"commoncrawl\"\ncrawl = \"CC-MAIN/../x\"\n",
            "crawl",
        ),
        (
            "source = \"wayback\"\ncrawl = \"CC-MAIN-2019-13\"\n",
            "crawl",
        ),
        ("source = \"wayback\"\nfrom = \"March\"\n", "from"),
        (
            "source = \"wayback\"\nfrom = \"2020\"\nto = \"2019\"\n",
            "to",
        ),
        ("source = \"wayback\"\ncollapse = \"year\"\n", "collapse"),
        ("from = \"2020\"\n", "from"),
    ];
    for (lines, key) in cases {
        let text = format!("[tag_sets.a]\ntags = [\"rust\"]\n{lines}");
        match load(&text) {
            Err(ConfigError::Invalid { key: k, .. }) => {
                assert_eq!(k, format!("tag_sets.a.{key}"), "{text}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn no_tags_anywhere_is_an_error() {
    assert!(matches!(load(""), Err(ConfigError::Invalid { .. })));
}

#[test]
fn stackoverflow_api_config_is_valid_and_gentle() {
    let text = include_str!("../../config/stackoverflow-api.toml");
    let c =
        Config::from_toml(text, "config/stackoverflow-api.toml", &Overrides::default()).unwrap();
    assert!(c.rate <= 1.0);
    assert_eq!(c.tag_sets[0].tags, ["pandas", "dask"]);
}

#[test]
fn example_config_is_valid() {
    let text = include_str!("../../config/example.toml");
    let c = Config::from_toml(text, "config/example.toml", &Overrides::default()).unwrap();
    assert_eq!(c.base_url, DEFAULT_BASE_URL);
    assert!(
        c.rate <= 2.0,
        "the example must be gentle with the real site"
    );
}

#[test]
fn the_status_page_is_off_by_default_and_loopback_only_unless_allowed() {
    assert_eq!(load(GOOD).unwrap().status_addr, None);
    let with = |status: &str| load(&format!("{GOOD}\n[status]\n{status}\n"));
    assert_eq!(
        with("addr = \"127.0.0.1:9898\"").unwrap().status_addr,
        Some("127.0.0.1:9898".parse().unwrap())
    );
    assert_eq!(
        with("addr = \"localhost:9898\"").unwrap().status_addr,
        Some("127.0.0.1:9898".parse().unwrap())
    );
    let (key, line, reason) = invalid(&format!("{GOOD}\n[status]\naddr = \"0.0.0.0:9898\"\n"));
    assert_eq!(key, "status.addr");
    assert!(line.is_some());
    assert!(reason.contains("allow_remote"), "{reason}");
    assert_eq!(
        with("addr = \"0.0.0.0:9898\"\nallow_remote = true")
            .unwrap()
            .status_addr,
        Some("0.0.0.0:9898".parse().unwrap())
    );
    let (_, _, reason) = invalid(&format!("{GOOD}\n[status]\naddr = \"example.com:80\"\n"));
    assert!(reason.contains("HOST:PORT"), "{reason}");
    // The flag is checked as strictly as the file.
    let ov = Overrides {
        status_addr: Some("192.0.2.1:80".into()),
        ..Overrides::default()
    };
    assert!(matches!(
        Config::from_toml(GOOD, "test.toml", &ov),
        Err(ConfigError::Invalid { key, .. }) if key == "--status-addr"
    ));
}

#[test]
fn a_fleet_member_is_named_and_bound_as_configured() {
    let c = load(GOOD).unwrap();
    assert_eq!(
        c.store,
        crate::store::StoreLocation::Sqlite("stackcrawl.db".into())
    );
    assert!(
        c.fleet.name.ends_with(&format!(":{}", std::process::id())),
        "{}",
        c.fleet.name
    );
    assert_eq!(
        (c.fleet.local_address, c.fleet.shared_quota.as_deref()),
        (None, None)
    );
    let text = format!(
        "{GOOD}\n[store]\npath = \"postgres://db/sc\"\n[fleet]\nname = \"w1\"\nlease_secs = 5\nlocal_address = \"127.0.0.2\"\nshared_quota = \"ip-a\"\n"
    );
    let c = load(&text).unwrap();
    assert_eq!(c.fleet.name, "w1");
    assert_eq!(c.fleet.lease, std::time::Duration::from_secs(5));
    assert_eq!(c.fleet.local_address, Some("127.0.0.2".parse().unwrap()));
    assert_eq!(c.fleet.shared_quota.as_deref(), Some("ip-a"));
}

#[test]
fn a_bad_fleet_table_names_the_key() {
    let (key, _, reason) = invalid(&format!("{GOOD}\n[fleet]\nlocal_address = \"nine\"\n"));
    assert_eq!(key, "fleet.local_address");
    assert!(reason.contains("not an IP address"), "{reason}");
    // A shared quota lives in PostgreSQL; with a SQLite store it could not.
    let (key, _, reason) = invalid(&format!("{GOOD}\n[fleet]\nshared_quota = \"ip\"\n"));
    assert_eq!(key, "fleet.shared_quota");
    assert!(reason.contains("postgres://"), "{reason}");
}

#[test]
fn run_writes_an_output_only_when_the_config_or_output_names_one() {
    assert!(load(GOOD).unwrap().output_named);
    let unnamed = GOOD.replace("[output]\npath = \"out.csv\"\n", "");
    let c = load(&unnamed).unwrap();
    assert!(!c.output_named);
    assert_eq!(c.output, PathBuf::from("questions.jsonl"));
    let ov = Overrides {
        output: Some("x.jsonl".into()),
        ..Overrides::default()
    };
    let c = Config::from_toml(&unnamed, "test.toml", &ov).unwrap();
    assert!(c.output_named);
}

#[test]
fn the_output_format_is_told_by_its_extension() {
    for (path, format) in [
        ("out.jsonl", OutputFormat::Jsonl),
        ("out.CSV", OutputFormat::Csv),
        ("out.parquet", OutputFormat::Parquet),
    ] {
        let c = load(&GOOD.replace("out.csv", path)).unwrap();
        assert_eq!(c.output_format, format, "{path}");
    }
    let (key, line, reason) = invalid(&GOOD.replace("out.csv", "out.txt"));
    assert_eq!((key.as_str(), line), ("output.path", Some(11)));
    assert!(reason.contains(".jsonl, .csv or .parquet"), "{reason}");
}
