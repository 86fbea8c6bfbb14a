//! A copy's cache of mapped ranges: the [`Partial`] of a whole range of a group, kept with the
//! [`RangeVersion`] of the rows it was computed from.
//!
//! Why a hit is correct: a result is used again only when the range's version read now, in the
//! same read transaction that would otherwise read the rows, equals the version it was computed at.
//! Every write that changes what a range counts for (a post in it, an edit, a deletion) stamps a row
//! of the range with its epoch, epochs only grow and rows are never removed, so such a write always
//! changes the version; and the version names the history up to its newest stamp by that entry's
//! term, so a copy rebuilt after it diverged, or restored, cannot match an entry it no longer holds.
//! Names are part of the result, but a user's name and tag never change. Nothing else is trusted: no
//! time-to-live, no guess about which ranges are "old".
//!
//! Bounded: at most `capacity` ranges, the least recently used going first.

use std::collections::HashMap;
use std::sync::Arc;

use crate::storage::GroupId;
use crate::storage::stats::RangeVersion;

use super::plan::TimeRange;
use super::reduce::Partial;

/// Ranges kept when none is said: a month of daily ranges for thirty groups, or a few hours of
/// minute ranges for one.
pub const DEFAULT_CAPACITY: usize = 1_024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    group: GroupId,
    range: TimeRange,
}

#[derive(Debug)]
struct Entry {
    version: RangeVersion,
    partial: Arc<Partial>,
    used: u64,
}

/// Cached partials by group and range.
#[derive(Debug)]
pub struct RangeCache {
    entries: HashMap<Key, Entry>,
    capacity: usize,
    /// A counter, not a clock: the order of use is all that eviction needs.
    uses: u64,
}

impl RangeCache {
    pub fn new(capacity: usize) -> Self {
        RangeCache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            uses: 0,
        }
    }

    /// The partial of `range` of `group` if it was computed at exactly `version`.
    pub fn get(
        &mut self,
        group: GroupId,
        range: TimeRange,
        version: &RangeVersion,
    ) -> Option<Arc<Partial>> {
        self.uses += 1;
        let entry = self.entries.get_mut(&Key { group, range })?;
        if entry.version != *version || version.term.is_none() {
            return None;
        }
        entry.used = self.uses;
        Some(entry.partial.clone())
    }

    /// Keeps `partial` as the result of `range` of `group` at `version`. A version that names no
    /// history (its entry is not in the log) is not kept.
    pub fn put(
        &mut self,
        group: GroupId,
        range: TimeRange,
        version: RangeVersion,
        partial: Arc<Partial>,
    ) {
        if version.term.is_none() {
            return;
        }
        self.uses += 1;
        let key = Key { group, range };
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.used)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
            key,
            Entry {
                version,
                partial,
                used: self.uses,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Epoch, Term, UnixMillis};

    fn range(start: i64) -> TimeRange {
        TimeRange {
            start: UnixMillis(start),
            end: UnixMillis(start + 1_000),
        }
    }

    fn version(rows: u64, last_change: u64, term: u64) -> RangeVersion {
        RangeVersion {
            rows,
            last_change: Epoch(last_change),
            term: Some(Term(term)),
        }
    }

    fn partial(messages: u64) -> Arc<Partial> {
        Arc::new(Partial {
            messages,
            ..Partial::default()
        })
    }

    #[test]
    fn a_result_is_reused_only_at_the_version_it_was_computed_at() {
        let mut cache = RangeCache::new(8);
        let group = GroupId::random();
        cache.put(group, range(0), version(3, 17, 1), partial(3));

        let hit = cache.get(group, range(0), &version(3, 17, 1));
        assert_eq!(hit.map(|p| p.messages), Some(3));
        // A later post, an edit or a deletion in the range: a newer stamp.
        assert!(cache.get(group, range(0), &version(4, 18, 1)).is_none());
        assert!(cache.get(group, range(0), &version(3, 18, 1)).is_none());
        // The same epoch under another history (a rebuilt copy).
        assert!(cache.get(group, range(0), &version(3, 17, 2)).is_none());
        // Another range, another group.
        assert!(cache.get(group, range(1_000), &version(3, 17, 1)).is_none());
        assert!(
            cache
                .get(GroupId::random(), range(0), &version(3, 17, 1))
                .is_none()
        );
    }

    #[test]
    fn a_version_without_a_history_is_neither_kept_nor_matched() {
        let mut cache = RangeCache::new(8);
        let group = GroupId::random();
        let unknown = RangeVersion {
            term: None,
            ..version(1, 5, 1)
        };
        cache.put(group, range(0), unknown, partial(1));
        assert!(cache.is_empty());
        cache.put(group, range(0), version(1, 5, 1), partial(1));
        assert!(cache.get(group, range(0), &unknown).is_none());
    }

    #[test]
    fn a_newer_result_replaces_the_older_one() {
        let mut cache = RangeCache::new(8);
        let group = GroupId::random();
        cache.put(group, range(0), version(1, 5, 1), partial(1));
        cache.put(group, range(0), version(2, 9, 1), partial(2));
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache
                .get(group, range(0), &version(2, 9, 1))
                .map(|p| p.messages),
            Some(2)
        );
    }

    #[test]
    fn the_least_recently_used_range_goes_first_when_full() {
        let mut cache = RangeCache::new(2);
        let group = GroupId::random();
        cache.put(group, range(0), version(1, 1, 1), partial(1));
        cache.put(group, range(1_000), version(1, 2, 1), partial(1));
        assert!(cache.get(group, range(0), &version(1, 1, 1)).is_some());
        cache.put(group, range(2_000), version(1, 3, 1), partial(1));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(group, range(0), &version(1, 1, 1)).is_some());
        assert!(cache.get(group, range(1_000), &version(1, 2, 1)).is_none());
        assert!(cache.get(group, range(2_000), &version(1, 3, 1)).is_some());
    }
}
