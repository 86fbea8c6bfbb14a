//! A group's statistics: its messages since a time, the most used words and each member's messages
//! per day, computed across the cluster's copies (see `crate::analytics`). Members only, like the
//! group's messages.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::analytics::{Query, QueryAnswer, QueryError, plan};
use crate::service::{ChatServiceExt, GetGroup};
use crate::storage::{Epoch, GroupId, UnixMillis, UserId, UserTag};

use super::super::WebState;
use super::super::error::{ApiQuery, AppError};
use super::super::openapi::ApiErrors;
use super::super::paths;
use super::super::session::ChatSession;
use super::super::views::rfc3339;
use super::reply;

pub(super) fn router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// How far back a query goes when it names no `since`.
const DEFAULT_SPAN_MS: i64 = 30 * DAY_MS;
const DAY_MS: i64 = 86_400_000;
/// The range length when none is asked: one UTC day.
const DEFAULT_RANGE_SECONDS: u32 = 86_400;

#[derive(Debug, Default, Deserialize)]
struct StatsParams {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    range: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct WordCountView {
    word: String,
    count: u64,
}

#[derive(Serialize, ToSchema)]
struct MemberDayView {
    user_id: UserId,
    username: String,
    tag: UserTag,
    /// `YYYY-MM-DD`, UTC.
    day: String,
    messages: u64,
}

/// Which node computed how many of the ranges, how many of those it had cached, and how many
/// messages they held.
#[derive(Serialize, ToSchema)]
struct ComputedByView {
    node: u64,
    ranges: usize,
    cached: usize,
    messages: u64,
}

#[derive(Serialize, ToSchema)]
struct StatsView {
    group: GroupId,
    /// The messages counted are those created from `since` up to and including `until` (now).
    /// RFC 3339, UTC.
    since: String,
    until: String,
    /// The length of one range of the computation.
    range_seconds: u32,
    /// Live messages of the group in `[since, until)`.
    messages: u64,
    /// The 20 most used words (lowercased, split on anything but letters and digits, stop words
    /// left out), most used first, ties alphabetically.
    top_words: Vec<WordCountView>,
    /// By day, then name.
    per_member_per_day: Vec<MemberDayView>,
    computed_by: Vec<ComputedByView>,
    /// Nodes that were asked for ranges but declined or did not answer (their ranges went to others).
    declined: Vec<u64>,
    /// Every range was read from a copy holding at least this epoch.
    #[schema(value_type = u64)]
    epoch: Epoch,
}

#[utoipa::path(
    get,
    operation_id = "groups_stats",
    path = "/api/groups/{id}/stats",
    tag = "groups",
    summary = "A group's statistics: messages, top words, messages per member per day (members only)",
    params(
        ("id" = String, Path, description = "The group's id"),
        ("since" = Option<String>, Query, description = "From this time: RFC 3339 (`2026-01-01T00:00:00Z`) or Unix seconds; default 30 days ago"),
        ("range" = Option<u32>, Query, minimum = 1, maximum = 86400, description = "Seconds per range of the computation (default 86400, one UTC day); at most 1,000 ranges per query")
    ),
    responses((status = 200, description = "The statistics, and which nodes computed them", body = StatsView), ApiErrors),
    security(("session" = []))
)]
async fn stats(
    State(state): State<WebState>,
    mut session: ChatSession,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, AppError> {
    let group = paths::group(&id)?;
    let now = UnixMillis::now();
    // Up to and including now: a message posted in this very millisecond counts.
    let until = UnixMillis(now.0.saturating_add(1));
    let since = parse_since(params.since.as_deref(), now)?;
    let range_seconds = parse_range(params.range.as_deref())?;
    let length = i64::from(range_seconds) * 1_000;
    plan::split(since, until, length).map_err(|error| AppError::BadRequest(error.to_string()))?;
    let Some(analytics) = state.analytics.clone() else {
        return Err(AppError::Unavailable {
            message: "this node does not compute statistics".into(),
            retry_after: Duration::from_secs(1),
        });
    };
    // The same answer as reading the group: 403 for a non-member, 404 for no such group.
    session
        .observed(
            state
                .service
                .get_group(session.context(), GetGroup { group }),
        )
        .await?;
    let epoch = analytics.epoch_for(session.epoch()).await;
    let query = Query {
        group,
        since,
        until,
        length,
        epoch,
    };
    let answer = analytics.run(&query).await.map_err(|error| match error {
        QueryError::Plan(error) => AppError::BadRequest(error.to_string()),
        QueryError::Unavailable(message) => AppError::Unavailable {
            message,
            retry_after: Duration::from_secs(1),
        },
    })?;
    session.observe(epoch).await?;
    Ok(reply(
        StatusCode::OK,
        epoch,
        view(&query, now, range_seconds, answer),
    ))
}

fn view(query: &Query, now: UnixMillis, range_seconds: u32, answer: QueryAnswer) -> StatsView {
    StatsView {
        group: query.group,
        since: rfc3339(query.since),
        until: rfc3339(now),
        range_seconds,
        messages: answer.stats.messages,
        top_words: answer
            .stats
            .top_words
            .into_iter()
            .map(|word| WordCountView {
                word: word.word,
                count: word.count,
            })
            .collect(),
        per_member_per_day: answer
            .stats
            .per_member_per_day
            .into_iter()
            .map(|count| MemberDayView {
                user_id: count.user_id,
                username: count.username,
                tag: count.tag,
                day: count.day.label(),
                messages: count.messages,
            })
            .collect(),
        computed_by: answer
            .computed_by
            .into_iter()
            .map(|(node, share)| ComputedByView {
                node: node.0,
                ranges: share.ranges,
                cached: share.cached,
                messages: share.messages,
            })
            .collect(),
        declined: answer.declined.into_keys().map(|node| node.0).collect(),
        epoch: query.epoch,
    }
}

/// `since` as written: RFC 3339, or Unix seconds; 30 days before `now` when absent or empty.
fn parse_since(text: Option<&str>, now: UnixMillis) -> Result<UnixMillis, AppError> {
    let text = text.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Ok(UnixMillis(now.0.saturating_sub(DEFAULT_SPAN_MS)));
    }
    let invalid = || {
        AppError::BadRequest(
            "since must be an RFC 3339 time (2026-01-01T00:00:00Z) or Unix seconds".into(),
        )
    };
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|seconds| seconds.checked_mul(1_000))
            .map(UnixMillis)
            .ok_or_else(invalid);
    }
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid())?;
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000))
        .map(UnixMillis)
        .map_err(|_| invalid())
}

