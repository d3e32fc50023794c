//! The SQLite schema and its migrations.
//!
//! Kept apart from the reads and writes because it changes by a different
//! rule: a released migration is never edited, only appended to, since
//! `PRAGMA user_version` records how many a file has had. Everything else in
//! the store may be rewritten freely as long as it speaks this schema.

use rusqlite::{Connection, TransactionBehavior};
use tracing::info;

use super::StoreError;

/// Schema migrations, applied in order. `PRAGMA user_version` is the number
/// applied so far, so a migration is never edited once released: append.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "
    CREATE TABLE passes (
        pass_id     INTEGER PRIMARY KEY,
        tag_set     TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT
    );
    -- At most one running pass per tag set: resume relies on it.
    CREATE UNIQUE INDEX passes_one_running ON passes (tag_set) WHERE finished_at IS NULL;
    CREATE INDEX passes_by_tag_set ON passes (tag_set, finished_at);

    CREATE TABLE pass_pages (
        pass_id   INTEGER NOT NULL REFERENCES passes (pass_id),
        tag       TEXT NOT NULL,
        tab       TEXT NOT NULL,
        page      INTEGER NOT NULL,
        done_at   TEXT NOT NULL,
        questions INTEGER NOT NULL,
        new       INTEGER NOT NULL,
        updated   INTEGER NOT NULL,
        unchanged INTEGER NOT NULL,
        PRIMARY KEY (pass_id, tag, tab, page)
    ) WITHOUT ROWID;

    CREATE TABLE questions (
        site                TEXT NOT NULL,
        question_id         INTEGER NOT NULL,
        url                 TEXT NOT NULL,
        title               TEXT NOT NULL,
        excerpt             TEXT NOT NULL,
        votes               INTEGER NOT NULL,
        answers             INTEGER NOT NULL,
        replies             INTEGER,
        views               INTEGER NOT NULL,
        views_exact         INTEGER NOT NULL,
        tags                TEXT NOT NULL,
        has_accepted_answer INTEGER NOT NULL,
        author_name         TEXT,
        author_reputation   INTEGER,
        asked_at            TEXT,
        modified_at         TEXT,
        answered_at         TEXT,
        bounty              INTEGER,
        status              TEXT NOT NULL,
        post_kind           TEXT NOT NULL,
        community_wiki      INTEGER NOT NULL,
        tag                 TEXT NOT NULL,
        tab                 TEXT NOT NULL,
        page                INTEGER NOT NULL,
        fetched_at          TEXT NOT NULL,
        first_seen_at       TEXT NOT NULL,
        last_seen_at        TEXT NOT NULL,
        PRIMARY KEY (site, question_id)
    );

    -- The question's own tags, for co-occurrence queries; `questions.tags`
    -- keeps them as listed (a JSON array) for export.
    CREATE TABLE question_tags (
        site        TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        tag         TEXT NOT NULL,
        PRIMARY KEY (site, question_id, tag),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    ) WITHOUT ROWID;

    -- Every crawl tag whose listing showed the question. Reports group by
    -- it rather than by question_tags because a listing can show questions
    -- not carrying its tag by name (tag synonyms), and rather than by
    -- questions.tag because that keeps only the latest sighting.
    CREATE TABLE question_crawl_tags (
        crawl_tag   TEXT NOT NULL,
        site        TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        PRIMARY KEY (crawl_tag, site, question_id),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    ) WITHOUT ROWID;

    CREATE TABLE snapshots (
        site        TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        pass_id     INTEGER NOT NULL REFERENCES passes (pass_id),
        seen_at     TEXT NOT NULL,
        votes       INTEGER NOT NULL,
        answers     INTEGER NOT NULL,
        views       INTEGER NOT NULL,
        -- One snapshot per question per pass, so a resumed pass never
        -- duplicates one.
        PRIMARY KEY (site, question_id, pass_id),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    ) WITHOUT ROWID;
    ",
    // 2: where each tag's pass ended, so a pass resumed after a crash does
    // not fetch pages past the end its first run found.
    "
    ALTER TABLE pass_pages ADD COLUMN ends_tag INTEGER NOT NULL DEFAULT 0;
    ",
    // 3: which process fetched each page (a fleet shares a PostgreSQL
    // store; a SQLite store has one writer and leaves it NULL).
    "
    ALTER TABLE pass_pages ADD COLUMN fetched_by TEXT;
    ",
    // 4: authors as displayed: the profile a name links to, whether it
    // links at all, and what the named user did (asked, answered,
    // modified). Rows stored before keep NULL / 0 until seen again.
    "
    ALTER TABLE questions ADD COLUMN author_user_id INTEGER;
    ALTER TABLE questions ADD COLUMN author_has_profile INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE questions ADD COLUMN author_action TEXT;
    ",
    // 5: imports (`parse --store`): listing pages captured in the past
    // (web archives) as passes marked `imported`, each capture keyed by
    // (site, URL, capture time) so importing it again adds nothing. An
    // import holds captures of years, so a question may have a snapshot
    // per capture time in one pass: the snapshot key gains `seen_at` (a
    // live pass still writes one per question, see `writes`). SQLite
    // cannot change a key in place: the table is copied.
    "
    ALTER TABLE passes ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE captures (
        site        TEXT NOT NULL,
        url         TEXT NOT NULL,
        captured_at TEXT NOT NULL,
        pass_id     INTEGER NOT NULL REFERENCES passes (pass_id),
        tag         TEXT NOT NULL,
        tab         TEXT NOT NULL,
        page        INTEGER NOT NULL,
        questions   INTEGER NOT NULL,
        PRIMARY KEY (site, url, captured_at)
    ) WITHOUT ROWID;
    CREATE TABLE snapshots_by_time (
        site        TEXT NOT NULL,
        question_id INTEGER NOT NULL,
        pass_id     INTEGER NOT NULL REFERENCES passes (pass_id),
        seen_at     TEXT NOT NULL,
        votes       INTEGER NOT NULL,
        answers     INTEGER NOT NULL,
        views       INTEGER NOT NULL,
        PRIMARY KEY (site, question_id, pass_id, seen_at),
        FOREIGN KEY (site, question_id) REFERENCES questions (site, question_id)
    ) WITHOUT ROWID;
    INSERT INTO snapshots_by_time
        SELECT site, question_id, pass_id, seen_at, votes, answers, views FROM snapshots;
    DROP TABLE snapshots;
    ALTER TABLE snapshots_by_time RENAME TO snapshots;
    ",
];

