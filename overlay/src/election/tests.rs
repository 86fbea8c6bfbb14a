//! Exact outputs of the Yo-Yo state machine for given inputs, and whole elections on small graphs run
//! by a tiny harness that delivers messages in a seeded random order (optionally dropping some).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const ELECTION: ElectionId = ElectionId {
    term: Term(1),
    clock: LamportTime(10),
    initiator: NodeId(1),
};

fn id(n: u64) -> NodeId {
    NodeId(n)
}

fn value(n: u64) -> ElectionValue {
    ElectionValue::new(NodeId(n))
}

fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().map(|&n| NodeId(n)).collect()
}

fn start(n: u64) -> ElectionBody {
    ElectionBody::Start {
        election: ELECTION,
        value: value(n),
    }
}

fn yo(round: u32, n: u64) -> ElectionBody {
    ElectionBody::Yo {
        election: ELECTION,
        round,
        value: value(n),
    }
}

fn vote(round: u32, yes: bool, prune: bool) -> ElectionBody {
    ElectionBody::Vote {
        election: ELECTION,
        round,
        yes,
        prune,
    }
}

fn node(n: u64) -> Election {
    Election::new(id(n), Millis(150))
}

#[test]
fn a_node_without_neighbours_wins_at_once() {
    let mut election = node(1);
    let step = election.start(Millis(0), ELECTION, value(1), BTreeSet::new());
    assert_eq!(
        step,
        ElectionStep {
            messages: vec![],
            won: true
        }
    );
    assert_eq!(election.phase(), Some(Phase::Won));
    assert!(!election.is_running());
}

#[test]
fn start_is_sent_to_every_member() {
    let mut election = node(2);
    let step = election.start(Millis(0), ELECTION, value(2), set(&[1, 3]));
    assert_eq!(step.messages, vec![(id(1), start(2)), (id(3), start(2))]);
    assert_eq!(election.phase(), Some(Phase::Setup));
}

#[test]
fn two_nodes_the_stronger_source_sends_down_and_the_sink_prunes_itself() {
    let live = set(&[1, 2]);
    let mut a = node(1);
    let mut b = node(2);
    a.start(Millis(0), ELECTION, value(1), set(&[2]));
    b.start(Millis(0), ELECTION, value(2), set(&[1]));

    // A learns B is weaker: A is a source and sends its value down.
    let step = a.on_message(Millis(1), id(2), start(2), &live);
    assert_eq!(step.messages, vec![(id(2), yo(1, 1))]);
    assert_eq!(a.phase(), Some(Phase::YoUp));

    // B is a sink with one in-link: it votes YES and prunes itself.
    let step = b.on_message(Millis(1), id(1), start(1), &live);
    assert!(step.messages.is_empty());
    let step = b.on_message(Millis(2), id(1), yo(1, 1), &live);
    assert_eq!(step.messages, vec![(id(1), vote(1, true, true))]);
    assert_eq!(b.phase(), Some(Phase::Pruned));
    assert!(b.is_running(), "a pruned node still waits for the result");

    // A, alone, has won.
    let step = a.on_message(Millis(3), id(2), vote(1, true, true), &live);
    assert_eq!(
        step,
        ElectionStep {
            messages: vec![],
            won: true
        }
    );
}

#[test]
fn a_value_for_a_later_round_is_stashed_and_replayed() {
    let live = set(&[1]);
    let mut b = node(2);
    b.start(Millis(0), ELECTION, value(2), set(&[1]));
    // The YO- of round 1 overtakes A's START.
    let step = b.on_message(Millis(1), id(1), yo(1, 1), &live);
    assert!(step.messages.is_empty());
    assert_eq!(b.phase(), Some(Phase::Setup));
    let step = b.on_message(Millis(2), id(1), start(1), &live);
    assert_eq!(step.messages, vec![(id(1), vote(1, true, true))]);
    assert_eq!(b.phase(), Some(Phase::Pruned));
}

#[test]
fn messages_of_an_older_round_are_dropped() {
    // C (3) is between A (1) and E (5): in-link from A, out-link to E.
    let live = set(&[1, 5]);
    let mut c = node(3);
    c.start(Millis(0), ELECTION, value(3), set(&[1, 5]));
    c.on_message(Millis(1), id(1), start(1), &live);
    c.on_message(Millis(1), id(5), start(5), &live);
    c.on_message(Millis(2), id(1), yo(1, 1), &live);
    assert_eq!(c.phase(), Some(Phase::YoUp));
    let step = c.on_message(Millis(3), id(5), vote(1, true, false), &live);
    assert_eq!(step.messages, vec![(id(1), vote(1, true, false))]);
    assert_eq!((c.round(), c.phase()), (Some(2), Some(Phase::YoDown)));
    // A late duplicate of round 1 changes nothing.
    let step = c.on_message(Millis(4), id(1), yo(1, 1), &live);
    assert!(step.messages.is_empty());
    assert_eq!((c.round(), c.phase()), (Some(2), Some(Phase::YoDown)));
}

