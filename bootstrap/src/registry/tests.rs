//! The exact graph for small sequences, repairs, and properties over random registration orders with
//! repeats.

use std::collections::{BTreeSet, HashMap, VecDeque};

use proptest::prelude::*;
use proptest::sample::{Index, subsequence};

use super::*;
use crate::address::Port;

pub(crate) fn address(id: u64, control_port: u16) -> NodeAddress {
    let port = |raw: u16| Port::parse("port", raw.into()).expect("test ports are non-zero");
    NodeAddress {
        id: NodeId::parse(id).expect("test ids are non-zero"),
        host: format!("host-{id}"),
        control_port: port(control_port),
        data_port: port(50_000),
        admin_port: port(50_001),
        http_port: port(50_002),
    }
}

fn ids(addresses: &[NodeAddress]) -> Vec<u64> {
    addresses.iter().map(|a| a.id.get()).collect()
}

fn adjacency(registry: &Registry) -> Vec<(u64, Vec<u64>)> {
    registry
        .entries()
        .iter()
        .map(|e| {
            let neighbors = e.neighbors.iter().map(|n| n.get()).collect();
            (e.address.id.get(), neighbors)
        })
        .collect()
}

/// Invariant: every registered node can reach every other one over the recorded edges.
fn assert_connected(registry: &Registry) {
    let entries = registry.entries();
    let Some(first) = entries.first() else { return };
    let by_id: HashMap<NodeId, &Entry> = entries.iter().map(|e| (e.address.id, e)).collect();
    let mut seen = BTreeSet::from([first.address.id]);
    let mut queue = VecDeque::from([first.address.id]);
    while let Some(id) = queue.pop_front() {
        for &neighbor in &by_id[&id].neighbors {
            if seen.insert(neighbor) {
                queue.push_back(neighbor);
            }
        }
    }
    assert_eq!(seen.len(), entries.len(), "the graph is not connected");
}

#[test]
fn the_first_eight_nodes_link_to_the_least_linked_earlier_nodes() {
    let mut registry = Registry::new(3);
    let answers: Vec<Vec<u64>> = (1..=8)
        .map(|id| ids(&registry.register(address(id, 46_000)).neighbors))
        .collect();

    assert_eq!(
        answers,
        vec![
            vec![],
            vec![1],
            vec![1, 2],
            vec![1, 2, 3],
            vec![1, 2, 3],
            vec![1, 4, 5],
            vec![2, 3, 6],
            vec![4, 5, 7],
        ]
    );
    assert_eq!(
        adjacency(&registry),
        vec![
            (1, vec![2, 3, 4, 5, 6]),
            (2, vec![1, 3, 4, 5, 7]),
            (3, vec![1, 2, 4, 5, 7]),
            (4, vec![1, 2, 3, 6, 8]),
            (5, vec![1, 2, 3, 6, 8]),
            (6, vec![1, 4, 5, 7]),
            (7, vec![2, 3, 6, 8]),
            (8, vec![4, 5, 7]),
        ]
    );
}

#[test]
fn a_repair_links_live_nodes_marks_the_edges_and_survives_a_snapshot() {
    let mut registry = Registry::new(3);
    for id in 1..=8 {
        registry.register(address(id, 46_000));
    }
    let id = |raw| NodeId::parse(raw).expect("non-zero");
    // 8's neighbours are 4, 5 and 7; 4 and 5 died, so it hears 7 alone.
    let dead = [id(4), id(5)];
    let repair = registry
        .repair(id(8), &BTreeSet::from([id(7)]), |node| {
            !dead.contains(&node)
        })
        .expect("8 is registered");

    assert_eq!(ids(&repair.added).len(), 2);
    assert!(ids(&repair.added).iter().all(|n| ![4, 5, 7, 8].contains(n)));
    let entries = registry.entries();
    let eight = entries
        .iter()
        .find(|e| e.address.id == id(8))
        .expect("listed");
    assert_eq!(
        eight.repaired.iter().map(|n| n.get()).collect::<Vec<_>>(),
        ids(&repair.added)
    );
    assert_eq!(eight.neighbors.len(), 5);
    let reloaded = Registry::from_snapshot(registry.snapshot(), 3).expect("own snapshot");
    assert_eq!(reloaded, registry);
    assert!(
        registry
            .repair(id(99), &BTreeSet::new(), |_| true)
            .is_none()
    );
}

