//! The commands that read what a crawl left (`report`, `export`, `parse`)
//! and the one way every command writes to standard output; `main.rs`
//! keeps the flags, the crawl and the service.

pub mod import;
pub mod parse;
pub mod stdout;
pub mod store;
