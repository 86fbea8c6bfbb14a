//! The single node's hot paths beside what the machine allows, as `make bench` measured them in one run
//! (`chat/n1/hot/`, written by `scripts/bench.sh`): wrk against the admin port's `/status` (the HTTP
//! ceiling: the same binary, the same HTTP stack, no work), against the newest 20 messages of a group
//! (reads) and against posting a message (writes), and `sqlite-ceiling`'s insert rates (the write
//! ceiling: WAL, `synchronous = FULL`, 64 rows per transaction).
//!
//! The targets compare medians of the same run, so the machine's speed and load cancel out:
//! reads ≥ 0.3 × the `/status` rate, writes ≥ 0.1 × the batched-insert rate.

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::suite::{Spread, SuiteError, TargetCheck, Verdict};

/// Reads at least this share of the `/status` rate.
pub const READ_TARGET: f64 = 0.3;
/// Writes at least this share of SQLite's batched-insert rate.
pub const WRITE_TARGET: f64 = 0.1;

/// One wrk run's summary (bench/wrk/hot.lua), with the node's CPU over it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WrkRun {
    pub requests: u64,
    pub duration_us: u64,
    /// Answers with a status of 400 or above.
    pub non_2xx: u64,
    pub socket_errors: SocketErrors,
    pub latency_us: WrkLatency,
    /// User + system CPU seconds of the node process over the run.
    #[serde(default)]
    pub node_cpu_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SocketErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WrkLatency {
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl WrkRun {
    fn failed(&self) -> u64 {
        self.non_2xx
            + self.socket_errors.connect
            + self.socket_errors.read
            + self.socket_errors.write
            + self.socket_errors.timeout
    }

    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        let secs = self.duration_us as f64 / 1e6;
        if secs > 0.0 {
            self.requests.saturating_sub(self.failed()) as f64 / secs
        } else {
            0.0
        }
    }

    /// The node's CPU microseconds per successful request.
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        let ok = self.requests.saturating_sub(self.failed());
        Some(self.node_cpu_seconds? * 1e6 / ok as f64).filter(|value| value.is_finite())
    }
}

/// One sqlite-ceiling run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SqliteRun {
    pub rows_per_transaction: usize,
    pub single: SqliteRate,
    pub batched: SqliteRate,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SqliteRate {
    pub rows_per_sec: f64,
}

/// Every hot-path run of one `make bench`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HotPaths {
    pub status: Vec<WrkRun>,
    pub reads: Vec<WrkRun>,
    pub writes: Vec<WrkRun>,
    pub sqlite: Vec<SqliteRun>,
}

impl HotPaths {
    /// Reads `dir` (`chat/n1/hot`); `None` when it holds nothing.
    pub fn read(dir: &Path) -> Result<Option<Self>, SuiteError> {
        let mut hot = HotPaths::default();
        for path in crate::suite::list(dir)? {
            let name = crate::suite::file_name(&path);
            let Some((kind, _)) = name
                .strip_suffix(".json")
                .and_then(|stem| stem.rsplit_once('-'))
            else {
                continue;
            };
            let Some(text) = crate::suite::read_optional(&path)? else {
                continue;
            };
            let json = |source| SuiteError::Json {
                path: path.clone(),
                source,
            };
            match kind {
                "status" => hot.status.push(serde_json::from_str(&text).map_err(json)?),
                "read" => hot.reads.push(serde_json::from_str(&text).map_err(json)?),
                "write" => hot.writes.push(serde_json::from_str(&text).map_err(json)?),
                "sqlite" => hot.sqlite.push(serde_json::from_str(&text).map_err(json)?),
                _ => {}
            }
        }
        Ok((hot != HotPaths::default()).then_some(hot))
    }

    pub fn rate(runs: &[WrkRun]) -> Option<Spread> {
        Spread::of(runs.iter().map(WrkRun::rate))
    }

    fn batched_ceiling(&self) -> Option<Spread> {
        Spread::of(self.sqlite.iter().map(|run| run.batched.rows_per_sec))
    }

    fn single_ceiling(&self) -> Option<Spread> {
        Spread::of(self.sqlite.iter().map(|run| run.single.rows_per_sec))
    }

    /// Median reads ÷ median `/status` rate.
    pub fn read_ratio(&self) -> Option<f64> {
        ratio(Self::rate(&self.reads)?, Self::rate(&self.status)?)
    }

    /// Median writes ÷ median batched-insert rate.
    pub fn write_ratio(&self) -> Option<f64> {
        ratio(Self::rate(&self.writes)?, self.batched_ceiling()?)
    }

