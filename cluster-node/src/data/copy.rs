//! A copy's side of replication: applying the writer's entries in order on the applier (durably
//! while this node votes, relaxed while it is a learner), acknowledging what it holds (a voter, at
//! once) or reporting progress (a learner, every housekeeping round), catching up after a gap, and
//! knowing whether its copy is whole.

use super::*;
use replication::catch_up::CatchUp;

impl<T: Transport> DataPlane<T> {
    /// A copy applies entries from its parent (coming from the writer) in order, on its applier.
    /// `confirmed` marks the answer to a catch-up: the writer checked that this copy is a prefix of
    /// its log. Before that, commits are ignored (they may extend a history the writer never had).
    /// Commits not applied here are still shown to local subscribers at once.
    pub(super) fn apply_as_replica(&mut self, from: NodeId, batch: Batch, confirmed: bool) {
        let (parent, leader) = {
            let view = self.view.borrow();
            (view.parent, view.leader)
        };
        let accepted = parent == Some(from)
            && leader.is_some()
            && match &mut self.local {
                Local::Replica {
                    verified_by,
                    queued,
                    ..
                } => {
                    if confirmed {
                        *verified_by = leader;
                    }
                    let accepted = *verified_by == leader && !batch.entries.is_empty();
                    if accepted && let Some(last) = batch.entries.last() {
                        *queued = (*queued).max(last.epoch);
                    }
                    accepted
                }
                _ => false,
            };
        if accepted && self.applier.is_some() {
            let mut batch = batch;
            batch.durable = self.queue_configuration(&batch.entries);
            if let Some(applier) = &self.applier {
                applier.apply(batch);
            }
        } else {
            self.show(&batch);
        }
    }

    /// Notes the configurations among entries handed to the applier and says whether they must be
    /// applied durably: while this copy is a voter (or no configuration exists yet, when every copy
    /// counts), or from the entry that makes it one.
    pub(super) fn queue_configuration(&mut self, entries: &[LogEntry]) -> bool {
        if let Some(newest) = newest_configuration(entries.iter()) {
            self.queued_configuration = Some(newest);
        }
        self.queued_configuration
            .as_ref()
            .is_none_or(|configuration| configuration.contains(self.me))
    }

    /// Tells local subscribers (live updates) about commits.
    pub(super) fn show(&self, batch: &Batch) {
        if batch.live {
            for entry in &batch.entries {
                let _ = self.handle.events.send(entry.clone());
            }
        }
    }

    /// The applier finished a transaction: acknowledge what this copy now holds, or catch up, or
    /// discard a copy that took another history.
    pub(super) async fn on_applied(&mut self, done: Applied) {
        stage(&self.metrics, "copy_apply", done.took);
        let count: usize = done.batches.iter().map(|batch| batch.entries.len()).sum();
        self.metrics.copy_apply_entries.observe(count as f64);
        for batch in &done.batches {
            self.show(batch);
        }
        if let Ok(epoch) = &done.result
            && matches!(self.local, Local::Replica { .. })
        {
            let applied = done
                .batches
                .iter()
                .flat_map(|batch| &batch.entries)
                .filter(|entry| entry.epoch <= *epoch);
            if let Some(newest) = newest_configuration(applied) {
                self.set_configuration(Some(newest));
            }
        }
        let voter = self.is_voter() && done.durable;
        let mut caught_up = false;
        let (parent, leader) = {
            let view = self.view.borrow();
            (view.parent, view.leader)
        };
        let Local::Replica {
            applied,
            applied_term,
            queued,
            verified_by,
            asked_at,
            ..
        } = &mut self.local
        else {
            return;
        };
        match done.result {
            Ok(epoch) => {
                let entries = done.batches.iter().flat_map(|batch| &batch.entries);
                if let Some(last) = entries.clone().rfind(|entry| entry.epoch == epoch) {
                    *applied_term = last.term;
                }
                *applied = (*applied).max(epoch);
                // The stored position: its term is the highest of the entries it holds.
                let newest = entries
                    .filter(|entry| entry.epoch <= epoch)
                    .map(|entry| entry.term)
                    .max();
                // A voter acknowledges what it holds durably, at once (a write waits for it); a
                // learner reports its progress every housekeeping round, off the write path.
                let acknowledge = *verified_by == leader && voter;
                let more = done.batches.iter().any(|batch| batch.more);
                if more {
                    *asked_at = None;
                }
                // A catch-up answer that was not full brought this copy to where the (accepting)
                // writer was: it holds every acknowledged write again.
                caught_up = *verified_by == leader
                    && done.batches.iter().any(|batch| !batch.live && !batch.more);
                let term = self.position.borrow().0.max(newest.unwrap_or_default());
                self.set_position((term, epoch));
                // The position is published before the ack, so whoever sees the write acknowledged
                // sees it here too.
                if acknowledge && let Some(parent) = parent {
                    self.progress_sent = Some(epoch);
                    self.send(
                        parent,
                        &DataMessage::Ack {
                            node: self.me,
                            epoch,
                            durable: true,
                        },
                    );
                }
                if more {
                    // A full catch-up answer means more is waiting: ask again at once.
                    self.ask_catch_up();
                }
            }
            Err(StorageError::Gap { .. }) => {
                *queued = *applied;
                self.ask_catch_up();
            }
            Err(StorageError::Diverged { epoch, reason }) => {
                tracing::warn!(target: HEADLINE, epoch, %reason, "the writer's log does not apply to this copy; discarding it");
                self.discard_local_copy().await;
            }
            Err(error) => {
                *queued = *applied;
                tracing::error!(%error, "cannot apply the writer's log");
            }
        }
        if caught_up && !self.whole {
            self.set_whole(true);
        }
    }

    /// Whether this copy holds everything this node acknowledged; reported up in `Summary`, shown
    /// on `/status`.
    pub(super) fn set_whole(&mut self, whole: bool) {
        if self.whole != whole {
            self.whole = whole;
            if whole {
                tracing::info!(target: HEADLINE, "this copy has caught up: it counts for a majority of the voters again");
            }
            self.status.update(|status| status.whole = whole);
            self.send_summary(false);
        }
    }

    pub(super) fn ask_catch_up(&mut self) {
        let parent = self.view.borrow().parent;
        let Local::Replica {
            applied,
            applied_term,
            asked_at,
            ..
        } = &mut self.local
        else {
            return;
        };
        // One request per second at most: the answer is on its way.
        if asked_at.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *asked_at = Some(Instant::now());
        let request = CatchUp::after(*applied, *applied_term);
        let message = DataMessage::CatchUp {
            origin: self.me,
            from: request.from,
            last_term: request.last_term,
            held: *self.position.borrow(),
        };
        if let Some(parent) = parent {
            self.send(parent, &message);
        }
    }

    /// A learner tells the writer how far it got (the writer picks caught-up learners as voters and
    /// shows their lag); a voter's acknowledgements already say it.
    pub(super) fn report_progress(&mut self) {
        let parent = self.view.borrow().parent;
        let Local::Replica {
            applied,
            verified_by,
            ..
        } = &self.local
        else {
            return;
        };
        let applied = *applied;
        // A voter's acknowledgements already say it (and a report without `durable` would take
        // its acknowledgement back).
        if self.progress_sent == Some(applied) || verified_by.is_none() || self.is_voter() {
            return;
        }
        if let Some(parent) = parent {
            self.progress_sent = Some(applied);
            self.send(
                parent,
                &DataMessage::Ack {
                    node: self.me,
                    epoch: applied,
                    durable: false,
                },
            );
        }
    }
}
