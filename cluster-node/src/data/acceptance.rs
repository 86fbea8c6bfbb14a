//! One writer at a time: subtree summaries travel up the tree, and the root decides with
//! `replication::may_accept` whether it accepts writes (and asks for an election when a node of its
//! tree holds newer data).

use super::*;

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

    /// An accepting writer tells its children where its log is (idle replicas notice what they
    /// missed; new ones learn that their catch-up will be answered).
    pub(super) fn send_position(&self) {
        if let Local::Writer { active: true, .. } = &self.local {
            let (term, epoch) = *self.position.borrow();
            self.send_to_children(&DataMessage::Position { term, epoch });
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
        let message = DataMessage::Summary {
            nodes: summary.nodes,
            best_term: summary.best.0,
            best_epoch: summary.best.1,
            whole: summary.whole.iter().copied().collect(),
            promises: summary.promises.iter().map(|(n, t)| (*n, *t)).collect(),
        };
        self.sent_summary = Some((parent, summary));
        self.send(parent, &message);
    }

    /// Decides whether the writer accepts writes (see the module documentation) and acts on a change.
    pub(super) async fn evaluate_writer(&mut self) {
        let Local::Writer {
            service,
            active,
            claim,
            ..
        } = &self.local
        else {
            return;
        };
        let (active, claim) = (*active, *claim);
        let database = service.database().clone();
        let service = service.clone();
        let view = self.view.borrow().clone();
        let own = *self.position.borrow();
        let below = self.below();
        let newer = below
            .newer_than(own)
            .max(self.newer_seen.filter(|seen| *seen > own));
        if let Some((term, epoch)) = newer {
            self.call_election(term, epoch);
        }
        let promised = replication::promised_by(
            claim.map(|term| term.0),
            below.promises.iter().map(|(node, term)| (*node, term.0)),
        );
        let report = TreeReport {
            leads: view.ready && view.parent.is_none() && view.leader == Some(self.me),
            members: tree_members(self.me, &view),
            all_reported: below.all_reported(view.routes.len()),
            whole: below.whole.clone(),
            newer_data: newer.is_some(),
            registered: view.registered,
            promised: promised.clone().unwrap_or_default(),
        };
        let verdict = may_accept(self.configuration.as_ref(), &report, active);
        if verdict == Acceptance::Claim {
            // Everything holds but the promises: claim a term (a new one when none is held or a node
            // promised a higher one), or repeat the claim for the copies that have not heard it.
            let seen = below.highest_promise().max(own.0);
            self.claim(&database, view.term, seen, promised.is_none())
                .await;
            return;
        }
        let want = verdict == Acceptance::Accept;
        if want == active {
            return;
        }
        if want {
            // `Accept` for a root that does not accept yet means a majority promised its claim.
            let Some(term) = claim else {
                return;
            };
            if let Err(error) = database.set_term(term).await {
                tracing::error!(%error, term = term.0, "cannot take the claimed data term; not accepting writes");
                return;
            }
            self.publish_position().await;
            // The first entry of every term restates the voters (or names the first ones): a writer
            // changes the configuration only once an entry of its own term is acknowledged.
            self.voters.start_term(term);
            let voters = match &self.configuration {
                Some(configuration) => configuration.voters.clone(),
                None => first_voters(self.me, self.options.replication_factor, &view.children),
            };
            self.submit_configuration(service, voters);
        }
        self.set_accepting(want);
        self.send_position();
        let voters = self
            .configuration
            .as_ref()
            .map_or_else(|| "none yet".to_string(), ToString::to_string);
        match verdict {
            Acceptance::Accept => {
                tracing::info!(target: HEADLINE, term = view.term, data_term = claim.map_or(0, |t| t.0),
                    tree = view.tree_size(), %voters, "accepting writes")
            }
            Acceptance::NoMajority => {
                tracing::warn!(target: HEADLINE, tree = view.tree_size(), %voters, registered = view.registered,
                "not accepting writes: this tree does not hold a majority of the voters (of the registered nodes before the first configuration)")
            }
            Acceptance::NewerData => {
                tracing::warn!(target: HEADLINE, "not accepting writes: a node of this tree holds newer data")
            }
            Acceptance::NotReported | Acceptance::NotLeading | Acceptance::Claim => {
                tracing::warn!(target: HEADLINE, "not accepting writes: no longer leading a ready tree")
            }
        }
    }

    /// Claims a data term for this root (a new one above `seen` when `renew`) and sends the claim
    /// down the tree, at most every [`CLAIM_RESEND`] unless it is new.
    async fn claim(&mut self, database: &Database, tree_term: u64, seen: Term, renew: bool) {
        if renew {
            let Some(term) = replication::data_term(tree_term, seen.0, self.me).map(Term) else {
                tracing::error!(
                    tree_term,
                    seen = seen.0,
                    "no data term is left above the ones seen; not accepting writes"
                );
                return;
            };
            // The root's own promise first: it counts among the voters' like any other.
            match database.promise(term).await {
                Ok(held) => self.promised = Some(held),
                Err(error) => {
                    tracing::error!(%error, term = term.0, "cannot promise a claimed data term; not accepting writes");
                    return;
                }
            }
            tracing::info!(target: HEADLINE, data_term = term.0, "claiming a data term; writing once a majority of the voters promised it");
            if let Local::Writer {
                claim, claim_sent, ..
            } = &mut self.local
            {
                *claim = Some(term);
                *claim_sent = None;
            }
        }
        let Local::Writer {
            claim: Some(term),
            claim_sent,
            ..
        } = &mut self.local
        else {
            return;
        };
        if claim_sent.is_some_and(|at| at.elapsed() < CLAIM_RESEND) {
            return;
        }
        *claim_sent = Some(Instant::now());
        let message = DataMessage::Claim { term: *term };
        self.send_to_children(&message);
    }

    /// A copy promises `term` to the root that claims it, on disk, unless it promised as much
    /// already, and reports its promise up the tree.
    pub(super) async fn promise(&mut self, term: Term) {
        if self.promised.is_none_or(|promised| promised >= term) {
            // No copy here (a forwarder passes claims on only), or promised already.
            return;
        }
        let database = match &self.local {
            Local::Replica { service, .. } | Local::Writer { service, .. } => {
                service.database().clone()
            }
            Local::None => return,
        };
        match database.promise(term).await {
            Ok(held) => {
                self.promised = Some(held);
                self.send_summary(false);
            }
            Err(error) => {
                tracing::error!(%error, term = term.0, "cannot promise a claimed data term")
            }
        }
    }

    /// Asks the control plane for an election that the node with newer data will win.
    pub(super) fn call_election(&mut self, term: Term, epoch: Epoch) {
        if self
            .last_election_call
            .is_some_and(|at| at.elapsed() < ELECTION_CALL_SPACING)
        {
            return;
        }
        self.last_election_call = Some(Instant::now());
        tracing::warn!(target: HEADLINE, newer_term = term.0, newer_epoch = epoch.0,
            "a node of this tree holds newer data than this writer; asking for an election");
        let _ = self.election_requests.try_send(());
    }

    /// The one place a writer starts or stops accepting writes: its own flag, the fence its waiting
    /// writes watch, `/status` and the gauge move together.
    pub(super) fn set_accepting(&mut self, accepting: bool) {
        if let Local::Writer { active, claim, .. } = &mut self.local {
            *active = accepting;
            if !accepting {
                // Every start claims a new term: one that a majority promised now, above all others.
                *claim = None;
            }
        }
        self.acks.send_modify(|acks| acks.fenced = !accepting);
        self.status
            .update(|status| status.accepting_writes = accepting);
        self.metrics.writer_accepting.set(i64::from(accepting));
    }

    /// Leaving the writer role: pending acknowledgements fail, nothing more is accepted.
    pub(super) fn fence_writer(&mut self) {
        if let Local::Writer { active, .. } = &self.local {
            if *active {
                tracing::warn!(target: HEADLINE, "no longer the writer; pending writes are not acknowledged");
            }
            self.set_accepting(false);
            self.acks.send_modify(|acks| acks.durable.clear());
        }
    }
}
