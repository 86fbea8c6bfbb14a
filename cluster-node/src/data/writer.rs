//! The writer's side of replication: sending each group commit down the tree, answering copies'
//! catch-ups from its log, and keeping the voter set (configuration changes decided by
//! `replication::next_change`).

use super::*;
use replication::catch_up::{CatchUp, Verdict, judge};

impl<T: Transport> DataPlane<T> {
    /// The writer's service while this node accepts writes.
    fn accepting_writer(&self) -> Option<LocalService> {
        match &self.local {
            Local::Writer { service, root } if root.accepting() => Some(service.clone()),
            _ => None,
        }
    }

    /// Answers a replica's catch-up (off the plane's task): `Diverged` when its last entry is not in
    /// this log with the same term, else the next batch of the log after it (possibly empty, which
    /// still confirms the replica's copy).
    pub(super) fn serve_catch_up(&mut self, origin: NodeId, from: Epoch, last_term: Term) {
        // Only a writer that knows it holds the newest data of its tree may judge another copy:
        // until then the replica may be the one with more (it asks again every second).
        let Some(service) = self.accepting_writer() else {
            return;
        };
        let request = CatchUp { from, last_term };
        if request.from.0 == 0 {
            return;
        }
        let Some(next_hop) = self.view.borrow().routes.get(&origin).copied() else {
            tracing::debug!(%origin, "no route down to a copy asking for a catch-up");
            return;
        };
        let database = service.database().clone();
        let transport = self.transport.clone();
        let term = self.view.borrow().term;
        tokio::spawn(async move {
            let answer = async {
                let writer_epoch = database.epoch().await?;
                let term_at_check = match request.to_check() {
                    Some(last) if last <= writer_epoch => database.term_at(last).await?,
                    _ => None,
                };
                let message = match judge(request, writer_epoch, term_at_check) {
                    Verdict::Send { from } => DataMessage::Entries {
                        to: origin,
                        entries: database.log_since(from, CATCH_UP_BATCH).await?,
                    },
                    Verdict::Diverged => DataMessage::Diverged {
                        to: origin,
                        writer_epoch,
                    },
                    Verdict::Invalid => return Ok(None),
                };
                Ok::<_, StorageError>(Some(message))
            };
            match answer.await {
                Ok(None) => {}
                Ok(Some(message)) => {
                    let _ = transport.send(next_hop, Bytes::from(message::encode(term, &message)));
                }
                Err(error) => {
                    tracing::error!(%error, %origin, "cannot read the log for a catch-up")
                }
            }
        });
    }

