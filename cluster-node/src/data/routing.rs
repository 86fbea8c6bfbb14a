//! Where a request goes: answered here (the writer, or a copy fresh enough for a read), or sent on
//! to the parent; answers travel back down to the node that asked, which alone keeps state about a
//! request (its pending entry), so a loss anywhere becomes that node's timeout, never a hang.

use super::*;

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
    /// arrived in (`raw`) when it came from a child, so a forwarder never re-encodes a request.
    pub(super) fn route_request(
        &mut self,
        id: RequestId,
        request: ServiceRequest,
        raw: Option<Bytes>,
    ) {
        let view = self.view.borrow().clone();
        if !view.ready {
            self.deliver(id, Err(unavailable()));
            return;
        }
        if request.operation.is_write() && matches!(self.local, Local::Writer { active: false, .. })
        {
            // Not (or no longer) sure to be the only writer with all acknowledged data: refuse
            // before writing anything, so nothing needs to be taken back.
            self.metrics.data_writes_refused.inc();
            self.deliver(id, Err(unavailable()));
            return;
        }
        if matches!(self.local, Local::Writer { active: false, .. })
            && request.client_epoch > self.position.borrow().1
        {
            // A root that does not accept writes may hold less than a node below it (it is about
            // to hand over): it must not answer a client that has seen more than it holds.
            self.deliver(id, Err(unavailable()));
            return;
        }
        if let Some(service) = self.local_answerer(&request) {
            let by = if service.is_writer() {
                "writer"
            } else {
                "replica"
            };
            if !request.operation.is_write() {
                self.metrics
                    .data_reads_answered
                    .get_or_create(&AnsweredBy { by })
                    .inc();
            }
            self.spawn_local_answer(service, id, request);
            return;
        }
        match (view.parent, raw) {
            (Some(parent), Some(raw)) => {
                self.metrics.data_forwarded.inc();
                self.send_bytes(parent, raw);
            }
            (Some(parent), None) => {
                self.metrics.data_forwarded.inc();
                self.send(parent, &DataMessage::Request { id, request });
            }
            (None, _) => self.deliver(id, Err(unavailable())),
        }
    }

    pub(super) fn local_answerer(&self, request: &ServiceRequest) -> Option<LocalService> {
        match &self.local {
            Local::Writer { service, .. } => Some(service.clone()),
            // Any copy answers the reads it is fresh enough for, once the current writer has
            // confirmed its log (before that it may hold entries that were never acknowledged).
            Local::Replica {
                service,
                applied,
                verified_by,
                ..
            } if !request.operation.is_write()
                && verified_by.is_some()
                && *verified_by == self.view.borrow().leader
                && replica_can_answer(request.client_epoch, *applied) =>
            {
                Some(service.clone())
            }
            _ => None,
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
            let is_write = request.operation.is_write();
            let started = Instant::now();
            let executed = service.execute(request.clone()).await;
            let outcome = match executed {
                Err(error) if error.should_forward() => LocalOutcome::Forward { id, request },
                Ok(response) if is_write => {
                    let committed = Instant::now();
                    stage(&metrics, "commit", committed - started);
                    let durable = wait_for_quorum(acks, response.epoch, quorum_timeout).await;
                    stage(&metrics, "quorum", committed.elapsed());
                    LocalOutcome::Answer {
                        id,
                        result: durable.map(|()| response),
                    }
                }
                result => LocalOutcome::Answer { id, result },
            };
            let _ = outcomes.send(outcome).await;
        });
    }

    pub(super) fn on_local_outcome(&mut self, outcome: LocalOutcome) {
        match outcome {
            LocalOutcome::Answer { id, result } => self.deliver(id, result),
            LocalOutcome::Forward { id, request } => {
                let parent = self.view.borrow().parent;
                match parent {
                    Some(parent) => {
                        self.metrics.data_forwarded.inc();
                        self.send(parent, &DataMessage::Request { id, request });
                    }
                    None => self.deliver(id, Err(unavailable())),
                }
            }
            LocalOutcome::Configured(Ok(_)) => {}
            LocalOutcome::Configured(Err(error)) => {
                // Not written (the writer retired or failed): the next housekeeping round decides again.
                tracing::warn!(%error, "a configuration entry was not written");
                self.voters.submitted = false;
            }
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
