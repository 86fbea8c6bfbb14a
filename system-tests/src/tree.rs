//! Checks, from the `/status` answers of a set of live nodes, that they form one valid spanning tree.
//!
//! The same invariants the simulator checks on its in-memory nodes, here read off real processes:
//! every node ready, one leader and one term agreed by all, the leader is the only root, parent and
//! children pointers are mutual, the tree reaches every live node without a cycle, the roles follow
//! the tree (root writes, leaves serve HTTP).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A node's tree view, as read from its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeView {
    pub id: u64,
    pub ready: bool,
    pub leader: Option<u64>,
    pub term: u64,
    pub parent: Option<u64>,
    pub children: BTreeSet<u64>,
    pub roles: BTreeSet<String>,
}

impl TreeView {
    /// Reads the fields of DESIGN's `/status` contract; `None` when one is missing or mistyped.
    pub fn from_status(status: &Value) -> Option<Self> {
        let id_list = |value: &Value| -> Option<BTreeSet<u64>> {
            value.as_array()?.iter().map(Value::as_u64).collect()
        };
        Some(Self {
            id: status["id"].as_u64()?,
            ready: status["ready"].as_bool()?,
            leader: status["leader"].as_u64(),
            term: status["term"].as_u64()?,
            parent: status["parent"].as_u64(),
            children: id_list(&status["children"])?,
            roles: status["roles"]
                .as_array()?
                .iter()
                .map(|role| role.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
        })
    }
}

/// The leader of the valid tree formed by `views`, or a description of the first problem found.
pub fn check_tree(views: &[TreeView]) -> Result<u64, String> {
    let by_id: BTreeMap<u64, &TreeView> = views.iter().map(|view| (view.id, view)).collect();
    if by_id.is_empty() {
        return Err("no nodes".into());
    }
    if let Some(view) = views.iter().find(|view| !view.ready) {
        return Err(format!("node {} is not ready", view.id));
    }
    let leaders: BTreeSet<Option<u64>> = views.iter().map(|view| view.leader).collect();
    let [Some(leader)] = leaders.iter().copied().collect::<Vec<_>>()[..] else {
        return Err(format!("nodes disagree on the leader: {leaders:?}"));
    };
    let terms: BTreeSet<u64> = views.iter().map(|view| view.term).collect();
    if terms.len() != 1 {
        return Err(format!("nodes disagree on the term: {terms:?}"));
    }
    let Some(root) = by_id.get(&leader) else {
        return Err(format!("the leader {leader} is not among the live nodes"));
    };
    if root.parent.is_some() {
        return Err(format!("the leader {leader} has a parent"));
    }
    for view in views {
        if view.id != leader && view.parent.is_none() {
            return Err(format!(
                "node {} has no parent but is not the leader",
                view.id
            ));
        }
        if let Some(parent) = view.parent {
            let Some(parent_view) = by_id.get(&parent) else {
                return Err(format!("node {}'s parent {parent} is not live", view.id));
            };
            if !parent_view.children.contains(&view.id) {
                return Err(format!(
                    "node {}'s parent {parent} does not list it as a child",
                    view.id
                ));
            }
        }
        for child in &view.children {
            match by_id.get(child) {
                Some(child_view) if child_view.parent == Some(view.id) => {}
                _ => {
                    return Err(format!(
                        "node {} lists {child} as a child, which disagrees",
                        view.id
                    ));
                }
            }
        }
    }
    // Walk down from the root: every node reached once means acyclic and spanning.
    let mut reached = BTreeSet::new();
    let mut frontier = vec![leader];
    while let Some(id) = frontier.pop() {
        if !reached.insert(id) {
            return Err(format!("node {id} is reached twice: a cycle"));
        }
        frontier.extend(by_id[&id].children.iter().copied());
    }
    if reached.len() != by_id.len() {
        let missed: Vec<_> = by_id.keys().filter(|id| !reached.contains(id)).collect();
        return Err(format!("the tree does not reach {missed:?}"));
    }
    for view in views {
        let is_root = view.id == leader;
        if view.roles.contains("writer") != is_root {
            return Err(format!(
                "node {} has roles {:?} (root: {is_root})",
                view.id, view.roles
            ));
        }
        if view.children.is_empty() && !view.roles.contains("input") {
            return Err(format!(
                "leaf {} is not an input node: {:?}",
                view.id, view.roles
            ));
        }
    }
    Ok(leader)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: u64, parent: Option<u64>, children: &[u64], roles: &[&str]) -> TreeView {
        TreeView {
            id,
            ready: true,
            leader: Some(1),
            term: 3,
            parent,
            children: children.iter().copied().collect(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn path_of_three() -> Vec<TreeView> {
        vec![
            view(1, None, &[2], &["writer"]),
            view(2, Some(1), &[3], &["persistence"]),
            view(3, Some(2), &[], &["input"]),
        ]
    }

    #[test]
    fn a_valid_path_is_accepted() {
        assert_eq!(check_tree(&path_of_three()), Ok(1));
    }

    #[test]
    fn a_lone_writer_and_input_is_accepted() {
        assert_eq!(
            check_tree(&[view(1, None, &[], &["writer", "input"])]),
            Ok(1)
        );
    }

    #[test]
    fn each_broken_invariant_is_reported() {
        let mut views = path_of_three();
        views[2].ready = false;
        assert!(check_tree(&views).unwrap_err().contains("not ready"));

        let mut views = path_of_three();
        views[1].leader = Some(2);
        assert!(check_tree(&views).unwrap_err().contains("leader"));

        let mut views = path_of_three();
        views[0].term = 4;
        assert!(check_tree(&views).unwrap_err().contains("term"));

        let mut views = path_of_three();
        views[1].children.clear();
        assert!(check_tree(&views).unwrap_err().contains("does not list"));

        let mut views = path_of_three();
        views[2].parent = None;
        views[1].children.clear();
        assert!(check_tree(&views).unwrap_err().contains("no parent"));

        let mut views = path_of_three();
        views[2].roles = ["forwarder".to_string()].into();
        assert!(check_tree(&views).unwrap_err().contains("leaf"));

        let mut views = path_of_three();
        views[1].roles.insert("writer".into());
        assert!(check_tree(&views).unwrap_err().contains("roles"));

        let views = vec![path_of_three().remove(0), path_of_three().remove(2)];
        assert!(
            check_tree(&views).is_err(),
            "a missing middle node breaks the tree"
        );
    }

    #[test]
    fn a_status_document_is_read_into_a_view() {
        let status = serde_json::json!({
            "id": 2, "ready": true, "leader": 1, "term": 3, "parent": 1, "children": [4, 5],
            "roles": ["persistence"], "neighbors": [], "tick": 9, "data_epoch": 0, "clock": 12, "http": null
        });
        let view = TreeView::from_status(&status).unwrap();
        assert_eq!(view.parent, Some(1));
        assert_eq!(view.children, [4, 5].into());
        assert!(TreeView::from_status(&serde_json::json!({"id": 2})).is_none());
    }
}
