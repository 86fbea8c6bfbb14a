//! A node's identity and where it can be reached, parsed from the wire once ("parse, don't validate"),
//! so the registry and the state file only ever hold valid addresses.
//!
//! Ports are `u32` on the wire because protobuf has no `u16`; here they are 1..=65535. The narrower
//! 46000–65535 range for control and data ports is the node's configuration rule, not the bootstrap's.

use std::fmt;
use std::num::{NonZeroU16, NonZeroU64};

use chat_proto::bootstrap as proto;
use serde::{Deserialize, Serialize};

/// A node id: any positive integer (0 is the proto3 default, so it means "not set").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(NonZeroU64);

impl NodeId {
    pub fn parse(raw: u64) -> Result<Self, AddressError> {
        NonZeroU64::new(raw).map(Self).ok_or(AddressError::ZeroId)
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

/// A TCP port in 1..=65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Port(NonZeroU16);

impl Port {
    /// `field` names the request field in the error, so a caller sees which port was wrong.
    pub fn parse(field: &'static str, raw: u32) -> Result<Self, AddressError> {
        u16::try_from(raw)
            .ok()
            .and_then(NonZeroU16::new)
            .map(Self)
            .ok_or(AddressError::PortOutOfRange { field, value: raw })
    }

    pub fn get(self) -> u16 {
        self.0.get()
    }
}

/// Everything a neighbour needs to reach a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    pub id: NodeId,
    pub host: String,
    pub control_port: Port,
    pub data_port: Port,
    pub admin_port: Port,
    pub http_port: Port,
}

/// Why a registration request was refused; the message names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("node is required: the request carries no node address")]
    MissingNode,
    #[error("node.id must be a positive integer, got 0")]
    ZeroId,
    #[error("node.host must not be empty")]
    EmptyHost,
    #[error("node.{field} must be in 1..=65535, got {value}")]
    PortOutOfRange { field: &'static str, value: u32 },
}

impl NodeAddress {
    /// Validates a wire address. Surrounding whitespace in the host is dropped: it can only be a typo.
    pub fn from_proto(node: Option<proto::NodeAddress>) -> Result<Self, AddressError> {
        let node = node.ok_or(AddressError::MissingNode)?;
        let id = NodeId::parse(node.id)?;
        let host = node.host.trim();
        if host.is_empty() {
            return Err(AddressError::EmptyHost);
        }
        Ok(Self {
            id,
            host: host.to_owned(),
            control_port: Port::parse("control_port", node.control_port)?,
            data_port: Port::parse("data_port", node.data_port)?,
            admin_port: Port::parse("admin_port", node.admin_port)?,
            http_port: Port::parse("http_port", node.http_port)?,
        })
    }

    pub fn to_proto(&self) -> proto::NodeAddress {
        proto::NodeAddress {
            id: self.id.get(),
            host: self.host.clone(),
            control_port: self.control_port.get().into(),
            data_port: self.data_port.get().into(),
            admin_port: self.admin_port.get().into(),
            http_port: self.http_port.get().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire() -> proto::NodeAddress {
        proto::NodeAddress {
            id: 7,
            host: "127.0.0.1".into(),
            control_port: 46000,
            data_port: 46001,
            admin_port: 8000,
            http_port: 8080,
        }
    }

    #[test]
    fn a_valid_address_round_trips_through_the_wire_type() {
        let parsed = NodeAddress::from_proto(Some(wire())).expect("valid address");
        assert_eq!(parsed.to_proto(), wire());
    }

    #[test]
    fn each_port_error_names_its_field() {
        type Breaker = fn(&mut proto::NodeAddress);
        let cases: [(&str, Breaker); 4] = [
            ("control_port", |n| n.control_port = 0),
            ("data_port", |n| n.data_port = 65536),
            ("admin_port", |n| n.admin_port = 0),
            ("http_port", |n| n.http_port = u32::MAX),
        ];
        for (field, break_it) in cases {
            let mut node = wire();
            break_it(&mut node);
            let error = NodeAddress::from_proto(Some(node)).expect_err(field);
            assert!(
                error.to_string().contains(field),
                "{error} should name {field}"
            );
        }
    }

    #[test]
    fn a_blank_host_is_refused_and_a_padded_one_is_trimmed() {
        let mut node = wire();
        node.host = "  ".into();
        assert_eq!(
            NodeAddress::from_proto(Some(node)),
            Err(AddressError::EmptyHost)
        );

        let mut node = wire();
        node.host = " example.org ".into();
        let parsed = NodeAddress::from_proto(Some(node)).expect("valid address");
        assert_eq!(parsed.host, "example.org");
    }

    #[test]
    fn port_65535_is_accepted_and_65536_is_not() {
        assert_eq!(Port::parse("data_port", 65535).map(Port::get), Ok(65535));
        assert!(Port::parse("data_port", 65536).is_err());
    }
}
