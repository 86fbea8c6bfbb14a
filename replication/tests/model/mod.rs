//! The replication model both simulations run: nodes with logs of `(term, epoch, entry)`, the
//! writers of the trees that lead, and the invariants. A driver decides which trees exist (the
//! abstract simulation forms them itself, the joint one reads them off the real overlay) and what
//! fails; each writer then runs the crate's rules: the node's own [`Root`] state machine decides
//! when it claims a data term, promises it, starts and stops writing (its storage commands finish
//! some steps later, as the node runs them off its task), [`Acks`] which writes are acknowledged,
//! [`next_change`] the configuration changes. Copies get the writer's entries over lossy links, apply them in order, drop
//! a tail the writer never had by the crate's log check ([`judge`]; histories never merge), and
//! acknowledge durably only while they vote.
//!
//! [`Model::check`], after every step:
//! - at most one writer accepts writes, and every data term is taken once, by one writer;
//! - every acknowledged write is in the log of every writer that accepts writes later, at its epoch;
//! - any two logs that hold an entry of the same term at the same epoch agree up to there;
//! - at most one configuration change is in flight: a writer starts a change only once the
//!   configuration it replaces, and the first entry of its own term, are held by a majority of that
//!   configuration's voters (checked in ground truth when it starts it), and successive
//!   configurations in any log differ by one voter.
//!
//! [`Model::check_quiet`], at the end with faults stopped: when a majority of the voters is alive,
//! whole and in the writer's tree, the writer accepts, the configuration has
//! `min(R, reachable nodes)` voters, all reachable, and every node it reaches is whole again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use overlay::{Epoch, Millis, Term};
use rand::Rng;
use rand::rngs::StdRng;
use replication::catch_up::{CatchUp, Verdict, judge};
use replication::copy::{
    Applied, Command as CopyCommand, Incoming, Outcome, Place, Receipt, Replica,
};
use replication::root::{Command, Situation};
use replication::{
    Acceptance, Acks, Configuration, MembershipView, NodeId, ReplicationFactor, Root, TreeReport,
    next_change,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Write(u64),
    Configure(BTreeSet<NodeId>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub term: u64,
    pub body: Body,
}

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub alive: bool,
    /// `log[i]` is the entry at epoch `i + 1`.
    pub log: Vec<Entry>,
    /// Holds everything it ever acknowledged (false from losing its disk or discarding a diverged
    /// copy until it catches up with an accepting writer).
    pub whole: bool,
    /// Counts restarts: a writer's state dies with its process.
    pub incarnation: u64,
    /// The highest data term this node promised to a claiming root (on disk).
    pub promised: u64,
}

impl Node {
    /// A live node with an empty, whole disk.
    pub fn fresh() -> Self {
        Node {
            alive: true,
            whole: true,
            ..Node::default()
        }
    }

    /// The data position `(term, epoch)` the node reports and runs for election with.
    pub fn position(&self) -> (u64, u64) {
        (
            self.log.last().map_or(0, |entry| entry.term),
            self.log.len() as u64,
        )
    }

    pub fn configuration(&self) -> Option<Configuration> {
        configuration_of(&self.log)
    }

    /// The process restarts with its disk: what it wrote and promised stays.
    pub fn restart(&mut self) {
        self.alive = true;
        self.incarnation += 1;
    }

    /// The process restarts without its disk. (It must have been down: a disk lost and a process
    /// back before anyone noticed it was gone is beyond what any protocol that trusts
    /// acknowledgements can survive.)
    pub fn restart_without_disk(&mut self) {
        self.restart();
        self.log.clear();
        self.promised = 0;
        self.whole = false;
    }
}

pub fn configuration_of(log: &[Entry]) -> Option<Configuration> {
    log.iter()
        .enumerate()
        .rev()
        .find_map(|(i, entry)| match &entry.body {
            Body::Configure(voters) => {
                Some(Configuration::new(i as u64 + 1, voters.iter().copied()))
            }
            Body::Write(_) => None,
        })
}

