//! A `stackcrawl` process as a user runs it, its JSON log lines read as they
//! come, for tests that synchronise on what it says rather than on time.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `stackcrawl` binary as a test runs it: whatever it keeps of its own
/// (the default budget file, under `XDG_STATE_HOME`) goes into `dir`, the
/// test's own directory, never the user's; no app key comes from the
/// environment.
pub fn command(bin: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("STACKCRAWL_API_KEY");
    cmd
}

/// A running `stackcrawl run` whose log lines arrive as JSON values.
pub struct Service {
    pub child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    /// Every line read so far, in order.
    pub seen: Vec<serde_json::Value>,
}

impl Service {
    /// `stackcrawl run --config CONFIG`; `bin` is the test's
    /// `env!("CARGO_BIN_EXE_stackcrawl")`.
    pub fn start(bin: &str, config: &Path) -> Service {
        Service::spawn(bin, &["run", "--config"], config)
    }

    /// `stackcrawl --log-format json ARGS... CONFIG` with JSON log lines.
    pub fn spawn(bin: &str, args: &[&str], config: &Path) -> Service {
        let mut cmd = command(bin, config.parent().unwrap_or(Path::new(".")));
        cmd.args(["--log-format", "json"])
            .args(args)
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("STACKCRAWL_API_KEY");
        Service::from_command(cmd)
    }

    /// A command prepared by the test, its standard error read as log lines.
    pub fn from_command(mut cmd: Command) -> Service {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stackcrawl");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Service {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for the next log line with this message and returns it.
    pub fn wait_for(&mut self, message: &str) -> serde_json::Value {
        self.next(message, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("no `{message}` log line; saw {:#?}", self.seen))
    }

    pub fn signal(&self, sig: &str) {
        let signo = match sig {
            "-TERM" => libc::SIGTERM,
            "-HUP" => libc::SIGHUP,
            "-KILL" => libc::SIGKILL,
            "-INT" => libc::SIGINT,
            "-STOP" => libc::SIGSTOP,
            "-CONT" => libc::SIGCONT,
            other => panic!("no signal {other}"),
        };
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) only sends a signal to our own child process.
        let rc = unsafe { libc::kill(pid, signo) };
        assert_eq!(rc, 0, "kill {sig}");
    }

    /// Waits (bounded) for the process to exit and returns its code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Every line it wrote, for assertions: the reader thread
                // ends (and the channel with it) at the pipe's end of file,
                // however long a loaded machine takes to get there.
                loop {
                    let left = deadline
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_secs(1));
                    match self.lines.recv_timeout(left) {
                        Ok(v) => self.seen.push(v),
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            panic!("stackcrawl exited but its standard error stayed open")
                        }
                    }
                }
                return status.code();
            }
            assert!(Instant::now() < deadline, "stackcrawl did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn saw(&self, message: &str) -> bool {
        self.seen.iter().any(|v| v["message"] == message)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// The next line with this message, if one comes within `within`.
    pub fn next(&mut self, message: &str, within: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["message"] == message {
                        return Some(v);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Waits (bounded) for a line with this message that `pred` accepts.
    pub fn wait_until(
        &mut self,
        message: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        loop {
            let v = self.wait_for(message);
            if pred(&v) {
                return v;
            }
        }
    }
}

impl Service {
    /// The next log line, whatever it says, if one comes within `within`.
    pub fn line(&mut self, within: Duration) -> Option<serde_json::Value> {
        let v = self.lines.recv_timeout(within).ok()?;
        self.seen.push(v.clone());
        Some(v)
    }
}

/// Makes every write of `cmd`'s process past `bytes` into one file fail
/// (`EFBIG`, "File too large"), as writes fail on a disk that fills up:
/// a full disk for one process, without a file system of its own.
pub fn limit_file_size(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure calls only signal(2) and
    // setrlimit(2), both async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Past the limit the kernel also sends SIGXFSZ, which would
            // kill the process rather than fail the write; ignored, the
            // write returns EFBIG.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
