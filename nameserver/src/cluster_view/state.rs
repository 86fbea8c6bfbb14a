//! What `/cluster/state` answers, built without IO from the bootstrap's node list and whatever each
//! node's `/status` answered (or why it did not).
//!
//! Nothing a node says is trusted: a `/status` that does not parse, names another id or lists children
//! that were never registered is shown as it is or as a problem, never a panic.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::layout::{self, Placement};

/// A node as the bootstrap knows it: where its admin port is and who its neighbours are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredNode {
    pub id: u64,
    /// `host:port` of the admin HTTP server, or `None` when the registration has no usable one.
    pub admin: Option<String>,
    pub neighbors: Vec<u64>,
    /// Those neighbours whose link a repair added after failures rather than the registration, as
    /// the bootstrap lists them (not trusted: [`NodeView::repaired`] keeps only real neighbours).
    pub repaired: Vec<u64>,
}

impl RegisteredNode {
    /// Reads one `ListNodes` entry; `None` for an entry without an address or with id 0.
    pub fn from_proto(entry: &chat_proto::bootstrap::NodeEntry) -> Option<Self> {
        let address = entry.address.as_ref()?;
        if address.id == 0 {
            return None;
        }
        Some(Self {
            id: address.id,
            admin: admin_authority(&address.host, address.admin_port),
            neighbors: entry.neighbors.clone(),
            repaired: entry.repaired.clone(),
        })
    }
}

/// `host:port` for a URL, with IPv6 literals in brackets; `None` for an empty host or a bad port.
fn admin_authority(host: &str, port: u32) -> Option<String> {
    let port = u16::try_from(port).ok().filter(|&port| port != 0)?;
    if host.is_empty() {
        return None;
    }
    if host.contains(':') && !host.starts_with('[') {
        Some(format!("[{host}]:{port}"))
    } else {
        Some(format!("{host}:{port}"))
    }
}

/// The fields of a node's `/status` the view uses (DESIGN §8). Missing fields take their defaults, so
/// an older or newer node still shows up; extra fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NodeReport {
    pub id: u64,
    pub ready: bool,
    pub leader: Option<u64>,
    pub term: u64,
    pub roles: Vec<String>,
    pub parent: Option<u64>,
    pub children: Vec<u64>,
    pub data_epoch: u64,
    pub http: Option<String>,
    /// Only some versions report it; shown for the writer when present.
    pub accepting_writes: Option<bool>,
    /// What the node's copy counts for: `voter`, `learner` or `none` (newer nodes only).
    pub copy: Option<String>,
}

impl NodeReport {
    /// Parses a `/status` body.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|error| format!("/status is not valid JSON: {error}"))
    }
}

/// What asking one node for its `/status` gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusAnswer {
    Answered(NodeReport),
    /// No usable answer, and why (timeout, refused, bad JSON...).
    Failed(String),
}

/// The whole picture, as `/cluster/state` serialises it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterState {
    /// Every registered node, ordered by id.
    pub nodes: Vec<NodeView>,
    /// The leader most of the nodes that answered follow (see `leader_and_term`).
    pub leader: Option<u64>,
    pub term: Option<u64>,
    /// When the statuses were fetched, in milliseconds since the Unix epoch.
    pub fetched_at: u64,
    /// Why there are no nodes to show (the bootstrap did not answer); `None` normally.
    pub error: Option<String>,
}

/// One node of the picture. Dead nodes keep only what the bootstrap knows (id, neighbours).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    pub id: u64,
    /// Answered `/status` in time with a body that parses and names this id.
    pub alive: bool,
    pub ready: bool,
    pub roles: Vec<String>,
    pub parent: Option<u64>,
    pub children: Vec<u64>,
    pub leader: Option<u64>,
    pub term: Option<u64>,
    pub data_epoch: Option<u64>,
    pub http: Option<String>,
    pub accepting_writes: Option<bool>,
    /// `voter`, `learner` or `none`, when the node reports it: voters hold the durable copies a
    /// write's acknowledgement counts.
    pub copy: Option<String>,
    /// Neighbour ids from the bootstrap (the graph the tree is drawn over).
    pub neighbors: Vec<u64>,
    /// Those of `neighbors` whose link a repair added (after failures) rather than the node's
    /// registration, sorted; ids the bootstrap lists here but not in `neighbors` are left out.
    pub repaired: Vec<u64>,
    /// Distance from the root of its tree; `None` when the node hangs in no tree.
    pub depth: Option<u32>,
    /// Horizontal slot in its row (see [`layout`]).
    pub column: f64,
    /// Why the node counts as dead, for the tooltip.
    pub problem: Option<String>,
}

