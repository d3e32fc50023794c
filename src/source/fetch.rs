//! HTTP: one shared reqwest client configured for politeness and safety, and
//! the typed `FetchError` that tells the supervisor whether to retry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::redirect;
use thiserror::Error;

use crate::config::Config;
use crate::lane::throttle::RateLimits;
use crate::lane::Reply;
use crate::source::charset;

#[derive(Debug, Clone, Error)]
pub enum FetchError {
    /// 429, or 503: the server asks us to slow down, perhaps saying how long.
    #[error("rate limited (HTTP {status}){}", retry_after_text(.retry_after))]
    RateLimited {
        status: u16,
        retry_after: Option<Duration>,
        /// What the site said of its limit besides.
        limits: RateLimits,
    },
    #[error("HTTP {status}")]
    Status { status: u16 },
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("body refused: larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body broken off: {0}")]
    Body(String),
    /// A redirect off the configured hosts, or too many: the next attempt
    /// is sent the same way.
    #[error("redirect refused: {0}")]
    Redirect(String),
    /// The response's headers are larger than the client reads: the same
    /// request gets the same headers.
    #[error("response headers too large")]
    HeadersTooLarge,
    #[error("request failed: {0}")]
    Other(String),
}

fn retry_after_text(d: &Option<Duration>) -> String {
    d.map(|d| format!(", retry after {}s", d.as_secs_f64()))
        .unwrap_or_default()
}

impl FetchError {
    /// Whether another attempt may succeed: network trouble, server errors
    /// and rate limits, yes; a 404 or a refused body, no.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::RateLimited { .. }
            | FetchError::Timeout
            | FetchError::Connect(_)
            | FetchError::Body(_)
            | FetchError::Other(_) => true,
            FetchError::Status { status } => *status >= 500 || *status == 408,
            FetchError::TooLarge { .. } | FetchError::Redirect(_) | FetchError::HeadersTooLarge => {
                false
            }
        }
    }

    /// A short machine-friendly name for logs and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::RateLimited { .. } => "rate_limited",
            FetchError::Status { .. } => "status",
            FetchError::Timeout => "timeout",
            FetchError::Connect(_) => "connect",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Body(_) => "body",
            FetchError::Redirect(_) => "redirect",
            FetchError::HeadersTooLarge => "headers_too_large",
            FetchError::Other(_) => "other",
        }
    }

    fn from_reqwest(e: reqwest::Error) -> FetchError {
        // reqwest quotes the request URL in its errors, and an API URL
        // carries the app key: drop it before anything can print it.
        let e = e.without_url();
        if e.is_timeout() {
            FetchError::Timeout
        } else if e.is_redirect() {
            FetchError::Redirect(root_cause(&e))
        } else if root_cause(&e) == HEAD_TOO_LARGE {
            FetchError::HeadersTooLarge
        } else if e.is_connect() {
            FetchError::Connect(root_cause(&e))
        } else if e.is_body() || e.is_decode() {
            FetchError::Body(root_cause(&e))
        } else {
            FetchError::Other(root_cause(&e))
        }
    }
}

/// hyper's words for response headers over its limit. Its error says so
/// only through `is_parse_too_large`, which it builds for servers alone, so
/// the text is matched; the test of `HeadersTooLarge` catches a change.
const HEAD_TOO_LARGE: &str = "message head is too large";

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A successful response body.
#[derive(Debug)]
pub struct Body {
    pub text: String,
    pub fetched_at: DateTime<Utc>,
    /// What the site said of its rate limit, for the lane's controller.
    pub limits: RateLimits,
}

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    /// The one cap on a body's size: checked while reading, so an oversized
    /// body is never held whole, and the parser need not check again.
    max_body_bytes: usize,
}

/// Redirects are followed only on the configured hosts (the site and the
/// API) and only a few times: a listing that redirects elsewhere is not the
/// page that was planned.
const MAX_REDIRECTS: usize = 3;

