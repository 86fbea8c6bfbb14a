//! Fault-injection scenarios on a running cluster, shared by the failover tests and the soak.
//!
//! Trees differ from run to run, so a scenario never names its victims by id: it reads the tree's
//! [`Shape`] from every node's `/status`, and [`plan`] chooses victims by role (or explains why this
//! tree does not allow the scenario). [`run`] then drives one step while the workload writes:
//!
//! ```text
//!   workload ──warm-up──► FAULT ──► new writer? ──► tree of the rest ──hold──► HEAL / RESTART
//!                                                                                  │
//!   workload stops ◄──after── catch-up (every database at the writer's epoch) ◄── one tree again
//! ```
//!
//! and reports what it timed (printed, never asserted: timings belong to benchmarks) and the
//! problems it met (no writer within the bounded wait, no tree after healing, ...). The data itself is
//! judged afterwards by [`crate::checker`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::checker;
use crate::cluster::{Cluster, connected};
use crate::workload::{Workload, WorkloadConfig, WorkloadReport};

/// One kind of fault, with its recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Writes with nothing broken: the baseline every other scenario is compared with.
    NoFault,
    /// SIGKILL a replica (a child of the writer), then start it again.
    KillReplica,
    /// SIGKILL the writer during writes; start it again later: it rejoins without its lost tail.
    KillWriter,
    /// SIGKILL an interior forwarder (a node below a replica with children), then restart it.
    KillForwarder,
    /// SIGKILL an input node: its clients move on and the nameserver forgets it within its lease.
    KillInput,
    /// SIGSTOP the writer for longer than the leader timeout, then SIGCONT.
    PauseWriter,
    /// Cut the writer off from every other node (a minority of one), then heal.
    IsolateWriter,
    /// Split 2/3 with the writer on the 2-side, then heal.
    SplitWriterWithTwo,
    /// Split 2/3 with the writer on the 3-side, then heal.
    SplitWriterWithThree,
    /// Restart every node, one at a time, waiting for a healthy cluster in between.
    RollingRestart,
    /// SIGKILL every node, then start them all again on the same data.
    FullRestart,
    /// Kill a replica, delete its database, restart it: it must be given a full copy.
    WipeReplica,
    /// SIGKILL a voter and keep it down past the grace period: writes go on and a learner takes
    /// its place in the configuration; then start it again.
    ReplaceVoter,
    /// SIGKILL every voter but the writer (a majority of the voters): writes are refused, none is
    /// acknowledged; writes resume when one of them returns.
    KillVoterMajority,
    /// SIGKILL learners (copies outside the voter set): writes never stop.
    KillLearners,
    /// SIGKILL a voter, and the writer as soon as it has added the replacement (the change in
    /// flight), bring the voter back: the next writer continues from whatever configuration it holds.
    KillWriterMidChange,
}

impl Scenario {
    pub const ALL: [Scenario; 16] = [
        Scenario::NoFault,
        Scenario::KillReplica,
        Scenario::KillWriter,
        Scenario::KillForwarder,
        Scenario::KillInput,
        Scenario::PauseWriter,
        Scenario::IsolateWriter,
        Scenario::SplitWriterWithTwo,
        Scenario::SplitWriterWithThree,
        Scenario::RollingRestart,
        Scenario::FullRestart,
        Scenario::WipeReplica,
        Scenario::ReplaceVoter,
        Scenario::KillVoterMajority,
        Scenario::KillLearners,
        Scenario::KillWriterMidChange,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::NoFault => "no-fault",
            Scenario::KillReplica => "kill-replica",
            Scenario::KillWriter => "kill-writer",
            Scenario::KillForwarder => "kill-forwarder",
            Scenario::KillInput => "kill-input",
            Scenario::PauseWriter => "pause-writer",
            Scenario::IsolateWriter => "isolate-writer",
            Scenario::SplitWriterWithTwo => "split-writer-with-two",
            Scenario::SplitWriterWithThree => "split-writer-with-three",
            Scenario::RollingRestart => "rolling-restart",
            Scenario::FullRestart => "full-restart",
            Scenario::WipeReplica => "wipe-replica",
            Scenario::ReplaceVoter => "replace-voter",
            Scenario::KillVoterMajority => "kill-voter-majority",
            Scenario::KillLearners => "kill-learners",
            Scenario::KillWriterMidChange => "kill-writer-mid-change",
        }
    }
}

impl std::str::FromStr for Scenario {
    type Err = String;

    /// A scenario by its [`Scenario::name`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|scenario| scenario.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!("unknown scenario {name:?}; one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Voters the nodes keep (their configs leave `replication_factor` at its default).
pub const REPLICATION_FACTOR: usize = 3;

/// How long each phase of a step lasts, and the bounds of every wait.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Writes before the fault.
    pub warm_up: Duration,
    /// How long a fault lasts (at least: a pause or a split lasts this long from its start).
    pub hold: Duration,
    /// Writes after recovery, before the workload stops.
    pub after: Duration,
    /// Bound on every wait for a tree, a writer or a catch-up.
    pub converge: Duration,
    /// Bound on the nameserver forgetting a dead input node: its lease (3 s) and slack.
    pub lease_and_slack: Duration,
    /// Bound on each of the checker's waits.
    pub check: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            warm_up: Duration::from_secs(2),
            hold: Duration::from_secs(4),
            after: Duration::from_secs(3),
            converge: Duration::from_secs(20),
            lease_and_slack: Duration::from_secs(10),
            check: Duration::from_secs(30),
        }
    }
}

/// A cluster's tree, with nodes grouped by role (from `/status`).
#[derive(Debug, Clone)]
pub struct Shape {
    pub all: Vec<u64>,
    pub writer: u64,
    /// Nodes with the `persistence` role (the voters besides the writer).
    pub replicas: Vec<u64>,
    /// The voters the writer's configuration names (empty before the first configuration).
    pub voters: Vec<u64>,
    pub forwarders: Vec<u64>,
    /// Nodes with the `input` role.
    pub inputs: Vec<u64>,
    /// Which nodes are neighbours (the bootstrap's graph, which partitions must respect).
    pub graph: BTreeMap<u64, Vec<u64>>,
}

