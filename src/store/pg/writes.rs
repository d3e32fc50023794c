//! Writing passes on PostgreSQL: the SQLite store's `writes`, statement
//! for statement, made safe for several processes writing at once.
//!
//! What several writers change: a pass is opened by one insert that the
//! `passes_one_running` index lets only one process win (the others find
//! its pass); and a page's write locks its questions' keys (an advisory
//! lock each, in one order, so two pages sharing questions cannot
//! deadlock), so two processes seeing one question at once give it one
//! snapshot a pass. The "changed?" read takes its snapshot before that
//! lock is granted (READ COMMITTED: a statement's snapshot is taken when
//! it starts), so both may count a brand-new question as new in their
//! page's counts; the write, a later statement, sees the other's row.
//! Only those per-page counts can differ (the kept totals count rows).
//! A page's write is announced to the fleet when it commits (`announce`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use postgres::types::ToSql;
use postgres::{Client, Statement, Transaction};

use super::{announce, signed, unsigned, Prepared};
use crate::model::{PageContext, Question};
use crate::store::writes::{
    compare, question_upsert_set, Compared, Figures, Sighting, ONLY_IF_NEWER,
};
use crate::store::{enum_text, Claim, LeaseToken, PageWrite, PassStart, PassTotals, StoreError};

pub(super) fn begin_pass(
    c: &mut Client,
    tag_set: &str,
    now: DateTime<Utc>,
) -> Result<PassStart, StoreError> {
    const OPEN: &str =
        "SELECT pass_id FROM passes WHERE tag_set = $1 AND finished_at IS NULL AND NOT imported";
    // The open pass the INSERT ran into can finish (another process wrote
    // its last page) before the SELECT reads it: then no pass is open, and
    // the INSERT is tried again. Missing three times in a row would take
    // two whole passes between two statements: that error stands.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = c.transaction()?;
        let opened = tx.query_opt(
            "INSERT INTO passes (tag_set, started_at) VALUES ($1, $2)
             ON CONFLICT (tag_set) WHERE finished_at IS NULL DO NOTHING
             RETURNING pass_id",
            &[&tag_set, &SystemTime::from(now)],
        )?;
        let start = match opened {
            Some(row) => PassStart {
                pass_id: row.try_get(0)?,
                resumed: false,
            },
            None => {
                let row = match tx.query_opt(OPEN, &[&tag_set])? {
                    Some(row) => row,
                    None if attempt < 3 => continue,
                    None => tx.query_one(OPEN, &[&tag_set])?,
                };
                PassStart {
                    pass_id: row.try_get(0)?,
                    resumed: true,
                }
            }
        };
        tx.commit()?;
        return Ok(start);
    }
}

pub(super) fn tag_ends(
    c: &mut Client,
    pass_id: i64,
) -> Result<HashMap<(String, String), u32>, StoreError> {
    c.query(
        "SELECT tag, tab, MIN(page) FROM pass_pages
         WHERE pass_id = $1 AND ends_tag GROUP BY tag, tab",
        &[&pass_id],
    )?
    .iter()
    .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), page(r.try_get(2)?)?)))
    .collect()
}

pub(super) fn done_pages(
    c: &mut Client,
    pass_id: i64,
) -> Result<HashSet<(String, String, u32)>, StoreError> {
    c.query(
        "SELECT tag, tab, page FROM pass_pages WHERE pass_id = $1",
        &[&pass_id],
    )?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, page(r.try_get(2)?)?)))
    .collect()
}

fn page(v: i32) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|e| StoreError::Decode {
        column: "pass_pages.page",
        value: v.to_string(),
        reason: e.to_string(),
    })
}

