//! `stackcrawl report`: per crawl tag totals, co-occurring tags, and the
//! questions that grew most between their two latest snapshots.
//!
//! Read-only, and run by another process while `run` writes (WAL lets it),
//! so it shares nothing with the write path but the schema; its SQL leans
//! on SQLite's window functions and is the part a second backend rewrites.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::{enum_text, parse_ts, Store, StoreError};
use crate::model::PostKind;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// One entry per crawl tag, by name.
    pub tags: Vec<TagReport>,
    /// Questions by views gained between their two latest snapshots, most
    /// first; only questions that gained views.
    pub growth: Vec<Growth>,
}

/// Latest state of the questions a crawl tag's listing showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagReport {
    pub tag: String,
    pub questions: u64,
    pub views: u64,
    pub votes: i64,
    pub answers: u64,
    /// Questions with no answer; Advice posts have replies, not answers,
    /// and are not counted (as the aggregator's `TagTotals`).
    pub unanswered: u64,
    pub unanswered_share: f64,
    /// Other tags on these questions, most frequent first.
    pub co_tags: Vec<CoTag>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoTag {
    pub tag: String,
    pub questions: u64,
    /// Share of the crawl tag's questions that carry this tag too.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Growth {
    pub site: String,
    pub question_id: u64,
    pub title: String,
    pub url: String,
    pub from_pass: i64,
    pub to_pass: i64,
    pub from_seen_at: DateTime<Utc>,
    pub to_seen_at: DateTime<Utc>,
    pub views_gained: i64,
    pub votes_gained: i64,
    pub answers_gained: i64,
}

/// Other tags on a crawl tag's questions, most frequent first. The report's
/// SQL that both backends speak alike is kept once, here (`$N` parameters
/// are numbered for SQLite as for PostgreSQL).
pub(super) const CO_TAGS_SQL: &str = "SELECT t.tag, COUNT(*) AS n
    FROM question_crawl_tags c JOIN question_tags t USING (site, question_id)
    WHERE c.crawl_tag = $1 AND t.tag <> $1
    GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT $2";

/// Each question's latest and previous snapshot by observation time (a
/// resumed pass can observe a question after a later-numbered pass of
/// another set), the questions that gained views, most first.
pub(super) const GROWTH_SQL: &str = "WITH w AS (
        SELECT site, question_id, pass_id, seen_at, votes, answers, views,
          ROW_NUMBER() OVER win AS rn,
          LEAD(pass_id) OVER win AS prev_pass,
          LEAD(seen_at) OVER win AS prev_seen_at,
          LEAD(votes) OVER win AS prev_votes,
          LEAD(answers) OVER win AS prev_answers,
          LEAD(views) OVER win AS prev_views
        FROM snapshots
        WINDOW win AS (PARTITION BY site, question_id ORDER BY seen_at DESC, pass_id DESC)
    )
    SELECT w.site, w.question_id, q.title, q.url, w.prev_pass, w.pass_id,
      w.prev_seen_at, w.seen_at, w.views - w.prev_views AS gained,
      w.votes - w.prev_votes, w.answers - w.prev_answers
    FROM w JOIN questions q USING (site, question_id)
    WHERE w.rn = 1 AND w.prev_views IS NOT NULL AND w.views > w.prev_views
    ORDER BY gained DESC, w.site, w.question_id
    LIMIT $1";