/// The writer of one tree, while its root leads it.
#[derive(Debug, Clone)]
pub struct Writer {
    pub id: NodeId,
    pub incarnation: u64,
    /// The tree's (control) term, and the data term the root writes under (0: none taken yet).
    pub tree_term: u64,
    pub term: u64,
    pub members: BTreeSet<NodeId>,
    /// Every member has reported its data position to the root.
    pub all_reported: bool,
    /// The node's claim and acceptance (kept while the node stays a root, as the node keeps it).
    pub root: Root,
    /// Storage commands of `root` still running.
    pub storing: Vec<Command>,
    /// How much of its log the writer has sent down as commits (each entry goes once, as it is
    /// written; a copy that missed some catches up).
    pub sent: usize,
    pub term_start: Option<u64>,
    pub durable: BTreeMap<NodeId, u64>,
    pub progress: BTreeMap<NodeId, u64>,
    pub absent_since: BTreeMap<NodeId, u64>,
    /// Writes waiting for their acknowledgement: (write id, epoch).
    pub waiting: Vec<(u64, u64)>,
}

impl Writer {
    pub fn accepting(&self) -> bool {
        self.root.accepting()
    }
}

/// Entries per commit message and per catch-up answer (small, so catch-ups take several rounds).
const BATCH: usize = 8;

/// What reaches a copy from the writer in a step.
enum Input {
    Commits,
    Position,
    CatchUp(CatchUp),
}

pub struct Model {
    pub rng: StdRng,
    /// Each node's copy state while it keeps a copy, with the incarnation of its process.
    replicas: BTreeMap<NodeId, (u64, Replica)>,
    pub factor: ReplicationFactor,
    pub nodes: BTreeMap<NodeId, Node>,
    pub writers: Vec<Writer>,
    /// Every data term a writer took: a term is taken once, by one writer, ever.
    terms_taken: BTreeSet<u64>,
    next_write: u64,
    /// Acknowledged writes: id → epoch.
    pub acknowledged: BTreeMap<u64, u64>,
    pub step: u64,
    /// Probability that a replication message (a claim, a batch of entries) is lost.
    pub loss: f64,
    /// How many steps make the grace period after which an absent voter is replaced.
    pub grace_steps: u64,
    /// Set when a writer broke a rule at the moment it acted (checked with the invariants).
    violation: Option<String>,
    /// Clients write exactly once per step (the quiet phase), not a random number of times.
    pub steady: bool,
    /// How long a step lasts (the roots' state machines are given `now = step × step_ms`).
    pub step_ms: u64,
    /// Entries `(epoch, term)` that a majority of the voters of the configuration in force there
    /// held at some moment (ground truth; a later disk loss does not undo it).
    held_by_majority: BTreeSet<(u64, u64)>,
    /// Nodes the operator removed for good (they never come back); every writer is asked to remove
    /// them, as an operator repeats a removal until it is done.
    pub removed: BTreeSet<NodeId>,
}

const GRACE: Duration = Duration::from_secs(5);

