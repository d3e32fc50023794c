//! Reading a PostgreSQL store: `report`, `report --html`'s history, the
//! exports and the status line's sizes. The report's per-tag totals are
//! the SQLite store's in PostgreSQL's dialect (`FILTER`, casts of sums back
//! to BIGINT); its co-tags and growth, and the whole history, run the
//! SQLite store's own portable statements; the rows go out through the
//! same writers, so both backends export byte for byte alike.

use std::io::Write;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, Row};

use super::{signed, unsigned};
use crate::model::{PostKind, Question, QuestionStatus};
use crate::store::export::{write_records, Record};
use crate::store::OutputFormat;
use crate::store::{
    enum_text, history, parse_enum,
    report::{share, CO_TAGS_SQL, GROWTH_SQL},
    CoTag, DayCount, Growth, History, HistoryRow, PassShare, QuestionViews, Report, StoreError,
    StoreStats, TagReport,
};

/// Cheap on any size of store: the questions and snapshots are the
/// counters the page writes keep (`store_counts`, at most 16 rows), exact;
/// passes are few (one per tag set per interval) and counted; the size is
/// the server's sum of the database's files.
pub(super) fn stats(c: &mut Client) -> Result<StoreStats, StoreError> {
    let r = c.query_one(
        "SELECT COALESCE(SUM(questions), 0)::BIGINT, COALESCE(SUM(snapshots), 0)::BIGINT,
                (SELECT COUNT(*) FROM passes), pg_database_size(current_database())
         FROM store_counts",
        &[],
    )?;
    let n = |i: usize| -> Result<u64, StoreError> { unsigned("stats", r.try_get(i)?) };
    Ok(StoreStats {
        questions: n(0)?,
        snapshots: n(1)?,
        passes: n(2)?,
        size_bytes: n(3)?,
    })
}

pub(super) fn report(c: &mut Client, top_n: usize) -> Result<Report, StoreError> {
    let top = signed(top_n as u64);
    let mut tags = Vec::new();
    for r in c.query(
        "SELECT c.crawl_tag, COUNT(*), COALESCE(SUM(q.views), 0)::BIGINT,
                COALESCE(SUM(q.votes), 0)::BIGINT, COALESCE(SUM(q.answers), 0)::BIGINT,
                COUNT(*) FILTER (WHERE q.answers = 0 AND q.post_kind = $1)
         FROM question_crawl_tags c JOIN questions q USING (site, question_id)
         GROUP BY c.crawl_tag ORDER BY c.crawl_tag",
        &[&enum_text(&PostKind::Question)?],
    )? {
        let questions = unsigned("report", r.try_get(1)?)?;
        let unanswered = unsigned("report", r.try_get(5)?)?;
        tags.push(TagReport {
            tag: r.try_get(0)?,
            questions,
            views: unsigned("report", r.try_get(2)?)?,
            votes: r.try_get(3)?,
            answers: unsigned("report", r.try_get(4)?)?,
            unanswered,
            unanswered_share: share(unanswered, questions),
            co_tags: Vec::new(),
        });
    }
    let co = c.prepare(CO_TAGS_SQL)?;
    for t in &mut tags {
        for r in c.query(&co, &[&t.tag, &top])? {
            let n = unsigned("report", r.try_get(1)?)?;
            t.co_tags.push(CoTag {
                tag: r.try_get(0)?,
                questions: n,
                share: share(n, t.questions),
            });
        }
    }
    let growth = c
        .query(GROWTH_SQL, &[&top])?
        .iter()
        .map(growth_row)
        .collect::<Result<_, _>>()?;
    Ok(Report { tags, growth })
}

/// The history `report --html` draws, by the SQLite store's own statements.
pub(super) fn history(c: &mut Client, top_n: usize) -> Result<History, StoreError> {
    let question = enum_text(&PostKind::Question)?;
    let count =
        |r: &Row, i: usize| -> Result<u64, StoreError> { unsigned("history", r.try_get(i)?) };
    let mut h = History::default();
    let day_counts = |c: &mut Client, sql: &str| -> Result<Vec<DayCount>, StoreError> {
        c.query(sql, &[])?
            .iter()
            .map(|r| {
                Ok(DayCount {
                    tag: r.try_get(0)?,
                    day: r.try_get(1)?,
                    questions: count(r, 2)?,
                })
            })
            .collect()
    };
    h.asked_per_day = day_counts(c, history::ASKED_PER_DAY_PG_SQL)?;
    h.seen_per_day = day_counts(c, history::SEEN_PER_DAY_PG_SQL)?;
    let pairs = |rows: Vec<Row>| -> Result<Vec<(i64, u64)>, StoreError> {
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, count(r, 1)?)))
            .collect()
    };
    h.views = history::views_buckets(pairs(c.query(history::VIEWS_SQL, &[])?)?);
    h.answers = history::answers_buckets(pairs(
        c.query(history::ANSWERS_SQL, &[&history::ANSWERS_CAP, &question])?,
    )?);
    for r in c.query(history::PASSES_SQL, &[&question])? {
        h.passes.push(PassShare::new(
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get::<_, SystemTime>(2)?.into(),
            count(&r, 3)?,
            count(&r, 4)?,
            r.try_get(5)?,
        ));
    }
    for r in c.query(history::GROWTH_SINCE_FIRST_SQL, &[&signed(top_n as u64)])? {
        h.growth.push(growth_row(&r)?);
    }
    let views = c.prepare(history::VIEWS_OVER_TIME_SQL)?;
    for g in h.growth.iter().take(history::VIEW_LINES) {
        let mut line = QuestionViews {
            site: g.site.clone(),
            question_id: g.question_id,
            points: Vec::new(),
        };
        for r in c.query(&views, &[&g.site, &signed(g.question_id)])? {
            line.points
                .push((r.try_get::<_, SystemTime>(0)?.into(), count(&r, 1)?));
        }
        h.views_over_time.push(line);
    }
    Ok(h)
}

