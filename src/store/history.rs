//! What `report --html` charts: the store's history rather than its latest
//! state. Questions asked per day per crawl tag, the views and answers
//! distributions, the unanswered share of each pass, and the questions
//! that grew most between their first and latest snapshots.
//!
//! Read-only SQL written once, here, in what SQLite and PostgreSQL both
//! speak (CASE WHEN rather than SQLite's two-argument MIN or a boolean
//! SUM; every figure cast to BIGINT). Each backend only runs these
//! statements and reads their rows into the types below, as it does for
//! `report`. `$N` parameters appear in the text in order, because SQLite
//! numbers named parameters by their first appearance.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::report::{growth_row, Growth};
use super::{enum_text, parse_ts, Store, StoreError};
use crate::model::PostKind;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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
    /// By crawl tag, then day (`YYYY-MM-DD`, UTC) a listing was seen, the
    /// questions seen that day: a tag over the years an import covers.
    pub seen_per_day: Vec<DayCount>,
    /// The views of the first five (`VIEW_LINES`) questions of `growth`,
    /// snapshot by snapshot.
    pub views_over_time: Vec<QuestionViews>,
}

/// How many of the fastest-growing questions get a line of their views.
pub const VIEW_LINES: usize = 5;

/// One question's views at each of its snapshots, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuestionViews {
    pub site: String,
    pub question_id: u64,
    pub points: Vec<(DateTime<Utc>, u64)>,
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
    /// An import's pass (`parse --store`): it saw archived pages.
    pub imported: bool,
}

/// The most answers the distribution tells apart; more are one bucket.
pub(super) const ANSWERS_CAP: i64 = 5;

/// Crawl tag, day, questions asked that day, with the day (UTC, as
/// `YYYY-MM-DD`) taken from `asked_at` by each backend's expression.
macro_rules! asked_per_day_sql {
    ($day:literal) => {
        concat!(
            "SELECT c.crawl_tag, ",
            $day,
            " AS day, CAST(COUNT(*) AS BIGINT)
    FROM question_crawl_tags c JOIN questions q USING (site, question_id)
    WHERE q.asked_at IS NOT NULL
    GROUP BY c.crawl_tag, day
    ORDER BY c.crawl_tag, day"
        )
    };
}

/// SQLite keeps timestamps as RFC 3339 text in UTC: the first ten
/// characters are the day.
pub(super) const ASKED_PER_DAY_SQL: &str = asked_per_day_sql!("substr(q.asked_at, 1, 10)");
/// PostgreSQL keeps a `timestamptz`.
pub(super) const ASKED_PER_DAY_PG_SQL: &str =
    asked_per_day_sql!("to_char(q.asked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')");

/// Digits of the views (the decade: 1 digit is 0–9, 2 is 10–99), questions.
pub(super) const VIEWS_SQL: &str =
    "SELECT CAST(length(CAST(views AS TEXT)) AS BIGINT) AS digits, CAST(COUNT(*) AS BIGINT)
    FROM questions GROUP BY digits ORDER BY digits";

/// Answers up to `$1` (more count as `$1`), questions of post kind `$2`.
pub(super) const ANSWERS_SQL: &str =
    "SELECT CASE WHEN answers < $1 THEN answers ELSE $1 END AS n, CAST(COUNT(*) AS BIGINT)
    FROM questions WHERE post_kind = $2 GROUP BY n ORDER BY n";

/// Per pass: id, tag set, start, questions of post kind `$1` it saw, how
/// many of them had no answer then, and whether it was an import (an import counts a question once
/// per capture time). In time order: an import, numbered after the live
/// passes, saw the past.
pub(super) const PASSES_SQL: &str = "SELECT p.pass_id, p.tag_set, p.started_at,
      CAST(COUNT(*) AS BIGINT), CAST(COUNT(CASE WHEN s.answers = 0 THEN 1 END) AS BIGINT),
      p.imported
    FROM passes p
    JOIN snapshots s ON s.pass_id = p.pass_id
    JOIN questions q ON q.site = s.site AND q.question_id = s.question_id
    WHERE q.post_kind = $1
    GROUP BY p.pass_id, p.tag_set, p.started_at, p.imported
    ORDER BY p.started_at, p.pass_id";

