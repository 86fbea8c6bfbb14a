//! The writer's wait for "acknowledged means durable": a write is answered once a majority of the
//! voters holds it durably ([`replication::Acks`] counts; this waits on the plane's copy of it).

use std::time::Duration;

use replication::Acks;
use tokio::sync::watch;

use crate::service::ServiceError;
use crate::storage::Epoch;

/// Log entries sent in one catch-up message: bounds the memory of both ends, whatever the gap.
pub const CATCH_UP_BATCH: usize = 1000;

/// Waits until a quorum holds `epoch`, or fails after `timeout` with `Unavailable`: the write is
/// committed on the writer but not reported as done, and a retry with the same client id returns it
/// without writing twice. A writer that stops accepting writes (`fenced`) fails every waiting write at
/// once.
pub async fn wait_for_quorum(
    mut acks: watch::Receiver<Acks>,
    epoch: Epoch,
    timeout: Duration,
) -> Result<(), ServiceError> {
    let reached = tokio::time::timeout(
        timeout,
        acks.wait_for(|acks| acks.fenced || acks.holds(epoch.0)),
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
    use crate::config::NodeId;
    use replication::Configuration;

    #[tokio::test]
    async fn a_write_waits_for_the_quorum_and_fails_unavailable_without_it() {
        let (sender, receiver) = watch::channel(Acks {
            writer: Some(NodeId(1)),
            configuration: Some(Configuration::new(1, [NodeId(1), NodeId(2)])),
            ..Acks::default()
        });
        let waiter = tokio::spawn(wait_for_quorum(
            receiver.clone(),
            Epoch(3),
            Duration::from_secs(5),
        ));
        sender.send_modify(|acks| {
            acks.durable.insert(NodeId(2), 3);
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
