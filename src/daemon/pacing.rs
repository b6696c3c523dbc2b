//! When the daemon asks the git host again: the one owner of the delays of [`super::revisions`].
//!
//! - Polls come every `source.interval` with [`POLL_JITTER`] either way, so replicas and daemons
//!   started together do not fetch in lockstep.
//! - Webhooks fetch at once, but two fetches start at least `source.min_fetch_interval` apart: a
//!   burst of webhooks is one fetch at its start and at most one more after the spacing.
//! - While the host throttles (HTTP 429) or is down (5xx, connection failures), attempt `n` waits
//!   a random time between one poll interval and `interval * 2^n` (full jitter above the
//!   interval's floor, capped at [`MAX_HOST_BACKOFF`] or the interval when that is longer), or the
//!   host's `Retry-After` when that is longer. Webhooks do not shorten that wait: the host has
//!   said it wants fewer requests, and "never retry faster than the poll interval allows" means
//!   no two attempts in trouble are closer than one interval.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

/// The poll interval varies by this fraction either way.
pub const POLL_JITTER: f64 = 0.1;

/// The longest wait between attempts while the git host throttles or is down (unless the poll
/// interval or `Retry-After` is longer).
pub const MAX_HOST_BACKOFF: Duration = Duration::from_secs(600);

/// A number in [0, 1), different at every call (jitter needs no cryptographic quality; std's
/// randomly keyed hasher avoids a dependency).
fn random_fraction() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(nanos);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The wait before the next poll: `interval` +- [`POLL_JITTER`].
pub fn poll_delay(interval: Duration) -> Duration {
    jittered_poll(interval, random_fraction())
}

fn jittered_poll(interval: Duration, fraction: f64) -> Duration {
    interval.mul_f64(1.0 - POLL_JITTER + 2.0 * POLL_JITTER * fraction)
}

/// The wait before attempt `failures + 1` while the host throttles or is down.
pub fn host_backoff(failures: u32, interval: Duration, retry_after: Option<Duration>) -> Duration {
    host_backoff_with(failures, interval, retry_after, random_fraction())
}

fn host_backoff_with(
    failures: u32,
    interval: Duration,
    retry_after: Option<Duration>,
    fraction: f64,
) -> Duration {
    let cap = MAX_HOST_BACKOFF.max(interval);
    let ceiling = interval
        .checked_mul(1u32 << failures.clamp(1, 16))
        .unwrap_or(cap)
        .min(cap);
    let jittered = interval + (ceiling.saturating_sub(interval)).mul_f64(fraction);
    jittered.max(retry_after.unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn polls_vary_by_ten_percent_either_way() {
        let minute = Duration::from_secs(60);
        let close = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_millis(1);
        assert!(close(jittered_poll(minute, 0.0), Duration::from_secs(54)));
        assert!(close(jittered_poll(minute, 0.5), minute));
        assert!(jittered_poll(minute, 0.999_999) < Duration::from_secs(66));
        let a = poll_delay(minute);
        assert!(
            a >= Duration::from_secs(54) && a < Duration::from_secs(66),
            "{a:?}"
        );
        let draws: std::collections::HashSet<Duration> = (0..20).map(|_| poll_delay(minute)).collect();
        assert!(draws.len() > 1, "no jitter: {draws:?}");
    }

    #[test]
    fn host_backoff_never_undercuts_the_interval_grows_and_is_capped() {
        let minute = 60 * S;
        // Attempt 1: between one and two intervals.
        assert_eq!(host_backoff_with(1, minute, None, 0.0), minute);
        assert_eq!(host_backoff_with(1, minute, None, 0.5).as_secs(), 90);
        // Growing ceiling, capped at MAX_HOST_BACKOFF.
        assert_eq!(host_backoff_with(3, minute, None, 0.999_999_9).as_secs(), 479);
        assert_eq!(host_backoff_with(30, minute, None, 0.999_999_9).as_secs(), 599);
        // A poll interval longer than the cap: every attempt waits exactly one interval.
        let hour = 3600 * S;
        assert_eq!(host_backoff_with(5, hour, None, 0.7), hour);
        // Retry-After wins when longer, not when shorter.
        assert_eq!(host_backoff_with(1, S, Some(30 * S), 0.5), 30 * S);
        assert_eq!(host_backoff_with(1, minute, Some(S), 0.0), minute);
        let d = host_backoff(2, S, None);
        assert!(d >= S && d <= 4 * S, "{d:?}");
    }
}