impl Shape {
    /// Waits for one tree over every live node and reads its shape.
    pub async fn observe(cluster: &Cluster, timeout: Duration) -> Result<Shape, String> {
        let all = cluster.live_ids();
        let since = Instant::now();
        let writer = cluster.try_wait_for_tree(&all, timeout).await?;
        // A new cluster's writer names the first voters right after it starts accepting writes;
        // until every node has applied that configuration the roles say nothing about voters.
        let statuses = loop {
            let statuses = cluster.statuses(&all).await;
            let named = statuses
                .get(&writer)
                .map(voters_of)
                .filter(|voters| voters.len() == REPLICATION_FACTOR.min(all.len()));
            let settled = named
                .as_ref()
                .is_some_and(|voters| statuses.values().all(|status| voters_of(status) == *voters));
            if settled {
                break statuses;
            }
            if since.elapsed() >= timeout {
                return Err(format!(
                    "the writer {writer} named no voters that every node holds"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let with_role = |role: &str| -> Vec<u64> {
            statuses
                .iter()
                .filter(|(_, status)| {
                    status["roles"]
                        .as_array()
                        .is_some_and(|roles| roles.iter().any(|r| r == role))
                })
                .map(|(&id, _)| id)
                .collect()
        };
        // The bootstrap's edges are symmetric, but a node learns of a neighbour that registered
        // after it only when that neighbour first talks to it: until then one side's /status lists
        // the edge and the other's does not. Either side's word is enough.
        let mut graph: BTreeMap<u64, Vec<u64>> =
            statuses.keys().map(|&id| (id, Vec::new())).collect();
        for (&id, status) in &statuses {
            let neighbours = status["neighbors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["id"].as_u64());
            for neighbour in neighbours {
                for (from, to) in [(id, neighbour), (neighbour, id)] {
                    let list = graph.entry(from).or_default();
                    if !list.contains(&to) {
                        list.push(to);
                    }
                }
            }
        }
        for list in graph.values_mut() {
            list.sort_unstable();
        }
        let voters = statuses
            .get(&writer)
            .and_then(|status| status["voters"].as_array())
            .map(|list| list.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default();
        Ok(Shape {
            writer,
            voters,
            replicas: with_role("persistence"),
            forwarders: with_role("forwarder"),
            inputs: with_role("input"),
            graph,
            all,
        })
    }

    /// Nodes that keep a copy outside the voter set.
    pub fn learners(&self) -> Vec<u64> {
        self.all
            .iter()
            .copied()
            .filter(|id| *id != self.writer && !self.voters.contains(id))
            .collect()
    }

    /// Every node but `gone`.
    pub fn without(&self, gone: &[u64]) -> Vec<u64> {
        let kept = |id: &&u64| !gone.contains(id);
        self.all.iter().filter(kept).copied().collect()
    }

    /// Whether the others stay connected without `id`.
    pub fn removable(&self, id: u64) -> bool {
        connected(&self.graph, &self.without(&[id]))
    }

    /// Whether `part` can accept writes: it holds a majority of the voters (of every node before
    /// the first configuration).
    pub fn holds_majority(&self, part: &[u64]) -> bool {
        if self.voters.is_empty() {
            return part.len() * 2 > self.all.len();
        }
        let held = self.voters.iter().filter(|v| part.contains(v)).count();
        held * 2 > self.voters.len()
    }

    /// The part of the others (all but `gone`) that stays connected in the graph and holds a
    /// majority of the voters: where a writer can accept writes while `gone` are away.
    pub fn majority_without(&self, gone: &[u64]) -> Option<Vec<u64>> {
        let mut left = self.without(gone);
        while let Some(&first) = left.first() {
            let mut part = vec![first];
            let mut frontier = vec![first];
            while let Some(id) = frontier.pop() {
                for next in self.graph.get(&id).into_iter().flatten() {
                    if left.contains(next) && !part.contains(next) {
                        part.push(*next);
                        frontier.push(*next);
                    }
                }
            }
            if self.holds_majority(&part) {
                part.sort_unstable();
                return Some(part);
            }
            left.retain(|id| !part.contains(id));
        }
        None
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "writer {}, replicas {:?}, forwarders {:?}, inputs {:?}, graph {:?}",
            self.writer, self.replicas, self.forwarders, self.inputs, self.graph
        )
    }
}

/// What a scenario does to which nodes, chosen from a [`Shape`]. `survivors` are the nodes that
/// stay connected and hold a majority meanwhile (all the others when the graph allows): they must
/// form a tree, and elect a writer when the old one is gone; nodes cut off from them by the fault
/// only rejoin when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    NoFault,
    /// Kill `victim` (a `what`), optionally delete its database, restart it.
    Kill {
        victim: u64,
        what: &'static str,
        wipe: bool,
        survivors: Vec<u64>,
    },
    KillWriter {
        writer: u64,
        survivors: Vec<u64>,
    },
    PauseWriter {
        writer: u64,
        survivors: Vec<u64>,
    },
    /// Cut `writer_side` off from `other_side` (both directions), then heal.
    Split {
        writer_side: Vec<u64>,
        other_side: Vec<u64>,
        survivors: Vec<u64>,
    },
    RollingRestart(Vec<u64>),
    FullRestart,
    /// Kill voter `victim` until the writer has replaced it.
    ReplaceVoter {
        victim: u64,
        writer: u64,
        survivors: Vec<u64>,
    },
    /// Kill `victims` (every voter but the writer); restart them one by one.
    KillVoterMajority {
        victims: Vec<u64>,
        writer: u64,
    },
    /// Kill `victims` (learners) while the writer keeps accepting writes.
    KillLearners {
        victims: Vec<u64>,
        writer: u64,
    },
    /// Kill `voter`; once the writer has added a replacement, kill the writer and restart `voter`.
    KillWriterMidChange {
        writer: u64,
        voter: u64,
        survivors: Vec<u64>,
    },
}

/// The victims of `scenario` in this tree, or why this tree does not allow it.
pub fn plan(scenario: Scenario, shape: &Shape) -> Result<Plan, String> {
    let writer = shape.writer;
    // A victim whose loss keeps the others connected first; else one that leaves a majority.
    let victim_among = |candidates: &[u64], what: &'static str, wipe: bool| {
        let candidates: Vec<u64> = candidates
            .iter()
            .copied()
            .filter(|&id| id != writer)
            .collect();
        let victim = candidates
            .iter()
            .copied()
            .find(|&id| shape.removable(id))
            .or_else(|| {
                let leaves_a_majority = |id: &u64| shape.majority_without(&[*id]).is_some();
                candidates.iter().copied().find(leaves_a_majority)
            })
            .ok_or_else(|| {
                format!("no {what} among {candidates:?} leaves a connected majority behind")
            })?;
        let survivors = shape.majority_without(&[victim]).unwrap_or_default();
        Ok(Plan::Kill {
            victim,
            what,
            wipe,
            survivors,
        })
    };
    let survivors_of_writer = || {
        shape.majority_without(&[writer]).ok_or_else(|| {
            format!(
                "without the writer {writer} no connected majority is left in {:?}",
                shape.graph
            )
        })
    };
    match scenario {
        Scenario::NoFault => Ok(Plan::NoFault),
        Scenario::KillReplica => victim_among(&shape.replicas, "replica", false),
        Scenario::WipeReplica => victim_among(&shape.replicas, "replica", true),
        Scenario::KillForwarder if shape.forwarders.is_empty() => {
            Err("this tree has no interior forwarder".into())
        }
        Scenario::KillForwarder => victim_among(&shape.forwarders, "forwarder", false),
        Scenario::KillInput => {
            if shape.inputs.len() < 2 {
                return Err(format!(
                    "one input node only ({:?}): its clients would have nowhere to go",
                    shape.inputs
                ));
            }
            // A pure input node first: this scenario is about clients moving, not about replicas.
            let mut candidates: Vec<u64> = shape
                .inputs
                .iter()
                .copied()
                .filter(|id| !shape.replicas.contains(id))
                .collect();
            candidates.extend(shape.inputs.iter().filter(|id| shape.replicas.contains(id)));
            victim_among(&candidates, "input node", false)
        }
        Scenario::KillWriter => {
            survivors_of_writer().map(|survivors| Plan::KillWriter { writer, survivors })
        }
        Scenario::PauseWriter => {
            survivors_of_writer().map(|survivors| Plan::PauseWriter { writer, survivors })
        }
        Scenario::IsolateWriter => survivors_of_writer().map(|survivors| Plan::Split {
            writer_side: vec![writer],
            other_side: shape.without(&[writer]),
            survivors,
        }),
        Scenario::SplitWriterWithTwo | Scenario::SplitWriterWithThree => {
            let size = if scenario == Scenario::SplitWriterWithTwo {
                2
            } else {
                3
            };
            split_with_writer(shape, size)
                .map(|(writer_side, other_side)| {
                    let survivors = if shape.holds_majority(&writer_side) {
                        writer_side.clone()
                    } else {
                        other_side.clone()
                    };
                    Plan::Split {
                        writer_side,
                        other_side,
                        survivors,
                    }
                })
                .ok_or_else(|| {
                    format!(
                        "no {size}-node side holding the writer splits {:?} into two connected parts",
                        shape.graph
                    )
                })
        }
        Scenario::RollingRestart => {
            // Everyone else first, the writer last, as an operator would.
            let mut order = shape.without(&[writer]);
            order.push(writer);
            Ok(Plan::RollingRestart(order))
        }
        Scenario::FullRestart => Ok(Plan::FullRestart),
        Scenario::ReplaceVoter => {
            let learners = shape.learners();
            if learners.is_empty() {
                return Err("no learner to take a voter's place".into());
            }
            match victim_among(&shape.replicas, "voter", false)? {
                Plan::Kill {
                    victim, survivors, ..
                } if survivors.iter().any(|id| learners.contains(id)) => Ok(Plan::ReplaceVoter {
                    victim,
                    writer,
                    survivors,
                }),
                _ => Err("no voter whose loss leaves a learner with the majority".into()),
            }
        }
        Scenario::KillVoterMajority => {
            let victims = shape.replicas.clone();
            if victims.len() * 2 < shape.voters.len() || shape.voters.len() < 2 {
                return Err(format!("voters {:?}: no majority to kill", shape.voters));
            }
            Ok(Plan::KillVoterMajority { victims, writer })
        }
        Scenario::KillLearners => {
            // Learners whose loss keeps the others connected, at most two.
            let mut victims = Vec::new();
            for learner in shape.learners() {
                let mut gone = victims.clone();
                gone.push(learner);
                if victims.len() < 2 && connected(&shape.graph, &shape.without(&gone)) {
                    victims.push(learner);
                }
            }
            if victims.is_empty() {
                return Err("no learner can go without splitting the graph".into());
            }
            Ok(Plan::KillLearners { victims, writer })
        }
        Scenario::KillWriterMidChange => {
            let learners = shape.learners();
            // A voter whose loss, together with the writer's, leaves the others connected, with a
            // learner among them to be added.
            let voter = shape.replicas.iter().copied().find(|&voter| {
                let rest = shape.without(&[writer, voter]);
                connected(&shape.graph, &rest) && rest.iter().any(|id| learners.contains(id))
            });
            let voter =
                voter.ok_or("no voter whose loss with the writer's keeps the rest connected")?;
            Ok(Plan::KillWriterMidChange {
                writer,
                voter,
                survivors: shape.without(&[writer]),
            })
        }
    }
}

/// A side of `size` nodes holding the writer such that both sides are connected on their own.
///
/// Of those, the hardest: a writer in a minority takes as many of its replicas along as it can (they
/// could still acknowledge its writes, and the majority may be left without the data), a writer in
/// a majority leaves as many replicas behind as it can (its quorum must cope with fewer).
fn split_with_writer(shape: &Shape, size: usize) -> Option<(Vec<u64>, Vec<u64>)> {
    let others = shape.without(&[shape.writer]);
    let mut sides: Vec<Vec<u64>> = vec![vec![shape.writer]];
    for _ in 1..size {
        sides = sides
            .into_iter()
            .flat_map(|side| {
                let last = side.iter().copied().filter(|&id| id != shape.writer).max();
                others
                    .iter()
                    .copied()
                    .filter(move |&id| last.is_none_or(|last| id > last))
                    .map(move |id| {
                        let mut bigger = side.clone();
                        bigger.push(id);
                        bigger
                    })
            })
            .collect();
    }
    let replicas_along = |side: &Vec<u64>| {
        let count = side.iter().filter(|id| shape.replicas.contains(id)).count();
        if shape.holds_majority(side) {
            count
        } else {
            usize::MAX - count
        }
    };
    sides.sort_by_key(replicas_along);
    sides.into_iter().find_map(|mut side| {
        side.sort_unstable();
        let rest = shape.without(&side);
        let fits =
            !rest.is_empty() && connected(&shape.graph, &side) && connected(&shape.graph, &rest);
        fits.then_some((side, rest))
    })
}

/// What one step did, saw and timed.
#[derive(Debug)]
pub struct StepReport {
    pub scenario: Scenario,
    pub plan: Plan,
    pub workload: WorkloadReport,
    /// Named durations, in the order they were measured; `None` when the wait gave up.
    pub timings: Vec<(String, Option<Duration>)>,
    /// Failures of the product seen during the step (the checker's come on top).
    pub problems: Vec<String>,
    /// Things worth reading that are not failures.
    pub notes: Vec<String>,
}

impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {:?}", self.scenario, self.plan)?;
        for (label, timing) in &self.timings {
            match timing {
                Some(duration) => writeln!(f, "  {label}: {duration:.2?}")?,
                None => writeln!(f, "  {label}: gave up")?,
            }
        }
        writeln!(f, "  {}", self.workload)?;
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        for problem in &self.problems {
            writeln!(f, "  PROBLEM: {problem}")?;
        }
        Ok(())
    }
}

/// What a step has measured and met so far.
#[derive(Debug, Default)]
struct Observations {
    timings: Vec<(String, Option<Duration>)>,
    problems: Vec<String>,
    notes: Vec<String>,
}

impl Observations {
    /// Notes the nodes that `gone` cuts off from `survivors` (they rejoin when it is back).
    fn cut_off(&mut self, shape: &Shape, gone: u64, survivors: &[u64]) {
        let cut: Vec<u64> = shape
            .without(&[gone])
            .into_iter()
            .filter(|id| !survivors.contains(id))
            .collect();
        if !cut.is_empty() {
            self.notes.push(format!(
                "without {gone}, nodes {cut:?} are cut off from the majority"
            ));
        }
    }