impl Store {
    /// Per crawl tag totals and co-occurring tags, and the questions that
    /// gained the most views; `top_n` bounds both lists.
    pub fn report(&self, top_n: usize) -> Result<Report, StoreError> {
        let mut tags = Vec::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT c.crawl_tag, COUNT(*), COALESCE(SUM(q.views), 0),
                        COALESCE(SUM(q.votes), 0), COALESCE(SUM(q.answers), 0),
                        COALESCE(SUM(q.answers = 0 AND q.post_kind = ?1), 0)
                 FROM question_crawl_tags c JOIN questions q USING (site, question_id)
                 GROUP BY c.crawl_tag ORDER BY c.crawl_tag",
            )?;
            let mut rows = stmt.query([enum_text(&PostKind::Question)?])?;
            while let Some(r) = rows.next()? {
                let questions: u64 = r.get(1)?;
                let unanswered: u64 = r.get(5)?;
                tags.push(TagReport {
                    tag: r.get(0)?,
                    questions,
                    views: r.get(2)?,
                    votes: r.get(3)?,
                    answers: r.get(4)?,
                    unanswered,
                    unanswered_share: share(unanswered, questions),
                    co_tags: Vec::new(),
                });
            }
        }
        let mut co = self.conn.prepare(CO_TAGS_SQL)?;
        for t in &mut tags {
            let mut rows = co.query(params![t.tag, top_n])?;
            while let Some(r) = rows.next()? {
                let n: u64 = r.get(1)?;
                t.co_tags.push(CoTag {
                    tag: r.get(0)?,
                    questions: n,
                    share: share(n, t.questions),
                });
            }
        }
        let mut stmt = self.conn.prepare(GROWTH_SQL)?;
        let mut rows = stmt.query([top_n])?;
        let mut growth = Vec::new();
        while let Some(r) = rows.next()? {
            growth.push(growth_row(r)?);
        }
        Ok(Report { tags, growth })
    }
}

/// A `Growth` from a row of site, question_id, title, url, from_pass,
/// to_pass, from_seen_at, to_seen_at and the views, votes and answers
/// gained, in that order: the growth queries' shared shape.
pub(super) fn growth_row(r: &rusqlite::Row) -> Result<Growth, StoreError> {
    Ok(Growth {
        site: r.get(0)?,
        question_id: r.get(1)?,
        title: r.get(2)?,
        url: r.get(3)?,
        from_pass: r.get(4)?,
        to_pass: r.get(5)?,
        from_seen_at: parse_ts("snapshots.seen_at", r.get(6)?)?,
        to_seen_at: parse_ts("snapshots.seen_at", r.get(7)?)?,
        views_gained: r.get(8)?,
        votes_gained: r.get(9)?,
        answers_gained: r.get(10)?,
    })
}

pub(super) fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::store::fixtures::*;

    #[test]
    fn report_totals_growth_and_co_tags() {
        let r = report_fixture().report(2).unwrap();
        assert_eq!(r.tags.len(), 2);
        let rust = &r.tags[0];
        assert_eq!(rust.tag, "rust");
        // 160 + 55 + 10 views, 5 - 1 + 0 votes, one unanswered (the Advice
        // post has replies, not answers, and does not count).
        assert_eq!(
            (
                rust.questions,
                rust.views,
                rust.votes,
                rust.answers,
                rust.unanswered
            ),
            (3, 225, 4, 2, 1)
        );
        assert!((rust.unanswered_share - 1.0 / 3.0).abs() < 1e-12);
        let co: Vec<_> = rust
            .co_tags
            .iter()
            .map(|c| (c.tag.as_str(), c.questions))
            .collect();
        // tokio on 2 questions; async and serde tie at 1, by name; top 2.
        assert_eq!(co, [("tokio", 2), ("async", 1)]);
        assert!((rust.co_tags[0].share - 2.0 / 3.0).abs() < 1e-12);

        let tokio = &r.tags[1];
        assert_eq!(tokio.tag, "tokio");
        assert_eq!(
            (
                tokio.questions,
                tokio.views,
                tokio.votes,
                tokio.answers,
                tokio.unanswered
            ),
            (2, 260, 6, 3, 0)
        );
        let co: Vec<_> = tokio
            .co_tags
            .iter()
            .map(|c| (c.tag.as_str(), c.questions))
            .collect();
        assert_eq!(co, [("rust", 1)]);

        // Gains between the two latest snapshots: #4 +80, #1 +60, #2 +5;
        // #3 has one snapshot only. Top 2.
        let g: Vec<_> = r
            .growth
            .iter()
            .map(|g| (g.question_id, g.views_gained, g.from_pass, g.to_pass))
            .collect();
        assert_eq!(g, [(4, 80, 1, 2), (1, 60, 1, 2)]);
        assert_eq!(
            (r.growth[0].from_seen_at, r.growth[0].to_seen_at),
            (at(1), at(5))
        );
        assert_eq!(
            (r.growth[0].votes_gained, r.growth[0].answers_gained),
            (0, 0)
        );
    }

    #[test]
    fn report_of_an_empty_store_is_empty() {
        let r = Store::open_in_memory().unwrap().report(10).unwrap();
        assert!(r.tags.is_empty() && r.growth.is_empty());
    }
}
