//! `parse --store STORE`: the pages `parse` reads written into a store as
//! one import (see `stackcrawl::store` and its `import` module) instead of
//! printed.
//!
//! A WARC record is captured at its `WARC-Date`, under its target URI. A
//! saved page or API response has no capture record: its file's
//! modification time (the time `parse` gives its records) is its capture
//! time, and `file://` and its absolute path its URL, so importing the same
//! file again adds nothing while a file saved anew (a new time) adds its
//! figures.

use std::path::Path;

use chrono::{DateTime, Utc};
use tracing::info;

use stackcrawl::model::{PageContext, Question};
use stackcrawl::store::writer_lock::WriterLock;
use stackcrawl::store::{self, Capture, Import, PassStore, StoreLocation};

use crate::Failure;

/// A store taking one import's pages.
pub struct Importer {
    store: Box<dyn PassStore>,
    import: Import,
    shown: String,
    imported: u64,
    known: u64,
    new: u64,
    snapshots: u64,
    /// A SQLite store has one writer: a crawl or `run` on it meanwhile is
    /// refused, as this import would be beside them.
    _lock: Option<WriterLock>,
}

impl Importer {
    pub fn open(location: &str, tag_set: &str) -> Result<Importer, Failure> {
        let location =
            StoreLocation::parse(location).map_err(|e| Failure::Usage(format!("--store: {e}")))?;
        let lock = location
            .sqlite_path()
            .map(WriterLock::acquire)
            .transpose()
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let store = store::open(&location).map_err(|e| Failure::Failed(e.to_string()))?;
        Ok(Importer {
            store,
            import: Import::new(tag_set),
            shown: location.to_string(),
            imported: 0,
            known: 0,
            new: 0,
            snapshots: 0,
            _lock: lock,
        })
    }

    /// Writes one captured page.
    pub fn capture(
        &mut self,
        url: &str,
        ctx: &PageContext,
        captured_at: DateTime<Utc>,
        questions: &[Question],
    ) -> Result<(), Failure> {
        let w = self
            .store
            .import_capture(
                &mut self.import,
                &Capture {
                    url,
                    ctx,
                    captured_at,
                    questions,
                },
            )
            .map_err(|e| Failure::Failed(e.to_string()))?;
        if w.imported {
            self.imported += 1;
            self.new += w.new as u64;
            self.snapshots += w.snapshots as u64;
        } else {
            self.known += 1;
        }
        Ok(())
    }

    /// A saved file's page, captured when the file was last written.
    pub fn saved(
        &mut self,
        path: &Path,
        ctx: &PageContext,
        questions: &[Question],
    ) -> Result<(), Failure> {
        // The reader gave every record the file's time; a page with none
        // has no figures to keep.
        let Some(captured_at) = questions.first().map(|q| q.fetched_at) else {
            return Ok(());
        };
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let url = format!("file://{}", path.display());
        self.capture(&url, ctx, captured_at, questions)
    }

    /// Says what the import added, and makes it durable on its own.
    pub fn finish(self) -> Result<(), Failure> {
        self.store
            .checkpoint()
            .map_err(|e| Failure::Failed(e.to_string()))?;
        info!(
            store = %self.shown,
            pass = ?self.import.pass_id(),
            tag_set = %self.import.tag_set,
            captures_imported = self.imported,
            captures_already_stored = self.known,
            questions_new = self.new,
            snapshots = self.snapshots,
            "import finished"
        );
        Ok(())
    }
}
