//! Black-box tests of the nameserver: both sides run in-process on port 0, driven by the generated gRPC
//! client and by reqwest with redirects disabled; the binary's signal handling is checked on the real
//! executable.

mod binary;
mod endpoints;
mod helpers;
mod leases;
mod redirect;
