//! The store's behaviour, asserted once and run on every backend: each
//! check below becomes a test on an in-memory SQLite store and one on a
//! PostgreSQL database of its own (created on 127.0.0.1:5432, dropped
//! after). Checks of one backend's own machinery (WAL, `user_version`,
//! PostgreSQL's migration lock) stay beside that backend.

use std::collections::{HashMap, HashSet};

use stackcrawl_fakesite::pg::TestDb;

use super::fixtures::*;
use super::*;
use crate::model::QuestionStatus;

/// One `mod NAME { fn sqlite(); fn postgres(); }` per check.
macro_rules! on_both_backends {
    ($($name:ident($s:ident) $body:block)*) => {$(
        mod $name {
            use super::*;

            fn check($s: &mut dyn PassStore) $body

            #[test]
            fn sqlite() {
                check(&mut Store::open_in_memory().unwrap());
            }

            #[test]
            fn postgres() {
                let db = TestDb::create();
                check(&mut PgStore::open(&db.url).unwrap());
            }
        }
    )*};
}

fn export_bytes(s: &dyn PassStore, format: ExportFormat, history: bool) -> Vec<u8> {
    let mut out = Vec::new();
    s.export(&mut out, format, history).unwrap();
    out
}

fn export_text(s: &dyn PassStore, format: ExportFormat, history: bool) -> String {
    String::from_utf8(export_bytes(s, format, history)).unwrap()
}

