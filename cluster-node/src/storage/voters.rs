//! The `voters` row: the newest voter configuration this database holds (a copy of the newest
//! `Configure` entry of its log, written in the same transaction).

use std::collections::BTreeSet;

use sqlx::{Row, SqliteConnection};

use super::ids::Epoch;
use super::{StorageError, counter_from_sql, counter_to_sql};
use crate::config::NodeId;

/// The voters named at `epoch` replace the previous configuration.
pub async fn set(
    connection: &mut SqliteConnection,
    epoch: Epoch,
    voters: &BTreeSet<NodeId>,
) -> Result<(), StorageError> {
    let text =
        serde_json::to_string(voters).map_err(|error| StorageError::Corrupt(error.to_string()))?;
    sqlx::query("INSERT OR REPLACE INTO voters (id, epoch, voters) VALUES (1, ?1, ?2)")
        .bind(counter_to_sql(epoch.0))
        .bind(text)
        .execute(connection)
        .await?;
    Ok(())
}

/// The newest configuration, or `None` before the first one.
pub async fn get(
    connection: &mut SqliteConnection,
) -> Result<Option<replication::Configuration>, StorageError> {
    let Some(row) = sqlx::query("SELECT epoch, voters FROM voters WHERE id = 1")
        .fetch_optional(connection)
        .await?
    else {
        return Ok(None);
    };
    let epoch: i64 = row.try_get("epoch")?;
    let text: String = row.try_get("voters")?;
    let voters: BTreeSet<NodeId> =
        serde_json::from_str(&text).map_err(|error| StorageError::Corrupt(error.to_string()))?;
    Ok(Some(replication::Configuration::new(
        counter_from_sql(epoch),
        voters,
    )))
}
