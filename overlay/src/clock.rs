//! The Lamport clock one node shares across all of its components: every outgoing message is stamped
//! with it and every incoming stamp pushes it forward, so "happened before" is visible across nodes.
//! Election ids use it to tell a newer election from an older one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Lamport timestamp.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct LamportTime(pub u64);

impl fmt::Display for LamportTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A scalar logical clock: +1 on send, `max(local, remote) + 1` on receive. Arithmetic saturates
/// because a remote stamp is untrusted input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LamportClock {
    now: LamportTime,
}

impl LamportClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current value, without advancing it.
    pub fn now(&self) -> LamportTime {
        self.now
    }

    /// Advances the clock for a message about to be sent and returns the stamp to put on it.
    pub fn on_send(&mut self) -> LamportTime {
        self.now = LamportTime(self.now.0.saturating_add(1));
        self.now
    }

    /// Merges the stamp of a received message.
    pub fn on_receive(&mut self, remote: LamportTime) -> LamportTime {
        self.now = LamportTime(self.now.0.max(remote.0).saturating_add(1));
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sending_increments_by_one() {
        let mut clock = LamportClock::new();
        assert_eq!(clock.on_send(), LamportTime(1));
        assert_eq!(clock.on_send(), LamportTime(2));
        assert_eq!(clock.now(), LamportTime(2));
    }

    #[test]
    fn receiving_jumps_past_the_larger_of_both_clocks() {
        let mut clock = LamportClock::new();
        assert_eq!(clock.on_receive(LamportTime(10)), LamportTime(11));
        assert_eq!(clock.on_receive(LamportTime(3)), LamportTime(12));
    }

    #[test]
    fn a_hostile_stamp_saturates_instead_of_overflowing() {
        let mut clock = LamportClock::new();
        assert_eq!(
            clock.on_receive(LamportTime(u64::MAX)),
            LamportTime(u64::MAX)
        );
        assert_eq!(clock.on_send(), LamportTime(u64::MAX));
    }
}
