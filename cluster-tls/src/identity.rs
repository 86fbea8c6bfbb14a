//! A server's TLS identity: its certificate chain and private key, read from PEM files into a rustls
//! [`ServerConfig`]. Every way the files can be wrong becomes one line that names the file at fault,
//! so a node or the nameserver can refuse to start with a message that says which setting to fix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Which of the two files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Certificate,
    Key,
}

/// Why a certificate and key cannot serve HTTPS. Each variant renders as a single line.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("cannot read a PEM certificate from {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read a PEM private key from {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the key in {key} does not fit the certificate in {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

impl TlsFileError {
    /// The file to fix: a mismatch is the key's fault, since the certificate is what clients check.
    pub fn file(&self) -> TlsFile {
        match self {
            TlsFileError::Certificate { .. } => TlsFile::Certificate,
            TlsFileError::Key { .. } | TlsFileError::Mismatch { .. } => TlsFile::Key,
        }
    }
}

/// Reads `cert` (the server's certificate first, then any intermediates) and `key` (PKCS#8, PKCS#1 or
/// SEC1) into a server configuration for HTTP/1.1 over TLS 1.2 or 1.3.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsFileError> {
    let cert_error = |reason: String| TlsFileError::Certificate {
        path: cert.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|error| cert_error(pem_reason(error)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| cert_error(pem_reason(error)))?;
    if chain.is_empty() {
        return Err(cert_error("it holds no CERTIFICATE section".into()));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|error| TlsFileError::Key {
        path: key.to_owned(),
        reason: pem_reason(error),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| cert_error(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|error| TlsFileError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: error.to_string(),
        })?;
    // axum serves HTTP/1.1 only; saying so in ALPN keeps clients from trying h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn pem_reason(error: rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => {
            "it holds no PEM section of that kind".into()
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalAuthority;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn an_issued_certificate_and_its_key_make_a_server_config() {
        let dir = tempfile::tempdir().unwrap();
        let (authority, _) = LocalAuthority::open_or_create(dir.path()).unwrap();
        let issued = authority.issue(&["127.0.0.1".into()]).unwrap();
        let paths = issued.write_to(&dir.path().join("server")).unwrap();
        let config = server_config(&paths.0, &paths.1).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_missing_or_empty_certificate_names_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (authority, _) = LocalAuthority::open_or_create(dir.path()).unwrap();
        let issued = authority.issue(&["127.0.0.1".into()]).unwrap();
        let key = write(dir.path(), "key.pem", &issued.key_pem);
        let error = server_config(&dir.path().join("nope.pem"), &key).unwrap_err();
        assert_eq!(error.file(), TlsFile::Certificate);
        assert!(error.to_string().contains("nope.pem"), "{error}");
        let empty = write(dir.path(), "empty.pem", "");
        let error = server_config(&empty, &key).unwrap_err();
        assert_eq!(error.file(), TlsFile::Certificate);
        assert!(!error.to_string().contains('\n'), "{error}");
    }

    #[test]
    fn a_certificate_given_as_the_key_or_a_foreign_key_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (authority, _) = LocalAuthority::open_or_create(dir.path()).unwrap();
        let one = authority.issue(&["127.0.0.1".into()]).unwrap();
        let other = authority.issue(&["127.0.0.1".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &one.cert_pem);
        let error = server_config(&cert, &cert).unwrap_err();
        assert_eq!(error.file(), TlsFile::Key);
        let foreign = write(dir.path(), "other-key.pem", &other.key_pem);
        let error = server_config(&cert, &foreign).unwrap_err();
        assert!(matches!(error, TlsFileError::Mismatch { .. }), "{error}");
        assert_eq!(error.file(), TlsFile::Key);
    }
}