    pub fn targets(&self) -> Vec<TargetCheck> {
        let check = |target: &'static str, ratio: Option<f64>, goal: f64, what: &str| match ratio {
            Some(ratio) => TargetCheck {
                target,
                measured: format!("{ratio:.3} × {what}"),
                verdict: Verdict::of(ratio >= goal),
            },
            None => crate::suite::not_measured(target, "no hot-path runs"),
        };
        vec![
            check(
                "Single-node reads (20 newest messages) ≥ 0.3 × admin /status",
                self.read_ratio(),
                READ_TARGET,
                "/status",
            ),
            check(
                "Single-node writes ≥ 0.1 × SQLite batched inserts",
                self.write_ratio(),
                WRITE_TARGET,
                "batched inserts",
            ),
        ]
    }

    /// The hot-path table and its targets, as Markdown.
    pub fn markdown(&self, clients: &str, out: &mut String) {
        let _ = writeln!(out, "### Hot paths of the single node (wrk)\n");
        let _ = writeln!(
            out,
            "wrk, {clients} connections, from the same machine; medians (min–max) of the runs. \
             The ceilings come from the same run: the admin port's `GET /status` (the same binary \
             and HTTP stack, no work) and `sqlite-ceiling` (WAL, synchronous=FULL, in the node's \
             file system). CPU: user + system time of the node process ÷ successful requests.\n"
        );
        let _ = writeln!(
            out,
            "| path | req/s | p50 ms | p99 ms | node CPU µs per request | failed | ÷ ceiling |"
        );
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        let row = |out: &mut String, name: &str, runs: &[WrkRun], ratio: Option<f64>| {
            let latency = |pick: fn(&WrkLatency) -> u64| {
                Spread::of(runs.iter().map(|run| pick(&run.latency_us) as f64 / 1000.0))
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} |",
                crate::suite::show(Self::rate(runs)),
                crate::suite::show(latency(|latency| latency.p50)),
                crate::suite::show(latency(|latency| latency.p99)),
                crate::suite::show(Spread::of(
                    runs.iter().filter_map(WrkRun::cpu_us_per_request)
                )),
                runs.iter().map(WrkRun::failed).sum::<u64>(),
                ratio.map_or("—".into(), |ratio| format!("{ratio:.3}")),
            );
        };
        row(
            out,
            "admin `GET /status` (HTTP ceiling)",
            &self.status,
            None,
        );
        row(
            out,
            "`GET /api/groups/{id}/messages?limit=20`",
            &self.reads,
            self.read_ratio(),
        );
        row(
            out,
            "`POST /api/groups/{id}/messages`",
            &self.writes,
            self.write_ratio(),
        );
        let rows = self
            .sqlite
            .first()
            .map_or(64, |run| run.rows_per_transaction);
        let _ = writeln!(
            out,
            "| SQLite, {rows} rows per transaction (write ceiling) | {} rows/s | | | | | |",
            crate::suite::show(self.batched_ceiling())
        );
        let _ = writeln!(
            out,
            "| SQLite, one row per transaction | {} rows/s | | | | | |\n",
            crate::suite::show(self.single_ceiling())
        );
        crate::suite::target_table(out, &self.targets());
    }
}

fn ratio(this: Spread, ceiling: Spread) -> Option<f64> {
    (ceiling.median > 0.0).then_some(this.median / ceiling.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrk(requests: u64, secs: u64, non_2xx: u64) -> WrkRun {
        serde_json::from_str(&format!(
            r#"{{"requests":{requests},"duration_us":{},"bytes":1,"non_2xx":{non_2xx},
                "socket_errors":{{"connect":0,"read":0,"write":0,"timeout":0}},
                "latency_us":{{"mean":1.0,"p50":500,"p90":900,"p99":2000,"max":3000}},
                "node_cpu_seconds":2.0}}"#,
            secs * 1_000_000
        ))
        .unwrap()
    }

    fn sqlite(batched: f64) -> SqliteRun {
        serde_json::from_str(&format!(
            r#"{{"seconds":5,"rows_per_transaction":64,"single":{{"rows":1,"transactions":1,"secs":1,"rows_per_sec":5000}},
                "batched":{{"rows":1,"transactions":1,"secs":1,"rows_per_sec":{batched}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn ratios_divide_medians_of_successful_requests_by_the_ceilings_of_the_same_run() {
        let hot = HotPaths {
            status: vec![
                wrk(800_000, 10, 0),
                wrk(900_000, 10, 0),
                wrk(1_000_000, 10, 0),
            ],
            reads: vec![
                wrk(300_000, 10, 30_000),
                wrk(270_000, 10, 0),
                wrk(290_000, 10, 0),
            ],
            writes: vec![
                wrk(140_000, 10, 0),
                wrk(150_000, 10, 0),
                wrk(130_000, 10, 0),
            ],
            sqlite: vec![sqlite(100_000.0), sqlite(140_000.0), sqlite(120_000.0)],
        };

        // Reads: 27,000, 27,000 (300,000 less 30,000 failed) and 29,000 per second → 27,000; /status 90,000.
        assert!((hot.read_ratio().unwrap() - 0.3).abs() < 1e-9);
        // Writes: median 14,000 per second; SQLite median 120,000 rows per second.
        assert!((hot.write_ratio().unwrap() - 14_000.0 / 120_000.0).abs() < 1e-9);
        let verdicts: Vec<Verdict> = hot.targets().iter().map(|check| check.verdict).collect();
        assert_eq!(verdicts, vec![Verdict::Met, Verdict::Met]);
        assert_eq!(wrk(1_000, 1, 0).cpu_us_per_request(), Some(2_000.0));
    }

    #[test]
    fn a_run_below_the_targets_is_reported_as_not_met() {
        let hot = HotPaths {
            status: vec![wrk(870_000, 10, 0)],
            reads: vec![wrk(45_000, 10, 0)],
            writes: vec![wrk(47_000, 10, 0)],
            sqlite: vec![sqlite(142_000.0)],
        };

        let verdicts: Vec<Verdict> = hot.targets().iter().map(|check| check.verdict).collect();
        assert_eq!(verdicts, vec![Verdict::NotMet, Verdict::NotMet]);
        let mut out = String::new();
        hot.markdown("16", &mut out);
        assert!(out.contains("| 0.052 |"), "{out}");
    }
}