/// Crawl tag, day seen, distinct questions with a snapshot that day.
macro_rules! seen_per_day_sql {
    ($day:literal) => {
        concat!(
            "SELECT c.crawl_tag, ",
            $day,
            " AS day,
      CAST(COUNT(DISTINCT s.site || ' ' || CAST(s.question_id AS TEXT)) AS BIGINT)
    FROM question_crawl_tags c JOIN snapshots s USING (site, question_id)
    GROUP BY c.crawl_tag, day
    ORDER BY c.crawl_tag, day"
        )
    };
}
pub(super) const SEEN_PER_DAY_SQL: &str = seen_per_day_sql!("substr(s.seen_at, 1, 10)");
pub(super) const SEEN_PER_DAY_PG_SQL: &str =
    seen_per_day_sql!("to_char(s.seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')");

/// A question's (site `$1`, id `$2`) snapshots: seen_at, views.
pub(super) const VIEWS_OVER_TIME_SQL: &str = "SELECT seen_at, views FROM snapshots
    WHERE site = $1 AND question_id = $2 ORDER BY seen_at, pass_id";

/// Each question's first and latest snapshot by observation time, the
/// `$1` that gained most views between them, in `growth_row`'s shape.
pub(super) const GROWTH_SINCE_FIRST_SQL: &str = "WITH w AS (
        SELECT site, question_id, pass_id, seen_at, votes, answers, views,
          ROW_NUMBER() OVER (PARTITION BY site, question_id
                             ORDER BY seen_at DESC, pass_id DESC) AS newest,
          ROW_NUMBER() OVER (PARTITION BY site, question_id
                             ORDER BY seen_at, pass_id) AS oldest
        FROM snapshots
    )
    SELECT l.site, l.question_id, q.title, q.url, f.pass_id, l.pass_id,
      f.seen_at, l.seen_at, l.views - f.views AS gained,
      l.votes - f.votes, l.answers - f.answers
    FROM w l
    JOIN w f ON f.site = l.site AND f.question_id = l.question_id AND f.oldest = 1
    JOIN questions q ON q.site = l.site AND q.question_id = l.question_id
    WHERE l.newest = 1 AND l.views > f.views
    ORDER BY gained DESC, l.site, l.question_id
    LIMIT $1";

/// The bucket of views with `digits` digits.
pub(super) fn views_bucket(digits: i64, questions: u64) -> Bucket {
    let digits = u32::try_from(digits).unwrap_or(1).clamp(1, 20);
    let low = if digits == 1 {
        0
    } else {
        10u64.pow(digits - 1)
    };
    let high = 10u64.checked_pow(digits).map_or(u64::MAX, |p| p - 1);
    Bucket {
        label: format!("{}–{}", grouped(low), grouped(high)),
        questions,
    }
}

/// The bucket of `n` answers (`ANSWERS_CAP` and more are one).
pub(super) fn answers_bucket(n: i64, questions: u64) -> Bucket {
    Bucket {
        label: if n >= ANSWERS_CAP {
            format!("{ANSWERS_CAP}+")
        } else {
            n.to_string()
        },
        questions,
    }
}

/// The views buckets from (digits, questions) rows, an empty decade
/// between two others included as 0: a bar chart without it would put
/// 0–9 beside 1,000–9,999 as if nothing lay between.
pub(super) fn views_buckets(rows: impl IntoIterator<Item = (i64, u64)>) -> Vec<Bucket> {
    let counts: BTreeMap<i64, u64> = rows.into_iter().collect();
    let Some(&most) = counts.keys().next_back() else {
        return Vec::new();
    };
    (1..=most.clamp(1, 20))
        .map(|d| views_bucket(d, counts.get(&d).copied().unwrap_or(0)))
        .collect()
}

/// The answers buckets from (answers, questions) rows, from 0 up to the
/// most found, an empty one included as 0 (see [`views_buckets`]).
pub(super) fn answers_buckets(rows: impl IntoIterator<Item = (i64, u64)>) -> Vec<Bucket> {
    let counts: BTreeMap<i64, u64> = rows.into_iter().collect();
    let Some(&most) = counts.keys().next_back() else {
        return Vec::new();
    };
    (0..=most.clamp(0, ANSWERS_CAP))
        .map(|n| answers_bucket(n, counts.get(&n).copied().unwrap_or(0)))
        .collect()
}

impl PassShare {
    pub(super) fn new(
        pass_id: i64,
        tag_set: String,
        started_at: DateTime<Utc>,
        questions: u64,
        unanswered: u64,
        imported: bool,
    ) -> PassShare {
        PassShare {
            pass_id,
            tag_set,
            started_at,
            questions,
            unanswered,
            unanswered_share: super::report::share(unanswered, questions),
            imported,
        }
    }
}

