//! The root's side of "one writer at a time" as a state machine: when to claim a data term, when to
//! repeat the claim, when to take the claimed term and start accepting writes, when to stop, and when
//! to ask for an election. The node feeds in what its tree reports ([`Situation`]) and the answers of
//! the storage commands it was told to run; [`Root`] answers with [`Command`]s. No IO, no clock: the
//! runtime passes `now` in, so the tests below and the simulations drive it exactly as the node does.
//!
//! ```text
//!                  Claim verdict                 promised(term)            Claim verdict
//!   Idle ─────────────────────────▶ Promise(t) ────────────────▶ Claimed(t) ──────────────▶ SendClaim(t)
//!    ▲                             (own promise,                 │  (repeated every CLAIM_RESEND
//!    │                              on disk first)               │   until a majority promised)
//!    │                                                           │ Accept verdict
//!    │ stop (tree lost, stalled, newer data)                     ▼
//!    └──────────────────────────── Accepting(t) ◀── Start(t) ◀── TakeTerm(t) ── term_taken(t)
//! ```
//!
//! Why the steps come in this order (the safety argument is in `acceptance` and `term`):
//! - The root's own promise is on its disk before the claim goes out: the root counts among the
//!   voters like any other, and a promise that did not survive a crash would be worthless.
//! - The store takes the term before the root accepts: every entry it then writes carries it.
//! - At most one storage command is in flight. The runtime runs them off its task, so results come
//!   back in any order relative to messages; with one at a time, a result always answers the step
//!   the machine is waiting in. A result that arrives after the root stopped is dropped (`wanted`
//!   below): every start claims anew, above what the tree reports then. (Reviving the old claim would
//!   not be unsafe, since `promised_by` checks any claim against every promise the tree reports, and
//!   the simulations do not tell the two apart; dropping it keeps "a start claims anew" true.)
//! - Every start claims anew (a stop forgets the claim): the new term is then above every promise
//!   that the tree reports now.

use std::collections::BTreeMap;

use overlay::{Epoch, Millis, Term};

use crate::term::claimant;
use crate::{Acceptance, Configuration, NodeId, TreeReport, data_term, may_accept, promised_by};

/// How often a root repeats its claim to copies that have not promised yet (a claim may be lost).
pub const CLAIM_RESEND: Millis = Millis(200);

/// A root that found newer data in its tree asks for an election at most this often (the election
/// takes a few hundred milliseconds; asking again meanwhile would only restart it).
pub const ELECTION_CALL_SPACING: Millis = Millis(3000);

/// What the root knows when it decides.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    pub now: Millis,
    /// The tree's (control) term: a new data term's round is at least this.
    pub tree_term: u64,
    /// The root's own data position.
    pub own: (Term, Epoch),
    /// Newer data than `own` that a node of the tree reported, if any.
    pub newer: Option<(Term, Epoch)>,
    /// Every member's highest promise, the root's own included.
    pub promises: &'a BTreeMap<NodeId, Term>,
    /// The tree; its `promised` field is filled in here from `promises` and the claim.
    pub tree: TreeReport,
    /// The newest configuration in the root's log (`None` before the first).
    pub configuration: Option<&'a Configuration>,
}

/// What the runtime is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ask the control plane for an election, which the node holding `newer` wins.
    CallElection { newer: (Term, Epoch) },
    /// Storage: promise `term` on this node's disk, then report with [`Root::promised`].
    Promise(Term),
    /// Send a claim of `term` down the tree.
    SendClaim(Term),
    /// Storage: write under `term` from now on, then report with [`Root::term_taken`].
    TakeTerm(Term),
    /// Accept writes under `term` (the first entry of a term restates the voters).
    Start(Term),
    /// Stop accepting writes, for this reason; writes waiting for a quorum fail.
    Stop(Acceptance),
    /// No data term is left above `seen`: this root can never accept (reported, nothing else).
    NoTermLeft { seen: Term },
}

/// The storage command the root waits for, and whether its result is still wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Promise { term: Term, wanted: bool },
    TakeTerm { term: Term, wanted: bool },
}

/// The root's claim and acceptance (see the module documentation).
#[derive(Debug, Clone)]
pub struct Root {
    me: NodeId,
    accepting: bool,
    /// The claimed term, once the root's own promise of it is on disk.
    claim: Option<Term>,
    /// When the claim last went down the tree.
    claim_sent: Option<Millis>,
    /// The claim the store writes under.
    taken: Option<Term>,
    waiting: Option<Waiting>,
    last_election_call: Option<Millis>,
    /// The last verdict of the rules.
    verdict: Acceptance,
}

