//! Whether a file the run will write can be written, checked before the
//! first request: an output, failures file, store or budget file found
//! unwritable only when the first page comes back costs the whole crawl's
//! requests (a day's budget on a large one).
//!
//! Permission bits alone do not answer it (root ignores them, a read-only
//! mount or a file where a directory should be ignores them too), so the
//! directory is probed by creating and removing a file in it.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A file the run would write but cannot.
#[derive(Debug, Error)]
#[error("cannot write the {what} {path}: {reason}")]
pub struct NotWritable {
    /// Which file it is: "output", "failures file", "store", "budget file".
    pub what: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

/// Checks that `path` can be written: an existing file can be opened for
/// writing (it is not modified), and the directory it is in, or will be in
/// once created, takes a new file. A directory the run would create itself
/// (the budget file's state directory) is judged by its nearest existing
/// ancestor.
pub fn check(what: &'static str, path: &Path) -> Result<(), NotWritable> {
    let fail = |reason: String| NotWritable {
        what,
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(fail("it is a directory".into())),
        // Opening a FIFO for writing would wait for a reader.
        Ok(m) if !m.is_file() => {}
        Ok(_) => {
            OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| fail(e.to_string()))?;
        }
        // The directory check below says which part of the path is wrong.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) => {}
        // No permission to look: the run would meet the same error.
        Err(e) => return Err(fail(e.to_string())),
    }
    let dir = nearest_dir(path).map_err(fail)?;
    probe(&dir).map_err(|e| fail(format!("cannot create a file in {}: {e}", dir.display())))
}

/// The directory `path` is in or, if that does not exist yet, its nearest
/// existing ancestor, which must be a directory.
fn nearest_dir(path: &Path) -> Result<PathBuf, String> {
    let mut dir = parent_dir(path);
    loop {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => return Ok(dir.to_path_buf()),
            Ok(_) => return Err(format!("{} is not a directory", dir.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => dir = parent_dir(dir),
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates and removes a file in `dir`. The name is this process's, so two
/// runs probing one directory never remove each other's probe.
fn probe(dir: &Path) -> io::Result<()> {
    let file = dir.join(format!(".stackcrawl-probe-{}", std::process::id()));
    File::create(&file)?;
    std::fs::remove_file(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_a_writable_directory_passes_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        check("output", &dir.path().join("q.jsonl")).unwrap();
        check("budget file", &dir.path().join("state/sc/budget.sqlite")).unwrap();
        std::fs::write(dir.path().join("old.jsonl"), "x").unwrap();
        check("output", &dir.path().join("old.jsonl")).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("old.jsonl")).unwrap(),
            "x"
        );
    }

    #[test]
    fn a_path_under_a_file_or_a_directory_as_the_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("afile");
        std::fs::write(&file, "").unwrap();
        let e = check("store", &file.join("sub/s.db")).unwrap_err();
        assert_eq!(e.path, file.join("sub/s.db"));
        assert!(e.to_string().starts_with("cannot write the store "), "{e}");
        let e = check("output", dir.path()).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_not_opened_so_the_check_never_waits_for_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("q.jsonl");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(check("output", &fifo).is_ok()));
        let passed = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the check returned without a reader on the FIFO");
        assert!(passed);
    }

    #[test]
    fn a_directory_that_takes_no_new_file_is_refused() {
        // /proc takes no new file, even from root.
        let e = check("output", Path::new("/proc/self/q.jsonl")).unwrap_err();
        assert!(
            e.reason.contains("cannot create a file in /proc/self"),
            "{e}"
        );
    }
}
