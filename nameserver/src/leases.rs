//! The lease table: which input nodes may be handed to browsers right now. Pure: every call that depends
//! on time takes `now`, so tests move time by hand and the service passes its clock in.
//!
//! A node registers its base URL and gets a lease of `ttl`; it renews about every second. A lease counts
//! as live while `now < expires_at`. Expiry is checked whenever the table is read, so an expired node is
//! never handed out even if nobody pruned it yet; writers prune lazily. A renewal after expiry fails: the
//! node must register again, which makes a node that was partitioned away announce itself afresh.
//!
//! Redirects go round-robin over the live nodes ordered by id, among those the caller admits (the
//! directory leaves out the ones whose connection probe failed). The cursor is the id handed out last
//! (not a position), so nodes joining, leaving or being left out never make the rotation skip or repeat
//! a survivor.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;
use std::ops::Bound;
use std::time::{Duration, Instant};

use url::Url;

/// An input node's id: any positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(NonZeroU64);

impl NodeId {
    pub fn parse(raw: u64) -> Result<Self, InvalidInput> {
        NonZeroU64::new(raw).map(Self).ok_or(InvalidInput::ZeroId)
    }

    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The base URL browsers are sent to: absolute http(s), with a host, no query or fragment, kept without
/// a trailing slash so a path appended to it never doubles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = |reason: &str| InvalidInput::Url {
            url: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let url = Url::parse(raw.trim()).map_err(|error| invalid(&error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not carry a query or a fragment"));
        }
        // `Url` serialises to plain ASCII (international hosts in punycode, the rest percent-encoded),
        // which is what makes it safe to put in a `Location` header.
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a request was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("id must be a positive integer, got 0")]
    ZeroId,
    #[error(
        "url must be an absolute http(s) URL such as http://127.0.0.1:8081, got {url:?}: {reason}"
    )]
    Url { url: String, reason: String },
}

/// Renewing a lease that does not exist (any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("node {0} holds no live lease (it expired, was removed, or never existed); register again")]
pub struct LeaseNotFound(pub NodeId);

/// A live input node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: NodeId,
    pub url: BaseUrl,
}

#[derive(Debug, Clone)]
struct Lease {
    url: BaseUrl,
    expires_at: Instant,
}

