//! Which leased input nodes are *suspect*: their last connection probe failed, so they are neither
//! handed to browsers nor listed until a later probe gets through. Pure: probe outcomes go in, the
//! suspect set comes out; `prober` runs the probes and `directory` applies the set.
//!
//! A lease only ends a few seconds after a node dies (it stops renewing), and all that time browsers
//! would be sent to a dead address. A refused connection says so at once; a probe that merely times out
//! says the same, as a browser would fail there too. A node that is stopped rather than dead still
//! accepts connections (the kernel completes them into the listen backlog), so probes pass and the
//! lease stays the backstop for that case. Suspicion never removes a lease: a suspect node keeps it and
//! comes back as soon as a probe succeeds while the lease lasts.
//!
//! A verdict belongs to the registration it was made for (id and URL): a node that registers again
//! starts unsuspected, and a probe that was under way when the node moved to another URL is ignored.

use std::collections::BTreeMap;

use url::{Host, Url};

use crate::leases::{BaseUrl, Endpoint, NodeId};

/// What a connection attempt to a node's address ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The TCP handshake completed.
    Accepted,
    /// Refused, unreachable, unresolvable, or not completed within the probe timeout.
    Failed,
}

/// How recording one outcome changed the suspect set; the caller logs transitions only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The node was fine and is suspect now.
    Suspected,
    /// The node was suspect and is fine now.
    Cleared,
    /// The node was already in the state the outcome says.
    Unchanged,
    /// The probe was of a registration that is gone or has another URL now; nothing changed.
    Stale,
}

/// The suspect nodes, each with the URL whose probe failed.
#[derive(Debug, Clone, Default)]
pub struct Suspicion {
    suspects: BTreeMap<NodeId, BaseUrl>,
}

impl Suspicion {
    /// Applies the outcome of probing `probed` (as it was registered when the probe started), given the
    /// URL the node holds a live lease for now, if any.
    pub fn record(
        &mut self,
        current: Option<&BaseUrl>,
        probed: &Endpoint,
        outcome: Outcome,
    ) -> Change {
        if current != Some(&probed.url) {
            return Change::Stale;
        }
        match outcome {
            Outcome::Failed => match self.suspects.insert(probed.id, probed.url.clone()) {
                None => Change::Suspected,
                Some(_) => Change::Unchanged,
            },
            Outcome::Accepted => match self.suspects.remove(&probed.id) {
                Some(_) => Change::Cleared,
                None => Change::Unchanged,
            },
        }
    }

    /// Forgets the suspects that no longer hold a live lease for the URL they were suspected at, given
    /// every live lease.
    pub fn retain_leased(&mut self, leased: &[Endpoint]) {
        self.suspects
            .retain(|&id, url| leased.iter().any(|e| e.id == id && e.url == *url));
    }

    /// A new registration (or a deregistration) ends whatever was suspected of the node's old one.
    pub fn forget(&mut self, id: NodeId) {
        self.suspects.remove(&id);
    }

    pub fn is_suspect(&self, id: NodeId, url: &BaseUrl) -> bool {
        self.suspects.get(&id) == Some(url)
    }

    /// The suspect ids, ascending.
    #[cfg(test)]
    pub fn suspects(&self) -> Vec<u64> {
        self.suspects.keys().map(|id| id.get()).collect()
    }
}

