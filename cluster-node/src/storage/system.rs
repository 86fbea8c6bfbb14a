//! The `system_state` row: the log position `(term, epoch)` this database has reached, and the highest
//! data term it promised to a claiming root.

use sqlx::{Row, SqliteConnection};

use super::ids::{Epoch, Term};
use super::{StorageError, counter_from_sql, counter_to_sql};

/// `(term, epoch)` as stored.
pub async fn position(connection: &mut SqliteConnection) -> Result<(Term, Epoch), StorageError> {
    let row = sqlx::query("SELECT term, epoch FROM system_state WHERE id = 1")
        .fetch_one(connection)
        .await?;
    let term: i64 = row.try_get("term")?;
    let epoch: i64 = row.try_get("epoch")?;
    Ok((Term(counter_from_sql(term)), Epoch(counter_from_sql(epoch))))
}

/// Moves the stored position; callers hold the transaction that wrote the rows up to `epoch`.
pub async fn set_position(
    connection: &mut SqliteConnection,
    term: Term,
    epoch: Epoch,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE system_state SET term = ?1, epoch = ?2 WHERE id = 1")
        .bind(counter_to_sql(term.0))
        .bind(counter_to_sql(epoch.0))
        .execute(connection)
        .await?;
    Ok(())
}

/// The highest data term promised.
pub async fn promised(connection: &mut SqliteConnection) -> Result<Term, StorageError> {
    let promised: i64 = sqlx::query_scalar("SELECT promised FROM system_state WHERE id = 1")
        .fetch_one(connection)
        .await?;
    Ok(Term(counter_from_sql(promised)))
}

/// Raises the promise to `term` (never lowers it) and answers the promise now held.
pub async fn promise(connection: &mut SqliteConnection, term: Term) -> Result<Term, StorageError> {
    let promised: i64 = sqlx::query_scalar(
        "UPDATE system_state SET promised = MAX(promised, ?1) WHERE id = 1 RETURNING promised",
    )
    .bind(counter_to_sql(term.0))
    .fetch_one(connection)
    .await?;
    Ok(Term(counter_from_sql(promised)))
}
