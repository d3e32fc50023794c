//! The fake Stack Exchange API's response bodies: a `/2.3/questions` wrapper
//! built from [`FakeQuestion`]s and the API's error body. Field names and
//! nesting follow the real sample
//! `tests/fixtures/se-api/questions-search-php-2017.json` (default filter, no
//! `body`), and titles and display names are HTML-entity-encoded as the real
//! API's safe filters send them, so the crawler's decoding is exercised.
//!
//! What a crawled record gets from these bodies that `FakeQuestion` does not
//! hold: `url` is [`api_link`], `modified_at` is [`last_activity`], and the
//! excerpt is empty (the default filter sends no body).

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::FakeQuestion;

/// The real API links to the site, not to itself.
pub const API_SITE_URL: &str = "https://stackoverflow.com";

/// The `link` the fake API gives a question.
pub fn api_link(q: &FakeQuestion) -> String {
    format!("{API_SITE_URL}{}", q.url_path())
}

/// The `last_activity_date` the fake API gives a question: a minute after it
/// was asked per answer, so it never precedes `creation_date`.
pub fn last_activity(q: &FakeQuestion) -> DateTime<Utc> {
    q.asked + Duration::minutes(q.answers as i64)
}

/// A `/2.3/questions` response body holding `questions`, in order.
pub fn render_api_page(
    questions: &[FakeQuestion],
    has_more: bool,
    quota_remaining: u64,
    quota_max: u64,
    backoff: Option<u64>,
) -> String {
    let items: Vec<Value> = questions.iter().map(render_item).collect();
    let mut wrapper = json!({
        "items": items,
        "has_more": has_more,
        "quota_max": quota_max,
        "quota_remaining": quota_remaining,
    });
    // The API sends `backoff` only when it wants one.
    if let Some(secs) = backoff {
        wrapper["backoff"] = json!(secs);
    }
    wrapper.to_string()
}

/// The body of an API error, which the real API sends with HTTP 400.
pub fn render_api_error(error_id: u16, error_name: &str, error_message: &str) -> String {
    json!({
        "error_id": error_id,
        "error_message": error_message,
        "error_name": error_name,
    })
    .to_string()
}

fn render_item(q: &FakeQuestion) -> Value {
    let user_id = user_id(&q.author);
    let mut item = json!({
        "tags": q.tags,
        "owner": {
            "account_id": user_id + 7_000_000,
            "reputation": q.reputation,
            "user_id": user_id,
            "user_type": "registered",
            "profile_image": format!(
                "https://www.gravatar.com/avatar/{:016x}{:016x}?s=256&d=identicon&r=PG",
                user_id,
                q.id
            ),
            "display_name": encode_entities(&q.author),
            "link": format!("{API_SITE_URL}/users/{user_id}/{}", slug(&q.author)),
        },
        "is_answered": q.accepted || q.answers > 0,
        "view_count": q.views,
        "answer_count": q.answers,
        "score": q.votes,
        "last_activity_date": last_activity(q).timestamp(),
        "creation_date": q.asked.timestamp(),
        "question_id": q.id,
        "link": api_link(q),
        "title": encode_entities(&q.title),
    });
    // Present only when an answer was accepted, as in the real responses.
    if q.accepted {
        item["accepted_answer_id"] = json!(q.id + 1);
    }
    item
}

/// A stable user id per display name (FNV-1a), so one author keeps one id
/// across questions.
fn user_id(name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    1 + hash % 30_000_000
}

/// The real API's (safe filter) encoding of strings.
fn encode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The URL slug of a user's name, as in `/users/397494/leroy-miller`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}