impl ClusterState {
    /// The state shown while the bootstrap cannot be asked.
    pub fn unavailable(error: String, fetched_at: u64) -> Self {
        Self {
            nodes: Vec::new(),
            leader: None,
            term: None,
            fetched_at,
            error: Some(error),
        }
    }

    /// Joins the registrations with the status answers. A registered node missing from `answers` is
    /// dead; answers from ids that are not registered are ignored.
    pub fn build(
        registered: &[RegisteredNode],
        answers: &BTreeMap<u64, StatusAnswer>,
        fetched_at: u64,
    ) -> Self {
        let mut by_id: BTreeMap<u64, &RegisteredNode> = BTreeMap::new();
        for node in registered {
            // A duplicate registration keeps the later entry, as a re-registration would.
            by_id.insert(node.id, node);
        }
        let mut nodes: Vec<NodeView> = by_id
            .values()
            .map(|node| node_view(node, answers.get(&node.id)))
            .collect();

        let (leader, term) = leader_and_term(&nodes);
        let placements = layout::place(&tree_input(&nodes), leader);
        for node in &mut nodes {
            let Placement { depth, column } = placements
                .get(&node.id)
                .copied()
                .unwrap_or(Placement::OUTSIDE);
            node.depth = depth;
            node.column = column;
        }
        Self {
            nodes,
            leader,
            term,
            fetched_at,
            error: None,
        }
    }
}

fn node_view(node: &RegisteredNode, answer: Option<&StatusAnswer>) -> NodeView {
    let repaired = repaired_neighbours(node);
    let dead = |problem: String| NodeView {
        id: node.id,
        alive: false,
        ready: false,
        roles: Vec::new(),
        parent: None,
        children: Vec::new(),
        leader: None,
        term: None,
        data_epoch: None,
        http: None,
        accepting_writes: None,
        copy: None,
        neighbors: node.neighbors.clone(),
        repaired: repaired.clone(),
        depth: None,
        column: 0.0,
        problem: Some(problem),
    };
    match answer {
        None if node.admin.is_none() => dead("registered without an admin address".into()),
        None => dead("not asked".into()),
        Some(StatusAnswer::Failed(why)) => dead(why.clone()),
        Some(StatusAnswer::Answered(report)) if report.id != node.id => dead(format!(
            "its admin port answers as node {} instead",
            report.id
        )),
        Some(StatusAnswer::Answered(report)) => NodeView {
            id: node.id,
            alive: true,
            ready: report.ready,
            roles: report.roles.clone(),
            parent: report.parent,
            children: report.children.clone(),
            leader: report.leader,
            term: Some(report.term),
            data_epoch: Some(report.data_epoch),
            http: report.http.clone(),
            accepting_writes: report.accepting_writes,
            copy: report.copy.clone(),
            neighbors: node.neighbors.clone(),
            repaired,
            depth: None,
            column: 0.0,
            problem: None,
        },
    }
}

/// The node's repaired links that are also among its neighbours, sorted, without duplicates.
fn repaired_neighbours(node: &RegisteredNode) -> Vec<u64> {
    let neighbours: BTreeSet<u64> = node.neighbors.iter().copied().collect();
    node.repaired
        .iter()
        .copied()
        .filter(|id| neighbours.contains(id))
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect()
}

