//! A copy's side of replication as a state machine: which of the writer's entries it applies (and
//! whether durably), what it acknowledges, when it asks to catch up, when it reports progress, and
//! what an applied transaction means. The runtime keeps the entries and the database; it tells
//! [`Replica`] what arrived and what the database did ([`Incoming`], [`Outcome`]) and runs the
//! [`Command`]s it answers with. No IO, no clock (`now` is passed in).
//!
//! The rules, and why:
//! - **Commits wait for the log check.** A copy applies commits only from its parent, only while a
//!   leader is known, and only once that leader's writer confirmed that this copy's log is a prefix
//!   of its own (the answer to a catch-up, `confirmed`). Before that, commits could extend a history
//!   the writer never had (see `catch_up`).
//! - **Voters apply durably, learners do not.** A batch is applied with an fsync while the newest
//!   configuration among the entries queued names this node (or before any configuration exists,
//!   when every copy counts), including the batch that makes it a voter: a learner that becomes a
//!   voter makes its copy durable before it acknowledges anything (DESIGN §4).
//! - **Acknowledge what is held.** A voter acknowledges at once, after its data position is
//!   published (whoever sees a write acknowledged sees it here too). A learner reports its progress
//!   at housekeeping, off the write path, and its reports never count for a quorum.
//! - **One catch-up request per second** unless an answer came full (more is waiting: ask at once) or
//!   the writer changed (its confirmation is needed first).
//! - A gap (entries that do not continue the copy) or a failed transaction asks again from what is
//!   applied; entries that do not fit the data mean another history: the copy is discarded.

use overlay::{Epoch, Millis, Term};

use crate::catch_up::CatchUp;
use crate::{Configuration, NodeId};

/// One catch-up request per this long at most: the answer is on its way.
pub const CATCH_UP_SPACING: Millis = Millis(1000);

/// Where this node sits in the tree now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub parent: Option<NodeId>,
    /// The root of the tree (the writer), once known.
    pub leader: Option<NodeId>,
}

/// What the runtime knows of a batch of entries that arrived (it keeps the entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub from: NodeId,
    /// The last entry's epoch (`None`: no entries).
    pub last: Option<Epoch>,
    /// The newest configuration among the entries.
    pub configuration: Option<Configuration>,
    /// The writer's answer to a catch-up (it checked this copy's log), not commits.
    pub confirmed: bool,
}

/// What one transaction of the applier did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied(Applied),
    /// The entries do not continue the copy.
    Gap,
    /// The entries do not fit the data: the writer's log took another history.
    Diverged,
    /// The transaction failed otherwise.
    Failed,
}

/// A transaction that committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The epoch the copy reached.
    pub epoch: Epoch,
    /// The term of the entry at `epoch`, when it was among the entries applied.
    pub term: Option<Term>,
    /// The highest term among the entries applied.
    pub newest_term: Option<Term>,
    /// The newest configuration among the entries applied.
    pub configuration: Option<Configuration>,
    /// The transaction was fsynced.
    pub durable: bool,
    /// It held a full catch-up answer (more is waiting at the writer).
    pub more: bool,
    /// It held a catch-up answer that was not full: the copy reached where the writer was.
    pub reached_writer: bool,
}

/// What a copy does with entries that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Hand them to the applier, with an fsync per transaction (`durable`) or relaxed.
    Apply { durable: bool },
    /// Leave them (they are shown to local subscribers only).
    Ignore,
    /// An empty answer to a catch-up: the writer confirmed that this copy holds its whole log, so it
    /// holds every acknowledged write (it is whole again).
    Level,
}

/// What the runtime is to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The data position is now this (the election compares it).
    Position((Term, Epoch)),
    /// The copy's newest configuration is now this one.
    Configuration(Configuration),
    /// Acknowledge `epoch` to `to` (the parent): a voter's durable acknowledgement, or a learner's
    /// progress report (`durable: false`, never counted).
    Ack {
        to: NodeId,
        epoch: Epoch,
        durable: bool,
    },
    /// Ask the writer, through `to`, for the entries after this copy's.
    CatchUp { to: NodeId, request: CatchUp },
    /// The copy reached an accepting writer: it holds every acknowledged write again (whole).
    CaughtUp,
    /// The copy holds another history: discard it and start again from nothing.
    Discard,
}