/// The `host:port` a probe connects to: the registered URL's host and its port, or the scheme's default
/// port (80 for http, 443 for https). IPv6 hosts keep their brackets, as socket address strings need.
/// `None` only for a URL `BaseUrl::parse` would have refused.
pub fn target(url: &BaseUrl) -> Option<String> {
    let url = Url::parse(url.as_str()).ok()?;
    let port = url.port_or_known_default()?;
    match url.host()? {
        Host::Domain(domain) => Some(format!("{domain}:{port}")),
        Host::Ipv4(address) => Some(format!("{address}:{port}")),
        Host::Ipv6(address) => Some(format!("[{address}]:{port}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(id: u64, url: &str) -> Endpoint {
        Endpoint {
            id: NodeId::parse(id).expect("test ids are non-zero"),
            url: BaseUrl::parse(url).expect("valid test URL"),
        }
    }

    fn node(id: u64) -> Endpoint {
        endpoint(id, &format!("http://127.0.0.1:{}", 8080 + id))
    }

    /// Records `outcomes` in order against the leases `leased` and answers the changes and the suspects.
    fn run(
        suspicion: &mut Suspicion,
        leased: &[Endpoint],
        outcomes: &[(&Endpoint, Outcome)],
    ) -> (Vec<Change>, Vec<u64>) {
        let current = |probed: &Endpoint| {
            leased
                .iter()
                .find(|leased| leased.id == probed.id)
                .map(|leased| &leased.url)
        };
        let changes = outcomes
            .iter()
            .map(|&(probed, outcome)| suspicion.record(current(probed), probed, outcome))
            .collect();
        (changes, suspicion.suspects())
    }

    #[test]
    fn a_failed_probe_makes_a_node_suspect_and_an_accepted_one_clears_it() {
        let leased = [node(1), node(2), node(3)];
        let mut suspicion = Suspicion::default();

        let first = run(
            &mut suspicion,
            &leased,
            &[
                (&node(1), Outcome::Failed),
                (&node(2), Outcome::Accepted),
                (&node(3), Outcome::Failed),
            ],
        );
        let second = run(
            &mut suspicion,
            &leased,
            &[
                (&node(1), Outcome::Failed),
                (&node(3), Outcome::Accepted),
                (&node(2), Outcome::Accepted),
            ],
        );
        let third = run(&mut suspicion, &leased, &[(&node(1), Outcome::Accepted)]);

        assert_eq!(
            first,
            (
                vec![Change::Suspected, Change::Unchanged, Change::Suspected],
                vec![1, 3]
            )
        );
        assert_eq!(
            second,
            (
                vec![Change::Unchanged, Change::Cleared, Change::Unchanged],
                vec![1]
            )
        );
        assert_eq!(third, (vec![Change::Cleared], vec![]));
    }

    #[test]
    fn only_the_probed_registration_is_suspect() {
        let mut suspicion = Suspicion::default();
        suspicion.record(Some(&node(1).url), &node(1), Outcome::Failed);

        let suspect = |e: Endpoint| suspicion.is_suspect(e.id, &e.url);
        assert!(suspect(node(1)));
        assert!(!suspect(node(2)));
        assert!(
            !suspect(endpoint(1, "http://127.0.0.1:9999")),
            "the same id at another URL is another registration"
        );
    }

    #[test]
    fn a_probe_of_a_url_the_node_no_longer_holds_changes_nothing() {
        let old = node(1);
        let moved = endpoint(1, "http://127.0.0.1:9081");
        let mut suspicion = Suspicion::default();

        let leased = [moved];

        let failed_late = run(&mut suspicion, &leased, &[(&old, Outcome::Failed)]);
        run(&mut suspicion, &leased, &[(&leased[0], Outcome::Failed)]);
        let accepted_late = run(&mut suspicion, &leased, &[(&old, Outcome::Accepted)]);

        assert_eq!(failed_late, (vec![Change::Stale], vec![]));
        assert_eq!(accepted_late, (vec![Change::Stale], vec![1]));
    }

    #[test]
    fn a_probe_of_a_node_without_a_lease_is_stale() {
        let mut suspicion = Suspicion::default();

        let outcome = run(&mut suspicion, &[node(2)], &[(&node(1), Outcome::Failed)]);

        assert_eq!(outcome, (vec![Change::Stale], vec![]));
    }

    #[test]
    fn suspects_whose_lease_ended_or_moved_are_forgotten() {
        let mut suspicion = Suspicion::default();
        run(
            &mut suspicion,
            &[node(1), node(2), node(3)],
            &[
                (&node(1), Outcome::Failed),
                (&node(2), Outcome::Failed),
                (&node(3), Outcome::Failed),
            ],
        );

        // Node 1's lease ran out and node 3 registered another URL.
        suspicion.retain_leased(&[node(2), endpoint(3, "http://127.0.0.1:9083")]);

        assert_eq!(suspicion.suspects(), vec![2]);
    }

    #[test]
    fn forgetting_a_node_clears_its_suspicion() {
        let leased = [node(1), node(2)];
        let mut suspicion = Suspicion::default();
        run(
            &mut suspicion,
            &leased,
            &[(&node(1), Outcome::Failed), (&node(2), Outcome::Failed)],
        );

        suspicion.forget(NodeId::parse(1).expect("non-zero"));

        assert_eq!(suspicion.suspects(), vec![2]);
        assert!(!suspicion.is_suspect(node(1).id, &node(1).url));
    }

    #[test]
    fn the_target_is_the_registered_host_and_port_or_the_schemes_default() {
        let target = |url: &str| target(&BaseUrl::parse(url).expect("valid test URL"));

        assert_eq!(
            target("http://127.0.0.1:8081").as_deref(),
            Some("127.0.0.1:8081")
        );
        assert_eq!(
            target("https://127.0.0.1:8443/chat").as_deref(),
            Some("127.0.0.1:8443")
        );
        assert_eq!(
            target("http://chat.example.org").as_deref(),
            Some("chat.example.org:80")
        );
        assert_eq!(
            target("https://chat.example.org/").as_deref(),
            Some("chat.example.org:443")
        );
        assert_eq!(target("http://[::1]:8081").as_deref(), Some("[::1]:8081"));
        assert_eq!(
            target("http://user:secret@127.0.0.1:8081").as_deref(),
            Some("127.0.0.1:8081")
        );
    }
}
