//! `stackcrawl export` and a resumed crawl's output: rows streamed out of
//! the store as JSONL, CSV or Parquet, in the very formats the crawl itself
//! writes.
//!
//! Kept apart because its contract is with the crawl's output
//! (`output::CsvRow`, `Question`'s JSON), not with the schema: a row read
//! back must serialise exactly as the crawl wrote it, so this file reads a
//! `Question` out of a row and hands it to the same writers.

use std::io::Write;

use chrono::{DateTime, Utc};
use rusqlite::Row;
use serde::{Deserialize, Serialize};

use super::parquet::{ParquetRow, ParquetWriter};
use super::{parse_enum, parse_opt_ts, parse_ts, Store, StoreError};
use crate::model::{csv_time, CsvRow};
use crate::model::{PostKind, Question, QuestionStatus};

/// What a file output holds: one JSON object a line, CSV, or Parquet
/// (typed columns, see `store::parquet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Jsonl,
    Csv,
    Parquet,
}

/// The export formats are the crawl output's, so exporting takes the
/// config's `OutputFormat` itself. `ExportFormat` was a copy of it with a
/// `From` between the two; the name stays as an alias so that `main.rs` and
/// the aggregator, which spell it, compile unchanged until they move to
/// `OutputFormat`.
pub type ExportFormat = OutputFormat;

/// One snapshot, as the history export writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub site: String,
    pub question_id: u64,
    pub pass_id: i64,
    pub seen_at: DateTime<Utc>,
    pub votes: i64,
    pub answers: u64,
    pub views: u64,
}

impl Store {
    /// Streams the latest state of every question (or, with `history`,
    /// every snapshot) to `w`, ordered by site and id. Returns rows written.
    pub fn export(
        &self,
        w: impl Write,
        format: OutputFormat,
        history: bool,
    ) -> Result<u64, StoreError> {
        let sql = if history {
            "SELECT site, question_id, pass_id, seen_at, votes, answers, views
             FROM snapshots ORDER BY site, question_id, pass_id, seen_at"
        } else {
            "SELECT * FROM questions ORDER BY site, question_id"
        };
        self.write_rows(sql, [], w, format, history)
    }

    /// Streams the questions seen in one pass (those with a snapshot in
    /// it), latest state, in the export's formats, which are the crawl
    /// output's: a resumed `crawl --store` rewrites its output with these,
    /// so the output holds the records of the whole pass, not only of the
    /// part fetched after the restart. Returns rows written.
    pub fn export_pass(
        &self,
        pass_id: i64,
        w: impl Write,
        format: OutputFormat,
    ) -> Result<u64, StoreError> {
        self.write_rows(
            "SELECT q.* FROM questions q
             JOIN snapshots s ON s.site = q.site AND s.question_id = q.question_id
             WHERE s.pass_id = ?1
             ORDER BY q.site, q.question_id",
            [pass_id],
            w,
            format,
            false,
        )
    }

    fn write_rows(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        w: impl Write,
        format: OutputFormat,
        history: bool,
    ) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(params)?;
        let mut next = move |read: fn(&Row) -> Result<Record, StoreError>| {
            rows.next()
                .map_err(StoreError::from)
                .and_then(|r| r.map(read).transpose())
        };
        if history {
            write_records(
                std::iter::from_fn(|| {
                    next(|r| history_from_row(r).map(Record::History)).transpose()
                }),
                w,
                format,
                true,
            )
        } else {
            write_records(
                std::iter::from_fn(|| {
                    next(|r| question_from_row(r).map(Record::Question)).transpose()
                }),
                w,
                format,
                false,
            )
        }
    }
}

/// A row of an export: a question's latest state or one snapshot. Rows are
/// streamed one at a time, so the variants' sizes need not match.
#[allow(clippy::large_enum_variant)]
pub(super) enum Record {
    Question(Question),
    History(HistoryRow),
}

