//! The summary of a `make bench` run (`scripts/bench.sh`): reads its results directory, takes the
//! median of repeated runs, compares each cluster with the single node, checks DESIGN §10's targets and
//! renders it all as Markdown (`summary.md`, ready to paste into `docs/PERFORMANCE.md`).
//!
//! ```text
//!   results dir ──Suite::read──► Suite ──targets()──► met / not met
//!                                   └────markdown()──► summary.md
//! ```
//!
//! The results directory, as the script writes it:
//!
//! ```text
//!   knobs.env                       the knobs of the run, KEY=VALUE
//!   machine.txt                     CPU, memory, kernel, toolchain, commit
//!   chat/n<N>/<phase>-<run>.json    chat-bench --json; phase: write, read, mixed, moderate; with
//!                                   `cpu.nodes` (chat-bench --cpu): the CPU seconds of every node
//!                                   process over the measured window
//!   chat/n<N>/status/<id>.json      each node's admin /status once the cluster idled
//!   chat/n<N>/rss-idle.tsv          "<id> <VmRSS kB>" per node once the cluster idled, before any load
//!   chat/n<N>/rss-after.tsv         the same after the runs, once the cluster idled again
//!   chat/n1/hot/<path>-<run>.json   the single node's hot paths (`crate::hot`): wrk summaries of
//!                                   status, read and write, and sqlite-ceiling's rates (sqlite)
//!   control.json                    control-bench --json
//!   failures.txt                    one line per step that failed
//! ```
//!
//! A median here is the middle sample (the upper of the two middles for an even count), as in
//! `control-bench`: always a value that was measured.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::hot::HotPaths;
use crate::report::{KindStats, Report};

/// DESIGN §10: cluster writes reach at least this share of the single node's.
pub const WRITE_RATIO_TARGET: f64 = 0.5;
/// DESIGN §10: write p99 at moderate load, in milliseconds.
pub const MODERATE_P99_TARGET_MS: f64 = 20.0;
/// DESIGN §10: resident memory of an idle node, in MB (10^6 bytes; `VmRSS` counts KiB).
pub const IDLE_RSS_TARGET_MB: f64 = 30.0;
/// DESIGN §10: election, tree and roles of 16 nodes, in milliseconds.
pub const ELECTION_16_TARGET_MS: f64 = 1000.0;
/// DESIGN §10: heal after killing a non-root node, in milliseconds.
pub const HEAL_TARGET_MS: f64 = 2000.0;
/// DESIGN §10: writes accepted again after the writer is killed, in milliseconds.
pub const WRITER_FAILOVER_TARGET_MS: f64 = 3000.0;
/// Scaling: the cluster sizes whose writes must reach [`WRITE_RATIO_TARGET`] of the single node's.
pub const SCALING_SIZES: [u64; 3] = [4, 8, 16];
/// Scaling: the largest cluster measured against the CPU and p99 targets.
pub const LARGE_CLUSTER: u64 = 16;
/// Scaling: CPU of all node processes per acknowledged write at [`LARGE_CLUSTER`] nodes, at most this
/// multiple of the single node's.
pub const CPU_PER_WRITE_RATIO_TARGET: f64 = 3.0;
/// The `--cpu` group of chat-bench that holds every cluster-node process (scripts/bench.sh names it).
pub const NODE_CPU_GROUP: &str = "nodes";

/// Why a results directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Median, min and max of repeated measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub count: usize,
}

impl Spread {
    /// The spread of `values`, `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            median: *sorted.get(sorted.len() / 2)?,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            count: sorted.len(),
        })
    }

    /// `412 (398–430)`, or `412` for a single sample.
    fn show(&self) -> String {
        if self.count == 1 || self.min == self.max {
            number(self.median)
        } else {
            format!(
                "{} ({}–{})",
                number(self.median),
                number(self.min),
                number(self.max)
            )
        }
    }
}

pub(crate) fn show(spread: Option<Spread>) -> String {
    spread.map_or("—".into(), |spread| spread.show())
}

/// A number with as many decimals as its size deserves.
fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// One workload of the benchmark, as the script names its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Every client posts messages.
    Write,
    /// Every client lists messages.
    Read,
    /// Reads and writes mixed.
    Mixed,
    /// A write run with few clients: DESIGN's "moderate load" for the p99 target.
    Moderate,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Write, Phase::Read, Phase::Mixed, Phase::Moderate];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Write => "write",
            Phase::Read => "read",
            Phase::Mixed => "mixed",
            Phase::Moderate => "moderate",
        }
    }

    /// The figures of a report this phase is about: writes, reads, or all requests.
    fn stats(self, report: &Report) -> &KindStats {
        match self {
            Phase::Write | Phase::Moderate => &report.writes,
            Phase::Read => &report.reads,
            Phase::Mixed => &report.total,
        }
    }
}

/// What one cluster size measured through the JSON API.
#[derive(Debug, Clone, Default)]
pub struct ClusterResults {
    pub nodes: u64,
    pub reports: BTreeMap<Phase, Vec<Report>>,
    /// Each node's `/status` once the cluster idled.
    pub statuses: Vec<Value>,
    /// Node id → resident memory in kB, idle before the runs and idle after them.
    pub rss_idle_kb: BTreeMap<u64, u64>,
    pub rss_after_kb: BTreeMap<u64, u64>,
}

impl ClusterResults {
    fn with_role(&self, role: &str) -> Option<usize> {
        if self.statuses.is_empty() {
            return None;
        }
        Some(
            self.statuses
                .iter()
                .filter(|status| {
                    status["roles"]
                        .as_array()
                        .is_some_and(|roles| roles.iter().any(|r| r == role))
                })
                .count(),
        )
    }

