//! systemd's notify protocol (`sd_notify`), spoken when systemd asks for it
//! (`NOTIFY_SOCKET` set, `Type=notify` in the unit): `READY=1` once the
//! store is open and the signal handlers are in place, `STATUS=` with what
//! the service is doing, `STOPPING=1` on a shutdown request, and
//! `WATCHDOG=1` from the engine's own event loop while it turns, when the
//! unit sets `WatchdogSec`. Without `NOTIFY_SOCKET` every call does nothing.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tracing::debug;

/// Sends one notification; a failure is only logged: systemd's view of the
/// service must never stop the service.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        match path.as_bytes().strip_prefix(b"@") {
            // An abstract socket: the name after '@', in Linux's namespace.
            #[cfg(target_os = "linux")]
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)
            }
            None => socket.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        debug!(error = %e, state, "systemd notification not sent");
    }
}

/// How often to tell the watchdog the service is alive: half the interval
/// systemd set (`WATCHDOG_USEC`), if it set one for this process.
pub fn watchdog_every() -> Option<Duration> {
    let pid_matches = std::env::var("WATCHDOG_PID")
        .map(|p| p.trim() == std::process::id().to_string())
        .unwrap_or(true);
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (pid_matches && usec > 0).then(|| Duration::from_micros(usec / 2))
}
