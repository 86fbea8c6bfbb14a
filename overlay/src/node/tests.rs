//! Exact outputs of the composed node: stamping, the first messages, events, and short exchanges
//! between two or three nodes driven by hand (the simulator covers whole clusters).

use std::collections::{BTreeMap, VecDeque};

use super::*;
use crate::election::ElectionBody;
use crate::message::{Scope, encode};

fn id(n: u64) -> NodeId {
    NodeId(n)
}

fn node(n: u64, neighbours: &[u64]) -> Overlay {
    Overlay::new(
        id(n),
        neighbours.iter().map(|&m| id(m)),
        Timing::default(),
        Millis(0),
    )
    .with_incarnation(1)
}

/// A lossless FIFO network between a few nodes, driven by hand.
struct Net {
    nodes: BTreeMap<NodeId, Overlay>,
    queue: VecDeque<(NodeId, NodeId, Envelope)>,
    events: Vec<(NodeId, Event)>,
}

impl Net {
    fn new(nodes: Vec<Overlay>) -> Net {
        Net {
            nodes: nodes.into_iter().map(|o| (o.id(), o)).collect(),
            queue: VecDeque::new(),
            events: Vec::new(),
        }
    }

    fn absorb(&mut self, from: NodeId, output: Output) {
        self.queue
            .extend(output.messages.into_iter().map(|(to, e)| (from, to, e)));
        self.events
            .extend(output.events.into_iter().map(|e| (from, e)));
    }

    fn tick(&mut self, now: u64) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for n in ids {
            let output = self.nodes.get_mut(&n).unwrap().on_tick(Millis(now));
            self.absorb(n, output);
        }
    }

    fn deliver_all(&mut self, now: u64) {
        while let Some((from, to, envelope)) = self.queue.pop_front() {
            if let Some(node) = self.nodes.get_mut(&to) {
                let output = node.on_message(Millis(now), from, envelope);
                self.absorb(to, output);
            }
        }
    }

    /// Ticks every `step` ms from `from` to `to`, delivering everything in between.
    fn run(&mut self, from: u64, to: u64, step: u64) {
        let mut now = from;
        while now <= to {
            self.tick(now);
            self.deliver_all(now);
            now += step;
        }
    }
}

#[test]
fn a_node_without_neighbours_elects_itself_on_its_first_tick() {
    let mut lone = node(7, &[]);
    let output = lone.on_tick(Millis(0));
    assert!(output.messages.is_empty());
    let election = ElectionId {
        term: Term(1),
        clock: LamportTime(0),
        initiator: id(7),
    };
    assert_eq!(
        output.events,
        vec![
            Event::ElectionStarted { election },
            Event::LeaderElected {
                leader: id(7),
                term: Term(1)
            },
            Event::RolesChanged {
                roles: vec![Role::Writer, Role::Input]
            },
            Event::TreeReady {
                leader: id(7),
                term: Term(1)
            },
        ]
    );
    assert!(lone.is_ready() && lone.is_root());
    assert_eq!(lone.leader(), Some(id(7)));
}

#[test]
fn the_first_tick_sends_a_join_to_every_neighbour_stamped_by_the_lamport_clock() {
    let mut a = node(1, &[2, 3]);
    let output = a.on_tick(Millis(0));
    let status = PeerStatus::default();
    assert_eq!(
        output.messages,
        vec![
            (
                id(2),
                Envelope::new(
                    id(1),
                    id(2),
                    LamportTime(1),
                    Body::Topology(TopologyBody::Join {
                        rejoin: false,
                        incarnation: 1,
                        status: status.clone()
                    })
                )
            ),
            (
                id(3),
                Envelope::new(
                    id(1),
                    id(3),
                    LamportTime(2),
                    Body::Topology(TopologyBody::Join {
                        rejoin: false,
                        incarnation: 1,
                        status
                    })
                )
            ),
        ]
    );
    assert_eq!(output.messages[0].1.header.scope, Scope::Topology);
    assert!(output.events.is_empty());
    assert_eq!(a.clock(), LamportTime(2));
}

#[test]
fn receiving_merges_the_senders_clock() {
    let mut a = node(1, &[2]);
    let heartbeat = Envelope::new(id(2), id(1), LamportTime(40), Body::Heartbeat);
    a.on_message(Millis(0), id(2), heartbeat);
    assert_eq!(a.clock(), LamportTime(41));
}

