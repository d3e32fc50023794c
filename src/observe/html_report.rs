//! `report --html FILE`: the store's report as one self-contained HTML
//! file, with SVG charts drawn by [`crate::observe::charts`] inline and each chart's
//! figures in a table under it. Nothing is fetched when it is opened: no
//! script, stylesheet, font or image comes from elsewhere, and question
//! URLs are shown as text, not links.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use crate::observe::charts::{self, escape, Line};
use crate::store::{Bucket, DayCount, History, Report};

/// The page for `report` (latest state) and `history`, made at `now`.
pub fn render(report: &Report, history: &History, now: DateTime<Utc>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>stackcrawl report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:60em}}
table{{border-collapse:collapse;margin:.5em 0 2em}}
td,th{{border-bottom:1px solid #ddd;padding:.2em .7em;text-align:right}}
td:first-child,th:first-child{{text-align:left}}
details{{margin-bottom:2em}}
</style></head><body>
<h1>stackcrawl report</h1>
<p>Made {now} from the store.</p>
"#,
        now = now.format("%Y-%m-%d %H:%M UTC"),
    );
    tags_section(&mut h, report);
    per_day(
        &mut h,
        ("asked", "asked-per-day"),
        "Questions asked per day",
        "Questions asked per day, by crawl tag",
        &history.asked_per_day,
    );
    per_day(
        &mut h,
        ("seen", "seen-per-day"),
        "Questions seen per day",
        "Questions each day's listings showed, by crawl tag (an import: per capture day)",
        &history.seen_per_day,
    );
    distribution(
        &mut h,
        "views",
        "Views",
        "questions by views (latest snapshot)",
        &history.views,
    );
    distribution(
        &mut h,
        "answers",
        "Answers",
        "questions by answers (Advice posts left out)",
        &history.answers,
    );
    unanswered_per_pass(&mut h, history);
    growth(&mut h, history);
    views_over_time(&mut h, history);
    co_tags(&mut h, report);
    h.push_str("</body></html>\n");
    h
}

fn tags_section(h: &mut String, report: &Report) {
    h.push_str("<h2>Crawl tags</h2>\n<table id=\"tags\"><tr><th>tag</th><th>questions</th><th>views</th><th>votes</th><th>answers</th><th>unanswered</th></tr>\n");
    for t in &report.tags {
        let _ = writeln!(
            h,
            "<tr data-tag=\"{tag}\"><td>{tag}</td><td class=\"questions\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td></tr>",
            t.questions,
            t.views,
            t.votes,
            t.answers,
            t.unanswered_share * 100.0,
            tag = escape(&t.tag),
        );
    }
    h.push_str("</table>\n");
}

fn day_number(day: &str) -> Option<f64> {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(d.signed_duration_since(NaiveDate::default()).num_days() as f64)
}

/// A time as a day number, with the fraction of its day.
fn time_number(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 / 86_400.0
}

/// A label for a time axis over `lines` (in days), and the unit it reads
/// to: the day where they span days (an import's years), the minute where
/// they do not (live passes an hour apart would all read the same day).
fn time_label(lines: &[Line]) -> (f64, impl Fn(f64) -> String) {
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let within_days = hi - lo < 3.0;
    let unit = if within_days { 1.0 / 1440.0 } else { 1.0 };
    (unit, move |n: f64| {
        if within_days {
            DateTime::<Utc>::from_timestamp((n * 86_400.0).round() as i64, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default()
        } else {
            day_label(n)
        }
    })
}

fn day_label(n: f64) -> String {
    (NaiveDate::default() + chrono::Days::new(n.max(0.0).round() as u64))
        .format("%Y-%m-%d")
        .to_string()
}

/// A chart of a count per crawl tag per day, over the days the store
/// covers (years, for an import), and its figures; `ids` are the section's
/// and the table's.
fn per_day(h: &mut String, ids: (&str, &str), heading: &str, title: &str, counts: &[DayCount]) {
    let mut lines: Vec<Line> = Vec::new();
    for d in counts {
        let Some(x) = day_number(&d.day) else {
            continue;
        };
        match lines.last_mut() {
            Some(l) if l.name == d.tag => l.points.push((x, d.questions as f64)),
            _ => lines.push(Line {
                name: d.tag.clone(),
                points: vec![(x, d.questions as f64)],
            }),
        }
    }
    let _ = writeln!(h, "<h2 id=\"{}\">{heading}</h2>", ids.0);
    h.push_str(&charts::lines(
        title,
        "questions",
        &lines,
        None,
        1.0,
        &day_label,
    ));
    let _ = writeln!(
        h,
        "<details><summary>figures</summary><table id=\"{}\"><tr><th>tag</th><th>day</th><th>questions</th></tr>",
        ids.1
    );
    for d in counts {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&d.tag),
            escape(&d.day),
            d.questions
        );
    }
    h.push_str("</table></details>\n");
}

fn distribution(h: &mut String, id: &str, title: &str, desc: &str, buckets: &[Bucket]) {
    let _ = writeln!(h, "<h2 id=\"{id}\">{title}</h2>");
    let bars: Vec<(String, f64)> = buckets
        .iter()
        .map(|b| (b.label.clone(), b.questions as f64))
        .collect();
    h.push_str(&charts::bars(desc, "questions", &bars));
    let _ = writeln!(
        h,
        "<table id=\"{id}-buckets\"><tr><th>{title}</th><th>questions</th></tr>"
    );
    for b in buckets {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&b.label),
            b.questions
        );
    }
    h.push_str("</table>\n");
}

