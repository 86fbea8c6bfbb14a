//! Backups taken from a running node: `GET /backup` on the admin port, and periodic backups into a
//! folder (`backup_dir` in the config).
//!
//! Only the writer and the voters hand out backups: their copies hold every acknowledged write up to
//! their epoch (a learner's copy is complete too, but not synced at every commit, so it is not offered
//! as the reference). The database is copied with `VACUUM INTO` beside the live one (see
//! `storage::backup`), which never holds the writer up, then streamed; the copy's file is unlinked
//! as soon as it is open, so an interrupted download leaves nothing behind. The answer carries the
//! copy's position and content hash in headers, for the client to check what it received.
//!
//! A backup holds every password hash and message, so the request needs a proof of the cluster key
//! (`x-chat-auth`, as on the bootstrap's RPCs); `chat-admin backup` signs it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cluster_auth::{AUTH_HEADER, Guard, Rpc};
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use crate::admin::admin_error;
use crate::config::PeriodicBackups;
use crate::context::DatabaseSlot;
use crate::status::{CopyKind, Role, StatusBoard};
use crate::storage::backup::BackupInfo;
use crate::storage::{Database, UnixMillis};

/// The headers that describe a backup.
pub const EPOCH_HEADER: &str = "x-chat-epoch";
pub const TERM_HEADER: &str = "x-chat-term";
pub const HASH_HEADER: &str = "x-chat-content-hash";

/// What the backup endpoint needs of the node.
#[derive(Clone)]
pub struct BackupSource {
    pub status: StatusBoard,
    pub database: DatabaseSlot,
    /// Where copies are written before they are streamed: the node's data folder, so the copy is on
    /// the same disk as the database and never in a small `/tmp`.
    pub scratch: PathBuf,
    pub guard: Arc<Guard>,
    /// One backup at a time: each costs a full read of the database and its size in disk.
    pub running: Arc<tokio::sync::Mutex<()>>,
}

/// `GET /backup`, merged into the admin router.
pub fn router(source: BackupSource) -> Router {
    Router::new()
        .route("/backup", get(backup))
        .with_state(source)
}

/// Why this node does not hand out backups, or `None` when it does.
fn not_a_source(source: &BackupSource) -> Option<String> {
    let status = source.status.snapshot();
    if status.roles.contains(&Role::Writer) || status.copy == CopyKind::Voter {
        return None;
    }
    let voters: Vec<String> = status.voters.iter().map(ToString::to_string).collect();
    Some(format!(
        "node {} is not the writer or a voter; ask one of the voters ({})",
        status.id,
        if voters.is_empty() {
            "none known yet".to_owned()
        } else {
            voters.join(", ")
        }
    ))
}

async fn backup(State(source): State<BackupSource>, headers: HeaderMap) -> Response {
    let proof = headers
        .get(AUTH_HEADER)
        .and_then(|value| value.to_str().ok());
    let checked = match proof {
        None => Err("no proof of the cluster key (the x-chat-auth header is missing)".to_owned()),
        Some(proof) => source
            .guard
            .verify_now(Rpc::AdminBackup, b"", proof)
            .map_err(|error| error.to_string()),
    };
    if let Err(reason) = checked {
        tracing::warn!(%reason, "backup refused");
        return admin_error(StatusCode::UNAUTHORIZED, reason);
    }
    if let Some(reason) = not_a_source(&source) {
        return admin_error(StatusCode::CONFLICT, reason);
    }
    let Some((database, _)) = source.database.get() else {
        return admin_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no database open yet",
        );
    };
    let Ok(_one_at_a_time) = source.running.try_lock() else {
        return admin_error(
            StatusCode::CONFLICT,
            "a backup of this node is being written; try again when it is done",
        );
    };
    let scratch = source
        .scratch
        .join(format!("backup-{}.sqlite", uuid::Uuid::new_v4()));
    let started = std::time::Instant::now();
    let taken = database.back_up_into(&scratch).await;
    let info = match taken {
        Ok(info) => info,
        Err(error) => {
            let _ = std::fs::remove_file(&scratch);
            tracing::error!(%error, "backup failed");
            return admin_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the backup failed: {error}"),
            );
        }
    };
    let file = tokio::fs::File::open(&scratch).await;
    // Unlinked at once: the open file stays readable until the stream ends, and nothing is left
    // behind when the client goes away half-way.
    let _ = std::fs::remove_file(&scratch);
    let file = match file {
        Ok(file) => file,
        Err(error) => {
            return admin_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the backup: {error}"),
            );
        }
    };
    tracing::info!(
        epoch = info.epoch.0,
        term = info.term.0,
        bytes = info.bytes,
        hash = %info.hash,
        took_ms = started.elapsed().as_millis(),
        "backup taken"
    );
    let mut response = Body::from_stream(ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.sqlite3"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(info.bytes));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(EPOCH_HEADER, HeaderValue::from(info.epoch.0));
    headers.insert(TERM_HEADER, HeaderValue::from(info.term.0));
    if let Ok(hash) = HeaderValue::from_str(&info.hash.to_string()) {
        headers.insert(HASH_HEADER, hash);
    }
    if let Ok(disposition) = HeaderValue::from_str(&format!(
        "attachment; filename=\"chat-epoch{}.sqlite\"",
        info.epoch.0
    )) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

/// `20261203T141500Z-epoch1234.sqlite`: sorts by time, says what it holds.
pub fn file_name(at: UnixMillis, epoch: u64) -> String {
    let stamp: String = crate::web::rfc3339(at)
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{stamp}Z-epoch{epoch}.sqlite")
}

fn now() -> UnixMillis {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis())
        .unwrap_or(0);
    UnixMillis(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// Writes one backup into `folder` (under a temporary name, renamed once synced, so a file with a
/// backup's name is always whole) and answers its path and contents.
pub async fn write_into(
    database: &Database,
    folder: &Path,
) -> Result<(PathBuf, BackupInfo), String> {
    std::fs::create_dir_all(folder)
        .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
    let partial = folder.join(format!(".partial-{}.sqlite", uuid::Uuid::new_v4()));
    let info = match database.back_up_into(&partial).await {
        Ok(info) => info,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error.to_string());
        }
    };
    let path = folder.join(file_name(now(), info.epoch.0));
    std::fs::rename(&partial, &path)
        .map_err(|error| format!("cannot name the backup {}: {error}", path.display()))?;
    Ok((path, info))
}

