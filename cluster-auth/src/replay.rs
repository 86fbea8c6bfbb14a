//! The proofs a server accepted within the window, so that a captured request cannot be sent again
//! while its timestamp is still fresh. Only proofs that verified are remembered, so only key holders
//! can add entries: at most one per mutating request of the cluster's nodes in the last two windows.

use std::collections::HashMap;

/// How often (in milliseconds of the server's clock) entries past the window are dropped: often enough
/// to keep the map small, rarely enough that the sweep costs nothing per request.
const SWEEP_EVERY_MS: u64 = 1_000;

#[derive(Debug, Default)]
pub(crate) struct ReplayCache {
    /// Tag → the proof's timestamp.
    seen: HashMap<[u8; 32], u64>,
    last_sweep_ms: u64,
}

impl ReplayCache {
    /// Records `tag` (made at `timestamp_ms`, already verified and inside the window at `now_ms`);
    /// `false` when it was recorded before.
    pub(crate) fn first_use(
        &mut self,
        tag: [u8; 32],
        timestamp_ms: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> bool {
        if now_ms.abs_diff(self.last_sweep_ms) >= SWEEP_EVERY_MS {
            // A proof made more than a window ago is refused by the time check, whatever is here; a
            // clock stepped backwards by more than the window could let one through once, which the
            // time check alone would have allowed anyway.
            self.seen
                .retain(|_, made| made.saturating_add(window_ms) >= now_ms);
            self.last_sweep_ms = now_ms;
        }
        self.seen.insert(tag, timestamp_ms).is_none()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 60_000;

    #[test]
    fn a_tag_is_accepted_once() {
        let mut cache = ReplayCache::default();
        assert!(cache.first_use([1; 32], 1_000, 1_000, WINDOW));
        assert!(!cache.first_use([1; 32], 1_000, 1_500, WINDOW));
        assert!(cache.first_use([2; 32], 1_000, 1_500, WINDOW));
    }

    #[test]
    fn tags_older_than_the_window_are_forgotten() {
        let mut cache = ReplayCache::default();
        cache.first_use([1; 32], 10_000, 10_000, WINDOW);
        cache.first_use([2; 32], 50_000, 50_000, WINDOW);

        cache.first_use([3; 32], 70_001, 70_001, WINDOW);

        assert_eq!(
            cache.len(),
            2,
            "only the tag made at 10 s is past the window"
        );
        assert!(!cache.first_use([2; 32], 50_000, 70_002, WINDOW));
    }
}