/// Leases the first `$7` free pages of a candidate list in one statement
/// (one round trip, prepared once per connection). Every candidate is
/// looked at in the statement's snapshot: done, held by a live lease of
/// another process, or free (no lease, an expired one, or this worker's
/// own). The first free ones in the candidates' order are taken: a page
/// without a lease row by an insert that a concurrent insert wins (`ON
/// CONFLICT DO NOTHING`), one with a row by locking it `FOR UPDATE SKIP
/// LOCKED` (a row another process is claiming or writing this instant is
/// theirs) and giving it a new token; the update rechecks expiry on the
/// row's latest version, so a lease renewed meanwhile stays its holder's.
/// A page written by another process after the snapshot had its lease row
/// then, and that row is deleted or locked by the write: it is not taken.
/// The server's clock decides expiry, so the fleet's clocks need not agree.
///
/// A lease lost in a server crash costs at most one page fetched twice: it
/// is not worth a flush to disk per claim, as a page's write is. The
/// statement turns synchronous commit off for its own implicit transaction
/// (`set_config(.., true)` lasts until that transaction's commit), which
/// `SET LOCAL` could only do in a transaction of several round trips.
pub(super) const CLAIM_PAGES: &str = "
    WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)),
    cand AS (
        SELECT c.tag, c.tab, c.page, c.ord
        FROM unnest($2::text[], $3::text[], $4::integer[]) WITH ORDINALITY
             AS c (tag, tab, page, ord)
    ),
    seen AS (
        SELECT c.ord, c.tag, c.tab, c.page,
               d.page IS NOT NULL AS done, d.ends_tag, d.fetched_by,
               l.page IS NOT NULL AS leased, l.holder, l.expires_at,
               l.expires_at < now() AS expired
        FROM cand c
        LEFT JOIN pass_pages d
               ON d.pass_id = $1 AND d.tag = c.tag AND d.tab = c.tab AND d.page = c.page
        LEFT JOIN page_leases l
               ON l.pass_id = $1 AND l.tag = c.tag AND l.tab = c.tab AND l.page = c.page
    ),
    wanted AS (
        SELECT * FROM seen
        WHERE NOT done AND (NOT leased OR expired OR holder = $5)
        ORDER BY ord LIMIT $7
    ),
    fresh AS (
        INSERT INTO page_leases (pass_id, tag, tab, page, holder, expires_at)
        SELECT $1, tag, tab, page, $5, now() + make_interval(secs => $6)
        FROM wanted WHERE NOT leased
        ON CONFLICT DO NOTHING
        RETURNING tag, tab, page, token, NULL::text AS taken_over_from
    ),
    locked AS (
        SELECT l.tag, l.tab, l.page, l.holder AS was
        FROM page_leases l
        JOIN wanted w ON l.tag = w.tag AND l.tab = w.tab AND l.page = w.page
        WHERE l.pass_id = $1 AND w.leased
        FOR UPDATE OF l SKIP LOCKED
    ),
    renewed AS (
        UPDATE page_leases l SET holder = $5,
               expires_at = now() + make_interval(secs => $6),
               token = nextval('page_lease_tokens')
        FROM locked k
        WHERE l.pass_id = $1 AND l.tag = k.tag AND l.tab = k.tab AND l.page = k.page
          AND (l.expires_at < now() OR l.holder = $5)
        RETURNING l.tag, l.tab, l.page, l.token, NULLIF(k.was, $5) AS taken_over_from
    ),
    granted AS (SELECT * FROM fresh UNION ALL SELECT * FROM renewed)
    SELECT s.done, s.ends_tag, s.fetched_by, s.leased, s.holder, s.expires_at,
           s.expired, w.ord IS NOT NULL AS tried, g.token, g.taken_over_from
    FROM seen s
    CROSS JOIN quick
    LEFT JOIN wanted w ON w.ord = s.ord
    LEFT JOIN granted g ON g.tag = s.tag AND g.tab = s.tab AND g.page = s.page
    ORDER BY s.ord";

/// Runs [`CLAIM_PAGES`] (prepared as `statement`) over `pages`; see
/// `PassStore::claim_pages` for what each answer means.
#[allow(clippy::too_many_arguments)]
pub(super) fn claim_pages(
    c: &mut Client,
    statement: &Statement,
    pass_id: i64,
    pages: &[PageContext],
    want: usize,
    worker: &str,
    lease: Duration,
) -> Result<Vec<Option<Claim>>, StoreError> {
    if pages.is_empty() {
        return Ok(Vec::new());
    }
    // The statement joins the leases it grants back to the candidates by
    // page: a page offered twice would be leased to both copies under one
    // token. Each page is offered once; a later copy is answered as not
    // claimed.
    let mut seen = HashMap::new();
    let slot: Vec<Option<usize>> = pages
        .iter()
        .map(|p| {
            let next = seen.len();
            match seen.entry((p.tag.as_str(), p.tab.as_str(), p.page)) {
                std::collections::hash_map::Entry::Occupied(_) => None,
                std::collections::hash_map::Entry::Vacant(v) => Some(*v.insert(next)),
            }
        })
        .collect();
    let pages: Vec<&PageContext> = pages
        .iter()
        .zip(&slot)
        .filter_map(|(p, s)| s.map(|_| p))
        .collect();
    let tags: Vec<&str> = pages.iter().map(|p| p.tag.as_str()).collect();
    let tabs: Vec<&str> = pages.iter().map(|p| p.tab.as_str()).collect();
    let numbers: Vec<i32> = pages.iter().map(|p| p.page as i32).collect();
    let want = i64::try_from(want).unwrap_or(i64::MAX);
    let rows = c.query(
        statement,
        &[
            &pass_id,
            &tags,
            &tabs,
            &numbers,
            &worker,
            &lease.as_secs_f64(),
            &want,
        ],
    )?;
    let mut claims = rows
        .iter()
        .map(|r| claim_of_row(r, worker))
        .collect::<Result<Vec<_>, _>>()?;
    done_since_looked(c, pass_id, &pages, &mut claims)?;
    Ok(slot
        .into_iter()
        .map(|s| s.and_then(|i| claims.get(i).cloned().flatten()))
        .collect())
}

