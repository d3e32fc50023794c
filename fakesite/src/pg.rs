//! A PostgreSQL database of a test's own, on the server the project's
//! machines run on 127.0.0.1:5432 (trust authentication), dropped when the
//! test ends, passed or failed.
//!
//! Only the `postgres` maintenance database is assumed to exist; the
//! server can be moved with `STACKCRAWL_TEST_POSTGRES` (a URL without a
//! database name).

use std::sync::atomic::{AtomicU64, Ordering};

/// The server the tests use, without a database name.
pub fn server_url() -> String {
    std::env::var("STACKCRAWL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// A fresh database; `url` names it. Dropping it drops the database, with
/// `FORCE`, so connections a killed process left behind do not keep it.
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    pub fn create() -> TestDb {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "stackcrawl_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin(&format!("CREATE DATABASE {name}"));
        TestDb {
            url: format!("{}/{name}", server_url()),
            name,
        }
    }

    /// The server's address, for a proxy to stand in front of.
    pub fn server_addr() -> std::net::SocketAddr {
        let url = server_url();
        let host = url.rsplit('@').next().unwrap_or(&url);
        let host = host.split('/').next().unwrap_or(host);
        let host = host.trim_start_matches("postgres://");
        std::net::ToSocketAddrs::to_socket_addrs(host)
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("no address in {url}"))
    }

    /// This database's URL, reached through `addr` (a test's proxy).
    pub fn url_through(&self, addr: std::net::SocketAddr) -> String {
        let url = server_url();
        let user = url
            .trim_start_matches("postgres://")
            .split('@')
            .next()
            .filter(|_| url.contains('@'))
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        format!("postgres://{user}{addr}/{}", self.name)
    }

    /// Runs SQL in this database (to look at, or break, what a test made).
    pub fn execute(&self, sql: &str) {
        let (url, sql) = (self.url.clone(), sql.to_string());
        off_runtime(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls)
                .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
            c.batch_execute(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    /// The first column of the first row of `sql`, as a number.
    pub fn count(&self, sql: &str) -> i64 {
        let (url, sql) = (self.url.clone(), sql.to_string());
        off_runtime(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls)
                .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
            c.query_one(&sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0)
        })
    }
}

impl Drop for TestDb {
    /// Never panics: it may run while a failed test unwinds.
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = try_admin(&sql) {
            eprintln!("test database {} not dropped: {e}", self.name);
        }
    }
}

fn admin(sql: &str) {
    if let Err(e) = try_admin(sql) {
        panic!("{e}");
    }
}

fn try_admin(sql: &str) -> Result<(), String> {
    let url = format!("{}/postgres", server_url());
    let sql = sql.to_string();
    off_runtime(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).map_err(|e| {
            format!("PostgreSQL is needed on {url} (trust authentication) for this test: {e}")
        })?;
        c.batch_execute(&sql).map_err(|e| format!("{sql}: {e}"))
    })
}

/// The sync client runs its own runtime, which cannot start inside a
/// test's (`#[actix::test]`): it gets a thread of its own.
fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f)
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
