//! Runs the timed workload: one tokio task per client, each with its own session, looping until the
//! deadline (or the request budget) and recording into its own [`Recorder`]s, merged at the end — no
//! lock on the hot path. A ticker task draws the progress line from shared atomic counters.
//!
//! ```text
//!   start ──warmup (not recorded)──► measure_from ──measured──► stop_at ─► last answers ─► merge
//! ```
//!
//! A request counts in the measured window when it *started* after the warmup; the window ends when the
//! last client got its last answer. With `--cpu`, the CPU time of the named processes is read at both
//! ends of that window (see [`crate::cpu`]). Client `i` works on group `(i + k) mod groups` for its `k`-th request
//! and chooses write or read with a seeded random draw, so a run's sequence of choices is reproducible.
//! A client whose node is unreachable or answers 502/503/504/429 backs off (20 ms doubling to 1 s)
//! instead of spinning; it stays with its node (its session lives there).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;

use crate::client::TransportFailure;
use crate::config::{Config, Progress};
use crate::cpu::{CpuSample, CpuUse, clock_ticks_per_sec};
use crate::report::Recorder;
use crate::setup::{BenchUser, Prepared};

/// How often the progress line is redrawn on a terminal.
const TICK: Duration = Duration::from_millis(500);
/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// First pause after a request that found its node unreachable or unavailable.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
/// Longest such pause.
const MOST_BACKOFF: Duration = Duration::from_secs(1);
/// Extra time, beyond the run and one request timeout, before stragglers are abandoned.
const GRACE: Duration = Duration::from_secs(5);

/// What the clients recorded, merged.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub reads: Recorder,
    pub writes: Recorder,
    /// End of the warmup to the last recorded answer (zero when nothing was recorded).
    pub measured: Duration,
    /// Requests sent, warmup included.
    pub sent: u64,
    /// CPU time of the `--cpu` groups from the end of the warmup to the last answer (empty without
    /// groups, or when the run ended before the warmup did).
    pub cpu: BTreeMap<String, CpuUse>,
}

/// Counters shared by the clients and the progress line.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
}

/// When each phase begins.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    measure_from: Instant,
    stop_at: Instant,
}

/// Runs the workload of `config` with the users and groups of `prepared`.
pub async fn run(config: &Config, prepared: &Prepared) -> Outcome {
    let start = Instant::now();
    let schedule = Schedule {
        start,
        measure_from: start + config.warmup,
        stop_at: start + config.warmup + config.duration,
    };
    let counters = Arc::new(Counters::default());
    let done = Arc::new(AtomicBool::new(false));
    let ticker = match config.progress {
        Progress::Auto => Some(tokio::spawn(show_progress(
            schedule,
            config.warmup,
            config.duration,
            counters.clone(),
            done.clone(),
        ))),
        Progress::Off => None,
    };

    // The CPU window opens when the warmup ends, the moment from which requests are recorded.
    let cpu_start = (!config.cpu.is_empty()).then(|| {
        let groups = config.cpu.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(schedule.measure_from.into()).await;
            CpuSample::take(&groups)
        })
    });

    let mut tasks = tokio::task::JoinSet::new();
    for (index, user) in prepared.users.iter().enumerate() {
        let client = ClientLoop {
            index,
            user: user.clone(),
            groups: prepared.groups.clone(),
            run_id: prepared.run_id.clone(),
            config: config.clone(),
            schedule,
            counters: counters.clone(),
        };
        tasks.spawn(client.run());
    }

    let mut reads = Recorder::new();
    let mut writes = Recorder::new();
    let mut last_answer = None::<Instant>;
    let give_up = schedule.stop_at + config.request_timeout + GRACE;
    loop {
        let next = tokio::time::timeout_at(give_up.into(), tasks.join_next()).await;
        match next {
            Ok(Some(Ok(finished))) => {
                reads.merge(&finished.reads);
                writes.merge(&finished.writes);
                last_answer = last_answer.max(finished.last_recorded);
            }
            // A client task cannot panic on the network's input; if it did, its figures are lost.
            Ok(Some(Err(_))) => {}
            Ok(None) => break,
            Err(_) => {
                tasks.abort_all();
                break;
            }
        }
    }

    // … and closes once the last client has its last answer.
    let mut cpu = BTreeMap::new();
    if let Some(start) = cpu_start {
        if Instant::now() >= schedule.measure_from {
            let end = CpuSample::take(&config.cpu);
            if let Ok(start) = start.await {
                cpu = start.until(&end, &config.cpu, clock_ticks_per_sec());
            }
        } else {
            start.abort();
        }
    }

    done.store(true, Ordering::Relaxed);
    if let Some(ticker) = ticker {
        let _ = ticker.await;
    }
    Outcome {
        reads,
        writes,
        measured: last_answer
            .map(|last| last.saturating_duration_since(schedule.measure_from))
            .unwrap_or_default(),
        sent: counters.sent.load(Ordering::Relaxed),
        cpu,
    }
}