    /// Notes when `what` happened, counted from the start of the workload.
    fn mark(&mut self, what: &str, origin: Instant) {
        self.notes.push(format!(
            "{what} at +{:.2?} of the workload",
            origin.elapsed()
        ));
    }

    fn timed(&mut self, label: impl Into<String>, since: Instant) {
        self.timings.push((label.into(), Some(since.elapsed())));
    }

    fn gave_up(&mut self, label: impl Into<String>, problem: impl Into<String>) {
        self.timings.push((label.into(), None));
        self.problems.push(problem.into());
    }

    /// Asks `probe` every `every` until it answers `Ok` (timed from `since` as `label`, with the
    /// detail it gives) or `timeout` has passed (a problem, with the last `Err` it gave).
    async fn poll<T, Probe, Answer>(
        &mut self,
        label: &str,
        since: Instant,
        timeout: Duration,
        every: Duration,
        mut probe: Probe,
    ) -> Option<T>
    where
        Probe: FnMut() -> Answer,
        Answer: std::future::Future<Output = Result<(T, String), String>>,
    {
        loop {
            match probe().await {
                Ok((value, detail)) => {
                    self.timed(format!("{label}{detail}"), since);
                    return Some(value);
                }
                Err(last) if since.elapsed() >= timeout => {
                    self.gave_up(label, format!("{label}: {last} after {timeout:?}"));
                    return None;
                }
                Err(_) => tokio::time::sleep(every).await,
            }
        }
    }

