//! The split of a query into time ranges, and who computes each, pure.
//!
//! ```text
//!   since                                                                 until
//!     │▒▒▒▒│          │          │          │          │          │▒▒▒▒▒▒▒▒│
//!     └ first range (partial) ─┘ whole ranges, aligned to multiples of the  └ last (partial)
//!                                 range length since 1970 (UTC midnights for a day)
//! ```
//!
//! Ranges are aligned, not counted from `since`, so a query asked again a second later is made of
//! the same whole ranges (same ring keys, same cache keys); only its two ends differ.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::NodeId;
use crate::storage::{GroupId, UnixMillis};

use super::ring::{Ring, range_key};

/// The most ranges one query may have (a thousand days at the default of a day each).
pub const MAX_RANGES: usize = 1_000;

/// One range of a query: `[start, end)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: UnixMillis,
    pub end: UnixMillis,
}

impl TimeRange {
    /// The aligned start of the slot this range lies in, for ranges of `length` ms: what names it on
    /// the ring (a partial first range is placed like the whole one it is part of).
    pub fn slot(&self, length: i64) -> UnixMillis {
        let length = length.max(1);
        UnixMillis(self.start.0.div_euclid(length).saturating_mul(length))
    }

    /// Whether this range is a whole slot of `length` ms (only those are worth caching: a partial
    /// one's bounds come back only if the same instant is asked again).
    pub fn is_whole(&self, length: i64) -> bool {
        length > 0
            && self.start.0.rem_euclid(length) == 0
            && self.end.0.checked_sub(self.start.0) == Some(length)
    }
}

/// Why a query cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("since must not be after now")]
    Empty,
    #[error("the range length must be positive")]
    BadLength,
    #[error(
        "{ranges} ranges is too many (at most {MAX_RANGES}): ask for a later since or longer ranges"
    )]
    TooMany { ranges: i64 },
}

/// `[since, until)` cut at every multiple of `length` ms.
pub fn split(
    since: UnixMillis,
    until: UnixMillis,
    length: i64,
) -> Result<Vec<TimeRange>, PlanError> {
    if length <= 0 {
        return Err(PlanError::BadLength);
    }
    if since >= until {
        return Err(PlanError::Empty);
    }
    let first_slot = since.0.div_euclid(length);
    let last_slot = (until.0 - 1).div_euclid(length);
    // Checked: `since` may come from a client as far back as it likes.
    let count = last_slot
        .checked_sub(first_slot)
        .and_then(|span| span.checked_add(1))
        .unwrap_or(i64::MAX);
    if count > MAX_RANGES as i64 {
        return Err(PlanError::TooMany { ranges: count });
    }
    Ok((first_slot..=last_slot)
        .map(|slot| TimeRange {
            start: UnixMillis(slot.saturating_mul(length).max(since.0)),
            end: UnixMillis(slot.saturating_add(1).saturating_mul(length).min(until.0)),
        })
        .collect())
}

/// Each range's preference list on `ring`: who computes it, and who is next if that one cannot.
pub fn preferences(
    ring: &Ring,
    group: GroupId,
    ranges: &[TimeRange],
    length: i64,
) -> Vec<Vec<NodeId>> {
    ranges
        .iter()
        .map(|range| ring.owners(&range_key(group, range.slot(length))))
        .collect()
}