#[test]
fn a_sink_prunes_duplicate_links_with_a_yes_and_keeps_the_smallest_id() {
    // Sink 5 gets value 1 from both 3 and 4, and value 2 from 2 (weaker than 1).
    let live = set(&[2, 3, 4]);
    let mut sink = node(5);
    sink.start(Millis(0), ELECTION, value(5), set(&[2, 3, 4]));
    for n in [2, 3, 4] {
        sink.on_message(Millis(1), id(n), start(n), &live);
    }
    sink.on_message(Millis(2), id(2), yo(1, 2), &live);
    sink.on_message(Millis(2), id(3), yo(1, 1), &live);
    let step = sink.on_message(Millis(2), id(4), yo(1, 1), &live);
    assert_eq!(
        step.messages,
        vec![
            (id(2), vote(1, false, false)),
            (id(3), vote(1, true, false)),
            (id(4), vote(1, true, true)),
        ]
    );
    // Two in-links left (2 flipped to out, 3 kept): not pruned, one more round.
    assert_eq!(sink.phase(), Some(Phase::YoDown));
    assert_eq!(sink.round(), Some(2));
}

#[test]
fn pruning_a_duplicate_link_with_a_no_would_create_a_new_source() {
    // Edges 2–3, 2–4, 3–5, 4–5, 1–5. Sources: 1 and 2. Node 5 sees 1 (from 1) and 2 twice (via 3, 4):
    // it keeps 3, prunes 4. Value 2 lost at 5, so a NO on 4's link would make 4 vote NO to 2, flip that
    // edge, and leave 4 with only out-links: a new source. With the YES, 4 is left with its one
    // in-link from 2 and no out-link, so it prunes itself with a YES instead.
    let live_4 = set(&[2, 5]);
    let mut four = node(4);
    four.start(Millis(0), ELECTION, value(4), set(&[2, 5]));
    four.on_message(Millis(1), id(2), start(2), &live_4);
    four.on_message(Millis(1), id(5), start(5), &live_4);
    let step = four.on_message(Millis(2), id(2), yo(1, 2), &live_4);
    assert_eq!(step.messages, vec![(id(5), yo(1, 2))]);

    let live_5 = set(&[1, 3, 4]);
    let mut five = node(5);
    five.start(Millis(0), ELECTION, value(5), set(&[1, 3, 4]));
    for n in [1, 3, 4] {
        five.on_message(Millis(1), id(n), start(n), &live_5);
    }
    five.on_message(Millis(2), id(1), yo(1, 1), &live_5);
    five.on_message(Millis(2), id(3), yo(1, 2), &live_5);
    let step = five.on_message(Millis(2), id(4), yo(1, 2), &live_5);
    assert_eq!(
        step.messages,
        vec![
            (id(1), vote(1, true, false)),
            (id(3), vote(1, false, false)),
            (id(4), vote(1, true, true)),
        ]
    );

    let step = four.on_message(Millis(3), id(5), vote(1, true, true), &live_4);
    assert_eq!(
        step.messages,
        vec![(id(2), vote(1, true, true))],
        "4 is left with one in-link and no out-link: it prunes itself with a YES"
    );
    assert_eq!(four.phase(), Some(Phase::Pruned));

    // And the whole election on that graph ends with exactly one winner: node 1.
    let graph = [(2, 3), (2, 4), (3, 5), (4, 5), (1, 5)];
    for seed in 0..200 {
        let outcome = run_election(&graph, &[1, 2, 3, 4, 5], seed, 0.0);
        assert_eq!(outcome.winners, vec![id(1)], "seed {seed}");
    }
}

#[test]
fn a_chain_of_ever_weaker_nodes_collapses_in_one_round() {
    let graph: Vec<(u64, u64)> = (1..10).map(|n| (n, n + 1)).collect();
    let outcome = run_election(&graph, &(1..=10).collect::<Vec<_>>(), 1, 0.0);
    assert_eq!(outcome.winners, vec![id(1)]);
    assert_eq!(outcome.max_round, 1);
    // Setup (2 per edge) + one YO- and one vote per edge.
    assert_eq!(outcome.messages, 4 * 9);
}