/// Deletes the oldest backups in `folder` beyond the newest `keep` (only files named by
/// [`file_name`]: whatever else the folder holds is the operator's).
pub fn prune(folder: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(is_backup_name)
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = backups.drain(..excess).collect();
    for path in &removed {
        std::fs::remove_file(path)?;
    }
    Ok(removed)
}

fn is_backup_name(name: &str) -> bool {
    let Some((stamp, rest)) = name.split_once("Z-epoch") else {
        return false;
    };
    let Some(epoch) = rest.strip_suffix(".sqlite") else {
        return false;
    };
    stamp.len() == 15
        && stamp.chars().all(|c| c.is_ascii_digit() || c == 'T')
        && !epoch.is_empty()
        && epoch.chars().all(|c| c.is_ascii_digit())
}

/// Runs [`PeriodicBackups`] until `stop`, while this node is the writer or a voter (a learner's
/// copy is not the reference; several voters configured alike each keep their own series).
pub async fn run_periodic(
    periodic: PeriodicBackups,
    source: BackupSource,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(periodic.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if not_a_source(&source).is_some() {
            continue;
        }
        let Some((database, _)) = source.database.get() else {
            continue;
        };
        let Ok(_one_at_a_time) = source.running.try_lock() else {
            continue;
        };
        match write_into(&database, &periodic.folder).await {
            Ok((path, info)) => {
                tracing::info!(path = %path.display(), epoch = info.epoch.0, hash = %info.hash, "periodic backup written");
                match prune(&periodic.folder, periodic.keep) {
                    Ok(removed) => {
                        for path in removed {
                            tracing::info!(path = %path.display(), "old backup deleted");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot delete old backups"),
                }
            }
            Err(error) => tracing::error!(%error, "periodic backup failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_sort_by_time_and_say_their_epoch() {
        assert_eq!(
            file_name(UnixMillis(1_767_225_600_123), 42),
            "20260101T000000Z-epoch42.sqlite"
        );
        assert!(is_backup_name("20260101T000000Z-epoch42.sqlite"));
        assert!(!is_backup_name("notes.sqlite"));
        assert!(!is_backup_name("20260101T000000Z-epoch.sqlite"));
        assert!(!is_backup_name(".partial-x.sqlite"));
    }

    #[test]
    fn pruning_keeps_the_newest_and_leaves_other_files_alone() {
        let folder = tempfile::tempdir().expect("tempdir");
        let names = [
            "20260101T000000Z-epoch1.sqlite",
            "20260101T000100Z-epoch9.sqlite",
            "20260102T000000Z-epoch30.sqlite",
            "keep-me.txt",
        ];
        for name in names {
            std::fs::write(folder.path().join(name), "x").expect("write");
        }
        let removed = prune(folder.path(), 2).expect("prune");
        assert_eq!(removed, vec![folder.path().join(names[0])]);
        for name in &names[1..] {
            assert!(folder.path().join(name).exists(), "{name}");
        }
        assert!(prune(folder.path(), 5).expect("prune").is_empty());
    }
}
