//! Which sealed frames a receiver has already accepted from one sender, so a frame is accepted once.
//!
//! Per sender the receiver keeps the sender's current incarnation, the highest counter it accepted
//! under it and a bitmap of the last [`WINDOW`] counters below that. A frame is fresh when its
//! incarnation is newer (the sender restarted), or equal and its counter is above the highest, or
//! within the window and not yet seen. Everything else is a replay: a repeated frame, one too old to
//! tell, or any frame of an incarnation the sender has left behind.
//!
//! The window only absorbs reordering: one link carries a sender's frames to one receiver in order,
//! but after a redial the old connection's last frames may still arrive after the new one's first.

use super::incarnation::Incarnation;

/// How many counters below the highest one are still told apart.
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// The frames accepted from one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    incarnation: Incarnation,
    highest: u64,
    /// Bit `c % WINDOW` is set when counter `c`, for `c` in `(highest - WINDOW, highest]`, was accepted.
    seen: [u64; WORDS],
}

impl ReplayWindow {
    /// The window after the first frame accepted from a sender.
    pub fn first(incarnation: Incarnation, counter: u64) -> Self {
        let mut window = Self {
            incarnation,
            highest: counter,
            seen: [0; WORDS],
        };
        window.mark(counter);
        window
    }

    /// Whether a frame with this incarnation and counter would be new. Asked before the frame is
    /// opened, so a replay costs no decryption; the answer changes nothing.
    pub fn is_fresh(&self, incarnation: Incarnation, counter: u64) -> bool {
        if incarnation != self.incarnation {
            return incarnation > self.incarnation;
        }
        if counter > self.highest {
            return true;
        }
        self.highest - counter < WINDOW && !self.is_marked(counter)
    }

    /// Records a frame that opened. Only authenticated frames get here, so a forger cannot move a
    /// sender's incarnation or counter and lock the real sender out.
    pub fn accept(&mut self, incarnation: Incarnation, counter: u64) {
        if incarnation > self.incarnation {
            *self = Self::first(incarnation, counter);
            return;
        }
        if counter > self.highest {
            // The slots of the counters skipped over still hold marks from one window earlier.
            let advance = counter - self.highest;
            if advance >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for skipped in self.highest + 1..=counter {
                    self.unmark(skipped);
                }
            }
            self.highest = counter;
        }
        self.mark(counter);
    }

    /// The sender's incarnation this window belongs to.
    pub fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    fn slot(counter: u64) -> (usize, u64) {
        let bit = counter % WINDOW;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn mark(&mut self, counter: u64) {
        let (word, mask) = Self::slot(counter);
        self.seen[word] |= mask;
    }

    fn unmark(&mut self, counter: u64) {
        let (word, mask) = Self::slot(counter);
        self.seen[word] &= !mask;
    }

    fn is_marked(&self, counter: u64) -> bool {
        let (word, mask) = Self::slot(counter);
        self.seen[word] & mask != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Incarnation = Incarnation(1_000);

    fn accepted(window: &mut ReplayWindow, incarnation: Incarnation, counter: u64) -> bool {
        let fresh = window.is_fresh(incarnation, counter);
        if fresh {
            window.accept(incarnation, counter);
        }
        fresh
    }

    #[test]
    fn each_counter_is_accepted_once() {
        let mut window = ReplayWindow::first(NOW, 0);
        assert!(!accepted(&mut window, NOW, 0));
        for counter in 1..5000 {
            assert!(accepted(&mut window, NOW, counter), "{counter}");
            assert!(!accepted(&mut window, NOW, counter), "{counter} twice");
        }
    }

    #[test]
    fn frames_reordered_within_the_window_are_accepted_once_and_older_ones_refused() {
        let mut window = ReplayWindow::first(NOW, 10);
        assert!(accepted(&mut window, NOW, 10 + WINDOW - 1));
        // Everything skipped over that is still inside the window arrives late, out of order.
        for counter in (11..10 + WINDOW - 1).rev() {
            assert!(accepted(&mut window, NOW, counter), "{counter}");
        }
        for counter in 10..10 + WINDOW {
            assert!(!accepted(&mut window, NOW, counter), "{counter} again");
        }
        // One more step and counter 10 leaves the window: too old to tell, so refused.
        assert!(accepted(&mut window, NOW, 10 + WINDOW));
        assert!(!window.is_fresh(NOW, 10));
        assert!(!window.is_fresh(NOW, 0));
    }

    #[test]
    fn a_jump_beyond_the_window_forgets_the_old_marks() {
        let mut window = ReplayWindow::first(NOW, 5);
        assert!(accepted(&mut window, NOW, 6));
        assert!(accepted(&mut window, NOW, 5 + 3 * WINDOW));
        // Counter 6 + 2·WINDOW is inside the new window and shares counter 6's slot: unseen, so fresh.
        assert!(accepted(&mut window, NOW, 6 + 2 * WINDOW));
        assert!(!accepted(&mut window, NOW, 6 + 2 * WINDOW));
        assert!(!window.is_fresh(NOW, 6));
    }

    #[test]
    fn counters_skipped_over_are_fresh_even_where_their_slot_held_an_older_counter() {
        let mut window = ReplayWindow::first(NOW, 0);
        for counter in 1..WINDOW {
            assert!(accepted(&mut window, NOW, counter));
        }
        assert!(accepted(&mut window, NOW, WINDOW + 5));
        for late in WINDOW..WINDOW + 5 {
            assert!(accepted(&mut window, NOW, late), "{late}");
        }
        for old in 0..6 {
            assert!(!window.is_fresh(NOW, old), "{old}");
        }
    }

    #[test]
    fn a_newer_incarnation_supersedes_and_an_older_one_is_refused() {
        let mut window = ReplayWindow::first(NOW, 900);
        let restarted = Incarnation(NOW.0 + 1);
        assert!(accepted(&mut window, restarted, 0));
        assert_eq!(window.incarnation(), restarted);
        assert!(accepted(&mut window, restarted, 1));
        assert!(
            !accepted(&mut window, NOW, 901),
            "the old incarnation is gone"
        );
        assert!(!accepted(&mut window, Incarnation(0), 0));
    }

    #[test]
    fn asking_changes_nothing() {
        let window = ReplayWindow::first(NOW, 3);
        let before = window.clone();
        assert!(window.is_fresh(NOW, 4));
        assert!(window.is_fresh(Incarnation(NOW.0 + 1), 0));
        assert_eq!(window, before);
    }
}