/// The statement reads whether a page is done from its snapshot, taken
/// when it began; another process's write committed after that deletes
/// its lease, so this statement's insert then meets no conflict and leases
/// a page already written. Asked again in a statement of its own, which
/// sees every write committed before the insert, such a page's lease is
/// handed back and it is answered as done.
fn done_since_looked(
    c: &mut Client,
    pass_id: i64,
    pages: &[&PageContext],
    claims: &mut [Option<Claim>],
) -> Result<(), StoreError> {
    let leased: Vec<usize> = (0..claims.len())
        .filter(|&i| matches!(claims[i], Some(Claim::Leased { .. })))
        .collect();
    if leased.is_empty() {
        return Ok(());
    }
    let tags: Vec<&str> = leased.iter().map(|&i| pages[i].tag.as_str()).collect();
    let tabs: Vec<&str> = leased.iter().map(|&i| pages[i].tab.as_str()).collect();
    let numbers: Vec<i32> = leased.iter().map(|&i| pages[i].page as i32).collect();
    let written = c.query(
        "SELECT d.tag, d.tab, d.page, d.ends_tag, d.fetched_by
         FROM unnest($2::text[], $3::text[], $4::integer[]) AS c (tag, tab, page)
         JOIN pass_pages d
           ON d.pass_id = $1 AND d.tag = c.tag AND d.tab = c.tab AND d.page = c.page",
        &[&pass_id, &tags, &tabs, &numbers],
    )?;
    for r in written {
        let (tag, tab, page): (String, String, i32) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let Some(&i) = leased
            .iter()
            .find(|&&i| pages[i].tag == tag && pages[i].tab == tab && pages[i].page as i32 == page)
        else {
            continue;
        };
        if let Some(Claim::Leased { token, .. }) = &claims[i] {
            c.execute(
                "DELETE FROM page_leases
                 WHERE pass_id = $1 AND tag = $2 AND tab = $3 AND page = $4 AND token = $5",
                &[&pass_id, &tag, &tab, &page, &token.0],
            )?;
            claims[i] = Some(Claim::Done {
                ends_tag: r.try_get(3)?,
                by: r.try_get(4)?,
            });
        }
    }
    Ok(())
}

/// One candidate's row of [`CLAIM_PAGES`] as the crawl reads it.
fn claim_of_row(r: &postgres::Row, worker: &str) -> Result<Option<Claim>, StoreError> {
    if let Some(token) = r.try_get::<_, Option<i64>>("token")? {
        return Ok(Some(Claim::Leased {
            taken_over_from: r.try_get("taken_over_from")?,
            token: LeaseToken(token),
        }));
    }
    if r.try_get("done")? {
        return Ok(Some(Claim::Done {
            ends_tag: r.try_get("ends_tag")?,
            by: r.try_get("fetched_by")?,
        }));
    }
    if !r.try_get::<_, bool>("leased")? {
        // Free when looked at: past the batch, or another process's
        // insert won it a moment ago (asked again, it shows as held).
        return Ok(None);
    }
    let holder: String = r.try_get("holder")?;
    let until: DateTime<Utc> = r.try_get::<_, SystemTime>("expires_at")?.into();
    let expired: bool = r.try_get("expired")?;
    let tried: bool = r.try_get("tried")?;
    Ok(if tried {
        // Free when looked at but not taken: its row was locked by another
        // process claiming or writing it, or renewed meanwhile.
        Some(Claim::Held {
            by: holder,
            until: until.max(Utc::now()),
        })
    } else if expired || holder == worker {
        None
    } else {
        Some(Claim::Held { by: holder, until })
    })
}

/// As the SQLite store's `record_page_ending`: one transaction, all of the
/// page or none of it. With `lease`, fenced: written only if the page's
/// lease still has that token.
///
/// Four round trips (ten statements, each parsed and planned per page,
/// before): the transaction's start; the read of the page's questions; the
/// write of everything (questions, snapshots, the page done, the lease
/// ended, the kept totals, the announcement) in one statement whose every
/// part is gated on the checks it makes first (the pass still running, the
/// lease still this writer's token); and the commit. The read and the
/// write are prepared once per connection. The read stays a statement of
/// its own: what the page did (new, updated, unchanged) is compared in
/// Rust, one rule for both stores, and decides the page's `ends_tag`,
/// which the write stores. A failed check writes nothing and is then read
/// in detail.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_page(
    c: &mut Client,
    prepared: &Prepared,
    pass_id: i64,
    ctx: &PageContext,
    lease: Option<LeaseToken>,
    questions: &[Question],
    now: DateTime<Utc>,
    ends_tag: &(dyn Fn(&PageWrite) -> bool + Sync),
) -> Result<PageWrite, StoreError> {
    let mut tx = c.transaction()?;
    let sighting = Sighting::of_page(ctx);
    // A capture's questions were first seen when it was captured, as in an
    // import (they share its time).
    let now = SystemTime::from(match (sighting, questions.first()) {
        (Sighting::Past, Some(q)) => q.fetched_at,
        _ => now,
    });
    let page = PageDone {
        ctx,
        lease,
        now,
        questions: questions.len(),
        ends_tag,
    };
    let written = write_page(
        &mut tx,
        prepared,
        pass_id,
        questions,
        &now,
        sighting,
        Some(&page),
    )?;
    if let Some(refused) = written.refused {
        drop(tx);
        return Err(refusal(c, pass_id, ctx, refused)?);
    }
    tx.commit()?;
    Ok(written.write)
}