/// Writes rows, read by any backend, in the crawl output's formats; an
/// empty CSV export still gets the header of its kind of row (`history`).
pub(super) fn write_records(
    rows: impl Iterator<Item = Result<Record, StoreError>>,
    w: impl Write,
    format: OutputFormat,
    history: bool,
) -> Result<u64, StoreError> {
    let mut n = 0;
    match format {
        OutputFormat::Jsonl => {
            let mut w = std::io::BufWriter::new(w);
            for r in rows {
                match r? {
                    Record::History(h) => serde_json::to_writer(&mut w, &h)?,
                    Record::Question(q) => serde_json::to_writer(&mut w, &q)?,
                }
                w.write_all(b"\n")?;
                n += 1;
            }
            w.flush()?;
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(w);
            for r in rows {
                match r? {
                    Record::History(h) => w.serialize(HistoryCsvRow::from(h))?,
                    Record::Question(q) => w.serialize(CsvRow::from(&q))?,
                }
                n += 1;
            }
            // An empty export still gets its header, so tools reading it
            // see the columns.
            if n == 0 {
                if history {
                    w.write_record(&csv_header(HistoryCsvRow::default())?)?;
                } else {
                    w.write_record(&question_csv_header()?)?;
                }
            }
            w.flush()?;
        }
        OutputFormat::Parquet => {
            let mut w = w;
            if history {
                n = write_parquet(rows, &mut w, |r| match r {
                    Record::History(h) => Some(h),
                    Record::Question(_) => None,
                })?;
            } else {
                n = write_parquet(rows, &mut w, |r| match r {
                    Record::Question(q) => Some(q),
                    Record::History(_) => None,
                })?;
            }
        }
    }
    Ok(n)
}

/// Rows of one kind (`pick`) as a Parquet file, in row groups of
/// `ROW_GROUP_ROWS`; an empty export is a file with the schema and no row.
fn write_parquet<R: ParquetRow>(
    rows: impl Iterator<Item = Result<Record, StoreError>>,
    w: &mut dyn Write,
    pick: fn(Record) -> Option<R>,
) -> Result<u64, StoreError> {
    let mut out = ParquetWriter::<R>::new()?;
    let mut n = 0;
    for r in rows {
        // Both kinds of row come from one query of one kind: another
        // kind here is a bug in the caller, told rather than dropped.
        let row = pick(r?).ok_or_else(|| StoreError::Decode {
            column: "export",
            value: String::new(),
            reason: "a row of another kind than the export's".into(),
        })?;
        out.push_batch([row], w)?;
        n += 1;
    }
    out.finish(w)?;
    Ok(n)
}

fn question_from_row(r: &Row) -> Result<Question, StoreError> {
    let tags: String = r.get("tags")?;
    Ok(Question {
        site: r.get("site")?,
        question_id: r.get("question_id")?,
        url: r.get("url")?,
        title: r.get("title")?,
        excerpt: r.get("excerpt")?,
        votes: r.get("votes")?,
        answers: r.get("answers")?,
        replies: r.get("replies")?,
        views: r.get("views")?,
        views_exact: r.get("views_exact")?,
        tags: serde_json::from_str(&tags).map_err(|e| StoreError::Decode {
            column: "questions.tags",
            value: tags.clone(),
            reason: e.to_string(),
        })?,
        has_accepted_answer: r.get("has_accepted_answer")?,
        author_name: r.get("author_name")?,
        author_reputation: r.get("author_reputation")?,
        asked_at: parse_opt_ts("questions.asked_at", r.get("asked_at")?)?,
        modified_at: parse_opt_ts("questions.modified_at", r.get("modified_at")?)?,
        answered_at: parse_opt_ts("questions.answered_at", r.get("answered_at")?)?,
        bounty: r.get("bounty")?,
        status: parse_enum::<QuestionStatus>("questions.status", r.get("status")?)?,
        post_kind: parse_enum::<PostKind>("questions.post_kind", r.get("post_kind")?)?,
        community_wiki: r.get("community_wiki")?,
        tag: r.get("tag")?,
        tab: r.get("tab")?,
        page: r.get("page")?,
        fetched_at: parse_ts("questions.fetched_at", r.get("fetched_at")?)?,
        author_user_id: r.get("author_user_id")?,
        author_has_profile: r.get("author_has_profile")?,
        author_action: r
            .get::<_, Option<String>>("author_action")?
            .map(|a| parse_enum("questions.author_action", a))
            .transpose()?,
    })
}

