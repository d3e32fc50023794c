//! Pages settled by one process of a fleet, announced to the others as
//! they commit (PostgreSQL's LISTEN/NOTIFY).
//!
//! A process that found a page leased by another waits for it: done, the
//! page counts as done here too; handed back, this process may take it.
//! Asking the database again on a timer made every such wait last up to
//! the timer's period, and the pass's end waits on exactly that: the last
//! page is written by one process while every other one waits on it. So a
//! page's write and a lease handed back each send a notification inside
//! their transaction (delivered when it commits, never for a rolled-back
//! write), and every process listens on a connection of its own.
//!
//! A notification can be missed while the listening connection is down:
//! [`Announcement::Listening`] after every (re)connection tells waiters to
//! ask again, and [`Announcement::Deaf`] that they must ask on a timer
//! until then.

use std::future::Future;
use std::time::Duration;

use futures_util::stream::{poll_fn, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::TlsStream;
use tokio_postgres::{AsyncMessage, Connection};
use tracing::{info, warn};

use super::{async_settings, describe, Tls};
use crate::store::StoreError;

/// The channel every process of a fleet listens on.
pub(super) const CHANNEL: &str = "stackcrawl_pages";

/// What the listening connection heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// A page of a pass was written, or its lease handed back, by the
    /// process named (`None`: a writer without a lease).
    Settled {
        pass_id: i64,
        tag: String,
        tab: String,
        page: u32,
        by: Option<String>,
    },
    /// Listening, from now on: whatever was settled before may have been
    /// missed.
    Listening,
    /// The listening connection is lost: nothing is heard until the next
    /// [`Announcement::Listening`].
    Deaf,
}

/// A notification's payload, as the statements that send it build it
/// (`json_build_object` with these keys).
#[derive(serde::Deserialize)]
struct Payload {
    pass: i64,
    tag: String,
    tab: String,
    page: u32,
    by: Option<String>,
}

fn parse(payload: &str) -> Option<Announcement> {
    let p: Payload = serde_json::from_str(payload).ok()?;
    Some(Announcement::Settled {
        pass_id: p.pass,
        tag: p.tag,
        tab: p.tab,
        page: p.page,
        by: p.by,
    })
}

/// The payload's SQL: the page's pass, tag, tab and page, and who settled
/// it, from the statement's parameters and rows.
pub(super) fn payload_sql(pass: &str, tag: &str, tab: &str, page: &str, by: &str) -> String {
    format!(
        "json_build_object('pass', {pass}, 'tag', {tag}, 'tab', {tab}, 'page', {page}, 'by', {by})::text"
    )
}

/// The longest wait between two attempts to listen again.
const RELISTEN_MAX_WAIT: Duration = Duration::from_secs(15);

/// Listens to the fleet's announcements on the database `url` names and
/// hands each to `deliver`, reconnecting whenever the connection drops,
/// until `deliver` returns false (nobody waits any more). Runs on the
/// caller's async runtime.
pub fn listen(
    url: &str,
    mut deliver: impl FnMut(Announcement) -> bool,
) -> Result<impl Future<Output = ()>, StoreError> {
    let (config, tls, shown) = async_settings(url)?;
    Ok(async move {
        let mut wait = Duration::from_millis(500);
        loop {
            let heard = match &tls {
                Tls::Off => match config.connect(tokio_postgres::NoTls).await {
                    Ok((client, conn)) => Ok(relay(client, conn, &mut deliver).await),
                    Err(e) => Err(e),
                },
                Tls::Rustls(t) => match config.connect(t.clone()).await {
                    Ok((client, conn)) => Ok(relay(client, conn, &mut deliver).await),
                    Err(e) => Err(e),
                },
            };
            match heard {
                Ok(Relayed::ReceiverGone) => return,
                Ok(Relayed::Lost(e)) => {
                    warn!(store = %shown, error = %e, "announcements of pages settled elsewhere lost: waiting pages are asked about on a timer until they are heard again");
                    wait = Duration::from_millis(500);
                }
                Err(e) => {
                    warn!(store = %shown, error = %describe(&e), retry_in_secs = wait.as_secs_f64(), "cannot listen for pages settled elsewhere");
                }
            }
            if !deliver(Announcement::Deaf) {
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RELISTEN_MAX_WAIT);
        }
    })
}

enum Relayed {
    ReceiverGone,
    Lost(String),
}

/// Drives one connection: LISTEN, then every notification to `deliver`.
async fn relay<S, T>(
    client: tokio_postgres::Client,
    mut conn: Connection<S, T>,
    deliver: &mut impl FnMut(Announcement) -> bool,
) -> Relayed
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: TlsStream + Unpin,
{
    let mut messages = poll_fn(move |cx| conn.poll_message(cx));
    let sql = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&sql);
    tokio::pin!(listen);
    // The connection only moves while it is polled: the LISTEN's answer
    // arrives through `messages`.
    loop {
        tokio::select! {
            done = &mut listen => match done {
                Ok(()) => break,
                Err(e) => return Relayed::Lost(describe(&e)),
            },
            m = messages.next() => match m {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Relayed::Lost(describe(&e)),
                None => return Relayed::Lost("connection closed".into()),
            },
        }
    }
    info!("listening for pages settled by the rest of the fleet");
    if !deliver(Announcement::Listening) {
        return Relayed::ReceiverGone;
    }
    loop {
        match messages.next().await {
            Some(Ok(AsyncMessage::Notification(n))) => {
                if let Some(a) = parse(n.payload()) {
                    if !deliver(a) {
                        return Relayed::ReceiverGone;
                    }
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Relayed::Lost(describe(&e)),
            None => return Relayed::Lost("connection closed".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_reads_back_as_its_page_and_anything_else_is_ignored() {
        let json = r#"{"pass": 42, "tag": "c#\tx", "tab": "newest", "page": 7, "by": "w1"}"#;
        assert_eq!(
            parse(json),
            Some(Announcement::Settled {
                pass_id: 42,
                tag: "c#\tx".into(),
                tab: "newest".into(),
                page: 7,
                by: Some("w1".into()),
            })
        );
        assert_eq!(parse("42\t7\tnewest\trust"), None);
    }
}