impl Root {
    pub fn new(me: NodeId) -> Self {
        Self {
            me,
            accepting: false,
            claim: None,
            claim_sent: None,
            taken: None,
            waiting: None,
            last_election_call: None,
            verdict: Acceptance::NotLeading,
        }
    }

    /// Whether writes are accepted now.
    pub fn accepting(&self) -> bool {
        self.accepting
    }

    /// What the rules said at the last evaluation.
    pub fn verdict(&self) -> Acceptance {
        self.verdict
    }

    /// The data term claimed (and written under while accepting).
    pub fn claim(&self) -> Option<Term> {
        self.claim
    }

    /// Decides on `situation`; the answer is the commands to run, in order.
    pub fn evaluate(&mut self, situation: Situation<'_>) -> Vec<Command> {
        let mut commands = Vec::new();
        if let Some(newer) = situation.newer.filter(|newer| *newer > situation.own)
            && self
                .last_election_call
                .is_none_or(|at| situation.now.since(at) >= ELECTION_CALL_SPACING)
        {
            self.last_election_call = Some(situation.now);
            commands.push(Command::CallElection { newer });
        }
        let promised = promised_by(
            self.claim.map(|term| term.0),
            situation
                .promises
                .iter()
                .map(|(node, term)| (*node, term.0)),
        );
        let mut tree = situation.tree;
        tree.newer_data |= situation.newer.is_some_and(|newer| newer > situation.own);
        tree.promised = promised.clone().unwrap_or_default();
        tree.claimants = situation
            .promises
            .values()
            .filter(|term| term.0 > 0 && Some(**term) != self.claim)
            .map(|term| claimant(term.0))
            .collect();
        let verdict = may_accept(situation.configuration, &tree, self.accepting);
        self.verdict = verdict;
        match verdict {
            Acceptance::Claim if self.waiting.is_some() => {}
            Acceptance::Claim => match (promised, self.claim) {
                (Some(_), Some(claim)) => {
                    if self
                        .claim_sent
                        .is_none_or(|at| situation.now.since(at) >= CLAIM_RESEND)
                    {
                        self.claim_sent = Some(situation.now);
                        commands.push(Command::SendClaim(claim));
                    }
                }
                // No claim, or a member promised more than it: claim above everything seen.
                _ => {
                    let highest = situation.promises.values().copied().max();
                    let seen = highest.unwrap_or_default().max(situation.own.0);
                    match data_term(situation.tree_term, seen.0, self.me) {
                        Some(term) => {
                            let term = Term(term);
                            self.waiting = Some(Waiting::Promise { term, wanted: true });
                            commands.push(Command::Promise(term));
                        }
                        None => commands.push(Command::NoTermLeft { seen }),
                    }
                }
            },
            Acceptance::Accept if !self.accepting => {
                // `Accept` for a root that does not accept yet means a majority promised its claim.
                if let Some(claim) = self.claim {
                    if self.taken == Some(claim) {
                        self.accepting = true;
                        commands.push(Command::Start(claim));
                    } else if self.waiting.is_none() {
                        self.waiting = Some(Waiting::TakeTerm {
                            term: claim,
                            wanted: true,
                        });
                        commands.push(Command::TakeTerm(claim));
                    }
                }
            }
            Acceptance::Accept => {}
            reason if self.accepting => {
                self.stop();
                commands.push(Command::Stop(reason));
            }
            _ => {}
        }
        commands
    }

    /// The root's own promise of `term` is on disk (`Ok(held)`: the promise it now holds, `term` or
    /// a higher one made before) or could not be made. Evaluate again afterwards.
    pub fn promised(&mut self, term: Term, result: Result<Term, ()>) {
        if self.waiting == Some(Waiting::Promise { term, wanted: true }) && result.is_ok() {
            self.claim = Some(term);
            self.claim_sent = None;
            self.taken = None;
        }
        if matches!(self.waiting, Some(Waiting::Promise { term: t, .. }) if t == term) {
            self.waiting = None;
        }
    }

