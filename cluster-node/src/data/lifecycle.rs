//! Roles and the database: following the tree (links, the writer or copy role, the database opened,
//! handed over or closed), the voter configuration this node's log holds, and the data position the
//! election compares.

use super::*;

impl<T: Transport> DataPlane<T> {
    pub(super) async fn on_view_change(&mut self) {
        let view = self.view.borrow_and_update().clone();
        self.relay_tree_changed();
        if (view.term, view.parent) != self.pending_path {
            // A new tree or a new parent: answers to requests sent the old way may never come (their
            // route or their writer is gone). Failing them now, retryable, lets clients retry at once
            // instead of waiting for the timeout; a write that did commit is found by its client_id.
            self.pending_path = (view.term, view.parent);
            for (_, reply) in self.pending.drain() {
                let _ = reply.send(Err(unavailable()));
            }
        }
        self.follow_links(&view);
        self.summaries
            .retain(|child, _| view.children.contains(child));
        self.newer_seen = None;
        let wants_writer = view.roles.contains(&overlay::Role::Writer);
        // Every node below the root keeps a copy of the data (durability, see `replication`) and
        // answers the reads it is fresh enough for from it. While the tree is being rebuilt
        // (not ready) a node keeps what it has, so a heal does not close and reopen databases.
        let keeps_copy = !wants_writer && view.parent.is_some();
        if view.ready {
            match (&self.local, wants_writer, keeps_copy) {
                (Local::Writer { .. }, true, _) => {}
                (Local::Replica { copy, .. }, false, true) => {
                    // Same role under another writer: its log must be checked again.
                    if copy.verified_by().is_some() && copy.verified_by() != view.leader {
                        self.become_replica().await;
                    }
                }
                (_, true, _) => self.become_writer().await,
                (_, false, true) => self.become_replica().await,
                (Local::None, false, false) => {}
                (_, false, false) => self.close_database().await,
            }
        }
        if let Local::Writer { .. } = self.local {
            let me = self.me;
            self.acks.send_modify(|acks| {
                acks.writer = Some(me);
                acks.tree_copies = view.routes.keys().copied().collect();
                acks.registered = view.registered;
                // A copy that left the tree may come back with less (a lost disk): what it
                // reported before counts no more; it reports again once it is back.
                let copies = &acks.tree_copies;
                acks.durable.retain(|copy, _| copies.contains(copy));
            });
        }
        self.publish_position().await;
        self.send_summary(false);
        self.evaluate_writer();
    }

    /// Keeps data-plane links to the parent and children only: links to nodes that left the
    /// neighbourhood are closed, new ones opened lazily by the transport.
    pub(super) fn follow_links(&mut self, view: &ControlView) {
        let wanted: BTreeSet<NodeId> = view
            .parent
            .iter()
            .chain(view.children.iter())
            .copied()
            .collect();
        for gone in self.peers.difference(&wanted).copied().collect::<Vec<_>>() {
            self.transport.remove_peer(gone);
            self.peers.remove(&gone);
        }
        for peer in wanted {
            if self.peers.contains(&peer) {
                continue;
            }
            match self
                .addresses
                .get(peer)
                .and_then(|n| data_addr(&n.host, n.data_port))
            {
                Some(addr) => {
                    self.transport.set_peer(peer, addr);
                    self.peers.insert(peer);
                }
                None => tracing::warn!(%peer, "no data address known for a tree neighbour"),
            }
        }
    }

    pub(super) async fn become_writer(&mut self) {
        self.stop_applier().await;
        self.fence_writer();
        let Some(database) = self.open_database().await else {
            return;
        };
        let configuration = database.configuration().await.ok().flatten();
        self.promised = database.promised().await.ok();
        let service = LocalService::writer(database, self.options.service.clone());
        self.commits = service.subscribe();
        self.voters = VoterTracking::default();
        // The new writer service counts from zero.
        self.writer_exported = Default::default();
        self.local = Local::Writer {
            service,
            root: Root::new(self.me),
        };
        self.set_configuration(configuration);
        self.publish_copy_status();
        self.slot.set(self.database.clone(), "writer");
        tracing::info!(target: HEADLINE, "serving as the writer (accepting writes once the tree has a majority and no newer data)");
    }

    pub(super) async fn become_replica(&mut self) {
        self.stop_applier().await;
        self.retire_writer().await;
        self.commits = None;
        let Some(database) = self.open_database().await else {
            return;
        };
        let applied = database.epoch().await.unwrap_or_default();
        let applied_term = match applied {
            Epoch(0) => Term(0),
            epoch => database
                .term_at(epoch)
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
        };
        let configuration = database.configuration().await.ok().flatten();
        self.applier = Some(Applier::start(database.clone(), self.applied_tx.clone()));
        self.promised = database.promised().await.ok();
        self.local = Local::Replica {
            service: LocalService::replica(database),
            copy: Replica::new(self.me, applied, applied_term, configuration.clone()),
        };
        self.set_configuration(configuration);
        self.publish_copy_status();
        self.slot.set(self.database.clone(), "replica");
        tracing::info!(target: HEADLINE, epoch = applied.0, "keeping a copy of the data");
        self.ask_catch_up();
    }

    /// Before the database changes hands: what the applier took is applied (or failed), and its
    /// results, which belong to the copy being replaced, are dropped.
    pub(super) async fn stop_applier(&mut self) {
        if let Some(applier) = self.applier.take() {
            applier.stop().await;
        }
        while let Ok(done) = self.applied_rx.try_recv() {
            for batch in &done.batches {
                self.show(batch);
            }
        }
    }