fn unanswered_per_pass(h: &mut String, history: &History) {
    let mut lines: Vec<Line> = Vec::new();
    for p in &history.passes {
        // By start time: an import's pass, numbered after live ones, saw
        // the past.
        let point = (time_number(p.started_at), p.unanswered_share * 100.0);
        match lines.iter_mut().find(|l| l.name == p.tag_set) {
            Some(l) => l.points.push(point),
            None => lines.push(Line {
                name: p.tag_set.clone(),
                points: vec![point],
            }),
        }
    }
    h.push_str("<h2 id=\"unanswered\">Unanswered share per pass</h2>\n");
    let (unit, label) = time_label(&lines);
    h.push_str(&charts::lines(
        "Unanswered questions among those each pass saw, by tag set",
        "% unanswered",
        &lines,
        None,
        unit,
        &label,
    ));
    h.push_str("<table id=\"passes\"><tr><th>pass</th><th>tag set</th><th>started</th><th>questions</th><th>unanswered</th><th>share</th></tr>\n");
    for p in &history.passes {
        let _ = writeln!(
            h,
            "<tr data-pass=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"unanswered\">{}</td><td>{:.1}%</td></tr>",
            p.pass_id,
            p.pass_id,
            escape(&p.tag_set) + if p.imported { " (imported)" } else { "" },
            p.started_at.format("%Y-%m-%d %H:%M"),
            p.questions,
            p.unanswered,
            p.unanswered_share * 100.0
        );
    }
    h.push_str("</table>\n");
}

fn growth(h: &mut String, history: &History) {
    h.push_str("<h2 id=\"growth\">Fastest-growing questions</h2>\n");
    if history.growth.is_empty() {
        // Growth is between two snapshots of a question: say what is
        // missing rather than draw an empty chart over an empty table.
        let passes = history.passes.len();
        let why = if passes < 2 {
            format!("Needs two passes: a question's growth is the views it gained between its first and latest snapshots, and the store has {passes} pass{}.", if passes == 1 { "" } else { "es" })
        } else {
            "No question gained views between its first and latest snapshots.".to_string()
        };
        let _ = writeln!(h, "<p class=\"chart-empty\" id=\"growth-empty\">{why}</p>");
        return;
    }
    let bars: Vec<(String, f64)> = history
        .growth
        .iter()
        .map(|g| (g.question_id.to_string(), g.views_gained as f64))
        .collect();
    h.push_str(&charts::bars(
        "Views gained between first and latest snapshot, by question id",
        "views gained",
        &bars,
    ));
    h.push_str("<table id=\"growth-table\"><tr><th>question</th><th>views gained</th><th>votes</th><th>answers</th><th>from</th><th>to</th><th>URL</th></tr>\n");
    for g in &history.growth {
        let _ = writeln!(
            h,
            "<tr data-question=\"{}\"><td>{}</td><td class=\"views-gained\">{}</td><td>{:+}</td><td>{:+}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            g.question_id,
            escape(&g.title),
            g.views_gained,
            g.votes_gained,
            g.answers_gained,
            g.from_seen_at.format("%Y-%m-%d"),
            g.to_seen_at.format("%Y-%m-%d"),
            escape(&g.url),
        );
    }
    h.push_str("</table>\n");
}

/// The fastest-growing questions' views at each snapshot, over the time
/// their snapshots span (years, for an import).
fn views_over_time(h: &mut String, history: &History) {
    let lines: Vec<Line> = history
        .views_over_time
        .iter()
        .map(|q| Line {
            name: format!("#{}", q.question_id),
            points: q
                .points
                .iter()
                .map(|(t, views)| (time_number(*t), *views as f64))
                .collect(),
        })
        .collect();
    h.push_str("<h2 id=\"views-over-time\">Views over time</h2>\n");
    let (unit, label) = time_label(&lines);
    h.push_str(&charts::lines(
        "Views of the fastest-growing questions, snapshot by snapshot",
        "views",
        &lines,
        None,
        unit,
        &label,
    ));
    h.push_str("<details><summary>figures</summary><table id=\"views-over-time-table\"><tr><th>question</th><th>seen</th><th>views</th></tr>\n");
    for q in &history.views_over_time {
        for (t, views) in &q.points {
            let _ = writeln!(
                h,
                "<tr data-question=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                q.question_id,
                q.question_id,
                t.format("%Y-%m-%d"),
                views
            );
        }
    }
    h.push_str("</table></details>\n");
}

fn co_tags(h: &mut String, report: &Report) {
    h.push_str("<h2 id=\"co-tags\">Co-occurring tags</h2>\n");
    for t in &report.tags {
        let bars: Vec<(String, f64)> = t
            .co_tags
            .iter()
            .map(|c| (c.tag.clone(), c.share * 100.0))
            .collect();
        h.push_str(&charts::bars(
            &format!("Tags on [{}] questions", t.tag),
            "% of its questions",
            &bars,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_go_to_numbers_and_back() {
        let n = day_number("2025-03-01").unwrap();
        assert_eq!(day_label(n), "2025-03-01");
        let line = |points: Vec<(f64, f64)>| Line {
            name: "l".into(),
            points,
        };
        let hours = [line(vec![(n, 1.0), (n + 0.5, 2.0)])];
        let (unit, label) = time_label(&hours);
        assert_eq!(
            (unit, label(n + 0.5).as_str()),
            (1.0 / 1440.0, "2025-03-01 12:00")
        );
        let years = [line(vec![(n - 2000.0, 1.0), (n, 2.0)])];
        let (unit, label) = time_label(&years);
        assert_eq!((unit, label(n).as_str()), (1.0, "2025-03-01"));
        assert_eq!(day_number("not a day"), None);
    }
}