fn history_from_row(r: &Row) -> Result<HistoryRow, StoreError> {
    Ok(HistoryRow {
        site: r.get(0)?,
        question_id: r.get(1)?,
        pass_id: r.get(2)?,
        seen_at: parse_ts("snapshots.seen_at", r.get(3)?)?,
        votes: r.get(4)?,
        answers: r.get(5)?,
        views: r.get(6)?,
    })
}

/// The header csv writes before rows of `T`, taken from one serialised row
/// so that an empty export's header is the one its rows would have had,
/// rather than a hand-kept copy of their columns that could drift.
fn csv_header<T: Serialize>(row: T) -> Result<csv::StringRecord, StoreError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(row)?;
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(csv::Reader::from_reader(bytes.as_slice())
        .headers()?
        .clone())
}

/// The header of the crawl's CSV rows, for a file that has none (an empty
/// export, a crawl whose tags list nothing).
pub(super) fn question_csv_header() -> Result<csv::StringRecord, StoreError> {
    csv_header(CsvRow::from(&placeholder_question()))
}

/// A question of empty, zero and `None` fields, serialised only for the
/// crawl's CSV header (`Question` has no `Default`, and needs none).
fn placeholder_question() -> Question {
    Question {
        site: String::new(),
        question_id: 0,
        url: String::new(),
        title: String::new(),
        excerpt: String::new(),
        votes: 0,
        answers: 0,
        replies: None,
        views: 0,
        views_exact: false,
        tags: Vec::new(),
        has_accepted_answer: false,
        author_name: None,
        author_reputation: None,
        asked_at: None,
        modified_at: None,
        answered_at: None,
        bounty: None,
        status: QuestionStatus::default(),
        post_kind: PostKind::default(),
        community_wiki: false,
        tag: String::new(),
        tab: String::new(),
        page: 0,
        fetched_at: DateTime::<Utc>::UNIX_EPOCH,
        author_user_id: None,
        author_has_profile: false,
        author_action: None,
    }
}

/// History in CSV: `seen_at` written as the crawl's CSV writes times.
#[derive(Serialize, Default)]
struct HistoryCsvRow {
    site: String,
    question_id: u64,
    pass_id: i64,
    seen_at: String,
    votes: i64,
    answers: u64,
    views: u64,
}

