//! A copy's side of replication: the runtime around `replication::copy::Copy`, which decides what
//! is applied (durably while this node votes, relaxed while it is a learner), what is acknowledged
//! (a voter, at once) or reported (a learner, every housekeeping round), when to catch up, and what
//! an applied transaction means. Here the entries go to the applier, its transactions come back as
//! outcomes, and the machine's commands are carried out.

use super::*;
use replication::copy::{self, Command, Incoming, Outcome, Place, Receipt};

impl<T: Transport> DataPlane<T> {
    /// Where this node sits in the tree, as the copy's machine sees it.
    fn place(&self) -> Place {
        let view = self.view.borrow();
        Place {
            parent: view.parent,
            leader: view.leader,
        }
    }

    /// Entries from `from` (coming from the writer): applied in order on the applier if the copy's
    /// machine takes them. `confirmed` marks the answer to a catch-up (the writer checked that this
    /// copy is a prefix of its log). Entries not applied here are still shown to local subscribers.
    pub(super) fn apply_as_replica(&mut self, from: NodeId, batch: Batch, confirmed: bool) {
        let place = self.place();
        let incoming = Incoming {
            from,
            last: batch.entries.last().map(|entry| entry.epoch),
            configuration: newest_configuration(batch.entries.iter()),
            confirmed,
        };
        let receipt = match &mut self.local {
            Local::Replica { copy, .. } => copy.receive(place, &incoming),
            _ => Receipt::Ignore,
        };
        match (receipt, &self.applier) {
            (Receipt::Apply { durable }, Some(applier)) => {
                applier.apply(Batch { durable, ..batch })
            }
            (Receipt::Level, _) => self.set_whole(true),
            _ => self.show(&batch),
        }
    }

    /// Tells local subscribers (live updates) about commits.
    pub(super) fn show(&self, batch: &Batch) {
        if batch.live {
            for entry in &batch.entries {
                let _ = self.handle.events.send(entry.clone());
            }
        }
    }

    /// The applier finished a transaction: the copy's machine decides what follows.
    pub(super) async fn on_applied(&mut self, done: Applied) {
        stage(&self.metrics, "copy_apply", done.took);
        let count: usize = done.batches.iter().map(|batch| batch.entries.len()).sum();
        self.metrics.copy_apply_entries.observe(count as f64);
        for batch in &done.batches {
            self.show(batch);
        }
        let outcome = match &done.result {
            Ok(epoch) => {
                let entries = done
                    .batches
                    .iter()
                    .flat_map(|batch| &batch.entries)
                    .filter(|entry| entry.epoch <= *epoch);
                Outcome::Applied(copy::Applied {
                    epoch: *epoch,
                    term: entries
                        .clone()
                        .rfind(|entry| entry.epoch == *epoch)
                        .map(|entry| entry.term),
                    newest_term: entries.clone().map(|entry| entry.term).max(),
                    configuration: newest_configuration(entries),
                    durable: done.durable,
                    more: done.batches.iter().any(|batch| batch.more),
                    reached_writer: done.batches.iter().any(|batch| !batch.live && !batch.more),
                })
            }
            Err(StorageError::Gap { .. }) => Outcome::Gap,
            Err(StorageError::Diverged { epoch, reason }) => {
                tracing::warn!(target: HEADLINE, epoch, %reason, "the writer's log does not apply to this copy; discarding it");
                Outcome::Diverged
            }
            Err(error) => {
                tracing::error!(%error, "cannot apply the writer's log");
                Outcome::Failed
            }
        };
        let (now, place, position) = (self.now(), self.place(), *self.position.borrow());
        let Local::Replica { copy, .. } = &mut self.local else {
            return;
        };
        for command in copy.applied_outcome(now, place, position, outcome) {
            if command == Command::Discard {
                self.discard_local_copy().await;
                return;
            }
            self.copy_command(command);
        }
    }

    /// Carries out one of the copy's commands (a discard is [`Self::discard_local_copy`]).
    pub(super) fn copy_command(&mut self, command: Command) {
        match command {
            Command::Position(position) => self.set_position(position),
            Command::Configuration(configuration) => self.set_configuration(Some(configuration)),
            Command::Ack { to, epoch, durable } => {
                let ack = DataMessage::Ack {
                    node: self.me,
                    epoch,
                    durable,
                };
                self.send(to, &ack);
            }
            Command::CatchUp { to, request } => {
                let message = DataMessage::CatchUp {
                    origin: self.me,
                    from: request.from,
                    last_term: request.last_term,
                    held: *self.position.borrow(),
                };
                self.send(to, &message);
            }
            Command::CaughtUp => self.set_whole(true),
            Command::Discard => {
                tracing::error!("a copy's discard must be awaited; ignored here")
            }
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

    /// The writer's log ends at `epoch` (an accepting writer's position, passed down the tree).
    pub(super) fn writer_at(&mut self, epoch: Epoch) {
        let (now, place) = (self.now(), self.place());
        let Local::Replica { copy, .. } = &mut self.local else {
            return;
        };
        self.metrics
            .replica_lag
            .set(epoch.0.saturating_sub(copy.applied().0) as i64);
        if let Some(command) = copy.writer_at(now, place, epoch) {
            self.copy_command(command);
        }
    }

    pub(super) fn ask_catch_up(&mut self) {
        let (now, place) = (self.now(), self.place());
        if let Local::Replica { copy, .. } = &mut self.local
            && let Some(command) = copy.ask(now, place)
        {
            self.copy_command(command);
        }
    }

    /// A learner tells the writer how far it got (the writer picks caught-up learners as voters and
    /// shows their lag).
    pub(super) fn report_progress(&mut self) {
        let place = self.place();
        if let Local::Replica { copy, .. } = &mut self.local
            && let Some(command) = copy.report_progress(place)
        {
            self.copy_command(command);
        }
    }
}
