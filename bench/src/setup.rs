//! Prepares a run through the public API only: finds the input nodes, creates and logs in one user per
//! client, creates the groups and makes every user a member of every group.
//!
//! ```text
//!   nameserver ──/api/endpoints──► [node 1, node 2, …]
//!   client i ──register + login──► node (i mod nodes)          one session per client
//!   user (g mod clients) ──create group g, add all users──►    every user in every group
//!   user (g mod clients) ──post --preload messages to g──►     reads get full pages from the start
//! ```
//!
//! Names carry the run id (`b<run>u<i>`, `b<run>g<g>`), so reruns against the same cluster never collide.
//! Every call is retried while the node is not serving yet (502/503/504, transport errors), until the
//! setup timeout; other failures end the run with the call that failed named.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use crate::client::{self, ApiClient, ClientError, Endpoint, User};
use crate::config::{self, Config, Progress};
use crate::workload;

/// Password of every benchmark user (the server wants at least 8 characters).
const PASSWORD: &str = "chat-bench-password";
/// Setup calls in flight at once: registration and login hash with bcrypt, which is slow on purpose.
pub(crate) const SETUP_CONCURRENCY: usize = 8;
/// Most tries of one setup call, whatever the timeout.
const MAX_ATTEMPTS: u32 = 100;

/// Why a run could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("no live input node listed by {nameserver}/api/endpoints within {waited:?}")]
    NoInputNodes {
        nameserver: String,
        waited: Duration,
    },
    #[error("input node {0} is not on loopback; pass --allow-remote to measure another host")]
    RemoteEndpoint(String),
    #[error("{step}: {source}")]
    Call {
        step: String,
        #[source]
        source: ClientError,
    },
}

/// One simulated user: its session on one input node.
#[derive(Debug, Clone)]
pub struct BenchUser {
    pub user: User,
    pub client: ApiClient,
    /// Index in [`Prepared::endpoints`] of the node this user's session lives on.
    pub node: usize,
}

/// Everything the workload needs.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub run_id: String,
    pub endpoints: Vec<Endpoint>,
    pub users: Vec<BenchUser>,
    /// Group ids; every user is a member of all of them.
    pub groups: Vec<String>,
    pub took: Duration,
}

/// Username of client `index` in run `run_id` (at most 32 characters for any realistic run).
pub fn username(run_id: &str, index: usize) -> String {
    format!("b{run_id}u{index}")
}

/// Name of group `index` in run `run_id`.
pub fn group_name(run_id: &str, index: usize) -> String {
    format!("b{run_id}g{index}")
}