    /// Input nodes: from the nodes' roles, else from what chat-bench saw.
    pub fn input_nodes(&self) -> Option<usize> {
        self.with_role("input").or_else(|| {
            self.reports
                .values()
                .flatten()
                .map(|report| report.input_nodes)
                .max()
        })
    }

    /// Persistence replicas, from the nodes' roles.
    pub fn replicas(&self) -> Option<usize> {
        self.with_role("persistence")
    }

    fn runs(&self, phase: Phase) -> &[Report] {
        self.reports.get(&phase).map_or(&[], Vec::as_slice)
    }

    /// Successful requests per second of `phase`, over its runs.
    pub fn throughput(&self, phase: Phase) -> Option<Spread> {
        Spread::of(
            self.runs(phase)
                .iter()
                .map(|report| phase.stats(report).throughput_per_sec),
        )
    }

    /// p50 or p99 latency (ms) of `phase`, over its runs.
    pub fn latency(&self, phase: Phase, percentile: Percentile) -> Option<Spread> {
        Spread::of(self.runs(phase).iter().filter_map(|report| {
            let stats = phase.stats(report);
            (stats.ok > 0).then_some(match percentile {
                Percentile::P50 => stats.latency_ms.p50,
                Percentile::P99 => stats.latency_ms.p99,
            })
        }))
    }

    /// Failed requests of `phase`, summed over its runs.
    pub fn failed(&self, phase: Phase) -> u64 {
        self.runs(phase)
            .iter()
            .map(|report| phase.stats(report).failed)
            .sum()
    }

    /// CPU milliseconds that all node processes spent per acknowledged (successful) write of `phase`,
    /// over its runs: [`cpu_ms_per_write`] of each.
    pub fn cpu_ms_per_write(&self, phase: Phase) -> Option<Spread> {
        Spread::of(self.runs(phase).iter().filter_map(cpu_ms_per_write))
    }

    /// Clients of `phase` (the same in every run).
    pub fn clients(&self, phase: Phase) -> Option<usize> {
        self.runs(phase)
            .first()
            .map(|report| report.parameters.clients)
    }

    /// Resident memory per node in MB (10^6 bytes), from `VmRSS` in KiB.
    pub fn rss_mb(kb: &BTreeMap<u64, u64>) -> Option<Spread> {
        Spread::of(kb.values().map(|&kb| megabytes(kb)))
    }
}

/// CPU milliseconds of the node processes (`cpu.nodes`) per successful write of one run; `None` without
/// CPU figures, without successful writes, or when a node process could not be read at both ends of
/// the window (its share would be missing).
pub fn cpu_ms_per_write(report: &Report) -> Option<f64> {
    let nodes = report.cpu.get(NODE_CPU_GROUP)?;
    if !nodes.missing.is_empty() || nodes.pids.is_empty() {
        return None;
    }
    nodes.ms_per(report.writes.ok)
}

/// Which latency percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P99,
}

/// What `control-bench` measured for one cluster size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlSize {
    pub election_ms: Option<Spread>,
    pub messages: Option<Spread>,
    pub links: Option<Spread>,
    pub heal_leaf_ms: Option<Spread>,
    pub heal_interior_ms: Option<Spread>,
    pub heal_leader_ms: Option<Spread>,
    pub writer_failover_ms: Option<Spread>,
}

impl ControlSize {
    fn from_json(value: &Value) -> Self {
        let spread = |field: &str| {
            Spread::of(
                value[field]["samples"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_f64),
            )
        };
        Self {
            election_ms: spread("election_ms"),
            messages: spread("messages"),
            links: spread("links"),
            heal_leaf_ms: spread("heal_leaf_ms"),
            heal_interior_ms: spread("heal_interior_ms"),
            heal_leader_ms: spread("heal_leader_ms"),
            writer_failover_ms: spread("writer_failover_ms"),
        }
    }

    /// Control messages until the election ended, as a multiple of `m·log₂ n` (m links, n nodes).
    pub fn messages_per_m_log_n(&self, nodes: u64) -> Option<f64> {
        let m = self.links?.median;
        let log_n = (nodes as f64).log2();
        let messages = self.messages?.median;
        (m > 0.0 && log_n > 0.0).then(|| messages / (m * log_n))
    }
}

/// Whether a target was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotMet,
    NotMeasured,
}

impl Verdict {
    pub(crate) fn of(met: bool) -> Self {
        if met { Verdict::Met } else { Verdict::NotMet }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "**not met**",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// One DESIGN §10 target and how this run fared.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetCheck {
    pub target: &'static str,
    pub measured: String,
    pub verdict: Verdict,
}

/// Everything one `make bench` run measured.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    pub dir: PathBuf,
    pub knobs: Vec<(String, String)>,
    pub machine: String,
    pub clusters: BTreeMap<u64, ClusterResults>,
    pub control: BTreeMap<u64, ControlSize>,
    /// The single node's hot paths and the machine's ceilings (`chat/n1/hot/`).
    pub hot: Option<HotPaths>,
    pub failures: Vec<String>,
}

