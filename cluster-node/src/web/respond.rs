//! How every JSON answer goes out: the body, the status and the epoch of the answer in `X-Chat-Epoch`.
//! A leaf module, shared by the API routers and the event stream.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::storage::Epoch;

use super::EPOCH_HEADER;

/// `body` as JSON with `status` and the answer's epoch in `X-Chat-Epoch`.
pub(in crate::web) fn reply(status: StatusCode, epoch: Epoch, body: impl Serialize) -> Response {
    with_epoch(epoch, (status, axum::Json(body)).into_response())
}

/// A JSON body already serialized, with `status` and the answer's epoch.
pub(in crate::web) fn reply_json(status: StatusCode, epoch: Epoch, json: Vec<u8>) -> Response {
    let headers = [(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    with_epoch(epoch, (status, headers, json).into_response())
}

/// 204 with the answer's epoch.
pub(in crate::web) fn no_content(epoch: Epoch) -> Response {
    with_epoch(epoch, StatusCode::NO_CONTENT.into_response())
}

pub(in crate::web) fn with_epoch(epoch: Epoch, mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(EPOCH_HEADER, HeaderValue::from(epoch.0));
    response
}
