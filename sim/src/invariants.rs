//! The invariants checked at quiescence, one named function each. Each returns the violations it found
//! (empty = holds), phrased so a failure message says what is wrong and where.

use std::collections::{BTreeMap, BTreeSet};

use overlay::{ElectionId, NodeId, Role, TreeId, roles};

/// What one live node reports.
#[derive(Clone, Debug)]
pub struct NodeView {
    pub tree: Option<TreeId>,
    pub is_root: bool,
    pub parent: Option<NodeId>,
    pub children: BTreeSet<NodeId>,
    pub roles: BTreeSet<Role>,
    pub ready: bool,
    pub election: Option<ElectionId>,
    /// The route table, when the world was taken with routes.
    pub routes: Option<BTreeMap<NodeId, NodeId>>,
}

/// Every live node's view, and the connected components of live nodes over working links.
pub struct World {
    pub views: BTreeMap<NodeId, NodeView>,
    pub components: Vec<BTreeSet<NodeId>>,
}

impl World {
    pub fn check_all(&self) -> Vec<String> {
        let mut problems = Vec::new();
        problems.extend(elections_terminated(self));
        problems.extend(every_node_is_ready(self));
        problems.extend(exactly_one_leader_per_component(self));
        problems.extend(every_node_agrees_on_the_leader(self));
        problems.extend(parent_and_children_pointers_are_mutual(self));
        problems.extend(tree_is_acyclic_and_spans_the_component(self));
        problems.extend(roles_follow_the_rule(self));
        problems.extend(routes_point_to_the_child_whose_subtree_holds_the_destination(self));
        problems
    }

    fn component_of(&self, node: NodeId) -> Option<&BTreeSet<NodeId>> {
        self.components.iter().find(|c| c.contains(&node))
    }
}

pub fn elections_terminated(world: &World) -> Vec<String> {
    world
        .views
        .iter()
        .filter_map(|(id, view)| {
            view.election
                .map(|election| format!("node {id} is still in election {election:?}"))
        })
        .collect()
}

pub fn every_node_is_ready(world: &World) -> Vec<String> {
    world
        .views
        .iter()
        .filter(|(_, view)| !view.ready)
        .map(|(id, _)| format!("node {id} is not ready"))
        .collect()
}

pub fn exactly_one_leader_per_component(world: &World) -> Vec<String> {
    world
        .components
        .iter()
        .filter_map(|component| {
            let roots: Vec<NodeId> = component
                .iter()
                .filter(|id| world.views[*id].is_root)
                .copied()
                .collect();
            (roots.len() != 1)
                .then(|| format!("component of {} nodes has roots {roots:?}", component.len()))
        })
        .collect()
}

pub fn every_node_agrees_on_the_leader(world: &World) -> Vec<String> {
    let mut problems = Vec::new();
    for component in &world.components {
        let trees: BTreeSet<Option<TreeId>> =
            component.iter().map(|id| world.views[id].tree).collect();
        if trees.len() != 1 {
            problems.push(format!("a component follows several trees: {trees:?}"));
        } else if let Some(Some(tree)) = trees.first()
            && !component.contains(&tree.leader)
        {
            problems.push(format!("leader {} is outside its component", tree.leader));
        }
    }
    problems
}

pub fn parent_and_children_pointers_are_mutual(world: &World) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, view) in &world.views {
        if let Some(parent) = view.parent {
            match world.views.get(&parent) {
                Some(p) if p.children.contains(id) => {}
                _ => problems.push(format!(
                    "node {id} names parent {parent}, which does not list it"
                )),
            }
        }
        for child in &view.children {
            match world.views.get(child) {
                Some(c) if c.parent == Some(*id) => {}
                _ => problems.push(format!(
                    "node {id} lists child {child}, whose parent is elsewhere"
                )),
            }
        }
    }
    problems
}

pub fn tree_is_acyclic_and_spans_the_component(world: &World) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, view) in &world.views {
        if view.is_root {
            if view.parent.is_some() {
                problems.push(format!("root {id} has a parent"));
            }
            continue;
        }
        // Follow parents to a root, within the component, in at most n steps.
        let Some(component) = world.component_of(*id) else {
            continue;
        };
        let mut at = *id;
        let mut steps = 0;
        loop {
            let Some(here) = world.views.get(&at) else {
                problems.push(format!("path up from {id} leaves the live nodes at {at}"));
                break;
            };
            if here.is_root {
                break;
            }
            let Some(parent) = here.parent else {
                problems.push(format!("path up from {id} stops at parentless {at}"));
                break;
            };
            if !component.contains(&parent) {
                problems.push(format!(
                    "node {at}'s parent {parent} is outside its component"
                ));
                break;
            }
            at = parent;
            steps += 1;
            if steps > component.len() {
                problems.push(format!("cycle above node {id}"));
                break;
            }
        }
    }
    problems
}

pub fn roles_follow_the_rule(world: &World) -> Vec<String> {
    world
        .views
        .iter()
        .filter_map(|(id, view)| {
            let parent_is_root =
                view.parent.is_some() && view.parent == view.tree.map(|tree| tree.leader);
            let expected = roles(
                view.is_root,
                view.parent.is_some(),
                view.children.len(),
                parent_is_root,
            );
            (expected != view.roles).then(|| {
                format!(
                    "node {id} has roles {:?}, the rule says {expected:?}",
                    view.roles
                )
            })
        })
        .collect()
}

pub fn routes_point_to_the_child_whose_subtree_holds_the_destination(world: &World) -> Vec<String> {
    // Expected: every descendant maps to the child on the path to it.
    let mut problems = Vec::new();
    for (id, view) in &world.views {
        let Some(routes) = &view.routes else {
            continue;
        };
        let mut expected = BTreeMap::new();
        for child in &view.children {
            let mut stack = vec![*child];
            let mut guard = 0;
            while let Some(node) = stack.pop() {
                guard += 1;
                if guard > world.views.len() {
                    break;
                }
                expected.insert(node, *child);
                if let Some(v) = world.views.get(&node) {
                    stack.extend(v.children.iter().copied());
                }
            }
        }
        if expected != *routes {
            let wrong: Vec<_> = routes
                .iter()
                .filter(|(dest, hop)| expected.get(*dest) != Some(*hop))
                .collect();
            let missing: Vec<_> = expected
                .iter()
                .filter(|(dest, _)| !routes.contains_key(*dest))
                .collect();
            problems.push(format!(
                "node {id} routes: wrong {wrong:?}, missing {missing:?}"
            ));
        }
    }
    problems
}