    /// Leaving the writer role for good: no write of that role may land after this (a copy must
    /// hold only what the writer it follows sent), so the writer service is retired first.
    pub(super) async fn retire_writer(&mut self) {
        self.fence_writer();
        if let Local::Writer { service, .. } = &self.local {
            service.retire().await;
        }
    }

    /// Drops this copy (entries the writer never had) and starts again from an empty database.
    pub(super) async fn discard_local_copy(&mut self) {
        self.close_database().await;
        if let Err(error) = Database::destroy(&self.options.data_dir) {
            tracing::error!(%error, "cannot delete the diverged database");
            return;
        }
        self.metrics.data_copies_discarded.inc();
        self.set_whole(false);
        self.position.send_replace((Term(0), Epoch(0)));
        let view = self.view.borrow().clone();
        if view.parent.is_some() && !view.roles.contains(&overlay::Role::Writer) {
            self.become_replica().await;
        }
    }

    pub(super) async fn open_database(&mut self) -> Option<Database> {
        if let Some(database) = &self.database {
            return Some(database.clone());
        }
        match Database::open(&self.options.data_dir, self.options.database.clone()).await {
            Ok(database) => {
                self.database = Some(database.clone());
                Some(database)
            }
            Err(error) => {
                tracing::error!(%error, "cannot open the database");
                None
            }
        }
    }

    pub(super) async fn close_database(&mut self) {
        self.stop_applier().await;
        self.retire_writer().await;
        self.commits = None;
        self.local = Local::None;
        self.promised = None;
        self.configuration = None;
        self.publish_copy_status();
        self.slot.clear();
        if let Some(database) = self.database.take() {
            database.close().await;
        }
    }

    /// Before any role is known, a node that kept a database from an earlier run reports its
    /// position, so the election can prefer the node with the most recent data.
    pub(super) async fn report_stored_position(&mut self) {
        if !self
            .options
            .data_dir
            .join(crate::storage::DATABASE_FILE)
            .exists()
        {
            return;
        }
        // Opened only to read the position: nodes that are neither writer nor replica keep no database open.
        match Database::open(&self.options.data_dir, self.options.database.clone()).await {
            Ok(database) => {
                if let Ok(position) = database.position().await {
                    self.position.send_replace(position);
                }
                database.close().await;
            }
            Err(error) => tracing::warn!(%error, "cannot read the stored data position"),
        }
    }

    pub(super) async fn publish_position(&mut self) {
        let Some(database) = &self.database else {
            return;
        };
        if let Ok(position) = database.position().await {
            self.set_position(position);
        }
    }

    /// Tells the control plane (the election) the data position, when it changed.
    pub(super) fn set_position(&self, position: (Term, Epoch)) {
        self.position.send_if_modified(|current| {
            let changed = *current != position;
            *current = position;
            changed
        });
    }

    /// Whether this node's copy counts for acknowledgements (before the first configuration, every
    /// copy does).
    pub(super) fn is_voter(&self) -> bool {
        self.configuration
            .as_ref()
            .is_none_or(|configuration| configuration.contains(self.me))
    }

    /// The local log holds a newer configuration: the writer counts with it, a copy knows whether it
    /// votes, and `/status` and the metrics show it.
    pub(super) fn set_configuration(&mut self, configuration: Option<Configuration>) {
        if configuration == self.configuration {
            return;
        }
        if let Some(configuration) = &configuration {
            tracing::info!(target: HEADLINE, voters = %configuration, "voter configuration");
            self.metrics.voters.set(configuration.voters.len() as i64);
        }
        self.acks
            .send_modify(|acks| acks.configuration = configuration.clone());
        self.configuration = configuration;
        self.publish_copy_status();
    }

    /// `/status`: whether the writer confirmed this copy, and what was last heard from the writer
    /// (what an input node's readiness needs). Published only when it changed.
    pub(super) fn publish_service_state(&mut self) {
        let state = {
            let view = self.view.borrow();
            let heard = self
                .writer_heard
                .filter(|heard| {
                    heard.term == view.term
                        && view.parent.is_some()
                        && heard.at.elapsed() <= WRITER_HEARD_WITHIN
                })
                .map(|heard| heard.accepting);
            match &self.local {
                Local::Writer { root, .. } => (true, Some(root.accepting())),
                Local::Replica { copy, .. } => (
                    copy.verified_by().is_some() && copy.verified_by() == view.leader,
                    heard,
                ),
                Local::None => (false, heard),
            }
        };
        if self.published_service != Some(state) {
            self.published_service = Some(state);
            let (confirmed, writer_accepting) = state;
            self.status.update(|status| {
                status.copy_confirmed = confirmed;
                status.writer_accepting = writer_accepting;
            });
        }
    }

    /// `/status`: the voters this node's log names and what its copy is.
    pub(super) fn publish_copy_status(&self) {
        let voters: Vec<NodeId> = self
            .configuration
            .as_ref()
            .map(|configuration| configuration.voters.iter().copied().collect())
            .unwrap_or_default();
        let copy = match (&self.local, self.is_voter()) {
            (Local::None, _) => crate::status::CopyKind::None,
            (_, true) => crate::status::CopyKind::Voter,
            (_, false) => crate::status::CopyKind::Learner,
        };
        self.status.update(|status| {
            status.voters = voters;
            status.copy = copy;
            status.refresh_roles();
        });
    }
}
