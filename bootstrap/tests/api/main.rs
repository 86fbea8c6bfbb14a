//! Black-box tests of the bootstrap: the service runs in-process on port 0 and is driven with the
//! generated gRPC client; the binary's signal handling is checked on the real executable.

mod authentication;
mod binary;
mod helpers;
mod invalid_arguments;
mod list_nodes;
mod register;
mod repair;
mod restart;