/// The page a write marks done, for [`write_page`].
pub(super) struct PageDone<'a> {
    ctx: &'a PageContext,
    lease: Option<LeaseToken>,
    now: SystemTime,
    /// The questions the page listed, repeats included.
    questions: usize,
    ends_tag: &'a (dyn Fn(&PageWrite) -> bool + Sync),
}

/// Why a page's write was refused, found by its statement's checks.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refused {
    /// The lease no longer has the writer's token.
    Fenced(LeaseToken),
    UnknownPass,
    PassFinished,
}

/// What [`write_page`] did.
pub(super) struct Written {
    pub(super) write: PageWrite,
    pub(super) added: Added,
    /// Set when a check failed and nothing was written.
    pub(super) refused: Option<Refused>,
}

/// The error of a refused write, read after its transaction rolled back.
/// The lease first: a holder that woke after the others finished the pass
/// lost its page to them, which says more than "pass finished".
fn refusal(
    c: &mut Client,
    pass_id: i64,
    ctx: &PageContext,
    refused: Refused,
) -> Result<StoreError, StoreError> {
    Ok(match refused {
        Refused::Fenced(stale) => StoreError::Fenced {
            tag: ctx.tag.clone(),
            tab: ctx.tab.clone(),
            page: ctx.page,
            stale,
            current: current_claim(c, pass_id, ctx)?,
        },
        Refused::UnknownPass => StoreError::UnknownPass(pass_id),
        Refused::PassFinished => StoreError::PassFinished(pass_id),
    })
}

/// The rows a page's write inserted (not updated), for `store_counts`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Added {
    pub(super) questions: u64,
    pub(super) snapshots: u64,
}

/// Who has a page whose writer's lease was taken over: done by, or held by.
fn current_claim(c: &mut Client, pass_id: i64, ctx: &PageContext) -> Result<Claim, StoreError> {
    let page = ctx.page as i32;
    let key: [&(dyn ToSql + Sync); 4] = [&pass_id, &ctx.tag, &ctx.tab, &page];
    let done = c.query_opt(
        "SELECT ends_tag, fetched_by FROM pass_pages
         WHERE pass_id = $1 AND tag = $2 AND tab = $3 AND page = $4",
        &key,
    )?;
    if let Some(r) = done {
        return Ok(Claim::Done {
            ends_tag: r.try_get(0)?,
            by: r.try_get(1)?,
        });
    }
    let held = c.query_opt(
        "SELECT holder, expires_at FROM page_leases
         WHERE pass_id = $1 AND tag = $2 AND tab = $3 AND page = $4",
        &key,
    )?;
    Ok(match held {
        Some(r) => Claim::Held {
            by: r.try_get(0)?,
            until: DateTime::<Utc>::from(r.try_get::<_, SystemTime>(1)?),
        },
        // Released by whoever had it: free to be claimed again now.
        None => Claim::Held {
            by: "nobody".into(),
            until: Utc::now(),
        },
    })
}

/// Deletes the page's lease if it still has `lease`: a later claim's lease
/// (the page taken over meanwhile) is not this process's to hand back.
/// The page is announced, so a process waiting on it takes it at once.
pub(super) fn release_page(
    c: &mut Client,
    pass_id: i64,
    ctx: &PageContext,
    lease: LeaseToken,
) -> Result<(), StoreError> {
    let sql = format!(
        "WITH gone AS (
             DELETE FROM page_leases
             WHERE pass_id = $1 AND tag = $2 AND tab = $3 AND page = $4 AND token = $5
             RETURNING holder)
         SELECT pg_notify($6, {}) FROM gone",
        announce::payload_sql("$1", "$2", "$3", "$4", "gone.holder")
    );
    c.execute(
        &sql,
        &[
            &pass_id,
            &ctx.tag,
            &ctx.tab,
            &(ctx.page as i32),
            &lease.0,
            &announce::CHANNEL,
        ],
    )?;
    Ok(())
}