#[test]
fn start_from_a_non_member_is_declined_after_setup_and_declined_members_are_dropped() {
    let live = set(&[1, 3]);
    let mut b = node(2);
    b.start(Millis(0), ELECTION, value(2), set(&[1]));
    b.on_message(Millis(1), id(1), start(1), &live);
    assert_eq!(b.phase(), Some(Phase::YoDown));
    let step = b.on_message(Millis(2), id(3), start(3), &live);
    assert_eq!(
        step.messages,
        vec![(id(3), ElectionBody::Decline { election: ELECTION })]
    );

    let mut c = node(3);
    c.start(Millis(0), ELECTION, value(3), set(&[2, 4]));
    c.on_message(Millis(1), id(4), start(4), &set(&[2, 4]));
    let step = c.on_message(
        Millis(2),
        id(2),
        ElectionBody::Decline { election: ELECTION },
        &set(&[2, 4]),
    );
    // Without 2, node 3 is a source over 4 and starts round 1.
    assert_eq!(step.messages, vec![(id(4), yo(1, 3))]);
}

#[test]
fn start_from_a_new_neighbour_during_setup_makes_it_a_member() {
    let live = set(&[1, 3]);
    let mut b = node(2);
    b.start(Millis(0), ELECTION, value(2), set(&[1]));
    let step = b.on_message(Millis(1), id(3), start(3), &live);
    assert_eq!(step.messages, vec![(id(3), start(2))]);
    assert_eq!(b.members(), set(&[1, 3]));
}

#[test]
fn a_stalled_node_nudges_exactly_whom_it_waits_for_and_nudges_are_answered_from_the_log() {
    let live = set(&[1, 3]);
    let mut b = node(2);
    b.start(Millis(0), ELECTION, value(2), set(&[1, 3]));
    b.on_message(Millis(1), id(3), start(3), &live);
    assert!(b.on_tick(Millis(100)).messages.is_empty(), "not yet");
    assert_eq!(
        b.on_tick(Millis(151)).messages,
        vec![(
            id(1),
            ElectionBody::Nudge {
                election: ELECTION,
                round: 0
            }
        )]
    );
    assert!(
        b.on_tick(Millis(200)).messages.is_empty(),
        "one nudge per interval"
    );

    // 3 lost our START and nudges: we re-send it.
    let step = b.on_message(
        Millis(210),
        id(3),
        ElectionBody::Nudge {
            election: ELECTION,
            round: 0,
        },
        &live,
    );
    assert_eq!(step.messages, vec![(id(3), start(2))]);

    // Setup completes: 1 is stronger (in), 3 weaker (out). B waits for 1's value.
    b.on_message(Millis(220), id(1), start(1), &live);
    b.on_message(Millis(230), id(1), yo(1, 1), &live);
    // B sent YO-(1) to 3; 3 nudges round 1 because it never got it.
    let step = b.on_message(
        Millis(240),
        id(3),
        ElectionBody::Nudge {
            election: ELECTION,
            round: 1,
        },
        &live,
    );
    assert_eq!(step.messages, vec![(id(3), yo(1, 1))]);
    // B waits for 3's vote; after the interval it nudges 3 only.
    assert_eq!(
        b.on_tick(Millis(400)).messages,
        vec![(
            id(3),
            ElectionBody::Nudge {
                election: ELECTION,
                round: 1
            }
        )]
    );
}

#[test]
fn a_neighbour_going_off_matters_only_while_it_is_a_link() {
    let live = set(&[1, 3]);
    let mut b = node(2);
    b.start(Millis(0), ELECTION, value(2), set(&[1, 3]));
    assert!(b.on_neighbour_down(id(3)));
    assert!(!b.on_neighbour_down(id(9)));
    b.on_message(Millis(1), id(1), start(1), &live);
    b.on_message(Millis(1), id(3), start(3), &live);
    assert!(b.on_neighbour_down(id(1)));
    b.finish();
    assert!(!b.on_neighbour_down(id(1)));
    assert_eq!(b.phase(), Some(Phase::Done));
}

