//! Writing passes on PostgreSQL: the SQLite store's `writes`, statement
//! for statement, made safe for several processes writing at once.
//!
//! What several writers change: a pass is opened by one insert that the
//! `passes_one_running` index lets only one process win (the others find
//! its pass); a page's questions are written in (site, id) order so two
//! pages sharing questions lock them in the same order; and the "changed?"
//! read takes the row's lock, so two processes seeing one question at once
//! count it new once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use postgres::types::ToSql;
use postgres::{Client, Statement, Transaction};

use super::{signed, unsigned};
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
        None => PassStart {
            pass_id: tx
                .query_one(
                    "SELECT pass_id FROM passes
                     WHERE tag_set = $1 AND finished_at IS NULL AND NOT imported",
                    &[&tag_set],
                )?
                .try_get(0)?,
            resumed: true,
        },
    };
    tx.commit()?;
    Ok(start)
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
    rows.iter().map(|r| claim_of_row(r, worker)).collect()
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
pub(super) fn record_page(
    c: &mut Client,
    pass_id: i64,
    ctx: &PageContext,
    lease: Option<LeaseToken>,
    questions: &[Question],
    now: DateTime<Utc>,
    ends_tag: &(dyn Fn(&PageWrite) -> bool + Sync),
) -> Result<PageWrite, StoreError> {
    let mut tx = c.transaction()?;
    // The lease first: a holder that woke after the others finished the
    // pass lost its page to them, which says more than "pass finished".
    // (Lease row, then pass row: no other transaction locks them in the
    // other order.)
    if let Some(lease) = lease {
        check_lease(&mut tx, pass_id, ctx, lease)?;
    }
    check_running(&mut tx, pass_id)?;
    let sighting = Sighting::of_page(ctx);
    // A capture's questions were first seen when it was captured, as in an
    // import (they share its time).
    let now = SystemTime::from(match (sighting, questions.first()) {
        (Sighting::Past, Some(q)) => q.fetched_at,
        _ => now,
    });
    let (mut write, added) = upsert_page(&mut tx, pass_id, questions, &now, sighting)?;
    // A page recorded twice in a pass keeps its first counts.
    write.ends_tag = ends_tag(&write);
    // The lease ends with the write that marks the page done, in its
    // transaction: a page whose records did not commit stays leased, and
    // another process takes it over when the lease expires.
    let fetched_by: Option<String> = tx
        .query_opt(
            "DELETE FROM page_leases
             WHERE pass_id = $1 AND tag = $2 AND tab = $3 AND page = $4
             RETURNING holder",
            &[&pass_id, &ctx.tag, &ctx.tab, &(ctx.page as i32)],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    tx.execute(
        "INSERT INTO pass_pages
         (pass_id, tag, tab, page, done_at, questions, new, updated, unchanged, ends_tag,
          fetched_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT DO NOTHING",
        &[
            &pass_id,
            &ctx.tag,
            &ctx.tab,
            &(ctx.page as i32),
            &now,
            &(questions.len() as i32),
            &(write.new as i32),
            &(write.updated as i32),
            &(write.unchanged as i32),
            &write.ends_tag,
            &fetched_by,
        ],
    )?;
    // Last: the shard's row stays locked only from here to the commit.
    add_counts(&mut tx, &added)?;
    tx.commit()?;
    Ok(write)
}

/// The rows a page's write inserted (not updated), for `store_counts`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Added {
    pub(super) questions: u64,
    pub(super) snapshots: u64,
}

/// Adds what a write inserted to the kept totals, in its transaction.
pub(super) fn add_counts(tx: &mut Transaction, added: &Added) -> Result<(), StoreError> {
    if *added != Added::default() {
        tx.execute(
            "INSERT INTO store_counts (shard, questions, snapshots)
             VALUES (pg_backend_pid() % 16, $1, $2)
             ON CONFLICT (shard) DO UPDATE SET
                 questions = store_counts.questions + excluded.questions,
                 snapshots = store_counts.snapshots + excluded.snapshots",
            &[&signed(added.questions), &signed(added.snapshots)],
        )?;
    }
    Ok(())
}

/// Locks the page's lease row until the write commits (a takeover waits
/// for it, and then finds the page done) and fails with
/// [`StoreError::Fenced`] unless the row still has `lease`. An expired
/// lease nobody took over is still the writer's: only a new claim fences.
fn check_lease(
    tx: &mut Transaction,
    pass_id: i64,
    ctx: &PageContext,
    lease: LeaseToken,
) -> Result<(), StoreError> {
    let page = ctx.page as i32;
    let key: [&(dyn ToSql + Sync); 4] = [&pass_id, &ctx.tag, &ctx.tab, &page];
    let row = tx.query_opt(
        "SELECT token, holder, expires_at FROM page_leases
         WHERE pass_id = $1 AND tag = $2 AND tab = $3 AND page = $4
         FOR UPDATE",
        &key,
    )?;
    let held = match row {
        Some(r) if r.try_get::<_, i64>(0)? == lease.0 => return Ok(()),
        Some(r) => Some((
            r.try_get::<_, String>(1)?,
            DateTime::<Utc>::from(r.try_get::<_, SystemTime>(2)?),
        )),
        None => None,
    };
    let done = tx.query_opt(
        "SELECT ends_tag, fetched_by FROM pass_pages
         WHERE pass_id = $1 AND tag = $2 AND tab = $3 AND page = $4",
        &key,
    )?;
    let current = match (done, held) {
        (Some(r), _) => Claim::Done {
            ends_tag: r.try_get(0)?,
            by: r.try_get(1)?,
        },
        (None, Some((by, until))) => Claim::Held { by, until },
        // Released by whoever had it: free to be claimed again now.
        (None, None) => Claim::Held {
            by: "nobody".into(),
            until: Utc::now(),
        },
    };
    Err(StoreError::Fenced {
        tag: ctx.tag.clone(),
        tab: ctx.tab.clone(),
        page: ctx.page,
        stale: lease,
        current,
    })
}

/// Deletes the page's lease if it still has `lease`: a later claim's lease
/// (the page taken over meanwhile) is not this process's to hand back.
pub(super) fn release_page(
    c: &mut Client,
    pass_id: i64,
    ctx: &PageContext,
    lease: LeaseToken,
) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM page_leases
         WHERE pass_id = $1 AND tag = $2 AND tab = $3 AND page = $4 AND token = $5",
        &[&pass_id, &ctx.tag, &ctx.tab, &(ctx.page as i32), &lease.0],
    )?;
    Ok(())
}

