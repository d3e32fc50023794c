//! Imports on PostgreSQL: the SQLite store's `import`, statement for
//! statement, safe for two imports (or an import and a fleet) at once: the
//! capture's key decides, in the transaction, which import writes it.

use postgres::Client;

use super::writes::write_page;
use super::Prepared;
use crate::store::writes::Sighting;
use std::time::SystemTime;

use crate::store::{Capture, CaptureWrite, Import, StoreError};

/// Writes one capture in one transaction; also the import's pass, which
/// the caller keeps only once this returns (a call replayed after a lost
/// connection starts again from the pass it had).
pub(super) fn import_capture(
    c: &mut Client,
    prepared: &Prepared,
    import: &Import,
    capture: &Capture,
) -> Result<(CaptureWrite, Option<i64>), StoreError> {
    let mut tx = c.transaction()?;
    let at = SystemTime::from(capture.captured_at);
    let ctx = capture.ctx;
    // A capture already stored touches no pass (no lock on its row, no
    // pass id drawn and rolled back); the insert below still decides a race.
    let stored = tx
        .query_opt(
            "SELECT 1 FROM captures WHERE site = $1 AND url = $2 AND captured_at = $3",
            &[&ctx.site, &capture.url, &at],
        )?
        .is_some();
    if stored {
        return Ok((CaptureWrite::default(), import.pass_id));
    }
    let pass_id: i64 = match import.pass_id {
        Some(pass_id) => {
            tx.execute(
                "UPDATE passes SET started_at = LEAST(started_at, $2),
                                   finished_at = GREATEST(finished_at, $2)
                 WHERE pass_id = $1",
                &[&pass_id, &at],
            )?;
            pass_id
        }
        None => tx
            .query_one(
                "INSERT INTO passes (tag_set, started_at, finished_at, imported)
                 VALUES ($1, $2, $2, TRUE) RETURNING pass_id",
                &[&import.tag_set, &at],
            )?
            .try_get(0)?,
    };
    let inserted = tx.execute(
        "INSERT INTO captures (site, url, captured_at, pass_id, tag, tab, page, questions)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT DO NOTHING",
        &[
            &ctx.site,
            &capture.url,
            &at,
            &pass_id,
            &ctx.tag,
            &ctx.tab,
            &(ctx.page as i32),
            &(capture.questions.len() as i32),
        ],
    )?;
    if inserted == 0 {
        // Dropped, the transaction rolls back the pass it may have opened.
        return Ok((CaptureWrite::default(), import.pass_id));
    }
    let written = write_page(
        &mut tx,
        prepared,
        pass_id,
        capture.questions,
        &at,
        Sighting::Past,
        None,
    )?;
    let (write, added) = (written.write, written.added);
    tx.commit()?;
    Ok((
        CaptureWrite {
            imported: true,
            new: write.new,
            snapshots: added.snapshots as usize,
        },
        Some(pass_id),
    ))
}