#[test]
fn a_state_file_of_the_older_pattern_loads_with_its_edges() {
    let json = r#"{"cursor": 0, "nodes": [
        {"address": {"id": 1, "host": "h", "control_port": 1, "data_port": 2, "admin_port": 3, "http_port": 4}, "neighbors": [2]},
        {"address": {"id": 2, "host": "h", "control_port": 1, "data_port": 2, "admin_port": 3, "http_port": 4}, "neighbors": [1]}
    ]}"#;
    let snapshot: Snapshot = serde_json::from_str(json).expect("old snapshots parse");
    let mut registry = Registry::from_snapshot(snapshot, 3).expect("consistent");
    assert_eq!(adjacency(&registry), vec![(1, vec![2]), (2, vec![1])]);
    assert_eq!(
        ids(&registry.register(address(3, 46_000)).neighbors),
        vec![1, 2]
    );
}

#[test]
fn the_pattern_depends_on_registration_order_not_on_id_values() {
    let mut registry = Registry::new(3);
    for id in [50, 7, 300] {
        registry.register(address(id, 46_000));
    }
    assert_eq!(
        adjacency(&registry),
        vec![(50, vec![7, 300]), (7, vec![50, 300]), (300, vec![7, 50])]
    );
}

#[test]
fn a_single_node_has_no_neighbours() {
    let mut registry = Registry::new(3);
    let registration = registry.register(address(1, 46_000));
    assert_eq!(registration.change, Change::Added);
    assert!(registration.neighbors.is_empty());
}

#[test]
fn re_registering_updates_the_address_and_keeps_the_neighbours() {
    let mut registry = Registry::new(3);
    for id in 1..=4 {
        registry.register(address(id, 46_000));
    }
    let before = adjacency(&registry);

    let again = registry.register(address(2, 47_000));

    assert_eq!(again.change, Change::AddressUpdated);
    assert_eq!(ids(&again.neighbors), vec![1, 3, 4]);
    assert_eq!(registry.entries()[1].address, address(2, 47_000));
    assert_eq!(
        adjacency(&registry),
        before,
        "re-registration must not move edges"
    );
}

#[test]
fn re_registering_the_same_address_changes_nothing() {
    let mut registry = Registry::new(3);
    registry.register(address(1, 46_000));
    registry.register(address(2, 46_000));
    let before = registry.clone();

    let again = registry.register(address(1, 46_000));

    assert_eq!(again.change, Change::Unchanged);
    assert_eq!(registry, before);
}

#[test]
fn neighbours_see_the_updated_address_of_a_node_that_re_registered() {
    let mut registry = Registry::new(3);
    registry.register(address(1, 46_000));
    registry.register(address(2, 46_000));
    registry.register(address(1, 48_000));

    let seen_by_two = registry.register(address(2, 46_000)).neighbors;

    assert_eq!(seen_by_two, vec![address(1, 48_000)]);
}

#[test]
fn a_reloaded_registry_continues_exactly() {
    let mut original = Registry::new(3);
    for id in 1..=6 {
        original.register(address(id, 46_000));
    }
    let mut reloaded =
        Registry::from_snapshot(original.snapshot(), 3).expect("own snapshot is valid");

    for id in 7..=12 {
        assert_eq!(
            reloaded.register(address(id, 46_000)),
            original.register(address(id, 46_000))
        );
    }
    assert_eq!(reloaded, original);
}

#[test]
fn a_snapshot_with_a_one_sided_edge_is_refused() {
    let mut registry = Registry::new(3);
    registry.register(address(1, 46_000));
    registry.register(address(2, 46_000));
    let mut snapshot = registry.snapshot();
    snapshot.nodes[0].neighbors.clear();

    assert_eq!(
        Registry::from_snapshot(snapshot, 3),
        Err(SnapshotError::AsymmetricEdge {
            node: NodeId::parse(2).expect("non-zero"),
            neighbor: NodeId::parse(1).expect("non-zero"),
        })
    );
}

#[test]
fn a_snapshot_with_a_duplicate_id_an_unknown_neighbour_or_a_self_loop_is_refused() {
    let one = NodeId::parse(1).expect("non-zero");
    let nine = NodeId::parse(9).expect("non-zero");
    let entry = |neighbors: &[NodeId]| Entry {
        address: address(1, 46_000),
        neighbors: neighbors.iter().copied().collect(),
        repaired: BTreeSet::new(),
    };
    let snapshot = |nodes| Snapshot { nodes };

    assert_eq!(
        Registry::from_snapshot(snapshot(vec![entry(&[]), entry(&[])]), 3),
        Err(SnapshotError::DuplicateId(one))
    );
    assert_eq!(
        Registry::from_snapshot(snapshot(vec![entry(&[nine])]), 3),
        Err(SnapshotError::UnknownNeighbor {
            node: one,
            neighbor: nine
        })
    );
    assert_eq!(
        Registry::from_snapshot(snapshot(vec![entry(&[one])]), 3),
        Err(SnapshotError::SelfLoop(one))
    );
    let mut repaired_stranger = entry(&[]);
    repaired_stranger.repaired.insert(nine);
    assert_eq!(
        Registry::from_snapshot(snapshot(vec![repaired_stranger]), 3),
        Err(SnapshotError::RepairedNotNeighbor {
            node: one,
            neighbor: nine
        })
    );
}