/// Reads and locks what the store holds of a page's questions. Writers of
/// one question are serialised by a transaction-scoped advisory lock on
/// its key, taken here, before the write statement's snapshot: a question
/// new to both is then written by one and found by the other, whose write
/// sees the first one's rows (its snapshot of the pass among them). The
/// keys are locked in one order, so two writers cannot deadlock.
const READ_PAGE: &str = "
    WITH keys AS MATERIALIZED (
        SELECT pg_advisory_xact_lock(k.key)
        FROM (SELECT DISTINCT hashtextextended(u.site || ' ' || u.id, 0) AS key
              FROM unnest($1::text[], $2::bigint[]) AS u (site, id)
              ORDER BY 1) AS k
    )
    SELECT site, question_id, votes, answers, replies, views, title, status,
           has_accepted_answer, tags, fetched_at
    FROM questions
    WHERE (SELECT COUNT(*) FROM keys) >= 0
      AND (site, question_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))
    ORDER BY site, question_id FOR UPDATE";

/// The write of a page's questions: one statement of data-modifying CTEs.
/// With `page` (a pass's page), the statement first locks the page's
/// lease row and shares the pass's row (a pass cannot be finished under a
/// page being written to it), and every part writes only if the pass is
/// running and the lease still has the writer's token; then the lease
/// ends, the page is marked done and announced. Without it (an import),
/// the questions alone.
fn write_sql(sighting: Sighting, page: bool) -> String {
    let checks = if page {
        "lease AS MATERIALIZED (
             SELECT token FROM page_leases
             WHERE pass_id = $30 AND tag = $36 AND tab = $37 AND page = $38 FOR UPDATE),
         pass AS MATERIALIZED (SELECT finished_at FROM passes WHERE pass_id = $30 FOR SHARE),
         chk AS MATERIALIZED (
             SELECT ($39::bigint IS NULL OR EXISTS (SELECT 1 FROM lease WHERE token = $39))
                        AS holds,
                    EXISTS (SELECT 1 FROM pass) AS found,
                    EXISTS (SELECT 1 FROM pass WHERE finished_at IS NULL) AS running),
         ok AS MATERIALIZED (SELECT holds AND running AS ok FROM chk),"
    } else {
        "ok AS MATERIALIZED (SELECT TRUE AS ok),"
    };
    let only_if_newer = match sighting {
        Sighting::Live => "",
        Sighting::Past => ONLY_IF_NEWER,
    };
    // One snapshot per question per live pass (a page fetched again in a
    // resumed pass adds none; the advisory locks of `READ_PAGE` order two
    // writers of one question); one per capture time in an import.
    let one_per_pass = match sighting {
        Sighting::Live => {
            "AND NOT EXISTS (SELECT 1 FROM snapshots s
                             WHERE s.site = u.site AND s.question_id = u.id AND s.pass_id = $30)"
        }
        Sighting::Past => "",
    };
    let done = if page {
        "gone AS (
             DELETE FROM page_leases
             WHERE (SELECT ok FROM ok) AND pass_id = $30 AND tag = $36 AND tab = $37
               AND page = $38
             RETURNING holder),
         marked AS (
             INSERT INTO pass_pages
                 (pass_id, tag, tab, page, done_at, questions, new, updated, unchanged,
                  ends_tag, fetched_by)
             SELECT $30, $36, $37, $38, $40, $41, $42, $43, $44, $45,
                    (SELECT holder FROM gone)
             WHERE (SELECT ok FROM ok)
             ON CONFLICT DO NOTHING),"
    } else {
        ""
    };
    // The announcement is delivered when the transaction commits, and
    // never for one rolled back.
    let answer = if page {
        format!(
            "announced AS (SELECT pg_notify($46, {}) FROM ok WHERE ok)
             SELECT c.holds, c.found, c.running, a.questions, a.snapshots,
                    (SELECT COUNT(*) FROM announced)
             FROM chk c, added a",
            announce::payload_sql("$30", "$36", "$37", "$38", "(SELECT holder FROM gone)")
        )
    } else {
        "nothing AS (SELECT 1)
         SELECT TRUE, TRUE, TRUE, a.questions, a.snapshots, 0::bigint FROM added a"
            .to_string()
    };
    format!(
        "WITH {checks}
         up AS (
             INSERT INTO questions (
                 site, question_id, url, title, excerpt, votes, answers, replies, views,
                 views_exact, tags, has_accepted_answer, author_name, author_reputation,
                 asked_at, modified_at, answered_at, bounty, status, post_kind,
                 community_wiki, tag, tab, page, fetched_at,
                 author_user_id, author_has_profile, author_action,
                 first_seen_at, last_seen_at)
             SELECT u.*, $26, $26 FROM unnest(
                 $1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                 $7::bigint[], $8::bigint[], $9::bigint[], $10::boolean[], $11::text[],
                 $12::boolean[], $13::text[], $14::bigint[], $15::timestamptz[],
                 $16::timestamptz[], $17::timestamptz[], $18::bigint[], $19::text[],
                 $20::text[], $21::boolean[], $22::text[], $23::text[], $24::integer[],
                 $25::timestamptz[], $27::bigint[], $28::boolean[], $29::text[]) AS u
             WHERE (SELECT ok FROM ok)
             {upsert_set}{only_if_newer}
             RETURNING xmax = 0 AS inserted),
         crawl_tags AS (
             INSERT INTO question_crawl_tags (crawl_tag, site, question_id)
             SELECT * FROM unnest($22::text[], $1::text[], $2::bigint[])
             WHERE (SELECT ok FROM ok)
             ON CONFLICT DO NOTHING),
         -- Retags are rare: the side table changes only where the list did.
         untagged AS (
             DELETE FROM question_tags t
             USING unnest($31::text[], $32::bigint[]) AS r (site, id)
             WHERE (SELECT ok FROM ok) AND t.site = r.site AND t.question_id = r.id
               AND (t.site, t.question_id, t.tag) NOT IN
                   (SELECT * FROM unnest($33::text[], $34::bigint[], $35::text[]))),
         tagged AS (
             INSERT INTO question_tags (site, question_id, tag)
             SELECT * FROM unnest($33::text[], $34::bigint[], $35::text[])
             WHERE (SELECT ok FROM ok)
             ON CONFLICT DO NOTHING),
         -- When the figures were observed, not when they were stored.
         snap AS (
             INSERT INTO snapshots (site, question_id, pass_id, seen_at, votes, answers, views)
             SELECT u.site, u.id, $30, u.seen, u.votes, u.answers, u.views
             FROM unnest($1::text[], $2::bigint[], $25::timestamptz[], $6::bigint[],
                         $7::bigint[], $9::bigint[]) AS u (site, id, seen, votes, answers, views)
             WHERE (SELECT ok FROM ok) {one_per_pass}
             ON CONFLICT DO NOTHING
             RETURNING 1),
         -- `xmax = 0` marks a row the upsert inserted rather than updated:
         -- the count is the server's.
         added AS MATERIALIZED (
             SELECT (SELECT COUNT(*) FROM up WHERE inserted) AS questions,
                    (SELECT COUNT(*) FROM snap) AS snapshots),
         -- The shard's row stays locked only from here to the commit.
         counted AS (
             INSERT INTO store_counts (shard, questions, snapshots)
             SELECT pg_backend_pid() % 16, a.questions, a.snapshots FROM added a
             WHERE a.questions > 0 OR a.snapshots > 0
             ON CONFLICT (shard) DO UPDATE SET
                 questions = store_counts.questions + excluded.questions,
                 snapshots = store_counts.snapshots + excluded.snapshots),
         {done}
         {answer}",
        upsert_set = question_upsert_set!(),
    )
}

