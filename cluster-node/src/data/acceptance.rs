//! One writer at a time: subtree summaries travel up the tree, and the root decides with
//! `replication::Root` (claims, starts, stops) whether it accepts writes (and asks for an election
//! when a node of its tree holds newer data). Its storage commands run off the plane's task.

use super::*;
use replication::root::{Command, Situation};

impl<T: Transport> DataPlane<T> {
    /// What the current children reported, and this node's own whole copy.
    pub(super) fn below(&self) -> Below {
        let view = self.view.borrow();
        Below::gather(
            self.me,
            self.whole,
            self.promised,
            view.children.iter().map(|child| self.summaries.get(child)),
        )
    }

    /// The writer tells its children where its log is and whether it accepts writes: idle copies
    /// notice what they missed, new ones learn that their catch-up will be answered, and input nodes
    /// whether their users' writes can succeed. Sent while not accepting too, so that a stop is
    /// known down the tree at once rather than when the positions stop coming.
    pub(super) fn send_position(&self) {
        if let Local::Writer { root, .. } = &self.local {
            let (term, epoch) = *self.position.borrow();
            self.send_to_children(&DataMessage::Position {
                term,
                epoch,
                accepting: root.accepting(),
            });
        }
    }

    /// Reports this subtree to the parent: on change, or always when `force`.
    pub(super) fn send_summary(&mut self, force: bool) {
        let Some(parent) = self.view.borrow().parent else {
            self.sent_summary = None;
            return;
        };
        let summary = self.below().summary(*self.position.borrow());
        if !force && self.sent_summary.as_ref() == Some(&(parent, summary.clone())) {
            return;
        }
        let message = DataMessage::summary(&summary);
        self.sent_summary = Some((parent, summary));
        self.send(parent, &message);
    }

    /// Feeds what the tree reports to the root's state machine (`replication::root`) and runs the
    /// commands it answers with.
    pub(super) fn evaluate_writer(&mut self) {
        if !matches!(self.local, Local::Writer { .. }) {
            return;
        }
        let now = self.now();
        let view = self.view.borrow().clone();
        let own = *self.position.borrow();
        let below = self.below();
        let newer = below
            .newer_than(own)
            .max(self.newer_seen.filter(|seen| *seen > own));
        let situation = Situation {
            now,
            tree_term: view.term,
            own,
            newer,
            promises: &below.promises,
            tree: TreeReport {
                leads: view.ready && view.parent.is_none() && view.leader == Some(self.me),
                members: tree_members(self.me, &view),
                all_reported: below.all_reported(view.routes.len()),
                whole: below.whole.clone(),
                newer_data: false,
                registered: view.registered,
                promised: Default::default(),
                claimants: Default::default(),
            },
            configuration: self.configuration.as_ref(),
        };
        let Local::Writer { root, .. } = &mut self.local else {
            return;
        };
        for command in root.evaluate(situation) {
            self.run_root_command(command, &view);
        }
    }

    fn run_root_command(&mut self, command: Command, view: &ControlView) {
        match command {
            Command::CallElection {
                newer: (term, epoch),
            } => {
                tracing::warn!(target: HEADLINE, newer_term = term.0, newer_epoch = epoch.0,
                    "a node of this tree holds newer data than this writer; asking for an election");
                let _ = self.election_requests.try_send(());
            }
            Command::Promise(term) => self.store(Stored::Promise { term, root: true }),
            Command::SendClaim(term) => self.send_to_children(&DataMessage::Claim { term }),
            Command::TakeTerm(term) => self.store(Stored::TakeTerm(term)),
            Command::Start(term) => {
                // The first entry of every term restates the voters (or names the first ones): a
                // writer changes the configuration only once an entry of its own term is acknowledged.
                self.voters.start_term(term);
                let voters = match &self.configuration {
                    Some(configuration) => configuration.voters.clone(),
                    None => first_voters(self.me, self.options.replication_factor, &view.children),
                };
                if let Local::Writer { service, .. } = &self.local {
                    self.submit_configuration(service.clone(), voters);
                }
                self.publish_accepting(true);
                self.send_position();
                tracing::info!(target: HEADLINE, term = view.term, data_term = term.0,
                    tree = view.tree_size(), voters = %self.voters_text(), "accepting writes");
            }
            Command::Stop(reason) => {
                self.publish_accepting(false);
                self.send_position();
                let voters = self.voters_text();
                match reason {
                    Acceptance::NoMajority => {
                        tracing::warn!(target: HEADLINE, tree = view.tree_size(), %voters, registered = view.registered,
                        "not accepting writes: this tree does not hold a majority of the voters (of the registered nodes before the first configuration)")
                    }
                    Acceptance::NewerData => {
                        tracing::warn!(target: HEADLINE, "not accepting writes: a node of this tree holds newer data")
                    }
                    _ => {
                        tracing::warn!(target: HEADLINE, "not accepting writes: no longer leading a ready tree")
                    }
                }
            }
            Command::NoTermLeft { seen } => {
                tracing::error!(
                    tree_term = view.term,
                    seen = seen.0,
                    "no data term is left above the ones seen; not accepting writes"
                );
            }
        }
    }

