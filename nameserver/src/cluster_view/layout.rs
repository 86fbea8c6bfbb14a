//! Where each node goes in the picture: its row is its depth in the tree (root on top), its column a
//! slot in that row such that every parent sits centred over its children.
//!
//! Leaves take consecutive slots from the left, each tree after the previous one; a parent takes the
//! middle of its first and last child. Nodes that hang in no tree (dead, or live but not yet adopted)
//! go on a row of their own below, in id order. The page scales slots to its width.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

/// A node's place in the tree as the live nodes report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeNode {
    pub alive: bool,
    /// Live children, sorted; a child claimed by two parents is placed under the first one reached.
    pub children: Vec<u64>,
    /// Whether the node names a live parent; a node without one that has children roots a fragment.
    pub has_live_parent: bool,
}

/// Row and slot of one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Distance from the root of its tree; `None` on the row of nodes outside every tree.
    pub depth: Option<u32>,
    pub column: f64,
}

impl Placement {
    /// A node nothing was computed for.
    pub const OUTSIDE: Self = Self {
        depth: None,
        column: 0.0,
    };
}

/// Places every node of `nodes`. The tree under `leader` (when it is alive) comes first; then every
/// fragment rooted at a live node with children and no live parent (while a tree heals), by id.
pub fn place(nodes: &BTreeMap<u64, TreeNode>, leader: Option<u64>) -> BTreeMap<u64, Placement> {
    let mut placed = BTreeMap::new();
    let mut next_leaf = 0.0;
    let fragments = nodes
        .iter()
        .filter(|(_, node)| node.alive && !node.has_live_parent && !node.children.is_empty())
        .map(|(&id, _)| id);
    let roots = leader
        .filter(|id| nodes.get(id).is_some_and(|node| node.alive))
        .into_iter()
        .chain(fragments);
    for root in roots {
        if !placed.contains_key(&root) {
            visit(root, 0, nodes, &mut placed, &mut next_leaf);
        }
    }

    let mut outside = 0.0;
    for &id in nodes.keys() {
        if let Entry::Vacant(slot) = placed.entry(id) {
            slot.insert(Placement {
                depth: None,
                column: outside,
            });
            outside += 1.0;
        }
    }
    placed
}

/// Places `id` and its subtree; answers its column. A node is marked placed before its children are
/// visited, so a cycle in what the nodes report ends instead of recursing forever.
fn visit(
    id: u64,
    depth: u32,
    nodes: &BTreeMap<u64, TreeNode>,
    placed: &mut BTreeMap<u64, Placement>,
    next_leaf: &mut f64,
) -> f64 {
    placed.insert(
        id,
        Placement {
            depth: Some(depth),
            column: 0.0,
        },
    );
    let mut first_and_last: Option<(f64, f64)> = None;
    for &child in nodes.get(&id).map(|node| &node.children[..]).unwrap_or(&[]) {
        let placeable = nodes.get(&child).is_some_and(|node| node.alive);
        if !placeable || placed.contains_key(&child) {
            continue;
        }
        let column = visit(child, depth + 1, nodes, placed, next_leaf);
        first_and_last = Some(match first_and_last {
            None => (column, column),
            Some((first, _)) => (first, column),
        });
    }
    let column = match first_and_last {
        Some((first, last)) => (first + last) / 2.0,
        None => {
            let column = *next_leaf;
            *next_leaf += 1.0;
            column
        }
    };
    placed.insert(
        id,
        Placement {
            depth: Some(depth),
            column,
        },
    );
    column
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(children: &[u64], has_live_parent: bool) -> TreeNode {
        TreeNode {
            alive: true,
            children: children.to_vec(),
            has_live_parent,
        }
    }

    fn dead() -> TreeNode {
        TreeNode::default()
    }

    fn at(depth: Option<u32>, column: f64) -> Placement {
        Placement { depth, column }
    }

    #[test]
    fn the_root_sits_on_top_centred_over_its_children_and_leaves_take_consecutive_slots() {
        //        1
        //      /   \
        //     2     3
        //    / \
        //   4   5
        let nodes = BTreeMap::from([
            (1, live(&[2, 3], false)),
            (2, live(&[4, 5], true)),
            (3, live(&[], true)),
            (4, live(&[], true)),
            (5, live(&[], true)),
        ]);

        let placed = place(&nodes, Some(1));

        assert_eq!(placed[&4], at(Some(2), 0.0));
        assert_eq!(placed[&5], at(Some(2), 1.0));
        assert_eq!(placed[&2], at(Some(1), 0.5));
        assert_eq!(placed[&3], at(Some(1), 2.0));
        assert_eq!(placed[&1], at(Some(0), 1.25));
    }

    #[test]
    fn dead_and_orphaned_nodes_go_on_the_outside_row_in_id_order() {
        let nodes = BTreeMap::from([
            (1, live(&[3], false)),
            (2, dead()),
            (3, live(&[], true)),
            (4, live(&[], true)), // claims a parent that does not list it
        ]);

        let placed = place(&nodes, Some(1));

        assert_eq!(placed[&1], at(Some(0), 0.0));
        assert_eq!(placed[&3], at(Some(1), 0.0));
        assert_eq!(placed[&2], at(None, 0.0));
        assert_eq!(placed[&4], at(None, 1.0));
    }

    #[test]
    fn a_dead_leader_roots_nothing_and_fragments_are_drawn_side_by_side() {
        let nodes = BTreeMap::from([
            (1, dead()),
            (2, live(&[4], false)),
            (3, live(&[5], false)),
            (4, live(&[], true)),
            (5, live(&[], true)),
        ]);

        let placed = place(&nodes, Some(1));

        assert_eq!(placed[&1], at(None, 0.0));
        assert_eq!(placed[&2], at(Some(0), 0.0));
        assert_eq!(placed[&4], at(Some(1), 0.0));
        assert_eq!(placed[&3], at(Some(0), 1.0));
        assert_eq!(placed[&5], at(Some(1), 1.0));
    }

    #[test]
    fn a_child_claimed_by_two_parents_is_placed_once_under_the_first() {
        let nodes = BTreeMap::from([
            (1, live(&[2, 3], false)),
            (2, live(&[4], true)),
            (3, live(&[4], true)),
            (4, live(&[], true)),
        ]);

        let placed = place(&nodes, Some(1));

        assert_eq!(placed.len(), 4);
        assert_eq!(placed[&4], at(Some(2), 0.0));
        assert_eq!(placed[&3], at(Some(1), 1.0));
    }

    #[test]
    fn a_reported_cycle_ends() {
        let nodes = BTreeMap::from([(1, live(&[2], false)), (2, live(&[1], true))]);

        let placed = place(&nodes, Some(1));

        assert_eq!(placed[&1], at(Some(0), 0.0));
        assert_eq!(placed[&2], at(Some(1), 0.0));
    }

    #[test]
    fn a_lone_leader_is_a_root_and_a_lone_follower_is_outside() {
        let nodes = BTreeMap::from([(1, live(&[], false)), (2, live(&[], false))]);

        let placed = place(&nodes, Some(1));

        assert_eq!(placed[&1], at(Some(0), 0.0));
        assert_eq!(placed[&2], at(None, 0.0));
    }
}
