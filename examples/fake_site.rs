//! Serves the test suite's fake Stack Exchange site on 127.0.0.1 until
//! killed, so the crawler can be tried without touching the real site:
//!
//! ```text
//! cargo run --example fake_site -- 8080 pandas=120 dask=60
//! stackcrawl crawl --config config/fake-site.toml
//! ```

use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let mut builder = stackcrawl_fakesite::FakeSite::builder().latency(Duration::from_millis(50));
    let mut any = false;
    for spec in args {
        let (tag, n) = spec.split_once('=').unwrap_or((spec.as_str(), "100"));
        builder = builder.tag(tag, n.parse().unwrap_or(100));
        any = true;
    }
    if !any {
        builder = builder.tag("pandas", 120).tag("dask", 60);
    }
    let site = builder.start_on(port);
    eprintln!("fake Stack Exchange site on {}", site.base_url());
    loop {
        std::thread::park();
    }
}
