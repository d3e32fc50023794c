//! Standard output as every command writes it: a reader that closed the
//! pipe ends the command quietly, any other write error is one line.

use std::io::Write;

use crate::Failure;

/// Standard output, for every command that prints, and the one rule for
/// its errors: a reader that closed the pipe (`| head`) has what it wanted,
/// so the command ends quietly with 0 ([`Failure::StdoutClosed`]); any
/// other failed write (`> /dev/full`) is exit 1 in one line. Rust ignores
/// SIGPIPE, so a closed pipe arrives as an error, and `println!` panics on
/// it.
pub struct Stdout {
    inner: std::io::StdoutLock<'static>,
    /// The first write error, for writers that wrap it in their own error
    /// (the store's export).
    pub error: Option<std::io::Error>,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout {
            inner: std::io::stdout().lock(),
            error: None,
        }
    }

    pub fn failure(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::StdoutClosed
        } else {
            Failure::Failed(format!("cannot write to standard output: {e}"))
        }
    }

    /// Flushes what is still buffered: a write error shows only here.
    pub fn finish(mut self) -> Result<(), Failure> {
        self.flush().map_err(Stdout::failure)
    }

    fn keep<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        r.inspect_err(|e| {
            let kept = std::io::Error::new(e.kind(), e.to_string());
            self.error.get_or_insert(kept);
        })
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.keep(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.keep(r)
    }
}
