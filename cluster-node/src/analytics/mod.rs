//! Chat statistics of a group (messages, top words, messages per member per day), computed
//! MapReduce-style across the cluster's copies of the data.
//!
//! ```text
//!   GET /api/groups/{id}/stats  (input node: membership checked, epoch E = max(client's, own copy's))
//!        │ plan: [since, until) ─► aligned time ranges (a UTC day each by default)
//!        │ ring: (group, range slot) ─► preference list of nodes, virtual nodes, SHA-256
//!        ▼
//!   fan-out (fanout.rs): each node gets its ranges ── POST /stats/map (admin port, signed) ──┐
//!        ▲                                            or the asking node maps its own share   │
//!        │ 409/503/timeout: ranges move to their next node on the ring                        ▼
//!        │                                                  copy (map.rs): confirmed? holds E?
//!        │ partials                                           per range: version == cached? ─► cache
//!        └──────────────────────────────────────────────────  else rows ─► words, member days
//!   reduce: counts summed, top 20 words after the sum ─► JSON with computed_by and E
//! ```
//!
//! | file | what it holds |
//! | --- | --- |
//! | `words.rs` | the tokenizer and the stop words (pure) |
//! | `ring.rs` | the consistent-hash ring (pure) |
//! | `plan.rs` | the split into ranges and the assignment of ranges to nodes (pure) |
//! | `reduce.rs` | a range's messages mapped to a partial, partials added, the final reduce (pure) |
//! | `cache.rs` | a copy's cache of mapped ranges, and why a hit is correct |
//! | `map.rs` | a copy's side: freshness checks, one read transaction, the cache |
//! | `endpoint.rs` | `POST /stats/map` on the admin port |
//! | `fanout.rs` | the asking node's side: listing the nodes, fan-out, reassignment, reduce |

pub mod cache;
pub mod endpoint;
pub mod fanout;
pub mod map;
pub mod plan;
pub mod reduce;
pub mod ring;
pub mod words;

#[cfg(test)]
mod tests;

pub use fanout::{Analytics, AnalyticsOptions, Query, QueryAnswer, QueryError, Share};
pub use map::{MapAnswer, MapRequest, Mapper};
pub use plan::TimeRange;
