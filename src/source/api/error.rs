//! The API's errors, classified by their documented `error_id`s, and what
//! each asks of the crawler (retry, pause, stop).

use std::time::Duration;

use serde_json::{Map, Value};
use thiserror::Error;

use super::{decode_entities, redact_key, throttle_pause};
use crate::source::html::parse::collapse;

/// An API error, classified by the documented `error_id`s.
///
/// What the caller does with it:
/// - [`is_fatal`](ApiError::is_fatal): stop the crawl with this message; a
///   retry would fail the same way and spend quota.
/// - [`pause`](ApiError::pause) is `Some` (a `throttle_violation`): pause
///   the whole pool that long and log a warning, then retry.
/// - [`is_retryable`](ApiError::is_retryable): retry within the page's budget.
/// - otherwise the page fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    #[error("API error 400 bad_parameter: {message} (check the site, tag, sort, pagesize, filter and app key)")]
    BadParameter { message: String },
    #[error("API error 401 access_token_required: {message}")]
    AccessTokenRequired { message: String },
    #[error("API error 402 invalid_access_token: {message}")]
    InvalidAccessToken { message: String },
    #[error("API error 403 access_denied: {message}")]
    AccessDenied { message: String },
    #[error("API error 404 no_method: {message} (check the API base URL)")]
    NoMethod { message: String },
    #[error("API error 405 key_required: {message} (this request needs an app key)")]
    KeyRequired { message: String },
    #[error("API error 406 access_token_compromised: {message}")]
    AccessTokenCompromised { message: String },
    #[error("API error 407 write_failed: {message}")]
    WriteFailed { message: String },
    #[error("API error 409 duplicate_request: {message}")]
    DuplicateRequest { message: String },
    #[error("API error 500 internal_error: {message}")]
    InternalError { message: String },
    /// `available_in` is the "more requests available in N seconds" figure
    /// of the message, when it has one.
    #[error("API error 502 throttle_violation: {message}")]
    ThrottleViolation {
        message: String,
        available_in: Option<Duration>,
    },
    #[error("API error 503 temporarily_unavailable: {message}")]
    TemporarilyUnavailable { message: String },
    /// An `error_id` the API documentation does not list.
    #[error("API error {error_id} {error_name} (HTTP {status}): {message}")]
    Other {
        status: u16,
        error_id: u64,
        error_name: String,
        message: String,
    },
    /// A body that is not JSON, or JSON that is neither a wrapper nor an
    /// error (a proxy's HTML page, a body cut off in transit).
    #[error("unusable API response: {0}")]
    Malformed(String),
}

impl ApiError {
    /// Errors no retry can cure: the request or the credentials are wrong.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ApiError::BadParameter { .. }
                | ApiError::AccessTokenRequired { .. }
                | ApiError::InvalidAccessToken { .. }
                | ApiError::AccessDenied { .. }
                | ApiError::NoMethod { .. }
                | ApiError::KeyRequired { .. }
                | ApiError::AccessTokenCompromised { .. }
        )
    }

    /// Errors another attempt may get past. `Malformed` is retried like an
    /// unusable HTML page (`FetchError::Page`): most are bodies cut off in
    /// transit, and the supervisor's attempt budget bounds the rest.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::InternalError { .. }
            | ApiError::TemporarilyUnavailable { .. }
            | ApiError::ThrottleViolation { .. }
            | ApiError::DuplicateRequest { .. }
            | ApiError::Malformed(_) => true,
            ApiError::Other { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// How long the whole pool should pause after this error: for a
    /// `throttle_violation`, the message's "available in N seconds" plus one,
    /// but never less than `min` (the config's, by default
    /// [`crate::config::THROTTLE_VIOLATION_MIN_PAUSE`]). N can be hours (the daily quota is
    /// spent); a caller may rather stop the crawl than wait that long.
    pub fn pause(&self, min: Duration) -> Option<Duration> {
        match self {
            ApiError::ThrottleViolation { available_in, .. } => {
                Some(throttle_pause(*available_in).unwrap_or_default().max(min))
            }
            _ => None,
        }
    }

    /// The documented `error_id`, if the API gave one.
    pub fn error_id(&self) -> Option<u64> {
        Some(match self {
            ApiError::BadParameter { .. } => 400,
            ApiError::AccessTokenRequired { .. } => 401,
            ApiError::InvalidAccessToken { .. } => 402,
            ApiError::AccessDenied { .. } => 403,
            ApiError::NoMethod { .. } => 404,
            ApiError::KeyRequired { .. } => 405,
            ApiError::AccessTokenCompromised { .. } => 406,
            ApiError::WriteFailed { .. } => 407,
            ApiError::DuplicateRequest { .. } => 409,
            ApiError::InternalError { .. } => 500,
            ApiError::ThrottleViolation { .. } => 502,
            ApiError::TemporarilyUnavailable { .. } => 503,
            ApiError::Other { error_id, .. } => *error_id,
            ApiError::Malformed(_) => return None,
        })
    }

    /// A short machine-friendly name for logs and summaries: the API's
    /// `error_name` for documented errors.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::BadParameter { .. } => "bad_parameter",
            ApiError::AccessTokenRequired { .. } => "access_token_required",
            ApiError::InvalidAccessToken { .. } => "invalid_access_token",
            ApiError::AccessDenied { .. } => "access_denied",
            ApiError::NoMethod { .. } => "no_method",
            ApiError::KeyRequired { .. } => "key_required",
            ApiError::AccessTokenCompromised { .. } => "access_token_compromised",
            ApiError::WriteFailed { .. } => "write_failed",
            ApiError::DuplicateRequest { .. } => "duplicate_request",
            ApiError::InternalError { .. } => "internal_error",
            ApiError::ThrottleViolation { .. } => "throttle_violation",
            ApiError::TemporarilyUnavailable { .. } => "temporarily_unavailable",
            ApiError::Other { .. } => "other",
            ApiError::Malformed(_) => "malformed",
        }
    }
}