/// The leader most live nodes name (the side of a partition that holds the majority); among leaders
/// named equally often, the one named under the higher term, then the smaller id. The term is the
/// highest under which that leader is named.
fn leader_and_term(nodes: &[NodeView]) -> (Option<u64>, Option<u64>) {
    // leader -> (how many name it, highest term it is named under)
    let mut votes: BTreeMap<u64, (usize, u64)> = BTreeMap::new();
    for node in nodes.iter().filter(|node| node.alive) {
        if let (Some(leader), Some(term)) = (node.leader, node.term) {
            let (count, highest) = votes.entry(leader).or_default();
            *count += 1;
            *highest = (*highest).max(term);
        }
    }
    let best = votes
        .iter()
        .max_by(
            |(leader_a, (votes_a, term_a)), (leader_b, (votes_b, term_b))| {
                votes_a
                    .cmp(votes_b)
                    .then(term_a.cmp(term_b))
                    .then(leader_b.cmp(leader_a))
            },
        )
        .map(|(&leader, &(_, term))| (leader, term));
    match best {
        Some((leader, term)) => (Some(leader), Some(term)),
        None => (None, None),
    }
}

/// The tree as the live nodes report it: each live node's children that are registered and live,
/// and whether it claims a parent that is live. Dead nodes are listed too, so they get a place.
fn tree_input(nodes: &[NodeView]) -> BTreeMap<u64, layout::TreeNode> {
    let live: BTreeSet<u64> = nodes
        .iter()
        .filter(|node| node.alive)
        .map(|node| node.id)
        .collect();
    nodes
        .iter()
        .map(|node| {
            let mut children: Vec<u64> = node
                .children
                .iter()
                .copied()
                .filter(|child| live.contains(child) && *child != node.id)
                .collect();
            children.sort_unstable();
            children.dedup();
            let tree_node = layout::TreeNode {
                alive: node.alive,
                children,
                has_live_parent: node.parent.is_some_and(|parent| live.contains(&parent)),
            };
            (node.id, tree_node)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(id: u64, neighbors: &[u64]) -> RegisteredNode {
        RegisteredNode {
            id,
            admin: Some(format!("127.0.0.1:{}", 9000 + id)),
            neighbors: neighbors.to_vec(),
            repaired: Vec::new(),
        }
    }

    fn report(id: u64, roles: &[&str], parent: Option<u64>, children: &[u64]) -> StatusAnswer {
        StatusAnswer::Answered(NodeReport {
            id,
            ready: true,
            leader: Some(1),
            term: 3,
            roles: roles.iter().map(|&role| role.to_owned()).collect(),
            parent,
            children: children.to_vec(),
            data_epoch: 7,
            http: None,
            accepting_writes: None,
            copy: None,
        })
    }

    fn three_nodes() -> Vec<RegisteredNode> {
        vec![
            registered(1, &[2, 3]),
            registered(2, &[1, 3]),
            registered(3, &[1, 2]),
        ]
    }

    fn node(state: &ClusterState, id: u64) -> &NodeView {
        state
            .nodes
            .iter()
            .find(|node| node.id == id)
            .expect("node listed")
    }

    #[test]
    fn a_healthy_tree_lists_every_node_alive_with_its_depth_and_the_common_leader() {
        let answers = BTreeMap::from([
            (1, report(1, &["writer"], None, &[2, 3])),
            (2, report(2, &["persistence", "input"], Some(1), &[])),
            (3, report(3, &["persistence", "input"], Some(1), &[])),
        ]);

        let state = ClusterState::build(&three_nodes(), &answers, 1234);

        assert_eq!(state.leader, Some(1));
        assert_eq!(state.term, Some(3));
        assert_eq!(state.fetched_at, 1234);
        assert_eq!(state.error, None);
        let ids: Vec<u64> = state.nodes.iter().map(|node| node.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(state.nodes.iter().all(|node| node.alive));
        assert_eq!(node(&state, 1).depth, Some(0));
        assert_eq!(node(&state, 2).depth, Some(1));
        assert_eq!(node(&state, 3).depth, Some(1));
        assert_eq!(node(&state, 1).roles, ["writer"]);
        assert_eq!(node(&state, 2).data_epoch, Some(7));
        assert_eq!(node(&state, 3).neighbors, [1, 2]);
    }

    #[test]
    fn a_node_without_an_answer_is_dead_outside_the_tree_but_keeps_its_neighbours() {
        let answers = BTreeMap::from([
            (1, report(1, &["writer"], None, &[2, 3])),
            (2, report(2, &["input"], Some(1), &[])),
            (3, StatusAnswer::Failed("no answer within 300 ms".into())),
        ]);

        let state = ClusterState::build(&three_nodes(), &answers, 0);

        let dead = node(&state, 3);
        assert!(!dead.alive);
        assert_eq!(dead.depth, None);
        assert_eq!(dead.roles, Vec::<String>::new());
        assert_eq!(dead.term, None);
        assert_eq!(dead.neighbors, [1, 2]);
        assert_eq!(dead.problem.as_deref(), Some("no answer within 300 ms"));
        // The root still lists the dead child, as the node reports it; it is not placed under it.
        assert_eq!(node(&state, 1).children, [2, 3]);
    }

    #[test]
    fn a_node_missing_from_the_answers_is_dead() {
        let answers = BTreeMap::from([(1, report(1, &["writer"], None, &[]))]);

        let state = ClusterState::build(&three_nodes(), &answers, 0);

        assert!(node(&state, 1).alive);
        assert!(!node(&state, 2).alive);
        assert!(!node(&state, 3).alive);
    }

    #[test]
    fn an_admin_port_answering_as_another_node_makes_the_node_dead() {
        let answers = BTreeMap::from([(2, report(3, &["input"], Some(1), &[]))]);

        let state = ClusterState::build(&three_nodes(), &answers, 0);

        let confused = node(&state, 2);
        assert!(!confused.alive);
        assert!(
            confused
                .problem
                .as_deref()
                .unwrap_or_default()
                .contains('3')
        );
    }

    #[test]
    fn answers_from_unregistered_ids_and_children_that_were_never_registered_are_ignored() {
        let answers = BTreeMap::from([
            (1, report(1, &["writer"], None, &[2, 99])),
            (2, report(2, &["input"], Some(1), &[])),
            (99, report(99, &["writer"], None, &[])),
        ]);

        let state = ClusterState::build(&three_nodes()[..2], &answers, 0);

        assert_eq!(state.nodes.len(), 2);
        assert_eq!(node(&state, 2).depth, Some(1));
    }

    fn following(id: u64, leader: u64, term: u64) -> StatusAnswer {
        let mut answer = report(id, &["input"], None, &[]);
        if let StatusAnswer::Answered(report) = &mut answer {
            report.leader = Some(leader);
            report.term = term;
        }
        answer
    }

    #[test]
    fn in_a_partition_the_leader_is_the_one_most_live_nodes_follow_whatever_its_term() {
        let registered: Vec<RegisteredNode> = (1..=5).map(|id| registered(id, &[])).collect();
        let answers = BTreeMap::from([
            (1, following(1, 1, 1)),
            (2, following(2, 1, 1)),
            (3, following(3, 1, 1)),
            (4, following(4, 4, 2)),
            (5, following(5, 4, 2)),
        ]);

        let state = ClusterState::build(&registered, &answers, 0);

        assert_eq!((state.leader, state.term), (Some(1), Some(1)));
    }

    #[test]
    fn between_leaders_followed_equally_the_higher_term_then_the_smaller_id_wins() {
        let answers = BTreeMap::from([(2, following(2, 2, 1)), (3, following(3, 3, 2))]);
        let state = ClusterState::build(&three_nodes(), &answers, 0);
        assert_eq!((state.leader, state.term), (Some(3), Some(2)));

        let answers = BTreeMap::from([(2, following(2, 3, 2)), (3, following(3, 2, 2))]);
        let state = ClusterState::build(&three_nodes(), &answers, 0);
        assert_eq!((state.leader, state.term), (Some(2), Some(2)));
    }

    #[test]
    fn the_term_is_the_highest_the_leader_is_named_under() {
        let answers = BTreeMap::from([
            (1, following(1, 1, 3)),
            (2, following(2, 1, 2)),
            (3, following(3, 1, 3)),
        ]);

        let state = ClusterState::build(&three_nodes(), &answers, 0);

        assert_eq!((state.leader, state.term), (Some(1), Some(3)));
        assert_eq!(node(&state, 1).depth, Some(0));
    }

    #[test]
    fn no_live_node_means_no_leader() {
        let state = ClusterState::build(&three_nodes(), &BTreeMap::new(), 0);

        assert_eq!((state.leader, state.term), (None, None));
        assert!(state.nodes.iter().all(|node| node.depth.is_none()));
    }

    #[test]
    fn the_state_serialises_with_the_documented_field_names() {
        let answers = BTreeMap::from([(1, report(1, &["writer"], None, &[]))]);
        let mut registered = three_nodes();
        registered[0].repaired = vec![3];
        let state = ClusterState::build(&registered[..1], &answers, 42);

        let json = serde_json::to_value(&state).expect("serialisable");

        for field in ["nodes", "leader", "term", "fetched_at"] {
            assert!(json.get(field).is_some(), "missing {field} in {json}");
        }
        let node = &json["nodes"][0];
        for field in [
            "id",
            "alive",
            "ready",
            "roles",
            "parent",
            "children",
            "leader",
            "term",
            "data_epoch",
            "http",
            "neighbors",
            "repaired",
        ] {
            assert!(node.get(field).is_some(), "missing {field} in {node}");
        }
        assert_eq!(node["neighbors"], serde_json::json!([2, 3]));
        assert_eq!(node["repaired"], serde_json::json!([3]));
    }

    #[test]
    fn repaired_links_are_sorted_and_only_those_to_neighbours_are_kept_alive_or_dead() {
        let mut registered = three_nodes();
        registered[0].repaired = vec![3, 99, 2, 3];
        registered[1].repaired = vec![3];
        let answers = BTreeMap::from([(1, report(1, &["writer"], None, &[2]))]);

        let state = ClusterState::build(&registered, &answers, 0);

        assert_eq!(node(&state, 1).repaired, [2, 3]);
        assert!(!node(&state, 2).alive);
        assert_eq!(node(&state, 2).repaired, [3]);
        assert_eq!(node(&state, 3).repaired, Vec::<u64>::new());
    }

    #[test]
    fn a_list_nodes_entry_carries_its_neighbours_and_repaired_links() {
        let entry = chat_proto::bootstrap::NodeEntry {
            address: Some(chat_proto::bootstrap::NodeAddress {
                id: 4,
                host: "127.0.0.1".into(),
                control_port: 0,
                data_port: 0,
                admin_port: 9004,
                http_port: 0,
            }),
            neighbors: vec![1, 5, 7],
            repaired: vec![5],
        };

        let node = RegisteredNode::from_proto(&entry).expect("usable entry");

        assert_eq!(node.id, 4);
        assert_eq!(node.admin.as_deref(), Some("127.0.0.1:9004"));
        assert_eq!(node.neighbors, [1, 5, 7]);
        assert_eq!(node.repaired, [5]);
    }

    #[test]
    fn a_status_with_unknown_and_missing_fields_still_parses() {
        let report = NodeReport::parse(
            br#"{"id":4,"roles":["writer"],"accepting_writes":true,"copy":"voter","tick":9,"future":{"x":1}}"#,
        )
        .expect("lenient parse");

        assert_eq!(report.id, 4);
        assert_eq!(report.roles, ["writer"]);
        assert_eq!(report.accepting_writes, Some(true));
        assert_eq!(report.copy.as_deref(), Some("voter"));
        assert_eq!(report.leader, None);
        assert!(!report.ready);
    }

    #[test]
    fn garbage_instead_of_a_status_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"not json",
            b"[1,2,3]",
            b"{\"id\":-1}",
            b"{\"id\":\"one\"}",
            b"\xff\xfe",
        ] {
            assert!(NodeReport::parse(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn admin_addresses_put_ipv6_literals_in_brackets_and_refuse_bad_ports() {
        assert_eq!(
            admin_authority("127.0.0.1", 9001).as_deref(),
            Some("127.0.0.1:9001")
        );
        assert_eq!(admin_authority("::1", 9001).as_deref(), Some("[::1]:9001"));
        assert_eq!(admin_authority("127.0.0.1", 0), None);
        assert_eq!(admin_authority("127.0.0.1", 70000), None);
        assert_eq!(admin_authority("", 9001), None);
    }
}
