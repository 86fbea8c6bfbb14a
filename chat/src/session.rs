//! The session kept between commands: the signed cookie the cluster gave at login, who it belongs to,
//! the input node last used and the highest epoch seen, in `session.json` of the user's config folder.
//!
//! The cookie is a bearer credential (anyone holding it is signed in until it expires), so the folder is
//! made mode 700 and the file written mode 600 before any secret goes into it, through a temporary file
//! renamed over the old one so a crash never leaves half a session.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// The session cookie as the cluster set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCookie {
    /// `name=value`, sent back as it came.
    pub pair: String,
    /// Set with `Secure`: it must only travel over HTTPS.
    #[serde(default)]
    pub secure: bool,
}

/// Everything `session.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSession {
    /// `name#1234` of the signed-in user.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub cookie: Option<SessionCookie>,
    /// Base URL of the input node last used; tried first while the nameserver still lists it.
    #[serde(default)]
    pub node: Option<String>,
    /// The highest `X-Chat-Epoch` seen.
    #[serde(default)]
    pub epoch: u64,
}

/// Where the session lives.
#[derive(Debug, Clone)]
pub struct SessionStore {
    dir: PathBuf,
}

impl SessionStore {
    /// `dir` when given (`--config-dir`), else `$XDG_CONFIG_HOME/chat`, else `~/.config/chat`.
    pub fn locate(dir: Option<PathBuf>) -> Result<SessionStore, ClientError> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        let dir = match dir {
            Some(dir) => dir,
            None => match non_empty("XDG_CONFIG_HOME") {
                Some(config) => PathBuf::from(config).join("chat"),
                None => match non_empty("HOME") {
                    Some(home) => PathBuf::from(home).join(".config/chat"),
                    None => {
                        return Err(ClientError::Local(
                            "no config folder: set HOME, XDG_CONFIG_HOME or --config-dir".into(),
                        ));
                    }
                },
            },
        };
        Ok(SessionStore { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("session.json")
    }

    /// The saved session, or an empty one when none was saved.
    pub fn load(&self) -> Result<SavedSession, ClientError> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|error| file_error(&path, &format!("not a session file ({error})"))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok(SavedSession::default())
            }
            Err(error) => Err(file_error(&path, &error.to_string())),
        }
    }

    pub fn save(&self, session: &SavedSession) -> Result<(), ClientError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io(&self.dir))?;
        // An existing folder keeps the mode it was made with; a session must not sit in a readable one.
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(&self.dir))?;
        let path = self.path();
        let temporary = self.dir.join(".session.json.tmp");
        let mut text = serde_json::to_vec_pretty(session).expect("a session serialises");
        text.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io(&temporary))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io(&temporary))?;
        file.write_all(&text).map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))
    }

    /// Forgets the session; nothing saved is not an error.
    pub fn clear(&self) -> Result<(), ClientError> {
        let path = self.path();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(file_error(&path, &error.to_string())),
        }
    }
}

/// Turns an IO error on `path` into the client's error.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |error| file_error(path, &error.to_string())
}

fn file_error(path: &Path, reason: &str) -> ClientError {
    ClientError::Local(format!("session file {}: {reason}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_session_loads_back_from_a_private_file_in_a_private_folder() {
        let root = tempfile::tempdir().expect("a temporary folder");
        let store = SessionStore::locate(Some(root.path().join("chat"))).expect("a store");
        let session = SavedSession {
            user: Some("ada#0218".into()),
            cookie: Some(SessionCookie {
                pair: "chat_session=abc".into(),
                secure: false,
            }),
            epoch: 7,
            ..SavedSession::default()
        };

        store.save(&session).expect("saved");

        assert_eq!(store.load().expect("loaded"), session);
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(mode(&root.path().join("chat")), 0o700);
    }

    #[test]
    fn no_file_is_an_empty_session_and_clearing_twice_is_fine() {
        let root = tempfile::tempdir().expect("a temporary folder");
        let store = SessionStore::locate(Some(root.path().to_owned())).expect("a store");
        assert_eq!(store.load().expect("loaded"), SavedSession::default());
        store.clear().expect("cleared");
        store.clear().expect("cleared again");
    }
}
