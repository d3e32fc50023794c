//! The engine's timers: the status line's clock, and a deadline that may
//! not be set.

/// The status line's clock: its first tick is one interval from now, and a
/// late tick is not made up for with a burst of lines.
pub fn status_timer(every: std::time::Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

pub(crate) async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