/// Every question the store holds, latest state.
pub(super) fn exported(s: &dyn PassStore) -> Vec<Question> {
    export_text(s, ExportFormat::Jsonl, false)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn buckets(b: &[Bucket]) -> Vec<(&str, u64)> {
    b.iter().map(|b| (b.label.as_str(), b.questions)).collect()
}

on_both_backends! {
    upsert_keeps_latest_state_and_one_snapshot_per_pass(s) {
        let p1 = s.begin_pass("langs", at(1)).unwrap().pass_id;
        let page = [
            q(1, "rust", &["rust"], 1, 0, 10),
            q(2, "rust", &["rust"], 0, 0, 5),
        ];
        record(s, p1, &ctx("rust", 1), &page, at(1));
        s.finish_pass(p1, at(2)).unwrap();
        let p2 = s.begin_pass("langs", at(3)).unwrap().pass_id;
        assert_ne!(p1, p2);
        let mut later = seen_at(q(1, "rust", &["rust"], 3, 1, 40), 3);
        later.title = "Question 1, edited".into();
        record(s, p2, &ctx("rust", 1), &[later.clone()], at(3));

        let st = s.stats().unwrap();
        assert_eq!((st.questions, st.snapshots, st.passes), (2, 3, 2));
        assert!(st.size_bytes > 0);
        assert_eq!(exported(s), [later, page[1].clone()]);
        let history = export_text(s, ExportFormat::Jsonl, true);
        let first: HistoryRow = serde_json::from_str(history.lines().next().unwrap()).unwrap();
        assert_eq!((first.question_id, first.pass_id, first.views), (1, p1, 10));
    }

    page_recorded_twice_in_a_pass_adds_no_snapshot(s) {
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        let page = [
            q(1, "rust", &["rust"], 1, 0, 10),
            q(2, "rust", &["rust"], 0, 0, 5),
        ];
        let first = record(s, p, &ctx("rust", 1), &page, at(1));
        let again = record(s, p, &ctx("rust", 1), &page, at(2));
        assert_eq!((first.new, again.unchanged), (2, 2));
        assert_eq!(s.stats().unwrap().snapshots, 2);
        let t = s.pass_totals(p).unwrap();
        assert_eq!((t.pages, t.questions, t.new, t.unchanged), (1, 2, 2, 0));
        // Fetched again later in the pass (a resume): still one per pass.
        let later = [seen_at(page[0].clone(), 3)];
        record(s, p, &ctx("rust", 2), &later, at(3));
        assert_eq!(s.stats().unwrap().snapshots, 2);
    }

    a_question_listed_twice_on_a_page_counts_once(s) {
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        let twice = [q(1, "rust", &["rust"], 1, 0, 10), q(1, "rust", &["rust"], 1, 0, 10)];
        let w = record(s, p, &ctx("rust", 1), &twice, at(1));
        assert_eq!((w.new, w.updated, w.unchanged), (1, 0, 1));
        assert_eq!(s.stats().unwrap().snapshots, 1);
    }

    page_write_counts_new_updated_unchanged(s) {
        let p1 = s.begin_pass("langs", at(1)).unwrap().pass_id;
        let base: Vec<_> = (1..=6).map(|id| q(id, "rust", &["rust"], 0, 0, 10)).collect();
        assert_eq!(record(s, p1, &ctx("rust", 1), &base, at(1)).new, 6);
        s.finish_pass(p1, at(1)).unwrap();
        let p2 = s.begin_pass("langs", at(2)).unwrap().pass_id;
        let mut next = base.clone();
        next[0].votes = 1;
        next[1].answers = 1;
        next[2].views = 11;
        next[3].status = QuestionStatus::Closed;
        next[4].has_accepted_answer = true;
        next[5].excerpt = "How do I, now?".into();
        next.push(q(7, "rust", &["rust"], 0, 0, 1));
        let w = record(s, p2, &ctx("rust", 1), &next, at(2));
        assert_eq!((w.new, w.updated, w.unchanged), (1, 5, 1));
        let w = s
            .record_page_ending(p2, &ctx("rust", 2), &next[5..6], at(2), &|w| w.all_unchanged())
            .unwrap();
        assert!(w.ends_tag);
        let t = s.pass_totals(p2).unwrap();
        assert_eq!((t.pages, t.questions, t.new, t.updated, t.unchanged), (2, 8, 1, 5, 2));
    }

    begin_pass_resumes_the_unfinished_pass_and_lists_done_pages(s) {
        assert_eq!(s.previous_finished_pass("langs").unwrap(), None);
        let start = s.begin_pass("langs", at(1)).unwrap();
        assert!(!start.resumed);
        record(s, start.pass_id, &ctx("rust", 1), &[q(1, "rust", &["rust"], 0, 0, 1)], at(1));
        record(s, start.pass_id, &ctx("go", 2), &[], at(1));
        let again = s.begin_pass("langs", at(2)).unwrap();
        assert_eq!(again, PassStart { pass_id: start.pass_id, resumed: true });
        let expected: HashSet<_> = [
            ("rust".to_string(), "newest".to_string(), 1),
            ("go".to_string(), "newest".to_string(), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(s.done_pages(start.pass_id).unwrap(), expected);
        let other = s.begin_pass("dbs", at(2)).unwrap();
        assert!(!other.resumed);
        assert_ne!(other.pass_id, start.pass_id);
        s.finish_pass(start.pass_id, at(3)).unwrap();
        s.finish_pass(start.pass_id, at(4)).unwrap();
        assert_eq!(s.previous_finished_pass("langs").unwrap(), Some(start.pass_id));
        assert_eq!(s.previous_finished_pass("dbs").unwrap(), None);
        let next = s.begin_pass("langs", at(5)).unwrap();
        assert!(!next.resumed);
        assert!(s.done_pages(next.pass_id).unwrap().is_empty());
    }

    a_resumed_pass_knows_where_each_tag_ended(s) {
        let pass = s.begin_pass("set", at(1)).unwrap().pass_id;
        record(s, pass, &ctx("rust", 1), &[q(1, "rust", &["rust"], 0, 0, 1)], at(1));
        for page in [2, 4] {
            s.record_page_ending(pass, &ctx("rust", page), &[], at(1), &|_| true).unwrap();
        }
        assert_eq!(
            s.tag_ends(pass).unwrap(),
            HashMap::from([(("rust".to_string(), "newest".to_string()), 2)])
        );
    }

    pages_of_finished_or_unknown_passes_are_refused(s) {
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        s.finish_pass(p, at(2)).unwrap();
        let page = [q(1, "rust", &["rust"], 0, 0, 1)];
        let no = |s: &mut dyn PassStore, pass| s.record_page_ending(pass, &ctx("rust", 1), &page, at(3), &|_| false);
        assert!(matches!(no(s, p), Err(StoreError::PassFinished(id)) if id == p));
        assert!(matches!(no(s, 99), Err(StoreError::UnknownPass(99))));
        assert!(matches!(s.finish_pass(99, at(3)), Err(StoreError::UnknownPass(99))));
        assert!(matches!(s.pass_totals(99), Err(StoreError::UnknownPass(99))));
        assert_eq!(s.stats().unwrap().questions, 0, "the refused page left nothing");
    }

    a_report_is_the_same_on_every_backend(s) {
        fill_report_fixture(s);
        assert_eq!(s.report(2).unwrap(), report_fixture().report(2).unwrap());
        let empty = Store::open_in_memory().unwrap();
        assert!(empty.report(5).unwrap().tags.is_empty());
    }

    a_history_is_the_same_on_every_backend(s) {
        let empty = s.history(10).unwrap();
        assert_eq!(empty, Store::open_in_memory().unwrap().history(10).unwrap());
        assert!(empty.asked_per_day.is_empty() && empty.views.is_empty());
        assert!(empty.answers.is_empty() && empty.passes.is_empty() && empty.growth.is_empty());

        fill_report_fixture(s);
        let h = s.history(10).unwrap();
        // Every question asked at hour 0 of one day; #1 is under both tags.
        let days: Vec<_> = h
            .asked_per_day
            .iter()
            .map(|d| (d.tag.as_str(), d.day.as_str(), d.questions))
            .collect();
        assert_eq!(days, [("rust", "2025-03-01", 3), ("tokio", "2025-03-01", 2)]);
        // Latest views: 160, 55, 10, 100; the scale starts at 0–9, empty.
        assert_eq!(buckets(&h.views), [("0–9", 0), ("10–99", 2), ("100–999", 2)]);
        // Answers of the three questions (the Advice post is left out).
        assert_eq!(buckets(&h.answers), [("0", 1), ("1", 1), ("2", 1)]);
        // Pass 1 saw #1, #2, #4 (and the Advice post): #2 unanswered; pass 2
        // saw #1, #2, #4 again.
        let passes: Vec<_> = h
            .passes
            .iter()
            .map(|p| (p.tag_set.as_str(), p.questions, p.unanswered))
            .collect();
        assert_eq!(passes, [("async", 3, 1), ("async", 3, 1)]);
        assert!((h.passes[0].unanswered_share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(h.passes[1].started_at, at(5));
        // First to latest: #4 +80, #1 +60, #2 +5.
        let g: Vec<_> = h.growth.iter().map(|g| (g.question_id, g.views_gained)).collect();
        assert_eq!(g, [(4, 80), (1, 60), (2, 5)]);
        let mut sqlite = report_fixture();
        assert_eq!(h, sqlite.history(10).unwrap());

        // Seven answers share the capped bucket; 1,234 views open a decade;
        // a third pass drawn with no unanswered question; top 2 growth.
        let many = [q(5, "rust", &["rust"], 0, 7, 1_234)];
        let p = s.begin_pass("extra", at(7)).unwrap().pass_id;
        record(s, p, &ctx("rust", 2), &many, at(7));
        let sp = sqlite.begin_pass("extra", at(7)).unwrap().pass_id;
        record(&mut sqlite, sp, &ctx("rust", 2), &many, at(7));
        let h = s.history(2).unwrap();
        // The buckets between, empty, are there as 0.
        assert_eq!(
            buckets(&h.answers),
            [("0", 1), ("1", 1), ("2", 1), ("3", 0), ("4", 0), ("5+", 1)]
        );
        assert_eq!(
            buckets(&h.views),
            [("0–9", 0), ("10–99", 2), ("100–999", 2), ("1,000–9,999", 1)]
        );
        let last = h.passes.last().unwrap();
        assert_eq!((last.pass_id, last.questions, last.unanswered), (p, 1, 0));
        assert_eq!(h.growth.len(), 2);
        assert_eq!(h, sqlite.history(2).unwrap());
    }

    exports_are_byte_for_byte_the_same_on_every_backend(s) {
        fill_report_fixture(s);
        let mut full = q(7, "rust", &["rust", "c#", "c++"], -2, 0, 3_100_000);
        full.title = "Quotes \" and, commas; here".into();
        full.views_exact = false;
        full.replies = Some(3);
        full.post_kind = crate::model::PostKind::Advice;
        full.status = QuestionStatus::OnHold;
        full.has_accepted_answer = true;
        full.author_name = None;
        full.author_reputation = None;
        full.modified_at = Some(at(2));
        full.answered_at = Some(at(3));
        full.bounty = Some(50);
        full.community_wiki = true;
        let p = s.begin_pass("extra", at(7)).unwrap().pass_id;
        record(s, p, &ctx("rust", 3), &[full.clone()], at(7));
        let mut sqlite = report_fixture();
        let sp = sqlite.begin_pass("extra", at(7)).unwrap().pass_id;
        sqlite.record_page(sp, &ctx("rust", 3), &[full.clone()], at(7)).unwrap();
        // Parquet too, byte for byte: the file holds nothing of when or
        // where it was written.
        for format in [ExportFormat::Jsonl, ExportFormat::Csv, ExportFormat::Parquet] {
            for history in [false, true] {
                assert_eq!(
                    export_bytes(s, format, history),
                    export_bytes(&sqlite, format, history),
                    "{format:?}, history {history}"
                );
            }
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            assert_eq!(s.export_pass(p, &mut ours, format).unwrap(), 1);
            PassStore::export_pass(&sqlite, sp, &mut theirs, format).unwrap();
            assert_eq!(ours, theirs);
        }
        assert!(exported(s).contains(&full));
    }

    a_page_written_with_its_claims_token_is_stored_and_a_released_page_claimed_again(s) {
        // The crawl's path on every backend: claim, write with the claim's
        // token; a page given up is released and claimed again. A store
        // with one writer hands out a token that never fences.
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        let lease = std::time::Duration::from_secs(60);
        let token = |c: Claim| match c {
            Claim::Leased { token, .. } => token,
            other => panic!("not leased: {other:?}"),
        };
        let first = token(s.claim_page(p, &ctx("rust", 1), "w", lease).unwrap());
        s.release_page(p, &ctx("rust", 1), first).unwrap();
        let again = token(s.claim_page(p, &ctx("rust", 1), "w", lease).unwrap());
        let page = [q(1, "rust", &["rust"], 2, 1, 20)];
        let w = s
            .record_leased_page(p, &ctx("rust", 1), again, &page, at(1), &|_| true)
            .unwrap();
        assert_eq!((w.new, w.ends_tag), (1, true));
        assert_eq!(exported(s), page);
        assert_eq!(s.done_pages(p).unwrap().len(), 1);
    }

    an_import_is_one_pass_at_its_capture_times_and_adds_nothing_twice(s) {
        let url = "https://stackoverflow.com/questions/tagged/rust?tab=newest";
        let (y15, y19) = (year(2015), year(2019));
        let old = [captured(q(1, "rust", &["rust"], 1, 0, 10), y15)];
        let newer = [
            captured(q(1, "rust", &["rust"], 4, 2, 900), y19),
            captured(q(2, "rust", &["rust"], 0, 0, 5), y19),
        ];
        let mut first = Import::new(IMPORT_TAG_SET);
        // Captures need not come in time order: files are read as given.
        let w = import(s, &mut first, url, y19, &newer);
        assert_eq!((w.imported, w.new, w.snapshots), (true, 2, 2));
        let w = import(s, &mut first, url, y15, &old);
        assert_eq!((w.imported, w.new, w.snapshots), (true, 0, 1));
        let pass = first.pass_id().unwrap();
        let st = s.stats().unwrap();
        assert_eq!((st.questions, st.snapshots, st.passes), (2, 3, 1));
        // The latest state is the newest capture's, whatever the order.
        assert_eq!(exported(s), newer);
        let h = s.history(10).unwrap();
        assert_eq!(h.passes.len(), 1);
        assert_eq!((h.passes[0].pass_id, h.passes[0].started_at), (pass, y15));
        let g: Vec<_> = h.growth.iter().map(|g| (g.question_id, g.views_gained)).collect();
        assert_eq!(g, [(1, 890)]);
        assert_eq!(
            (h.growth[0].from_seen_at, h.growth[0].to_seen_at),
            (y15, y19)
        );
        let line = &h.views_over_time[0];
        assert_eq!((line.question_id, line.points.clone()), (1, vec![(y15, 10), (y19, 900)]));
        let seen: Vec<_> = h.seen_per_day.iter().map(|d| (d.day.as_str(), d.questions)).collect();
        assert_eq!(seen, [("2015-06-01", 1), ("2019-06-01", 2)]);
        let history = export_text(s, ExportFormat::Jsonl, true);
        let rows: Vec<HistoryRow> = history.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let rows: Vec<_> = rows.iter().map(|r| (r.question_id, r.pass_id, r.seen_at, r.views)).collect();
        assert_eq!(rows, [(1, pass, y15, 10), (1, pass, y19, 900), (2, pass, y19, 5)]);

        // Importing the same captures again adds nothing, not even a pass.
        let mut again = Import::new(IMPORT_TAG_SET);
        for (t, qs) in [(y15, &old[..]), (y19, &newer[..])] {
            assert_eq!(import(s, &mut again, url, t, qs), CaptureWrite::default());
        }
        assert_eq!(again.pass_id(), None);
        assert_eq!(s.stats().unwrap(), st);
        assert_eq!(s.history(10).unwrap(), h);
        // Nor draws a pass id: the next pass follows the import's.
        assert_eq!(s.begin_pass("langs", at(9)).unwrap().pass_id, pass + 1);
    }

    an_import_of_the_past_leaves_live_passes_their_state_and_order(s) {
        let p1 = s.begin_pass("langs", at(1)).unwrap().pass_id;
        let live = [q(1, "rust", &["rust", "tokio"], 9, 3, 5_000)];
        record(s, p1, &ctx("rust", 1), &live, at(1));
        s.finish_pass(p1, at(2)).unwrap();
        // Archived captures of the same question, years before, imported
        // under the live tag set's own name and under a set never crawled.
        let url = "https://stackoverflow.com/questions/tagged/rust";
        let mut imp = Import::new("langs");
        let older = [captured(q(1, "rust", &["rust", "old-tag"], 1, 0, 40), year(2016))];
        import(s, &mut imp, url, year(2016), &older);
        let mut other = Import::new("never-crawled");
        import(s, &mut other, url, year(2018), &[captured(q(1, "rust", &["rust"], 2, 1, 300), year(2018))]);
        let (i1, i2) = (imp.pass_id().unwrap(), other.pass_id().unwrap());
        assert!(i1 > p1 && i2 > i1);

        // The latest state and tags stay the live sighting's.
        assert_eq!(exported(s), live);
        let r = s.report(10).unwrap();
        let tokio: Vec<_> = r.tags[0].co_tags.iter().map(|c| c.tag.as_str()).collect();
        assert_eq!(tokio, ["tokio"]);
        // A live pass follows the live passes alone: an import is no
        // "previous finished pass", is not resumed, and a set only
        // imported starts its first live pass as a full one.
        assert_eq!(s.previous_finished_pass("langs").unwrap(), Some(p1));
        assert_eq!(s.previous_finished_pass("never-crawled").unwrap(), None);
        assert_eq!(s.finished_pass_started("never-crawled").unwrap(), None);
        let next = s.begin_pass("langs", at(3)).unwrap();
        assert!(!next.resumed && next.pass_id > i2);
        let fresh = s.begin_pass("never-crawled", at(3)).unwrap();
        assert!(!fresh.resumed);
        // The report orders passes by time: the imports saw the past.
        let h = s.history(10).unwrap();
        let order: Vec<_> = h.passes.iter().map(|p| (p.pass_id, p.imported)).collect();
        assert_eq!(order, [(i1, true), (i2, true), (p1, false)]);
        // Growth runs from the oldest capture to the live sighting.
        assert_eq!(
            (h.growth[0].from_seen_at, h.growth[0].views_gained),
            (year(2016), 4_960)
        );
        assert_eq!(r.growth[0].from_seen_at, year(2018));
    }
}

fn year(y: i32) -> chrono::DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(y, 6, 1, 0, 0, 0).unwrap()
}

fn captured(mut q: Question, t: chrono::DateTime<Utc>) -> Question {
    q.fetched_at = t;
    q
}

fn import(
    s: &mut dyn PassStore,
    imp: &mut Import,
    url: &str,
    t: chrono::DateTime<Utc>,
    questions: &[Question],
) -> CaptureWrite {
    let ctx = crate::source::archive::listing_context(url).unwrap();
    s.import_capture(
        imp,
        &Capture {
            url,
            ctx: &ctx,
            captured_at: t,
            questions,
        },
    )
    .unwrap()
}
