//! What `report --html` charts: the store's history rather than its latest
//! state. Questions asked per day per crawl tag, the views and answers
//! distributions, the unanswered share of each pass, and the questions
//! that grew most between their first and latest snapshots.
//!
//! Read-only SQL like `report`'s, and like it the part a second backend
//! rewrites.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::report::{growth_row, Growth};
use super::{enum_text, parse_ts, Store, StoreError};
use crate::model::PostKind;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    /// By crawl tag, then day (`YYYY-MM-DD`, UTC), questions asked that day.
    pub asked_per_day: Vec<DayCount>,
    /// Questions by the number of digits of their views: `0–9`, `10–99`, …
    /// (bounds inclusive).
    pub views: Vec<Bucket>,
    /// Questions (not Advice posts) by answers: `0` … `4`, `5+`.
    pub answers: Vec<Bucket>,
    pub passes: Vec<PassShare>,
    /// Views gained between each question's first and latest snapshot.
    pub growth: Vec<Growth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    pub tag: String,
    pub day: String,
    pub questions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub label: String,
    pub questions: u64,
}

/// The questions a pass saw, and how many of them had no answer then.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassShare {
    pub pass_id: i64,
    pub tag_set: String,
    pub started_at: DateTime<Utc>,
    pub questions: u64,
    pub unanswered: u64,
    pub unanswered_share: f64,
}

/// The most answers the distribution tells apart; more are one bucket.
const ANSWERS_CAP: i64 = 5;

impl Store {
    /// The history `report --html` draws; `top_n` bounds the growth list.
    pub fn history(&self, top_n: usize) -> Result<History, StoreError> {
        let question = enum_text(&PostKind::Question)?;
        let mut asked_per_day = Vec::new();
        {
            // Timestamps are RFC 3339 text in UTC: the first ten characters
            // are the day.
            let mut stmt = self.conn.prepare(
                "SELECT c.crawl_tag, substr(q.asked_at, 1, 10) AS day, COUNT(*)
                 FROM question_crawl_tags c JOIN questions q USING (site, question_id)
                 WHERE q.asked_at IS NOT NULL
                 GROUP BY c.crawl_tag, day ORDER BY c.crawl_tag, day",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                asked_per_day.push(DayCount {
                    tag: r.get(0)?,
                    day: r.get(1)?,
                    questions: r.get(2)?,
                });
            }
        }
        let mut views = Vec::new();
        {
            // The number of digits is the decade: 1 digit is 0–9, 2 is 10–99.
            let mut stmt = self.conn.prepare(
                "SELECT length(CAST(views AS TEXT)) AS digits, COUNT(*)
                 FROM questions GROUP BY digits ORDER BY digits",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let digits: u32 = r.get(0)?;
                let low = if digits <= 1 {
                    0
                } else {
                    10u64.pow(digits - 1)
                };
                views.push(Bucket {
                    label: format!("{}–{}", grouped(low), grouped(10u64.pow(digits) - 1)),
                    questions: r.get(1)?,
                });
            }
        }
        let mut answers = Vec::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT MIN(answers, ?2) AS n, COUNT(*) FROM questions
                 WHERE post_kind = ?1 GROUP BY n ORDER BY n",
            )?;
            let mut rows = stmt.query(rusqlite::params![question, ANSWERS_CAP])?;
            while let Some(r) = rows.next()? {
                let n: i64 = r.get(0)?;
                answers.push(Bucket {
                    label: if n >= ANSWERS_CAP {
                        format!("{ANSWERS_CAP}+")
                    } else {
                        n.to_string()
                    },
                    questions: r.get(1)?,
                });
            }
        }
        let mut passes = Vec::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT p.pass_id, p.tag_set, p.started_at, COUNT(*),
                        COALESCE(SUM(s.answers = 0), 0)
                 FROM passes p
                 JOIN snapshots s USING (pass_id)
                 JOIN questions q USING (site, question_id)
                 WHERE q.post_kind = ?1
                 GROUP BY p.pass_id ORDER BY p.pass_id",
            )?;
            let mut rows = stmt.query([&question])?;
            while let Some(r) = rows.next()? {
                let questions: u64 = r.get(3)?;
                let unanswered: u64 = r.get(4)?;
                passes.push(PassShare {
                    pass_id: r.get(0)?,
                    tag_set: r.get(1)?,
                    started_at: parse_ts("passes.started_at", r.get(2)?)?,
                    questions,
                    unanswered,
                    unanswered_share: unanswered as f64 / questions.max(1) as f64,
                });
            }
        }
        let mut growth = Vec::new();
        {
            let mut stmt = self.conn.prepare(
                "WITH w AS (
                     SELECT site, question_id, pass_id, seen_at, votes, answers, views,
                            ROW_NUMBER() OVER (PARTITION BY site, question_id
                                               ORDER BY seen_at DESC, pass_id DESC) AS last,
                            ROW_NUMBER() OVER (PARTITION BY site, question_id
                                               ORDER BY seen_at, pass_id) AS first
                     FROM snapshots
                 )
                 SELECT l.site, l.question_id, q.title, q.url, f.pass_id, l.pass_id,
                        f.seen_at, l.seen_at, l.views - f.views AS gained,
                        l.votes - f.votes, l.answers - f.answers
                 FROM w l
                 JOIN w f ON f.site = l.site AND f.question_id = l.question_id AND f.first = 1
                 JOIN questions q ON q.site = l.site AND q.question_id = l.question_id
                 WHERE l.last = 1 AND l.views > f.views
                 ORDER BY gained DESC, l.site, l.question_id
                 LIMIT ?1",
            )?;
            let mut rows = stmt.query([top_n])?;
            while let Some(r) = rows.next()? {
                growth.push(growth_row(r)?);
            }
        }
        Ok(History {
            asked_per_day,
            views,
            answers,
            passes,
            growth,
        })
    }
}

