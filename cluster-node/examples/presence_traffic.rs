//! What presence costs on the wire: the node's own relay state machines (`presence::relay`) on a tree of
//! `--nodes` nodes with `--users` connected users spread over the leaves (the input nodes), every update
//! encoded as the data plane sends it (`data::message::encode`), on simulated time. Users connect and
//! disconnect at random (`--churn` changes per second over the whole cluster); the nodes poll their
//! relays every 100 ms (the plane does on every change and every 500 ms). Prints bytes sent per node
//! per second (mean and the busiest node), with and without churn, and how long a change takes to
//! reach every node. The bytes count presence updates, heartbeats and whole-set requests.
//!
//! ```sh
//! cargo run --release -p cluster-node --example presence_traffic -- --nodes 16 --users 1000 --churn 10
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cluster_node::data::message::{DataMessage, encode};
use cluster_node::presence::relay::Relay;
use cluster_node::storage::UserId;
use overlay::{Millis, NodeId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const POLL_MS: u64 = 100;
/// One hop on loopback, as the data plane measures it, is well under this.
const HOP_MS: u64 = 1;

struct Args {
    nodes: u64,
    users: usize,
    churn: f64,
    seconds: u64,
}

fn args() -> Args {
    let mut parsed = Args {
        nodes: 16,
        users: 1000,
        churn: 10.0,
        seconds: 60,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let value = words.next().unwrap_or_default();
        match word.as_str() {
            "--nodes" => parsed.nodes = value.parse().expect("--nodes N"),
            "--users" => parsed.users = value.parse().expect("--users N"),
            "--churn" => parsed.churn = value.parse().expect("--churn CHANGES_PER_SECOND"),
            "--seconds" => parsed.seconds = value.parse().expect("--seconds S"),
            other => panic!("unknown argument {other}"),
        }
    }
    parsed
}

/// A tree where node `i` (from 2) hangs under node `i / 3` + 1 … a heap of fan-out 3 rooted at 1.
fn parent_of(node: u64) -> Option<u64> {
    (node > 1).then(|| (node - 2) / 3 + 1)
}

struct Sim {
    relays: BTreeMap<u64, Relay<UserId>>,
    children: BTreeMap<u64, Vec<u64>>,
    /// In flight: (arrival time, from, to, message).
    wire: VecDeque<(u64, u64, u64, DataMessage)>,
    bytes: BTreeMap<u64, u64>,
    messages: u64,
    now: u64,
}

impl Sim {
    fn new(nodes: u64) -> Self {
        let mut children: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for node in 1..=nodes {
            children.entry(node).or_default();
            if let Some(parent) = parent_of(node) {
                children.entry(parent).or_default().push(node);
            }
        }
        let mut relays = BTreeMap::new();
        for node in 1..=nodes {
            let mut relay = Relay::new(node * 1_000);
            relay.set_tree(
                parent_of(node).map(NodeId),
                children[&node].iter().copied().map(NodeId).collect(),
            );
            relays.insert(node, relay);
        }
        Sim {
            relays,
            children,
            wire: VecDeque::new(),
            bytes: BTreeMap::new(),
            messages: 0,
            now: 0,
        }
    }

    fn leaves(&self) -> Vec<u64> {
        self.children
            .iter()
            .filter(|(_, children)| children.is_empty())
            .map(|(node, _)| *node)
            .collect()
    }

    fn send(&mut self, from: u64, to: u64, message: DataMessage) {
        let size = encode(7, &message).len() as u64;
        *self.bytes.entry(from).or_default() += size;
        self.messages += 1;
        self.wire.push_back((self.now + HOP_MS, from, to, message));
    }

    /// Delivers what arrived by `now`, then polls every relay.
    fn step(&mut self) {
        while self.wire.front().is_some_and(|(at, ..)| *at <= self.now) {
            let (_, from, to, message) = self.wire.pop_front().expect("checked");
            let relay = self.relays.get_mut(&to).expect("a node");
            match message {
                DataMessage::Presence { users } => relay.from_child(NodeId(from), users),
                DataMessage::Online { users } => relay.from_parent(NodeId(from), users),
                DataMessage::PresenceResend => relay.resend_to(NodeId(from)),
                _ => {}
            }
        }
        let nodes: Vec<u64> = self.relays.keys().copied().collect();
        for node in nodes {
            let outputs = self
                .relays
                .get_mut(&node)
                .expect("a node")
                .poll(Millis(self.now));
            if let Some((parent, users)) = outputs.up {
                self.send(node, parent.0, DataMessage::Presence { users });
            }
            for neighbour in outputs.ask {
                self.send(node, neighbour.0, DataMessage::PresenceResend);
            }
            if let Some(users) = outputs.down {
                for child in self.children[&node].clone() {
                    self.send(
                        node,
                        child,
                        DataMessage::Online {
                            users: users.clone(),
                        },
                    );
                }
            }
        }
    }

    fn everyone_agrees(&self, expected: &BTreeSet<UserId>) -> bool {
        self.relays
            .values()
            .all(|relay| relay.online() == *expected)
    }
}

fn main() {
    let args = args();
    let mut rng = StdRng::seed_from_u64(42);
    let mut sim = Sim::new(args.nodes);
    let leaves = sim.leaves();
    let users: Vec<UserId> = (0..args.users).map(|_| UserId::random()).collect();
    let home: Vec<u64> = (0..args.users)
        .map(|_| leaves[rng.random_range(0..leaves.len())])
        .collect();
    let mut local: BTreeMap<u64, BTreeSet<UserId>> = BTreeMap::new();
    for (user, node) in users.iter().zip(&home) {
        local.entry(*node).or_default().insert(*user);
    }
    for (node, users) in &local {
        sim.relays
            .get_mut(node)
            .expect("a leaf")
            .set_local(users.clone());
    }
    let everyone: BTreeSet<UserId> = users.iter().copied().collect();

    // Everyone connects at once: how long until every node knows?
    let mut connected_at = None;
    for _ in 0..10_000 {
        sim.step();
        if sim.everyone_agrees(&everyone) {
            connected_at = Some(sim.now);
            break;
        }
        sim.now += HOP_MS;
    }
    println!(
        "{} nodes (fan-out 3, {} leaves serving users), {} users: every node knows all of them {} ms after they connect",
        args.nodes,
        leaves.len(),
        args.users,
        connected_at.map_or("never".to_owned(), |ms| ms.to_string())
    );

    let measure = |sim: &mut Sim,
                   rng: &mut StdRng,
                   churn: f64,
                   local: &mut BTreeMap<u64, BTreeSet<UserId>>| {
        sim.bytes.clear();
        sim.messages = 0;
        let start = sim.now;
        let mut changes = 0u64;
        let per_poll = churn * POLL_MS as f64 / 1000.0;
        let mut owed = 0.0;
        while sim.now < start + args.seconds * 1000 {
            owed += per_poll;
            while owed >= 1.0 {
                owed -= 1.0;
                let index = rng.random_range(0..users.len());
                let set = local.entry(home[index]).or_default();
                if !set.remove(&users[index]) {
                    set.insert(users[index]);
                }
                let set = set.clone();
                sim.relays
                    .get_mut(&home[index])
                    .expect("a leaf")
                    .set_local(set);
                changes += 1;
            }
            sim.now += POLL_MS;
            sim.step();
        }
        let seconds = args.seconds as f64;
        let per_node: Vec<f64> = (1..=args.nodes)
            .map(|node| *sim.bytes.get(&node).unwrap_or(&0) as f64 / seconds)
            .collect();
        let mean = per_node.iter().sum::<f64>() / per_node.len() as f64;
        let busiest = per_node.iter().cloned().fold(0.0, f64::max);
        (changes, mean, busiest, sim.messages as f64 / seconds)
    };

    for churn in [0.0, args.churn] {
        let (changes, mean, busiest, messages) = measure(&mut sim, &mut rng, churn, &mut local);
        println!(
            "churn {churn:>5.1}/s ({changes} changes in {} s): sent per node {:>8.0} B/s mean, {:>8.0} B/s busiest; {:.1} messages/s in all",
            args.seconds, mean, busiest, messages
        );
    }

    // One change after quiet: how long until every node agrees.
    let online: BTreeSet<UserId> = local.values().flatten().copied().collect();
    sim.now += 20_000;
    for _ in 0..200 {
        sim.step();
        sim.now += POLL_MS;
    }
    let leaf = leaves[leaves.len() - 1];
    let newcomer = UserId::random();
    let mut set = local.get(&leaf).cloned().unwrap_or_default();
    set.insert(newcomer);
    sim.relays.get_mut(&leaf).expect("a leaf").set_local(set);
    let mut expected = online;
    expected.insert(newcomer);
    let changed = sim.now;
    let mut reached = None;
    for _ in 0..1_000 {
        sim.step();
        if sim.everyone_agrees(&expected) {
            reached = Some(sim.now - changed);
            break;
        }
        sim.now += HOP_MS;
    }
    println!(
        "one connect after quiet reaches every node in {} ms of simulated time (hops of {HOP_MS} ms, no waiting on polls)",
        reached.map_or("never".to_owned(), |ms| ms.to_string())
    );
}