/// What one client measured.
struct ClientFigures {
    reads: Recorder,
    writes: Recorder,
    last_recorded: Option<Instant>,
}

/// One simulated user's loop.
struct ClientLoop {
    index: usize,
    user: BenchUser,
    groups: Vec<String>,
    run_id: String,
    config: Config,
    schedule: Schedule,
    counters: Arc<Counters>,
}

impl ClientLoop {
    async fn run(self) -> ClientFigures {
        let mut figures = ClientFigures {
            reads: Recorder::new(),
            writes: Recorder::new(),
            last_recorded: None,
        };
        let mut rng = StdRng::seed_from_u64(self.config.seed ^ (self.index as u64).rotate_left(32));
        let padding = "x".repeat(self.config.message_size);
        let mut backoff = Duration::ZERO;
        // Bounded by the clock and, as a backstop, by a count no run at one request per microsecond reaches.
        let most = self.config.duration.as_micros() as u64 + self.config.warmup.as_micros() as u64;
        for sequence in 0..most.max(1) {
            if Instant::now() >= self.schedule.stop_at {
                break;
            }
            let sent = self.counters.sent.fetch_add(1, Ordering::Relaxed);
            if self.config.max_requests.is_some_and(|max| sent >= max) {
                break;
            }
            let group = &self.groups[(self.index + sequence as usize) % self.groups.len()];
            let is_write = rng.random_bool(self.config.write_ratio);
            let began = Instant::now();
            let answer = if is_write {
                let client_id = format!("cb-{}-{}-{sequence}", self.run_id, self.index);
                let content = message(&client_id, &padding, self.config.message_size);
                self.user
                    .client
                    .post_message(group, &content, &client_id)
                    .await
            } else {
                self.user
                    .client
                    .list_messages(group, self.config.read_limit)
                    .await
            };
            let latency = began.elapsed();
            let succeeded = matches!(&answer, Ok(status) if status.is_success());
            self.counters.completed.fetch_add(1, Ordering::Relaxed);
            if !succeeded {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            backoff = next_backoff(backoff, &answer);
            if began >= self.schedule.measure_from {
                let recorder = if is_write {
                    &mut figures.writes
                } else {
                    &mut figures.reads
                };
                match answer {
                    Ok(status) if status.is_success() => recorder.success(latency),
                    Ok(status) => recorder.status(status.as_u16()),
                    Err(error) => recorder.transport(TransportFailure::of(&error)),
                }
                figures.last_recorded = Some(Instant::now());
            }
            if !backoff.is_zero() {
                let until = (Instant::now() + backoff).min(self.schedule.stop_at);
                tokio::time::sleep_until(until.into()).await;
            }
        }
        figures
    }
}

/// The pause before the next request: none after an answer the node meant, doubling from
/// [`FIRST_BACKOFF`] to [`MOST_BACKOFF`] while the node is unreachable or unavailable (502/503/504, 429),
/// as a real client would, instead of spinning on a dead node.
fn next_backoff(current: Duration, answer: &Result<StatusCode, reqwest::Error>) -> Duration {
    let unavailable = match answer {
        Ok(status) => matches!(
            *status,
            StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
                | StatusCode::TOO_MANY_REQUESTS
        ),
        Err(_) => true,
    };
    if unavailable {
        (current * 2).clamp(FIRST_BACKOFF, MOST_BACKOFF)
    } else {
        Duration::ZERO
    }
}

/// A message of exactly `size` characters that starts with its client id, so a checker can find it.
pub fn message(client_id: &str, padding: &str, size: usize) -> String {
    let mut text = format!("{client_id} ");
    let missing = size.saturating_sub(text.len());
    text.push_str(&padding[..missing.min(padding.len())]);
    text.truncate(size);
    text
}

/// Draws the progress line until `done`: rewritten in place twice a second on a terminal, a plain line
/// every few seconds otherwise (logs stay readable).
async fn show_progress(
    schedule: Schedule,
    warmup: Duration,
    duration: Duration,
    counters: Arc<Counters>,
    done: Arc<AtomicBool>,
) {
    let terminal = std::io::stderr().is_terminal();
    let mut last = (Instant::now(), 0u64);
    let mut last_plain = Instant::now();
    // Ends with the run; the count only guards against a clock that never reaches `done`.
    let most_ticks =
        (warmup + duration + GRACE + Duration::from_secs(600)).as_millis() / TICK.as_millis();
    for _ in 0..most_ticks {
        tokio::time::sleep(TICK).await;
        if done.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let completed = counters.completed.load(Ordering::Relaxed);
        let rate = per_second(completed - last.1, now - last.0);
        last = (now, completed);
        let line = progress_line(
            now - schedule.start,
            warmup,
            duration,
            completed,
            counters.failed.load(Ordering::Relaxed),
            rate,
        );
        let mut stderr = std::io::stderr().lock();
        if terminal {
            let _ = write!(stderr, "\r\x1b[2K{line}");
        } else if now - last_plain >= PLAIN_EVERY {
            let _ = writeln!(stderr, "{line}");
            last_plain = now;
        }
        let _ = stderr.flush();
    }
    if terminal {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
    }
}

fn per_second(count: u64, over: Duration) -> f64 {
    if over.is_zero() {
        0.0
    } else {
        count as f64 / over.as_secs_f64()
    }
}

/// `warmup   1.5/2.0 s |      3120 requests |   2080 req/s | 0 failed`, then `measuring` and `finishing`.
pub fn progress_line(
    elapsed: Duration,
    warmup: Duration,
    duration: Duration,
    completed: u64,
    failed: u64,
    rate: f64,
) -> String {
    let (phase, shown, total) = if elapsed < warmup {
        ("warmup", elapsed, warmup)
    } else if elapsed < warmup + duration {
        ("measuring", elapsed - warmup, duration)
    } else {
        ("finishing", duration, duration)
    };
    format!(
        "{phase:<9} {:>5.1}/{:.1} s | {completed:>9} requests | {rate:>7.0} req/s | {failed} failed",
        shown.as_secs_f64(),
        total.as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_shows_the_phase_the_time_in_it_the_count_and_the_rate() {
        let warmup = Duration::from_secs(2);
        let duration = Duration::from_secs(10);

        let during_warmup = progress_line(
            Duration::from_millis(1500),
            warmup,
            duration,
            3120,
            0,
            2080.4,
        );
        let measuring = progress_line(Duration::from_secs(7), warmup, duration, 20000, 3, 2500.0);
        let after = progress_line(Duration::from_secs(13), warmup, duration, 30000, 3, 0.0);

        assert_eq!(
            during_warmup,
            "warmup      1.5/2.0 s |      3120 requests |    2080 req/s | 0 failed"
        );
        assert!(
            measuring.starts_with("measuring   5.0/10.0 s"),
            "{measuring}"
        );
        assert!(measuring.contains("2500 req/s | 3 failed"), "{measuring}");
        assert!(after.starts_with("finishing"), "{after}");
    }

    #[test]
    fn a_message_has_exactly_the_asked_size_and_starts_with_its_client_id() {
        let padding = "x".repeat(64);

        let text = message("cb-run-1-7", &padding, 64);
        let short = message("cb-a-very-long-client-id-0000", &padding, 16);

        assert_eq!(text.len(), 64);
        assert!(text.starts_with("cb-run-1-7 x"));
        assert_eq!(short.len(), 16);
    }

    #[test]
    fn a_client_backs_off_while_its_node_is_unavailable_and_not_after_a_real_answer() {
        let unavailable = Ok(StatusCode::SERVICE_UNAVAILABLE);
        let forbidden = Ok(StatusCode::FORBIDDEN);
        let created = Ok(StatusCode::CREATED);

        let first = next_backoff(Duration::ZERO, &unavailable);
        let second = next_backoff(first, &unavailable);
        let capped = next_backoff(Duration::from_secs(5), &unavailable);

        assert_eq!(first, FIRST_BACKOFF);
        assert_eq!(second, FIRST_BACKOFF * 2);
        assert_eq!(capped, MOST_BACKOFF);
        assert_eq!(next_backoff(second, &forbidden), Duration::ZERO);
        assert_eq!(next_backoff(second, &created), Duration::ZERO);
    }

    #[test]
    fn a_rate_over_no_time_is_zero() {
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
    }
}