/// `range` in seconds, 1–86400; a day when absent or empty.
fn parse_range(text: Option<&str>) -> Result<u32, AppError> {
    let text = text.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Ok(DEFAULT_RANGE_SECONDS);
    }
    text.parse::<u32>()
        .ok()
        .filter(|seconds| (1..=DEFAULT_RANGE_SECONDS).contains(seconds))
        .ok_or_else(|| AppError::BadRequest("range must be a number of seconds, 1–86400".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_767_225_600_000); // 2026-01-01T00:00:00Z

    #[test]
    fn since_defaults_to_thirty_days_ago() {
        assert_eq!(parse_since(None, NOW), Ok(UnixMillis(NOW.0 - 30 * DAY_MS)));
        assert_eq!(
            parse_since(Some(" "), NOW),
            Ok(UnixMillis(NOW.0 - 30 * DAY_MS))
        );
    }

    #[test]
    fn since_is_rfc_3339_with_any_offset_or_unix_seconds() {
        assert_eq!(parse_since(Some("2026-01-01T00:00:00Z"), NOW), Ok(NOW));
        assert_eq!(
            parse_since(Some("2026-01-01T02:00:00.250+02:00"), NOW),
            Ok(UnixMillis(NOW.0 + 250))
        );
        assert_eq!(parse_since(Some("1767225600"), NOW), Ok(NOW));
        assert_eq!(parse_since(Some("-1"), NOW), Ok(UnixMillis(-1_000)));
    }

    #[test]
    fn anything_else_is_a_bad_since() {
        for bad in [
            "yesterday",
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "1.5",
            "99999999999999999999",
            "9223372036854775807",
            "-",
            "+5",
        ] {
            assert!(
                matches!(parse_since(Some(bad), NOW), Err(AppError::BadRequest(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn range_is_one_second_to_one_day() {
        assert_eq!(parse_range(None), Ok(86_400));
        assert_eq!(parse_range(Some("1")), Ok(1));
        assert_eq!(parse_range(Some("3600")), Ok(3_600));
        for bad in ["0", "86401", "-1", "1h", "1.5"] {
            assert!(parse_range(Some(bad)).is_err(), "{bad:?} was accepted");
        }
    }
}
