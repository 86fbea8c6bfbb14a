//! `chat-admin --config NODE_<id>/.cfg COMMAND`: operations on a running cluster.
//!
//! It reads a node's config for the bootstrap's address (to find every node's admin port) and the
//! cluster key (to sign what the admin ports only do for members). Any node's config will do.
//!
//! - `backup [--out DIR] [--node ID]`: downloads a backup from the writer (or the voter `ID`), checks
//!   that the file holds what the node said (position and content hash), and names it
//!   `DIR/<time>-epoch<E>.sqlite`.
//! - `remove-node ID [--force]`: asks the config's node (it forwards to the writer) to take node `ID` out of the voter configuration (if it votes) and
//!   out of the bootstrap's registry; refused while it is alive unless `--force`, and when the voters
//!   left would have no live majority.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_proto::bootstrap::ListNodesRequest;
use chat_proto::bootstrap::bootstrap_client::BootstrapClient;
use clap::{Parser, Subcommand};
use cluster_auth::{AUTH_HEADER, ProofKey, Rpc, proof_header};
use cluster_node::Config;
use cluster_node::backups::{EPOCH_HEADER, HASH_HEADER, TERM_HEADER, file_name};
use cluster_node::storage::UnixMillis;
use cluster_node::storage::backup::inspect;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

/// Operations on a running chat cluster.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A node's configuration file (for the bootstrap's address and the cluster key), e.g. NODE_1/.cfg
    #[arg(long)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Download a consistent backup of the database from the writer (or a voter).
    Backup {
        /// Folder for the backup file.
        #[arg(long, default_value = "backups")]
        out: PathBuf,
        /// Take it from this node (the writer or a voter) instead of the writer.
        #[arg(long)]
        node: Option<u64>,
    },
    /// Take a node out of the cluster for good (out of the voters, forgotten by the bootstrap).
    RemoveNode {
        /// The node's id.
        id: u64,
        /// Remove it even though it is alive (stop it afterwards: a running node registers again).
        #[arg(long)]
        force: bool,
    },
}

/// A node as `/status` describes it (the fields this tool reads).
#[derive(Debug, Deserialize)]
struct Status {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    accepting_writes: bool,
    #[serde(default)]
    copy: String,
}

struct AdminNode {
    id: u64,
    url: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("chat-admin: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chat-admin: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            Command::Backup { out, node } => backup(&config, &out, node).await,
            Command::RemoveNode { id, force } => remove_node(&config, id, force).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-admin: {error}");
            ExitCode::FAILURE
        }
    }
}

fn http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|error| format!("cannot build an HTTP client: {error}"))
}

/// Every registered node's admin URL, from the bootstrap.
async fn admin_nodes(config: &Config) -> Result<Vec<AdminNode>, String> {
    let unreachable = |error: &dyn std::fmt::Display| {
        format!(
            "cannot list the nodes at the bootstrap {}: {error}",
            config.bootstrap
        )
    };
    let mut client = BootstrapClient::connect(config.bootstrap.grpc_uri())
        .await
        .map_err(|error| unreachable(&error))?;
    let listing = client
        .list_nodes(ListNodesRequest {})
        .await
        .map_err(|error| unreachable(&error))?
        .into_inner();
    Ok(listing
        .nodes
        .into_iter()
        .filter_map(|entry| entry.address)
        .map(|address| AdminNode {
            id: address.id,
            url: if address.host.contains(':') {
                format!("http://[{}]:{}", address.host, address.admin_port)
            } else {
                format!("http://{}:{}", address.host, address.admin_port)
            },
        })
        .collect())
}

async fn status(client: &reqwest::Client, node: &AdminNode) -> Option<Status> {
    let response = client
        .get(format!("{}/status", node.url))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// The node to back up: `wanted`, or the writer that accepts writes, or else a voter.
async fn source(
    client: &reqwest::Client,
    nodes: &[AdminNode],
    wanted: Option<u64>,
) -> Result<usize, String> {
    if let Some(wanted) = wanted {
        return nodes
            .iter()
            .position(|node| node.id == wanted)
            .ok_or_else(|| format!("node {wanted} is not registered with the bootstrap"));
    }
    let mut voter = None;
    for (index, node) in nodes.iter().enumerate() {
        let Some(status) = status(client, node).await else {
            continue;
        };
        if status.roles.iter().any(|role| role == "writer") && status.accepting_writes {
            return Ok(index);
        }
        if status.copy == "voter" && voter.is_none() {
            voter = Some(index);
        }
    }
    voter.ok_or_else(|| {
        "no node answers as the writer or a voter (is the cluster up? `make up`)".to_owned()
    })
}

/// The `error` of a JSON error answer, or the body as it is.
async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| json["error"].as_str().map(str::to_owned))
        .unwrap_or(body);
    format!("{status}: {reason}")
}

