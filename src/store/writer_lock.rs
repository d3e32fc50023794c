//! One writer per store. Two `run`s (or a `run` and a `crawl --store`) on one
//! store would fetch every page twice at twice the quota and trip over each
//! other's passes, so a writer holds an exclusive lock on `STORE.lock` for
//! as long as it runs; a second one is refused at once, told who holds it.
//! Readers (`report`, `export`) take no lock: SQLite's WAL lets them read
//! while the writer writes.
//!
//! The lock is the operating system's (`flock`), not the file's existence:
//! it is released when the process exits however it exits, `kill -9`
//! included, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LockError {
    #[error(
        "the store {store} is in use by another stackcrawl process ({holder}); \
         a store has one writer: stop that process first (report and export can read it meanwhile)"
    )]
    Held { store: PathBuf, holder: String },
    #[error("cannot lock the store {store} through {lock}: {reason}")]
    Io {
        store: PathBuf,
        lock: PathBuf,
        reason: String,
    },
}

/// Held while this process writes to the store; dropping it releases it.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the store's writer lock, or says who has it.
    pub fn acquire(store: &Path) -> Result<WriterLock, LockError> {
        let lock = lock_path(store);
        let io = |e: std::io::Error| LockError::Io {
            store: store.to_path_buf(),
            lock: lock.clone(),
            reason: e.to_string(),
        };
        if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    store: store.to_path_buf(),
                    holder: if holder.is_empty() {
                        "a process that has not said who it is yet".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the message a second writer gets.
        let me = format!(
            "pid {} on {}, since {}",
            std::process::id(),
            hostname(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(WriterLock { _file: file })
    }
}

/// `store.db` is locked through `store.db.lock`, beside it.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_told_who_holds_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.db");
        let first = WriterLock::acquire(&store).unwrap();
        let err = WriterLock::acquire(&store).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LockError::Held { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("store.db"), "{text}");
        drop(first);
        WriterLock::acquire(&store).expect("free again once released");
    }
}
