//! The live status server (`--status-addr`): `/` a page a person leaves
//! open (it refreshes itself), `/status.json` the same figures for scripts,
//! `/metrics` for Prometheus. Served by actix-web inside the crawl's own
//! actix System; every answer is a copy of the [`Monitor`], so a reader
//! never touches the store or the crawl.

use std::fmt::Write as _;
use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::{http::header, web, App, HttpResponse, HttpServer};
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::observe::charts::{self, escape};
use crate::observe::monitor::{Monitor, PassStatus, Status};

/// Seconds between the page's own refreshes.
const REFRESH_SECS: u32 = 5;

#[derive(Debug, Error)]
pub enum StatusError {
    #[error("cannot serve the status page on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running status server; stop it with [`StatusServer::stop`].
pub struct StatusServer {
    /// Where it listens (the port chosen, when asked for port 0).
    pub addr: SocketAddr,
    handle: ServerHandle,
}

impl StatusServer {
    /// Binds `addr` and serves `monitor` from the current actix System.
    pub fn start(addr: SocketAddr, monitor: Monitor) -> Result<StatusServer, StatusError> {
        let bind_err = |source| StatusError::Bind { addr, source };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(monitor.clone()))
                .route("/", web::get().to(page))
                .route("/status.json", web::get().to(json))
                .route("/metrics", web::get().to(metrics))
        })
        // A handful of readers at most; the crawl's signals are its own.
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(addr)
        .map_err(bind_err)?;
        let bound = server.addrs().first().copied().unwrap_or(addr);
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Ok(StatusServer {
            addr: bound,
            handle,
        })
    }

    /// Stops listening; open connections get a moment to finish.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

async fn json(monitor: web::Data<Monitor>) -> HttpResponse {
    HttpResponse::Ok().json(monitor.status())
}

async fn metrics(monitor: web::Data<Monitor>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ))
        .body(monitor.metrics_text())
}

async fn page(monitor: web::Data<Monitor>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(render_page(&monitor.status()))
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "—".to_string(), |n| n.to_string())
}

/// A pass's pages done, with those done before this process started (a
/// resumed pass) named: they cost none of the requests the page shows.
fn done_pages(p: &PassStatus) -> String {
    if p.pages_done_before == 0 {
        return p.pages_done.to_string();
    }
    format!(
        "{} <span class=\"before\">({} before this start)</span>",
        p.pages_done, p.pages_done_before
    )
}

