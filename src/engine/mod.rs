//! The engine: one pass, driven by actors that own their work.
//!
//! ```text
//!  Plan ─► Supervisor ──lease (store)──► PageJob ──► Fetcher × N ──RawPage──► Cleaner
//!          (frontier,                    (lane: quota, pause, budget;          │ Listing
//!           retries)   ◄──── JobEnded ────  source requests the page)  ◄──────┘
//!                                            │ Records
//!                                            ▼
//!                                        Aggregator (the store's thread) ─► store / JSONL / CSV
//! ```
//!
//! In the order a page flows: [`plan`] (the pages, `--dry-run`, failures
//! files), [`supervisor`] (the [`frontier`] and [`retry`] policy; leases a
//! page on a shared store before it goes out), [`fetcher`], [`cleaner`],
//! [`aggregator`] (totals and writes, on a thread of its own). [`pipeline`]
//! wires them; [`crawler`] is the running pipeline and its futures API,
//! [`drive`] the loop over a batch, [`pass`] one pass for both commands,
//! [`crawl`] the `crawl` command and [`run`] the `run` service. What the
//! crawl waits on that does not answer is registered in
//! [`crate::lane::stall`].
//!
//! Nothing here waits without a deadline: every call to the store's thread
//! is awaited beside the shutdown request and `[store] give_up_secs`, and
//! the loop that sees signals and timers never awaits the store.

pub mod aggregator;
pub mod cleaner;
pub mod clock;
pub mod crawl;
pub mod crawler;
pub mod drive;
pub mod fetcher;
pub mod frontier;
pub mod pass;
pub mod patience;
pub mod pipeline;
pub mod plan;
pub mod retry;
pub mod run;
pub mod supervisor;