#[test]
fn two_nodes_handshake_elect_the_smaller_id_and_build_a_tree() {
    let mut net = Net::new(vec![node(1, &[2]), node(2, &[1])]);
    net.run(0, 400, 50);
    let (a, b) = (&net.nodes[&id(1)], &net.nodes[&id(2)]);
    assert_eq!((a.leader(), b.leader()), (Some(id(1)), Some(id(1))));
    assert!(a.is_root() && a.is_ready() && b.is_ready());
    assert_eq!(a.children(), vec![id(2)]);
    assert_eq!(b.parent(), Some(id(1)));
    assert_eq!(a.roles(), &[Role::Writer].into_iter().collect());
    assert_eq!(
        b.roles(),
        &[Role::Persistence, Role::Input].into_iter().collect()
    );
    assert_eq!(a.routes(), [(id(2), id(2))].into_iter().collect());
    assert!(
        net.events
            .contains(&(id(1), Event::NeighbourUp { neighbour: id(2) }))
    );
    assert!(net.events.contains(&(
        id(2),
        Event::TreeReady {
            leader: id(1),
            term: a.term()
        }
    )));
}

#[test]
fn a_neighbour_that_joins_an_established_tree_is_adopted_without_an_election() {
    let mut net = Net::new(vec![node(1, &[2]), node(2, &[1])]);
    net.run(0, 400, 50);
    let term = net.nodes[&id(1)].term();
    // Node 3 starts later; 2 learns of it from the bootstrap.
    net.nodes.insert(id(3), node(3, &[2]));
    let output = net
        .nodes
        .get_mut(&id(2))
        .unwrap()
        .add_neighbour(Millis(450), id(3));
    net.absorb(id(2), output);
    net.events.clear();
    net.run(450, 900, 50);
    let newcomer = &net.nodes[&id(3)];
    assert_eq!(newcomer.leader(), Some(id(1)));
    assert_eq!(newcomer.term(), term, "no new election");
    assert_eq!(newcomer.parent(), Some(id(2)));
    assert!(newcomer.is_ready());
    assert!(
        !net.events
            .iter()
            .any(|(_, e)| matches!(e, Event::ElectionStarted { .. }))
    );
    // Node 2 is the root's child and now has a child: a replica, no longer an input.
    assert_eq!(
        net.nodes[&id(2)].roles(),
        &[Role::Persistence].into_iter().collect()
    );
    assert_eq!(
        net.nodes[&id(1)].routes(),
        [(id(2), id(2)), (id(3), id(2))].into_iter().collect()
    );
}

#[test]
fn a_root_that_calls_an_election_hands_the_lead_to_the_node_with_newer_data() {
    let mut net = Net::new(vec![node(1, &[2, 3]), node(2, &[1, 3]), node(3, &[1, 2])]);
    net.run(0, 600, 50);
    let term = net.nodes[&id(1)].term();
    assert_eq!(net.nodes[&id(3)].leader(), Some(id(1)));
    // Node 3 turns out to hold more recent data than the leader (it joined with it, say).
    net.nodes
        .get_mut(&id(3))
        .unwrap()
        .set_election_value(Term(1), Epoch(9));
    // Only a root may call an election; a non-root asking changes nothing.
    let ignored = net
        .nodes
        .get_mut(&id(2))
        .unwrap()
        .call_election(Millis(650));
    assert!(ignored.messages.is_empty() && ignored.events.is_empty());
    let output = net
        .nodes
        .get_mut(&id(1))
        .unwrap()
        .call_election(Millis(650));
    net.absorb(id(1), output);
    net.run(650, 1500, 50);
    for n in 1..=3 {
        let node = &net.nodes[&id(n)];
        assert_eq!(node.leader(), Some(id(3)), "node {n}");
        assert!(node.term() > term, "a new, higher term on node {n}");
        assert!(node.is_ready());
    }
}

