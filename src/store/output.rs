//! Record sinks: JSONL (one object a line) or CSV with tags joined by ';',
//! both readable by pandas as is, or Parquet (typed columns). JSONL and CSV
//! flush every page's records when the page is written, so a crash loses at
//! most the page being written; a Parquet file is readable only once its
//! footer is written, when the crawl ends (see `Sink::finish`).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::model::{CsvRow, Question};
use crate::store::parquet::{check_questions_file, copy_questions, ParquetError, ParquetWriter};
pub use crate::store::OutputFormat;
use crate::store::StoreError;

/// Why records could not be written: to the file output or to the store.
#[derive(Debug, Error)]
pub enum OutputError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("no store is open")]
    NoStore,
}

impl OutputError {
    /// Whether the next page's records would meet the same error, so that
    /// fetching more pages only spends quota: the output's file system is
    /// full, read-only, over a size or quota limit, or no longer ours to
    /// write; a Parquet writer failed part-way (it cannot go on); the
    /// store's disk is full or read-only. An error of one page's data, a
    /// transient one (a timeout, a lost race, a lock) or one of the pass's
    /// state (finished, a lease taken over) is not: the page fails alone.
    pub fn refuses_every_write(&self) -> bool {
        match self {
            OutputError::Sink(SinkError::Refused { .. }) => true,
            OutputError::Sink(_) | OutputError::NoStore => false,
            OutputError::Store(e) => e.refuses_every_write(),
        }
    }
}

/// Whether an I/O error says the file system refuses writes for good, not
/// only this one.
pub(crate) fn is_lasting(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        StorageFull | ReadOnlyFilesystem | FileTooLarge | QuotaExceeded | PermissionDenied
    )
}

#[derive(Debug, Error)]
pub enum SinkError {
    #[error("cannot create output {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write output {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    /// As `Write`, and every later page would meet it too (see
    /// [`OutputError::refuses_every_write`]).
    #[error("cannot write output {path}: {reason}")]
    Refused { path: PathBuf, reason: String },
    /// A Parquet output to add records to that is not one stackcrawl
    /// can read back and rewrite.
    #[error("cannot add records to the Parquet output {path}: {reason}")]
    Append { path: PathBuf, reason: String },
}

/// Records go to a temporary file beside the output (`.NAME.partial`) that
/// replaces the output only when the crawl ends having written records: a
/// crawl that fetches nothing (robots.txt forbids it, the budget is spent,
/// every page fails) leaves an existing output as it was, and a reader never
/// sees a half-written file under the output's name. An appending sink (a
/// `--retry-failed` run) opens the output itself, but only at its first
/// record (a Parquet output is rewritten, its rows first, through the
/// temporary file).
pub struct Sink {
    path: PathBuf,
    format: OutputFormat,
    append: bool,
    /// Opened at the first page with records.
    kind: Option<SinkKind>,
}

enum SinkKind {
    Jsonl(PageFile),
    /// The file, and whether it still lacks its header: it goes before the
    /// first row, and a file that gets no row needs it too.
    Csv(PageFile, bool),
    /// The writer (until its footer is written) and the file it writes.
    Parquet(Option<Box<ParquetWriter<Question>>>, BufWriter<File>),
}

impl Sink {
    /// An output that replaces `path` when the crawl ends with records.
    /// Nothing is created yet: only the directory is checked, so a typo in
    /// it fails before anything is fetched.
    pub fn create(path: &Path, format: OutputFormat) -> Result<Sink, SinkError> {
        Sink::new(path, format, false)
    }

    /// Adds records after those already in `path`, as a `--retry-failed`
    /// run does; a CSV header is written only to an empty or new file.
    pub fn append(path: &Path, format: OutputFormat) -> Result<Sink, SinkError> {
        Sink::new(path, format, true)
    }

