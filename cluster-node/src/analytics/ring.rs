//! A consistent-hash ring with virtual nodes: which node computes a range of a query.
//!
//! ```text
//!            0 ─────────── hash space (u64) ─────────── 2⁶⁴
//!   points:   ·3   ·1  ·4 ·2     ·3  ·1   ·2 ·4   ·1 ·3 …   (each node at `virtual_nodes` points)
//!   key (group, range start) ───────▲ hashes here: owners are the nodes met clockwise, each once
//! ```
//!
//! Every node spreads over many points, so each owns about the same share of the keys, and a node
//! that joins or leaves moves only the keys next to its own points: the others keep their owner. A
//! key's owners in order (its *preference list*) say who computes a range and, when that node
//! declines or does not answer, who is next. Keys are a group and a range's aligned start, so the same
//! query asked again lands on the same copies and finds their caches warm.
//!
//! The hash is SHA-256 (first eight bytes, big-endian): the same on every node, platform and build,
//! unlike `std`'s hasher, whose algorithm is not specified.

use sha2::{Digest, Sha256};

use crate::config::NodeId;
use crate::storage::{GroupId, UnixMillis};

/// Points per node when none is said: enough that shares stay within a few tens of percent of
/// each other for a handful of nodes, few enough that building the ring costs nothing.
pub const DEFAULT_VIRTUAL_NODES: usize = 64;

/// The ring over a set of nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// `(point, node)`, sorted by point (then node, for the astronomically unlikely tie).
    points: Vec<(u64, NodeId)>,
    nodes: usize,
}

impl Ring {
    /// The ring over `nodes` (duplicates count once), each at `virtual_nodes` points (at least one).
    pub fn new(nodes: impl IntoIterator<Item = NodeId>, virtual_nodes: usize) -> Self {
        let mut distinct: Vec<NodeId> = nodes.into_iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        let per_node = virtual_nodes.max(1);
        let mut points = Vec::with_capacity(distinct.len() * per_node);
        for &node in &distinct {
            for replica in 0..per_node {
                let mut label = Vec::with_capacity(20);
                label.extend_from_slice(b"node");
                label.extend_from_slice(&node.0.to_be_bytes());
                label.extend_from_slice(&(replica as u64).to_be_bytes());
                points.push((hash(&label), node));
            }
        }
        points.sort_unstable();
        Ring {
            points,
            nodes: distinct.len(),
        }
    }

    /// How many distinct nodes the ring holds.
    pub fn len(&self) -> usize {
        self.nodes
    }

    pub fn is_empty(&self) -> bool {
        self.nodes == 0
    }

    /// The key's preference list: every node of the ring once, in the order met clockwise from the
    /// key's hash. The first is the key's owner.
    pub fn owners(&self, key: &[u8]) -> Vec<NodeId> {
        let mut owners: Vec<NodeId> = Vec::with_capacity(self.nodes);
        if self.points.is_empty() {
            return owners;
        }
        let at = hash(key);
        let start = self.points.partition_point(|&(point, _)| point < at);
        for offset in 0..self.points.len() {
            let (_, node) = self.points[(start + offset) % self.points.len()];
            if !owners.contains(&node) {
                owners.push(node);
                if owners.len() == self.nodes {
                    break;
                }
            }
        }
        owners
    }

    /// The owner of `key`, if the ring has a node.
    pub fn owner(&self, key: &[u8]) -> Option<NodeId> {
        self.owners(key).first().copied()
    }
}

/// The ring key of the range of `group` that starts (aligned) at `start`.
pub fn range_key(group: GroupId, start: UnixMillis) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(group.0.as_bytes());
    key.extend_from_slice(&start.0.to_be_bytes());
    key
}

/// The first eight bytes of SHA-256, as a big-endian number.
fn hash(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn nodes(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }

    fn group() -> GroupId {
        GroupId::parse("6f1c9a52-0b7e-4d38-9a51-2c4e8f0d1b23").unwrap()
    }

    /// The owners of `count` consecutive daily ranges of the test group.
    fn daily_owners(ring: &Ring, count: i64) -> Vec<NodeId> {
        (0..count)
            .map(|day| {
                ring.owner(&range_key(
                    group(),
                    UnixMillis(1_767_225_600_000 + day * 86_400_000),
                ))
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn the_hash_and_the_placement_are_fixed() {
        // Pinned: a change here moves every range to another node (and its caches go cold).
        assert_eq!(hash(b""), 0xe3b0_c442_98fc_1c14);
        let ring = Ring::new(nodes(&[1, 2, 3, 4, 5]), DEFAULT_VIRTUAL_NODES);
        assert_eq!(
            daily_owners(&ring, 10),
            nodes(&[1, 3, 1, 2, 1, 3, 2, 2, 4, 3])
        );
    }

    #[test]
    fn a_preference_list_names_every_node_once_owner_first() {
        let ring = Ring::new(nodes(&[7, 3, 3, 9]), 8);
        assert_eq!(ring.len(), 3);
        let key = range_key(group(), UnixMillis(0));
        let owners = ring.owners(&key);
        let mut sorted = owners.clone();
        sorted.sort();
        assert_eq!(sorted, nodes(&[3, 7, 9]));
        assert_eq!(ring.owner(&key), Some(owners[0]));
    }

    #[test]
    fn the_same_nodes_in_any_order_make_the_same_ring() {
        let a = Ring::new(nodes(&[1, 2, 3, 4]), 16);
        let b = Ring::new(nodes(&[4, 2, 1, 3, 2]), 16);
        assert_eq!(a, b);
    }

    #[test]
    fn an_empty_ring_has_no_owner() {
        let ring = Ring::new(Vec::new(), 64);
        assert!(ring.is_empty());
        assert_eq!(ring.owner(b"anything"), None);
        assert!(ring.owners(b"anything").is_empty());
    }

    #[test]
    fn shares_are_roughly_even() {
        let ring = Ring::new(nodes(&[1, 2, 3, 4, 5]), DEFAULT_VIRTUAL_NODES);
        let mut shares: BTreeMap<NodeId, usize> = BTreeMap::new();
        for owner in daily_owners(&ring, 10_000) {
            *shares.entry(owner).or_default() += 1;
        }
        assert_eq!(shares.len(), 5);
        for (node, share) in &shares {
            assert!(
                (1_200..=2_800).contains(share),
                "node {node} owns {share} of 10,000 ranges: {shares:?}"
            );
        }
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_ranges_to_their_next_owner() {
        let before = Ring::new(nodes(&[1, 2, 3, 4, 5]), DEFAULT_VIRTUAL_NODES);
        let after = Ring::new(nodes(&[1, 2, 4, 5]), DEFAULT_VIRTUAL_NODES);
        for day in 0..2_000 {
            let key = range_key(group(), UnixMillis(day * 86_400_000));
            let was = before.owners(&key);
            let now = after.owners(&key);
            // The order of the others is unchanged: the leaver's ranges go to the next in line.
            let expected: Vec<NodeId> = was.into_iter().filter(|n| *n != NodeId(3)).collect();
            assert_eq!(now, expected, "day {day}");
        }
    }
}
