//! The PostgreSQL schema and its migrations: the SQLite schema's tables
//! and meaning, in PostgreSQL's types (BIGINT, BOOLEAN), step for step.
//!
//! The list mirrors `store::schema::MIGRATIONS`: step N here makes the
//! same change as step N there, so a new column is one more entry in each;
//! a step only PostgreSQL needs (step 5, lease tokens; step 6, kept
//! totals; step 7, timestamps) is appended here alone, so SQLite's step 5
//! (imports) is step 8 here.
//! Timestamps are `timestamptz` (step 7; RFC 3339 text before), compared
//! and ordered by the server as times; SQLite keeps its fixed-width text.
//! A budget's day stays text: it is a key (the UTC date), not a time.
//! `schema_migrations` records the steps applied (SQLite's `user_version`).

use postgres::Client;
use tracing::info;

use crate::store::StoreError;

/// Applied in order, never edited once released: append.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "
    CREATE TABLE passes (
        pass_id     BIGSERIAL PRIMARY KEY,
        tag_set     TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT
    );
    -- At most one running pass per tag set: resume, and a fleet sharing
    -- one pass, rely on it.
    CREATE UNIQUE INDEX passes_one_running ON passes (tag_set) WHERE finished_at IS NULL;
    CREATE INDEX passes_by_tag_set ON passes (tag_set, finished_at);

    CREATE TABLE pass_pages (
        pass_id   BIGINT NOT NULL REFERENCES passes (pass_id),
        tag       TEXT NOT NULL,
        tab       TEXT NOT NULL,
        page      INTEGER NOT NULL,
        done_at   TEXT NOT NULL,
        questions INTEGER NOT NULL,
        new       INTEGER NOT NULL,
        updated   INTEGER NOT NULL,
        unchanged INTEGER NOT NULL,
        PRIMARY KEY (pass_id, tag, tab, page)
    );

    CREATE TABLE questions (
        site                TEXT NOT NULL,
        question_id         BIGINT NOT NULL,
        url                 TEXT NOT NULL,
        title               TEXT NOT NULL,
        excerpt             TEXT NOT NULL,
        votes               BIGINT NOT NULL,
        answers             BIGINT NOT NULL,
        replies             BIGINT,
        views               BIGINT NOT NULL,
        views_exact         BOOLEAN NOT NULL,
        tags                TEXT NOT NULL,
        has_accepted_answer BOOLEAN NOT NULL,
        author_name         TEXT,
        author_reputation   BIGINT,
        asked_at            TEXT,
        modified_at         TEXT,
        answered_at         TEXT,
        bounty              BIGINT,
        status              TEXT NOT NULL,
        post_kind           TEXT NOT NULL,
        community_wiki      BOOLEAN NOT NULL,
        tag                 TEXT NOT NULL,
        tab                 TEXT NOT NULL,
        page                INTEGER NOT NULL,
        fetched_at          TEXT NOT NULL,
        first_seen_at       TEXT NOT NULL,
        last_seen_at        TEXT NOT NULL,
        PRIMARY KEY (site, question_id)
    );

    CREATE TABLE question_tags (
        site        TEXT NOT NULL,
        question_id BIGINT NOT NULL,
        tag         TEXT NOT NULL,
        PRIMARY KEY (site, question_id, tag),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    );

    CREATE TABLE question_crawl_tags (
        crawl_tag   TEXT NOT NULL,
        site        TEXT NOT NULL,
        question_id BIGINT NOT NULL,
        PRIMARY KEY (crawl_tag, site, question_id),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    );

    CREATE TABLE snapshots (
        site        TEXT NOT NULL,
        question_id BIGINT NOT NULL,
        pass_id     BIGINT NOT NULL REFERENCES passes (pass_id),
        seen_at     TEXT NOT NULL,
        votes       BIGINT NOT NULL,
        answers     BIGINT NOT NULL,
        views       BIGINT NOT NULL,
        PRIMARY KEY (site, question_id, pass_id),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    );
    ",
    // 2: where each tag's pass ended.
    "
    ALTER TABLE pass_pages ADD COLUMN ends_tag BOOLEAN NOT NULL DEFAULT FALSE;
    ",
    // 3: which process fetched each page, and the leases of the pages
    // being fetched (PostgreSQL only: a SQLite store has one writer). A
    // lease row lives from the claim to the page's write, which deletes it
    // in the same transaction as it marks the page done.
    "
    ALTER TABLE pass_pages ADD COLUMN fetched_by TEXT;
    CREATE TABLE page_leases (
        pass_id    BIGINT NOT NULL REFERENCES passes (pass_id),
        tag        TEXT NOT NULL,
        tab        TEXT NOT NULL,
        page       INTEGER NOT NULL,
        holder     TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (pass_id, tag, tab, page)
    );
    -- The daily budgets that belong to an API key rather than to a
    -- machine, and the pauses the API asked of that key: the budget file's
    -- two tables, for every process of the fleet at once.
    CREATE TABLE budget_requests (
        budget TEXT NOT NULL,
        day    TEXT NOT NULL,
        used   BIGINT NOT NULL,
        PRIMARY KEY (budget, day)
    );
    CREATE TABLE budget_pauses (
        budget TEXT PRIMARY KEY,
        until  TEXT NOT NULL
    );
    -- One GCRA cell per per-second quota that processes behind one egress
    -- IP share: the theoretical arrival time of the next request.
    CREATE TABLE rate_cells (
        name TEXT PRIMARY KEY,
        tat  TIMESTAMPTZ NOT NULL
    );
    ",
    // 4: authors as displayed: the profile a name links to, whether it
    // links at all, and what the named user did (asked, answered,
    // modified). Rows stored before keep NULL / FALSE until seen again.
    "
    ALTER TABLE questions ADD COLUMN author_user_id BIGINT;
    ALTER TABLE questions ADD COLUMN author_has_profile BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE questions ADD COLUMN author_action TEXT;
    ",
    // 5 (PostgreSQL only, like the leases): each lease's fencing token.
    // One sequence for every page, so a token is never handed out twice,
    // even to a page whose lease row was deleted (written, released) and
    // claimed anew; a lease row already there gets one of its own.
    "
    CREATE SEQUENCE page_lease_tokens;
    ALTER TABLE page_leases
        ADD COLUMN token BIGINT NOT NULL DEFAULT nextval('page_lease_tokens');
    ",
    // 6 (PostgreSQL only): the status line's totals, kept by the page
    // writes, so that every process of a fleet can show them at every
    // status interval without counting millions of snapshots. A page's
    // write adds what it inserted to the row of its connection's shard
    // (backend pid mod 16) in its own transaction: exact, and a fleet's
    // writers seldom wait on one another's row. Seeded with the counts of
    // the rows already there.
    "
    CREATE TABLE store_counts (
        shard     INTEGER PRIMARY KEY,
        questions BIGINT NOT NULL,
        snapshots BIGINT NOT NULL
    );
    INSERT INTO store_counts (shard, questions, snapshots)
    SELECT 0, (SELECT COUNT(*) FROM questions), (SELECT COUNT(*) FROM snapshots);
    ",
    // 7 (PostgreSQL only): times as `timestamptz`, so that the database
    // compares and orders them as times (a lease's expiry against a page's
    // write, a pass's start) rather than as text. The stored RFC 3339 text
    // converts in place; timestamptz keeps microseconds, so the SQLite
    // store's nanoseconds lose their last three digits. A process of an
    // older stackcrawl still running binds text to these columns and its
    // writes fail (it stops, nothing is written wrong); one started later
    // refuses the newer schema.
    "
    ALTER TABLE passes
        ALTER COLUMN started_at TYPE TIMESTAMPTZ USING started_at::timestamptz,
        ALTER COLUMN finished_at TYPE TIMESTAMPTZ USING finished_at::timestamptz;
    ALTER TABLE pass_pages
        ALTER COLUMN done_at TYPE TIMESTAMPTZ USING done_at::timestamptz;
    ALTER TABLE questions
        ALTER COLUMN asked_at TYPE TIMESTAMPTZ USING asked_at::timestamptz,
        ALTER COLUMN modified_at TYPE TIMESTAMPTZ USING modified_at::timestamptz,
        ALTER COLUMN answered_at TYPE TIMESTAMPTZ USING answered_at::timestamptz,
        ALTER COLUMN fetched_at TYPE TIMESTAMPTZ USING fetched_at::timestamptz,
        ALTER COLUMN first_seen_at TYPE TIMESTAMPTZ USING first_seen_at::timestamptz,
        ALTER COLUMN last_seen_at TYPE TIMESTAMPTZ USING last_seen_at::timestamptz;
    ALTER TABLE snapshots
        ALTER COLUMN seen_at TYPE TIMESTAMPTZ USING seen_at::timestamptz;
    ALTER TABLE budget_pauses
        ALTER COLUMN until TYPE TIMESTAMPTZ USING until::timestamptz;
    ",
    // 8: SQLite's step 5, imports: passes marked `imported`, each capture
    // keyed by (site, URL, capture time), and a snapshot per capture time
    // of a question in an import's one pass.
    "
    ALTER TABLE passes ADD COLUMN IF NOT EXISTS imported BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE TABLE IF NOT EXISTS captures (
        site        TEXT NOT NULL,
        url         TEXT NOT NULL,
        captured_at TIMESTAMPTZ NOT NULL,
        pass_id     BIGINT NOT NULL REFERENCES passes (pass_id),
        tag         TEXT NOT NULL,
        tab         TEXT NOT NULL,
        page        INTEGER NOT NULL,
        questions   INTEGER NOT NULL,
        PRIMARY KEY (site, url, captured_at)
    );
    ALTER TABLE snapshots DROP CONSTRAINT IF EXISTS snapshots_pkey;
    ALTER TABLE snapshots ADD PRIMARY KEY (site, question_id, pass_id, seen_at);
    ",
];

