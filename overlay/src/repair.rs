//! When a node asks for more neighbours: it hears fewer live neighbours than its target (k, or
//! fewer in a cluster too small for k) for longer than `repair_delay`, then again after a growing
//! pause while that lasts. The runtime answers a request by asking the bootstrap (or, when it is
//! away, linking to neighbours' neighbours) and calling [`crate::Overlay::add_neighbour`].
//!
//! The delay lets a neighbour that merely restarts come back first (a restart needs no repair: its
//! edges are kept), and lets the bootstrap's lease of a dead node run out, so the dead node is not
//! offered as a replacement. The backoff keeps a node that cannot be helped (every other node is
//! down, or the bootstrap has no one to offer) from asking more than a few times a minute, and a
//! flapping neighbour from causing a request per flap: the watch resets only once the node has had
//! its target for a full delay.

use crate::ids::Millis;
use crate::timing::{Backoff, Timing};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairWatch {
    /// Live neighbours wanted; 0 turns repair off.
    target: usize,
    delay: Millis,
    /// Since when the node has been short of its target.
    short_since: Option<Millis>,
    /// Since when it has had its target (the backoff resets after a full delay of it).
    whole_since: Option<Millis>,
    /// The last request and the pause owed after it (kept across short spells until the reset).
    last_request: Option<(Millis, Millis)>,
    backoff: Backoff,
}

impl RepairWatch {
    pub fn new(timing: &Timing) -> Self {
        RepairWatch {
            target: 0,
            delay: timing.repair_delay,
            short_since: None,
            whole_since: None,
            last_request: None,
            backoff: Backoff::new(timing.repair_delay, timing.repair_backoff_cap),
        }
    }

    pub fn set_target(&mut self, target: usize) {
        self.target = target;
    }

    pub fn target(&self) -> usize {
        self.target
    }

    /// Called on every tick with the number of live neighbours: true when a request is due now.
    pub fn on_tick(&mut self, now: Millis, live: usize) -> bool {
        if live >= self.target {
            self.short_since = None;
            let whole_since = *self.whole_since.get_or_insert(now);
            if now.since(whole_since) >= self.delay {
                self.backoff.reset();
                self.last_request = None;
            }
            return false;
        }
        self.whole_since = None;
        let short_since = *self.short_since.get_or_insert(now);
        let mut due = short_since.0 + self.delay.0;
        if let Some((at, pause)) = self.last_request {
            due = due.max(at.0 + pause.0);
        }
        if now.0 < due {
            return false;
        }
        self.last_request = Some((now, self.backoff.next_delay()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(target: usize) -> RepairWatch {
        let timing = Timing {
            repair_delay: Millis(1000),
            repair_backoff_cap: Millis(4000),
            ..Timing::default()
        };
        let mut watch = RepairWatch::new(&timing);
        watch.set_target(target);
        watch
    }

    /// The times in `0..until` (every 100 ms) at which a request goes out, given `live` per time.
    fn requests(watch: &mut RepairWatch, until: u64, live: impl Fn(u64) -> usize) -> Vec<u64> {
        (0..until)
            .step_by(100)
            .filter(|&t| watch.on_tick(Millis(t), live(t)))
            .collect()
    }

    #[test]
    fn a_node_short_of_neighbours_asks_after_the_delay_then_backs_off() {
        let mut watch = watch(3);
        let asked = requests(&mut watch, 12_000, |_| 1);
        assert_eq!(asked, vec![1000, 2000, 4000, 8000]);
    }

    #[test]
    fn a_node_with_its_target_never_asks_and_zero_turns_repair_off() {
        assert!(requests(&mut watch(3), 10_000, |_| 3).is_empty());
        assert!(requests(&mut watch(0), 10_000, |_| 0).is_empty());
    }

    #[test]
    fn a_neighbour_back_within_the_delay_causes_no_request() {
        let mut watch = watch(3);
        let asked = requests(&mut watch, 5000, |t| {
            if (500..1300).contains(&t) { 2 } else { 3 }
        });
        assert!(asked.is_empty(), "{asked:?}");
    }

    #[test]
    fn a_flapping_neighbour_keeps_the_backoff_growing() {
        let mut watch = watch(3);
        // Short for 1.2 s of every 2 s: whole for 0.8 s only, less than the delay.
        let asked = requests(&mut watch, 12_000, |t| if t % 2000 < 1200 { 2 } else { 3 });
        assert_eq!(asked, vec![1000, 3000, 5000, 9000]);
    }
}
