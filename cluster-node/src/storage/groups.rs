//! Groups and memberships (`groups`, `memberships`).
//!
//! A deleted group keeps its row (with `deleted_at`) so its messages still reference something, but every
//! read here treats it as gone. Memberships hold current members only: leaving deletes the row, and a user
//! added again simply gets a new row.

use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::ids::{Epoch, GroupId, UnixMillis, UserId};
use super::model::{Group, User};
use super::users::user_from_row;
use super::{StorageError, counter_from_sql, counter_to_sql};

/// A group as the writer decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGroup {
    pub id: GroupId,
    pub name: String,
    pub creator: UserId,
    pub created_at: UnixMillis,
}

fn group_from_row(row: &SqliteRow) -> Result<Group, sqlx::Error> {
    Ok(Group {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        creator: row.try_get("creator_id")?,
        created_at: UnixMillis(row.try_get("created_at")?),
        epoch: Epoch(counter_from_sql(row.try_get("epoch")?)),
    })
}

/// Inserts a group; the caller adds its creator as a member in the same transaction.
pub async fn insert(
    connection: &mut SqliteConnection,
    group: &NewGroup,
    epoch: Epoch,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO groups (id, name, creator_id, created_at, epoch) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(group.id)
    .bind(&group.name)
    .bind(group.creator)
    .bind(group.created_at.0)
    .bind(counter_to_sql(epoch.0))
    .execute(connection)
    .await?;
    Ok(())
}

/// A group that has not been deleted.
pub async fn find(
    connection: &mut SqliteConnection,
    id: GroupId,
) -> Result<Option<Group>, StorageError> {
    let row = sqlx::query(
        "SELECT id, name, creator_id, created_at, epoch FROM groups
         WHERE id = ?1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(connection)
    .await?;
    Ok(row.as_ref().map(group_from_row).transpose()?)
}

/// Marks a live group deleted; returns false when there was none.
pub async fn soft_delete(
    connection: &mut SqliteConnection,
    id: GroupId,
    deleted_at: UnixMillis,
    epoch: Epoch,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE groups SET deleted_at = ?2, deleted_epoch = ?3 WHERE id = ?1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(deleted_at.0)
    .bind(counter_to_sql(epoch.0))
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes `user` a member of `group`.
pub async fn add_member(
    connection: &mut SqliteConnection,
    group: GroupId,
    user: UserId,
    joined_at: UnixMillis,
    epoch: Epoch,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO memberships (group_id, user_id, joined_at, epoch) VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(group)
    .bind(user)
    .bind(joined_at.0)
    .bind(counter_to_sql(epoch.0))
    .execute(connection)
    .await?;
    Ok(())
}

/// Removes `user` from `group`; returns false when they were not a member.
pub async fn remove_member(
    connection: &mut SqliteConnection,
    group: GroupId,
    user: UserId,
) -> Result<bool, StorageError> {
    let done = sqlx::query("DELETE FROM memberships WHERE group_id = ?1 AND user_id = ?2")
        .bind(group)
        .bind(user)
        .execute(connection)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `user` is currently a member of `group` (deleted or not: callers check the group first).
pub async fn is_member(
    connection: &mut SqliteConnection,
    group: GroupId,
    user: UserId,
) -> Result<bool, StorageError> {
    let row = sqlx::query("SELECT 1 FROM memberships WHERE group_id = ?1 AND user_id = ?2")
        .bind(group)
        .bind(user)
        .fetch_optional(connection)
        .await?;
    Ok(row.is_some())
}

/// `None` when `group` is not live, else whether `user` is one of its members: both in one query.
pub async fn membership(
    connection: &mut SqliteConnection,
    group: GroupId,
    user: UserId,
) -> Result<Option<bool>, StorageError> {
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE group_id = ?1 AND user_id = ?2) AS member
         FROM groups WHERE id = ?1 AND deleted_at IS NULL",
    )
    .bind(group)
    .bind(user)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(|row| row.try_get("member")).transpose()?)
}

/// The current members of `group`, in the order they joined.
pub async fn members(
    connection: &mut SqliteConnection,
    group: GroupId,
) -> Result<Vec<User>, StorageError> {
    let rows = sqlx::query(
        "SELECT u.id, u.username, u.tag, u.created_at
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.group_id = ?1
         ORDER BY m.epoch, u.id",
    )
    .bind(group)
    .fetch_all(connection)
    .await?;
    Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
}

/// The live groups `user` belongs to, oldest first.
pub async fn groups_of(
    connection: &mut SqliteConnection,
    user: UserId,
) -> Result<Vec<Group>, StorageError> {
    let rows = sqlx::query(
        "SELECT g.id, g.name, g.creator_id, g.created_at, g.epoch
         FROM memberships m JOIN groups g ON g.id = m.group_id
         WHERE m.user_id = ?1 AND g.deleted_at IS NULL
         ORDER BY g.epoch",
    )
    .bind(user)
    .fetch_all(connection)
    .await?;
    Ok(rows.iter().map(group_from_row).collect::<Result<_, _>>()?)
}
