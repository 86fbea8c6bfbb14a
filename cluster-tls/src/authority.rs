//! A small certificate authority for clusters a person runs on their own machines: one CA key and
//! certificate per cluster directory, and a server certificate for each input node and the
//! nameserver, signed by it. Trusting the CA's certificate in a browser (or handing it to a client)
//! makes every server of the cluster trusted, with no warning to click through.
//!
//! The CA is kept as two files, `ca.pem` (public, the one to trust) and `ca-key.pem` (mode 600). When
//! they exist they are reused, so running `init.sh` again issues new server certificates that browsers
//! already trust. Reusing needs no certificate parser: an issuer is its name and its key, and the name
//! is derived from the key, so the key file alone rebuilds the issuer of the existing `ca.pem`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// How long a server certificate is valid: the longest browsers accept from any CA.
const SERVER_DAYS: i64 = 397;
/// How long the CA is valid; a person trusts it once per cluster directory.
const AUTHORITY_DAYS: i64 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} holds no usable CA key ({reason}); delete ca.pem and ca-key.pem to make a new CA"
    )]
    BadKey { path: PathBuf, reason: rcgen::Error },
    #[error("{present} exists but {missing} does not; delete both to make a new CA")]
    HalfAuthority { present: PathBuf, missing: PathBuf },
    #[error("cannot issue a certificate for {hosts:?}: {reason}")]
    Issue {
        hosts: Vec<String>,
        reason: rcgen::Error,
    },
}

/// The CA of one cluster directory, able to issue server certificates.
pub struct LocalAuthority {
    issuer: Issuer<'static, KeyPair>,
    certificate_path: PathBuf,
}

/// A server certificate and its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl LocalAuthority {
    pub const CERTIFICATE_FILE: &str = "ca.pem";
    pub const KEY_FILE: &str = "ca-key.pem";

    /// Opens the CA kept in `dir`, or creates one there; the flag says whether it was created.
    pub fn open_or_create(dir: &Path) -> Result<(Self, bool), AuthorityError> {
        let certificate_path = dir.join(Self::CERTIFICATE_FILE);
        let key_path = dir.join(Self::KEY_FILE);
        match (certificate_path.exists(), key_path.exists()) {
            (true, true) => {
                let pem = read(&key_path)?;
                let key = KeyPair::from_pem(&pem).map_err(|reason| AuthorityError::BadKey {
                    path: key_path.clone(),
                    reason,
                })?;
                let issuer = Issuer::new(authority_params(&key), key);
                Ok((
                    LocalAuthority {
                        issuer,
                        certificate_path,
                    },
                    false,
                ))
            }
            (false, false) => {
                let key = KeyPair::generate().map_err(|reason| AuthorityError::BadKey {
                    path: key_path.clone(),
                    reason,
                })?;
                let params = authority_params(&key);
                let certificate =
                    params
                        .self_signed(&key)
                        .map_err(|reason| AuthorityError::BadKey {
                            path: key_path.clone(),
                            reason,
                        })?;
                create_dir(dir)?;
                write_private(&key_path, &key.serialize_pem())?;
                write_public(&certificate_path, &certificate.pem())?;
                let issuer = Issuer::new(params, key);
                Ok((
                    LocalAuthority {
                        issuer,
                        certificate_path,
                    },
                    true,
                ))
            }
            (true, false) => Err(AuthorityError::HalfAuthority {
                present: certificate_path,
                missing: key_path,
            }),
            (false, true) => Err(AuthorityError::HalfAuthority {
                present: key_path,
                missing: certificate_path,
            }),
        }
    }

    /// `ca.pem`: the certificate browsers and clients must trust.
    pub fn certificate_path(&self) -> &Path {
        &self.certificate_path
    }

    /// A server certificate for `hosts` (IP addresses or DNS names, the first also its common name)
    /// with a fresh key.
    pub fn issue(&self, hosts: &[String]) -> Result<Issued, AuthorityError> {
        let failed = |reason| AuthorityError::Issue {
            hosts: hosts.to_vec(),
            reason,
        };
        let key = KeyPair::generate().map_err(failed)?;
        let mut params = CertificateParams::new(hosts.to_vec()).map_err(failed)?;
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            hosts.first().map_or("chat-cluster", String::as_str),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(SERVER_DAYS);
        let certificate = params.signed_by(&key, &self.issuer).map_err(failed)?;
        Ok(Issued {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl Issued {
    /// Writes `cert.pem` and `key.pem` (mode 600) into `dir`, creating it; returns their paths.
    pub fn write_to(&self, dir: &Path) -> Result<(PathBuf, PathBuf), AuthorityError> {
        create_dir(dir)?;
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        write_private(&key, &self.key_pem)?;
        write_public(&cert, &self.cert_pem)?;
        Ok((cert, key))
    }
}

/// The CA's name carries a digest of its key, so two clusters' CAs trusted in one browser never share
/// a name, and the name can be rebuilt from the key alone.
fn authority_params(key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let id: String = params
        .key_identifier(key)
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "chat-cluster");
    name.push(DnType::CommonName, format!("chat-cluster local CA {id}"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(AUTHORITY_DAYS);
    params
}

fn read(path: &Path) -> Result<String, AuthorityError> {
    std::fs::read_to_string(path).map_err(|source| AuthorityError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

fn create_dir(dir: &Path) -> Result<(), AuthorityError> {
    std::fs::create_dir_all(dir).map_err(|source| AuthorityError::Io {
        action: "create",
        path: dir.to_owned(),
        source,
    })
}

fn write_public(path: &Path, text: &str) -> Result<(), AuthorityError> {
    std::fs::write(path, text).map_err(|source| AuthorityError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

/// Private keys are created readable by their owner only (and rewritten in place the same way).
fn write_private(path: &Path, text: &str) -> Result<(), AuthorityError> {
    let io = |source| AuthorityError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_authority_issues_certificates_under_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = LocalAuthority::open_or_create(dir.path()).unwrap();
        assert!(created);
        let ca_before = std::fs::read_to_string(first.certificate_path()).unwrap();
        let (again, created) = LocalAuthority::open_or_create(dir.path()).unwrap();
        assert!(!created, "an existing CA is reused");
        assert_eq!(
            std::fs::read_to_string(again.certificate_path()).unwrap(),
            ca_before,
            "reusing the CA leaves its certificate as browsers trust it"
        );
        again
            .issue(&["127.0.0.1".into(), "localhost".into()])
            .unwrap();
    }

    #[test]
    fn half_an_authority_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        LocalAuthority::open_or_create(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(LocalAuthority::KEY_FILE)).unwrap();
        let error = LocalAuthority::open_or_create(dir.path())
            .err()
            .expect("a CA without its key is refused");
        assert!(
            matches!(error, AuthorityError::HalfAuthority { .. }),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn private_keys_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (authority, _) = LocalAuthority::open_or_create(dir.path()).unwrap();
        let (_, key) = authority
            .issue(&["127.0.0.1".into()])
            .unwrap()
            .write_to(&dir.path().join("node"))
            .unwrap();
        for path in [key, dir.path().join(LocalAuthority::KEY_FILE)] {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
    }
}