impl Lease {
    fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

#[derive(Debug, Clone)]
pub struct LeaseTable {
    ttl: Duration,
    leases: BTreeMap<NodeId, Lease>,
    /// The id handed out by the last redirect.
    last_redirect: Option<NodeId>,
}

impl LeaseTable {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            leases: BTreeMap::new(),
            last_redirect: None,
        }
    }

    /// Grants (or re-grants, replacing the URL) a lease of `ttl` from `now`.
    pub fn register(&mut self, id: NodeId, url: BaseUrl, now: Instant) -> Duration {
        self.prune(now);
        let expires_at = now + self.ttl;
        self.leases.insert(id, Lease { url, expires_at });
        self.ttl
    }

    /// Extends a live lease by `ttl` from `now`; an expired or unknown one is gone for good.
    pub fn renew(&mut self, id: NodeId, now: Instant) -> Result<Duration, LeaseNotFound> {
        self.prune(now);
        let lease = self.leases.get_mut(&id).ok_or(LeaseNotFound(id))?;
        lease.expires_at = now + self.ttl;
        Ok(self.ttl)
    }

    /// Removes the node at once. Returns whether it held a lease (live or not yet pruned).
    pub fn deregister(&mut self, id: NodeId) -> bool {
        self.leases.remove(&id).is_some()
    }

    /// The live nodes, ordered by id.
    pub fn live(&self, now: Instant) -> Vec<Endpoint> {
        self.leases
            .iter()
            .filter(|(_, lease)| lease.is_live(now))
            .map(|(&id, lease)| Endpoint {
                id,
                url: lease.url.clone(),
            })
            .collect()
    }

    /// The URL `id` holds a live lease for, if any.
    pub fn live_url(&self, id: NodeId, now: Instant) -> Option<&BaseUrl> {
        self.leases
            .get(&id)
            .filter(|lease| lease.is_live(now))
            .map(|lease| &lease.url)
    }

    /// The next live node that `admit` accepts after the one handed out last, wrapping around; `None`
    /// when no live node is admitted.
    pub fn next_redirect(
        &mut self,
        now: Instant,
        admit: impl Fn(NodeId, &BaseUrl) -> bool,
    ) -> Option<Endpoint> {
        self.prune(now);
        let admitted = |&(&id, lease): &(&NodeId, &Lease)| admit(id, &lease.url);
        let after_last = self.last_redirect.and_then(|last| {
            self.leases
                .range((Bound::Excluded(last), Bound::Unbounded))
                .find(admitted)
        });
        let (&id, lease) = after_last.or_else(|| self.leases.iter().find(admitted))?;
        self.last_redirect = Some(id);
        Some(Endpoint {
            id,
            url: lease.url.clone(),
        })
    }

    /// Drops expired leases; returns how many.
    pub fn prune(&mut self, now: Instant) -> usize {
        let before = self.leases.len();
        self.leases.retain(|_, lease| lease.is_live(now));
        before - self.leases.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);

    fn id(raw: u64) -> NodeId {
        NodeId::parse(raw).expect("test ids are non-zero")
    }

    fn url(port: u16) -> BaseUrl {
        BaseUrl::parse(&format!("http://127.0.0.1:{port}")).expect("valid test URL")
    }

    fn everyone(_: NodeId, _: &BaseUrl) -> bool {
        true
    }

    fn live_ids(table: &LeaseTable, now: Instant) -> Vec<u64> {
        table.live(now).iter().map(|e| e.id.get()).collect()
    }

    #[test]
    fn a_lease_expires_after_its_ttl_without_renewal() {
        let start = Instant::now();
        let mut table = LeaseTable::new(TTL);
        table.register(id(1), url(8081), start);

        assert_eq!(
            live_ids(&table, start + TTL - Duration::from_millis(1)),
            vec![1]
        );
        assert!(table.live(start + TTL).is_empty());
        assert_eq!(table.next_redirect(start + TTL, everyone), None);
    }

    #[test]
    fn renewing_extends_the_lease_from_the_renewal_time() {
        let start = Instant::now();
        let mut table = LeaseTable::new(TTL);
        table.register(id(1), url(8081), start);

        for second in 1..=10 {
            let now = start + Duration::from_secs(second);
            assert_eq!(table.renew(id(1), now), Ok(TTL));
        }

        let last_renewal = start + Duration::from_secs(10);
        assert_eq!(
            live_ids(&table, last_renewal + TTL - Duration::from_millis(1)),
            vec![1]
        );
        assert!(table.live(last_renewal + TTL).is_empty());
    }

    #[test]
    fn renewing_an_expired_lease_is_not_found_even_before_pruning() {
        let start = Instant::now();
        let mut table = LeaseTable::new(TTL);
        table.register(id(1), url(8081), start);

        assert_eq!(table.renew(id(1), start + TTL), Err(LeaseNotFound(id(1))));
        // And it stays gone until the node registers again.
        assert_eq!(table.renew(id(1), start), Err(LeaseNotFound(id(1))));
    }

    #[test]
    fn renewing_an_unknown_lease_is_not_found() {
        let mut table = LeaseTable::new(TTL);
        assert_eq!(
            table.renew(id(4), Instant::now()),
            Err(LeaseNotFound(id(4)))
        );
    }

    #[test]
    fn the_live_url_of_a_node_is_its_latest_until_the_lease_ends() {
        let start = Instant::now();
        let mut table = LeaseTable::new(TTL);
        table.register(id(1), url(8081), start);
        table.register(id(1), url(9081), start);

        assert_eq!(table.live_url(id(1), start), Some(&url(9081)));
        assert_eq!(table.live_url(id(1), start + TTL), None);
        assert_eq!(table.live_url(id(2), start), None);
    }

    #[test]
    fn deregistration_is_immediate() {
        let now = Instant::now();
        let mut table = LeaseTable::new(TTL);
        table.register(id(1), url(8081), now);
        table.register(id(2), url(8082), now);

        assert!(table.deregister(id(1)));

        assert_eq!(live_ids(&table, now), vec![2]);
        assert_eq!(
            table.next_redirect(now, everyone).map(|e| e.id),
            Some(id(2))
        );
        assert_eq!(
            table.next_redirect(now, everyone).map(|e| e.id),
            Some(id(2))
        );
        assert!(
            !table.deregister(id(1)),
            "a second deregistration finds nothing"
        );
    }

    #[test]
    fn round_robin_alternates_between_two_nodes() {
        let now = Instant::now();
        let mut table = LeaseTable::new(TTL);
        table.register(id(2), url(8082), now);
        table.register(id(1), url(8081), now);

        let handed_out: Vec<u64> = (0..5)
            .filter_map(|_| table.next_redirect(now, everyone))
            .map(|e| e.id.get())
            .collect();

        assert_eq!(handed_out, vec![1, 2, 1, 2, 1]);
    }

    #[test]
    fn round_robin_skips_an_expired_node_and_picks_up_a_new_one_in_id_order() {
        let start = Instant::now();
        let mut table = LeaseTable::new(TTL);
        table.register(id(1), url(8081), start);
        table.register(id(2), url(8082), start);
        table.register(id(3), url(8083), start + Duration::from_secs(2));
        assert_eq!(
            table.next_redirect(start, everyone).map(|e| e.id),
            Some(id(1))
        );

        // At 3 s the leases of 1 and 2 have run out; only 3 is left.
        let later = start + TTL;
        assert_eq!(
            table.next_redirect(later, everyone).map(|e| e.id),
            Some(id(3))
        );
        table.register(id(2), url(9082), later);
        let next = table
            .next_redirect(later, everyone)
            .expect("2 is live again");
        assert_eq!((next.id, next.url), (id(2), url(9082)));
    }

    #[test]
    fn round_robin_passes_over_nodes_not_admitted_and_resumes_after_the_last_one_handed_out() {
        let now = Instant::now();
        let mut table = LeaseTable::new(TTL);
        for raw in 1..=4 {
            table.register(id(raw), url(8080 + u16::try_from(raw).expect("small")), now);
        }
        let next = |table: &mut LeaseTable, excluded: &[u64]| {
            table
                .next_redirect(now, |id, _| !excluded.contains(&id.get()))
                .map(|e| e.id.get())
        };

        let handed_out = [
            next(&mut table, &[]),
            next(&mut table, &[2]),
            next(&mut table, &[2, 4]),
            next(&mut table, &[2, 4]),
            next(&mut table, &[]),
            next(&mut table, &[1, 2, 3, 4]),
            next(&mut table, &[]),
        ];

        assert_eq!(
            handed_out,
            [Some(1), Some(3), Some(1), Some(3), Some(4), None, Some(1)]
        );
    }

    #[test]
    fn live_nodes_are_listed_by_id_with_their_latest_url() {
        let now = Instant::now();
        let mut table = LeaseTable::new(TTL);
        table.register(id(9), url(8089), now);
        table.register(id(3), url(8083), now);
        table.register(id(3), url(9083), now);

        assert_eq!(
            table.live(now),
            vec![
                Endpoint {
                    id: id(3),
                    url: url(9083)
                },
                Endpoint {
                    id: id(9),
                    url: url(8089)
                },
            ]
        );
    }

    #[test]
    fn pruning_forgets_only_expired_leases() {
        let start = Instant::now();
        let mut table = LeaseTable::new(TTL);
        table.register(id(1), url(8081), start);
        table.register(id(2), url(8082), start + Duration::from_secs(2));

        assert_eq!(table.prune(start + TTL), 1);
        assert_eq!(live_ids(&table, start + TTL), vec![2]);
    }

    #[test]
    fn base_urls_are_absolute_http_and_lose_their_trailing_slash() {
        assert_eq!(url(8081).as_str(), "http://127.0.0.1:8081");
        let with_slash = BaseUrl::parse("https://chat.example.org/").expect("valid");
        assert_eq!(with_slash.as_str(), "https://chat.example.org");
        let with_path = BaseUrl::parse("http://h:1/chat/").expect("valid");
        assert_eq!(with_path.as_str(), "http://h:1/chat");
    }

    #[test]
    fn urls_that_are_relative_not_http_or_carry_a_query_are_refused() {
        for bad in [
            "",
            "127.0.0.1:8081",
            "/relative",
            "ftp://127.0.0.1/",
            "file:///etc/passwd",
            "http://",
            "http://h:1/?a=b",
            "http://h:1/#top",
            "http://h:99999",
        ] {
            let error = BaseUrl::parse(bad).expect_err(bad);
            assert!(
                error.to_string().starts_with("url must be"),
                "{bad}: {error}"
            );
        }
    }
}