/// Creates the users and groups of a run.
pub async fn prepare(config: &Config, run_id: &str) -> Result<Prepared, SetupError> {
    let started = Instant::now();
    let deadline = started + config.setup_timeout;
    let endpoints = wait_for_endpoints(config, deadline).await?;
    if config.progress == Progress::Auto {
        eprintln!(
            "chat-bench run {run_id}: {} input node(s); creating {} users, {} groups, {} messages per group",
            endpoints.len(),
            config.clients,
            config.groups,
            config.preload
        );
    }

    let users: Vec<BenchUser> = futures::stream::iter(0..config.clients)
        .map(|index| sign_up(config, run_id, &endpoints, index, deadline))
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;

    let groups: Vec<String> = futures::stream::iter(0..config.groups)
        .map(|index| {
            let owner = &users[index % users.len()];
            let name = group_name(run_id, index);
            async move {
                let group = retry(&format!("create group {name}"), deadline, || {
                    owner.client.create_group(&name)
                })
                .await?;
                Ok::<_, SetupError>(group.id)
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;

    let users_ref = &users;
    let memberships = groups.iter().enumerate().flat_map(|(index, group)| {
        let owner = index % users_ref.len();
        users_ref
            .iter()
            .enumerate()
            .filter(move |(member, _)| *member != owner)
            .map(move |(_, member)| (&users_ref[owner], group, member))
    });
    futures::stream::iter(memberships)
        .map(|(owner, group, member)| async move {
            let step = format!("add {} to group {group}", member.user.username);
            retry(&step, deadline, || {
                owner.client.add_member(group, &member.user)
            })
            .await
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;

    let padding = "x".repeat(config.message_size);
    let posts = groups.iter().enumerate().flat_map(|(index, group)| {
        (0..config.preload).map(move |sequence| (index, group, sequence))
    });
    futures::stream::iter(posts)
        .map(|(index, group, sequence)| {
            let owner = &users[index % users.len()];
            let client_id = format!("pre-{run_id}-{index}-{sequence}");
            let content = workload::message(&client_id, &padding, config.message_size);
            async move {
                retry(&format!("preload group {group}"), deadline, || {
                    owner.client.post(group, &content, &client_id)
                })
                .await
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;

    Ok(Prepared {
        run_id: run_id.to_owned(),
        endpoints,
        users,
        groups,
        took: started.elapsed(),
    })
}

/// Polls the nameserver until it lists at least one input node.
pub(crate) async fn wait_for_endpoints(
    config: &Config,
    deadline: Instant,
) -> Result<Vec<Endpoint>, SetupError> {
    let http =
        client::http_client(config.request_timeout, false).map_err(|source| SetupError::Call {
            step: "build the HTTP client".into(),
            source,
        })?;
    let nameserver = config.nameserver.as_str().trim_end_matches('/').to_owned();
    let started = Instant::now();
    let mut last_error = None;
    for _ in 0..MAX_ATTEMPTS {
        match client::fetch_endpoints(&http, &config.nameserver).await {
            Ok(mut endpoints) if !endpoints.is_empty() => {
                endpoints.sort_by_key(|endpoint| endpoint.id);
                for endpoint in &endpoints {
                    let url = url::Url::parse(&endpoint.url)
                        .map_err(|_| SetupError::RemoteEndpoint(endpoint.url.clone()))?;
                    if !config.allow_remote && !config::is_loopback(&url) {
                        return Err(SetupError::RemoteEndpoint(endpoint.url.clone()));
                    }
                }
                return Ok(endpoints);
            }
            Ok(_) => last_error = None,
            Err(error) if error.is_retryable() => last_error = Some(error),
            Err(source) => {
                return Err(SetupError::Call {
                    step: "list the input nodes".into(),
                    source,
                });
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match last_error {
        Some(source) => Err(SetupError::Call {
            step: "list the input nodes".into(),
            source,
        }),
        None => Err(SetupError::NoInputNodes {
            nameserver,
            waited: started.elapsed(),
        }),
    }
}

/// Registers client `index` on its round-robin node and logs it in there.
async fn sign_up(
    config: &Config,
    run_id: &str,
    endpoints: &[Endpoint],
    index: usize,
    deadline: Instant,
) -> Result<BenchUser, SetupError> {
    let node = index % endpoints.len();
    let client =
        ApiClient::new(&endpoints[node].url, config.request_timeout).map_err(|source| {
            SetupError::Call {
                step: "build the HTTP client".into(),
                source,
            }
        })?;
    let name = username(run_id, index);
    let user = retry(&format!("register {name}"), deadline, || {
        client.register(&name, PASSWORD)
    })
    .await?;
    retry(&format!("log in {name}"), deadline, || {
        client.login(&user, PASSWORD)
    })
    .await?;
    Ok(BenchUser { user, client, node })
}

/// Runs `call` until it succeeds, fails for good, or the deadline passes (backing off up to 1 s).
pub(crate) async fn retry<T, F, Fut>(
    step: &str,
    deadline: Instant,
    mut call: F,
) -> Result<T, SetupError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut pause = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error)
                if error.is_retryable()
                    && attempt < MAX_ATTEMPTS
                    && Instant::now() + pause < deadline =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                attempt += 1;
            }
            Err(source) => {
                return Err(SetupError::Call {
                    step: step.to_owned(),
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_run_id_and_fit_the_servers_limit() {
        let run_id = "ffffffff";

        assert_eq!(username(run_id, 3), "bffffffffu3");
        assert_eq!(group_name(run_id, 0), "bffffffffg0");
        assert!(username(run_id, config::MAX_CLIENTS).len() <= 32);
    }
}
