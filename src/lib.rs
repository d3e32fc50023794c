//! stackcrawl: a polite, actor-based crawler for Stack Overflow and Stack
//! Exchange tag listings.
//!
//! ```text
//!  TOML config ──► Plan (lazy: the pages to fetch, nothing fetched yet)
//!                    │
//!                    ▼
//!               Supervisor ──PageJob──► Fetcher × N ──RawPage──► Cleaner ──Records──► Aggregator ──► JSONL / CSV
//!                    ▲          (each waits on its host's ONE shared quota)                │
//!                    └────────────────────── JobEnded ◄─────────────────────────────────────┘
//! ```
//!
//! Modules, in the order data flows:
//! - [`config`]: TOML → validated `Config` (key and line in every error)
//! - [`plan`]: `Plan` and `PageJob` (what `--dry-run` prints)
//! - [`throttle`]: a host's governor quota and the pool-wide pause (the site
//!   and the Stack Exchange API each have one)
//! - [`fetch`]: the HTTP client and `FetchError`
//! - [`parse`], [`clean`]: pure HTML → raw strings → typed `Question`s
//! - [`api`]: pure API 2.3 → URLs, typed `Question`s, paging and quota
//!   fields, classified `ApiError`s (tag sets with `source = "api"`)
//! - [`actors`]: supervisor, fetchers, cleaner, aggregator
//! - [`output`]: JSONL and CSV sinks
//! - [`model`]: `Question`, `PageReport`, `RunSummary`
//!
//! The futures-style API mirrors the Dask tutorial this descends from:
//! [`Crawler::submit`] one page and get a future of its outcome,
//! [`Crawler::map`] a tag over a page range, [`gather`] them, or take them
//! in completion order with [`as_completed`].

pub mod actors;
pub mod api;
pub mod budget;
pub mod clean;
pub mod config;
pub mod crawl;
pub mod crawler;
pub mod error;
pub mod fetch;
pub mod frontier;
pub mod lane;
pub mod model;
pub mod output;
pub mod parse;
pub mod plan;
pub mod robots;
pub mod runner;
pub mod source;
pub mod store;
pub mod throttle;
pub mod writer_lock;

pub use actors::supervisor::PageOutcome;
pub use crawl::{crawl, CRAWL_PASS};
pub use crawler::{as_completed, gather, shutdown_flag, Crawler, PageFuture};
pub use error::CrawlError;
pub use model::FailedPage;
pub use output::Sink;