/// Brings the schema of `conn` up to the last migration. A file from a newer
/// stackcrawl (more migrations than this one knows) is refused, not touched.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    // IMMEDIATE takes the write lock before reading the version, so two
    // processes opening a new file cannot both apply a migration.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > supported {
        return Err(StoreError::Schema { found, supported });
    }
    if found == supported {
        return Ok(());
    }
    for sql in MIGRATIONS.iter().skip(found.max(0) as usize) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", supported)?;
    tx.commit()?;
    info!(from = found, to = supported, "store schema migrated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    use super::*;
    use crate::store::fixtures::*;

    #[test]
    fn reopening_a_file_keeps_everything_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        {
            let mut s = Store::open(&path).unwrap();
            let mode: String = s
                .conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
            s.record_page(
                p,
                &ctx("rust", 1),
                &[q(1, "rust", &["rust"], 0, 0, 1)],
                at(1),
            )
            .unwrap();
        }
        for _ in 0..2 {
            let mut s = Store::open(&path).unwrap();
            assert_eq!(count(&s, "PRAGMA user_version"), MIGRATIONS.len() as i64);
            let st = s.stats().unwrap();
            assert_eq!((st.questions, st.snapshots, st.passes), (1, 1, 1));
            assert!(st.size_bytes > 0);
            assert!(s.begin_pass("langs", at(2)).unwrap().resumed);
            s.checkpoint().unwrap();
        }
    }

    /// A store written before the author columns (schema 2) opens, gains
    /// them empty, and exports its rows; a row seen again fills them.
    #[test]
    fn a_schema_2_store_gains_the_author_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute_batch(
                "INSERT INTO questions VALUES ('stackoverflow.com', 5, 'u', 't', '', 1, 0, NULL,
                 10, 1, '[\"rust\"]', 0, 'old', 3, NULL, NULL, NULL, NULL, 'open', 'question',
                 0, 'rust', 'newest', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z',
                 '2026-01-01T00:00:00Z');",
            )
            .unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        assert_eq!(count(&s, "PRAGMA user_version"), MIGRATIONS.len() as i64);
        let mut out = Vec::new();
        s.export(&mut out, crate::store::ExportFormat::Jsonl, false)
            .unwrap();
        let old: crate::model::Question = serde_json::from_slice(&out).unwrap();
        assert_eq!(old.author_name.as_deref(), Some("old"));
        assert_eq!(
            (
                old.author_user_id,
                old.author_has_profile,
                old.author_action
            ),
            (None, false, None)
        );
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        s.record_page(
            p,
            &ctx("rust", 1),
            &[q(5, "rust", &["rust"], 1, 0, 10)],
            at(1),
        )
        .unwrap();
        let mut out = Vec::new();
        s.export(&mut out, crate::store::ExportFormat::Jsonl, false)
            .unwrap();
        let seen: crate::model::Question = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (
                seen.author_user_id,
                seen.author_has_profile,
                seen.author_action
            ),
            (Some(1066), true, Some(crate::model::AuthorAction::Asked))
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        match Store::open(&path) {
            Err(StoreError::File { path: p, source }) => {
                assert_eq!(p, path);
                match *source {
                    StoreError::Schema { found, supported } => {
                        assert_eq!((found, supported), (99, MIGRATIONS.len() as i64))
                    }
                    e => panic!("wrong error: {e}"),
                }
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a newer schema was opened"),
        }
    }
}