/// A `Growth` from a row in the growth queries' shared shape (see the
/// SQLite store's `growth_row`).
fn growth_row(r: &Row) -> Result<Growth, StoreError> {
    Ok(Growth {
        site: r.try_get(0)?,
        question_id: unsigned("snapshots.question_id", r.try_get(1)?)?,
        title: r.try_get(2)?,
        url: r.try_get(3)?,
        from_pass: r.try_get(4)?,
        to_pass: r.try_get(5)?,
        from_seen_at: r.try_get::<_, SystemTime>(6)?.into(),
        to_seen_at: r.try_get::<_, SystemTime>(7)?.into(),
        views_gained: r.try_get(8)?,
        votes_gained: r.try_get(9)?,
        answers_gained: r.try_get(10)?,
    })
}

pub(super) fn export(
    c: &mut Client,
    w: impl Write,
    format: OutputFormat,
    history: bool,
) -> Result<u64, StoreError> {
    if history {
        stream(
            c,
            "SELECT site, question_id, pass_id, seen_at, votes, answers, views
             FROM snapshots ORDER BY site, question_id, pass_id, seen_at",
            &[],
            w,
            format,
            true,
        )
    } else {
        stream(
            c,
            "SELECT * FROM questions ORDER BY site, question_id",
            &[],
            w,
            format,
            false,
        )
    }
}

pub(super) fn export_pass(
    c: &mut Client,
    pass_id: i64,
    w: impl Write,
    format: OutputFormat,
) -> Result<u64, StoreError> {
    stream(
        c,
        "SELECT q.* FROM questions q
         JOIN snapshots s ON s.site = q.site AND s.question_id = q.question_id
         WHERE s.pass_id = $1
         ORDER BY q.site, q.question_id",
        &[&pass_id],
        w,
        format,
        false,
    )
}

/// Rows as the server sends them, never the whole result in memory.
fn stream(
    c: &mut Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    w: impl Write,
    format: OutputFormat,
    history: bool,
) -> Result<u64, StoreError> {
    let read = if history { history_row } else { question_row };
    let mut rows = c.query_raw(sql, params.iter().copied())?;
    let records = std::iter::from_fn(move || match rows.next() {
        Ok(Some(r)) => Some(read(&r)),
        Ok(None) => None,
        Err(e) => Some(Err(e.into())),
    });
    write_records(records, w, format, history)
}

fn question_row(r: &Row) -> Result<Record, StoreError> {
    let tags: String = r.try_get("tags")?;
    let opt_unsigned = |column: &'static str| -> Result<Option<u64>, StoreError> {
        r.try_get::<_, Option<i64>>(column)?
            .map(|v| unsigned(column, v))
            .transpose()
    };
    let opt_time = |column: &'static str| -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(r.try_get::<_, Option<SystemTime>>(column)?
            .map(DateTime::from))
    };
    Ok(Record::Question(Question {
        site: r.try_get("site")?,
        question_id: unsigned("question_id", r.try_get("question_id")?)?,
        url: r.try_get("url")?,
        title: r.try_get("title")?,
        excerpt: r.try_get("excerpt")?,
        votes: r.try_get("votes")?,
        answers: unsigned("answers", r.try_get("answers")?)?,
        replies: opt_unsigned("replies")?,
        views: unsigned("views", r.try_get("views")?)?,
        views_exact: r.try_get("views_exact")?,
        tags: serde_json::from_str(&tags).map_err(|e| StoreError::Decode {
            column: "questions.tags",
            value: tags.clone(),
            reason: e.to_string(),
        })?,
        has_accepted_answer: r.try_get("has_accepted_answer")?,
        author_name: r.try_get("author_name")?,
        author_reputation: opt_unsigned("author_reputation")?,
        asked_at: opt_time("asked_at")?,
        modified_at: opt_time("modified_at")?,
        answered_at: opt_time("answered_at")?,
        bounty: opt_unsigned("bounty")?
            .map(|b| {
                u32::try_from(b).map_err(|e| StoreError::Decode {
                    column: "questions.bounty",
                    value: b.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()?,
        status: parse_enum::<QuestionStatus>("questions.status", r.try_get("status")?)?,
        post_kind: parse_enum::<PostKind>("questions.post_kind", r.try_get("post_kind")?)?,
        community_wiki: r.try_get("community_wiki")?,
        tag: r.try_get("tag")?,
        tab: r.try_get("tab")?,
        page: u32::try_from(r.try_get::<_, i32>("page")?).map_err(|e| StoreError::Decode {
            column: "questions.page",
            value: String::new(),
            reason: e.to_string(),
        })?,
        fetched_at: r.try_get::<_, SystemTime>("fetched_at")?.into(),
        author_user_id: r.try_get("author_user_id")?,
        author_has_profile: r.try_get("author_has_profile")?,
        author_action: r
            .try_get::<_, Option<String>>("author_action")?
            .map(|a| parse_enum("questions.author_action", a))
            .transpose()?,
    }))
}

fn history_row(r: &Row) -> Result<Record, StoreError> {
    Ok(Record::History(HistoryRow {
        site: r.try_get(0)?,
        question_id: unsigned("snapshots.question_id", r.try_get(1)?)?,
        pass_id: r.try_get(2)?,
        seen_at: r.try_get::<_, SystemTime>(3)?.into(),
        votes: r.try_get(4)?,
        answers: unsigned("snapshots.answers", r.try_get(5)?)?,
        views: unsigned("snapshots.views", r.try_get(6)?)?,
    }))
}
