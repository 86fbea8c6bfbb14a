//! Where a request goes (DESIGN §5): answered where it arrives when this node may answer it, else sent
//! on to the parent, else refused as retryable. Only the writer writes; a copy answers a read only
//! once the current writer has confirmed its log (before that it may hold entries that were never
//! acknowledged) and only when it holds everything the client has already seen (read-your-writes).
//! A writer that does not accept writes refuses writes before touching anything, so nothing needs to
//! be taken back, and refuses reads from a client that has seen more than it holds (it may be about
//! to hand over to a node with newer data).

use crate::NodeId;
use overlay::Epoch;

/// What this node holds, as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The root's writer service, with its log's last epoch.
    Writer { accepting: bool, holds: Epoch },
    /// A copy of the data: applied up to `applied`, its log confirmed by `verified_by`.
    Copy {
        applied: Epoch,
        verified_by: Option<NodeId>,
    },
    /// No data here (a forwarder, or a node between roles).
    Nothing,
}

/// Where this node stands in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The tree has been built (before that, nothing is answered or forwarded).
    pub ready: bool,
    pub parent: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub holder: Holder,
}

/// The part of a request that routing looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub write: bool,
    /// The newest epoch the client has seen (0: nothing yet).
    pub client_epoch: Epoch,
}

/// Who answers a request answered here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    Writer,
    Copy,
}

/// Why a request is refused (always retryable: 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The tree is being built.
    NotReady,
    /// A write reached a writer that does not accept writes.
    NotAccepting,
    /// A writer that does not accept writes holds less than the client has seen.
    Behind,
    /// Nobody above to send it to.
    NoParent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Answer(Answerer),
    Forward(NodeId),
    Refuse(Refusal),
}

/// Where `ask` goes from a node at `here`.
pub fn route(here: &Position, ask: Ask) -> Route {
    if !here.ready {
        return Route::Refuse(Refusal::NotReady);
    }
    match here.holder {
        Holder::Writer {
            accepting: true, ..
        } => return Route::Answer(Answerer::Writer),
        Holder::Writer {
            accepting: false, ..
        } if ask.write => {
            return Route::Refuse(Refusal::NotAccepting);
        }
        Holder::Writer { holds, .. } if ask.client_epoch > holds => {
            return Route::Refuse(Refusal::Behind);
        }
        Holder::Writer { .. } => return Route::Answer(Answerer::Writer),
        Holder::Copy {
            applied,
            verified_by,
        } if !ask.write
            && verified_by.is_some()
            && verified_by == here.leader
            && copy_can_answer(ask.client_epoch, applied) =>
        {
            return Route::Answer(Answerer::Copy);
        }
        Holder::Copy { .. } | Holder::Nothing => {}
    }
    forward(here)
}

/// Where a request goes that a local copy turned out not to be able to answer after all.
pub fn forward(here: &Position) -> Route {
    match here.parent {
        Some(parent) => Route::Forward(parent),
        None => Route::Refuse(Refusal::NoParent),
    }
}

/// Whether a copy that applied up to `applied` may answer a client that has seen `client_epoch`: only
/// a client that has seen something (a fresh client's first read goes to the writer, which is never
/// behind what any client saw) and nothing newer than the copy holds.
pub fn copy_can_answer(client_epoch: Epoch, applied: Epoch) -> bool {
    client_epoch.0 > 0 && client_epoch <= applied
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Ask = Ask {
        write: false,
        client_epoch: Epoch(5),
    };
    const WRITE: Ask = Ask {
        write: true,
        client_epoch: Epoch(5),
    };

    fn at(holder: Holder) -> Position {
        Position {
            ready: true,
            parent: Some(NodeId(1)),
            leader: Some(NodeId(1)),
            holder,
        }
    }

    fn copy(applied: u64, verified_by: Option<u64>) -> Holder {
        Holder::Copy {
            applied: Epoch(applied),
            verified_by: verified_by.map(NodeId),
        }
    }

    #[test]
    fn a_copy_answers_only_clients_between_epoch_one_and_its_own() {
        assert!(!copy_can_answer(Epoch(0), Epoch(5)));
        assert!(copy_can_answer(Epoch(1), Epoch(5)));
        assert!(copy_can_answer(Epoch(5), Epoch(5)));
        assert!(!copy_can_answer(Epoch(6), Epoch(5)));
        assert!(!copy_can_answer(Epoch(0), Epoch(0)));
    }

    #[test]
    fn nothing_moves_before_the_tree_is_ready() {
        let here = Position {
            ready: false,
            ..at(Holder::Nothing)
        };
        assert_eq!(route(&here, READ), Route::Refuse(Refusal::NotReady));
        assert_eq!(route(&here, WRITE), Route::Refuse(Refusal::NotReady));
    }

    #[test]
    fn an_accepting_writer_answers_everything() {
        let here = Position {
            parent: None,
            ..at(Holder::Writer {
                accepting: true,
                holds: Epoch(1),
            })
        };
        assert_eq!(route(&here, WRITE), Route::Answer(Answerer::Writer));
        assert_eq!(route(&here, READ), Route::Answer(Answerer::Writer));
    }

    #[test]
    fn a_writer_that_does_not_accept_refuses_writes_and_reads_beyond_what_it_holds() {
        let here = Position {
            parent: None,
            ..at(Holder::Writer {
                accepting: false,
                holds: Epoch(4),
            })
        };
        assert_eq!(route(&here, WRITE), Route::Refuse(Refusal::NotAccepting));
        assert_eq!(route(&here, READ), Route::Refuse(Refusal::Behind));
        let seen_less = Ask {
            client_epoch: Epoch(4),
            ..READ
        };
        assert_eq!(route(&here, seen_less), Route::Answer(Answerer::Writer));
    }

    #[test]
    fn a_copy_answers_reads_it_is_fresh_enough_for_once_the_writer_confirmed_it() {
        assert_eq!(
            route(&at(copy(5, Some(1))), READ),
            Route::Answer(Answerer::Copy)
        );
        assert_eq!(
            route(&at(copy(9, Some(1))), READ),
            Route::Answer(Answerer::Copy)
        );
        // Behind the client, unconfirmed, confirmed by a former writer: up it goes.
        assert_eq!(
            route(&at(copy(4, Some(1))), READ),
            Route::Forward(NodeId(1))
        );
        assert_eq!(route(&at(copy(9, None)), READ), Route::Forward(NodeId(1)));
        assert_eq!(
            route(&at(copy(9, Some(7))), READ),
            Route::Forward(NodeId(1))
        );
        // A client that has seen nothing asks the writer.
        let fresh = Ask {
            client_epoch: Epoch(0),
            ..READ
        };
        assert_eq!(
            route(&at(copy(9, Some(1))), fresh),
            Route::Forward(NodeId(1))
        );
    }

    #[test]
    fn writes_and_reads_a_node_cannot_answer_go_to_the_parent_or_are_refused_at_the_top() {
        assert_eq!(
            route(&at(copy(9, Some(1))), WRITE),
            Route::Forward(NodeId(1))
        );
        assert_eq!(route(&at(Holder::Nothing), READ), Route::Forward(NodeId(1)));
        let orphan = Position {
            parent: None,
            ..at(Holder::Nothing)
        };
        assert_eq!(route(&orphan, WRITE), Route::Refuse(Refusal::NoParent));
        assert_eq!(forward(&orphan), Route::Refuse(Refusal::NoParent));
    }
}