#[test]
fn a_stronger_election_id_has_a_higher_term_then_a_bigger_clock_then_a_smaller_initiator() {
    let base = ELECTION;
    let higher_term = ElectionId {
        term: Term(2),
        clock: LamportTime(1),
        initiator: NodeId(9),
    };
    let bigger_clock = ElectionId {
        clock: LamportTime(11),
        initiator: NodeId(9),
        ..base
    };
    let smaller_initiator = ElectionId {
        initiator: NodeId(0),
        ..base
    };
    assert!(higher_term > bigger_clock);
    assert!(bigger_clock > base);
    assert!(smaller_initiator > base);
}

#[test]
fn random_small_graphs_elect_exactly_the_strongest_node_despite_reordering_and_loss() {
    let mut rng = StdRng::seed_from_u64(7);
    for seed in 0..400u64 {
        let n = rng.random_range(1..=9u64);
        // A random spanning tree plus random extra edges.
        let mut graph = Vec::new();
        for k in 2..=n {
            graph.push((rng.random_range(1..k), k));
        }
        for _ in 0..rng.random_range(0..n + 1) {
            let (a, b) = (rng.random_range(1..=n), rng.random_range(1..=n));
            if a != b && !graph.contains(&(a, b)) && !graph.contains(&(b, a)) {
                graph.push((a, b));
            }
        }
        // Values are a random permutation of the ids, so the winner is not always node 1.
        let mut order: Vec<u64> = (1..=n).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let loss = if seed % 2 == 0 { 0.0 } else { 0.2 };
        let outcome = run_election(&graph, &order, seed, loss);
        let strongest = order.iter().position(|&v| v == 1).map(|i| i as u64 + 1);
        assert_eq!(
            outcome.winners,
            vec![id(strongest.unwrap())],
            "seed {seed} graph {graph:?} values {order:?}"
        );
    }
}

struct Outcome {
    winners: Vec<NodeId>,
    max_round: u32,
    messages: usize,
}

/// Runs one election among nodes 1..=n on `graph` (undirected edges). Node k's value is
/// `value(values[k-1])`. Messages are delivered in a seeded random order; with `loss` > 0 some are
/// dropped and nodes tick (nudge) whenever the queue runs dry.
fn run_election(graph: &[(u64, u64)], values: &[u64], seed: u64, loss: f64) -> Outcome {
    let n = values.len() as u64;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut neighbours: BTreeMap<NodeId, BTreeSet<NodeId>> =
        (1..=n).map(|k| (id(k), BTreeSet::new())).collect();
    for &(a, b) in graph {
        neighbours.entry(id(a)).or_default().insert(id(b));
        neighbours.entry(id(b)).or_default().insert(id(a));
    }
    let mut nodes: BTreeMap<NodeId, Election> = BTreeMap::new();
    let mut queue: VecDeque<(NodeId, NodeId, ElectionBody)> = VecDeque::new();
    let mut winners = Vec::new();
    let mut messages = 0;
    for k in 1..=n {
        let mut election = Election::new(id(k), Millis(150));
        let step = election.start(
            Millis(0),
            ELECTION,
            value(values[k as usize - 1]),
            neighbours[&id(k)].clone(),
        );
        if step.won {
            winners.push(id(k));
        }
        queue.extend(
            step.messages
                .into_iter()
                .map(|(to, body)| (id(k), to, body)),
        );
        nodes.insert(id(k), election);
    }
    let mut now = 0;
    for _ in 0..100_000 {
        if queue.is_empty() {
            if nodes
                .values()
                .all(|e| !matches!(e.phase(), Some(Phase::Setup | Phase::YoDown | Phase::YoUp)))
            {
                break;
            }
            now += 200;
            for (k, election) in nodes.iter_mut() {
                let step = election.on_tick(Millis(now));
                queue.extend(step.messages.into_iter().map(|(to, body)| (*k, to, body)));
            }
            continue;
        }
        let pick = rng.random_range(0..queue.len());
        let Some((from, to, body)) = queue.remove(pick) else {
            break;
        };
        messages += 1;
        if rng.random_bool(loss) {
            continue;
        }
        let live = neighbours[&to].clone();
        let Some(election) = nodes.get_mut(&to) else {
            continue;
        };
        let step = election.on_message(Millis(now), from, body, &live);
        if step.won {
            winners.push(to);
        }
        queue.extend(
            step.messages
                .into_iter()
                .map(|(next, body)| (to, next, body)),
        );
    }
    for (k, election) in &nodes {
        if !winners.contains(k) {
            assert_eq!(election.phase(), Some(Phase::Pruned), "node {k} not pruned");
        }
    }
    Outcome {
        winners,
        max_round: nodes.values().filter_map(|e| e.round()).max().unwrap_or(0),
        messages,
    }
}