/// 1234567 → `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::*;

    #[test]
    fn history_of_the_report_fixture() {
        let h = report_fixture().history(10).unwrap();
        // Every question asked at hour 0 of one day; #1 is under both tags.
        let days: Vec<_> = h
            .asked_per_day
            .iter()
            .map(|d| (d.tag.as_str(), d.day.as_str(), d.questions))
            .collect();
        assert_eq!(
            days,
            [("rust", "2025-03-01", 3), ("tokio", "2025-03-01", 2)]
        );
        // Latest views: 160, 55, 10, 100.
        let views: Vec<_> = h
            .views
            .iter()
            .map(|b| (b.label.as_str(), b.questions))
            .collect();
        assert_eq!(views, [("10–99", 2), ("100–999", 2)]);
        // Answers of the three questions (the Advice post is left out).
        let answers: Vec<_> = h
            .answers
            .iter()
            .map(|b| (b.label.as_str(), b.questions))
            .collect();
        assert_eq!(answers, [("0", 1), ("1", 1), ("2", 1)]);
        // Pass 1 saw #1, #2, #4 (and the Advice post): #2 unanswered;
        // pass 2 saw #1, #2, #4 again.
        let passes: Vec<_> = h
            .passes
            .iter()
            .map(|p| (p.pass_id, p.questions, p.unanswered))
            .collect();
        assert_eq!(passes, [(1, 3, 1), (2, 3, 1)]);
        assert!((h.passes[0].unanswered_share - 1.0 / 3.0).abs() < 1e-12);
        // First to latest: #4 +80, #1 +60, #2 +5.
        let g: Vec<_> = h
            .growth
            .iter()
            .map(|g| (g.question_id, g.views_gained))
            .collect();
        assert_eq!(g, [(4, 80), (1, 60), (2, 5)]);
    }

    #[test]
    fn history_of_an_empty_store_is_empty() {
        let h = Store::open_in_memory().unwrap().history(10).unwrap();
        assert!(h.asked_per_day.is_empty() && h.views.is_empty() && h.passes.is_empty());
    }

    #[test]
    fn bucket_bounds_are_written_with_thousands_separators() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(99_999), "99,999");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