async fn remove_node(config: &Config, id: u64, force: bool) -> Result<(), String> {
    let client = http()?;
    let nodes = admin_nodes(config).await?;
    // The node whose config was given first (it forwards to the writer), else any other.
    let mut candidates: Vec<&AdminNode> = nodes.iter().filter(|node| node.id != id).collect();
    candidates.sort_by_key(|node| node.id != config.id.0);
    let mut asked = None;
    for node in candidates {
        if status(&client, node).await.is_some() {
            asked = Some(node);
            break;
        }
    }
    let asked = asked.ok_or("no other node answers (is the cluster up? `make up`)")?;
    let body = serde_json::to_vec(&serde_json::json!({ "node": id, "force": force }))
        .map_err(|error| error.to_string())?;
    let key = ProofKey::derive(config.cluster_key.as_bytes());
    eprintln!(
        "asking node {} ({}) to remove node {id}",
        asked.id, asked.url
    );
    let response = client
        .post(format!("{}/remove", asked.url))
        .header(AUTH_HEADER, proof_header(&key, Rpc::AdminRemoveNode, &body))
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|error| format!("node {} did not answer: {error}", asked.id))?;
    if !response.status().is_success() {
        return Err(format!(
            "node {id} not removed: {}",
            refusal(response).await
        ));
    }
    let answer: serde_json::Value = response
        .json()
        .await
        .map_err(|error| format!("an unreadable answer: {error}"))?;
    let list = |key: &str| {
        answer[key]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!(
        "node {id} removed: voters now {}; its former neighbours ({}) repair around it",
        list("voters"),
        list("former_neighbors")
    );
    Ok(())
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

async fn backup(config: &Config, out: &Path, node: Option<u64>) -> Result<(), String> {
    let client = http()?;
    let nodes = admin_nodes(config).await?;
    let chosen = &nodes[source(&client, &nodes, node).await?];
    let key = ProofKey::derive(config.cluster_key.as_bytes());
    eprintln!("taking a backup from node {} ({})", chosen.id, chosen.url);
    let mut response = client
        .get(format!("{}/backup", chosen.url))
        .header(AUTH_HEADER, proof_header(&key, Rpc::AdminBackup, b""))
        .send()
        .await
        .map_err(|error| format!("node {} did not answer: {error}", chosen.id))?;
    if !response.status().is_success() {
        return Err(format!(
            "node {} refused: {}",
            chosen.id,
            refusal(response).await
        ));
    }
    let epoch: u64 = header(&response, EPOCH_HEADER)
        .and_then(|text| text.parse().ok())
        .ok_or("the answer has no epoch header")?;
    let term = header(&response, TERM_HEADER).unwrap_or("?").to_owned();
    let hash = header(&response, HASH_HEADER)
        .ok_or("the answer has no content hash header")?
        .to_owned();
    let total = response.content_length();

    std::fs::create_dir_all(out)
        .map_err(|error| format!("cannot create {}: {error}", out.display()))?;
    let partial = out.join(format!(".partial-{}.sqlite", std::process::id()));
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|error| format!("cannot write {}: {error}", partial.display()))?;
    let mut received = 0u64;
    let mut shown = Instant::now();
    let download = async {
        while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
            file.write_all(&chunk)
                .await
                .map_err(|error| error.to_string())?;
            received += chunk.len() as u64;
            if shown.elapsed() >= Duration::from_millis(500) {
                shown = Instant::now();
                match total {
                    Some(total) => eprint!("\r{} of {}", mebibytes(received), mebibytes(total)),
                    None => eprint!("\r{}", mebibytes(received)),
                }
            }
        }
        file.sync_all().await.map_err(|error| error.to_string())
    };
    if let Err(error) = download.await {
        let _ = std::fs::remove_file(&partial);
        return Err(format!("the download broke off: {error}"));
    }
    eprintln!();
    let checked = inspect(&partial).await;
    let checked = match checked {
        Ok(info) if info.epoch.0 == epoch && info.hash.to_string() == hash => info,
        Ok(info) => {
            let _ = std::fs::remove_file(&partial);
            return Err(format!(
                "the file holds epoch {} with content hash {}, not the epoch {epoch} and hash {hash} the node announced: discarded",
                info.epoch.0, info.hash
            ));
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(format!("the downloaded file does not check out: {error}"));
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis())
        .unwrap_or(0);
    let path = out.join(file_name(
        UnixMillis(i64::try_from(now).unwrap_or(i64::MAX)),
        epoch,
    ));
    std::fs::rename(&partial, &path)
        .map_err(|error| format!("cannot name the backup {}: {error}", path.display()))?;
    println!(
        "{}: epoch {epoch}, term {term}, {}, content hash {} (checked)",
        path.display(),
        mebibytes(checked.bytes),
        checked.hash
    );
    Ok(())
}