impl From<HistoryRow> for HistoryCsvRow {
    fn from(h: HistoryRow) -> Self {
        HistoryCsvRow {
            site: h.site,
            question_id: h.question_id,
            pass_id: h.pass_id,
            seen_at: csv_time(&h.seen_at),
            votes: h.votes,
            answers: h.answers,
            views: h.views,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::store::fixtures::*;

    #[test]
    fn jsonl_export_round_trips_into_question() {
        let mut s = Store::open_in_memory().unwrap();
        let mut full = q(7, "rust", &["rust", "c#", "c++"], -2, 0, 3_100_000);
        full.title = "Quotes \" and, commas; here".into();
        full.views_exact = false;
        full.replies = Some(3);
        full.post_kind = PostKind::Advice;
        full.status = QuestionStatus::OnHold;
        full.has_accepted_answer = true;
        full.author_name = None;
        full.author_reputation = None;
        full.modified_at = Some(Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap());
        full.answered_at = Some(at(3));
        full.bounty = Some(50);
        full.community_wiki = true;
        full.fetched_at = Utc.timestamp_opt(1_740_000_000, 1).unwrap();
        let plain = q(3, "rust", &["rust"], 1, 1, 1);
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        s.record_page(p, &ctx("rust", 1), &[full.clone(), plain.clone()], at(1))
            .unwrap();
        // A later sighting under another tab and page is the latest state.
        let mut moved = full.clone();
        moved.tab = "active".into();
        moved.page = 4;
        moved.views = 3_200_000;
        s.record_page(p, &ctx("rust", 4), &[moved.clone()], at(2))
            .unwrap();

        let mut out = Vec::new();
        let n = s.export(&mut out, ExportFormat::Jsonl, false).unwrap();
        assert_eq!(n, 2);
        let text = String::from_utf8(out).unwrap();
        let back: Vec<Question> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, [plain, moved]);
    }

    #[test]
    fn csv_export_has_the_crawl_columns() {
        let s = report_fixture();
        let mut out = Vec::new();
        let n = s.export(&mut out, ExportFormat::Csv, false).unwrap();
        assert_eq!(n, 4);
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "site,question_id,url,title,excerpt,votes,answers,replies,views,views_exact,\
             tags,has_accepted_answer,author_name,author_reputation,asked_at,modified_at,\
             answered_at,bounty,status,post_kind,community_wiki,tag,tab,page,fetched_at,\
             author_user_id,author_has_profile,author_action"
        );
        assert!(lines.next().unwrap().contains(",rust;tokio,"));
        assert_eq!(text.lines().count(), 5);

        let mut empty = Vec::new();
        let n = Store::open_in_memory()
            .unwrap()
            .export(&mut empty, ExportFormat::Csv, false)
            .unwrap();
        assert_eq!(n, 0);
        // The same header as when there are rows.
        let header = text.lines().next().unwrap();
        assert_eq!(String::from_utf8(empty).unwrap(), format!("{header}\n"));
    }

    #[test]
    fn an_empty_history_export_has_the_history_columns() {
        let mut empty = Vec::new();
        let n = Store::open_in_memory()
            .unwrap()
            .export(&mut empty, ExportFormat::Csv, true)
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            String::from_utf8(empty).unwrap(),
            "site,question_id,pass_id,seen_at,votes,answers,views\n"
        );
    }

    #[test]
    fn csv_and_jsonl_write_times_alike() {
        let s = report_fixture();
        for history in [false, true] {
            let (mut jsonl, mut csv) = (Vec::new(), Vec::new());
            s.export(&mut jsonl, ExportFormat::Jsonl, history).unwrap();
            s.export(&mut csv, ExportFormat::Csv, history).unwrap();
            let json_rows: Vec<serde_json::Value> = String::from_utf8(jsonl)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let mut reader = csv::Reader::from_reader(csv.as_slice());
            let headers = reader.headers().unwrap().clone();
            let columns = ["asked_at", "fetched_at", "seen_at"];
            let mut compared = 0;
            for (row, json) in reader.records().zip(&json_rows) {
                let row = row.unwrap();
                for (name, field) in headers.iter().zip(row.iter()) {
                    if columns.contains(&name) {
                        let want = json[name].as_str().unwrap();
                        assert!(want.ends_with('Z'), "{want}");
                        assert_eq!(field, want, "{name}, history {history}");
                        compared += 1;
                    }
                }
            }
            assert!(compared >= json_rows.len(), "history {history}");
        }
    }

    #[test]
    fn history_export_writes_one_row_per_snapshot() {
        let s = report_fixture();
        // Pass 1: #1 (once, though listed twice), #2, #3, #4; pass 2: #1, #2, #4.
        let mut out = Vec::new();
        assert_eq!(s.export(&mut out, ExportFormat::Jsonl, true).unwrap(), 7);
        let rows: Vec<HistoryRow> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 7);
        assert_eq!(
            rows[0],
            HistoryRow {
                site: "stackoverflow.com".into(),
                question_id: 1,
                pass_id: 1,
                seen_at: at(1),
                votes: 5,
                answers: 2,
                views: 100,
            }
        );

        let mut out = Vec::new();
        assert_eq!(s.export(&mut out, ExportFormat::Csv, true).unwrap(), 7);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "site,question_id,pass_id,seen_at,votes,answers,views"
        );
        assert_eq!(text.lines().count(), 8);
    }
}
