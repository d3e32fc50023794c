//! Saved pages read in bulk (`stackcrawl parse FILE…`): every core reads
//! files, and the results come out in the files' order, a window at a time,
//! so memory holds at most one window of files whatever their number.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::archive::{self, ArchiveError, ArchivedPage, WarcCounts};
use super::read_saved;
use crate::model::{Listing, PageContext};

/// How many files each worker reads per window: enough that a slow file
/// rarely leaves the others idle, few enough that a window stays small.
const FILES_PER_WORKER: usize = 8;

/// One file read: its records, or why it could not be read as a listing.
#[derive(Debug)]
pub struct ReadFile<'a> {
    pub path: &'a Path,
    pub read: Result<Listing, String>,
}

/// What reading the files yields, in their order.
#[derive(Debug)]
pub enum Item<'a> {
    /// A saved page or API response.
    Saved(ReadFile<'a>),
    /// A listing page from a web archive (WARC) file.
    Archived(&'a Path, ArchivedPage),
    /// A WARC file read to its end: what it held, or why it could not be read.
    ArchiveEnd(&'a Path, Result<WarcCounts, ArchiveError>),
}

/// A file read in a window, or a WARC file left to be streamed in its turn.
enum Slot<'a> {
    Read(ReadFile<'a>),
    Warc(&'a Path),
}

/// Reads `files` on `workers` threads and hands each result to `each` in
/// the order of `files`; stops at the first error `each` returns. A WARC
/// file (told by content) is streamed, its records parsed on every core.
pub fn read_files<'a, E>(
    files: &'a [PathBuf],
    ctx: &PageContext,
    workers: usize,
    mut each: impl FnMut(Item<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let workers = workers.max(1);
    for window in files.chunks(workers * FILES_PER_WORKER) {
        let mut read: Vec<Option<Slot<'a>>> = Vec::new();
        read.resize_with(window.len(), || None);
        std::thread::scope(|s| {
            let slots: Vec<_> = read.chunks_mut(FILES_PER_WORKER).collect();
            let paths = window.chunks(FILES_PER_WORKER);
            for (slots, paths) in slots.into_iter().zip(paths) {
                s.spawn(move || {
                    for (slot, path) in slots.iter_mut().zip(paths) {
                        *slot = Some(match read_file(path, ctx) {
                            Some(read) => Slot::Read(ReadFile { path, read }),
                            None => Slot::Warc(path),
                        });
                    }
                });
            }
        });
        for slot in read.into_iter().flatten() {
            match slot {
                Slot::Read(r) => each(Item::Saved(r))?,
                Slot::Warc(path) => {
                    let counts = archive::read_warc_file(path, workers, |page| {
                        each(Item::Archived(path, page))
                    })?;
                    each(Item::ArchiveEnd(path, counts))?;
                }
            }
        }
    }
    Ok(())
}

/// One saved page: fetched when it was saved, so its file time is the best
/// record of when its figures were seen. `None` for a WARC file, of which
/// only the start is read: it may be gigabytes.
fn read_file(path: &Path, ctx: &PageContext) -> Option<Result<Listing, String>> {
    let mut bytes = Vec::new();
    let start = std::fs::File::open(path).and_then(|mut f| {
        (&mut f).take(64 * 1024).read_to_end(&mut bytes)?;
        Ok(f)
    });
    let rest = start.and_then(|mut f| {
        if archive::is_warc(&bytes) {
            return Ok(None);
        }
        f.read_to_end(&mut bytes).map(Some)
    });
    match rest {
        Ok(None) => None,
        Ok(Some(_)) => Some(read_page(path, &bytes, ctx)),
        Err(e) => Some(Err(format!("cannot read: {e}"))),
    }
}

fn read_page(path: &Path, bytes: &[u8], ctx: &PageContext) -> Result<Listing, String> {
    let fetched_at = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now());
    read_saved(&super::charset::decode(bytes, None), ctx, fetched_at)
        .map_err(|e| format!("not a listing page or API response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PageContext {
        PageContext {
            site: "stackoverflow.com".into(),
            base_url: "https://stackoverflow.com".into(),
            tag: String::new(),
            tab: String::new(),
            page: 0,
        }
    }

    #[test]
    fn many_workers_give_what_one_gives_in_the_files_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/so-html");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        // More files than one window, and one that is no listing.
        let files: Vec<PathBuf> = files
            .iter()
            .cycle()
            .take(files.len() * 5)
            .cloned()
            .chain([dir.join("no-such-file.html")])
            .collect();
        let read = |workers| {
            let mut out = Vec::new();
            read_files(&files, &ctx(), workers, |r| {
                let Item::Saved(r) = r else {
                    panic!("no WARC here")
                };
                out.push((
                    r.path.to_path_buf(),
                    r.read.map(|l| {
                        l.questions
                            .iter()
                            .map(|q| q.question_id)
                            .collect::<Vec<_>>()
                    }),
                ));
                Ok::<_, ()>(())
            })
            .unwrap();
            out
        };
        let one = read(1);
        assert_eq!(one.len(), files.len());
        assert!(one.last().unwrap().1.is_err(), "a missing file is an error");
        assert!(one.iter().filter(|r| r.1.is_ok()).count() > 40);
        assert_eq!(read(3), one, "same records, same order");
    }
}