#[test]
fn heartbeats_go_out_when_nothing_else_did_and_silence_means_off() {
    let mut net = Net::new(vec![node(1, &[2]), node(2, &[1])]);
    net.run(0, 400, 50);
    // Everything quiet: the next tick past the interval carries only heartbeats and root ticks.
    let output = net.nodes.get_mut(&id(2)).unwrap().on_tick(Millis(1000));
    assert_eq!(output.messages.len(), 1);
    assert_eq!(output.messages[0].1.body, Body::Heartbeat);
    // Node 2 dies; node 1 notices after the failure timeout.
    net.nodes.remove(&id(2));
    net.queue.clear();
    let a = net.nodes.get_mut(&id(1)).unwrap();
    let mut events = Vec::new();
    for now in (450..=1200).step_by(50) {
        events.extend(a.on_tick(Millis(now)).events);
    }
    assert!(events.contains(&Event::NeighbourDown { neighbour: id(2) }));
    assert!(events.contains(&Event::ChildrenChanged { children: vec![] }));
    assert!(events.contains(&Event::RolesChanged {
        roles: vec![Role::Writer, Role::Input]
    }));
    // Heartbeats keep going to the OFF neighbour, so it notices us when it comes back.
    let output = a.on_tick(Millis(1500));
    assert!(
        output
            .messages
            .iter()
            .any(|(to, e)| *to == id(2) && e.body == Body::Heartbeat)
    );
}

#[test]
fn a_stall_of_this_node_is_not_taken_for_silence_of_its_neighbours() {
    let mut net = Net::new(vec![node(1, &[2]), node(2, &[1])]);
    net.run(0, 400, 50);
    // Node 1 is paused for five seconds: its first tick afterwards must not declare 2 down.
    let output = net.nodes.get_mut(&id(1)).unwrap().on_tick(Millis(5400));
    assert!(
        !output
            .events
            .contains(&Event::NeighbourDown { neighbour: id(2) })
    );
    assert!(net.nodes[&id(1)].is_ready());
}

#[test]
fn messages_with_a_forged_source_or_another_destination_are_dropped() {
    let mut a = node(1, &[2]);
    let before = a.clock();
    let forged = Envelope::new(id(3), id(1), LamportTime(50), Body::Heartbeat);
    assert_eq!(a.on_message(Millis(0), id(2), forged), Output::default());
    let misaddressed = Envelope::new(id(2), id(9), LamportTime(50), Body::Heartbeat);
    assert_eq!(
        a.on_message(Millis(0), id(2), misaddressed),
        Output::default()
    );
    assert_eq!(a.clock(), before);
}

#[test]
fn a_message_from_an_unknown_peer_is_reported_once() {
    let mut a = node(1, &[2]);
    let hello = |t| Envelope::new(id(5), id(1), LamportTime(t), Body::Heartbeat);
    let first = a.on_message(Millis(0), id(5), hello(1));
    assert_eq!(first.events, vec![Event::UnknownPeer { peer: id(5) }]);
    let second = a.on_message(Millis(1), id(5), hello(2));
    assert!(second.events.is_empty());
}

#[test]
fn undecodable_bytes_are_an_error_and_change_nothing() {
    let mut a = node(1, &[2]);
    assert!(a.on_bytes(Millis(0), id(2), b"{not json").is_err());
    assert_eq!(a.clock(), LamportTime(0));
    let bytes = encode(&Envelope::new(
        id(2),
        id(1),
        LamportTime(3),
        Body::Heartbeat,
    ));
    assert!(a.on_bytes(Millis(0), id(2), &bytes).is_ok());
    assert_eq!(a.clock(), LamportTime(4));
}

#[test]
fn election_messages_from_a_neighbour_that_is_not_joined_are_ignored() {
    let mut a = node(1, &[2]);
    let start = Envelope::new(
        id(2),
        id(1),
        LamportTime(5),
        Body::Election(ElectionBody::Start {
            election: ElectionId {
                term: Term(1),
                clock: LamportTime(4),
                initiator: id(2),
            },
            value: ElectionValue::new(id(2)),
        }),
    );
    let output = a.on_message(Millis(0), id(2), start);
    assert!(output.events.is_empty());
    assert!(a.running_election().is_none());
}

#[test]
fn a_node_with_more_recent_data_wins_over_a_smaller_id() {
    let mut one = node(1, &[2]);
    let mut two = node(2, &[1]);
    two.set_election_value(Term(3), Epoch(10));
    one.set_election_value(Term(3), Epoch(9));
    let mut net = Net::new(vec![one, two]);
    net.run(0, 400, 50);
    assert_eq!(net.nodes[&id(1)].leader(), Some(id(2)));
    assert!(net.nodes[&id(2)].is_root());
}