/// The copy's state (see the module documentation).
#[derive(Debug, Clone)]
pub struct Replica {
    me: NodeId,
    applied: Epoch,
    /// The term of the entry at `applied` (zero at epoch 0).
    applied_term: Term,
    /// The last epoch handed to the applier (at least `applied` once it is done).
    queued: Epoch,
    asked_at: Option<Millis>,
    /// The writer that confirmed this copy is a prefix of its log.
    verified_by: Option<NodeId>,
    /// The newest configuration applied.
    configuration: Option<Configuration>,
    /// The newest configuration handed to the applier.
    queued_configuration: Option<Configuration>,
    /// The last progress reported (or acknowledged).
    progress_sent: Option<Epoch>,
}

impl Replica {
    /// A copy that holds the log up to `applied` (an entry of `applied_term`) and `configuration`.
    pub fn new(
        me: NodeId,
        applied: Epoch,
        applied_term: Term,
        configuration: Option<Configuration>,
    ) -> Self {
        Self {
            me,
            applied,
            applied_term,
            queued: applied,
            asked_at: None,
            verified_by: None,
            queued_configuration: configuration.clone(),
            configuration,
            progress_sent: None,
        }
    }

    pub fn applied(&self) -> Epoch {
        self.applied
    }

    /// The writer that confirmed this copy (its reads are fresh enough for that writer's clients).
    pub fn verified_by(&self) -> Option<NodeId> {
        self.verified_by
    }

    /// Whether this copy's acknowledgements count (before the first configuration, every copy's do).
    pub fn is_voter(&self) -> bool {
        self.configuration
            .as_ref()
            .is_none_or(|configuration| configuration.contains(self.me))
    }

    /// Entries arrived: what to do with them.
    pub fn receive(&mut self, place: Place, incoming: &Incoming) -> Receipt {
        if place.parent != Some(incoming.from) || place.leader.is_none() {
            return Receipt::Ignore;
        }
        if incoming.confirmed {
            self.verified_by = place.leader;
            // The request is answered: the next one may go at once. (A commit that came before
            // this answer was ignored, unconfirmed; the gap it leaves must not wait out the
            // spacing, or the voter's acknowledgements stop for a second.)
            self.asked_at = None;
        }
        let Some(last) = incoming.last else {
            // Without this, a copy whose catch-up ended exactly on a full answer would never be
            // whole again: the commits that follow keep it level, so it never asks again.
            return if incoming.confirmed {
                Receipt::Level
            } else {
                Receipt::Ignore
            };
        };
        if self.verified_by != place.leader {
            return Receipt::Ignore;
        }
        self.queued = self.queued.max(last);
        if let Some(configuration) = &incoming.configuration {
            self.queued_configuration = Some(configuration.clone());
        }
        Receipt::Apply {
            durable: self
                .queued_configuration
                .as_ref()
                .is_none_or(|configuration| configuration.contains(self.me)),
        }
    }

    /// The applier finished a transaction; `position` is the data position published now.
    pub fn applied_outcome(
        &mut self,
        now: Millis,
        place: Place,
        position: (Term, Epoch),
        outcome: Outcome,
    ) -> Vec<Command> {
        let mut commands = Vec::new();
        match outcome {
            Outcome::Applied(done) => {
                if let Some(configuration) = done.configuration
                    && self.configuration.as_ref() != Some(&configuration)
                {
                    self.configuration = Some(configuration.clone());
                    commands.push(Command::Configuration(configuration));
                }
                if let Some(term) = done.term {
                    self.applied_term = term;
                }
                self.applied = self.applied.max(done.epoch);
                let confirmed = self.verified_by == place.leader;
                if done.more {
                    self.asked_at = None;
                }
                let term = position.0.max(done.newest_term.unwrap_or_default());
                commands.push(Command::Position((term, done.epoch)));
                if confirmed
                    && self.is_voter()
                    && done.durable
                    && let Some(parent) = place.parent
                {
                    self.progress_sent = Some(done.epoch);
                    commands.push(Command::Ack {
                        to: parent,
                        epoch: done.epoch,
                        durable: true,
                    });
                }
                if done.more {
                    commands.extend(self.ask(now, place));
                }
                if confirmed && done.reached_writer {
                    commands.push(Command::CaughtUp);
                }
            }
            Outcome::Gap => {
                self.queued = self.applied;
                commands.extend(self.ask(now, place));
            }
            Outcome::Diverged => commands.push(Command::Discard),
            Outcome::Failed => self.queued = self.applied,
        }
        commands
    }