/// The page's questions, read and compared with what the store holds in
/// one statement ([`READ_PAGE`]) and written in another ([`write_sql`]),
/// each prepared once per connection: on a server across a network the
/// round trips, not the rows, are what a page costs.
pub(super) fn write_page(
    tx: &mut Transaction,
    prepared: &Prepared,
    pass_id: i64,
    questions: &[Question],
    now: &SystemTime,
    sighting: Sighting,
    done: Option<&PageDone>,
) -> Result<Written, StoreError> {
    let mut write = PageWrite::default();
    // A question listed twice on one page is written once; the second
    // sighting is what the sequential rule makes it: unchanged.
    let mut page: Vec<&Question> = Vec::with_capacity(questions.len());
    let mut seen = HashSet::new();
    for q in questions {
        if seen.insert((q.site.as_str(), q.question_id)) {
            page.push(q);
        } else {
            write.unchanged += 1;
        }
    }
    page.sort_by(|a, b| (&a.site, a.question_id).cmp(&(&b.site, b.question_id)));
    let sites: Vec<&str> = page.iter().map(|q| q.site.as_str()).collect();
    let ids: Vec<i64> = page.iter().map(|q| signed(q.question_id)).collect();
    let mut stored: HashMap<(String, i64), (Figures, String)> = HashMap::new();
    // Questions whose stored sighting is newer than this (past) one.
    let mut newer_stored: HashSet<(String, i64)> = HashSet::new();
    let seen_at: HashMap<(&str, i64), DateTime<Utc>> = page
        .iter()
        .map(|q| ((q.site.as_str(), signed(q.question_id)), q.fetched_at))
        .collect();
    let rows = match page.is_empty() {
        true => Vec::new(),
        false => {
            let read = prepared.get(tx, READ_PAGE)?;
            tx.query(&read, &[&sites, &ids])?
        }
    };
    for r in rows {
        let key: (String, i64) = (r.try_get(0)?, r.try_get(1)?);
        let fetched_at: DateTime<Utc> = r.try_get::<_, SystemTime>(10)?.into();
        if sighting == Sighting::Past
            && seen_at
                .get(&(key.0.as_str(), key.1))
                .is_some_and(|seen| fetched_at > *seen)
        {
            newer_stored.insert(key.clone());
        }
        stored.insert(
            key,
            (
                Figures {
                    votes: r.try_get(2)?,
                    answers: unsigned("questions.answers", r.try_get(3)?)?,
                    replies: r
                        .try_get::<_, Option<i64>>(4)?
                        .map(|v| unsigned("questions.replies", v))
                        .transpose()?,
                    views: unsigned("questions.views", r.try_get(5)?)?,
                    title: r.try_get(6)?,
                    status: r.try_get(7)?,
                    has_accepted_answer: r.try_get(8)?,
                },
                r.try_get(9)?,
            ),
        );
    }
    let mut statuses = Vec::with_capacity(page.len());
    let mut tag_lists = Vec::with_capacity(page.len());
    let mut post_kinds = Vec::with_capacity(page.len());
    let mut actions: Vec<Option<String>> = Vec::with_capacity(page.len());
    let (mut retag_sites, mut retag_ids, mut retag_tags) = (Vec::new(), Vec::new(), Vec::new());
    let (mut retagged_sites, mut retagged_ids): (Vec<&str>, Vec<i64>) = (Vec::new(), Vec::new());
    for (q, &id) in page.iter().zip(&ids) {
        let Compared {
            change,
            tags_changed,
            status,
            tags,
        } = compare(stored.remove(&(q.site.clone(), id)), q)?;
        write.count(&change);
        if tags_changed && !newer_stored.contains(&(q.site.clone(), id)) {
            retagged_sites.push(q.site.as_str());
            retagged_ids.push(id);
            for t in &q.tags {
                retag_sites.push(q.site.as_str());
                retag_ids.push(id);
                retag_tags.push(t.as_str());
            }
        }
        statuses.push(status);
        tag_lists.push(tags);
        post_kinds.push(enum_text(&q.post_kind)?);
        actions.push(q.author_action.as_ref().map(enum_text).transpose()?);
    }
    // A page recorded twice in a pass keeps its first counts.
    if let Some(d) = done {
        write.ends_tag = (d.ends_tag)(&write);
    }
    let col = |f: fn(&Question) -> Option<String>| -> Vec<Option<String>> {
        page.iter().map(|q| f(q)).collect()
    };
    let time_col = |f: fn(&Question) -> Option<DateTime<Utc>>| -> Vec<Option<SystemTime>> {
        page.iter().map(|q| f(q).map(SystemTime::from)).collect()
    };
    let fetched_at: Vec<SystemTime> = page.iter().map(|q| q.fetched_at.into()).collect();
    let urls: Vec<&str> = page.iter().map(|q| q.url.as_str()).collect();
    let titles: Vec<&str> = page.iter().map(|q| q.title.as_str()).collect();
    let excerpts: Vec<&str> = page.iter().map(|q| q.excerpt.as_str()).collect();
    let votes: Vec<i64> = page.iter().map(|q| q.votes).collect();
    let answers: Vec<i64> = page.iter().map(|q| signed(q.answers)).collect();
    let replies: Vec<Option<i64>> = page.iter().map(|q| q.replies.map(signed)).collect();
    let views: Vec<i64> = page.iter().map(|q| signed(q.views)).collect();
    let views_exact: Vec<bool> = page.iter().map(|q| q.views_exact).collect();
    let accepted: Vec<bool> = page.iter().map(|q| q.has_accepted_answer).collect();
    let author_names = col(|q| q.author_name.clone());
    let reputations: Vec<Option<i64>> = page
        .iter()
        .map(|q| q.author_reputation.map(signed))
        .collect();
    let asked = time_col(|q| q.asked_at);
    let modified = time_col(|q| q.modified_at);
    let answered = time_col(|q| q.answered_at);
    let bounties: Vec<Option<i64>> = page.iter().map(|q| q.bounty.map(i64::from)).collect();
    let wikis: Vec<bool> = page.iter().map(|q| q.community_wiki).collect();
    let crawl_tags: Vec<&str> = page.iter().map(|q| q.tag.as_str()).collect();
    let tabs: Vec<&str> = page.iter().map(|q| q.tab.as_str()).collect();
    let pages: Vec<i32> = page.iter().map(|q| q.page as i32).collect();
    let user_ids: Vec<Option<i64>> = page.iter().map(|q| q.author_user_id).collect();
    let profiles: Vec<bool> = page.iter().map(|q| q.author_has_profile).collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &sites,
        &ids,
        &urls,
        &titles,
        &excerpts,
        &votes,
        &answers,
        &replies,
        &views,
        &views_exact,
        &tag_lists,
        &accepted,
        &author_names,
        &reputations,
        &asked,
        &modified,
        &answered,
        &bounties,
        &statuses,
        &post_kinds,
        &wikis,
        &crawl_tags,
        &tabs,
        &pages,
        &fetched_at,
        now,
        &user_ids,
        &profiles,
        &actions,
        &pass_id,
        &retagged_sites,
        &retagged_ids,
        &retag_sites,
        &retag_ids,
        &retag_tags,
    ];
    let page_no: i32;
    let counts: [i32; 4];
    let token: Option<i64>;
    if let Some(d) = done {
        page_no = d.ctx.page as i32;
        counts = [
            d.questions as i32,
            write.new as i32,
            write.updated as i32,
            write.unchanged as i32,
        ];
        token = d.lease.map(|l| l.0);
        params.extend::<[&(dyn ToSql + Sync); 11]>([
            &d.ctx.tag,
            &d.ctx.tab,
            &page_no,
            &token,
            &d.now,
            &counts[0],
            &counts[1],
            &counts[2],
            &counts[3],
            &write.ends_tag,
            &announce::CHANNEL,
        ]);
    }
    let sql = write_sql(sighting, done.is_some());
    let statement = prepared.get(tx, &sql)?;
    let row = tx.query_one(&statement, &params)?;
    let (holds, found, running): (bool, bool, bool) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let refused = match (holds, found, running) {
        (false, ..) => Some(Refused::Fenced(
            done.and_then(|d| d.lease).unwrap_or(LeaseToken::UNFENCED),
        )),
        (true, false, _) => Some(Refused::UnknownPass),
        (true, true, false) => Some(Refused::PassFinished),
        (true, true, true) => None,
    };
    if refused.is_none() && sighting == Sighting::Past && !page.is_empty() {
        // A capture older than any sighting stored is the first sighting
        // (after the upsert: a statement updates a row once).
        tx.execute(
            "UPDATE questions q SET first_seen_at = u.seen
             FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS u (site, id, seen)
             WHERE q.site = u.site AND q.question_id = u.id AND q.first_seen_at > u.seen",
            &[&sites, &ids, &fetched_at],
        )?;
    }
    Ok(Written {
        write,
        added: Added {
            questions: unsigned("questions inserted", row.try_get(3)?)?,
            snapshots: unsigned("snapshots inserted", row.try_get(4)?)?,
        },
        refused,
    })
}