/// Any constant the fleet agrees on: the advisory lock that lets one
/// process at a time migrate a database several are opening.
pub(super) const MIGRATION_LOCK: i64 = 0x5374_6b43_7261_776c;

/// Brings the database up to the last migration, one process at a time; a
/// database from a newer stackcrawl is refused, not touched.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    migrate_to(client, MIGRATIONS.len())
}

/// [`migrate`], up to step `last` (a test builds an older store with it).
pub(super) fn migrate_to(client: &mut Client, last: usize) -> Result<(), StoreError> {
    let supported = last.min(MIGRATIONS.len()) as i64;
    // A current schema needs no lock: every process of a fleet opens the
    // store (and its key budget) at each start, all at once, and would
    // otherwise queue on the lock one after the other. Steps are only
    // ever added, so a schema at `supported` stays there.
    if applied(client)? == Some(supported) {
        return Ok(());
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    // Asked first, not left to IF NOT EXISTS: on every open after the
    // first, that makes the server send a NOTICE ("already exists,
    // skipping"), which the client logs. The advisory lock above keeps
    // the two steps from racing another process.
    let exists: bool = tx
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )?;
    }
    let found: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    if found > supported {
        return Err(StoreError::Schema { found, supported });
    }
    if found == supported {
        tx.commit()?;
        return Ok(());
    }
    for (i, sql) in MIGRATIONS[..supported as usize]
        .iter()
        .enumerate()
        .skip(found.max(0) as usize)
    {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )?;
    }
    tx.commit()?;
    info!(from = found, to = supported, "store schema migrated");
    Ok(())
}

/// The last step applied, without a lock; `None` on a database that has
/// no `schema_migrations` table yet.
fn applied(client: &mut Client) -> Result<Option<i64>, StoreError> {
    match client.query_one(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        &[],
    ) {
        Ok(row) => Ok(Some(row.try_get(0)?)),
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