    /// The store took `term` (or could not). Evaluate again afterwards.
    pub fn term_taken(&mut self, term: Term, ok: bool) {
        if self.waiting == Some(Waiting::TakeTerm { term, wanted: true })
            && ok
            && self.claim == Some(term)
        {
            self.taken = Some(term);
        }
        if matches!(self.waiting, Some(Waiting::TakeTerm { term: t, .. }) if t == term) {
            self.waiting = None;
        }
    }

    /// Stops accepting whatever the tree says: the process was stopped or starved (its tree may have
    /// moved on without it), or the node leaves the root's role. Answers whether it was accepting.
    pub fn halt(&mut self) -> bool {
        let was = self.accepting;
        self.stop();
        was
    }

    /// Stops accepting and forgets the claim: the next start claims a new term. A storage command in
    /// flight still finishes, but its result is no longer used.
    fn stop(&mut self) {
        self.accepting = false;
        self.claim = None;
        self.claim_sent = None;
        self.taken = None;
        self.waiting = match self.waiting {
            Some(Waiting::Promise { term, .. }) => Some(Waiting::Promise {
                term,
                wanted: false,
            }),
            Some(Waiting::TakeTerm { term, .. }) => Some(Waiting::TakeTerm {
                term,
                wanted: false,
            }),
            None => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::term::WRITER_BITS;

    const ME: NodeId = NodeId(1);

    fn nodes(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }

    /// A ready tree of nodes 1–3 (all whole, all reported) with voters 1–3.
    struct Fixture {
        configuration: Configuration,
        promises: BTreeMap<NodeId, Term>,
        tree: TreeReport,
        own: (Term, Epoch),
        newer: Option<(Term, Epoch)>,
        tree_term: u64,
        /// The root's log holds `configuration` (else none yet).
        configured: bool,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                configuration: Configuration::new(1, [NodeId(1), NodeId(2), NodeId(3)]),
                promises: BTreeMap::new(),
                tree: TreeReport {
                    leads: true,
                    members: nodes(&[1, 2, 3]),
                    whole: nodes(&[1, 2, 3]),
                    all_reported: true,
                    newer_data: false,
                    registered: 3,
                    promised: BTreeSet::new(),
                    claimants: BTreeSet::new(),
                },
                own: (Term(0), Epoch(0)),
                newer: None,
                tree_term: 4,
                configured: true,
            }
        }

        fn at(&self, root: &mut Root, now: u64) -> Vec<Command> {
            root.evaluate(Situation {
                now: Millis(now),
                tree_term: self.tree_term,
                own: self.own,
                newer: self.newer,
                promises: &self.promises,
                tree: self.tree.clone(),
                configuration: self.configured.then_some(&self.configuration),
            })
        }

        fn promise(&mut self, node: u64, term: Term) {
            self.promises.insert(NodeId(node), term);
        }
    }

    fn term(round: u64, node: u64) -> Term {
        Term(round << WRITER_BITS | node)
    }

    /// Runs a root from nothing to accepting under `term(4, 1)`; answers it.
    fn accepting_root(fixture: &mut Fixture) -> Root {
        let mut root = Root::new(ME);
        let claim = term(4, 1);
        assert_eq!(fixture.at(&mut root, 0), [Command::Promise(claim)]);
        root.promised(claim, Ok(claim));
        fixture.promise(1, claim);
        fixture.promise(2, claim);
        assert_eq!(fixture.at(&mut root, 1), [Command::TakeTerm(claim)]);
        root.term_taken(claim, true);
        assert_eq!(fixture.at(&mut root, 2), [Command::Start(claim)]);
        assert!(root.accepting());
        root
    }

    #[test]
    fn a_root_promises_its_claim_itself_then_sends_it_and_starts_once_a_majority_promised() {
        let mut fixture = Fixture::new();
        let mut root = Root::new(ME);
        let claim = term(4, 1);
        assert_eq!(fixture.at(&mut root, 0), [Command::Promise(claim)]);
        // Nothing more while the promise is being written.
        assert_eq!(fixture.at(&mut root, 10), []);
        root.promised(claim, Ok(claim));
        fixture.promise(1, claim);
        assert_eq!(fixture.at(&mut root, 20), [Command::SendClaim(claim)]);
        // Repeated only every CLAIM_RESEND.
        assert_eq!(fixture.at(&mut root, 219), []);
        assert_eq!(fixture.at(&mut root, 220), [Command::SendClaim(claim)]);
        fixture.promise(3, claim);
        assert_eq!(fixture.at(&mut root, 230), [Command::TakeTerm(claim)]);
        assert_eq!(fixture.at(&mut root, 240), []);
        assert!(!root.accepting());
        root.term_taken(claim, true);
        assert_eq!(fixture.at(&mut root, 250), [Command::Start(claim)]);
        assert_eq!(fixture.at(&mut root, 260), []);
        assert!(root.accepting());
        assert_eq!(root.claim(), Some(claim));
    }