pub(super) fn finish_pass(
    c: &mut Client,
    pass_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let changed = c.execute(
        "UPDATE passes SET finished_at = $2 WHERE pass_id = $1 AND finished_at IS NULL",
        &[&pass_id, &SystemTime::from(now)],
    )?;
    if changed == 0 && !pass_exists(c, pass_id)? {
        return Err(StoreError::UnknownPass(pass_id));
    }
    Ok(())
}

pub(super) fn last_pages(
    c: &mut Client,
    tag_set: &str,
) -> Result<HashMap<(String, String), u32>, StoreError> {
    c.query(
        "SELECT pp.tag, pp.tab, MAX(pp.page) FROM pass_pages pp
         JOIN passes p ON p.pass_id = pp.pass_id
         WHERE p.tag_set = $1 AND p.finished_at IS NOT NULL
         GROUP BY pp.tag, pp.tab",
        &[&tag_set],
    )?
    .iter()
    .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), page(r.try_get(2)?)?)))
    .collect()
}

pub(super) fn previous_finished_pass(
    c: &mut Client,
    tag_set: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(c.query_opt(
        "SELECT pass_id FROM passes
         WHERE tag_set = $1 AND finished_at IS NOT NULL AND NOT imported
         ORDER BY finished_at DESC, pass_id DESC LIMIT 1",
        &[&tag_set],
    )?
    .map(|r| r.try_get(0))
    .transpose()?)
}

