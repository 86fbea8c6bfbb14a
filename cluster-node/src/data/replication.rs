//! The writer's side of replication: the quorum of acknowledgements a write waits for before it is
//! answered ("acknowledged means durable"). Catch-up reads the log stored in the database.
//!
//! Every node below the root keeps a copy of the data, and a write counts as durable once the writer
//! and enough copies hold it to make *a majority of the registered nodes*. Any majority of nodes then
//! contains a holder of every acknowledged write, so the election (most recent data wins) inside any
//! part of the cluster that may write — one spanning a majority — picks a node that has them all,
//! whichever nodes died or were cut off. (A quorum of the root's children alone would not: a root with
//! one child, cut off together with it, takes every write they acknowledged into the minority.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::NodeId;
use crate::service::ServiceError;
use crate::storage::Epoch;

/// Log entries sent in one catch-up message: bounds the memory of both ends, whatever the gap.
pub const CATCH_UP_BATCH: usize = 1000;

/// Which copies have applied how far, who they currently are (every node of the writer's tree but
/// itself), and how many nodes are registered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acks {
    pub replicas: BTreeSet<NodeId>,
    pub applied: BTreeMap<NodeId, Epoch>,
    /// Nodes registered with the bootstrap (the majority is counted over them).
    pub registered: usize,
    /// The writer does not accept writes now (no majority, newer data elsewhere, or no longer the
    /// writer): every write still waiting fails instead of being acknowledged.
    pub fenced: bool,
}

impl Acks {
    /// Copies besides the writer that must hold a write before it is acknowledged: with the writer,
    /// a strict majority of the registered nodes (or of the tree, if more nodes are in it than the
    /// last count of registrations says).
    pub fn quorum(&self) -> usize {
        let nodes = self.registered.max(self.replicas.len() + 1);
        nodes / 2
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
    fn the_writer_and_its_quorum_of_copies_are_a_majority_of_the_registered_nodes() {
        let acks = |copies: u64, registered: usize| Acks {
            replicas: (2..2 + copies).map(NodeId).collect(),
            registered,
            ..Acks::default()
        };
        // (copies in the tree, registered) → copies that must hold a write besides the writer.
        let cases = [
            ((0, 1), 0),
            ((1, 2), 1),
            ((2, 3), 1),
            ((3, 4), 2),
            ((4, 5), 2),
            ((2, 5), 2),
            ((7, 8), 4),
            ((15, 16), 8),
            // More nodes in the tree than the last count of registrations: the tree counts.
            ((4, 1), 2),
        ];
        for ((copies, registered), quorum) in cases {
            let acks = acks(copies, registered);
            assert_eq!(
                acks.quorum(),
                quorum,
                "{copies} copies, {registered} registered"
            );
            // With the writer, the holders are a strict majority of the registered nodes.
            assert!(2 * (quorum + 1) > registered.max(copies as usize + 1));
        }
        assert!(acks(0, 1).holds(Epoch(10)), "a lone node needs nobody else");
        assert!(
            !acks(1, 5).holds(Epoch(1)),
            "two of five can never acknowledge"
        );
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
            registered: 4,
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