impl Model {
    /// Nodes `1..=size`, all live with empty disks.
    pub fn new(rng: StdRng, size: u64, factor: ReplicationFactor, loss: f64) -> Self {
        Model {
            rng,
            replicas: BTreeMap::new(),
            factor,
            nodes: (1..=size).map(|id| (NodeId(id), Node::fresh())).collect(),
            writers: Vec::new(),
            terms_taken: BTreeSet::new(),
            next_write: 1,
            acknowledged: BTreeMap::new(),
            step: 0,
            loss,
            grace_steps: 5,
            violation: None,
            steady: false,
            step_ms: 100,
            held_by_majority: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    /// The writer of a tree that `root` now leads with `members` under control term `tree_term`.
    /// A node that was a root already keeps its state machine (as the node does across a tree
    /// change): one that accepted goes on accepting if the rules let it, under the term it claimed.
    pub fn writer_for(
        &self,
        root: NodeId,
        tree_term: u64,
        members: BTreeSet<NodeId>,
        all_reported: bool,
    ) -> Writer {
        let incarnation = self.nodes[&root].incarnation;
        let previous = self
            .writers
            .iter()
            .find(|w| w.id == root && w.incarnation == incarnation);
        let (state, storing, term, term_start, sent) = previous.map_or_else(
            || {
                let written = self.nodes[&root].log.len();
                (Root::new(root), Vec::new(), 0, None, written)
            },
            |w| {
                (
                    w.root.clone(),
                    w.storing.clone(),
                    w.term,
                    w.term_start,
                    w.sent,
                )
            },
        );
        Writer {
            id: root,
            incarnation,
            tree_term,
            term,
            members,
            all_reported,
            root: state,
            storing,
            sent,
            term_start,
            durable: BTreeMap::new(),
            progress: BTreeMap::new(),
            absent_since: BTreeMap::new(),
            waiting: Vec::new(),
        }
    }

    fn acks(&self, writer: &Writer) -> Acks {
        Acks {
            writer: Some(writer.id),
            configuration: self.nodes[&writer.id].configuration(),
            tree_copies: writer
                .members
                .iter()
                .copied()
                .filter(|m| *m != writer.id)
                .collect(),
            registered: self.nodes.len(),
            durable: writer.durable.clone(),
            fenced: !writer.accepting(),
        }
    }

    /// Every writer acts once on what its tree reports. Returns the roots that saw newer data in
    /// their tree: the node then calls an election (the runtime does it whatever the verdict).
    pub fn run_writers(&mut self) -> Vec<NodeId> {
        let mut calls = Vec::new();
        for index in 0..self.writers.len() {
            let mut writer = self.writers[index].clone();
            // A root keeps no copy state (the node drops it when it becomes the writer).
            self.replicas.remove(&writer.id);
            self.finish_storing(&mut writer);
            let own = self.nodes[&writer.id].position();
            let newer = writer
                .members
                .iter()
                .map(|m| self.nodes[m].position())
                .filter(|position| *position > own)
                .max()
                .map(|(term, epoch)| (Term(term), Epoch(epoch)));
            let promises: BTreeMap<NodeId, Term> = writer
                .members
                .iter()
                .map(|m| (*m, Term(self.nodes[m].promised)))
                .collect();
            let configuration = self.nodes[&writer.id].configuration();
            let situation = Situation {
                now: Millis(self.step * self.step_ms),
                tree_term: writer.tree_term,
                own: (Term(own.0), Epoch(own.1)),
                newer,
                promises: &promises,
                tree: TreeReport {
                    leads: true,
                    members: writer.members.clone(),
                    whole: writer
                        .members
                        .iter()
                        .copied()
                        .filter(|m| self.nodes[m].whole)
                        .collect(),
                    all_reported: writer.all_reported,
                    newer_data: false,
                    registered: self.nodes.len(),
                    promised: BTreeSet::new(),
                    claimants: BTreeSet::new(),
                },
                configuration: configuration.as_ref(),
            };
            for command in writer.root.evaluate(situation) {
                match command {
                    Command::CallElection { .. } => calls.push(writer.id),
                    Command::Promise(_) | Command::TakeTerm(_) => writer.storing.push(command),
                    Command::SendClaim(term) => self.send_claim(&writer, term),
                    Command::Start(term) => {
                        if !self.terms_taken.insert(term.0) {
                            self.violation = Some(format!(
                                "writer {} took data term {}, which was taken before",
                                writer.id, term.0
                            ));
                        }
                        writer.term = term.0;
                        writer.term_start = None;
                        // The first entry of a term restates the voters (or names the first ones).
                        let voters = match &configuration {
                            Some(configuration) => configuration.voters.clone(),
                            None => {
                                let mut children: Vec<NodeId> = writer
                                    .members
                                    .iter()
                                    .copied()
                                    .filter(|m| *m != writer.id)
                                    .collect();
                                children.sort();
                                children
                                    .into_iter()
                                    .take(self.factor.get() - 1)
                                    .chain([writer.id])
                                    .collect()
                            }
                        };
                        self.append(&mut writer, Body::Configure(voters));
                    }
                    Command::Stop(_) => writer.waiting.clear(),
                    Command::NoTermLeft { .. } => {
                        self.violation = Some(format!("writer {} found no data term", writer.id));
                    }
                }
            }
            if writer.root.verdict() == Acceptance::NewerData {
                // The root calls an election, which the node with the newest data wins.
                writer.members.clear();
            }
            if !writer.accepting() {
                self.writers[index] = writer;
                continue;
            }
            // Clients write.
            let writes = if self.steady {
                1
            } else {
                self.rng.random_range(0..3)
            };
            for _ in 0..writes {
                let id = self.next_write;
                self.next_write += 1;
                let epoch = self.append(&mut writer, Body::Write(id));
                writer.waiting.push((id, epoch));
            }
            self.replicate(&mut writer);
            self.acknowledge(&mut writer);
            self.change_configuration(&mut writer);
            self.writers[index] = writer;
        }
        calls
    }

    /// The root's storage commands finish, each in a step with probability one half (the node
    /// runs them off its task: other messages and decisions come in between).
    fn finish_storing(&mut self, writer: &mut Writer) {
        for command in std::mem::take(&mut writer.storing) {
            if self.rng.random_bool(0.5) {
                writer.storing.push(command);
                continue;
            }
            match command {
                Command::Promise(term) => {
                    let node = self.nodes.get_mut(&writer.id).unwrap();
                    node.promised = node.promised.max(term.0);
                    writer.root.promised(term, Ok(Term(node.promised)));
                }
                Command::TakeTerm(term) => writer.root.term_taken(term, true),
                _ => {}
            }
        }
    }

    /// The root's claim goes down its tree: each member that hears it (over lossy links) promises
    /// it on disk.
    fn send_claim(&mut self, writer: &Writer, term: Term) {
        for member in &writer.members {
            if *member == writer.id || self.rng.random_bool(self.loss) {
                continue;
            }
            let node = self.nodes.get_mut(member).unwrap();
            node.promised = node.promised.max(term.0);
        }
    }

    fn append(&mut self, writer: &mut Writer, body: Body) -> u64 {
        let node = self.nodes.get_mut(&writer.id).unwrap();
        node.log.push(Entry {
            term: writer.term,
            body,
        });
        let epoch = node.log.len() as u64;
        if writer.term_start.is_none() {
            writer.term_start = Some(epoch);
        }
        epoch
    }

    /// The writer's entries reach each copy of its tree (or are lost on the way), and each copy's
    /// own state machine ([`Replica`], the node's) decides what it applies, acknowledges and asks
    /// for: commits (taken only once the writer confirmed the copy's log), the writer's position,
    /// catch-up requests and answers (judged by the crate's log check), a learner's progress. All of
    /// a step's messages between the writer and one copy arrive in that step, or none of them.
    fn replicate(&mut self, writer: &mut Writer) {
        let now = Millis(self.step * self.step_ms);
        let place = Place {
            parent: Some(writer.id),
            leader: Some(writer.id),
        };
        let log = self.nodes[&writer.id].log.clone();
        for member in writer.members.clone() {
            if member == writer.id {
                continue;
            }
            let incarnation = self.nodes[&member].incarnation;
            // A copy's state lives as long as its process, and starts again under another writer
            // once it was confirmed by one (the node re-checks its log with the new one).
            let mut replica = match self.replicas.remove(&member) {
                Some((held, replica))
                    if held == incarnation
                        && replica.verified_by().is_none_or(|by| by == writer.id) =>
                {
                    replica
                }
                _ => self.new_replica(member),
            };
            if !self.rng.random_bool(self.loss) {
                let mut inputs = VecDeque::from([Input::Commits, Input::Position]);
                // A copy asks again at once after a full answer, and the answers come at message
                // speed: a whole catch-up fits in a step (the bound only stops a runaway).
                for _ in 0..256 {
                    let Some(input) = inputs.pop_front() else {
                        break;
                    };
                    let commands = match input {
                        Input::Commits => {
                            let sent = writer.sent.min(log.len());
                            if sent == log.len() {
                                continue;
                            }
                            let entries = &log[sent..];
                            self.deliver(
                                &mut replica,
                                member,
                                place,
                                now,
                                sent as u64 + 1,
                                entries,
                                false,
                            )
                        }
                        Input::Position => replica
                            .writer_at(now, place, Epoch(log.len() as u64))
                            .into_iter()
                            .collect(),
                        Input::CatchUp(request) => {
                            let term_at_check = request
                                .to_check()
                                .and_then(|last| log.get(last.0 as usize - 1))
                                .map(|entry| Term(entry.term));
                            match judge(request, Epoch(log.len() as u64), term_at_check) {
                                Verdict::Send { from } => {
                                    let first = from.0 as usize - 1;
                                    let upto = (first + BATCH).min(log.len());
                                    let entries = &log[first.min(upto)..upto];
                                    self.deliver(
                                        &mut replica,
                                        member,
                                        place,
                                        now,
                                        from.0,
                                        entries,
                                        true,
                                    )
                                }
                                // The copy holds a tail the writer never had: it starts again from
                                // nothing (the node deletes its database, promise included).
                                Verdict::Diverged => vec![CopyCommand::Discard],
                                Verdict::Invalid => Vec::new(),
                            }
                        }
                    };
                    for command in commands {
                        match command {
                            CopyCommand::Ack { epoch, durable, .. } => {
                                writer.progress.insert(member, epoch.0);
                                // Every report replaces the last: a copy that lost its disk, or
                                // no longer votes, must not keep counting for what it once held.
                                if durable {
                                    writer.durable.insert(member, epoch.0);
                                } else {
                                    writer.durable.remove(&member);
                                }
                            }
                            CopyCommand::CatchUp { request, .. } => {
                                inputs.push_back(Input::CatchUp(request))
                            }
                            CopyCommand::CaughtUp => {
                                self.nodes.get_mut(&member).unwrap().whole = true
                            }
                            CopyCommand::Discard => {
                                let node = self.nodes.get_mut(&member).unwrap();
                                node.log.clear();
                                node.whole = false;
                                node.promised = 0;
                                replica = self.new_replica(member);
                                inputs.clear();
                                if let Some(CopyCommand::CatchUp { request, .. }) =
                                    replica.ask(now, place)
                                {
                                    inputs.push_back(Input::CatchUp(request));
                                }
                            }
                            CopyCommand::Position(_) | CopyCommand::Configuration(_) => {}
                        }
                    }
                }
                if let Some(CopyCommand::Ack { epoch, .. }) = replica.report_progress(place) {
                    writer.progress.insert(member, epoch.0);
                    writer.durable.remove(&member);
                }
            }
            self.replicas.insert(member, (incarnation, replica));
        }
        writer.sent = log.len();
    }

    /// The copy state a node starts with over what its disk holds.
    fn new_replica(&self, member: NodeId) -> Replica {
        let log = &self.nodes[&member].log;
        Replica::new(
            member,
            Epoch(log.len() as u64),
            Term(log.last().map_or(0, |entry| entry.term)),
            configuration_of(log),
        )
    }

    /// Entries from `first` on reach `member`: its machine decides, and what it takes is applied to
    /// its log in one transaction (entries it holds already are skipped, as the store does).
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        replica: &mut Replica,
        member: NodeId,
        place: Place,
        now: Millis,
        first: u64,
        entries: &[Entry],
        confirmed: bool,
    ) -> Vec<CopyCommand> {
        let configuration =
            entries
                .iter()
                .enumerate()
                .rev()
                .find_map(|(i, entry)| match &entry.body {
                    Body::Configure(voters) => {
                        Some(Configuration::new(first + i as u64, voters.iter().copied()))
                    }
                    Body::Write(_) => None,
                });
        let incoming = Incoming {
            from: place.parent.unwrap(),
            last: (!entries.is_empty()).then(|| Epoch(first + entries.len() as u64 - 1)),
            configuration,
            confirmed,
        };
        let durable = match replica.receive(place, &incoming) {
            Receipt::Apply { durable } => durable,
            Receipt::Level => {
                self.nodes.get_mut(&member).unwrap().whole = true;
                return Vec::new();
            }
            Receipt::Ignore => return Vec::new(),
        };
        let node = self.nodes.get_mut(&member).unwrap();
        let position = node.position();
        let held = node.log.len() as u64;
        let outcome = if first > held + 1 {
            Outcome::Gap
        } else {
            let skip = (held + 1 - first) as usize;
            node.log
                .extend_from_slice(&entries[skip.min(entries.len())..]);
            let reached = node.log.len() as u64;
            let applied: Vec<(u64, &Entry)> = (first..)
                .zip(entries)
                .filter(|(epoch, _)| *epoch <= reached)
                .collect();
            let more = confirmed && entries.len() == BATCH;
            Outcome::Applied(Applied {
                epoch: Epoch(reached),
                term: applied
                    .iter()
                    .rfind(|(epoch, _)| *epoch == reached)
                    .map(|(_, entry)| Term(entry.term)),
                newest_term: applied.iter().map(|(_, entry)| Term(entry.term)).max(),
                configuration: applied
                    .iter()
                    .rev()
                    .find_map(|(epoch, entry)| match &entry.body {
                        Body::Configure(voters) => {
                            Some(Configuration::new(*epoch, voters.iter().copied()))
                        }
                        Body::Write(_) => None,
                    }),
                durable,
                more,
                reached_writer: confirmed && !more,
            })
        };
        replica.applied_outcome(now, place, (Term(position.0), Epoch(position.1)), outcome)
    }

    fn acknowledge(&mut self, writer: &mut Writer) {
        let acks = self.acks(writer);
        let written = self.nodes[&writer.id].log.len() as u64;
        let acknowledged = acks.acknowledged(written);
        let (done, waiting): (Vec<_>, Vec<_>) = writer
            .waiting
            .drain(..)
            .partition(|(_, epoch)| *epoch <= acknowledged);
        writer.waiting = waiting;
        for (id, epoch) in done {
            self.acknowledged.insert(id, epoch);
        }
    }

    fn change_configuration(&mut self, writer: &mut Writer) {
        let Some(configuration) = self.nodes[&writer.id].configuration() else {
            return;
        };
        for voter in &configuration.voters {
            if writer.members.contains(voter) {
                writer.absent_since.remove(voter);
            } else {
                writer.absent_since.entry(*voter).or_insert(self.step);
            }
        }
        let acks = self.acks(writer);
        let written = self.nodes[&writer.id].log.len() as u64;
        let grace_steps = self.grace_steps;
        let absent_for: BTreeMap<NodeId, Duration> = writer
            .absent_since
            .iter()
            .map(|(voter, since)| {
                let steps = self.step - since;
                (*voter, GRACE * (steps as u32) / (grace_steps as u32))
            })
            .collect();
        let children: Vec<NodeId> = writer
            .members
            .iter()
            .copied()
            .filter(|m| *m != writer.id)
            .collect();
        let change = next_change(&MembershipView {
            writer: writer.id,
            factor: self.factor,
            configuration: &configuration,
            acknowledged: acks.acknowledged(written),
            term_start: writer.term_start,
            written,
            tree: &writer.members,
            children: &children,
            progress: &writer.progress,
            absent_for: &absent_for,
            grace: GRACE,
            removing: &self.removed,
        });
        if let Some(change) = change {
            // Ground truth, whatever the writer believes: the configuration being replaced and the
            // first entry of this writer's term have been held by a majority of their
            // configuration (a disk lost since does not undo that).
            self.note_majorities();
            let log = &self.nodes[&writer.id].log;
            for epoch in [configuration.epoch, writer.term_start.unwrap_or(0)] {
                let entry = &log[epoch as usize - 1];
                if !self.held_by_majority.contains(&(epoch, entry.term)) {
                    let holding: Vec<String> = configuration
                        .voters
                        .iter()
                        .map(|v| {
                            let n = &self.nodes[v];
                            format!(
                                "{v}: alive {} whole {} len {} at {:?}",
                                n.alive,
                                n.whole,
                                n.log.len(),
                                n.log.get(epoch as usize - 1).map(|e| e.term)
                            )
                        })
                        .collect();
                    self.violation = Some(format!(
                        "writer {} (term {}) changes {configuration} by {change:?} before epoch {epoch} (term {}) is on a majority of it; durable {:?}; {}",
                        writer.id,
                        writer.term,
                        entry.term,
                        writer.durable,
                        holding.join("; ")
                    ));
                }
            }
            self.append(writer, Body::Configure(change.apply(&configuration)));
        }
    }

    /// Notes every entry of every log that a majority of its configuration's voters holds now.
    /// The nodes that are alive and, with `whole`, hold everything they acknowledged.
    pub fn alive(&self, whole: bool) -> BTreeSet<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.alive && (n.whole || !whole))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn note_majorities(&mut self) {
        let mut held = Vec::new();
        for node in self.nodes.values() {
            for (i, entry) in node.log.iter().enumerate() {
                let key = (i as u64 + 1, entry.term);
                if self.held_by_majority.contains(&key) {
                    continue;
                }
                let Some(configuration) = configuration_of(&node.log[..=i]) else {
                    continue;
                };
                let holders = |voter: NodeId| {
                    self.nodes
                        .get(&voter)
                        .is_some_and(|n| n.log.get(i) == Some(entry))
                };
                if configuration.is_majority(holders) {
                    held.push(key);
                }
            }
        }
        self.held_by_majority.extend(held);
    }