    /// The writer committed `first`, and with it the rest of its group commit (the writer publishes
    /// a group's entries back to back, before it answers anyone): they go down as one message,
    /// encoded once, and to local subscribers.
    pub(super) fn on_commit(&mut self, first: LogEntry) {
        let mut entries = vec![first];
        if let Some(commits) = &mut self.commits {
            while entries.len() < COMMIT_BATCH {
                match commits.try_recv() {
                    Ok(entry) => entries.push(entry),
                    Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "the plane fell behind the writer's log; replicas will catch up"
                        );
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        let message = DataMessage::Commit { entries };
        let raw = Bytes::from(message::encode(self.view.borrow().term, &message));
        self.send_bytes_to_children(&raw);
        let DataMessage::Commit { entries } = message else {
            return;
        };
        if let Some(last) = entries.last() {
            self.set_position((last.term, last.epoch));
        }
        if let Some(first) = entries.first() {
            self.voters.committed(first.term, first.epoch);
        }
        if let Some(newest) = newest_configuration(entries.iter()) {
            self.metrics.configuration_changes.inc();
            self.voters.submitted = false;
            self.set_configuration(Some(newest));
        }
        for entry in entries {
            let _ = self.handle.events.send(entry);
        }
    }

    /// On an accepting writer: starts the next configuration change the rules call for (one at a
    /// time; see `replication::membership`).
    pub(super) fn plan_configuration(&mut self) {
        let Some(service) = self.accepting_writer() else {
            return;
        };
        let view = self.view.borrow().clone();
        let Some(configuration) = self.configuration.clone() else {
            // The first configuration was not written (its job failed): try again.
            if !self.voters.submitted {
                let voters = first_voters(self.me, self.options.replication_factor, &view.children);
                self.submit_configuration(service, voters);
            }
            return;
        };
        let now = Instant::now();
        self.voters
            .observe(&configuration, &tree_members(self.me, &view), now);
        let written = self.position.borrow().1;
        let acknowledged = Epoch(self.acks.borrow().acknowledged(written.0));
        let Some(change) = self.voters.next_change(
            self.me,
            self.options.replication_factor,
            self.options.voter_grace,
            &configuration,
            acknowledged,
            written,
            &view,
            now,
        ) else {
            return;
        };
        tracing::info!(target: HEADLINE, from = %configuration, ?change, "changing the voter configuration");
        let voters = change.apply(&configuration);
        self.submit_configuration(service, voters);
    }

    /// An operator's removal: accepted by an accepting writer unless `replication::removal_refused`
    /// says why not; the configuration changes that follow come from `plan_configuration`.
    pub(super) fn on_removal(&mut self, request: RemovalRequest) {
        let RemovalRequest { node, force, reply } = request;
        let answer = self.accept_removal(node, force);
        match &answer {
            Ok(()) => {
                tracing::warn!(target: HEADLINE, %node, force, "removing a node at the operator's request");
                self.plan_configuration();
            }
            Err(why) => tracing::warn!(%node, force, %why, "removal refused"),
        }
        let _ = reply.send(answer);
    }

    fn accept_removal(&mut self, node: NodeId, force: bool) -> Result<(), String> {
        if self.accepting_writer().is_none() {
            return Err(format!(
                "node {} is not a writer that accepts writes; ask again once a writer does",
                self.me
            ));
        }
        let configuration = self
            .configuration
            .clone()
            .ok_or("the cluster has no voter configuration yet; ask again in a moment")?;
        let tree = tree_members(self.me, &self.view.borrow());
        if let Some(why) = replication::removal_refused(self.me, &configuration, &tree, node, force)
        {
            return Err(why);
        }
        self.voters.removing.insert(node);
        Ok(())
    }

    /// Hands a configuration entry to the writer; its commit updates the configuration.
    pub(super) fn submit_configuration(&mut self, service: LocalService, voters: BTreeSet<NodeId>) {
        self.voters.submitted = true;
        let outcomes = self.outcomes_tx.clone();
        tokio::spawn(async move {
            let result = service.configure(voters).await;
            let _ = outcomes.send(LocalOutcome::Configured(result)).await;
        });
    }

    /// Adds what the writer did since the last export to its counters.
    pub(super) fn export_writer_counts(&mut self) {
        let Local::Writer { service, .. } = &self.local else {
            return;
        };
        let Some(now) = service.writer_counts() else {
            return;
        };
        let last = self.writer_exported;
        self.metrics
            .writer_group_commits
            .inc_by(now.transactions - last.transactions);
        self.metrics
            .writer_requests
            .inc_by(now.requests - last.requests);
        self.writer_exported = now;
    }

    /// On the writer: how far behind each current replica is (stale replicas' series are removed).
    pub(super) fn export_replication_lag(&mut self) {
        let lag = &self.metrics.replication_lag;
        let acks = self.acks.borrow().clone();
        let writer_epoch = self.position.borrow().1;
        let writing = matches!(self.local, Local::Writer { .. });
        for gone in self.lag_reported.difference(&acks.tree_copies) {
            lag.remove(&crate::metrics::ReplicaLabel { replica: gone.0 });
        }
        self.lag_reported.clear();
        if !writing {
            return;
        }
        for copy in &acks.tree_copies {
            let applied = self.voters.progress.get(copy).copied().unwrap_or_default();
            lag.get_or_create(&crate::metrics::ReplicaLabel { replica: copy.0 })
                .set(writer_epoch.0.saturating_sub(applied.0) as i64);
            self.lag_reported.insert(*copy);
        }
    }
}