    /// Time from `since` until one of `candidates` accepts writes; answers it.
    async fn new_writer(
        &mut self,
        cluster: &Cluster,
        label: &str,
        candidates: &[u64],
        since: Instant,
        timeout: Duration,
    ) -> Option<u64> {
        let probe = || async {
            match cluster.accepting_writes(candidates).await.first() {
                Some(&writer) => Ok((writer, format!(" (node {writer})"))),
                None => Err(format!("none of {candidates:?} accepted writes")),
            }
        };
        self.poll(label, since, timeout, Duration::from_millis(50), probe)
            .await
    }

    /// Time from `since` until the node accepting writes among `ids` names voters for which `done`
    /// holds; answers them.
    async fn voters_until(
        &mut self,
        cluster: &Cluster,
        label: &str,
        ids: &[u64],
        since: Instant,
        timeout: Duration,
        done: impl Fn(&[u64]) -> bool,
    ) -> Option<Vec<u64>> {
        let probe = || async {
            let writer = cluster.accepting_writes(ids).await.first().copied();
            let status = match writer {
                Some(writer) => cluster.status(writer).await,
                None => None,
            };
            let voters = status.as_ref().map(voters_of).unwrap_or_default();
            if status.is_some() && done(&voters) {
                Ok((voters.clone(), format!(" (voters {voters:?})")))
            } else {
                Err(format!("voters {voters:?} (writer {writer:?})"))
            }
        };
        self.poll(label, since, timeout, Duration::from_millis(20), probe)
            .await
    }