/// The latest pass's start, unless it is still running (a running pass is
/// joined at once).
pub(super) fn finished_pass_started(
    c: &mut Client,
    tag_set: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let row = c.query_opt(
        "SELECT started_at, finished_at IS NOT NULL FROM passes
         WHERE tag_set = $1 AND NOT imported ORDER BY pass_id DESC LIMIT 1",
        &[&tag_set],
    )?;
    let Some(row) = row else { return Ok(None) };
    if !row.try_get::<_, bool>(1)? {
        return Ok(None);
    }
    Ok(Some(row.try_get::<_, SystemTime>(0)?.into()))
}

pub(super) fn pass_totals(c: &mut Client, pass_id: i64) -> Result<PassTotals, StoreError> {
    if !pass_exists(c, pass_id)? {
        return Err(StoreError::UnknownPass(pass_id));
    }
    let r = c.query_one(
        "SELECT COUNT(*), COALESCE(SUM(questions), 0)::BIGINT, COALESCE(SUM(new), 0)::BIGINT,
                COALESCE(SUM(updated), 0)::BIGINT, COALESCE(SUM(unchanged), 0)::BIGINT
         FROM pass_pages WHERE pass_id = $1",
        &[&pass_id],
    )?;
    let n = |i: usize| -> Result<u64, StoreError> { unsigned("pass_pages", r.try_get(i)?) };
    Ok(PassTotals {
        pages: n(0)?,
        questions: n(1)?,
        new: n(2)?,
        updated: n(3)?,
        unchanged: n(4)?,
    })
}

fn pass_exists(c: &mut Client, pass_id: i64) -> Result<bool, StoreError> {
    Ok(
        c.query_opt("SELECT 1 FROM passes WHERE pass_id = $1", &[&pass_id])?
            .is_some(),
    )
}
