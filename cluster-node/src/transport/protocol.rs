//! The protocol each plane speaks, as a number every sealed frame carries, and which peers a node
//! can talk to.
//!
//! The version travels in the authenticated header of every frame ([`super::seal`]), handshakes
//! included, and is checked once the seal has opened: the payload of a peer of another version is
//! never parsed (its messages may mean something else, or not decode), and the refusal names both
//! versions. Because the check follows the seal, only a member holding the cluster key can make a
//! node say that a peer speaks another version; a stranger's frames stay `seal` refusals.
//!
//! So that a node can always name the version a peer speaks, what comes before the check never
//! changes with a protocol version: the frame layout (its first byte, [`super::seal::LAYOUT`]), the
//! header and the key derivation. Changing any of those is a new layout, refused as `malformed`.

use std::fmt;

use super::seal::Plane;

/// A plane's protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion(pub u16);

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The control plane's protocol (the `overlay` crate's messages). Bump it with any change a node of
/// the previous version would misread or refuse: a message body, a field or its meaning, the header
/// or the codec of `overlay::message`, or a rule two neighbours must agree on (the handshake, the
/// failure detector's heartbeats, Yo-Yo, SHOUT, tree healing, the election value).
pub const CONTROL: ProtocolVersion = ProtocolVersion(1);

/// The data plane's protocol (`data::message`). Bump it with any change a node of the previous
/// version would misread or refuse: a message kind, a field or its meaning, the envelope, or what
/// the messages carry (`service` requests, responses and errors, `storage::LogEntry` and its
/// mutations), or a rule of replication both ends follow (quorums, terms, the catch-up check).
///
/// 2: presence (`presence`, `online`, `presence_resend`), `typing`, and the `ListContacts` read.
pub const DATA: ProtocolVersion = ProtocolVersion(2);

impl Plane {
    /// The protocol this build speaks on the plane.
    pub fn protocol(self) -> ProtocolVersion {
        match self {
            Plane::Control => CONTROL,
            Plane::Data => DATA,
        }
    }
}

/// Whether a node speaking `mine` can process a peer's frames of version `theirs`. Only the same
/// version is: the planes have no negotiation, and a node that accepted an older peer while the
/// older peer refused it would leave the two with different views of one link. An upgrade that
/// bumps a version is a restart of the whole cluster, like rotating the key.
pub fn compatible(mine: ProtocolVersion, theirs: ProtocolVersion) -> bool {
    mine == theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_version_is_compatible() {
        let one = ProtocolVersion(1);
        assert!(compatible(one, one));
        assert!(!compatible(one, ProtocolVersion(2)));
        assert!(!compatible(ProtocolVersion(2), one));
        assert!(!compatible(one, ProtocolVersion(0)));
    }

    #[test]
    fn each_plane_speaks_its_own_version() {
        assert_eq!(Plane::Control.protocol(), CONTROL);
        assert_eq!(Plane::Data.protocol(), DATA);
        assert_eq!(ProtocolVersion(7).to_string(), "7");
    }
}