    pub fn check(&self) -> Result<(), String> {
        if let Some(violation) = &self.violation {
            return Err(violation.clone());
        }
        let accepting: Vec<&Writer> = self.writers.iter().filter(|w| w.accepting()).collect();
        if accepting.len() > 1 {
            let ids: Vec<u64> = accepting.iter().map(|w| w.id.0).collect();
            return Err(format!("two writers accept writes at once: {ids:?}"));
        }
        for writer in &accepting {
            let log = &self.nodes[&writer.id].log;
            for (id, epoch) in &self.acknowledged {
                let held = log.get(*epoch as usize - 1).map(|e| &e.body);
                if held != Some(&Body::Write(*id)) {
                    return Err(format!(
                        "acknowledged write {id} at epoch {epoch} is missing from the log of writer {}",
                        writer.id
                    ));
                }
            }
        }
        let logs: Vec<(NodeId, &Vec<Entry>)> = self
            .nodes
            .iter()
            .map(|(id, node)| (*id, &node.log))
            .collect();
        for (a, log_a) in &logs {
            let mut previous: Option<&BTreeSet<NodeId>> = None;
            for entry in log_a.iter() {
                if let Body::Configure(voters) = &entry.body {
                    if let Some(previous) = previous
                        && previous.symmetric_difference(voters).count() > 1
                    {
                        return Err(format!("node {a}: configuration {previous:?} → {voters:?}"));
                    }
                    previous = Some(voters);
                }
            }
            for (b, log_b) in &logs {
                if a >= b {
                    continue;
                }
                let common = log_a.len().min(log_b.len());
                if let Some(last_same) =
                    (0..common).rev().find(|i| log_a[*i].term == log_b[*i].term)
                    && log_a[..=last_same] != log_b[..=last_same]
                {
                    return Err(format!(
                        "nodes {a} and {b} hold the same term at epoch {} but differ before it",
                        last_same + 1
                    ));
                }
            }
        }
        Ok(())
    }