    /// The writer's log ends at `epoch` (its parent passed that on): ask for what this copy lacks, or
    /// to be confirmed by a writer that has not confirmed it yet.
    pub fn writer_at(&mut self, now: Millis, place: Place, epoch: Epoch) -> Option<Command> {
        if self.verified_by != place.leader {
            // Only an accepting writer's positions reach here, and it answers catch-ups now.
            self.asked_at = None;
            self.ask(now, place)
        } else if epoch > self.applied.max(self.queued) {
            // The commits up to `epoch` came before this (one link keeps its order): some were
            // missed.
            self.ask(now, place)
        } else {
            None
        }
    }

    /// Asks the writer for the entries after this copy's, at most every [`CATCH_UP_SPACING`].
    pub fn ask(&mut self, now: Millis, place: Place) -> Option<Command> {
        if self
            .asked_at
            .is_some_and(|at| now.since(at) < CATCH_UP_SPACING)
        {
            return None;
        }
        self.asked_at = Some(now);
        Some(Command::CatchUp {
            to: place.parent?,
            request: CatchUp::after(self.applied, self.applied_term),
        })
    }

    /// A learner tells the writer how far it got, when that changed (the writer picks caught-up
    /// learners as voters and shows their lag). A voter's acknowledgements already say it, and a
    /// report without `durable` would take its acknowledgement back.
    pub fn report_progress(&mut self, place: Place) -> Option<Command> {
        if self.progress_sent == Some(self.applied) || self.verified_by.is_none() || self.is_voter()
        {
            return None;
        }
        let to = place.parent?;
        self.progress_sent = Some(self.applied);
        Some(Command::Ack {
            to,
            epoch: self.applied,
            durable: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: NodeId = NodeId(3);
    const PARENT: NodeId = NodeId(2);
    const PLACE: Place = Place {
        parent: Some(PARENT),
        leader: Some(NodeId(1)),
    };
    const APPLY: Receipt = Receipt::Apply { durable: true };
    const RELAXED: Receipt = Receipt::Apply { durable: false };

    fn voters(ids: &[u64]) -> Configuration {
        Configuration::new(1, ids.iter().copied().map(NodeId))
    }

    fn commits(last: u64) -> Incoming {
        Incoming {
            from: PARENT,
            last: Some(Epoch(last)),
            configuration: None,
            confirmed: false,
        }
    }

    fn answer(last: Option<u64>) -> Incoming {
        Incoming {
            last: last.map(Epoch),
            confirmed: true,
            ..commits(0)
        }
    }

    fn applied(epoch: u64, term: u64) -> Applied {
        Applied {
            epoch: Epoch(epoch),
            term: Some(Term(term)),
            newest_term: Some(Term(term)),
            configuration: None,
            durable: true,
            more: false,
            reached_writer: false,
        }
    }

    #[test]
    fn commits_wait_until_the_writer_confirmed_the_copy_and_come_only_from_the_parent() {
        let mut copy = Replica::new(ME, Epoch(4), Term(7), Some(voters(&[1, 2, 3])));
        assert_eq!(copy.receive(PLACE, &commits(5)), Receipt::Ignore);
        assert_eq!(copy.receive(PLACE, &answer(None)), Receipt::Level);
        assert_eq!(copy.verified_by(), Some(NodeId(1)));
        assert_eq!(copy.receive(PLACE, &commits(5)), APPLY);
        let stranger = Incoming {
            from: NodeId(9),
            ..commits(6)
        };
        assert_eq!(copy.receive(PLACE, &stranger), Receipt::Ignore);
        let no_leader = Place {
            leader: None,
            ..PLACE
        };
        assert_eq!(copy.receive(no_leader, &commits(6)), Receipt::Ignore);
        // Another writer: its confirmation is needed again.
        let other = Place {
            leader: Some(NodeId(5)),
            ..PLACE
        };
        assert_eq!(copy.receive(other, &commits(6)), Receipt::Ignore);
        // Commits carry no news: nothing to apply is nothing at all.
        let empty = Incoming {
            last: None,
            ..commits(0)
        };
        assert_eq!(copy.receive(PLACE, &empty), Receipt::Ignore);
    }

    #[test]
    fn a_learner_applies_relaxed_and_the_batch_that_makes_it_a_voter_is_durable() {
        let mut copy = Replica::new(ME, Epoch(0), Term(0), None);
        // Before any configuration every copy counts.
        assert_eq!(copy.receive(PLACE, &answer(Some(1))), APPLY);
        let first = Incoming {
            configuration: Some(voters(&[1, 2])),
            ..commits(2)
        };
        assert_eq!(copy.receive(PLACE, &first), RELAXED);
        assert_eq!(copy.receive(PLACE, &commits(3)), RELAXED);
        let joined = Incoming {
            configuration: Some(voters(&[1, 2, 3])),
            ..commits(4)
        };
        assert_eq!(copy.receive(PLACE, &joined), APPLY);
        assert_eq!(copy.receive(PLACE, &commits(5)), APPLY);
    }

    #[test]
    fn a_voter_publishes_its_position_then_acknowledges_and_a_learner_reports_at_housekeeping() {
        let mut copy = Replica::new(ME, Epoch(4), Term(7), Some(voters(&[1, 2, 3])));
        copy.receive(PLACE, &answer(Some(6)));
        let position = (Term(7), Epoch(4));
        assert_eq!(
            copy.applied_outcome(Millis(0), PLACE, position, Outcome::Applied(applied(6, 9))),
            [
                Command::Position((Term(9), Epoch(6))),
                Command::Ack {
                    to: PARENT,
                    epoch: Epoch(6),
                    durable: true
                },
            ]
        );
        assert_eq!(copy.report_progress(PLACE), None);
        // A configuration without it makes it a learner: relaxed, reported at housekeeping once.
        let learner = Applied {
            configuration: Some(voters(&[1, 2, 4])),
            durable: false,
            ..applied(8, 9)
        };
        let position = (Term(9), Epoch(6));
        assert_eq!(
            copy.applied_outcome(Millis(1), PLACE, position, Outcome::Applied(learner)),
            [
                Command::Configuration(voters(&[1, 2, 4])),
                Command::Position((Term(9), Epoch(8))),
            ]
        );
        assert!(!copy.is_voter());
        assert_eq!(
            copy.report_progress(PLACE),
            Some(Command::Ack {
                to: PARENT,
                epoch: Epoch(8),
                durable: false
            })
        );
        assert_eq!(copy.report_progress(PLACE), None);
    }

    #[test]
    fn an_unconfirmed_or_relaxed_apply_is_not_acknowledged() {
        let mut copy = Replica::new(ME, Epoch(4), Term(7), None);
        let position = (Term(7), Epoch(4));
        // Applied before the writer confirmed (commits queued under an earlier writer).
        assert_eq!(
            copy.applied_outcome(Millis(0), PLACE, position, Outcome::Applied(applied(5, 7))),
            [Command::Position((Term(7), Epoch(5)))]
        );
        copy.receive(PLACE, &answer(None));
        let relaxed = Applied {
            durable: false,
            ..applied(6, 7)
        };
        assert_eq!(
            copy.applied_outcome(Millis(0), PLACE, position, Outcome::Applied(relaxed)),
            [Command::Position((Term(7), Epoch(6)))]
        );
    }

    #[test]
    fn catch_up_requests_are_spaced_unless_an_answer_came_full() {
        let mut copy = Replica::new(ME, Epoch(4), Term(7), None);
        let request = |from, last_term| Command::CatchUp {
            to: PARENT,
            request: CatchUp {
                from: Epoch(from),
                last_term: Term(last_term),
            },
        };
        assert_eq!(copy.ask(Millis(0), PLACE), Some(request(5, 7)));
        assert_eq!(copy.ask(Millis(999), PLACE), None);
        copy.receive(PLACE, &answer(Some(1004)));
        let full = Applied {
            more: true,
            ..applied(1004, 8)
        };
        assert_eq!(
            copy.applied_outcome(
                Millis(1001),
                PLACE,
                (Term(7), Epoch(4)),
                Outcome::Applied(full)
            ),
            [
                Command::Position((Term(8), Epoch(1004))),
                Command::Ack {
                    to: PARENT,
                    epoch: Epoch(1004),
                    durable: true
                },
                request(1005, 8),
            ]
        );
        let last = Applied {
            reached_writer: true,
            ..applied(1010, 8)
        };
        assert_eq!(
            copy.applied_outcome(
                Millis(1002),
                PLACE,
                (Term(8), Epoch(1004)),
                Outcome::Applied(last)
            ),
            [
                Command::Position((Term(8), Epoch(1010))),
                Command::Ack {
                    to: PARENT,
                    epoch: Epoch(1010),
                    durable: true
                },
                Command::CaughtUp,
            ]
        );
    }

    #[test]
    fn an_answer_ends_the_spacing_so_a_gap_found_right_after_it_is_asked_for_at_once() {
        let mut copy = Replica::new(ME, Epoch(0), Term(0), None);
        assert!(copy.ask(Millis(0), PLACE).is_some());
        // Commit 1 arrives before the (empty) answer: ignored. Then the answer confirms the copy.
        assert_eq!(copy.receive(PLACE, &commits(1)), Receipt::Ignore);
        assert_eq!(copy.receive(PLACE, &answer(None)), Receipt::Level);
        // Commit 2 does not continue the copy: asked for at once, not a second later.
        assert_eq!(copy.receive(PLACE, &commits(2)), APPLY);
        assert_eq!(
            copy.applied_outcome(Millis(10), PLACE, (Term(0), Epoch(0)), Outcome::Gap),
            [Command::CatchUp {
                to: PARENT,
                request: CatchUp {
                    from: Epoch(1),
                    last_term: Term(0)
                }
            }]
        );
    }

    #[test]
    fn a_writer_position_beyond_the_copy_or_from_an_unconfirming_writer_asks_to_catch_up() {
        let mut copy = Replica::new(ME, Epoch(4), Term(7), None);
        copy.receive(PLACE, &answer(None));
        assert_eq!(copy.writer_at(Millis(0), PLACE, Epoch(4)), None);
        assert_eq!(copy.receive(PLACE, &commits(6)), APPLY);
        assert_eq!(copy.writer_at(Millis(0), PLACE, Epoch(6)), None, "queued");
        assert!(copy.writer_at(Millis(0), PLACE, Epoch(7)).is_some());
        assert_eq!(copy.writer_at(Millis(10), PLACE, Epoch(8)), None, "spaced");
        // A new writer has not confirmed this copy: ask at once, whatever was asked before.
        let other = Place {
            leader: Some(NodeId(5)),
            ..PLACE
        };
        assert!(copy.writer_at(Millis(20), other, Epoch(4)).is_some());
    }

    #[test]
    fn a_gap_asks_again_from_what_is_applied_and_divergence_discards() {
        let mut copy = Replica::new(ME, Epoch(4), Term(7), None);
        copy.receive(PLACE, &answer(Some(9)));
        assert_eq!(
            copy.applied_outcome(Millis(0), PLACE, (Term(7), Epoch(4)), Outcome::Gap),
            [Command::CatchUp {
                to: PARENT,
                request: CatchUp {
                    from: Epoch(5),
                    last_term: Term(7)
                }
            }]
        );
        // The gap reset what was queued: the writer's position at 6 is beyond the copy again.
        assert!(copy.writer_at(Millis(5000), PLACE, Epoch(6)).is_some());
        assert_eq!(
            copy.applied_outcome(Millis(0), PLACE, (Term(7), Epoch(4)), Outcome::Diverged),
            [Command::Discard]
        );
        assert_eq!(
            copy.applied_outcome(Millis(0), PLACE, (Term(7), Epoch(4)), Outcome::Failed),
            []
        );
    }
}