/// Takes a share lock on the pass row: a pass cannot be finished under a
/// page being written to it.
fn check_running(tx: &mut Transaction, pass_id: i64) -> Result<(), StoreError> {
    let row = tx.query_opt(
        "SELECT finished_at FROM passes WHERE pass_id = $1 FOR SHARE",
        &[&pass_id],
    )?;
    match row
        .map(|r| r.try_get::<_, Option<SystemTime>>(0))
        .transpose()?
    {
        None => Err(StoreError::UnknownPass(pass_id)),
        Some(Some(_)) => Err(StoreError::PassFinished(pass_id)),
        Some(None) => Ok(()),
    }
}

/// The page's questions, written in a few set-based statements (arrays
/// `unnest`ed server-side) rather than several round trips per question:
/// on a server across a network the round trips, not the rows, are what
/// a page costs. The rows are locked in (site, id) order, so two processes
/// writing pages that share questions cannot deadlock.
pub(super) fn upsert_page(
    tx: &mut Transaction,
    pass_id: i64,
    questions: &[Question],
    now: &SystemTime,
    sighting: Sighting,
) -> Result<(PageWrite, Added), StoreError> {
    let mut write = PageWrite::default();
    let mut added = Added::default();
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
    if page.is_empty() {
        return Ok((write, added));
    }
    let sites: Vec<&str> = page.iter().map(|q| q.site.as_str()).collect();
    let ids: Vec<i64> = page.iter().map(|q| signed(q.question_id)).collect();
    let mut stored: HashMap<(String, i64), (Figures, String)> = HashMap::new();
    // Questions whose stored sighting is newer than this (past) one.
    let mut newer_stored: HashSet<(String, i64)> = HashSet::new();
    let seen_at: HashMap<(&str, i64), DateTime<Utc>> = page
        .iter()
        .map(|q| ((q.site.as_str(), signed(q.question_id)), q.fetched_at))
        .collect();
    for r in tx.query(
        "SELECT site, question_id, votes, answers, replies, views, title, status,
                has_accepted_answer, tags, fetched_at
         FROM questions
         WHERE (site, question_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))
         ORDER BY site, question_id FOR UPDATE",
        &[&sites, &ids],
    )? {
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
    let mut retagged: Vec<(&str, i64)> = Vec::new();
    for (q, &id) in page.iter().zip(&ids) {
        let Compared {
            change,
            tags_changed,
            status,
            tags,
        } = compare(stored.remove(&(q.site.clone(), id)), q)?;
        write.count(&change);
        if tags_changed && !newer_stored.contains(&(q.site.clone(), id)) {
            retagged.push((q.site.as_str(), id));
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
    let col = |f: fn(&Question) -> Option<String>| -> Vec<Option<String>> {
        page.iter().map(|q| f(q)).collect()
    };
    let time_col = |f: fn(&Question) -> Option<DateTime<Utc>>| -> Vec<Option<SystemTime>> {
        page.iter().map(|q| f(q).map(SystemTime::from)).collect()
    };
    let fetched_at: Vec<SystemTime> = page.iter().map(|q| q.fetched_at.into()).collect();
    // `xmax = 0` marks a row the upsert inserted rather than updated: the
    // count is the server's, exact even when another process inserted one
    // of these questions after the read above.
    let upsert = concat!(
        "WITH upsert AS (INSERT INTO questions (
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
             $16::timestamptz[], $17::timestamptz[], $18::bigint[], $19::text[], $20::text[],
             $21::boolean[], $22::text[], $23::text[], $24::integer[], $25::timestamptz[],
             $27::bigint[], $28::boolean[], $29::text[]) AS u ",
        question_upsert_set!()
    );
    let only_if_newer = match sighting {
        Sighting::Live => "",
        Sighting::Past => ONLY_IF_NEWER,
    };
    let inserted: i64 = tx
        .query_one(
            &format!(
                "{upsert}{only_if_newer} RETURNING xmax = 0 AS inserted)
                 SELECT COUNT(*) FILTER (WHERE inserted) FROM upsert"
            ),
            &[
                &sites,
                &ids,
                &page.iter().map(|q| q.url.as_str()).collect::<Vec<_>>(),
                &page.iter().map(|q| q.title.as_str()).collect::<Vec<_>>(),
                &page.iter().map(|q| q.excerpt.as_str()).collect::<Vec<_>>(),
                &page.iter().map(|q| q.votes).collect::<Vec<_>>(),
                &page.iter().map(|q| signed(q.answers)).collect::<Vec<_>>(),
                &page
                    .iter()
                    .map(|q| q.replies.map(signed))
                    .collect::<Vec<_>>(),
                &page.iter().map(|q| signed(q.views)).collect::<Vec<_>>(),
                &page.iter().map(|q| q.views_exact).collect::<Vec<_>>(),
                &tag_lists,
                &page
                    .iter()
                    .map(|q| q.has_accepted_answer)
                    .collect::<Vec<_>>(),
                &col(|q| q.author_name.clone()),
                &page
                    .iter()
                    .map(|q| q.author_reputation.map(signed))
                    .collect::<Vec<_>>(),
                &time_col(|q| q.asked_at),
                &time_col(|q| q.modified_at),
                &time_col(|q| q.answered_at),
                &page
                    .iter()
                    .map(|q| q.bounty.map(i64::from))
                    .collect::<Vec<_>>(),
                &statuses,
                &post_kinds,
                &page.iter().map(|q| q.community_wiki).collect::<Vec<_>>(),
                &page.iter().map(|q| q.tag.as_str()).collect::<Vec<_>>(),
                &page.iter().map(|q| q.tab.as_str()).collect::<Vec<_>>(),
                &page.iter().map(|q| q.page as i32).collect::<Vec<_>>(),
                &fetched_at,
                now,
                &page.iter().map(|q| q.author_user_id).collect::<Vec<_>>(),
                &page
                    .iter()
                    .map(|q| q.author_has_profile)
                    .collect::<Vec<_>>(),
                &actions,
            ],
        )?
        .try_get(0)?;
    added.questions = unsigned("questions inserted", inserted)?;
    // Retags are rare: the side table is rewritten only where the list changed.
    if !retagged.is_empty() {
        let (s, i): (Vec<&str>, Vec<i64>) = retagged.into_iter().unzip();
        tx.execute(
            "DELETE FROM question_tags
             WHERE (site, question_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))",
            &[&s, &i],
        )?;
        tx.execute(
            "INSERT INTO question_tags (site, question_id, tag)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])
             ON CONFLICT DO NOTHING",
            &[&retag_sites, &retag_ids, &retag_tags],
        )?;
    }
    tx.execute(
        "INSERT INTO question_crawl_tags (crawl_tag, site, question_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
         ON CONFLICT DO NOTHING",
        &[
            &page.iter().map(|q| q.tag.as_str()).collect::<Vec<_>>(),
            &sites,
            &ids,
        ],
    )?;
    if sighting == Sighting::Past {
        // A capture older than any sighting stored is the first sighting.
        tx.execute(
            "UPDATE questions q SET first_seen_at = u.seen
             FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS u (site, id, seen)
             WHERE q.site = u.site AND q.question_id = u.id AND q.first_seen_at > u.seen",
            &[&sites, &ids, &fetched_at],
        )?;
    }
    // One snapshot per question per live pass (a page fetched again in a
    // resumed pass adds none; the question rows locked above order two
    // writers of one question); one per capture time in an import.
    let one_per_pass = match sighting {
        Sighting::Live => {
            "WHERE NOT EXISTS (SELECT 1 FROM snapshots s
                               WHERE s.site = u.site AND s.question_id = u.id AND s.pass_id = $3)"
        }
        Sighting::Past => "",
    };
    added.snapshots = tx.execute(
        // When the figures were observed, not when they were stored.
        &format!(
            "INSERT INTO snapshots (site, question_id, pass_id, seen_at, votes, answers, views)
             SELECT u.site, u.id, $3, u.seen, u.votes, u.answers, u.views
             FROM unnest($1::text[], $2::bigint[], $4::timestamptz[], $5::bigint[], $6::bigint[],
                         $7::bigint[]) AS u (site, id, seen, votes, answers, views)
             {one_per_pass}
             ON CONFLICT DO NOTHING"
        ),
        &[
            &sites,
            &ids,
            &pass_id,
            &fetched_at,
            &page.iter().map(|q| q.votes).collect::<Vec<_>>(),
            &page.iter().map(|q| signed(q.answers)).collect::<Vec<_>>(),
            &page.iter().map(|q| signed(q.views)).collect::<Vec<_>>(),
        ],
    )?;
    Ok((write, added))
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