    #[test]
    fn a_claim_is_above_every_promise_and_the_tree_term_and_is_renewed_above_a_higher_one() {
        let mut fixture = Fixture::new();
        fixture.own = (term(6, 2), Epoch(9));
        fixture.promise(3, term(7, 3));
        let mut root = Root::new(ME);
        assert_eq!(fixture.at(&mut root, 0), [Command::Promise(term(8, 1))]);
        root.promised(term(8, 1), Ok(term(8, 1)));
        fixture.promise(1, term(8, 1));
        assert_eq!(fixture.at(&mut root, 1), [Command::SendClaim(term(8, 1))]);
        // Another root got node 2 to promise more meanwhile: claim above it.
        fixture.promise(2, term(9, 2));
        assert_eq!(fixture.at(&mut root, 2), [Command::Promise(term(10, 1))]);
        // The tree term wins when it is higher than every round seen.
        let mut fixture = Fixture::new();
        fixture.tree_term = 40;
        assert_eq!(
            fixture.at(&mut Root::new(ME), 0),
            [Command::Promise(term(40, 1))]
        );
    }

    #[test]
    fn a_promise_that_finds_a_higher_one_on_disk_leads_to_a_new_claim() {
        let mut fixture = Fixture::new();
        let mut root = Root::new(ME);
        assert_eq!(fixture.at(&mut root, 0), [Command::Promise(term(4, 1))]);
        // This disk had promised round 5 to another root already.
        root.promised(term(4, 1), Ok(term(5, 2)));
        fixture.promise(1, term(5, 2));
        assert_eq!(fixture.at(&mut root, 1), [Command::Promise(term(6, 1))]);
    }

    #[test]
    fn a_failed_storage_command_is_tried_again_on_the_next_evaluation() {
        let mut fixture = Fixture::new();
        let mut root = Root::new(ME);
        let claim = term(4, 1);
        assert_eq!(fixture.at(&mut root, 0), [Command::Promise(claim)]);
        root.promised(claim, Err(()));
        assert_eq!(root.claim(), None);
        assert_eq!(fixture.at(&mut root, 1), [Command::Promise(claim)]);
        root.promised(claim, Ok(claim));
        fixture.promise(1, claim);
        fixture.promise(2, claim);
        assert_eq!(fixture.at(&mut root, 2), [Command::TakeTerm(claim)]);
        root.term_taken(claim, false);
        assert_eq!(fixture.at(&mut root, 3), [Command::TakeTerm(claim)]);
    }

    #[test]
    fn a_root_that_loses_its_majority_stops_and_claims_anew_to_start_again() {
        let mut fixture = Fixture::new();
        let mut root = accepting_root(&mut fixture);
        fixture.tree.members = nodes(&[1]);
        fixture.tree.whole = nodes(&[1]);
        assert_eq!(
            fixture.at(&mut root, 10),
            [Command::Stop(Acceptance::NoMajority)]
        );
        assert_eq!(root.claim(), None);
        assert_eq!(fixture.at(&mut root, 20), []);
        fixture.tree.members = nodes(&[1, 2, 3]);
        fixture.tree.whole = nodes(&[1, 2, 3]);
        // Its old claim is what everyone promised; the new one is above it.
        assert_eq!(fixture.at(&mut root, 30), [Command::Promise(term(5, 1))]);
    }

    #[test]
    fn a_root_that_keeps_accepting_keeps_its_term_while_its_tree_changes() {
        let mut fixture = Fixture::new();
        let mut root = accepting_root(&mut fixture);
        // A voter left, one is catching up (not whole), and a new node has not reported: a root that
        // accepts goes on.
        fixture.tree.members = nodes(&[1, 2, 4]);
        fixture.tree.whole = nodes(&[1]);
        fixture.tree.all_reported = false;
        assert_eq!(fixture.at(&mut root, 10), []);
        assert!(root.accepting());
        assert_eq!(root.claim(), Some(term(4, 1)));
    }

