//! What an operator may ask of a node before it joins the cluster: start from a backup
//! (`--restore FILE`), or count only itself as a voter (`--force-configuration`), the way out when a
//! majority of the voters is gone for good. Both act on the node's own database before anything else
//! opens it; docs/OPERATIONS.md says when to use them and what the second can lose.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::config::Config;
use crate::logging::HEADLINE;
use crate::storage::backup::{self, RestoreError};
use crate::storage::{Database, DatabaseOptions, StorageError};

/// The start options of `cluster-node` that change the node's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// Replace the node's database with this backup.
    pub restore: Option<PathBuf>,
    /// Restore even over a database that holds data.
    pub force: bool,
    /// Make this node the only voter of its database's configuration.
    pub force_configuration: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error("cannot force the configuration: {0}")]
    Storage(#[from] StorageError),
}

/// Carries out `options` on `config`'s data folder; every step is logged with what it changed.
pub async fn prepare(config: &Config, options: &StartOptions) -> Result<(), RecoveryError> {
    if let Some(file) = &options.restore {
        let restored = backup::restore(file, &config.data_dir, options.force).await?;
        tracing::info!(
            target: HEADLINE,
            file = %file.display(),
            epoch = restored.epoch.0,
            term = restored.term.0,
            hash = %restored.hash,
            "restored the database from a backup"
        );
    }
    if options.force_configuration {
        let database = Database::open(&config.data_dir, DatabaseOptions::default()).await?;
        let only_me: BTreeSet<_> = [config.id].into();
        let replaced = database.force_configuration(&only_me).await;
        let position = database.position().await;
        database.close().await;
        let (replaced, (term, epoch)) = (replaced?, position?);
        let before: Vec<String> = replaced
            .map(|configuration| {
                configuration
                    .voters
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            })
            .unwrap_or_default();
        tracing::warn!(
            target: HEADLINE,
            epoch = epoch.0,
            term = term.0,
            voters_before = %before.join(","),
            voters_now = %config.id,
            "forced configuration: this node is the only voter; writes the lost voters acknowledged after this node's epoch are gone"
        );
    }
    Ok(())
}
