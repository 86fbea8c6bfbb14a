//! The gRPC contracts of the two central services, generated from `proto/*.proto` at build time.
//!
//! `bootstrap` hands out neighbours; `nameserver` keeps the leases of the input nodes that serve HTTP.

/// Node registration and neighbour discovery.
pub mod bootstrap {
    tonic::include_proto!("bootstrap");
}

/// Lease registry of live input nodes.
pub mod nameserver {
    tonic::include_proto!("nameserver");
}
