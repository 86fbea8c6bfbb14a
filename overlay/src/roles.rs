//! Roles a node derives from its own place in the spanning tree, as one pure function.
//!
//! The rule (DESIGN §3, with the edge cases settled):
//!
//! | position                         | roles                    |
//! | -------------------------------- | ------------------------ |
//! | root with children               | writer                   |
//! | root alone                       | writer + input           |
//! | child of the root, not a leaf    | persistence              |
//! | child of the root, leaf          | persistence + input      |
//! | deeper, not a leaf               | forwarder                |
//! | deeper, leaf                     | input                    |
//! | not in a tree (no root, no parent) | none                   |
//!
//! Why every child of the root is a replica, leaf or not: it is the only rule that gives a star (a root
//! whose children are all leaves) a replica while staying *local* — a node needs nothing beyond its
//! own parent and child count, so there is no extra message and no window where two nodes disagree
//! about who "the lowest-id child" is. The writer replicates down the tree anyway, so its children are
//! the cheapest places to keep copies. Consequences, checked over every tree shape up to 7 nodes:
//! exactly one writer; at least one input (some leaf always exists, or the lone root); at least one
//! replica in every tree of two or more nodes.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A service a node runs because of where it sits in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The single node that accepts writes (the root).
    Writer,
    /// Keeps a read-only replica of the database.
    Persistence,
    /// Serves HTTP to users and registers with the nameserver.
    Input,
    /// Only relays data-plane traffic up and down the tree.
    Forwarder,
}

impl Role {
    /// The name `/status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Persistence => "persistence",
            Role::Input => "input",
            Role::Forwarder => "forwarder",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles of a node, from its position in the tree (see the module doc for the rule).
pub fn roles(
    is_root: bool,
    has_parent: bool,
    children_count: usize,
    parent_is_root: bool,
) -> BTreeSet<Role> {
    let is_leaf = children_count == 0;
    let mut roles = BTreeSet::new();
    if is_root {
        roles.insert(Role::Writer);
        if is_leaf {
            roles.insert(Role::Input);
        }
        return roles;
    }
    if !has_parent {
        return roles;
    }
    if parent_is_root {
        roles.insert(Role::Persistence);
    }
    if is_leaf {
        roles.insert(Role::Input);
    } else if !parent_is_root {
        roles.insert(Role::Forwarder);
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn set(roles: &[Role]) -> BTreeSet<Role> {
        roles.iter().copied().collect()
    }

    #[test]
    fn every_row_of_the_rule_table() {
        assert_eq!(roles(true, false, 3, false), set(&[Writer]));
        assert_eq!(roles(true, false, 0, false), set(&[Writer, Input]));
        assert_eq!(roles(false, true, 2, true), set(&[Persistence]));
        assert_eq!(roles(false, true, 0, true), set(&[Persistence, Input]));
        assert_eq!(roles(false, true, 1, false), set(&[Forwarder]));
        assert_eq!(roles(false, true, 0, false), set(&[Input]));
        assert_eq!(roles(false, false, 2, false), set(&[]));
    }

    /// Every rooted tree on `n` nodes, as parent arrays where node 0 is the root and every other node's
    /// parent has a smaller index. Each unlabelled tree shape has such a labelling (number the nodes in
    /// breadth-first order), so this covers all shapes.
    fn all_trees(n: usize) -> Vec<Vec<usize>> {
        let mut trees = vec![vec![usize::MAX]];
        for node in 1..n {
            trees = trees
                .into_iter()
                .flat_map(|tree| {
                    (0..node).map(move |parent| {
                        let mut next = tree.clone();
                        next.push(parent);
                        next
                    })
                })
                .collect();
        }
        trees
    }

    fn roles_of_tree(parents: &[usize]) -> Vec<BTreeSet<Role>> {
        (0..parents.len())
            .map(|node| {
                let children = parents.iter().filter(|&&p| p == node).count();
                let is_root = node == 0;
                roles(is_root, !is_root, children, !is_root && parents[node] == 0)
            })
            .collect()
    }

    #[test]
    fn every_tree_up_to_seven_nodes_gives_a_working_cluster() {
        let mut checked = 0;
        for n in 1..=7 {
            for tree in all_trees(n) {
                let assigned = roles_of_tree(&tree);
                let count = |role| assigned.iter().filter(|r| r.contains(&role)).count();
                assert_eq!(count(Writer), 1, "tree {tree:?}");
                assert!(count(Input) >= 1, "tree {tree:?}");
                if n >= 2 {
                    assert!(count(Persistence) >= 1, "tree {tree:?}");
                }
                assert!(assigned.iter().all(|r| !r.is_empty()), "tree {tree:?}");
                // Forwarders and writers are never inputs, and nobody is both writer and replica.
                for r in &assigned {
                    assert!(!(r.contains(&Forwarder) && r.contains(&Input)));
                    assert!(!(r.contains(&Writer) && r.contains(&Persistence)));
                }
                checked += 1;
            }
        }
        // 0! + 1! + … + 6! recursive trees.
        assert_eq!(checked, 1 + 1 + 2 + 6 + 24 + 120 + 720);
    }

    #[test]
    fn small_shapes_get_the_expected_roles() {
        // Lone node.
        assert_eq!(roles_of_tree(&[usize::MAX]), vec![set(&[Writer, Input])]);
        // Path root – a – b.
        assert_eq!(
            roles_of_tree(&[usize::MAX, 0, 1]),
            vec![set(&[Writer]), set(&[Persistence]), set(&[Input])]
        );
        // Star with three leaves.
        assert_eq!(
            roles_of_tree(&[usize::MAX, 0, 0, 0]),
            vec![
                set(&[Writer]),
                set(&[Persistence, Input]),
                set(&[Persistence, Input]),
                set(&[Persistence, Input])
            ]
        );
        // Path of four: the third node only forwards.
        assert_eq!(
            roles_of_tree(&[usize::MAX, 0, 1, 2]),
            vec![
                set(&[Writer]),
                set(&[Persistence]),
                set(&[Forwarder]),
                set(&[Input])
            ]
        );
    }
}
