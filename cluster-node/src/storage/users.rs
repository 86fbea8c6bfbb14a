//! Users and their password hashes (`users`, `user_secrets`).

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use serde::{Deserialize, Serialize};

use super::ids::{Epoch, UnixMillis, UserId, UserTag};
use super::model::User;
use super::{StorageError, counter_to_sql};

/// A user as the writer decided it, password hash included (replicas need it to serve logins).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub id: UserId,
    pub username: String,
    pub tag: UserTag,
    pub password_hash: String,
    pub created_at: UnixMillis,
}

/// Never print a hash, even in a debug log.
impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("tag", &self.tag)
            .field("password_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl NewUser {
    /// The user as reads return it.
    pub fn user(&self) -> User {
        User {
            id: self.id,
            username: self.username.clone(),
            tag: self.tag,
            created_at: self.created_at,
        }
    }
}

/// Columns selected for a [`User`], in the order [`user_from_row`] reads them by name.
const USER_COLUMNS: &str = "id, username, tag, created_at";

pub(crate) fn user_from_row(row: &SqliteRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        tag: row.try_get("tag")?,
        created_at: UnixMillis(row.try_get("created_at")?),
    })
}

/// Inserts a user and their password hash, both stamped with `epoch`.
pub async fn insert(
    connection: &mut SqliteConnection,
    user: &NewUser,
    epoch: Epoch,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO users (id, username, tag, created_at, epoch) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(user.id)
    .bind(&user.username)
    .bind(user.tag)
    .bind(user.created_at.0)
    .bind(counter_to_sql(epoch.0))
    .execute(&mut *connection)
    .await?;
    sqlx::query("INSERT INTO user_secrets (user_id, password_hash, epoch) VALUES (?1, ?2, ?3)")
        .bind(user.id)
        .bind(&user.password_hash)
        .bind(counter_to_sql(epoch.0))
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// A live (not deleted) user by id.
pub async fn find_by_id(
    connection: &mut SqliteConnection,
    id: UserId,
) -> Result<Option<User>, StorageError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = ?1 AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(connection)
    .await?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

/// A live user by `name#tag`.
pub async fn find_by_name(
    connection: &mut SqliteConnection,
    username: &str,
    tag: UserTag,
) -> Result<Option<User>, StorageError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = ?1 AND tag = ?2 AND deleted_at IS NULL"
    ))
    .bind(username)
    .bind(tag)
    .fetch_optional(connection)
    .await?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

/// A live user by `name#tag` together with their bcrypt hash, for login.
pub async fn find_credentials(
    connection: &mut SqliteConnection,
    username: &str,
    tag: UserTag,
) -> Result<Option<(User, String)>, StorageError> {
    let row = sqlx::query(
        "SELECT u.id, u.username, u.tag, u.created_at, s.password_hash
         FROM users u JOIN user_secrets s ON s.user_id = u.id
         WHERE u.username = ?1 AND u.tag = ?2 AND u.deleted_at IS NULL",
    )
    .bind(username)
    .bind(tag)
    .fetch_optional(connection)
    .await?;
    match row {
        Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?))),
        None => Ok(None),
    }
}

/// Every tag in use for `username`, deleted users included (a tag is never handed out twice).
pub async fn taken_tags(
    connection: &mut SqliteConnection,
    username: &str,
) -> Result<Vec<UserTag>, StorageError> {
    let rows = sqlx::query("SELECT tag FROM users WHERE username = ?1")
        .bind(username)
        .fetch_all(connection)
        .await?;
    rows.iter()
        .map(|row| row.try_get("tag").map_err(StorageError::from))
        .collect()
}