    fn new(path: &Path, format: OutputFormat, append: bool) -> Result<Sink, SinkError> {
        if append && format == OutputFormat::Parquet && path.exists() {
            std::fs::File::open(path)
                .map_err(ParquetError::from)
                .and_then(check_questions_file)
                .map_err(|e| SinkError::Append {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
        }
        let dir = parent_dir(path);
        if !dir.is_dir() {
            return Err(SinkError::Create {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no directory {}", dir.display()),
                ),
            });
        }
        Ok(Sink {
            path: path.to_path_buf(),
            format,
            append,
            kind: None,
        })
    }

    /// Where records are written until the crawl ends: beside the output,
    /// so the final rename stays on one file system and is atomic.
    pub fn partial_path(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        parent_dir(&self.path).join(format!(".{name}.partial"))
    }

    fn create_error(&self, path: &Path, source: std::io::Error) -> SinkError {
        SinkError::Create {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether records are added to the output file itself (JSONL and CSV
    /// when appending). A Parquet file ends in a footer describing every
    /// row before it, so one is added to by rewriting it, its rows first,
    /// through the partial file and rename like a new output.
    fn in_place(&self) -> bool {
        self.append && self.format != OutputFormat::Parquet
    }

    fn open(&mut self) -> Result<&mut SinkKind, SinkError> {
        if self.kind.is_none() {
            let in_place = self.in_place();
            let target = if in_place {
                self.path.clone()
            } else {
                self.partial_path()
            };
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(in_place)
                .truncate(!in_place)
                .open(&target)
                .map_err(|e| self.create_error(&target, e))?;
            let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
            let write_err = |e: ParquetError| SinkError::Write {
                path: self.path.clone(),
                reason: e.to_string(),
            };
            let mut kind = SinkKind::new(file, self.format, empty).map_err(write_err)?;
            if let SinkKind::Parquet(Some(w), file) = &mut kind {
                if self.append && self.path.exists() {
                    std::fs::File::open(&self.path)
                        .map_err(ParquetError::from)
                        .and_then(|src| copy_questions(src, w, file))
                        .map_err(write_err)?;
                }
            }
            self.kind = Some(kind);
        }
        Ok(self.kind.as_mut().expect("opened above"))
    }

    /// Writes one page's records and flushes them. A page without records
    /// still opens a replacing output: a crawl whose pages came back empty
    /// (a misspelled tag) writes an empty output, so a reader finds the file
    /// this crawl made rather than none or an earlier crawl's. An appending
    /// output has nothing to add.
    pub fn write_page(&mut self, questions: &[Question]) -> Result<(), SinkError> {
        if questions.is_empty() {
            if !self.append {
                self.open()?;
            }
            return Ok(());
        }
        let path = self.path.clone();
        self.open()?.write(questions).map_err(|f| match f {
            WriteFailure::Lasting(reason) => SinkError::Refused { path, reason },
            WriteFailure::Once(reason) => SinkError::Write { path, reason },
        })
    }

    /// Ends the output: the records written replace the output in one
    /// rename. Returns whether a page was written (with or without
    /// records); without one, the output is not touched.
    pub fn finish(&mut self) -> Result<bool, SinkError> {
        let Some(mut kind) = self.kind.take() else {
            return Ok(false);
        };
        let write_err = |reason: String| SinkError::Write {
            path: self.path.clone(),
            reason,
        };
        kind.write(&[]).map_err(|f| write_err(f.into_reason()))?;
        if let SinkKind::Csv(file, true) = &mut kind {
            let header =
                super::export::question_csv_header().map_err(|e| write_err(e.to_string()))?;
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(&header)
                .map_err(|e| write_err(e.to_string()))?;
            let bytes = w.into_inner().map_err(|e| write_err(e.to_string()))?;
            file.append(&bytes)
                .map_err(|f| write_err(f.into_reason()))?;
        }
        if let SinkKind::Parquet(w, file) = &mut kind {
            // The footer: only now is the file readable. A crawl killed
            // before it leaves a `.partial` file no reader opens.
            if let Some(w) = w.take() {
                w.finish(file).map_err(|e| write_err(e.to_string()))?;
            }
        }
        if !self.in_place() {
            // On disk before the rename, so a power cut cannot leave an
            // empty file under the output's name.
            kind.sync().map_err(|e| write_err(e.to_string()))?;
            drop(kind);
            std::fs::rename(self.partial_path(), &self.path)
                .map_err(|e| write_err(format!("cannot replace it: {e}")))?;
        }
        Ok(true)
    }

    /// Replaces the output with what `fill` writes (the store's records of
    /// a resumed pass), through the same temporary file and rename. If
    /// `fill` writes no record the output is left as it was. Returns the
    /// records written.
    pub fn replace_with<E: std::fmt::Display>(
        &mut self,
        fill: impl FnOnce(&mut dyn Write, OutputFormat) -> Result<u64, E>,
    ) -> Result<u64, SinkError> {
        // Records this run already wrote are part of what `fill` writes.
        self.kind = None;
        let partial = self.partial_path();
        let write_err = |reason: String| SinkError::Write {
            path: self.path.clone(),
            reason,
        };
        let file = File::create(&partial).map_err(|e| self.create_error(&partial, e))?;
        let mut w = BufWriter::new(file);
        let n = fill(&mut w, self.format).map_err(|e| write_err(e.to_string()))?;
        let file = w
            .into_inner()
            .map_err(|e| write_err(e.error().to_string()))?;
        if n == 0 {
            drop(file);
            let _ = std::fs::remove_file(&partial);
            return Ok(0);
        }
        file.sync_all().map_err(|e| write_err(e.to_string()))?;
        drop(file);
        std::fs::rename(&partial, &self.path)
            .map_err(|e| write_err(format!("cannot replace it: {e}")))?;
        Ok(n)
    }

    /// Whether records go after the output's (`--retry-failed`) rather
    /// than replacing it.
    pub fn is_append(&self) -> bool {
        self.append
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SinkKind {
    fn new(file: File, format: OutputFormat, empty: bool) -> Result<SinkKind, ParquetError> {
        Ok(match format {
            OutputFormat::Jsonl => SinkKind::Jsonl(PageFile::new(file)?),
            OutputFormat::Csv => SinkKind::Csv(PageFile::new(file)?, empty),
            OutputFormat::Parquet => {
                SinkKind::Parquet(Some(Box::new(ParquetWriter::new()?)), BufWriter::new(file))
            }
        })
    }

    fn write(&mut self, questions: &[Question]) -> Result<(), WriteFailure> {
        match self {
            SinkKind::Jsonl(file) => {
                let mut page = Vec::new();
                for q in questions {
                    serde_json::to_writer(&mut page, q).map_err(WriteFailure::once)?;
                    page.push(b'\n');
                }
                file.append(&page)
            }
            SinkKind::Csv(file, headerless) => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(*headerless)
                    .from_writer(Vec::new());
                questions
                    .iter()
                    .try_for_each(|q| w.serialize(CsvRow::from(q)).map_err(WriteFailure::once))?;
                let page = w.into_inner().map_err(WriteFailure::once)?;
                file.append(&page)?;
                *headerless &= questions.is_empty();
                Ok(())
            }
            // One page batch; a row group is written once enough wait.
            // A writer that failed part-way has row groups in an unknown
            // state: no later page can be added after them.
            SinkKind::Parquet(Some(w), file) => w
                .push_batch(questions.iter().cloned(), file)
                .map_err(|e| WriteFailure::Lasting(e.to_string())),
            SinkKind::Parquet(None, _) => Err(WriteFailure::Lasting(
                "the Parquet file is already closed".into(),
            )),
        }
    }

    fn sync(&self) -> std::io::Result<()> {
        match self {
            SinkKind::Jsonl(f) | SinkKind::Csv(f, _) => f.file.sync_all(),
            SinkKind::Parquet(_, w) => w.get_ref().sync_all(),
        }
    }
}

/// A text output (JSON lines, CSV) written a page at a time, each page in
/// one write. A write that fails part-way (a full disk) is cut back off,
/// so the file always ends with the last page written whole: the crawl
/// stops there, and a `--retry-failed` run adds the failed page after it
/// rather than after half a line.
struct PageFile {
    file: File,
    /// The file's length after the last page written whole.
    len: u64,
    /// A failed page could not be cut off again: the file ends in a torn
    /// line, and takes no more records.
    torn: bool,
}

impl PageFile {
    fn new(file: File) -> std::io::Result<PageFile> {
        let len = file.metadata()?.len();
        Ok(PageFile {
            file,
            len,
            torn: false,
        })
    }

    fn append(&mut self, page: &[u8]) -> Result<(), WriteFailure> {
        if self.torn {
            return Err(WriteFailure::Lasting(
                "the file ends in a page written in part, and takes no more".into(),
            ));
        }
        if page.is_empty() {
            return Ok(());
        }
        match self.file.write_all(page) {
            Ok(()) => {
                self.len += page.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A file opened for appending writes at its end whatever
                // the cursor says; one opened afresh needs the cursor back.
                let cut = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.seek(SeekFrom::Start(self.len)).map(drop));
                match cut {
                    Ok(()) => Err(WriteFailure::io(e)),
                    Err(cut) => {
                        self.torn = true;
                        Err(WriteFailure::Lasting(format!(
                            "{e}; what was written of the page could not be cut off: {cut}"
                        )))
                    }
                }
            }
        }
    }
}

/// Why a page's records did not reach the output.
enum WriteFailure {
    /// Every later page would fail the same way.
    Lasting(String),
    Once(String),
}

impl WriteFailure {
    fn io(e: std::io::Error) -> WriteFailure {
        if is_lasting(&e) {
            WriteFailure::Lasting(e.to_string())
        } else {
            WriteFailure::Once(e.to_string())
        }
    }

    fn once(e: impl std::fmt::Display) -> WriteFailure {
        WriteFailure::Once(e.to_string())
    }

    fn into_reason(self) -> String {
        match self {
            WriteFailure::Lasting(r) | WriteFailure::Once(r) => r,
        }
    }
}

/// The directory `path` is in; a bare file name is in the current one.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
