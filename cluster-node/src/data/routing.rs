//! Where a request goes: answered here (the writer, or a copy fresh enough for a read), or sent on
//! to the parent; answers travel back down to the node that asked, which alone keeps state about a
//! request (its pending entry), so a loss anywhere becomes that node's timeout, never a hang.

use super::*;
use replication::routing::{Answerer, Ask, Holder, Position, Refusal, Route};

impl<T: Transport> DataPlane<T> {
    pub(super) fn on_submit(&mut self, submit: Submit) {
        self.next_seq += 1;
        let id = RequestId {
            origin: self.me,
            seq: self.next_seq,
        };
        self.pending.insert(id, submit.reply);
        self.route_request(id, submit.request, None);
    }

    /// Answers locally when this node may, else sends the request on to the parent: as the bytes it
    /// arrived in (`raw`) when it came from a child, so a forwarder never re-encodes a request. The
    /// decision is `replication::route`'s; this carries it out.
    pub(super) fn route_request(
        &mut self,
        id: RequestId,
        request: ServiceRequest,
        raw: Option<Bytes>,
    ) {
        let ask = Ask {
            write: request.operation.is_write(),
            client_epoch: request.client_epoch,
        };
        match replication::route(&self.routing_position(), ask) {
            Route::Refuse(refusal) => {
                if refusal == Refusal::NotAccepting {
                    self.metrics.data_writes_refused.inc();
                }
                self.deliver(id, Err(unavailable()));
            }
            Route::Answer(answerer) => {
                // Routing answers only where data is held (`Holder::Nothing` never answers).
                let (Local::Writer { service, .. } | Local::Replica { service, .. }) = &self.local
                else {
                    self.deliver(id, Err(unavailable()));
                    return;
                };
                let service = service.clone();
                if !ask.write {
                    let by = match answerer {
                        Answerer::Writer => "writer",
                        Answerer::Copy => "replica",
                    };
                    self.metrics
                        .data_reads_answered
                        .get_or_create(&AnsweredBy { by })
                        .inc();
                }
                self.spawn_local_answer(service, id, request);
            }
            Route::Forward(parent) => {
                self.metrics.data_forwarded.inc();
                match raw {
                    Some(raw) => self.send_bytes(parent, raw),
                    None => self.send(parent, &DataMessage::Request { id, request }),
                }
            }
        }
    }

    /// This node as routing sees it.
    pub(super) fn routing_position(&self) -> Position {
        let view = self.view.borrow();
        let holder = match &self.local {
            Local::Writer { root, .. } => Holder::Writer {
                accepting: root.accepting(),
                holds: self.position.borrow().1,
            },
            Local::Replica { copy, .. } => Holder::Copy {
                applied: copy.applied(),
                verified_by: copy.verified_by(),
            },
            Local::None => Holder::Nothing,
        };
        Position {
            ready: view.ready,
            parent: view.parent,
            leader: view.leader,
            holder,
        }
    }

    pub(super) fn spawn_local_answer(
        &self,
        service: LocalService,
        id: RequestId,
        request: ServiceRequest,
    ) {
        let outcomes = self.outcomes_tx.clone();
        let acks = self.acks.subscribe();
        let quorum_timeout = self.options.quorum_timeout;
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let outcome =
                match answer_locally(&service, request, acks, quorum_timeout, &metrics).await {
                    Ok(result) => LocalOutcome::Answer { id, result },
                    Err(request) => LocalOutcome::Forward { id, request },
                };
            let _ = outcomes.send(outcome).await;
        });
    }

    /// Tells the web layer whether it may answer this node's users with the local service itself
    /// (`DataHandle::execute`): exactly when routing would answer here anyway, reads only on a copy.
    /// Called after every event of the plane, so the web layer never acts on a role the plane left
    /// longer than the one event it is handling.
    pub(super) fn publish_shortcut(&mut self) {
        let next = {
            let view = self.view.borrow();
            match &self.local {
                _ if !view.ready => None,
                Local::Writer { service, root } if root.accepting() => Some((service, true)),
                Local::Replica { service, copy }
                    if copy.verified_by().is_some() && copy.verified_by() == view.leader =>
                {
                    Some((service, false))
                }
                Local::Writer { .. } | Local::Replica { .. } | Local::None => None,
            }
        };
        // Compared under the read lock: this runs after every event, and the shortcut rarely changes.
        let same = {
            let published = self
                .handle
                .shortcut
                .read()
                .unwrap_or_else(|p| p.into_inner());
            match (&published.service, &next) {
                (None, None) => true,
                (Some(held), Some((service, writes))) => {
                    held.same(service) && published.writes == *writes
                }
                _ => false,
            }
        };
        if !same {
            *self
                .handle
                .shortcut
                .write()
                .unwrap_or_else(|p| p.into_inner()) = match next {
                Some((service, writes)) => Shortcut {
                    service: Some(service.clone()),
                    writes,
                },
                None => Shortcut::default(),
            };
        }
    }

    pub(super) fn on_local_outcome(&mut self, outcome: LocalOutcome) {
        match outcome {
            LocalOutcome::Answer { id, result } => self.deliver(id, result),
            LocalOutcome::Forward { id, request } => {
                match replication::routing::forward(&self.routing_position()) {
                    Route::Forward(parent) => {
                        self.metrics.data_forwarded.inc();
                        self.send(parent, &DataMessage::Request { id, request });
                    }
                    _ => self.deliver(id, Err(unavailable())),
                }
            }
            LocalOutcome::Configured(Ok(_)) => {}
            LocalOutcome::Configured(Err(error)) => {
                // Not written (the writer retired or failed): the next housekeeping round decides again.
                tracing::warn!(%error, "a configuration entry was not written");
                self.voters.submitted = false;
            }
            LocalOutcome::Stored { command, result } => self.on_stored(command, result),
        }
    }

    /// Hands an answer to its origin: the local caller, or the child on the way to it.
    pub(super) fn deliver(&mut self, id: RequestId, result: Result<ServiceResponse, ServiceError>) {
        if id.origin == self.me {
            if let Some(reply) = self.pending.remove(&id) {
                let _ = reply.send(result);
            }
            return;
        }
        let next_hop = self.view.borrow().routes.get(&id.origin).copied();
        match next_hop {
            Some(child) => self.send(child, &DataMessage::Response { id, result }),
            None => {
                tracing::debug!(origin = %id.origin, "no route down to the origin; the answer is dropped")
            }
        }
    }
}

/// Answers `request` with this node's own service, a write only once a majority of the voters hold
/// it; `Err(request)` when the local copy could not answer after all (it fell behind, or the writer
/// stepped down meanwhile) and the request must go on up the tree.
pub(super) async fn answer_locally(
    service: &LocalService,
    request: ServiceRequest,
    acks: watch::Receiver<Acks>,
    quorum_timeout: Duration,
    metrics: &Metrics,
) -> Result<Result<ServiceResponse, ServiceError>, ServiceRequest> {
    let is_write = request.operation.writes_log();
    let started = Instant::now();
    match service.execute(request.clone()).await {
        Err(error) if error.should_forward() => Err(request),
        Ok(response) if is_write => {
            let committed = Instant::now();
            stage(metrics, "commit", committed - started);
            let durable = wait_for_quorum(acks, response.epoch, quorum_timeout).await;
            stage(metrics, "quorum", committed.elapsed());
            Ok(durable.map(|()| response))
        }
        result => Ok(result),
    }
}