    fn voters_text(&self) -> String {
        self.configuration
            .as_ref()
            .map_or_else(|| "none yet".to_string(), ToString::to_string)
    }

    /// A copy promises `term` to the root that claims it, on disk, unless it promised as much
    /// already, and reports its promise up the tree once it is written.
    pub(super) fn promise(&mut self, term: Term) {
        let promised = self.promised.max(self.promising);
        if promised.is_none_or(|promised| promised >= term) {
            // No copy here (a forwarder passes claims on only), or promised already.
            return;
        }
        self.promising = Some(term);
        self.store(Stored::Promise { term, root: false });
    }

    /// Runs a storage command of the replication rules off the plane's task (a busy applier may
    /// hold SQLite's write lock for a while); its result comes back as [`LocalOutcome::Stored`].
    fn store(&self, command: Stored) {
        let database = match &self.local {
            Local::Replica { service, .. } | Local::Writer { service, .. } => {
                service.database().clone()
            }
            Local::None => return,
        };
        let outcomes = self.outcomes_tx.clone();
        tokio::spawn(async move {
            let result = match command {
                Stored::Promise { term, .. } => {
                    database.promise(term).await.map(|held| (held, Epoch(0)))
                }
                Stored::TakeTerm(term) => match database.set_term(term).await {
                    Ok(()) => database.position().await,
                    Err(error) => Err(error),
                },
            };
            let _ = outcomes
                .send(LocalOutcome::Stored { command, result })
                .await;
        });
    }

    /// A storage command's result: the root's state machine hears it and decides again; a copy's
    /// promise goes up in its summary.
    pub(super) fn on_stored(
        &mut self,
        command: Stored,
        result: Result<(Term, Epoch), StorageError>,
    ) {
        match (command, result) {
            (Stored::Promise { term, root }, result) => {
                if self.promising == Some(term) {
                    self.promising = None;
                }
                match &result {
                    // Only while a database is open: a promise is a fact about it.
                    Ok((held, _)) => {
                        if self.promised.is_some() {
                            self.promised = self.promised.max(Some(*held));
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, term = term.0, "cannot promise a claimed data term")
                    }
                }
                if root {
                    if let Local::Writer { root, .. } = &mut self.local {
                        if result.is_ok() && root.claim().is_none() {
                            tracing::info!(target: HEADLINE, data_term = term.0, "claiming a data term; writing once a majority of the voters promised it");
                        }
                        root.promised(term, result.map(|(held, _)| held).map_err(|_| ()));
                    }
                    self.evaluate_writer();
                } else {
                    self.send_summary(false);
                }
            }
            (Stored::TakeTerm(term), result) => {
                let Local::Writer { root, .. } = &mut self.local else {
                    return;
                };
                root.term_taken(term, result.is_ok());
                match result {
                    Ok(position) => self.set_position(position),
                    Err(error) => {
                        tracing::error!(%error, term = term.0, "cannot take the claimed data term; not accepting writes")
                    }
                }
                self.evaluate_writer();
            }
        }
    }

    /// The one place the fence of a writer moves: the flag its waiting writes watch, `/status` and
    /// the gauge move together (the root's state machine decides).
    pub(super) fn publish_accepting(&self, accepting: bool) {
        self.acks.send_modify(|acks| acks.fenced = !accepting);
        self.status
            .update(|status| status.accepting_writes = accepting);
        self.metrics.writer_accepting.set(i64::from(accepting));
    }

    /// Leaving the writer role (or stalled): pending acknowledgements fail, nothing more is accepted.
    pub(super) fn fence_writer(&mut self) {
        if let Local::Writer { root, .. } = &mut self.local {
            if root.halt() {
                tracing::warn!(target: HEADLINE, "no longer the writer; pending writes are not acknowledged");
            }
            self.publish_accepting(false);
            self.acks.send_modify(|acks| acks.durable.clear());
        }
    }
}
