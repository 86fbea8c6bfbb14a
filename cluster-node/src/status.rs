//! The node's observable state: what `/status` shows, published by the layers that own each part.
//!
//! A `watch` channel holds the latest snapshot. Writers (discovery today; the control plane, storage and
//! web layers later) change only their own fields with `send_modify`; readers take a cheap clone. Nothing
//! here is authoritative: it is a report of state owned elsewhere.

use serde::Serialize;
use tokio::sync::watch;

use crate::config::NodeId;

pub use overlay::Role;

/// A neighbour as the failure detector sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeighbourStatus {
    pub id: NodeId,
    pub alive: bool,
}

/// The body of `GET /status` (DESIGN §8). Field names are the contract; extra fields may be added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub id: NodeId,
    /// True once the node knows its leader, its place in the tree and its roles.
    pub ready: bool,
    /// `None` while no leader is known.
    pub leader: Option<NodeId>,
    pub term: u64,
    pub roles: Vec<Role>,
    /// `None` for the root or while the tree is unknown.
    pub parent: Option<NodeId>,
    pub children: Vec<NodeId>,
    pub neighbors: Vec<NeighbourStatus>,
    /// Latest root tick seen (tree liveness counter).
    pub tick: u64,
    pub data_epoch: u64,
    /// The node's Lamport clock.
    pub clock: u64,
    /// The URL of the HTTP server while the node is an input node.
    pub http: Option<String>,
    /// Whether the bootstrap has answered this node's registration.
    pub registered: bool,
    /// True only on the writer while it accepts writes: its tree holds a majority of the voters and
    /// no node of it holds newer data (DESIGN §4, "one writer at a time").
    pub accepting_writes: bool,
    /// The voters of the newest configuration in this node's log, sorted (empty before the first).
    pub voters: Vec<NodeId>,
    /// What this node's copy of the data is.
    pub copy: CopyKind,
    /// The copy holds everything this node ever acknowledged (false after the node lost its disk
    /// or discarded a diverged copy, until it caught up): only then does it count for a majority.
    pub whole: bool,
    /// The writer of this node's tree has checked this copy's log against its own (a copy applies
    /// commits and answers reads only then); true on the writer itself, false without a copy.
    pub copy_confirmed: bool,
    /// What this node last heard from the writer of its tree: `true` while the writer said, within
    /// the last [`crate::data::WRITER_HEARD_WITHIN`], that it accepts writes, `false` when it said it
    /// does not, `null` when nothing came from it that recently (no writer reachable) or the node is
    /// in no tree. On the writer, its own `accepting_writes`.
    pub writer_accepting: Option<bool>,
    /// The roles the tree's shape gives (the control plane's); `roles` adds the voter set's.
    #[serde(skip)]
    pub tree_roles: Vec<Role>,
}

/// What a node's copy of the data counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CopyKind {
    /// Holds durable copies that count for acknowledgements (the writer is one when it votes).
    Voter,
    /// Applies the log without per-commit fsync; never counts.
    Learner,
    #[default]
    None,
}

impl NodeStatus {
    /// The state of a node that has just started: nothing known yet.
    pub fn starting(id: NodeId) -> Self {
        Self {
            id,
            ready: false,
            leader: None,
            term: 0,
            roles: Vec::new(),
            parent: None,
            children: Vec::new(),
            neighbors: Vec::new(),
            tick: 0,
            data_epoch: 0,
            clock: 0,
            http: None,
            registered: false,
            accepting_writes: false,
            voters: Vec::new(),
            copy: CopyKind::None,
            whole: true,
            copy_confirmed: false,
            writer_accepting: None,
            tree_roles: Vec::new(),
        }
    }

    /// `roles` from the tree's roles and the copy: `persistence` is the role of every voter that is
    /// not the writer (DESIGN §3), whatever its place in the tree; a node of the tree left with no
    /// role only forwards.
    pub fn refresh_roles(&mut self) {
        let mut roles: Vec<Role> = self
            .tree_roles
            .iter()
            .copied()
            .filter(|role| *role != Role::Persistence)
            .collect();
        let writer = roles.contains(&Role::Writer);
        if self.copy == CopyKind::Voter && !writer && !self.tree_roles.is_empty() {
            roles.push(Role::Persistence);
        }
        if roles.is_empty() && !self.tree_roles.is_empty() {
            roles.push(Role::Forwarder);
        }
        roles.sort();
        self.roles = roles;
    }
}

/// Cloneable handle to the node's status snapshot.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    sender: watch::Sender<NodeStatus>,
}

impl StatusBoard {
    pub fn new(initial: NodeStatus) -> Self {
        Self {
            sender: watch::Sender::new(initial),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> NodeStatus {
        self.sender.borrow().clone()
    }

    /// Applies `change` to the snapshot and wakes subscribers.
    pub fn update(&self, change: impl FnOnce(&mut NodeStatus)) {
        self.sender.send_modify(change);
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<NodeStatus> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_starting_node_reports_every_documented_field_with_nulls_for_the_unknown() {
        let status = NodeStatus::starting(NodeId(7));
        let json = serde_json::to_value(&status).unwrap();
        for field in [
            "id",
            "ready",
            "leader",
            "term",
            "roles",
            "parent",
            "children",
            "neighbors",
            "tick",
            "data_epoch",
            "clock",
            "http",
        ] {
            assert!(json.get(field).is_some(), "missing {field} in {json}");
        }
        assert_eq!(json["id"], 7);
        assert_eq!(json["ready"], false);
        assert!(json["leader"].is_null());
        assert!(json["parent"].is_null());
        assert!(json["http"].is_null());
    }

    #[test]
    fn roles_serialise_in_lowercase() {
        let json = serde_json::to_string(&[
            Role::Writer,
            Role::Persistence,
            Role::Input,
            Role::Forwarder,
        ]);
        assert_eq!(
            json.unwrap(),
            r#"["writer","persistence","input","forwarder"]"#
        );
    }

    #[test]
    fn an_update_is_seen_by_snapshots_and_subscribers() {
        let board = StatusBoard::new(NodeStatus::starting(NodeId(1)));
        let mut receiver = board.subscribe();
        board.update(|status| status.registered = true);
        assert!(board.snapshot().registered);
        assert!(receiver.has_changed().unwrap());
        assert!(receiver.borrow_and_update().registered);
    }
}
