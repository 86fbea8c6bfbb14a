//! A copy's side of a query: the ranges it was asked for, mapped from its own SQLite copy (or taken
//! from its cache) and added up into one [`Partial`], or a clear refusal when this copy may not answer.
//!
//! A copy answers only what a read would let it answer (DESIGN §4): its copy must be confirmed by
//! the current writer (`copy_confirmed`, as reads require), and it must hold at least the epoch the
//! query is answered at. A copy a little behind waits up to `catch_up` for the log to reach that
//! epoch (learners apply within milliseconds of the writer) before it declines. Every range is read
//! in one read transaction, so the answer is one snapshot, taken at the epoch it reports.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::NodeId;
use crate::context::DatabaseSlot;
use crate::status::StatusBoard;
use crate::storage::stats::{messages_in_range, range_version};
use crate::storage::{Epoch, GroupId, StorageError, system};

use super::cache::RangeCache;
use super::plan::TimeRange;
use super::reduce::Partial;

/// What a node is asked to map (`POST /stats/map` on its admin port, or the asking node itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapRequest {
    /// Unique per request: two requests never carry the same proof (the admin port accepts a proof
    /// once).
    pub request: uuid::Uuid,
    pub group: GroupId,
    /// The epoch the query is answered at: the copy must hold at least this.
    pub epoch: Epoch,
    /// The query's range length in ms (whole ranges of this length are cached).
    pub length: i64,
    pub ranges: Vec<TimeRange>,
}

/// A copy's answer: the sum over the ranges it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapAnswer {
    pub node: NodeId,
    /// The epoch of the snapshot the ranges were read from (at least the one asked for).
    pub epoch: Epoch,
    pub ranges: usize,
    /// How many of them came from this copy's cache.
    pub cached: usize,
    pub partial: Partial,
}

/// Why a copy does not answer. Each renders as one line for the asking node's log and the admin
/// port's error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Declined {
    #[error("node {node} keeps no copy of the data now")]
    NoCopy { node: NodeId },
    #[error("node {node}'s copy is not confirmed by the current writer")]
    Unconfirmed { node: NodeId },
    #[error("node {node} holds epoch {}, the query is answered at {}", have.0, wanted.0)]
    Behind {
        node: NodeId,
        have: Epoch,
        wanted: Epoch,
    },
    #[error("node {node} could not read its copy: {reason}")]
    Failed { node: NodeId, reason: String },
}

/// Maps ranges from this node's copy; shared by the admin endpoint and the asking side of the same
/// node, so both use one cache.
#[derive(Clone)]
pub struct Mapper {
    pub me: NodeId,
    database: DatabaseSlot,
    status: StatusBoard,
    cache: Arc<Mutex<RangeCache>>,
    catch_up: Duration,
}

/// How long a copy behind the query's epoch waits for its log to catch up before it declines.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_millis(500);

impl Mapper {
    pub fn new(
        me: NodeId,
        database: DatabaseSlot,
        status: StatusBoard,
        cache_capacity: usize,
        catch_up: Duration,
    ) -> Self {
        Mapper {
            me,
            database,
            status,
            cache: Arc::new(Mutex::new(RangeCache::new(cache_capacity))),
            catch_up,
        }
    }

    /// A mapper over `database` as a confirmed copy of node 1 (a node alone, in tests).
    #[cfg(test)]
    pub fn standalone(database: crate::storage::Database) -> Self {
        let slot = DatabaseSlot::default();
        slot.set(Some(database), "writer");
        let status = StatusBoard::new(crate::status::NodeStatus::starting(NodeId(1)));
        status.update(|status| status.copy_confirmed = true);
        Mapper::new(NodeId(1), slot, status, 64, Duration::from_millis(50))
    }

    /// The epoch this copy holds if it may answer reads now (confirmed by the writer), else `None`.
    pub async fn confirmed_epoch(&self) -> Option<Epoch> {
        if !self.status.snapshot().copy_confirmed {
            return None;
        }
        let (database, _) = self.database.get()?;
        database.epoch().await.ok()
    }

    /// Maps `request`'s ranges, or says why this copy does not.
    #[tracing::instrument(name = "stats_map", skip_all, fields(node = %self.me, group = %request.group, ranges = request.ranges.len(), epoch = request.epoch.0))]
    pub async fn map(&self, request: &MapRequest) -> Result<MapAnswer, Declined> {
        let node = self.me;
        if !self.status.snapshot().copy_confirmed {
            return Err(Declined::Unconfirmed { node });
        }
        let Some((database, _)) = self.database.get() else {
            return Err(Declined::NoCopy { node });
        };
        let failed = |error: StorageError| Declined::Failed {
            node,
            reason: error.to_string(),
        };
        let have = database.epoch().await.map_err(failed)?;
        if have < request.epoch {
            self.wait_for(request.epoch).await;
        }
        let mut transaction = database
            .pool()
            .begin()
            .await
            .map_err(|error| failed(error.into()))?;
        let (_, epoch) = system::position(&mut transaction).await.map_err(failed)?;
        if epoch < request.epoch {
            return Err(Declined::Behind {
                node,
                have: epoch,
                wanted: request.epoch,
            });
        }
        let mut sum = Partial::default();
        let mut cached = 0;
        for range in &request.ranges {
            let version = range_version(&mut transaction, request.group, range.start, range.end)
                .await
                .map_err(failed)?;
            let whole = range.is_whole(request.length);
            let hit = if whole {
                self.lock_cache().get(request.group, *range, &version)
            } else {
                None
            };
            let partial = match hit {
                Some(partial) => {
                    cached += 1;
                    partial
                }
                None => {
                    let messages =
                        messages_in_range(&mut transaction, request.group, range.start, range.end)
                            .await
                            .map_err(failed)?;
                    let partial = Arc::new(Partial::of_messages(&messages));
                    if whole {
                        self.lock_cache()
                            .put(request.group, *range, version, partial.clone());
                    }
                    partial
                }
            };
            sum.add(&partial);
        }
        // Read only: ending it either way releases the snapshot.
        let _ = transaction.rollback().await;
        tracing::debug!(cached, messages = sum.messages, "ranges mapped");
        Ok(MapAnswer {
            node,
            epoch,
            ranges: request.ranges.len(),
            cached,
            partial: sum,
        })
    }

    /// Waits (at most `catch_up`) until the node reports holding `epoch`.
    async fn wait_for(&self, epoch: Epoch) {
        let mut status = self.status.subscribe();
        let _ = tokio::time::timeout(
            self.catch_up,
            status.wait_for(|now| now.data_epoch >= epoch.0),
        )
        .await;
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, RangeCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