    /// Time from `since` until no node among `ids` accepts writes.
    async fn nobody_accepts(
        &mut self,
        cluster: &Cluster,
        label: &str,
        ids: &[u64],
        since: Instant,
        timeout: Duration,
    ) {
        let probe = || async {
            let accepting = cluster.accepting_writes(ids).await;
            if accepting.is_empty() {
                Ok(((), String::new()))
            } else {
                Err(format!("{accepting:?} still accept writes"))
            }
        };
        self.poll(label, since, timeout, Duration::from_millis(50), probe)
            .await;
    }

    /// Time from `since` until `ids` form one tree; answers its root.
    async fn tree(
        &mut self,
        cluster: &Cluster,
        label: &str,
        ids: &[u64],
        since: Instant,
        timeout: Duration,
    ) -> Option<u64> {
        match cluster.try_wait_for_tree(ids, timeout).await {
            Ok(root) => {
                self.timed(format!("{label} (root {root})"), since);
                Some(root)
            }
            Err(problem) => {
                self.gave_up(label, format!("{label}: {problem}"));
                None
            }
        }
    }

    /// Time until every database among `ids` holds what `writer` had committed when this began.
    async fn catch_up(&mut self, cluster: &Cluster, ids: &[u64], writer: u64, timeout: Duration) {
        let since = Instant::now();
        let epoch_of = |answer: Option<(u16, Value)>| match answer {
            Some((200, data)) => data["hash"]
                .is_string()
                .then(|| data["epoch"].as_u64())
                .flatten(),
            _ => None,
        };
        // Right after a tree forms the writer may still be opening its database: ask until it says.
        let target = loop {
            // A re-election after healing may have moved the writer since the tree was seen.
            let current = cluster.accepting_writes(ids).await;
            let writer = current.first().copied().unwrap_or(writer);
            let target = match cluster.admin_get(writer, "/data").await {
                Some((404, _)) => cluster
                    .status(writer)
                    .await
                    .and_then(|s| s["data_epoch"].as_u64()),
                answer => epoch_of(answer),
            };
            if let Some(target) = target {
                break target;
            }
            if since.elapsed() >= timeout {
                self.gave_up(
                    "catch-up",
                    format!("the writer {writer} reported no database epoch for {timeout:?}"),
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let label = format!("catch-up of every database to epoch {target}");
        loop {
            let answers = futures::future::join_all(
                ids.iter()
                    .map(|&id| async move { (id, cluster.admin_get(id, "/data").await) }),
            )
            .await;
            let behind: Vec<(u64, u64)> =
                if answers.iter().any(|(_, a)| matches!(a, Some((404, _)))) {
                    // Until /data exists: the writer's children, by their /status.
                    let replicas = cluster.children(writer).await;
                    let statuses = cluster.statuses(&replicas).await;
                    replicas
                        .iter()
                        .map(|id| {
                            let epoch = statuses.get(id).and_then(|s| s["data_epoch"].as_u64());
                            (*id, epoch.unwrap_or_default())
                        })
                        .filter(|(_, epoch)| *epoch < target)
                        .collect()
                } else {
                    answers
                        .into_iter()
                        .filter_map(|(id, answer)| Some((id, epoch_of(answer)?)))
                        .filter(|(_, epoch)| *epoch < target)
                        .collect()
                };
            if behind.is_empty() {
                self.timed(label, since);
                return;
            }
            if since.elapsed() >= timeout {
                self.gave_up(
                    label,
                    format!("databases (node, epoch) {behind:?} stayed below epoch {target} for {timeout:?}"),
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Time from `since` until the nameserver no longer lists input node `id`.
    async fn nameserver_forgets(
        &mut self,
        cluster: &Cluster,
        id: u64,
        since: Instant,
        bound: Duration,
    ) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("a plain HTTP client builds");
        let url = format!("{}/api/endpoints", cluster.nameserver_url());
        let label = format!("nameserver stops listing input node {id}");
        loop {
            let listed = match http.get(&url).send().await {
                Ok(response) => response.json::<Value>().await.ok(),
                Err(_) => None,
            };
            let lists_it = listed
                .as_ref()
                .and_then(Value::as_array)
                .is_none_or(|endpoints| endpoints.iter().any(|e| e["id"].as_u64() == Some(id)));
            if !lists_it {
                self.timed(label, since);
                return;
            }
            if since.elapsed() >= bound {
                self.gave_up(
                    label,
                    format!("the nameserver still lists killed input node {id} after {bound:?}: {listed:?}"),
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Samples which nodes say they accept writes, in the background, to show overlaps.
struct WriterMonitor {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<(Instant, Vec<u64>)>>,
}

impl WriterMonitor {
    fn start(cluster: &Cluster) -> Self {
        let urls: Vec<(u64, String)> = cluster
            .live_ids()
            .into_iter()
            .map(|id| (id, cluster.spec(id).admin_url("/status")))
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .expect("a plain HTTP client builds");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let answers = futures::future::join_all(urls.iter().map(|(id, url)| {
                    let http = http.clone();
                    async move {
                        let status: Value = http.get(url).send().await.ok()?.json().await.ok()?;
                        (status["accepting_writes"] == true).then_some(*id)
                    }
                }))
                .await;
                samples.push((Instant::now(), answers.into_iter().flatten().collect()));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        });
        Self { stop, task }
    }

    /// Moments when two nodes or more said they accepted writes in the same sweep.
    async fn stop(self, started: Instant) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.task.await.unwrap_or_default();
        samples
            .into_iter()
            .filter(|(_, accepting)| accepting.len() > 1)
            .map(|(at, accepting)| {
                format!(
                    "WARNING: nodes {accepting:?} all reported accepting_writes in one sweep at +{:.1?}",
                    at - started
                )
            })
            .collect()
    }
}

/// The voters a node's `/status` names.
fn voters_of(status: &Value) -> Vec<u64> {
    status["voters"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

async fn sleep_until(at: Instant) {
    tokio::time::sleep_until(at.into()).await;
}

/// Runs one step of `plan` on `cluster` (shaped as `shape`) while `workload` writes.
pub async fn run(
    cluster: &mut Cluster,
    workload: &Workload,
    scenario: Scenario,
    shape: &Shape,
    plan: Plan,
    pacing: &Pacing,
) -> StepReport {
    let started = Instant::now();
    let monitor = WriterMonitor::start(cluster);
    let running = workload.start();
    tokio::time::sleep(pacing.warm_up).await;
    let mut seen = Observations::default();
    let all = shape.all.clone();
    let wait = pacing.converge;
    match &plan {
        Plan::NoFault => tokio::time::sleep(pacing.hold).await,
        Plan::Kill {
            victim,
            what,
            wipe,
            survivors,
        } => {
            let (victim, what) = (*victim, *what);
            let killed = Instant::now();
            cluster.kill(victim);
            seen.mark(&format!("{what} {victim} killed"), started);
            if *wipe {
                let data_dir = cluster.data_dir(victim);
                match std::fs::remove_dir_all(&data_dir) {
                    Ok(()) => seen.notes.push(format!("deleted {}", data_dir.display())),
                    Err(error) => seen
                        .problems
                        .push(format!("could not delete {}: {error}", data_dir.display())),
                }
            }
            seen.cut_off(shape, victim, survivors);
            let label = format!("tree of {survivors:?} without {what} {victim}");
            seen.tree(cluster, &label, survivors, killed, wait).await;
            if what == "input node" {
                // After the tree (which heals well within the lease), so both are timed from the kill.
                seen.nameserver_forgets(cluster, victim, killed, pacing.lease_and_slack)
                    .await;
            }
            sleep_until(killed + pacing.hold).await;
            let restarted = Instant::now();
            cluster.restart(victim);
            seen.mark(&format!("{victim} restarted"), started);
            let label = format!("tree with {victim} back");
            if let Some(root) = seen.tree(cluster, &label, &all, restarted, wait).await {
                seen.catch_up(cluster, &all, root, wait).await;
            }
        }
        &Plan::KillWriter {
            writer,
            ref survivors,
        } => {
            let killed = Instant::now();
            cluster.kill(writer);
            seen.mark(&format!("writer {writer} killed"), started);
            seen.cut_off(shape, writer, survivors);
            seen.new_writer(
                cluster,
                "new writer accepts writes",
                survivors,
                killed,
                wait,
            )
            .await;
            let label = format!("tree of {survivors:?} without the writer");
            seen.tree(cluster, &label, survivors, killed, wait).await;
            sleep_until(killed + pacing.hold).await;
            let restarted = Instant::now();
            cluster.restart(writer);
            seen.mark(&format!("old writer {writer} restarted"), started);
            let label = format!("tree with the old writer {writer} back");
            if let Some(root) = seen.tree(cluster, &label, &all, restarted, wait).await {
                seen.catch_up(cluster, &all, root, wait).await;
            }
            if let Some((_, data)) = cluster.admin_get(writer, "/data").await {
                seen.notes.push(format!(
                    "the old writer {writer} rejoined with /data {data}"
                ));
            }
        }
        &Plan::PauseWriter {
            writer,
            ref survivors,
        } => {
            let paused = Instant::now();
            cluster.signal(writer, Signal::SIGSTOP);
            seen.mark(&format!("writer {writer} paused"), started);
            seen.cut_off(shape, writer, survivors);
            seen.new_writer(
                cluster,
                "new writer accepts writes",
                survivors,
                paused,
                wait,
            )
            .await;
            let label = format!("tree of {survivors:?} without the paused writer");
            seen.tree(cluster, &label, survivors, paused, wait).await;
            sleep_until(paused + pacing.hold).await;
            let resumed = Instant::now();
            cluster.signal(writer, Signal::SIGCONT);
            seen.mark(&format!("writer {writer} resumed"), started);
            seen.notes.push(format!(
                "writer {writer} paused for {:.1?}",
                resumed - paused
            ));
            let label = format!("tree with the resumed writer {writer}");
            if let Some(root) = seen.tree(cluster, &label, &all, resumed, wait).await {
                seen.catch_up(cluster, &all, root, wait).await;
            }
        }
        Plan::Split {
            writer_side,
            other_side,
            survivors,
        } => {
            let split = Instant::now();
            for &id in writer_side {
                cluster.isolate(id, other_side).await;
            }
            for &id in other_side {
                cluster.isolate(id, writer_side).await;
            }
            seen.mark(&format!("split {writer_side:?} | {other_side:?}"), started);
            let minority = if shape.holds_majority(writer_side) {
                other_side
            } else {
                writer_side
            };
            let label = format!("a writer on the majority {survivors:?} accepts writes");
            seen.new_writer(cluster, &label, survivors, split, wait)
                .await;
            let label = format!("tree of the majority {survivors:?}");
            seen.tree(cluster, &label, survivors, split, wait).await;
            // Only noted: the promise is about the data, and the minority has the hold to settle.
            match cluster.try_wait_for_tree(minority, pacing.hold).await {
                Ok(root) => seen.timed(
                    format!("tree of the minority {minority:?} (root {root})"),
                    split,
                ),
                Err(problem) => seen
                    .notes
                    .push(format!("the minority formed no tree: {problem}")),
            }
            sleep_until(split + pacing.hold).await;
            let healed = Instant::now();
            for &id in &all {
                cluster.heal(id).await;
            }
            seen.mark("healed", started);
            if let Some(root) = seen
                .tree(cluster, "tree after healing", &all, healed, wait)
                .await
            {
                seen.catch_up(cluster, &all, root, wait).await;
            }
        }
        Plan::RollingRestart(order) => {
            for &id in order {
                let killed = Instant::now();
                cluster.kill(id);
                match shape.majority_without(&[id]) {
                    Some(survivors) => {
                        seen.cut_off(shape, id, &survivors);
                        let label = format!("tree of {survivors:?} without {id}");
                        seen.tree(cluster, &label, &survivors, killed, wait).await;
                    }
                    None => seen.notes.push(format!(
                        "without {id} no connected majority is left: not waiting for a tree"
                    )),
                }
                let restarted = Instant::now();
                cluster.restart(id);
                let label = format!("tree with {id} back");
                let Some(root) = seen.tree(cluster, &label, &all, restarted, wait).await else {
                    break;
                };
                let label = format!("writes accepted after restarting {id}");
                seen.new_writer(cluster, &label, &all, restarted, wait)
                    .await;
                seen.catch_up(cluster, &all, root, wait).await;
            }
        }
        Plan::FullRestart => {
            for &id in &all {
                cluster.kill(id);
            }
            seen.mark("every node killed", started);
            let restarted = Instant::now();
            for &id in &all {
                cluster.restart(id);
            }
            if let Some(root) = seen
                .tree(
                    cluster,
                    "tree after the full restart",
                    &all,
                    restarted,
                    wait,
                )
                .await
            {
                seen.new_writer(
                    cluster,
                    "writes accepted after the full restart",
                    &all,
                    restarted,
                    wait,
                )
                .await;
                seen.catch_up(cluster, &all, root, wait).await;
            }
        }
        &Plan::ReplaceVoter {
            victim,
            writer,
            ref survivors,
        } => {
            let killed = Instant::now();
            cluster.kill(victim);
            seen.mark(&format!("voter {victim} killed"), started);
            seen.cut_off(shape, victim, survivors);
            seen.new_writer(
                cluster,
                "writes accepted without the voter",
                survivors,
                killed,
                wait,
            )
            .await;
            let size = shape.voters.len();
            let label = format!("a learner replaced voter {victim}");
            let replaced = |voters: &[u64]| !voters.contains(&victim) && voters.len() == size;
            seen.voters_until(cluster, &label, survivors, killed, wait, replaced)
                .await;
            if !cluster.accepting_writes(&[writer]).await.contains(&writer) {
                seen.problems
                    .push(format!("writer {writer} stopped accepting writes"));
            }
            let restarted = Instant::now();
            cluster.restart(victim);
            seen.mark(&format!("{victim} restarted"), started);
            let label = format!("tree with {victim} back");
            if let Some(root) = seen.tree(cluster, &label, &all, restarted, wait).await {
                seen.catch_up(cluster, &all, root, wait).await;
            }
        }
        &Plan::KillVoterMajority {
            ref victims,
            writer,
        } => {
            let killed = Instant::now();
            for &victim in victims {
                cluster.kill(victim);
            }
            seen.mark(&format!("voters {victims:?} killed"), started);
            let rest = shape.without(victims);
            let label = format!("writes refused without voters {victims:?}");
            seen.nobody_accepts(cluster, &label, &rest, killed, wait)
                .await;
            sleep_until(killed + pacing.hold).await;
            // Still refused after the hold: nothing replaced the voters behind the majority's back.
            let accepting = cluster.accepting_writes(&rest).await;
            if !accepting.is_empty() {
                seen.problems.push(format!(
                    "{accepting:?} accepted writes with a majority of the voters down"
                ));
            }
            let back = victims[0];
            let restarted = Instant::now();
            cluster.restart(back);
            seen.mark(&format!("voter {back} restarted"), started);
            let mut live = rest.clone();
            live.push(back);
            let label = format!("writes accepted again with voter {back} back");
            seen.new_writer(cluster, &label, &live, restarted, wait)
                .await;
            for &victim in &victims[1..] {
                cluster.restart(victim);
            }
            let label = "tree with every voter back";
            if let Some(root) = seen.tree(cluster, label, &all, restarted, wait).await {
                seen.catch_up(cluster, &all, root, wait).await;
            }
            seen.notes
                .push(format!("writer before the fault: {writer}"));
        }
        &Plan::KillLearners {
            ref victims,
            writer,
        } => {
            let killed = Instant::now();
            for &victim in victims {
                cluster.kill(victim);
            }
            seen.mark(&format!("learners {victims:?} killed"), started);
            let rest = shape.without(victims);
            let label = format!("tree of {rest:?} without learners {victims:?}");
            seen.tree(cluster, &label, &rest, killed, wait).await;
            // The writer and the voters stay what they were: learners count for nothing.
            let mut refused = 0;
            while killed.elapsed() < pacing.hold {
                match cluster.status(writer).await {
                    Some(status) => {
                        if voters_of(&status) != shape.voters {
                            seen.problems.push(format!(
                                "the voters changed from {:?} to {:?} when learners died",
                                shape.voters,
                                voters_of(&status)
                            ));
                            break;
                        }
                        if status["accepting_writes"] != true {
                            refused += 1;
                        }
                    }
                    None => {
                        seen.problems
                            .push(format!("writer {writer} stopped answering"));
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if refused > 0 {
                seen.notes.push(format!(
                    "writer {writer} did not accept writes in {refused} samples of 100 ms (the tree healing)"
                ));
            }
            let restarted = Instant::now();
            for &victim in victims {
                cluster.restart(victim);
            }
            if let Some(root) = seen
                .tree(
                    cluster,
                    "tree with the learners back",
                    &all,
                    restarted,
                    wait,
                )
                .await
            {
                seen.catch_up(cluster, &all, root, wait).await;
            }
        }
        &Plan::KillWriterMidChange {
            writer,
            voter,
            ref survivors,
        } => {
            let killed = Instant::now();
            cluster.kill(voter);
            seen.mark(&format!("voter {voter} killed"), started);
            let size = shape.voters.len();
            let others = shape.without(&[voter]);
            let label = format!("a replacement for voter {voter} added");
            let added = seen
                .voters_until(cluster, &label, &others, killed, wait, |voters| {
                    voters.len() == size + 1
                })
                .await;
            let writer_killed = Instant::now();
            cluster.kill(writer);
            cluster.restart(voter);
            seen.mark(
                &format!("writer {writer} killed with voters {added:?}, voter {voter} restarted"),
                started,
            );
            seen.new_writer(
                cluster,
                "a new writer accepts writes",
                survivors,
                writer_killed,
                wait,
            )
            .await;
            let label = format!("{size} live voters without the old writer {writer}");
            seen.voters_until(cluster, &label, survivors, writer_killed, wait, |voters| {
                !voters.contains(&writer) && voters.len() == size
            })
            .await;
            let restarted = Instant::now();
            cluster.restart(writer);
            seen.mark(&format!("old writer {writer} restarted"), started);
            let label = format!("tree with the old writer {writer} back");
            if let Some(root) = seen.tree(cluster, &label, &all, restarted, wait).await {
                seen.catch_up(cluster, &all, root, wait).await;
            }
        }
    }
    tokio::time::sleep(pacing.after).await;
    let workload = running.stop().await;
    for overlap in monitor.stop(started).await {
        seen.notes.push(overlap);
    }
    StepReport {
        scenario,
        plan,
        workload,
        timings: seen.timings,
        problems: seen.problems,
        notes: seen.notes,
    }
}

/// One scenario on a cluster of its own: starts `nodes` nodes (a few times, if a tree does not allow
/// the scenario; then it is skipped with the reason printed), runs the step with the default
/// workload, checks the data and panics with every problem found.
pub async fn run_on_new_cluster(scenario: Scenario, nodes: u64) {
    // A new cluster forms its tree in well under a second, so trying many shapes is cheap.
    const TRIES: usize = 30;
    let pacing = Pacing::default();
    let mut tried = 0;
    let (mut cluster, shape, plan) = loop {
        tried += 1;
        let cluster = Cluster::start(nodes);
        let shape = Shape::observe(&cluster, pacing.converge)
            .await
            .unwrap_or_else(|problem| {
                panic!("[{scenario}] a new cluster formed no tree: {problem}")
            });
        match plan(scenario, &shape) {
            Ok(plan) => break (cluster, shape, plan),
            Err(reason) if tried < TRIES => {
                eprintln!(
                    "[{scenario}] this tree does not fit ({reason}); starting another cluster"
                );
            }
            Err(reason) => {
                eprintln!("[{scenario}] SKIPPED: {reason} (in {TRIES} clusters; last: {shape})");
                return;
            }
        }
    };
    eprintln!("[{scenario}] shape: {shape}");
    let workload = Workload::prepare(&cluster, WorkloadConfig::default()).await;
    let report = run(&mut cluster, &workload, scenario, &shape, plan, &pacing).await;
    eprint!("{report}");
    let mut problems = report.problems.clone();
    match checker::check(&cluster, &workload, &report.workload.records, pacing.check).await {
        Ok(summary) => eprintln!("[{scenario}] {summary}"),
        Err(violation) => problems.push(violation),
    }
    assert!(
        problems.is_empty(),
        "[{scenario}] failed:\n{}",
        problems.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writer 2 in a graph where 3 hangs on 2 only: 1–2 1–4 1–5 2–3 2–4 4–5.
    fn shape() -> Shape {
        let edges = [(1, 2), (1, 4), (1, 5), (2, 3), (2, 4), (4, 5)];
        let mut graph: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (a, b) in edges {
            graph.entry(a).or_default().push(b);
            graph.entry(b).or_default().push(a);
        }
        Shape {
            all: vec![1, 2, 3, 4, 5],
            writer: 2,
            replicas: vec![1, 3, 4],
            // No configuration yet: majorities are over every node.
            voters: vec![],
            forwarders: vec![],
            inputs: vec![3, 5],
            graph,
        }
    }

    #[test]
    fn with_voters_a_majority_is_one_of_the_voters_whatever_the_number_of_nodes() {
        let mut shape = shape();
        shape.voters = vec![1, 2, 3];
        // Without the writer, {1, 4, 5} is most of the nodes but holds one voter of three.
        assert_eq!(shape.majority_without(&[2]), None);
        // Without 4, the writer's part holds all three voters.
        assert_eq!(shape.majority_without(&[4]), Some(vec![1, 2, 3, 5]));
        assert!(shape.holds_majority(&[1, 2]));
        assert!(!shape.holds_majority(&[3, 4, 5]));
    }

    #[test]
    fn without_a_cut_vertex_the_connected_majority_is_what_is_left() {
        let shape = shape();
        assert!(!shape.removable(2));
        assert_eq!(shape.majority_without(&[2]), Some(vec![1, 4, 5]));
        assert_eq!(shape.majority_without(&[1, 2]), None);
    }

    #[test]
    fn a_writer_whose_loss_leaves_a_majority_can_be_killed_and_the_rest_is_named() {
        let plan = plan(Scenario::KillWriter, &shape()).unwrap();
        assert_eq!(
            plan,
            Plan::KillWriter {
                writer: 2,
                survivors: vec![1, 4, 5]
            }
        );
    }

    #[test]
    fn victims_are_chosen_by_role_preferring_those_whose_loss_splits_nothing() {
        let Plan::Kill {
            victim, survivors, ..
        } = plan(Scenario::KillReplica, &shape()).unwrap()
        else {
            panic!("a kill");
        };
        assert_eq!((victim, survivors), (1, vec![2, 3, 4, 5]));
        let Plan::Kill { victim, .. } = plan(Scenario::KillInput, &shape()).unwrap() else {
            panic!("a kill");
        };
        assert_eq!(
            victim, 5,
            "a pure input node before a replica that serves HTTP"
        );
        assert!(plan(Scenario::KillForwarder, &shape()).is_err());
    }

    #[test]
    fn splits_keep_both_sides_connected_and_name_the_majority() {
        let Plan::Split {
            writer_side,
            other_side,
            survivors,
        } = plan(Scenario::SplitWriterWithTwo, &shape()).unwrap()
        else {
            panic!("a split");
        };
        assert_eq!(writer_side, vec![2, 3]);
        assert_eq!(other_side, vec![1, 4, 5]);
        assert_eq!(survivors, other_side);
        let Plan::Split {
            writer_side,
            survivors,
            ..
        } = plan(Scenario::SplitWriterWithThree, &shape()).unwrap()
        else {
            panic!("a split");
        };
        assert_eq!(writer_side.len(), 3);
        assert!(writer_side.contains(&2) && writer_side.contains(&3));
        assert_eq!(survivors, writer_side);
    }
}
