//! Search over the messages of the caller's chats, newest first, with the matching words marked.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::search::SearchQuery;
use crate::service::{ChatServiceExt, Search};

use super::super::WebState;
use super::super::error::{ApiQuery, AppError};
use super::super::openapi::ApiErrors;
use super::super::session::ChatSession;
use super::super::views::MessageView;
use super::{PageQuery, reply};

pub(super) fn router() -> OpenApiRouter<WebState> {
    OpenApiRouter::new().routes(routes!(search))
}

#[derive(Debug, Default, Deserialize)]
struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(flatten)]
    page: PageQuery,
}

/// A run of a result's text; `mark` when it matched.
#[derive(Serialize, ToSchema)]
struct Run {
    text: String,
    mark: bool,
}

#[derive(Serialize, ToSchema)]
struct Hit {
    message: MessageView,
    highlighted: Vec<Run>,
}

#[derive(Serialize, ToSchema)]
struct Results {
    results: Vec<Hit>,
}

#[utoipa::path(
    get,
    operation_id = "search_search",
    path = "/api/search",
    tag = "search",
    summary = "Messages of the caller's chats matching every word, newest first",
    params(("q" = String, Query, description = "Words; each must start a word of a message (at most 8 words, 200 characters)"), ("before" = Option<u64>, Query, description = "Only results older than this epoch"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "How many (default 50)")),
    responses((status = 200, description = "The results with the matching words marked", body = Results), ApiErrors),
    security(("session" = []))
)]
async fn search(
    State(state): State<WebState>,
    mut session: ChatSession,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Response, AppError> {
    let (before, limit) = params.page.parse()?;
    // Parsed here too (the service checks it again) to mark the results the same way they matched.
    let query = SearchQuery::parse(&params.q)?;
    let answer = session
        .observed(state.service.search(
            session.context(),
            Search {
                query: params.q,
                before,
                limit,
            },
        ))
        .await?;
    let results = answer
        .value
        .iter()
        .map(|message| Hit {
            highlighted: query
                .highlight(&message.content)
                .into_iter()
                .map(|(text, mark)| Run { text, mark })
                .collect(),
            message: MessageView::from(message),
        })
        .collect();
    Ok(reply(StatusCode::OK, answer.epoch, Results { results }))
}
