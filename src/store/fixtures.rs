//! Test fixtures shared by the store's unit tests, which sit beside the
//! code they test in each file but build their stores the same way.

use chrono::{DateTime, TimeZone, Utc};

use super::{PassStore, Store};
use crate::model::{AuthorAction, PageContext, PostKind, Question, QuestionStatus};

pub(super) fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, hour, 0, 0).unwrap()
}

pub(super) fn ctx(tag: &str, page: u32) -> PageContext {
    PageContext {
        site: "stackoverflow.com".into(),
        base_url: "https://stackoverflow.com".into(),
        tag: tag.into(),
        tab: "newest".into(),
        page,
    }
}

/// A question as the crawl tag's listing showed it at `fetched`.
pub(super) fn q(
    id: u64,
    crawl_tag: &str,
    tags: &[&str],
    votes: i64,
    answers: u64,
    views: u64,
) -> Question {
    Question {
        site: "stackoverflow.com".into(),
        question_id: id,
        url: format!("https://stackoverflow.com/questions/{id}"),
        title: format!("Question {id}"),
        excerpt: "How do I...".into(),
        votes,
        answers,
        replies: None,
        views,
        views_exact: true,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        has_accepted_answer: false,
        author_name: Some("ferris".into()),
        author_reputation: Some(1234),
        asked_at: Some(at(0)),
        modified_at: None,
        answered_at: None,
        bounty: None,
        status: QuestionStatus::Open,
        post_kind: PostKind::Question,
        community_wiki: false,
        tag: crawl_tag.into(),
        tab: "newest".into(),
        page: 1,
        fetched_at: at(1),
        author_user_id: Some(1066),
        author_has_profile: true,
        author_action: Some(AuthorAction::Asked),
    }
}

pub(super) fn seen_at(mut q: Question, hour: u32) -> Question {
    q.fetched_at = at(hour);
    q
}

pub(super) fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Two passes over two crawl tags, figures chosen by hand:
///
/// | id | listed under | tags             | views, pass 1 → 2 | votes | answers     |
/// |----|--------------|------------------|-------------------|-------|-------------|
/// | 1  | rust, tokio  | rust tokio       | 100 → 160         | 5     | 2           |
/// | 2  | rust         | rust serde       | 50 → 55           | -1    | 0           |
/// | 3  | rust         | rust tokio async | 10 → (not seen)   | 0     | 0, Advice   |
/// | 4  | tokio        | tokio            | 20 → 100          | 1     | 1           |
pub(super) fn report_fixture() -> Store {
    let mut s = Store::open_in_memory().unwrap();
    fill_report_fixture(&mut s);
    s
}

/// A page that does not end its tag, through the interface every backend has.
pub(super) fn record(
    s: &mut dyn PassStore,
    pass_id: i64,
    ctx: &PageContext,
    questions: &[Question],
    now: DateTime<Utc>,
) -> super::PageWrite {
    s.record_page_ending(pass_id, ctx, questions, now, &|_| false)
        .unwrap()
}

/// The report fixture's two passes, written to any backend.
pub(super) fn fill_report_fixture(s: &mut dyn PassStore) {
    let mut advice = q(3, "rust", &["rust", "tokio", "async"], 0, 0, 10);
    advice.post_kind = PostKind::Advice;
    advice.replies = Some(4);
    let p1 = s.begin_pass("async", at(1)).unwrap().pass_id;
    let rust1 = [
        q(1, "rust", &["rust", "tokio"], 5, 2, 100),
        q(2, "rust", &["rust", "serde"], -1, 0, 50),
        advice,
    ];
    record(s, p1, &ctx("rust", 1), &rust1, at(1));
    let tokio1 = [
        q(1, "tokio", &["rust", "tokio"], 5, 2, 100),
        q(4, "tokio", &["tokio"], 1, 1, 20),
    ];
    record(s, p1, &ctx("tokio", 1), &tokio1, at(1));
    s.finish_pass(p1, at(2)).unwrap();

    let p2 = s.begin_pass("async", at(5)).unwrap().pass_id;
    let rust2 = [
        seen_at(q(1, "rust", &["rust", "tokio"], 5, 2, 160), 5),
        seen_at(q(2, "rust", &["rust", "serde"], -1, 0, 55), 5),
    ];
    record(s, p2, &ctx("rust", 1), &rust2, at(5));
    let tokio2 = [seen_at(q(4, "tokio", &["tokio"], 1, 1, 100), 5)];
    record(s, p2, &ctx("tokio", 1), &tokio2, at(5));
    s.finish_pass(p2, at(6)).unwrap();
}
