//! Record sinks: JSONL (one object a line) or CSV with tags joined by ';',
//! both readable by pandas as is. Every page's records are flushed when the
//! page is written, so a crash loses at most the page being written.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use crate::config::OutputFormat;
use crate::model::Question;

#[derive(Debug, Error)]
pub enum SinkError {
    #[error("cannot create output {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write output {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

pub struct Sink {
    path: PathBuf,
    kind: SinkKind,
}

enum SinkKind {
    Jsonl(BufWriter<File>),
    Csv(Box<csv::Writer<File>>),
}

/// The CSV row: `Question` flattened, since CSV has no lists. Shared with
/// the store's export so that both read alike.
#[derive(Serialize)]
pub(crate) struct CsvRow<'a> {
    site: &'a str,
    question_id: u64,
    url: &'a str,
    title: &'a str,
    excerpt: &'a str,
    votes: i64,
    answers: u64,
    replies: Option<u64>,
    views: u64,
    views_exact: bool,
    tags: String,
    has_accepted_answer: bool,
    author_name: Option<&'a str>,
    author_reputation: Option<u64>,
    asked_at: Option<String>,
    modified_at: Option<String>,
    answered_at: Option<String>,
    bounty: Option<u32>,
    status: crate::model::QuestionStatus,
    post_kind: crate::model::PostKind,
    community_wiki: bool,
    tag: &'a str,
    tab: &'a str,
    page: u32,
    fetched_at: String,
}

impl<'a> From<&'a Question> for CsvRow<'a> {
    fn from(q: &'a Question) -> Self {
        let ts = |t: &Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
        CsvRow {
            site: &q.site,
            question_id: q.question_id,
            url: &q.url,
            title: &q.title,
            excerpt: &q.excerpt,
            votes: q.votes,
            answers: q.answers,
            replies: q.replies,
            views: q.views,
            views_exact: q.views_exact,
            tags: q.tags.join(";"),
            has_accepted_answer: q.has_accepted_answer,
            author_name: q.author_name.as_deref(),
            author_reputation: q.author_reputation,
            asked_at: ts(&q.asked_at),
            modified_at: ts(&q.modified_at),
            answered_at: ts(&q.answered_at),
            bounty: q.bounty,
            status: q.status,
            post_kind: q.post_kind,
            community_wiki: q.community_wiki,
            tag: &q.tag,
            tab: &q.tab,
            page: q.page,
            fetched_at: q.fetched_at.to_rfc3339(),
        }
    }
}

impl Sink {
    /// Creates (or truncates) the output.
    pub fn create(path: &Path, format: OutputFormat) -> Result<Sink, SinkError> {
        Sink::open(path, format, false)
    }

    /// Opens the output to add records after those already there, as a
    /// `--retry-failed` run does; a CSV header is written only to an empty file.
    pub fn append(path: &Path, format: OutputFormat) -> Result<Sink, SinkError> {
        Sink::open(path, format, true)
    }

    fn open(path: &Path, format: OutputFormat, append: bool) -> Result<Sink, SinkError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|source| SinkError::Create {
                path: path.to_path_buf(),
                source,
            })?;
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        let kind = match format {
            OutputFormat::Jsonl => SinkKind::Jsonl(BufWriter::new(file)),
            OutputFormat::Csv => SinkKind::Csv(Box::new(
                csv::WriterBuilder::new()
                    .has_headers(empty)
                    .from_writer(file),
            )),
        };
        Ok(Sink {
            path: path.to_path_buf(),
            kind,
        })
    }

    /// Writes one page's records and flushes them.
    pub fn write_page(&mut self, questions: &[Question]) -> Result<(), SinkError> {
        let res = match &mut self.kind {
            SinkKind::Jsonl(w) => questions
                .iter()
                .try_for_each(|q| {
                    serde_json::to_writer(&mut *w, q).map_err(|e| e.to_string())?;
                    w.write_all(b"\n").map_err(|e| e.to_string())
                })
                .and_then(|()| w.flush().map_err(|e| e.to_string())),
            SinkKind::Csv(w) => questions
                .iter()
                .try_for_each(|q| w.serialize(CsvRow::from(q)).map_err(|e| e.to_string()))
                .and_then(|()| w.flush().map_err(|e| e.to_string())),
        };
        res.map_err(|reason| SinkError::Write {
            path: self.path.clone(),
            reason,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
