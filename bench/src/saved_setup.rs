//! A run's users and groups kept in a file (`--users-file`), so later runs against the same cluster skip
//! setup: no registration, no login, no preload.
//!
//! Why: an input node admits 30 login attempts per minute from one client address, and every client of
//! a run logs in from 127.0.0.1. A series of runs that each logged in 16 fresh users would soon be
//! answered 429 (and setup would stall). The saved session cookies are signed with the cluster key, so
//! they are valid on every input node of that cluster, whichever node a client is spread to next time.
//!
//! ```text
//!   first run:  setup (register, log in, groups) ──► save users, sessions, groups ──► workload
//!   later runs: load ──► GET /api/me per user (the session still holds) ──► workload
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::client::{ApiClient, ClientError, User};
use crate::config::Config;
use crate::setup::{self, BenchUser, Prepared, SetupError};

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSetup {
    /// The nameserver the users were made through (another cluster would not know them).
    pub nameserver: String,
    /// The run that created them; their names carry it.
    pub setup_run_id: String,
    pub users: Vec<SavedUser>,
    /// Group ids; every saved user is a member of all of them.
    pub groups: Vec<String>,
}

/// One user and its session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedUser {
    #[serde(flatten)]
    pub user: User,
    /// The session cookies as a `Cookie` header value (`chat_session=…`).
    pub session: String,
}

/// Why a users file could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum SavedSetupError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a chat-bench users file ({source}); delete it to start over", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: the users were made through {saved}, not {asked}; delete the file to start over", path.display())]
    OtherNameserver {
        path: PathBuf,
        saved: String,
        asked: String,
    },
    #[error(
        "{}: holds {users} users and {groups} groups, the run needs {clients} and {wanted_groups}; delete the file to start over",
        path.display()
    )]
    TooSmall {
        path: PathBuf,
        users: usize,
        groups: usize,
        clients: usize,
        wanted_groups: usize,
    },
    #[error("the session of {username} was not kept after logging in")]
    NoSession { username: String },
    #[error(
        "{}: the saved session of {username} is refused (was the cluster restarted with another key?); delete the file to start over",
        path.display()
    )]
    SessionRefused { path: PathBuf, username: String },
    #[error("{}: {source}", path.display())]
    Setup {
        path: PathBuf,
        #[source]
        source: Box<SetupError>,
    },
}

/// Writes the users, sessions and groups of `prepared` to `path` (readable by its owner only: it holds
/// session cookies).
pub fn save(path: &Path, config: &Config, prepared: &Prepared) -> Result<(), SavedSetupError> {
    let users =
        prepared
            .users
            .iter()
            .map(|bench_user| {
                let session = bench_user.client.session_cookies().ok_or_else(|| {
                    SavedSetupError::NoSession {
                        username: bench_user.user.username.clone(),
                    }
                })?;
                Ok(SavedUser {
                    user: bench_user.user.clone(),
                    session,
                })
            })
            .collect::<Result<Vec<_>, SavedSetupError>>()?;
    let saved = SavedSetup {
        nameserver: nameserver_of(config),
        setup_run_id: prepared.run_id.clone(),
        users,
        groups: prepared.groups.clone(),
    };
    let text = serde_json::to_string_pretty(&saved).expect("a saved setup always serialises");
    write_private(path, &(text + "\n")).map_err(|source| SavedSetupError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads `path` and prepares a run of `config` from it: the first `clients` users, spread round-robin
/// over the input nodes the nameserver lists now, and the first `groups` groups. Every session is
/// checked with `GET /api/me` first, so a stale file fails here, not as a run full of 401s.
pub async fn load(config: &Config, path: &Path, run_id: &str) -> Result<Prepared, SavedSetupError> {
    let started = Instant::now();
    let saved = read(path)?;
    check_fits(&saved, config, path)?;
    let deadline = started + config.setup_timeout;
    let endpoints = setup::wait_for_endpoints(config, deadline)
        .await
        .map_err(|source| SavedSetupError::Setup {
            path: path.to_owned(),
            source: Box::new(source),
        })?;

    let users: Vec<BenchUser> = futures::stream::iter(saved.users.iter().take(config.clients))
        .enumerate()
        .map(|(index, saved_user)| {
            let node = index % endpoints.len();
            let base = endpoints[node].url.clone();
            resume(
                config.request_timeout,
                path,
                base,
                node,
                saved_user,
                deadline,
            )
        })
        .buffered(setup::SETUP_CONCURRENCY)
        .try_collect()
        .await?;

    Ok(Prepared {
        run_id: run_id.to_owned(),
        endpoints,
        users,
        groups: saved.groups[..config.groups].to_vec(),
        took: started.elapsed(),
    })
}

/// The saved setup in `path`.
pub fn read(path: &Path) -> Result<SavedSetup, SavedSetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| SavedSetupError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| SavedSetupError::Format {
        path: path.to_owned(),
        source,
    })
}

