//! Another program holding a SQLite file's write lock (a backup, a person
//! in `sqlite3`, a long `export`): what a test does to a budget file or a
//! store to see the crawler wait rather than fail.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Holds the write lock of the file until dropped.
pub struct WriteLock {
    release: Option<mpsc::Sender<()>>,
    holder: Option<JoinHandle<()>>,
}

impl WriteLock {
    /// Takes the lock (`BEGIN IMMEDIATE`) and returns once it is held.
    pub fn hold(path: &Path) -> WriteLock {
        let (release, held) = mpsc::channel::<()>();
        let (locked, is_locked) = mpsc::channel();
        let path = path.to_path_buf();
        let holder = std::thread::spawn(move || {
            let c = rusqlite::Connection::open(path).expect("open the file to lock");
            c.execute_batch("BEGIN IMMEDIATE")
                .expect("take the write lock");
            locked.send(()).expect("the test waits for the lock");
            let _ = held.recv();
            let _ = c.execute_batch("COMMIT");
        });
        is_locked.recv().expect("the lock was taken");
        WriteLock {
            release: Some(release),
            holder: Some(holder),
        }
    }
}

impl Drop for WriteLock {
    /// Releases the lock and waits until it is released.
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(h) = self.holder.take() {
            let _ = h.join();
        }
    }
}