/// Which ranges (by index) each node is asked for: each of `indices` goes to the first node of its
/// preference list that is not `excluded`. Ranges whose every node is excluded come back apart.
pub fn assign(
    preferences: &[Vec<NodeId>],
    indices: impl IntoIterator<Item = usize>,
    excluded: &BTreeSet<NodeId>,
) -> (BTreeMap<NodeId, Vec<usize>>, Vec<usize>) {
    let mut assigned: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    let mut orphans = Vec::new();
    for index in indices {
        let next = preferences
            .get(index)
            .and_then(|list| list.iter().find(|node| !excluded.contains(node)));
        match next {
            Some(node) => assigned.entry(*node).or_default().push(index),
            None => orphans.push(index),
        }
    }
    (assigned, orphans)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    const NEW_YEAR: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn range(start: i64, end: i64) -> TimeRange {
        TimeRange {
            start: UnixMillis(start),
            end: UnixMillis(end),
        }
    }

    #[test]
    fn a_query_is_cut_at_aligned_boundaries_with_partial_ends() {
        let since = NEW_YEAR - 2 * HOUR;
        let until = NEW_YEAR + DAY + 5 * HOUR;
        assert_eq!(
            split(UnixMillis(since), UnixMillis(until), DAY),
            Ok(vec![
                range(since, NEW_YEAR),
                range(NEW_YEAR, NEW_YEAR + DAY),
                range(NEW_YEAR + DAY, until),
            ])
        );
    }

    #[test]
    fn aligned_ends_make_only_whole_ranges() {
        let ranges = split(UnixMillis(NEW_YEAR), UnixMillis(NEW_YEAR + 3 * HOUR), HOUR).unwrap();
        assert_eq!(
            ranges,
            [
                range(NEW_YEAR, NEW_YEAR + HOUR),
                range(NEW_YEAR + HOUR, NEW_YEAR + 2 * HOUR),
                range(NEW_YEAR + 2 * HOUR, NEW_YEAR + 3 * HOUR),
            ]
        );
        assert!(ranges.iter().all(|r| r.is_whole(HOUR)));
    }

    #[test]
    fn a_query_inside_one_slot_is_one_partial_range_placed_as_its_slot() {
        let ranges = split(UnixMillis(NEW_YEAR + 10), UnixMillis(NEW_YEAR + 20), DAY).unwrap();
        assert_eq!(ranges, [range(NEW_YEAR + 10, NEW_YEAR + 20)]);
        assert!(!ranges[0].is_whole(DAY));
        assert_eq!(ranges[0].slot(DAY), UnixMillis(NEW_YEAR));
    }

    #[test]
    fn empty_backwards_and_oversized_queries_are_refused() {
        let at = UnixMillis(NEW_YEAR);
        assert_eq!(split(at, at, DAY), Err(PlanError::Empty));
        assert_eq!(
            split(UnixMillis(NEW_YEAR + 1), at, DAY),
            Err(PlanError::Empty)
        );
        assert_eq!(
            split(at, UnixMillis(NEW_YEAR + 1), 0),
            Err(PlanError::BadLength)
        );
        assert_eq!(
            split(UnixMillis(0), at, DAY),
            Err(PlanError::TooMany { ranges: 20_454 })
        );
        assert_eq!(
            split(UnixMillis(NEW_YEAR - 1_000 * DAY), at, DAY).map(|r| r.len()),
            Ok(1_000)
        );
    }

    #[test]
    fn times_before_1970_are_cut_the_same_way() {
        assert_eq!(
            split(UnixMillis(-DAY - 5), UnixMillis(5), DAY),
            Ok(vec![range(-DAY - 5, -DAY), range(-DAY, 0), range(0, 5)])
        );
    }

    #[test]
    fn ranges_go_to_the_first_node_not_excluded() {
        let preferences = vec![
            vec![NodeId(3), NodeId(1), NodeId(2)],
            vec![NodeId(1), NodeId(3), NodeId(2)],
            vec![NodeId(3), NodeId(2), NodeId(1)],
        ];
        let (assigned, orphans) = assign(&preferences, 0..3, &BTreeSet::new());
        assert_eq!(
            assigned,
            BTreeMap::from([(NodeId(1), vec![1]), (NodeId(3), vec![0, 2])])
        );
        assert!(orphans.is_empty());

        let (assigned, _) = assign(&preferences, [0, 2], &BTreeSet::from([NodeId(3)]));
        assert_eq!(
            assigned,
            BTreeMap::from([(NodeId(1), vec![0]), (NodeId(2), vec![2])])
        );

        let everyone = BTreeSet::from([NodeId(1), NodeId(2), NodeId(3)]);
        let (assigned, orphans) = assign(&preferences, 0..3, &everyone);
        assert!(assigned.is_empty());
        assert_eq!(orphans, [0, 1, 2]);
    }

    #[test]
    fn the_same_query_a_moment_later_keeps_its_whole_ranges_and_their_places() {
        let ring = Ring::new([1, 2, 3, 4].map(NodeId), 64);
        let group = GroupId::random();
        let now = NEW_YEAR + 7 * DAY + 3 * HOUR;
        let first = split(UnixMillis(now - 30 * DAY), UnixMillis(now), DAY).unwrap();
        let later = now + 42_000;
        let second = split(UnixMillis(later - 30 * DAY), UnixMillis(later), DAY).unwrap();
        assert_eq!(first.len(), second.len());
        assert_eq!(first[1..first.len() - 1], second[1..second.len() - 1]);
        assert_eq!(
            preferences(&ring, group, &first, DAY),
            preferences(&ring, group, &second, DAY)
        );
    }
}