    /// The quiet check for the writer at `index`, once faults stopped and everything healed:
    /// `reachable` is the live nodes it can reach, `sound` the nodes that were alive and whole when
    /// the faults stopped (they hold everything they acknowledged; with fewer than a majority of the
    /// voters among them, writes rightly stay refused: more voters failed than the configuration
    /// tolerates). `Ok(false)` when nothing is to be checked for that reason; `Ok(true)` when the
    /// writer accepts with the voters it should have.
    pub fn check_quiet(
        &self,
        index: usize,
        reachable: &BTreeSet<NodeId>,
        sound: &BTreeSet<NodeId>,
    ) -> Result<bool, String> {
        let writer = &self.writers[index];
        let sound: BTreeSet<NodeId> = sound.intersection(reachable).copied().collect();
        let configuration = self.nodes[&writer.id].configuration();
        let majority_alive = configuration
            .as_ref()
            .is_some_and(|c| c.is_majority(|v| sound.contains(&v)));
        if !majority_alive {
            return Ok(false);
        }
        if !writer.accepting() {
            let nodes: Vec<String> = self
                .nodes
                .iter()
                .map(|(id, n)| {
                    format!(
                        "{id}: alive {} whole {} position {:?} voters {:?}",
                        n.alive,
                        n.whole,
                        n.position(),
                        n.configuration().map(|c| c.to_string())
                    )
                })
                .collect();
            return Err(format!(
                "quiet: writer {} does not accept writes; {}",
                writer.id,
                nodes.join("; ")
            ));
        }
        let voters = configuration.map(|c| c.voters).unwrap_or_default();
        // `R` voters, all live, once there are enough live nodes; with fewer, every live node votes
        // and the absent voters stay (a cluster keeps what it has until a replacement can join).
        let expected = self.factor.get().min(reachable.len());
        let live_voters = voters.iter().filter(|v| reachable.contains(v)).count();
        if live_voters != expected
            || (reachable.len() >= self.factor.get() && voters.len() != expected)
        {
            return Err(format!(
                "quiet: voters {voters:?}, expected {expected} live ones of {reachable:?}"
            ));
        }
        // Every copy the writer reaches catches up with it, and is then whole again (one that lost
        // its disk or discarded a diverged copy included).
        let behind: Vec<NodeId> = reachable
            .iter()
            .copied()
            .filter(|id| !self.nodes[id].whole)
            .collect();
        if !behind.is_empty() {
            let states: Vec<String> = behind
                .iter()
                .map(|id| {
                    format!(
                        "{id}: member {} log {} replica {:?}",
                        writer.members.contains(id),
                        self.nodes[id].log.len(),
                        self.replicas.get(id)
                    )
                })
                .collect();
            return Err(format!(
                "quiet: never whole again under writer {} (its log: {} entries): {}",
                writer.id,
                self.nodes[&writer.id].log.len(),
                states.join("; ")
            ));
        }
        Ok(true)
    }
}