/// The page, drawn on the server: it shows its figures without scripts,
/// and refreshes itself with a plain meta refresh.
pub fn render_page(s: &Status) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECS}">
<title>stackcrawl {mode}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}
td,th{{border-bottom:1px solid #ddd;padding:.25em .8em;text-align:right}}
td:first-child,th:first-child{{text-align:left}}
.running{{color:#1f77b4;font-weight:bold}} .failed{{color:#d62728}}
.grid{{display:flex;flex-wrap:wrap;gap:2em}}
</style></head><body>
<h1>stackcrawl {mode}</h1>
<p>Started {started}; updated {updated}; this page refreshes every {REFRESH_SECS} s.</p>
"#,
        mode = escape(&s.mode),
        started = time(Some(s.started_at)),
        updated = time(Some(s.updated_at)),
    );
    if let Some(next) = &s.next_pass {
        let _ = writeln!(
            h,
            "<p id=\"next-pass\">Next pass: <b>{}</b> at {}</p>",
            escape(&next.tag_set),
            time(Some(next.at))
        );
    }
    h.push_str("<h2>Passes</h2>\n<table id=\"tags\"><tr><th>tag set / tag</th><th>pages done</th><th>planned</th><th>failed</th><th>skipped</th><th>questions this pass</th></tr>\n");
    for (name, p) in &s.passes {
        let state = if s.current_pass.as_deref() == Some(name) {
            "<span class=\"running\">running</span>".to_string()
        } else if let Some(at) = p.finished_at {
            format!("finished {}", time(Some(at)))
        } else {
            "not finished".to_string()
        };
        let _ = writeln!(
            h,
            "<tr class=\"tag-set\" data-tag-set=\"{n}\"><th>{n} ({state})</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            done_pages(p),
            p.pages_planned,
            p.pages_failed,
            p.pages_skipped,
            p.questions,
            n = escape(name),
        );
        for (tag, t) in &p.tags {
            let _ = writeln!(
                h,
                "<tr class=\"tag\" data-tag-set=\"{set}\" data-tag=\"{tag}\"><td>{tag}</td><td class=\"pages-done\">{}</td><td class=\"pages-planned\">{}</td><td class=\"pages-failed\">{}</td><td>{}</td><td class=\"questions\">{}</td></tr>",
                t.pages_done,
                t.pages_planned,
                t.pages_failed,
                t.pages_skipped,
                t.questions,
                set = escape(name),
                tag = escape(tag),
            );
        }
    }
    h.push_str("</table>\n");

    let r = &s.requests;
    let start = s.started_at;
    let rate = charts::Line {
        name: "requests/s (10 s buckets)".into(),
        points: r
            .rate_history
            .iter()
            .map(|p| {
                (
                    (p.at - start).num_milliseconds() as f64 / 1000.0,
                    p.per_second,
                )
            })
            .collect(),
    };
    for w in &s.waiting {
        let _ = writeln!(
            h,
            "<p class=\"failed\" id=\"waiting\">Paused: waiting on the {} for {} s ({}). Fetched pages are kept until written; no request goes out uncounted.</p>",
            w.on,
            w.secs,
            charts::escape(&w.doing)
        );
    }
    h.push_str("<h2>Requests</h2>\n");
    h.push_str(&charts::lines(
        "Request rate against the quota",
        "requests/s",
        &[rate],
        Some(("quota", r.quota_per_second)),
        // Labels to the second.
        1.0,
        &|secs| {
            (start + chrono::TimeDelta::milliseconds((secs * 1000.0) as i64))
                .format("%H:%M:%S")
                .to_string()
        },
    ));
    let _ = writeln!(
        h,
        "<table id=\"requests\"><tr><td>requests sent</td><td>{}</td></tr><tr><td>last minute</td><td>{}</td></tr><tr><td>quota</td><td>{} /s (now {:.3} /s)</td></tr><tr><td>retries</td><td>{}</td></tr><tr><td>429 Too Many Requests</td><td>{}</td></tr><tr><td>pages failed</td><td class=\"{}\">{}</td></tr><tr><td>pages waiting to retry</td><td>{}</td></tr></table>",
        r.total,
        r.last_minute,
        r.quota_per_second,
        r.effective_rate,
        r.retries,
        r.rate_limited,
        if r.pages_failed > 0 { "failed" } else { "" },
        r.pages_failed,
        r.pages_retrying,
    );

    h.push_str("<div class=\"grid\"><div><h2>Budget and quota</h2>\n<table id=\"budget\">");
    let b = &s.budget;
    let _ = write!(
        h,
        "<tr><td>daily budget left</td><td>{}{}</td></tr><tr><td>resets</td><td>{}</td></tr>",
        opt(b.remaining),
        if b.exhausted { " (spent)" } else { "" },
        time(b.resets_at)
    );
    if let Some(api) = &s.quota {
        let _ = write!(
            h,
            "<tr><td>API requests</td><td>{}</td></tr><tr><td>API quota left</td><td>{} of {}</td></tr><tr><td>API quota resets</td><td>{}</td></tr><tr><td>API backoffs</td><td>{}</td></tr>",
            api.requests,
            opt(api.quota_remaining),
            opt(api.quota_max),
            time(api.resets_at),
            api.backoffs
        );
    }
    h.push_str("</table></div>\n");
    if let Some(st) = &s.store {
        let _ = writeln!(
            h,
            "<div><h2>Store</h2><table id=\"store\"><tr><td>questions</td><td>{}</td></tr><tr><td>size</td><td>{:.1} MiB</td></tr></table></div>",
            st.questions,
            st.size_bytes as f64 / (1024.0 * 1024.0)
        );
    }
    h.push_str("</div>\n<h2>Last pages completed</h2>\n<table id=\"recent\"><tr><th>tag</th><th>page</th><th>outcome</th><th>questions</th><th>new</th><th>updated</th><th>attempts</th><th>at</th></tr>\n");
    for p in &s.recent_pages {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\" title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.tag),
            p.page,
            if p.outcome == "failed" { "failed" } else { "" },
            escape(p.detail.as_deref().unwrap_or("")),
            p.outcome,
            p.questions,
            p.new,
            p.updated,
            p.attempts,
            p.completed_at.format("%H:%M:%S"),
        );
    }
    h.push_str("</table>\n<p><a href=\"/status.json\">status.json</a> · <a href=\"/metrics\">metrics</a></p>\n</body></html>\n");
    h
}