impl Store {
    /// The history `report --html` draws; `top_n` bounds the growth list.
    pub fn history(&self, top_n: usize) -> Result<History, StoreError> {
        let question = enum_text(&PostKind::Question)?;
        let mut h = History {
            asked_per_day: self.day_counts(ASKED_PER_DAY_SQL)?,
            seen_per_day: self.day_counts(SEEN_PER_DAY_SQL)?,
            ..History::default()
        };
        let pair = |r: &rusqlite::Row| Ok((r.get(0)?, r.get(1)?));
        let mut stmt = self.conn.prepare(VIEWS_SQL)?;
        let rows = stmt.query_map([], pair)?;
        h.views = views_buckets(rows.collect::<Result<Vec<_>, _>>()?);
        let mut stmt = self.conn.prepare(ANSWERS_SQL)?;
        let rows = stmt.query_map(rusqlite::params![ANSWERS_CAP, question], pair)?;
        h.answers = answers_buckets(rows.collect::<Result<Vec<_>, _>>()?);
        let mut stmt = self.conn.prepare(PASSES_SQL)?;
        let mut rows = stmt.query([&question])?;
        while let Some(r) = rows.next()? {
            h.passes.push(PassShare::new(
                r.get(0)?,
                r.get(1)?,
                parse_ts("passes.started_at", r.get(2)?)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ));
        }
        let mut stmt = self.conn.prepare(GROWTH_SINCE_FIRST_SQL)?;
        let mut rows = stmt.query([top_n])?;
        while let Some(r) = rows.next()? {
            h.growth.push(growth_row(r)?);
        }
        let mut stmt = self.conn.prepare(VIEWS_OVER_TIME_SQL)?;
        for g in h.growth.iter().take(VIEW_LINES) {
            let mut line = QuestionViews {
                site: g.site.clone(),
                question_id: g.question_id,
                points: Vec::new(),
            };
            let mut rows = stmt.query(rusqlite::params![g.site, g.question_id])?;
            while let Some(r) = rows.next()? {
                line.points
                    .push((parse_ts("snapshots.seen_at", r.get(0)?)?, r.get(1)?));
            }
            h.views_over_time.push(line);
        }
        Ok(h)
    }

    /// The rows of a tag, day, count statement.
    fn day_counts(&self, sql: &str) -> Result<Vec<DayCount>, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(DayCount {
                tag: r.get(0)?,
                day: r.get(1)?,
                questions: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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

    #[test]
    fn bucket_bounds_are_written_with_thousands_separators() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(99_999), "99,999");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn view_buckets_span_their_decade() {
        let label = |digits| views_bucket(digits, 1).label;
        assert_eq!(label(1), "0–9");
        assert_eq!(label(2), "10–99");
        assert_eq!(label(4), "1,000–9,999");
        assert_eq!(
            label(20),
            "10,000,000,000,000,000,000–18,446,744,073,709,551,615"
        );
    }

    #[test]
    fn answers_from_the_cap_share_a_bucket() {
        assert_eq!(answers_bucket(0, 1).label, "0");
        assert_eq!(answers_bucket(ANSWERS_CAP - 1, 1).label, "4");
        assert_eq!(answers_bucket(ANSWERS_CAP, 1).label, "5+");
    }

    #[test]
    fn an_empty_bucket_between_others_is_kept_as_zero() {
        let shown = |b: Vec<Bucket>| -> Vec<(String, u64)> {
            b.into_iter().map(|b| (b.label, b.questions)).collect()
        };
        // Questions of 0–9 and of 1,000–9,999 views: the two decades
        // between hold none, and say so.
        let views = shown(views_buckets([(1, 3), (4, 2)]));
        let labels: Vec<&str> = views.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(labels, ["0–9", "10–99", "100–999", "1,000–9,999"]);
        assert_eq!(views.iter().map(|v| v.1).collect::<Vec<_>>(), [3, 0, 0, 2]);
        let answers = shown(answers_buckets([(0, 4), (2, 1), (ANSWERS_CAP, 1)]));
        assert_eq!(
            answers,
            [
                ("0".to_string(), 4),
                ("1".to_string(), 0),
                ("2".to_string(), 1),
                ("3".to_string(), 0),
                ("4".to_string(), 0),
                ("5+".to_string(), 1)
            ]
        );
        assert!(views_buckets([]).is_empty() && answers_buckets([]).is_empty());
    }
}