/// One step of a generated scenario.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// A node registers for the first time.
    New(u64),
    /// A known node registers again, from a new control port.
    Again { id: u64, control_port: u16 },
}

/// Between 1 and 199 distinct ids in random order, with re-registrations of already registered nodes
/// sprinkled in between.
pub(crate) fn scenario() -> impl Strategy<Value = Vec<Step>> {
    (1usize..200)
        .prop_flat_map(|n| {
            let pool: Vec<u64> = (1..=1_000).collect();
            (
                subsequence(pool, n).prop_shuffle(),
                proptest::collection::vec((any::<bool>(), any::<Index>(), 1u16..), n),
            )
        })
        .prop_map(|(ids, choices)| {
            let mut fresh = ids.into_iter();
            let mut registered = Vec::new();
            let mut steps = Vec::new();
            for (repeat, which, control_port) in choices {
                if repeat && !registered.is_empty() {
                    let id = registered[which.index(registered.len())];
                    steps.push(Step::Again { id, control_port });
                } else if let Some(id) = fresh.next() {
                    registered.push(id);
                    steps.push(Step::New(id));
                }
            }
            steps.extend(fresh.map(Step::New));
            steps
        })
}

/// Runs a scenario, applying it to a registry.
pub(crate) fn replay(steps: &[Step]) -> Registry {
    let mut registry = Registry::new(3);
    for step in steps {
        match *step {
            Step::New(id) => registry.register(address(id, 46_000)),
            Step::Again { id, control_port } => registry.register(address(id, control_port)),
        };
    }
    registry
}

proptest! {
    #[test]
    fn every_registration_order_keeps_the_graph_connected_symmetric_and_stable(steps in scenario()) {
        let mut registry = Registry::new(3);
        // Per node: the step of its first registration, and its last answer with the step it was given.
        let mut first_seen: HashMap<u64, usize> = HashMap::new();
        let mut last_answer: HashMap<u64, (usize, BTreeSet<u64>)> = HashMap::new();

        for (step_number, step) in steps.iter().enumerate() {
            let (id, control_port) = match *step {
                Step::New(id) => (id, 46_000),
                Step::Again { id, control_port } => (id, control_port),
            };
            let existing = registry.entries().len();
            let registration = registry.register(address(id, control_port));
            let answer: BTreeSet<u64> = ids(&registration.neighbors).into_iter().collect();

            match step {
                Step::New(_) => {
                    prop_assert_eq!(registration.change, Change::Added);
                    let expected = existing.min(3);
                    prop_assert_eq!(answer.len(), expected);
                    prop_assert!(answer.iter().all(|n| first_seen.contains_key(n)));
                    first_seen.insert(id, step_number);
                }
                Step::Again { .. } => {
                    let (answered_at, before) = &last_answer[&id];
                    prop_assert!(answer.is_superset(before), "{id} lost neighbours");
                    for added in answer.difference(before) {
                        prop_assert!(first_seen[added] > *answered_at, "{id} gained old neighbour {added}");
                    }
                    let entries = registry.entries();
                    let stored = entries.iter().find(|e| e.address.id.get() == id);
                    prop_assert_eq!(stored.map(|e| e.address.control_port.get()), Some(control_port));
                }
            }
            last_answer.insert(id, (step_number, answer));

            assert_connected(&registry);
        }
        prop_assert_eq!(registry.entries().len(), first_seen.len());
        let reloaded = Registry::from_snapshot(registry.snapshot(), 3);
        prop_assert_eq!(reloaded, Ok(registry));
    }

    #[test]
    fn a_snapshot_reloads_to_an_equal_registry(steps in scenario()) {
        let registry = replay(&steps);
        let json = serde_json::to_string(&registry.snapshot()).expect("snapshot serialises");
        let decoded: Snapshot = serde_json::from_str(&json).expect("snapshot deserialises");
        prop_assert_eq!(Registry::from_snapshot(decoded, 3), Ok(registry));
    }
}
