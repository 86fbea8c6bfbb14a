//! HTTPS for the cluster's HTTP sides (the input nodes' chat and the nameserver's redirector).
//!
//! ```text
//!   cert.pem + key.pem ──identity::server_config──► rustls ServerConfig (checked at start)
//!                                                        │
//!   TcpListener ──listener::TlsListener (handshakes side by side, bounded)──► axum::serve
//!
//!   cluster-certs (bin) ──authority::LocalAuthority──► ca.pem, and cert.pem + key.pem per server
//! ```
//!
//! rustls runs with the `ring` provider, chosen explicitly in [`server_config`], so nothing depends
//! on a process-wide default provider. The local authority is for clusters a person starts on their
//! own machines (`TLS=1 ./init.sh`); a real deployment gives each server a certificate of its own CA.

mod authority;
mod identity;
mod listener;

pub use authority::{AuthorityError, Issued, LocalAuthority};
pub use identity::{TlsFile, TlsFileError, server_config};
pub use listener::TlsListener;
pub use rustls::ServerConfig;
