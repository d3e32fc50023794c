//! stackcrawl: a polite, actor-based crawler for Stack Overflow and Stack
//! Exchange tag listings and the Stack Exchange API.
//!
//! ```text
//!  TOML ─► config ─► engine::plan ─► Supervisor ─► Fetcher × N ─► Cleaner ─► Aggregator ─► store / JSONL / CSV
//!                                   (frontier,      (lane: quota,   (source   (the store's
//!                                    leases)         pause, budget)  reads     own thread)
//!                                                                    bodies)
//! ```
//!
//! Folders, in the order a page flows through them:
//! - [`config`]: TOML → validated `Config` (key and line in every error),
//!   with the values it is checked against: listing tabs, the API's sorts
//!   and limits ([`config::ApiSort`]), the `[archive]` settings
//!   ([`config::archive`])
//! - [`engine`]: the plan, the actors (supervisor, fetchers, cleaner,
//!   aggregator), one pass for `crawl` and `run`; nothing in it waits
//!   without a deadline
//! - [`lane`]: everything between a fetcher and one request to a host:
//!   quota and rate controller, pauses, the daily budget (kept by its own
//!   actor, [`lane::ledger`]), robots.txt, a quota shared by a fleet, and
//!   what the crawl waits on ([`lane::stall`])
//! - [`source`]: everything that differs between HTML listings
//!   ([`source::html`]) and the API ([`source::api`]): URLs, requests,
//!   statuses, reading bodies, paging; [`source::fetch`] is the HTTP client;
//!   [`source::archive`] reads WARC files, [`source::saved`] saved pages,
//!   [`source::cdx`] reads web archives' indexes and captures as a tag
//!   set's source, [`source::charset`] a body in the charset it declares
//! - [`store`]: SQLite or PostgreSQL (shared by a fleet), archived pages
//!   imported as passes of the past (`parse --store`), the file output
//!   ([`store::output`]) and the writer lock
//! - [`observe`]: the monitor, status page, metrics, progress display,
//!   charts and `report --html`
//! - [`model`]: `Question`, `PageContext` (and the [`model::Archive`] a
//!   page may be a capture of), `PageReport`, `RunSummary`; [`error`]:
//!   `CrawlError`
//!
//! Layers, lowest first; each imports only the ones before it:
//! `model` < `store` < `config` < `lane` < `source` < `engine` and beside
//! it `observe` and `error` < the binary. The data knows no storage; the
//! store knows no config (it is handed a `StoreLocation`); the config
//! names stores and archives but no source; lanes pace requests; sources
//! read the `Config` and go through lanes; the engine runs them all, and
//! `observe` (which it starts) reads its figures. No reference points
//! down-to-up outside tests; two unit tests build their input from a
//! higher layer: the API's job tests in [`source`] take an
//! `engine::plan::Plan`, and the store's conformance tests take a page
//! context from `source::archive`.
//!
//! The futures-style API mirrors the Dask tutorial this descends from:
//! [`Crawler::submit`] one page and get a future of its outcome,
//! [`Crawler::map`] a tag over a page range, [`gather`] them, or take them
//! in completion order with [`as_completed`].

pub mod config;
pub mod engine;
pub mod error;
pub mod lane;
pub mod model;
pub mod observe;
pub mod source;
pub mod store;

pub use engine::crawl::{crawl, crawl_watched, CRAWL_PASS};
pub use engine::crawler::{as_completed, gather, shutdown_flag, Crawler, PageFuture};
pub use engine::supervisor::PageOutcome;
pub use error::CrawlError;
pub use model::FailedPage;
pub use store::output::Sink;
