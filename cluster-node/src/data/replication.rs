//! The writer's side of replication: the quorum of replica acknowledgements a write waits for before
//! it is answered ("acknowledged means durable"). Catch-up reads the log stored in the database.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::NodeId;
use crate::service::ServiceError;
use crate::storage::Epoch;

/// Log entries sent in one catch-up message: bounds the memory of both ends, whatever the gap.
pub const CATCH_UP_BATCH: usize = 1000;

/// Which replicas have applied how far, and who the replicas currently are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acks {
    pub replicas: BTreeSet<NodeId>,
    pub applied: BTreeMap<NodeId, Epoch>,
    /// The writer does not accept writes now (no majority, newer data elsewhere, or no longer the
    /// writer): every write still waiting fails instead of being acknowledged.
    pub fenced: bool,
}

impl Acks {
    /// Replicas that must hold a write before it is acknowledged: a majority of the current replicas,
    /// so any later majority (and so the next elected writer, which has the most data) includes one.
    pub fn quorum(&self) -> usize {
        if self.replicas.is_empty() {
            0
        } else {
            self.replicas.len() / 2 + 1
        }
    }

    /// Whether `epoch` is on a quorum of the current replicas.
    pub fn holds(&self, epoch: Epoch) -> bool {
        let have = self
            .replicas
            .iter()
            .filter(|replica| self.applied.get(replica).is_some_and(|e| *e >= epoch))
            .count();
        have >= self.quorum()
    }
}

/// Waits until a quorum of replicas holds `epoch`, or fails after `timeout` with `Unavailable`: the
/// write is committed on the writer but not reported as done, and a retry with the same client id
/// returns it without writing twice.
pub async fn wait_for_quorum(
    mut acks: watch::Receiver<Acks>,
    epoch: Epoch,
    timeout: Duration,
) -> Result<(), ServiceError> {
    let reached = tokio::time::timeout(
        timeout,
        acks.wait_for(|acks| acks.fenced || acks.holds(epoch)),
    )
    .await;
    match reached {
        Ok(Ok(acks)) if !acks.fenced => Ok(()),
        _ => Err(ServiceError::Unavailable {
            retry_after: Duration::from_secs(1),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quorum_is_a_majority_of_replicas_and_zero_without_any() {
        let acks = |n: u64| Acks {
            replicas: (1..=n).map(NodeId).collect(),
            ..Acks::default()
        };
        assert_eq!(acks(0).quorum(), 0);
        assert_eq!(acks(1).quorum(), 1);
        assert_eq!(acks(2).quorum(), 2);
        assert_eq!(acks(3).quorum(), 2);
        assert_eq!(acks(4).quorum(), 3);
        assert!(acks(0).holds(Epoch(10)), "a lone writer needs no replica");
    }

    #[test]
    fn only_acks_of_current_replicas_at_or_past_the_epoch_count() {
        let acks = Acks {
            replicas: [NodeId(2), NodeId(3), NodeId(4)].into(),
            applied: [
                (NodeId(2), Epoch(5)),
                (NodeId(3), Epoch(4)),
                (NodeId(9), Epoch(9)),
            ]
            .into(),
            fenced: false,
        };
        assert!(
            !acks.holds(Epoch(5)),
            "one current replica at 5 and a stranger do not make two"
        );
        assert!(acks.holds(Epoch(4)));
    }

    #[tokio::test]
    async fn a_write_waits_for_the_quorum_and_fails_unavailable_without_it() {
        let (sender, receiver) = watch::channel(Acks {
            replicas: [NodeId(2)].into(),
            ..Acks::default()
        });
        let waiter = tokio::spawn(wait_for_quorum(
            receiver.clone(),
            Epoch(3),
            Duration::from_secs(5),
        ));
        sender.send_modify(|acks| {
            acks.applied.insert(NodeId(2), Epoch(3));
        });
        assert_eq!(waiter.await.unwrap(), Ok(()));

        let failed = wait_for_quorum(receiver.clone(), Epoch(4), Duration::from_millis(20)).await;
        assert!(matches!(failed, Err(ServiceError::Unavailable { .. })));

        // A fenced writer fails a waiting write at once, long before its timeout.
        let waiter = tokio::spawn(wait_for_quorum(receiver, Epoch(4), Duration::from_secs(60)));
        sender.send_modify(|acks| acks.fenced = true);
        let fenced = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(
            fenced,
            Ok(Ok(Err(ServiceError::Unavailable { .. })))
        ));
    }
}
