//! The proof key: derived from the cluster key, so a proof reveals nothing that would sign a session
//! cookie or open a sealed frame, and read from the key file the services are given.

use std::fmt;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The HKDF `info` of the proof key: any other use of the cluster key derives with another label, so no
/// key of another purpose can produce a registration proof.
const PROOF_KEY_LABEL: &[u8] = b"chat-cluster registration proof v1";

/// The fewest characters a cluster key may have, as for the nodes' `cluster_key` (`init.sh` writes 64
/// hex digits): shorter keys could be guessed offline from one observed proof.
pub const MIN_KEY_CHARS: usize = 32;

/// Why a key file could not give a key. Each renders as one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the cluster key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the cluster key in {path} is {chars} characters long; it needs at least {MIN_KEY_CHARS} \
         (init.sh writes 64 random hex digits to .cluster_key)"
    )]
    TooShort { path: PathBuf, chars: usize },
}

/// The key registration proofs are made and checked with. Its [`Debug`] never shows the secret.
#[derive(Clone)]
pub struct ProofKey {
    /// HMAC-SHA256 already keyed: each proof clones it, so no step after start-up can fail.
    mac: Hmac<Sha256>,
}

impl ProofKey {
    /// The proof key of every process holding `cluster_key` (the key's text as bytes, as in the nodes'
    /// configs and in `.cluster_key` without its surrounding whitespace).
    pub fn derive(cluster_key: &[u8]) -> Self {
        let mut derived = [0u8; 32];
        Hkdf::<Sha256>::new(None, cluster_key)
            .expand(PROOF_KEY_LABEL, &mut derived)
            .expect("32 bytes is within HKDF-SHA256's output limit");
        let mac = Hmac::<Sha256>::new_from_slice(&derived).expect("HMAC takes keys of any length");
        Self { mac }
    }

    /// Reads the cluster key from `path` (surrounding whitespace ignored, as `init.sh` ends it with a
    /// newline) and derives the proof key from it.
    pub fn from_file(path: &Path) -> Result<Self, KeyFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let key = text.trim();
        let chars = key.chars().count();
        if chars < MIN_KEY_CHARS {
            return Err(KeyFileError::TooShort {
                path: path.to_path_buf(),
                chars,
            });
        }
        Ok(Self::derive(key.as_bytes()))
    }

    /// A fresh MAC under this key.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }
}

impl fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProofKey(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_key_file_is_read_without_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cluster_key");
        std::fs::write(&path, format!("{KEY}\n")).unwrap();

        let from_file = ProofKey::from_file(&path).unwrap();

        let expected = ProofKey::derive(KEY.as_bytes());
        assert_eq!(
            from_file.mac().finalize().into_bytes(),
            expected.mac().finalize().into_bytes()
        );
    }

    #[test]
    fn a_short_key_is_refused_with_one_line_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "too short\n").unwrap();

        let error = ProofKey::from_file(&path).unwrap_err().to_string();

        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("9 characters"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn a_missing_key_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");

        let error = ProofKey::from_file(&path).unwrap_err().to_string();

        assert!(
            error.starts_with("cannot read the cluster key file"),
            "{error}"
        );
        assert!(error.contains("absent"), "{error}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = ProofKey::derive(KEY.as_bytes());
        assert_eq!(format!("{key:?}"), "ProofKey(…)");
    }
}
