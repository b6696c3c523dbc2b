//! Webhook delivery de-duplication: GitHub names every delivery (`X-GitHub-Delivery`) and GitLab
//! every event (`X-Gitlab-Event-UUID`); a redelivery or a replayed request carries the same id. The
//! ids of recently accepted deliveries are kept for [`DELIVERY_WINDOW`], at most
//! [`MAX_DELIVERIES`] of them (the oldest forgotten first), so a replay within that window triggers
//! nothing. Only requests whose signature or token was verified are recorded: an unauthenticated
//! client cannot fill the set. A request without an id is never a duplicate.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an accepted delivery id is remembered.
pub const DELIVERY_WINDOW: Duration = Duration::from_secs(3600);
/// How many delivery ids are remembered at most.
pub const MAX_DELIVERIES: usize = 4096;
/// Longer ids are not remembered (GitHub's and GitLab's are 36-character UUIDs).
pub const MAX_ID_LEN: usize = 128;

/// The headers that name a delivery, GitHub's and GitLab's (lower case).
pub const DELIVERY_HEADERS: [&str; 2] = ["x-github-delivery", "x-gitlab-event-uuid"];

/// The recently accepted delivery ids.
#[derive(Debug, Default)]
pub struct Deliveries {
    inner: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    ids: HashSet<String>,
    /// In arrival order, for forgetting the oldest.
    order: VecDeque<(Instant, String)>,
}

impl Deliveries {
    /// Records delivery `id` seen at `now`; false when it was already seen within the window (a
    /// replay: do nothing).
    pub fn first_time(&self, id: &str, now: Instant) -> bool {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return true;
        }
        // Each update is a few set operations; a panic elsewhere cannot leave them half-done in a
        // way that matters, so a poisoned lock is still used.
        let mut recent = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((at, _)) = recent.order.front() {
            let expired = now.saturating_duration_since(*at) > DELIVERY_WINDOW;
            if !expired && recent.order.len() < MAX_DELIVERIES {
                break;
            }
            if let Some((_, old)) = recent.order.pop_front() {
                recent.ids.remove(&old);
            }
        }
        if recent.ids.contains(id) {
            return false;
        }
        recent.ids.insert(id.to_string());
        recent.order.push_back((now, id.to_string()));
        true
    }
}

/// The delivery id of a request, from the first of [`DELIVERY_HEADERS`] it carries.
pub fn delivery_id(headers: &impl super::webhook::Headers) -> Option<&str> {
    DELIVERY_HEADERS
        .iter()
        .find_map(|name| headers.get(name))
        .map(str::trim)
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_within_the_window_is_a_duplicate() {
        let d = Deliveries::default();
        let t0 = Instant::now();
        assert!(d.first_time("72d3162e-cc78-11e3-81ab-4c9367dc0958", t0));
        assert!(!d.first_time(
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            t0 + Duration::from_secs(5)
        ));
        assert!(d.first_time("another", t0 + Duration::from_secs(5)));
        // After the window the id is forgotten.
        assert!(d.first_time(
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            t0 + DELIVERY_WINDOW + Duration::from_secs(10)
        ));
    }

    #[test]
    fn the_set_is_bounded_and_forgets_the_oldest() {
        let d = Deliveries::default();
        let t0 = Instant::now();
        for i in 0..MAX_DELIVERIES + 10 {
            assert!(d.first_time(&format!("id-{i}"), t0));
        }
        let kept = d.inner.lock().unwrap().ids.len();
        assert_eq!(kept, MAX_DELIVERIES);
        assert!(d.first_time("id-0", t0), "the oldest id is forgotten");
        assert!(!d.first_time(&format!("id-{}", MAX_DELIVERIES + 9), t0));
        // Ids that are empty or too long are never remembered.
        assert!(d.first_time("", t0) && d.first_time("", t0));
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert!(d.first_time(&long, t0) && d.first_time(&long, t0));
    }
}