/// Classifies an error response: `status` is the HTTP status, `body` the
/// response body the fetcher kept.
pub fn parse_api_error(status: u16, body: &str) -> ApiError {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) => error_from_wrapper(status, &map).unwrap_or_else(|| {
            ApiError::Malformed(format!(
                "HTTP {status} without an error_id: {}",
                snippet(body)
            ))
        }),
        Ok(_) => ApiError::Malformed(format!(
            "HTTP {status}, body is not a JSON object: {}",
            snippet(body)
        )),
        Err(e) => ApiError::Malformed(format!(
            "HTTP {status}, body is not JSON ({e}): {}",
            snippet(body)
        )),
    }
}

/// The error a wrapper carries, if it has an `error_id` (or, failing that,
/// an `error_name`).
pub(super) fn error_from_wrapper(status: u16, map: &Map<String, Value>) -> Option<ApiError> {
    let id = map.get("error_id").and_then(Value::as_u64);
    let name = map.get("error_name").and_then(Value::as_str);
    if id.is_none() && name.is_none() {
        return None;
    }
    let message = map
        .get("error_message")
        .and_then(Value::as_str)
        .map(|m| redact_key(&collapse(&decode_entities(m))))
        .unwrap_or_default();
    // The id decides; the name only stands in when the id is missing.
    let id = id.or_else(|| name.and_then(documented_id));
    Some(match id {
        Some(400) => ApiError::BadParameter { message },
        Some(401) => ApiError::AccessTokenRequired { message },
        Some(402) => ApiError::InvalidAccessToken { message },
        Some(403) => ApiError::AccessDenied { message },
        Some(404) => ApiError::NoMethod { message },
        Some(405) => ApiError::KeyRequired { message },
        Some(406) => ApiError::AccessTokenCompromised { message },
        Some(407) => ApiError::WriteFailed { message },
        Some(409) => ApiError::DuplicateRequest { message },
        Some(500) => ApiError::InternalError { message },
        Some(502) => ApiError::ThrottleViolation {
            available_in: available_in(&message),
            message,
        },
        Some(503) => ApiError::TemporarilyUnavailable { message },
        other => ApiError::Other {
            status,
            error_id: other.unwrap_or(0),
            error_name: name.unwrap_or("unknown").to_owned(),
            message,
        },
    })
}

fn documented_id(name: &str) -> Option<u64> {
    Some(match name {
        "bad_parameter" => 400,
        "access_token_required" => 401,
        "invalid_access_token" => 402,
        "access_denied" => 403,
        "no_method" => 404,
        "key_required" => 405,
        "access_token_compromised" => 406,
        "write_failed" => 407,
        "duplicate_request" => 409,
        "internal_error" => 500,
        "throttle_violation" => 502,
        "temporarily_unavailable" => 503,
        _ => return None,
    })
}

/// The N of "too many requests from this IP, more requests available in N
/// seconds", the message a `throttle_violation` carries.
pub fn available_in(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let (_, after) = lower.split_once("available in")?;
    let after = after.trim_start();
    let digits_end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let (digits, unit) = after.split_at_checked(digits_end)?;
    if !unit.trim_start().starts_with("second") {
        return None;
    }
    digits.parse().ok().map(Duration::from_secs)
}

/// The start of a body for an error message, on one line and with any key
/// that an error page echoes redacted.
pub(super) fn snippet(body: &str) -> String {
    const MAX: usize = 120;
    let flat = redact_key(&collapse(body));
    if flat.chars().count() <= MAX {
        flat
    } else {
        let mut cut: String = flat.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}
