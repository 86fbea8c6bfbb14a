//! Proof of the cluster key on the RPCs that change the bootstrap's or the nameserver's state.
//!
//! Anyone who reaches those gRPC ports could otherwise register any node id at any address, or an
//! input node URL of their choosing, and so have browsers sent to their own server. Every mutating
//! request therefore carries, in gRPC metadata, an HMAC-SHA256 under a key derived from the cluster key
//! over the RPC's name, the request message and the time:
//!
//! ```text
//!   client (node)                                          server (bootstrap, nameserver)
//!   ProofKey ──sign(rpc, encode_to_vec(msg), now)──►  x-chat-auth: <unix ms>.<hex HMAC>
//!                                                           │
//!                        Guard::check at the top of each mutating handler:
//!                        header well formed? ─► time within ±60 s? ─► MAC verifies (constant time)?
//!                        ─► not seen before? ─► handler runs; otherwise UNAUTHENTICATED, nothing changes
//! ```
//!
//! The check sits in the handler, not in an interceptor, because an interceptor never sees the message
//! body, and a proof that does not cover the body could be moved onto another request.
//! Read-only RPCs (`ListNodes`, `List`) stay open, as do the nameserver's HTTP endpoints. A node's admin
//! port asks the same proof, in the same header, of the requests that hand out the data (`GET /backup`).

mod grpc;
mod key;
mod proof;
mod replay;

pub use grpc::{AUTH_HEADER, Guard, authorized, proof_header};
pub use key::{KeyFileError, MIN_KEY_CHARS, ProofKey};
pub use proof::{Proof, ProofError, Rpc, WINDOW};
