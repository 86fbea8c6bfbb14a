//! CPU time that other processes (the cluster's) spent during the measured window (Linux only).
//!
//! `--cpu NAME=PID,PID,…` (repeatable) names a group of processes. The tool reads each one's user +
//! system time (`utime` + `stime` of `/proc/<pid>/stat`, in clock ticks, all threads together) when
//! the warmup ends and again when the last client got its last answer — the window whose answers the
//! report counts — and reports per group the seconds spent in between ([`CpuUse`]).
//!
//! ```text
//!   warmup ──► sample ──measured window (requests started here are counted)──► last answer ──► sample
//! ```
//!
//! A process that cannot be read at either sample (it exited, or never existed) is left out of the sum
//! and listed in [`CpuUse::missing`]: a group with a missing process undercounts.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Clock ticks per second when the kernel does not say (`USER_HZ`, 100 on every Linux port).
const DEFAULT_CLOCK_TICKS: u64 = 100;
/// `AT_CLKTCK` in the auxiliary vector: the unit of `utime` and `stime`.
const AT_CLKTCK: usize = 17;

/// A named group of processes whose CPU time is measured (`--cpu nodes=101,102`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuGroup {
    pub name: String,
    pub pids: Vec<u32>,
}

impl FromStr for CpuGroup {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, pids) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}` is not NAME=PID[,PID…]"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "`{name}`: a group name is letters, digits, _ and -"
            ));
        }
        let pids = pids
            .split(',')
            .map(str::trim)
            .filter(|pid| !pid.is_empty())
            .map(|pid| {
                pid.parse::<u32>()
                    .ok()
                    .filter(|&pid| pid > 0)
                    .ok_or_else(|| format!("`{pid}` is not a process id"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.to_owned(),
            pids,
        })
    }
}

/// The CPU time of one group over the window, as the report carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// The processes of the group.
    pub pids: Vec<u32>,
    /// User + system seconds all of them (that could be read twice) spent in the window.
    pub seconds: f64,
    /// Clock ticks per second, the unit the kernel counted in.
    pub clock_ticks_per_sec: u64,
    /// Wall-clock seconds between the two samples.
    pub window_secs: f64,
    /// Processes that could not be read at one of the samples: not counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<u32>,
}

impl CpuUse {
    /// Milliseconds of CPU per `count` (e.g. acknowledged writes); `None` for none.
    pub fn ms_per(&self, count: u64) -> Option<f64> {
        (count > 0).then(|| self.seconds * 1000.0 / count as f64)
    }
}

/// One reading of every group: ticks of each process that could be read.
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    ticks: Vec<BTreeMap<u32, u64>>,
}

impl CpuSample {
    /// Reads every process of `groups` now.
    pub fn take(groups: &[CpuGroup]) -> Self {
        let at = Instant::now();
        let ticks = groups
            .iter()
            .map(|group| {
                group
                    .pids
                    .iter()
                    .filter_map(|&pid| Some((pid, process_ticks(pid)?)))
                    .collect()
            })
            .collect();
        Self { at, ticks }
    }

    /// What each group spent from `self` to `end` (both taken over the same `groups`).
    pub fn until(
        &self,
        end: &CpuSample,
        groups: &[CpuGroup],
        clock_ticks_per_sec: u64,
    ) -> BTreeMap<String, CpuUse> {
        let window_secs = end.at.saturating_duration_since(self.at).as_secs_f64();
        groups
            .iter()
            .zip(self.ticks.iter().zip(&end.ticks))
            .map(|(group, (before, after))| {
                let mut ticks = 0;
                let mut missing = Vec::new();
                for pid in &group.pids {
                    match (before.get(pid), after.get(pid)) {
                        (Some(before), Some(after)) => ticks += after.saturating_sub(*before),
                        _ => missing.push(*pid),
                    }
                }
                let use_ = CpuUse {
                    pids: group.pids.clone(),
                    seconds: crate::report::rounded(
                        ticks as f64 / clock_ticks_per_sec.max(1) as f64,
                        3,
                    ),
                    clock_ticks_per_sec,
                    window_secs: crate::report::rounded(window_secs, 3),
                    missing,
                };
                (group.name.clone(), use_)
            })
            .collect()
    }
}

/// `utime + stime` of process `pid` in clock ticks, `None` when it cannot be read.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ticks_of_stat(&text)
}

/// `utime` (field 14) + `stime` (field 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may hold spaces and parentheses itself: fields are counted after the last `)`.
pub fn ticks_of_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 (state) is the first after `)`
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second of `utime`/`stime` (`getconf CLK_TCK`), from this process's auxiliary vector.
pub fn clock_ticks_per_sec() -> u64 {
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| clock_ticks_of_auxv(&auxv))
        .unwrap_or(DEFAULT_CLOCK_TICKS)
}

/// `AT_CLKTCK` of an auxiliary vector: pairs of native words (type, value), ended by type 0.
fn clock_ticks_of_auxv(auxv: &[u8]) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |bytes: &[u8]| usize::from_ne_bytes(bytes.try_into().expect("a word's bytes"));
    auxv.chunks_exact(2 * WORD)
        .map(|pair| (word(&pair[..WORD]), word(&pair[WORD..])))
        .take_while(|&(kind, _)| kind != 0)
        .find(|&(kind, _)| kind == AT_CLKTCK)
        .map(|(_, value)| value as u64)
        .filter(|&ticks| ticks > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_a_name_and_its_pids() {
        let group: CpuGroup = "nodes=12, 13,14".parse().unwrap();

        assert_eq!(group.name, "nodes");
        assert_eq!(group.pids, [12, 13, 14]);
        assert!("services=".parse::<CpuGroup>().unwrap().pids.is_empty());
        assert!("nodes".parse::<CpuGroup>().is_err());
        assert!("nodes=12,x".parse::<CpuGroup>().is_err());
        assert!("nodes=0".parse::<CpuGroup>().is_err());
        assert!("a b=1".parse::<CpuGroup>().is_err());
    }

    #[test]
    fn utime_and_stime_are_counted_after_the_command_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
        let stat =
            "4242 (cluster node (1)) S 1 4242 4242 0 -1 4194560 900 0 3 0 250 75 0 0 20 0 9 0";

        assert_eq!(ticks_of_stat(stat), Some(325));
        assert_eq!(ticks_of_stat("4242 (x) S 1 2"), None);
        assert_eq!(ticks_of_stat("garbage"), None);
    }

    #[test]
    fn the_clock_tick_comes_from_the_auxiliary_vector() {
        let words = |pairs: &[(usize, usize)]| -> Vec<u8> {
            pairs
                .iter()
                .flat_map(|&(kind, value)| [kind.to_ne_bytes(), value.to_ne_bytes()])
                .flatten()
                .collect()
        };

        assert_eq!(
            clock_ticks_of_auxv(&words(&[(6, 4096), (17, 250), (0, 0)])),
            Some(250)
        );
        assert_eq!(
            clock_ticks_of_auxv(&words(&[(6, 4096), (0, 0), (17, 250)])),
            None
        );
        assert!(clock_ticks_per_sec() > 0);
    }

    #[test]
    fn this_process_spends_cpu_between_two_samples_and_a_missing_pid_is_listed() {
        let groups = vec![
            CpuGroup {
                name: "me".into(),
                pids: vec![std::process::id()],
            },
            CpuGroup {
                name: "gone".into(),
                pids: vec![u32::MAX - 1],
            },
        ];
        let before = CpuSample::take(&groups);
        // Spin until the kernel has charged this process at least one more tick (a loaded machine may
        // take a while to give it the CPU), or 10 s have passed.
        let first = process_ticks(std::process::id()).unwrap();
        let started = Instant::now();
        let mut spin = 0u64;
        while process_ticks(std::process::id()) == Some(first) && started.elapsed().as_secs() < 10 {
            for _ in 0..10_000 {
                spin = spin.wrapping_add(std::hint::black_box(1));
            }
        }
        let after = CpuSample::take(&groups);

        let used = before.until(&after, &groups, clock_ticks_per_sec());

        assert!(spin > 0);
        assert!(used["me"].seconds > 0.0, "{used:?}");
        assert!(used["me"].missing.is_empty());
        assert_eq!(used["gone"].seconds, 0.0);
        assert_eq!(used["gone"].missing, [u32::MAX - 1]);
        assert_eq!(used["me"].ms_per(0), None);
    }

    #[test]
    fn ticks_become_seconds_and_milliseconds_per_write() {
        let groups = vec![CpuGroup {
            name: "nodes".into(),
            pids: vec![1, 2],
        }];
        let at = Instant::now();
        let before = CpuSample {
            at,
            ticks: vec![BTreeMap::from([(1, 100), (2, 50)])],
        };
        let after = CpuSample {
            at: at + std::time::Duration::from_secs(10),
            ticks: vec![BTreeMap::from([(1, 400), (2, 150)])],
        };

        let used = &before.until(&after, &groups, 100)["nodes"];

        assert_eq!(used.seconds, 4.0);
        assert_eq!(used.window_secs, 10.0);
        assert_eq!(used.ms_per(8000), Some(0.5));
    }
}
