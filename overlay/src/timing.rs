//! Every interval and timeout of the control plane in one value, with defaults tuned for a cluster on
//! one machine (loopback), plus the exponential backoff the handshake retries with.

use crate::ids::Millis;

/// Intervals and timeouts. The defaults target loopback: 16 nodes elected in well under a second and a
/// killed non-root node healed around within about one second. The numbers depend on each other; the
/// comments say how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A heartbeat goes to a neighbour that was sent nothing else for this long. 100 ms keeps idle
    /// traffic at ~10 tiny messages per neighbour per second while giving the failure timeout several
    /// chances to hear from a live neighbour.
    pub heartbeat_interval: Millis,
    /// A neighbour silent for longer than this is OFF. 700 ms = 7 heartbeat intervals: a few lost or
    /// late heartbeats (or a short scheduling hiccup on a loaded 2-core machine) do not trigger a heal,
    /// and it still leaves room to heal well inside the 2 s target.
    pub failure_timeout: Millis,
    /// The root sends a TICK down the tree this often. Orphans are adopted only by nodes with a *newer*
    /// tick, so this bounds how long an orphan waits for its neighbours to pull ahead of it.
    pub tick_interval: Millis,
    /// A non-root node that saw no new tick for this long (or an orphan nobody adopted in this long)
    /// declares the leader lost and starts an election. It must exceed `failure_timeout` plus an
    /// adoption round trip plus a tick, so that a heal after an interior node dies finishes before the
    /// descendants of the orphan give up: 700 + ~150 + 100 < 1500.
    pub leader_timeout: Millis,
    /// How long an orphan whose lost parent was the root itself keeps asking for adoption before it
    /// declares the leader lost. If the root is alive its other children are ahead within one tick, so
    /// three ticks is plenty, and a dead writer is replaced ~1.2 s sooner than with `leader_timeout`.
    pub root_orphan_grace: Millis,
    /// Unanswered SHOUT questions, election nudges, route reports and adoption requests are repeated
    /// this often. Far above a loopback round trip, so it only fires after a real loss.
    pub retransmit_interval: Millis,
    /// A leaderless node with live neighbours waits this long before initiating an election, so a START
    /// already on its way is joined instead of raced by a rival election.
    pub election_delay: Millis,
    /// A leaderless node with neighbours configured but none reachable elects itself alone after this.
    pub lone_grace: Millis,
    /// Safety net: an election not finished after this long is restarted with a higher term. Lost
    /// messages are repaired by nudges long before; this covers what nothing else does.
    pub election_timeout: Millis,
    /// First handshake retry delay (then doubling).
    pub backoff_base: Millis,
    /// Largest handshake retry delay.
    pub backoff_cap: Millis,
    /// Messages from a neighbour we are not joined with before we answer with a REJOIN handshake.
    pub stranger_threshold: u32,
    /// A gap between two calls longer than this means *this* node was stalled (SIGSTOP, a paused VM, an
    /// overloaded runtime): the node then shifts its notion of time so it does not accuse every
    /// neighbour of silence that was its own. Half the failure timeout.
    pub stall_threshold: Millis,
    /// A node that hears fewer live neighbours than its target for this long asks for more (see
    /// `repair.rs`). Longer than a quick restart of a neighbour, and enough for the bootstrap's lease
    /// of a dead node (1.5 s) to run out after the failure timeout noticed it: 700 + 1000 > 1500.
    pub repair_delay: Millis,
    /// The pause between repeated requests doubles up to this.
    pub repair_backoff_cap: Millis,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_interval: Millis(100),
            failure_timeout: Millis(700),
            tick_interval: Millis(100),
            leader_timeout: Millis(1500),
            root_orphan_grace: Millis(300),
            retransmit_interval: Millis(150),
            election_delay: Millis(100),
            lone_grace: Millis(1500),
            election_timeout: Millis(5000),
            backoff_base: Millis(50),
            backoff_cap: Millis(16_000),
            stranger_threshold: 2,
            stall_threshold: Millis(350),
            repair_delay: Millis(1000),
            repair_backoff_cap: Millis(16_000),
        }
    }
}

/// Exponential backoff: `base, 2·base, 4·base, …` capped at `cap`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Millis,
    cap: Millis,
    next: Millis,
}

impl Backoff {
    pub fn new(base: Millis, cap: Millis) -> Self {
        Backoff {
            base,
            cap,
            next: base.min(cap),
        }
    }

    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Millis {
        let delay = self.next;
        self.next = Millis(delay.0.saturating_mul(2).max(1)).min(self.cap);
        delay
    }

    /// Back to the first step (the peer showed signs of life).
    pub fn reset(&mut self) {
        self.next = self.base.min(self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_fifty_milliseconds_up_to_sixteen_seconds() {
        let mut backoff = Backoff::new(Millis(50), Millis(16_000));
        let delays: Vec<u64> = (0..12).map(|_| backoff.next_delay().0).collect();
        assert_eq!(
            delays,
            vec![
                50, 100, 200, 400, 800, 1600, 3200, 6400, 12_800, 16_000, 16_000, 16_000
            ]
        );
    }

    #[test]
    fn backoff_reset_starts_over() {
        let mut backoff = Backoff::new(Millis(50), Millis(16_000));
        backoff.next_delay();
        backoff.next_delay();
        backoff.reset();
        assert_eq!(backoff.next_delay(), Millis(50));
    }

    #[test]
    fn default_timeouts_leave_room_for_a_heal_before_the_leader_is_declared_lost() {
        let t = Timing::default();
        assert!(t.failure_timeout.0 >= 5 * t.heartbeat_interval.0);
        assert!(
            t.leader_timeout.0 > t.failure_timeout.0 + t.retransmit_interval.0 + t.tick_interval.0
        );
        assert!(t.root_orphan_grace.0 >= 2 * t.tick_interval.0);
        assert!(t.stall_threshold < t.failure_timeout);
    }
}
