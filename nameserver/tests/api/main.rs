//! Black-box tests of the nameserver: both sides run in-process on port 0, driven by the generated gRPC
//! client and by reqwest with redirects disabled; the binary's signal handling is checked on the real
//! executable. The cluster view runs against a fake bootstrap and fake nodes' admin ports.

mod authentication;
mod binary;
mod cluster_view;
mod endpoints;
mod helpers;
mod leases;
mod probe;
mod redirect;