/// Whether `saved` can serve a run of `config`: same nameserver, enough users and groups.
fn check_fits(saved: &SavedSetup, config: &Config, path: &Path) -> Result<(), SavedSetupError> {
    let asked = nameserver_of(config);
    if saved.nameserver != asked {
        return Err(SavedSetupError::OtherNameserver {
            path: path.to_owned(),
            saved: saved.nameserver.clone(),
            asked,
        });
    }
    if saved.users.len() < config.clients || saved.groups.len() < config.groups {
        return Err(SavedSetupError::TooSmall {
            path: path.to_owned(),
            users: saved.users.len(),
            groups: saved.groups.len(),
            clients: config.clients,
            wanted_groups: config.groups,
        });
    }
    Ok(())
}

/// A client for `saved_user` on the node at `base`, once the node confirmed the session.
async fn resume(
    timeout: Duration,
    path: &Path,
    base: String,
    node: usize,
    saved_user: &SavedUser,
    deadline: Instant,
) -> Result<BenchUser, SavedSetupError> {
    let username = &saved_user.user.username;
    let setup_error = |source| SavedSetupError::Setup {
        path: path.to_owned(),
        source: Box::new(source),
    };
    let client =
        ApiClient::with_session(&base, timeout, &saved_user.session).map_err(|source| {
            setup_error(SetupError::Call {
                step: "build the HTTP client".into(),
                source,
            })
        })?;
    let step = format!("resume the session of {username}");
    match setup::retry(&step, deadline, || client.me()).await {
        Ok(me) if me.id == saved_user.user.id => Ok(BenchUser {
            user: saved_user.user.clone(),
            client,
            node,
        }),
        Ok(_)
        | Err(SetupError::Call {
            source:
                ClientError::Status {
                    status: StatusCode::UNAUTHORIZED,
                    ..
                },
            ..
        }) => Err(SavedSetupError::SessionRefused {
            path: path.to_owned(),
            username: username.clone(),
        }),
        Err(error) => Err(setup_error(error)),
    }
}

fn nameserver_of(config: &Config) -> String {
    config.nameserver.as_str().trim_end_matches('/').to_owned()
}

/// Writes `text` to `path` through a temporary file created with mode 600, then renamed into place.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Workload;

    fn saved(users: usize, groups: usize) -> SavedSetup {
        SavedSetup {
            nameserver: "http://127.0.0.1:9999".into(),
            setup_run_id: "0badcafe".into(),
            users: (0..users)
                .map(|index| SavedUser {
                    user: User {
                        id: format!("id-{index}"),
                        username: setup::username("0badcafe", index),
                        tag: "0001".into(),
                    },
                    session: format!("chat_session=s{index}"),
                })
                .collect(),
            groups: (0..groups).map(|index| format!("group-{index}")).collect(),
        }
    }

    #[test]
    fn a_saved_setup_reads_back_as_it_was_written_and_only_its_owner_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let original = saved(3, 2);

        let text = serde_json::to_string_pretty(&original).unwrap();
        write_private(&path, &text).unwrap();
        let back = read(&path).unwrap();

        assert_eq!(back, original);
        let mode = std::os::unix::fs::PermissionsExt::mode(&path.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["users"][0]["username"], "b0badcafeu0");
        assert_eq!(json["users"][0]["session"], "chat_session=s0");
    }

    #[test]
    fn a_file_serves_runs_with_as_many_clients_and_groups_or_fewer_on_the_same_nameserver() {
        let path = Path::new("users.json");
        let mut config = Config::new("http://127.0.0.1:9999/", Workload::Write).unwrap();
        config.clients = 16;
        config.groups = 4;

        let exact = check_fits(&saved(16, 4), &config, path);
        let larger = check_fits(&saved(20, 6), &config, path);
        let too_few_users = check_fits(&saved(4, 4), &config, path);
        let too_few_groups = check_fits(&saved(16, 2), &config, path);
        config.nameserver = "http://127.0.0.1:29903".parse().unwrap();
        let other_cluster = check_fits(&saved(16, 4), &config, path);

        assert!(exact.is_ok());
        assert!(larger.is_ok());
        assert!(matches!(
            too_few_users,
            Err(SavedSetupError::TooSmall { users: 4, .. })
        ));
        assert!(matches!(
            too_few_groups,
            Err(SavedSetupError::TooSmall { groups: 2, .. })
        ));
        assert!(matches!(
            other_cluster,
            Err(SavedSetupError::OtherNameserver { .. })
        ));
    }

    #[test]
    fn a_file_that_is_not_a_saved_setup_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        std::fs::write(&path, "{\"something\": 1}").unwrap();

        let error = read(&path).unwrap_err();

        assert!(matches!(error, SavedSetupError::Format { .. }));
        assert!(error.to_string().contains("users.json"), "{error}");
    }
}