#[test]
fn the_leader_dying_makes_its_neighbours_elect_a_new_one_with_a_higher_term() {
    let mut net = Net::new(vec![node(1, &[2, 3]), node(2, &[1, 3]), node(3, &[1, 2])]);
    net.run(0, 400, 50);
    let old_term = net.nodes[&id(2)].term();
    assert_eq!(net.nodes[&id(2)].leader(), Some(id(1)));
    net.nodes.remove(&id(1));
    net.queue.clear();
    net.events.clear();
    net.run(450, 2500, 50);
    let (b, c) = (&net.nodes[&id(2)], &net.nodes[&id(3)]);
    assert_eq!((b.leader(), c.leader()), (Some(id(2)), Some(id(2))));
    assert!(b.term() > old_term);
    assert!(
        net.events.contains(&(
            id(2),
            Event::LeaderLost {
                leader: id(1),
                term: old_term
            }
        )) || net.events.contains(&(
            id(3),
            Event::LeaderLost {
                leader: id(1),
                term: old_term
            }
        ))
    );
}

#[test]
fn a_restarted_node_hearing_heartbeats_from_a_stranger_rejoins_and_is_adopted_without_an_election()
{
    let mut net = Net::new(vec![node(1, &[2]), node(2, &[1])]);
    net.run(0, 400, 50);
    let tree = net.nodes[&id(1)].tree_id();
    // Node 2 restarts without memory (a new incarnation) and, before its own JOIN backoff fires,
    // hears two heartbeats from 1, which still considers it joined.
    let mut fresh =
        Overlay::new(id(2), [id(1)], Timing::default(), Millis(500)).with_incarnation(2);
    fresh.on_tick(Millis(500));
    let heartbeat = |t| Envelope::new(id(1), id(2), LamportTime(t), Body::Heartbeat);
    assert!(
        fresh
            .on_message(Millis(510), id(1), heartbeat(900))
            .messages
            .is_empty()
    );
    let output = fresh.on_message(Millis(520), id(1), heartbeat(901));
    assert_eq!(output.messages.len(), 1);
    assert!(matches!(
        output.messages[0].1.body,
        Body::Topology(TopologyBody::Join {
            rejoin: true,
            incarnation: 2,
            ..
        })
    ));
    net.nodes.insert(id(2), fresh);
    net.queue.clear();
    net.absorb(id(2), output);
    net.events.clear();
    net.run(520, 1200, 50);
    assert_eq!(
        net.nodes[&id(2)].tree_id(),
        tree,
        "told the leader, not elected"
    );
    assert!(net.nodes[&id(2)].is_ready());
    assert!(
        !net.events
            .iter()
            .any(|(_, e)| matches!(e, Event::ElectionStarted { .. }))
    );
}

#[test]
fn a_removed_neighbour_that_died_gets_no_more_joins_or_heartbeats_and_a_live_one_stays() {
    let mut net = Net::new(vec![node(1, &[2, 3]), node(2, &[1]), node(3, &[1])]);
    net.run(0, 2_000, 50);
    assert!(net.nodes[&id(1)].live_neighbours().contains(&id(3)));
    // A live neighbour is not dropped: it still carries the tree's traffic.
    assert!(!net.nodes.get_mut(&id(1)).unwrap().remove_neighbour(id(3)));
    // Node 3 dies; once node 1 has noticed, the removal drops it.
    net.nodes.remove(&id(3));
    net.run(2_050, 8_000, 50);
    let one = net.nodes.get_mut(&id(1)).unwrap();
    assert!(!one.live_neighbours().contains(&id(3)));
    assert!(one.remove_neighbour(id(3)));
    assert!(!one.remove_neighbour(id(3)), "only once");
    assert_eq!(
        one.neighbours().iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![id(2)]
    );
    let later = one.on_tick(Millis(8_050));
    let later_more = one.on_tick(Millis(20_000));
    assert!(
        later
            .messages
            .iter()
            .chain(later_more.messages.iter())
            .all(|(to, _)| *to != id(3)),
        "nothing more goes to the removed node"
    );
}
