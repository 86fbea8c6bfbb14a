//! Search over the messages of the caller's chats, newest first, with the matching words marked.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::service::search::SearchQuery;
use crate::service::{ChatServiceExt, Search};

use super::super::WebState;
use super::super::error::{ApiQuery, AppError};
use super::super::session::ChatSession;
use super::super::views::MessageView;
use super::{PageQuery, reply};

pub(super) fn router() -> Router<WebState> {
    Router::new().route("/api/search", get(search))
}

#[derive(Debug, Default, Deserialize)]
struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(flatten)]
    page: PageQuery,
}

/// A run of a result's text; `mark` when it matched.
#[derive(Serialize)]
struct Run {
    text: String,
    mark: bool,
}

#[derive(Serialize)]
struct Hit {
    message: MessageView,
    highlighted: Vec<Run>,
}

#[derive(Serialize)]
struct Results {
    results: Vec<Hit>,
}

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
