//! The data plane as a member's opened frame reaches it: `data::message::decode`, then what the plane
//! does with the message's peer-supplied values on the real storage and service code. Requests run on
//! a writer's service (and reads on a copy's), commits and catch-up batches are applied to a copy's
//! database, catch-up requests are judged and served from the writer's log, claims are promised,
//! subtree summaries are gathered, presence updates go through a relay as a child's and a parent's,
//! and answers become the HTTP response an input node would send. Nothing may panic or overflow, and
//! every decoded message must re-encode to itself (forwarders pass the raw bytes on, the writer
//! re-encodes).

#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use axum::response::IntoResponse;
use cluster_node::config::NodeId;
use cluster_node::data::DataMessage;
use cluster_node::data::message::{decode, encode};
use cluster_node::presence::relay::Relay;
use cluster_node::service::{ChatService, LocalService, ServiceOptions};
use cluster_node::storage::{Database, Epoch, Term};
use cluster_node::web::AppError;
use libfuzzer_sys::fuzz_target;
use replication::catch_up::{CatchUp, Verdict, judge};
use replication::Below;
use tokio::runtime::Runtime;

/// What a catch-up answer holds at most (the data plane's batch).
const CATCH_UP_BATCH: usize = 1000;

struct Node {
    runtime: Runtime,
    writer: LocalService,
    replica: LocalService,
    replica_database: Database,
}

/// One writer and one copy for the whole run: a database per input would cost more than the input.
fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (writer, replica, replica_database) = runtime.block_on(async {
            let writer = Database::open_in_memory().await.expect("a database");
            let replica = Database::open_in_memory().await.expect("a database");
            (
                LocalService::writer(writer, ServiceOptions::for_tests()),
                LocalService::replica(replica.clone()),
                replica,
            )
        });
        Node {
            runtime,
            writer,
            replica,
            replica_database,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = decode(data) else {
        return;
    };
    let again = decode(&encode(envelope.term, &envelope.body)).expect("an encoded message decodes");
    assert_eq!(
        again, envelope,
        "a message changed on its way through the codec"
    );

    let node = node();
    node.runtime.block_on(async {
        match envelope.body {
            DataMessage::Request { request, .. } => {
                if !request.operation.is_write() {
                    let _ = node.replica.execute(request.clone()).await;
                }
                let _ = node.writer.execute(request).await;
            }
            DataMessage::Commit { entries } | DataMessage::Entries { entries, .. } => {
                let _ = node.replica_database.apply_entries(&entries).await;
            }
            DataMessage::CatchUp {
                from, last_term, ..
            } => {
                let database = node.writer.database();
                let Ok(writer_epoch) = database.epoch().await else {
                    return;
                };
                let request = CatchUp { from, last_term };
                let term_at_check = match request.to_check() {
                    Some(last) if last <= writer_epoch => {
                        database.term_at(last).await.ok().flatten()
                    }
                    _ => None,
                };
                if let Verdict::Send { from } = judge(request, writer_epoch, term_at_check) {
                    let _ = database.log_since(from, CATCH_UP_BATCH).await;
                }
            }
            DataMessage::Claim { term } => {
                let _ = node.replica_database.promise(term).await;
            }
            message @ DataMessage::Summary { .. } => {
                let Some(summary) = message.into_summary() else {
                    return;
                };
                let below = Below::gather(
                    NodeId(1),
                    true,
                    Some(Term(1)),
                    [Some(&summary), Some(&summary)],
                );
                let _ = below.summary((Term(1), Epoch(1)));
                let _ = (
                    below.highest_promise(),
                    below.newer_than((Term(1), Epoch(1))),
                );
            }
            DataMessage::Response { result, .. } => {
                // What the input node that asked makes of the answer (through its proxy service).
                if let Err(error) = result {
                    let _ = AppError::from(error).into_response();
                }
            }
            DataMessage::Presence { users } | DataMessage::Online { users } => {
                // A peer-supplied version, base and sets, applied as a child's report and as a
                // parent's view, then whatever the relay sends on.
                let mut relay = Relay::new(7);
                relay.set_tree(Some(NodeId(1)), BTreeSet::from([NodeId(2)]));
                relay.from_child(NodeId(2), users.clone());
                relay.from_parent(NodeId(1), users.clone());
                relay.from_parent(NodeId(1), users);
                let _ = relay.poll(overlay::Millis(u64::MAX));
                let _ = relay.poll(overlay::Millis(0));
            }
            DataMessage::Diverged { .. }
            | DataMessage::Ack { .. }
            | DataMessage::Position { .. }
            | DataMessage::PresenceResend
            | DataMessage::Typing { .. }
            | DataMessage::Ephemeral { .. } => {}
        }
    });
});
