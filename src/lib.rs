//! stackcrawl: a polite, actor-based crawler for Stack Overflow and Stack
//! Exchange tag listings and the Stack Exchange API.
//!
//! ```text
//!  TOML ─► config ─► plan ─► Supervisor ──PageJob──► Fetcher × N ──RawPage──► Cleaner ──Records──► Aggregator ─► store / JSONL / CSV
//!                       (frontier)  ▲      (lane: quota, pause, budget;     (source reads          │
//!                                   │       source requests the page)        the body)             │
//!                                   └──────────────────────── JobEnded ◄────────────────────────────┘
//! ```
//!
//! Modules, in the order a page flows through them:
//! - [`config`]: TOML → validated `Config` (key and line in every error)
//! - [`plan`]: the pages a crawl would fetch (`--dry-run`), failures files
//! - [`source`]: everything that differs between HTML listings and the
//!   API: URLs, requests, statuses, reading bodies, paging
//! - [`frontier`]: which page goes next (queue, per-tag paging, tag ends)
//! - [`lane`], [`throttle`], [`budget`], [`robots`]: politeness per host;
//!   [`shared_quota`]: one per-second quota for processes sharing an IP
//! - [`fetch`]: the HTTP client and `FetchError`
//! - [`parse`], [`clean`]: pure HTML → typed `Question`s; [`api`]: pure
//!   API 2.3 → typed `Question`s, paging and quota fields, `ApiError`s
//! - [`actors`]: supervisor, fetchers, cleaner, aggregator
//! - [`store`] (SQLite or PostgreSQL, with [`writer_lock`]), [`output`]:
//!   where records go; a PostgreSQL store is shared by a fleet of processes
//! - [`model`]: `Question`, `PageReport`, `RunSummary`
//! - [`crawler`]: the running pipeline and its futures API; [`crawl`]: the
//!   `crawl` command; [`runner`]: the `run` service; [`error`]: `CrawlError`
//! - [`monitor`]: what a running crawl is doing, fed by its events; read by
//!   [`status`] (the live page, `/status.json`, `/metrics`) and
//!   [`progress`] (the terminal display); [`charts`]:
//!   SVG charts (plotters) for the status page and [`html_report`]
//!   (`report --html`)
//!
//! The futures-style API mirrors the Dask tutorial this descends from:
//! [`Crawler::submit`] one page and get a future of its outcome,
//! [`Crawler::map`] a tag over a page range, [`gather`] them, or take them
//! in completion order with [`as_completed`].

pub mod actors;
pub mod api;
pub mod budget;
pub mod charts;
pub mod clean;
pub mod config;
pub mod crawl;
pub mod crawler;
pub mod error;
pub mod fetch;
pub mod frontier;
pub mod html_report;
pub mod lane;
pub mod ledger;
pub mod model;
pub mod monitor;
pub mod output;
pub mod parse;
pub mod plan;
pub mod progress;
pub mod retry;
pub mod robots;
pub mod runner;
pub mod shared_quota;
pub mod source;
pub mod stall;
pub mod status;
pub mod store;
pub mod throttle;
pub mod writer_lock;

pub use actors::supervisor::PageOutcome;
pub use crawl::{crawl, crawl_watched, CRAWL_PASS};
pub use crawler::{as_completed, gather, shutdown_flag, Crawler, PageFuture};
pub use error::CrawlError;
pub use model::FailedPage;
pub use output::Sink;