    #[test]
    fn newer_data_in_the_tree_stops_the_root_and_calls_elections_spaced_out() {
        let mut fixture = Fixture::new();
        let mut root = accepting_root(&mut fixture);
        fixture.newer = Some((term(4, 1), Epoch(7)));
        assert_eq!(
            fixture.at(&mut root, 100),
            [
                Command::CallElection {
                    newer: (term(4, 1), Epoch(7))
                },
                Command::Stop(Acceptance::NewerData)
            ]
        );
        assert_eq!(fixture.at(&mut root, 3099), []);
        assert_eq!(
            fixture.at(&mut root, 3100),
            [Command::CallElection {
                newer: (term(4, 1), Epoch(7))
            }]
        );
        // What is not newer than the root's own data calls nothing.
        fixture.own = (term(4, 1), Epoch(7));
        assert_eq!(fixture.at(&mut root, 9000), [Command::Promise(term(5, 1))]);
    }

    #[test]
    fn a_result_that_arrives_after_a_stop_is_not_used() {
        let mut fixture = Fixture::new();
        let mut root = accepting_root(&mut fixture);
        assert!(root.halt());
        assert!(!root.halt());
        // The next claim is under way when the tree is lost again, then its promise is written.
        assert_eq!(fixture.at(&mut root, 10), [Command::Promise(term(5, 1))]);
        root.promised(term(5, 1), Ok(term(5, 1)));
        fixture.promise(1, term(5, 1));
        fixture.promise(2, term(5, 1));
        assert_eq!(fixture.at(&mut root, 20), [Command::TakeTerm(term(5, 1))]);
        fixture.tree.leads = false;
        // Not accepting, so nothing to stop; but the claim stays for a tree that comes back.
        assert_eq!(fixture.at(&mut root, 30), []);
        root.term_taken(term(5, 1), true);
        fixture.tree.leads = true;
        assert_eq!(fixture.at(&mut root, 40), [Command::Start(term(5, 1))]);
        // Now a stall while a promise is in flight: its late result does not bring the claim back.
        let mut fixture = Fixture::new();
        let mut root = accepting_root(&mut fixture);
        assert!(root.halt());
        assert_eq!(fixture.at(&mut root, 10), [Command::Promise(term(5, 1))]);
        assert!(!root.halt());
        root.promised(term(5, 1), Ok(term(5, 1)));
        assert_eq!(root.claim(), None);
        // And the machine is free to claim again.
        assert_eq!(fixture.at(&mut root, 20), [Command::Promise(term(5, 1))]);
    }

    #[test]
    fn without_a_configuration_a_root_waits_for_the_claimant_of_a_promise_to_be_in_its_tree() {
        let mut fixture = Fixture::new();
        fixture.configured = false;
        fixture.tree.registered = 4;
        // Node 4 claimed round 2 and node 2 promised it; node 4 is away (it may have written the
        // first configuration, held by voters that are away too).
        fixture.promise(2, term(2, 4));
        let mut root = Root::new(ME);
        assert_eq!(fixture.at(&mut root, 0), []);
        assert_eq!(root.verdict(), Acceptance::NoMajority);
        // Back, with no configuration in its log: it never wrote.
        fixture.tree.members.insert(NodeId(4));
        fixture.tree.whole.insert(NodeId(4));
        assert_eq!(fixture.at(&mut root, 1), [Command::Promise(term(4, 1))]);
        root.promised(term(4, 1), Ok(term(4, 1)));
        fixture.promise(1, term(4, 1));
        fixture.promise(2, term(4, 1));
        fixture.promise(3, term(4, 1));
        // Its own claim is no other claimant: node 4 may go again.
        fixture.tree.members.remove(&NodeId(4));
        fixture.tree.whole.remove(&NodeId(4));
        assert_eq!(fixture.at(&mut root, 2), [Command::TakeTerm(term(4, 1))]);
    }

    #[test]
    fn no_term_left_is_reported_and_nothing_is_claimed() {
        let mut fixture = Fixture::new();
        fixture.promise(2, Term(crate::term::MAX_ROUND << WRITER_BITS | 2));
        let mut root = Root::new(ME);
        assert_eq!(
            fixture.at(&mut root, 0),
            [Command::NoTermLeft {
                seen: Term(crate::term::MAX_ROUND << WRITER_BITS | 2)
            }]
        );
        assert_eq!(root.claim(), None);
    }
}
