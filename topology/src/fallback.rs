//! Repair without the bootstrap: a node short of live neighbours links to its live neighbours'
//! neighbours, from the neighbour lists it last fetched.
//!
//! Two hops away is the closest a node can find others without asking anyone, and those nodes were
//! reachable through a neighbour that is still alive, so they are likely alive too; the handshake
//! tells. The other end accepts the edge because the node that asks is in its own copy of the
//! lists (a cluster member; only members can seal frames). When the bootstrap is back, it does not
//! know these edges; they last until the nodes restart.

use std::collections::{BTreeMap, BTreeSet};

/// Up to `need` nodes for `me` to link to: neighbours of its live neighbours that are not `me` nor
/// already its neighbours, those reachable through the most live neighbours first, then the
/// smallest id. `lists` holds every node's neighbours as last fetched.
pub fn fallback_candidates<Id: Ord + Copy>(
    me: Id,
    live_neighbours: &BTreeSet<Id>,
    lists: &BTreeMap<Id, BTreeSet<Id>>,
    need: usize,
) -> Vec<Id> {
    let mine = lists.get(&me);
    let mut through: BTreeMap<Id, usize> = BTreeMap::new();
    for neighbour in live_neighbours {
        for &other in lists.get(neighbour).into_iter().flatten() {
            let known = other == me
                || live_neighbours.contains(&other)
                || mine.is_some_and(|mine| mine.contains(&other));
            if !known {
                *through.entry(other).or_default() += 1;
            }
        }
    }
    let mut ranked: Vec<(std::cmp::Reverse<usize>, Id)> = through
        .into_iter()
        .map(|(id, count)| (std::cmp::Reverse(count), id))
        .collect();
    ranked.sort_unstable();
    ranked.into_iter().take(need).map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_of_live_neighbours_most_shared_first() {
        let lists = BTreeMap::from([
            (1, BTreeSet::from([2, 3, 9])),
            (2, BTreeSet::from([1, 4, 5])),
            (3, BTreeSet::from([1, 5, 6])),
            (9, BTreeSet::from([1, 7])),
        ]);
        // 9 is dead: its neighbour 7 is not offered. 5 is reachable through both 2 and 3.
        let live = BTreeSet::from([2, 3]);
        assert_eq!(fallback_candidates(1, &live, &lists, 2), vec![5, 4]);
        assert_eq!(fallback_candidates(1, &live, &lists, 9), vec![5, 4, 6]);
        assert!(fallback_candidates(1, &BTreeSet::new(), &lists, 3).is_empty());
    }
}