impl HttpClient {
    pub fn new(config: &Config) -> Result<HttpClient, FetchError> {
        let mut hosts = vec![config.site.clone(), config.api.host.clone()];
        // The archives redirect a capture to the nearest one they hold.
        hosts.extend(config.archive.hosts());
        let policy = redirect::Policy::custom(move |attempt| {
            let allowed = attempt
                .url()
                .host_str()
                .is_some_and(|h| hosts.iter().any(|allowed| allowed == h));
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if !allowed || !matches!(attempt.url().scheme(), "http" | "https") {
                attempt.error("redirect leaves the configured host")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .redirect(policy)
            .gzip(true)
            .brotli(true)
            .https_only(false)
            // One egress address per process of a fleet on one machine.
            .local_address(config.fleet.local_address)
            .build()
            .map_err(|e| FetchError::Other(root_cause(&e)))?;
        Ok(HttpClient {
            client,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// GETs a page: a 2xx body, or the error that says what went wrong.
    pub async fn get_ok(&self, url: &str) -> Result<Body, FetchError> {
        let resp = self.get_response(url).await?;
        match resp.status {
            200..=299 => Ok(Body {
                text: resp.text,
                fetched_at: resp.fetched_at,
                limits: resp.limits,
            }),
            _ => Err(resp.status_error()),
        }
    }

    /// GETs a URL and returns whatever status it answers with, its body read
    /// up to the size cap (robots.txt and the API put meaning in error bodies).
    pub async fn get_response(&self, url: &str) -> Result<Response, FetchError> {
        let (resp, bytes) = self.get_bytes(url, None).await?;
        // In the charset the response declares (a Wayback capture fetched
        // raw keeps its page's own), as `stackcrawl parse` reads a file.
        let text = charset::decode(&bytes, resp.content_type.as_deref()).into_owned();
        Ok(Response { text, ..resp })
    }

    /// GETs a URL, or the inclusive byte range `range` of it (a record in
    /// an archive's file), as bytes; the returned response's `text` is empty.
    pub async fn get_bytes(
        &self,
        url: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(Response, Vec<u8>), FetchError> {
        let mut request = self.client.get(url);
        if let Some((first, last)) = range {
            request = request.header(reqwest::header::RANGE, format!("bytes={first}-{last}"));
        }
        let mut resp = request.send().await.map_err(FetchError::from_reqwest)?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers(), Utc::now());
        let limits = RateLimits::from_headers(resp.headers(), Utc::now().timestamp());
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if resp
            .content_length()
            .is_some_and(|len| len > self.max_body_bytes as u64)
        {
            return Err(FetchError::TooLarge {
                limit: self.max_body_bytes,
            });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(FetchError::from_reqwest)? {
            if bytes.len() + chunk.len() > self.max_body_bytes {
                return Err(FetchError::TooLarge {
                    limit: self.max_body_bytes,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let resp = Response {
            status,
            retry_after,
            limits,
            content_type,
            text: String::new(),
            fetched_at: Utc::now(),
        };
        Ok((resp, bytes))
    }
}

/// Any response, whatever its status.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub limits: RateLimits,
    pub content_type: Option<String>,
    pub text: String,
    pub fetched_at: DateTime<Utc>,
}

impl Response {
    /// What a status that is not a success means: a 429 or 503 asks us to
    /// slow down (saying how long, perhaps); any other is plain.
    pub fn status_error(&self) -> FetchError {
        match self.status {
            // A site that names no Retry-After but the reset of an
            // exhausted quota says when to come back all the same.
            429 | 503 => FetchError::RateLimited {
                status: self.status,
                retry_after: self.retry_after.or(self.limits.reset),
                limits: self.limits,
            },
            status => FetchError::Status { status },
        }
    }
}

impl FetchError {
    /// What this failure means for the request's lane.
    pub fn reply(&self) -> Reply {
        match self {
            FetchError::RateLimited {
                status,
                retry_after,
                limits,
            } => Reply::SlowDown {
                status: *status,
                retry_after: *retry_after,
                limits: *limits,
            },
            FetchError::Connect(_) => Reply::NeverSent,
            _ => Reply::Failed,
        }
    }
}

impl Response {
    /// What this answer means for the request's lane, whatever the caller
    /// makes of its status.
    pub fn reply(&self) -> Reply {
        match self.status {
            429 | 503 => self.status_error().reply(),
            s if s < 400 => Reply::Served(self.limits),
            _ => Reply::Failed,
        }
    }
}

/// The longest wait a `Retry-After` is taken at: a day, however it is
/// written (a server's clock or arithmetic gone wrong must not park the
/// crawler for a year).
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `Retry-After` as seconds or as an HTTP date; a date in the past means
/// "now", an unreadable value means the header was not given. Seconds with
/// a fraction (`1.5`, not in RFC 9110 but sent by some servers) are read
/// as written.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs.min(LONGEST_RETRY_AFTER.as_secs()))
    } else if let Some(secs) = value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
    {
        Duration::from_secs_f64(secs.min(LONGEST_RETRY_AFTER.as_secs_f64()))
    } else {
        let when = DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc);
        (when - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(LONGEST_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:30 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn retry_after_reads_fractions_and_caps_every_form_at_a_day() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
        for never in ["NaN", "-3", "inf"] {
            h.insert(RETRY_AFTER, HeaderValue::from_static(never));
            assert_eq!(retry_after(&h, now), None, "{never}");
        }
        let day = Some(Duration::from_secs(24 * 3600));
        h.insert(RETRY_AFTER, HeaderValue::from_static("1e9"));
        assert_eq!(retry_after(&h, now), day);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), day, "a date years ahead");
    }

    /// The client a crawl of tag `x` builds, at `base_url` if given.
    fn client(base_url: Option<&str>) -> HttpClient {
        let config = Config::from_toml(
            "",
            "test",
            &crate::config::Overrides {
                tags: vec!["x".into()],
                base_url: base_url.map(str::to_string),
                ..Default::default()
            },
        )
        .unwrap();
        HttpClient::new(&config).unwrap()
    }

    #[tokio::test]
    async fn errors_never_quote_the_url_and_its_key() {
        let http = client(None);
        // Port 1 on loopback: nothing listens, the connection is refused.
        let err = http
            .get_response("http://127.0.0.1:1/2.3/questions?site=stackoverflow&key=S3CRET")
            .await
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("S3CRET"), "{text}");
        assert!(!text.contains("key="), "{text}");
    }

    /// A server on loopback answering each request by its path with raw
    /// HTTP: a redirect to another host, a redirect to itself, a page in
    /// windows-1252, and a response whose headers exceed what the client
    /// reads.
    async fn answering_server() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                    if path == "/latin" {
                        // "café – naïve" in windows-1252.
                        let body = b"<p>caf\xe9 \x96 na\xefve</p>";
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=windows-1252\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(body).await;
                        let _ = socket.shutdown().await;
                        return;
                    }
                    let reply = match path.as_str() {
                        "/away" => "HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/x\r\nContent-Length: 0\r\n\r\n".to_string(),
                        "/loop" => "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_string(),
                        _ => format!(
                            "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
                            "a".repeat(1024 * 1024)
                        ),
                    };
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_page_is_read_in_the_charset_its_response_declares() {
        let base = answering_server().await;
        let http = client(None);
        let body = http.get_ok(&format!("{base}/latin")).await.unwrap();
        assert_eq!(body.text, "<p>café – naïve</p>");
    }

    #[tokio::test]
    async fn failures_a_retry_cannot_change_are_not_retried() {
        let base = answering_server().await;
        let http = client(Some(&base));
        for path in ["/away", "/loop", "/big"] {
            let err = http
                .get_response(&format!("{base}{path}"))
                .await
                .unwrap_err();
            assert!(!err.is_retryable(), "{path}: {err:?}");
            assert!(
                matches!(
                    (path, &err),
                    ("/away", FetchError::Redirect(_))
                        | ("/loop", FetchError::Redirect(_))
                        | ("/big", FetchError::HeadersTooLarge)
                ),
                "{path}: {err:?}"
            );
        }
    }

    #[test]
    fn a_429_without_retry_after_waits_for_its_ratelimit_reset() {
        let resp = |retry_after, reset| Response {
            status: 429,
            retry_after,
            limits: RateLimits {
                remaining: Some(0),
                reset,
                ..RateLimits::default()
            },
            content_type: None,
            text: String::new(),
            fetched_at: Utc::now(),
        };
        let wait = |r: Response| match r.status_error() {
            FetchError::RateLimited { retry_after, .. } => retry_after,
            other => panic!("{other:?}"),
        };
        let five = Some(Duration::from_secs(5));
        assert_eq!(wait(resp(None, five)), five);
        let two = Some(Duration::from_secs(2));
        assert_eq!(wait(resp(two, five)), two, "Retry-After wins");
        assert_eq!(wait(resp(None, None)), None);
    }

    #[test]
    fn only_transient_errors_are_retried() {
        assert!(FetchError::Status { status: 502 }.is_retryable());
        assert!(!FetchError::Status { status: 404 }.is_retryable());
        assert!(!FetchError::TooLarge { limit: 1 }.is_retryable());
        assert!(FetchError::Timeout.is_retryable());
    }
}