impl Suite {
    /// Reads the results directory `dir`; missing parts stay empty (a step that failed).
    pub fn read(dir: &Path) -> Result<Self, SuiteError> {
        let mut suite = Suite {
            dir: dir.to_owned(),
            ..Suite::default()
        };
        if let Some(text) = read_optional(&dir.join("knobs.env"))? {
            suite.knobs = text
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
                .collect();
        }
        suite.machine = read_optional(&dir.join("machine.txt"))?.unwrap_or_default();
        if let Some(text) = read_optional(&dir.join("failures.txt"))? {
            suite.failures = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(text) = read_optional(&dir.join("control.json"))? {
            let path = dir.join("control.json");
            let value: Value =
                serde_json::from_str(&text).map_err(|source| SuiteError::Json { path, source })?;
            if let Some(sizes) = value["sizes"].as_object() {
                for (size, figures) in sizes {
                    if let Ok(size) = size.parse() {
                        suite.control.insert(size, ControlSize::from_json(figures));
                    }
                }
            }
        }
        let chat = dir.join("chat");
        for entry in list(&chat)? {
            let Some(nodes) = file_name(&entry)
                .strip_prefix('n')
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            suite.clusters.insert(nodes, read_cluster(&entry, nodes)?);
        }
        suite.hot = HotPaths::read(&chat.join("n1").join("hot"))?;
        Ok(suite)
    }

    /// The knob `key` as the script set it.
    pub fn knob(&self, key: &str) -> Option<&str> {
        self.knobs
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the run was shorter than the defaults of `make bench` (a knob it did not record
    /// counts as the default).
    pub fn is_smoke_run(&self) -> bool {
        let below = |key: &str, default: u64| {
            self.knob(key)
                .and_then(|value| value.parse::<u64>().ok())
                .is_some_and(|value| value < default)
        };
        below("RUNS", 3) || below("DURATION", 10) || below("CONTROL_RUNS", 5)
    }

    fn single(&self) -> Option<&ClusterResults> {
        self.clusters.get(&1)
    }

    fn multi(&self) -> impl Iterator<Item = &ClusterResults> {
        self.clusters.values().filter(|cluster| cluster.nodes > 1)
    }

    /// Median throughput of `phase` on `cluster` divided by the single node's.
    pub fn ratio(&self, cluster: &ClusterResults, phase: Phase) -> Option<f64> {
        let single = self.single()?.throughput(phase)?.median;
        let this = cluster.throughput(phase)?.median;
        (single > 0.0).then_some(this / single)
    }

    /// Median CPU per acknowledged write (the 16-client `write` run) on `cluster` divided by the single
    /// node's.
    pub fn cpu_ratio(&self, cluster: &ClusterResults) -> Option<f64> {
        let single = self.single()?.cpu_ms_per_write(Phase::Write)?.median;
        let this = cluster.cpu_ms_per_write(Phase::Write)?.median;
        (single > 0.0).then_some(this / single)
    }

    /// The scaling targets: writes at 4, 8 and 16 nodes, CPU per write and moderate p99 at 16 nodes.
    pub fn scaling_targets(&self) -> Vec<TargetCheck> {
        vec![
            self.write_ratio_at_sizes_target(),
            self.cpu_per_write_target(),
            self.large_moderate_p99_target(),
        ]
    }

    fn write_ratio_at_sizes_target(&self) -> TargetCheck {
        let target = "Writes at 4, 8 and 16 nodes ≥ 0.5 × single node";
        if self
            .single()
            .and_then(|s| s.throughput(Phase::Write))
            .is_none()
        {
            return not_measured(target, "needs the single node");
        }
        let ratios: Vec<(u64, Option<f64>)> = SCALING_SIZES
            .iter()
            .map(|&nodes| {
                let ratio = self
                    .clusters
                    .get(&nodes)
                    .and_then(|cluster| self.ratio(cluster, Phase::Write));
                (nodes, ratio)
            })
            .collect();
        let measured = ratios
            .iter()
            .map(|(nodes, ratio)| match ratio {
                Some(ratio) => format!("{ratio:.2} ({nodes} nodes)"),
                None => format!("— ({nodes} nodes not measured)"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let verdict = if ratios
            .iter()
            .any(|(_, ratio)| ratio.is_some_and(|r| r < WRITE_RATIO_TARGET))
        {
            Verdict::NotMet
        } else if ratios.iter().all(|(_, ratio)| ratio.is_some()) {
            Verdict::Met
        } else {
            Verdict::NotMeasured
        };
        TargetCheck {
            target,
            measured,
            verdict,
        }
    }

    fn cpu_per_write_target(&self) -> TargetCheck {
        let target =
            "CPU of all node processes per acknowledged write at 16 nodes ≤ 3 × single node";
        let Some(single) = self.single().and_then(|s| s.cpu_ms_per_write(Phase::Write)) else {
            return not_measured(target, "no CPU figures of the single node");
        };
        let Some(large) = self
            .clusters
            .get(&LARGE_CLUSTER)
            .and_then(|c| c.cpu_ms_per_write(Phase::Write))
        else {
            return not_measured(target, "no CPU figures of 16 nodes");
        };
        if single.median <= 0.0 {
            return not_measured(target, "the single node's CPU per write is 0");
        }
        let ratio = large.median / single.median;
        TargetCheck {
            target,
            measured: format!(
                "{ratio:.2} × ({} ms at 16 nodes, {} ms single)",
                number(large.median),
                number(single.median)
            ),
            verdict: Verdict::of(ratio <= CPU_PER_WRITE_RATIO_TARGET),
        }
    }

    fn large_moderate_p99_target(&self) -> TargetCheck {
        let target = "Write p99 at moderate load at 16 nodes: < 20 ms";
        let Some(cluster) = self.clusters.get(&LARGE_CLUSTER) else {
            return not_measured(target, "NODES has no 16");
        };
        match (
            cluster.latency(Phase::Moderate, Percentile::P99),
            cluster.clients(Phase::Moderate),
        ) {
            (Some(p99), Some(clients)) => TargetCheck {
                target,
                measured: format!("{} ms ({clients} clients)", p99.show()),
                verdict: Verdict::of(p99.median < MODERATE_P99_TARGET_MS),
            },
            _ => not_measured(target, "no moderate write run at 16 nodes"),
        }
    }

    /// DESIGN §10's targets, each with what this run measured.
    pub fn targets(&self) -> Vec<TargetCheck> {
        vec![
            self.election_target(),
            self.heal_target(),
            self.failover_target(),
            self.write_ratio_target(),
            self.moderate_p99_target(),
            self.read_scaling_target(),
            self.memory_target(),
        ]
    }

    fn election_target(&self) -> TargetCheck {
        let target = "Election + tree + roles of 16 nodes, last start to all ready: < 1 s";
        match self.control.get(&16).and_then(|size| size.election_ms) {
            Some(election) => TargetCheck {
                target,
                measured: format!("{} ms", election.show()),
                verdict: Verdict::of(election.median < ELECTION_16_TARGET_MS),
            },
            None => not_measured(target, "SIZES has no 16"),
        }
    }

    fn heal_target(&self) -> TargetCheck {
        let target = "Heal after killing a non-root node (leaf, interior): < 2 s";
        let worst = self
            .control
            .iter()
            .flat_map(|(&nodes, size)| {
                [
                    size.heal_leaf_ms.map(|s| (s.median, nodes, "leaf")),
                    size.heal_interior_ms.map(|s| (s.median, nodes, "interior")),
                ]
            })
            .flatten()
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match worst {
            Some((ms, nodes, kind)) => TargetCheck {
                target,
                measured: format!("slowest median {} ms ({kind}, {nodes} nodes)", number(ms)),
                verdict: Verdict::of(ms < HEAL_TARGET_MS),
            },
            None => not_measured(target, "no heal measured"),
        }
    }

    fn failover_target(&self) -> TargetCheck {
        let target = "Writer killed: writes accepted again: < 3 s";
        let worst = self
            .control
            .iter()
            .filter_map(|(&nodes, size)| Some((size.writer_failover_ms?.median, nodes)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match worst {
            Some((ms, nodes)) => TargetCheck {
                target,
                measured: format!("slowest median {} ms ({nodes} nodes)", number(ms)),
                verdict: Verdict::of(ms < WRITER_FAILOVER_TARGET_MS),
            },
            None => not_measured(target, "no failover measured"),
        }
    }

    fn write_ratio_target(&self) -> TargetCheck {
        let target = "Cluster write throughput ≥ 0.5 × single node";
        let ratios: Vec<(u64, f64)> = self
            .multi()
            .filter_map(|cluster| Some((cluster.nodes, self.ratio(cluster, Phase::Write)?)))
            .collect();
        if ratios.is_empty() {
            return not_measured(target, "needs the single node and a cluster");
        }
        TargetCheck {
            target,
            measured: ratios
                .iter()
                .map(|(nodes, ratio)| format!("{ratio:.2} ({nodes} nodes)"))
                .collect::<Vec<_>>()
                .join(", "),
            verdict: Verdict::of(ratios.iter().all(|(_, r)| *r >= WRITE_RATIO_TARGET)),
        }
    }

    fn moderate_p99_target(&self) -> TargetCheck {
        let target = "Write p99 through the cluster at moderate load: < 20 ms";
        let p99s: Vec<(u64, f64, usize)> = self
            .multi()
            .filter_map(|cluster| {
                Some((
                    cluster.nodes,
                    cluster.latency(Phase::Moderate, Percentile::P99)?.median,
                    cluster.clients(Phase::Moderate)?,
                ))
            })
            .collect();
        if p99s.is_empty() {
            return not_measured(target, "no moderate write run on a cluster");
        }
        TargetCheck {
            target,
            measured: p99s
                .iter()
                .map(|(nodes, p99, clients)| {
                    format!("{} ms ({nodes} nodes, {clients} clients)", number(*p99))
                })
                .collect::<Vec<_>>()
                .join(", "),
            verdict: Verdict::of(p99s.iter().all(|(_, p99, _)| *p99 < MODERATE_P99_TARGET_MS)),
        }
    }

    /// Met when every cluster reads at least as fast as the single node and a cluster with more
    /// copies serving reads never reads slower than one with fewer. Every node below the writer
    /// keeps a copy and answers the reads it is fresh enough for, so the copies that serve the
    /// benchmark's reads are those of the input nodes its clients talk to.
    fn read_scaling_target(&self) -> TargetCheck {
        let target = "Reads answered by replicas scale with the replicas (≥ single node, growing with the copies serving reads: the input nodes)";
        let mut points: Vec<(usize, u64, f64)> = self
            .multi()
            .filter_map(|cluster| {
                Some((
                    cluster.input_nodes()?,
                    cluster.nodes,
                    self.ratio(cluster, Phase::Read)?,
                ))
            })
            .collect();
        if points.is_empty() {
            return not_measured(target, "needs the single node and a cluster");
        }
        points.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let at_least_single = points.iter().all(|(_, _, ratio)| *ratio >= 1.0);
        let growing = points.windows(2).all(|pair| pair[1].2 >= pair[0].2);
        TargetCheck {
            target,
            measured: points
                .iter()
                .map(|(serving, nodes, ratio)| {
                    let plural = if *serving == 1 { "" } else { "s" };
                    format!("{ratio:.2} × single ({nodes} nodes, {serving} input node{plural})")
                })
                .collect::<Vec<_>>()
                .join(", "),
            verdict: Verdict::of(at_least_single && growing),
        }
    }

    fn memory_target(&self) -> TargetCheck {
        let target = "Idle node resident memory: < 30 MB";
        let worst = self
            .clusters
            .values()
            .flat_map(|cluster| cluster.rss_idle_kb.values().map(|&kb| (kb, cluster.nodes)))
            .max();
        match worst {
            Some((kb, nodes)) => TargetCheck {
                target,
                measured: format!(
                    "largest {} MB ({nodes}-node cluster)",
                    number(megabytes(kb))
                ),
                verdict: Verdict::of(megabytes(kb) < IDLE_RSS_TARGET_MB),
            },
            None => not_measured(target, "no RSS read"),
        }
    }

    /// The whole summary as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let knobs = self
            .knobs
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(out, "### Run\n");
        let _ = writeln!(out, "`{knobs} make bench` → `{}`\n", self.dir.display());
        if self.is_smoke_run() {
            let _ = writeln!(
                out,
                "> **Smoke run**: fewer or shorter runs than the defaults (RUNS=3, DURATION=10, \
                 CONTROL_RUNS=5). These numbers show that the pipeline works; they are too few and \
                 too short to judge the targets by.\n"
            );
        }
        if !self.machine.trim().is_empty() {
            let _ = writeln!(out, "```text\n{}\n```\n", self.machine.trim_end());
        }
        self.chat_table(&mut out);
        if let Some(hot) = &self.hot {
            hot.markdown(self.knob("CLIENTS").unwrap_or("16"), &mut out);
        }
        self.ratio_table(&mut out);
        self.control_table(&mut out);
        self.memory_table(&mut out);
        let _ = writeln!(out, "### DESIGN §10 targets\n");
        target_table(&mut out, &self.targets());
        let _ = writeln!(out, "### Scaling targets (4, 8 and 16 nodes)\n");
        let _ = writeln!(
            out,
            "Medians of this run. CPU: user + system time of every cluster-node process over the \
             measured window of the 16-client write run, ÷ the writes acknowledged in it.\n"
        );
        target_table(&mut out, &self.scaling_targets());
        if !self.failures.is_empty() {
            let _ = writeln!(out, "### Steps that failed\n");
            for failure in &self.failures {
                let _ = writeln!(out, "- {failure}");
            }
            let _ = writeln!(out);
        }
        out
    }

    fn chat_table(&self, out: &mut String) {
        let _ = writeln!(out, "### Through the JSON API (chat-bench)\n");
        let _ = writeln!(
            out,
            "Median of the runs (min–max). req/s: successful requests per second of the measured \
             window; latencies of successful requests; `mixed` counts reads and writes together. \
             CPU ms per acknowledged write: user + system time of all node processes over the \
             measured window ÷ the successful writes in it (write runs).\n"
        );
        let _ = writeln!(
            out,
            "| nodes | input nodes | replicas | workload | clients | req/s | p50 ms | p99 ms | CPU ms per acknowledged write | failed |"
        );
        let _ = writeln!(
            out,
            "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for cluster in self.clusters.values() {
            for phase in Phase::ALL {
                if cluster.runs(phase).is_empty() {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    cluster.nodes,
                    optional(cluster.input_nodes()),
                    optional(cluster.replicas()),
                    match phase {
                        Phase::Moderate => "write, moderate",
                        other => other.name(),
                    },
                    optional(cluster.clients(phase)),
                    show(cluster.throughput(phase)),
                    show(cluster.latency(phase, Percentile::P50)),
                    show(cluster.latency(phase, Percentile::P99)),
                    match phase {
                        Phase::Write | Phase::Moderate => show(cluster.cpu_ms_per_write(phase)),
                        Phase::Read | Phase::Mixed => "".into(),
                    },
                    cluster.failed(phase),
                );
            }
        }
        let _ = writeln!(out);
    }

    fn ratio_table(&self, out: &mut String) {
        let clusters: Vec<&ClusterResults> = self.multi().collect();
        if clusters.is_empty() || self.single().is_none() {
            return;
        }
        let _ = writeln!(out, "### Cluster ÷ single node (medians)\n");
        let header: Vec<String> = clusters
            .iter()
            .map(|c| format!("{} nodes", c.nodes))
            .collect();
        let _ = writeln!(out, "| | {} | target |", header.join(" | "));
        let _ = writeln!(out, "| --- |{} --- |", " ---: |".repeat(clusters.len()));
        let row =
            |out: &mut String, name: &str, cell: &dyn Fn(&ClusterResults) -> String, target| {
                let cells: Vec<String> = clusters.iter().map(|c| cell(c)).collect();
                let _ = writeln!(out, "| {name} | {} | {target} |", cells.join(" | "));
            };
        let ratio = |phase| {
            move |cluster: &ClusterResults| {
                self.ratio(cluster, phase)
                    .map_or("—".into(), |r| format!("{r:.2}"))
            }
        };
        row(out, "write req/s", &ratio(Phase::Write), "≥ 0.5");
        row(
            out,
            "read req/s",
            &ratio(Phase::Read),
            "grows with replicas",
        );
        row(out, "mixed req/s", &ratio(Phase::Mixed), "");
        row(
            out,
            "CPU ms per acknowledged write (write run)",
            &|cluster: &ClusterResults| {
                self.cpu_ratio(cluster)
                    .map_or("—".into(), |r| format!("{r:.2}"))
            },
            "≤ 3 at 16 nodes",
        );
        row(
            out,
            "replicas (input nodes)",
            &|c: &ClusterResults| {
                format!("{} ({})", optional(c.replicas()), optional(c.input_nodes()))
            },
            "",
        );
        let _ = writeln!(out);
    }

    fn control_table(&self, out: &mut String) {
        if self.control.is_empty() {
            return;
        }
        let _ = writeln!(out, "### Control plane (control-bench)\n");
        let _ = writeln!(
            out,
            "Milliseconds, median of the runs (min–max). Election: last node started → every node \
             ready under one leader. Messages: control messages until then, heartbeats excluded; \
             ÷ m·log₂n with m the links of the neighbour graph. Heal: SIGKILL → the survivors form \
             one valid tree. Writer failover: SIGKILL of the node accepting writes → another accepts \
             writes.\n"
        );
        let _ = writeln!(
            out,
            "| nodes | links | election ms | messages | ÷ m·log₂n | heal leaf ms | heal interior ms | new leader ms | writer failover ms |"
        );
        let _ = writeln!(out, "| ---: |{}", " ---: |".repeat(8));
        for (nodes, size) in &self.control {
            let _ = writeln!(
                out,
                "| {nodes} | {} | {} | {} | {} | {} | {} | {} | {} |",
                size.links
                    .map_or("—".into(), |s| format!("{:.0}", s.median)),
                show(size.election_ms),
                size.messages
                    .map_or("—".into(), |s| format!("{:.0}", s.median)),
                size.messages_per_m_log_n(*nodes)
                    .map_or("—".into(), |f| format!("{f:.2}")),
                show(size.heal_leaf_ms),
                show(size.heal_interior_ms),
                show(size.heal_leader_ms),
                show(size.writer_failover_ms),
            );
        }
        let _ = writeln!(out);
    }

    fn memory_table(&self, out: &mut String) {
        if self.clusters.values().all(|c| c.rss_idle_kb.is_empty()) {
            return;
        }
        let _ = writeln!(
            out,
            "### Resident memory per node (VmRSS, MB of 10^6 bytes)\n"
        );
        let _ = writeln!(
            out,
            "Median over the nodes of a cluster (min–max); idle: once the cluster idled, before any \
             load; after: idle again after all its runs.\n"
        );
        let _ = writeln!(out, "| nodes | idle | after the runs |");
        let _ = writeln!(out, "| ---: | ---: | ---: |");
        for cluster in self.clusters.values() {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cluster.nodes,
                show(ClusterResults::rss_mb(&cluster.rss_idle_kb)),
                show(ClusterResults::rss_mb(&cluster.rss_after_kb)),
            );
        }
        let _ = writeln!(out);
    }
}

/// `checks` as a Markdown table of target, measured and verdict, and a blank line.
pub(crate) fn target_table(out: &mut String, checks: &[TargetCheck]) {
    let _ = writeln!(out, "| target | measured | verdict |");
    let _ = writeln!(out, "| --- | --- | --- |");
    for check in checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            check.target,
            check.measured,
            check.verdict.as_str()
        );
    }
    let _ = writeln!(out);
}

pub(crate) fn not_measured(target: &'static str, why: &str) -> TargetCheck {
    TargetCheck {
        target,
        measured: format!("— ({why})"),
        verdict: Verdict::NotMeasured,
    }
}

/// KiB (as `/proc/<pid>/status` counts) in MB of 10^6 bytes, the unit of DESIGN's target.
fn megabytes(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

fn optional(value: Option<usize>) -> String {
    value.map_or("—".into(), |v| v.to_string())
}

fn read_cluster(dir: &Path, nodes: u64) -> Result<ClusterResults, SuiteError> {
    let mut cluster = ClusterResults {
        nodes,
        ..ClusterResults::default()
    };
    for path in list(dir)? {
        let name = file_name(&path);
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let Some(phase) = stem
            .rsplit_once('-')
            .and_then(|(phase, _)| Phase::ALL.into_iter().find(|p| p.name() == phase))
        else {
            continue;
        };
        let text = read_optional(&path)?.unwrap_or_default();
        let report: Report =
            serde_json::from_str(&text).map_err(|source| SuiteError::Json { path, source })?;
        cluster.reports.entry(phase).or_default().push(report);
    }
    for path in list(&dir.join("status"))? {
        if let Some(text) = read_optional(&path)?
            && let Ok(status) = serde_json::from_str(&text)
        {
            cluster.statuses.push(status);
        }
    }
    cluster.rss_idle_kb = read_rss(&dir.join("rss-idle.tsv"))?;
    cluster.rss_after_kb = read_rss(&dir.join("rss-after.tsv"))?;
    Ok(cluster)
}

/// `<id> <kB>` lines.
fn read_rss(path: &Path) -> Result<BTreeMap<u64, u64>, SuiteError> {
    Ok(read_optional(path)?
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect())
}

pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, SuiteError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SuiteError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The entries of `dir`, sorted; none when it does not exist.
pub(crate) fn list(dir: &Path) -> Result<Vec<PathBuf>, SuiteError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SuiteError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    paths.sort();
    Ok(paths)
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Workload;
    use crate::report::{LatencySummary, Parameters};

    fn stats(ok: u64, per_sec: f64, p99: f64) -> KindStats {
        KindStats {
            requests: ok,
            ok,
            failed: 0,
            throughput_per_sec: per_sec,
            latency_ms: LatencySummary {
                count: ok,
                min: 1.0,
                mean: p99 / 2.0,
                p50: p99 / 2.0,
                p90: p99 * 0.8,
                p99,
                max: p99 * 1.5,
            },
            errors_by_status: BTreeMap::new(),
            transport_errors: BTreeMap::new(),
        }
    }

    fn report(workload: Workload, clients: usize, per_sec: f64, p99: f64) -> Report {
        let mut config = crate::Config::new("http://127.0.0.1:29903", workload).unwrap();
        config.clients = clients;
        let none = stats(0, 0.0, 0.0);
        let some = stats(100, per_sec, p99);
        let (reads, writes) = match workload {
            Workload::Read => (some.clone(), none),
            _ => (none, some.clone()),
        };
        Report {
            tool: "chat-bench".into(),
            version: "0.1.0".into(),
            run_id: "r".into(),
            started_at_unix_ms: 1,
            parameters: Parameters::of(&config),
            input_nodes: 1,
            endpoints: Vec::new(),
            clients_per_node: vec![clients],
            setup_secs: 0.1,
            reused_setup: false,
            measured_secs: 1.0,
            reads,
            writes,
            total: some,
            cpu: BTreeMap::new(),
        }
    }

    fn write_report(dir: &Path, nodes: u64, name: &str, report: &Report) {
        let folder = dir.join(format!("chat/n{nodes}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{name}.json")), report.to_json()).unwrap();
    }

    fn write_status(dir: &Path, nodes: u64, id: u64, roles: &[&str]) {
        let folder = dir.join(format!("chat/n{nodes}/status"));
        std::fs::create_dir_all(&folder).unwrap();
        let status = serde_json::json!({ "id": id, "roles": roles });
        std::fs::write(folder.join(format!("{id}.json")), status.to_string()).unwrap();
    }

    #[test]
    fn the_median_is_the_middle_sample_and_the_upper_middle_for_an_even_count() {
        let odd = Spread::of([3.0, 1.0, 2.0]).unwrap();
        let even = Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap();

        assert_eq!(
            (odd.median, odd.min, odd.max, odd.count),
            (2.0, 1.0, 3.0, 3)
        );
        assert_eq!(even.median, 3.0);
        assert_eq!(Spread::of([]), None);
        assert_eq!(odd.show(), "2.00 (1.00–3.00)");
        assert_eq!(Spread::of([412.4]).unwrap().show(), "412");
    }

    #[test]
    fn a_results_directory_gives_medians_ratios_and_verdicts_against_the_targets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (run, per_sec) in [(1, 100.0), (2, 120.0), (3, 110.0)] {
            write_report(
                root,
                1,
                &format!("write-{run}"),
                &report(Workload::Write, 16, per_sec, 30.0),
            );
        }
        write_report(root, 1, "read-1", &report(Workload::Read, 16, 1000.0, 10.0));
        write_report(root, 4, "write-1", &report(Workload::Write, 16, 44.0, 40.0));
        write_report(root, 4, "read-1", &report(Workload::Read, 16, 1500.0, 9.0));
        write_report(
            root,
            4,
            "moderate-1",
            &report(Workload::Write, 4, 30.0, 12.5),
        );
        write_status(root, 4, 1, &["writer"]);
        write_status(root, 4, 2, &["persistence"]);
        write_status(root, 4, 3, &["input"]);
        write_status(root, 4, 4, &["input"]);
        std::fs::write(
            root.join("chat/n4/rss-idle.tsv"),
            "1 12000\n2 14000\n3 13000\n4 40000\n",
        )
        .unwrap();
        std::fs::write(root.join("knobs.env"), "RUNS=3\nDURATION=10\n").unwrap();

        let suite = Suite::read(root).unwrap();
        let checks = suite.targets();
        let verdict = |start: &str| {
            checks
                .iter()
                .find(|check| check.target.starts_with(start))
                .unwrap_or_else(|| panic!("a target starting with {start}"))
                .clone()
        };
        let markdown = suite.markdown();

        let single = &suite.clusters[&1];
        let cluster = &suite.clusters[&4];
        assert_eq!(single.throughput(Phase::Write).unwrap().median, 110.0);
        assert_eq!(cluster.input_nodes(), Some(2));
        assert_eq!(cluster.replicas(), Some(1));
        assert_eq!(suite.ratio(cluster, Phase::Write), Some(0.4));
        assert_eq!(verdict("Cluster write").verdict, Verdict::NotMet);
        assert_eq!(verdict("Write p99").verdict, Verdict::Met);
        assert_eq!(verdict("Reads answered").verdict, Verdict::Met);
        assert_eq!(verdict("Idle node").verdict, Verdict::NotMet);
        assert_eq!(verdict("Election").verdict, Verdict::NotMeasured);
        assert_eq!(suite.knob("RUNS"), Some("3"));
        assert!(!suite.is_smoke_run());
        assert!(!markdown.contains("Smoke run"));
        assert!(
            markdown.contains("| 1 | 1 | — | write | 16 | 110 (100–120) |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| write req/s | 0.40 | ≥ 0.5 |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| 4 | 2 | 1 | write, moderate | 4 |"),
            "{markdown}"
        );
    }

    /// A write report of `clients` clients (100 successful writes) whose node processes spent
    /// `cpu_seconds`; `missing` node pids could not be read.
    fn write_with_cpu(
        clients: usize,
        per_sec: f64,
        p99: f64,
        cpu_seconds: f64,
        missing: &[u32],
    ) -> Report {
        let mut report = report(Workload::Write, clients, per_sec, p99);
        report.cpu.insert(
            NODE_CPU_GROUP.into(),
            crate::cpu::CpuUse {
                pids: vec![11, 12, 13],
                seconds: cpu_seconds,
                clock_ticks_per_sec: 100,
                window_secs: 10.0,
                missing: missing.to_vec(),
            },
        );
        report
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn cpu_per_acknowledged_write_is_the_median_over_runs_and_judged_at_sixteen_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Single node: 0.3, 0.5 and 0.4 ms per write (100 writes each) → median 0.4.
        for (run, cpu) in [(1, 0.03), (2, 0.05), (3, 0.04)] {
            let name = format!("write-{run}");
            write_report(root, 1, &name, &write_with_cpu(16, 1000.0, 10.0, cpu, &[]));
        }
        // A run during which a node could not be read is left out, not counted low.
        write_report(
            root,
            1,
            "write-4",
            &write_with_cpu(16, 1000.0, 10.0, 0.001, &[12]),
        );
        write_report(
            root,
            4,
            "write-1",
            &write_with_cpu(16, 600.0, 15.0, 0.08, &[]),
        );
        write_report(
            root,
            8,
            "write-1",
            &write_with_cpu(16, 500.0, 15.0, 0.10, &[]),
        );
        // 16 nodes: 1.2 ms per write, exactly 3 × the single node's; the moderate run's p99 is 19.9 ms.
        write_report(
            root,
            16,
            "write-1",
            &write_with_cpu(16, 450.0, 30.0, 0.12, &[]),
        );
        write_report(
            root,
            16,
            "moderate-1",
            &write_with_cpu(4, 200.0, 19.9, 0.2, &[]),
        );
        // A run of the old format (no CPU figures) still reads, and shows no CPU.
        write_report(root, 16, "read-1", &report(Workload::Read, 16, 900.0, 8.0));

        let suite = Suite::read(root).unwrap();
        let single = suite.clusters[&1].cpu_ms_per_write(Phase::Write).unwrap();
        let large = &suite.clusters[&16];
        let checks = suite.scaling_targets();
        let markdown = suite.markdown();

        assert_eq!(single.count, 3, "the run with a missing node is left out");
        assert!(close(single.median, 0.4), "{single:?}");
        assert!(
            close(single.min, 0.3) && close(single.max, 0.5),
            "{single:?}"
        );
        assert!(close(suite.cpu_ratio(large).unwrap(), 3.0));
        assert!(close(
            large.cpu_ms_per_write(Phase::Moderate).unwrap().median,
            2.0
        ));
        assert_eq!(large.cpu_ms_per_write(Phase::Read), None);
        assert_eq!(checks[0].verdict, Verdict::NotMet, "{checks:?}");
        assert_eq!(
            checks[0].measured,
            "0.60 (4 nodes), 0.50 (8 nodes), 0.45 (16 nodes)"
        );
        assert_eq!(checks[1].verdict, Verdict::Met, "{checks:?}");
        assert_eq!(
            checks[1].measured,
            "3.00 × (1.20 ms at 16 nodes, 0.40 ms single)"
        );
        assert_eq!(checks[2].verdict, Verdict::Met, "{checks:?}");
        assert_eq!(checks[2].measured, "19.9 ms (4 clients)");
        assert!(
            markdown
                .contains("| 1 | 1 | — | write | 16 | 1000 | 5.00 | 10.0 | 0.40 (0.30–0.50) | 0 |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| CPU ms per acknowledged write (write run) | 2.00 | 2.50 | 3.00 | ≤ 3 at 16 nodes |"),
            "{markdown}"
        );
        assert!(markdown.contains("### Scaling targets"), "{markdown}");
        assert!(
            markdown.contains("| 16 | 1 | — | read | 16 | 900 | 4.00 | 8.00 |  | 0 |"),
            "{markdown}"
        );
    }

    #[test]
    fn scaling_targets_judge_what_was_measured_and_say_what_was_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_report(
            root,
            1,
            "write-1",
            &write_with_cpu(16, 1000.0, 10.0, 0.04, &[]),
        );
        write_report(
            root,
            4,
            "write-1",
            &write_with_cpu(16, 700.0, 12.0, 0.08, &[]),
        );

        let checks = Suite::read(root).unwrap().scaling_targets();

        assert_eq!(checks[0].verdict, Verdict::NotMeasured, "{checks:?}");
        assert_eq!(
            checks[0].measured,
            "0.70 (4 nodes), — (8 nodes not measured), — (16 nodes not measured)"
        );
        assert_eq!(checks[1].verdict, Verdict::NotMeasured, "{checks:?}");
        assert_eq!(checks[2].verdict, Verdict::NotMeasured, "{checks:?}");

        // 16 nodes spending more than 3 × the single node's CPU per write, with a p99 over 20 ms.
        write_report(
            root,
            8,
            "write-1",
            &write_with_cpu(16, 600.0, 12.0, 0.1, &[]),
        );
        write_report(
            root,
            16,
            "write-1",
            &write_with_cpu(16, 500.0, 30.0, 0.13, &[]),
        );
        write_report(
            root,
            16,
            "moderate-1",
            &write_with_cpu(4, 200.0, 25.0, 0.1, &[]),
        );

        let checks = Suite::read(root).unwrap().scaling_targets();

        assert_eq!(checks[0].verdict, Verdict::Met, "{checks:?}");
        assert_eq!(checks[1].verdict, Verdict::NotMet, "{checks:?}");
        assert!(checks[1].measured.starts_with("3.25 ×"), "{checks:?}");
        assert_eq!(checks[2].verdict, Verdict::NotMet, "{checks:?}");
    }

    #[test]
    fn control_bench_samples_become_medians_and_the_message_factor() {
        let dir = tempfile::tempdir().unwrap();
        let control = serde_json::json!({
            "tool": "control-bench",
            "runs": 3,
            "sizes": {
                "16": {
                    "election_ms": { "samples": [120.0, 90.0, 300.0] },
                    "messages": { "samples": [200.0, 220.0, 210.0] },
                    "links": { "samples": [25.0, 25.0, 25.0] },
                    "heal_leaf_ms": { "samples": [700.0] },
                    "heal_interior_ms": { "samples": [2500.0, 900.0, 950.0] },
                    "heal_leader_ms": { "samples": [] },
                    "writer_failover_ms": { "samples": [1200.0, 3100.0, 1300.0] }
                }
            }
        });
        std::fs::write(dir.path().join("control.json"), control.to_string()).unwrap();

        std::fs::write(dir.path().join("knobs.env"), "RUNS=1\nDURATION=3\n").unwrap();

        let suite = Suite::read(dir.path()).unwrap();
        let size = &suite.control[&16];
        let checks = suite.targets();

        assert_eq!(size.election_ms.unwrap().median, 120.0);
        assert_eq!(size.heal_leader_ms, None);
        assert_eq!(size.messages_per_m_log_n(16), Some(210.0 / (25.0 * 4.0)));
        assert_eq!(checks[0].verdict, Verdict::Met, "{checks:?}");
        assert_eq!(checks[1].verdict, Verdict::Met, "{checks:?}");
        assert!(checks[1].measured.contains("950"), "{checks:?}");
        assert_eq!(checks[2].verdict, Verdict::Met, "{checks:?}");
        assert!(suite.is_smoke_run());
        assert!(suite.markdown().contains("**Smoke run**"));
    }
}
