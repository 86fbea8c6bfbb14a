//! Ephemeral groups' events on one input node: one task follows them from the source (the data
//! plane, or the writer's service), passes them to the open streams, and remembers which of this
//! node's users were in which group, so that when the writer changes (and every ephemeral group with
//! it) each member is told of each of their groups: live if their stream is open, else when they
//! reconnect within [`NOTICE_KEPT_FOR`] (streams usually close while the tree is rebuilt around the
//! new writer, and the change is seen before they can reopen).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::service::EventSource;
use crate::service::ephemeral::{EndReason, EphemeralEvent};
use crate::storage::{GroupId, UserId};

/// How long a user who was not connected when their groups ended is told on reconnecting.
pub(crate) const NOTICE_KEPT_FOR: Duration = Duration::from_secs(60);
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
const LIVE_BUFFER: usize = 1024;

#[derive(Default)]
struct State {
    /// The members of every ephemeral group this node has heard of.
    groups: HashMap<GroupId, Vec<UserId>>,
    /// Groups that ended with a writer, per member, and when.
    ended: HashMap<UserId, Vec<(GroupId, Instant)>>,
}

pub(crate) struct EphemeralFeed {
    state: Mutex<State>,
    live: broadcast::Sender<EphemeralEvent>,
}

impl EphemeralFeed {
    /// A feed from `source`, followed by a task that stops with `stop`.
    pub(crate) fn start(source: Arc<dyn EventSource>, stop: &CancellationToken) -> Arc<Self> {
        let feed = Arc::new(EphemeralFeed {
            state: Mutex::new(State::default()),
            live: broadcast::channel(LIVE_BUFFER).0,
        });
        tokio::spawn(Arc::clone(&feed).run(source, stop.clone()));
        feed
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Events from now on, and the groups of `user` that ended with a recent writer change.
    pub(crate) fn subscribe(
        &self,
        user: UserId,
    ) -> (broadcast::Receiver<EphemeralEvent>, Vec<GroupId>) {
        let mut state = self.lock();
        let receiver = self.live.subscribe();
        let ended = state
            .ended
            .get_mut(&user)
            .map(|groups| {
                groups.retain(|(_, at)| at.elapsed() < NOTICE_KEPT_FOR);
                groups.iter().map(|(group, _)| *group).collect()
            })
            .unwrap_or_default();
        (receiver, ended)
    }

    async fn run(self: Arc<Self>, source: Arc<dyn EventSource>, stop: CancellationToken) {
        loop {
            if let Some(mut receiver) = source.subscribe_ephemeral() {
                loop {
                    let received = tokio::select! {
                        () = stop.cancelled() => return,
                        received = receiver.recv() => received,
                    };
                    match received {
                        Ok(event) => self.push(event),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "ephemeral events were missed on this node");
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
            }
        }
    }

    /// Notes what `event` says about the groups and passes it on; a writer change becomes one
    /// `Ended` per group this node knew of.
    pub(crate) fn push(&self, event: EphemeralEvent) {
        let mut state = self.lock();
        let events = match event {
            EphemeralEvent::WriterChanged => {
                let now = Instant::now();
                let mut ended = Vec::new();
                for (group, members) in std::mem::take(&mut state.groups) {
                    for member in &members {
                        state.ended.entry(*member).or_default().push((group, now));
                    }
                    ended.push(EphemeralEvent::Ended {
                        group,
                        members,
                        reason: EndReason::WriterChanged,
                    });
                }
                state.ended.retain(|_, groups| {
                    groups.retain(|(_, at)| at.elapsed() < NOTICE_KEPT_FOR);
                    !groups.is_empty()
                });
                ended
            }
            event => {
                match &event {
                    EphemeralEvent::Message { members, message } => {
                        state.groups.insert(message.group, members.clone());
                    }
                    EphemeralEvent::Members { group, members, .. } => {
                        state
                            .groups
                            .insert(*group, members.iter().map(|member| member.id).collect());
                    }
                    EphemeralEvent::Ended { group, .. } => {
                        state.groups.remove(group);
                    }
                    EphemeralEvent::WriterChanged => {}
                }
                vec![event]
            }
        };
        for event in events {
            // No stream listening is not an error.
            let _ = self.live.send(event);
        }
    }
}
