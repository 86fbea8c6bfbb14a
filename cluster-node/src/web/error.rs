//! The web layer's one error type, [`AppError`], and the extractors whose rejections it replaces so that
//! every API error is `{"error": "..."}` with the status DESIGN §6 prescribes.
//!
//! Cluster conditions (timeouts, no writer, a stale replica) are 503 with `Retry-After`, never 500; user
//! errors are 4xx with a message that says what to fix; anything else is an opaque 500 whose detail goes
//! to the log only.

use std::time::Duration;

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::service::ServiceError;

/// Why a request failed, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed or breaks a validation rule.
    #[error("{0}")]
    BadRequest(String),
    /// 401: nobody is signed in, or the credentials are wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: signed in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over [`super::MAX_BODY_BYTES`].
    #[error("request body is larger than 64 KiB")]
    PayloadTooLarge,
    /// 429 with `Retry-After`.
    #[error("too many attempts, retry in {} s", seconds(*retry_after))]
    TooManyRequests { retry_after: Duration },
    /// 503 with `Retry-After`: the node or the cluster cannot serve this now.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Duration,
    },
    /// 500; the detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

/// Whole seconds for `Retry-After`, at least one. Saturating: the duration may come from a peer's
/// answer (`ServiceError::Unavailable` travels on the data plane).
pub(crate) fn seconds(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
        .max(1)
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Retry-After` this error asks for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AppError::TooManyRequests { retry_after }
            | AppError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// What the client is told; an internal error's detail stays in the log.
    pub fn public_message(&self) -> String {
        self.to_string()
    }

    pub(crate) fn unauthenticated() -> Self {
        AppError::Unauthenticated("not logged in".into())
    }

    pub(crate) fn wrong_credentials() -> Self {
        AppError::Unauthenticated("wrong username, tag or password".into())
    }

    /// Adds the headers of this error (`Retry-After`) to `response`.
    pub(crate) fn decorate(&self, response: &mut Response) {
        if let Some(retry_after) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds(retry_after)));
        }
    }

    fn log(&self) {
        if let AppError::Internal(detail) = self {
            tracing::error!(%detail, "request failed with an internal error");
        }
    }
}

impl From<ServiceError> for AppError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid(message) => AppError::BadRequest(message),
            ServiceError::Unauthenticated => AppError::unauthenticated(),
            ServiceError::Forbidden(message) => AppError::Forbidden(message),
            ServiceError::NotFound(resource) => AppError::NotFound(format!("{resource} not found")),
            ServiceError::Conflict(message) => AppError::Conflict(message),
            ServiceError::Unavailable { retry_after } => AppError::Unavailable {
                message: "the cluster cannot serve this now, retry later".into(),
                retry_after,
            },
            ServiceError::Timeout => AppError::Unavailable {
                message: "the request timed out, retry later".into(),
                retry_after: Duration::from_secs(1),
            },
            ServiceError::ReadOnly | ServiceError::Stale { .. } => AppError::Unavailable {
                message: "no node can answer this now, retry later".into(),
                retry_after: Duration::from_secs(1),
            },
            ServiceError::Internal(detail) => AppError::Internal(detail),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let body = axum::Json(serde_json::json!({ "error": self.public_message() }));
        let mut response = (self.status(), body).into_response();
        self.decorate(&mut response);
        response
    }
}

fn body_rejection(status: StatusCode, detail: String) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge
    } else {
        AppError::BadRequest(detail)
    }
}

/// `Json<T>` whose rejections are [`AppError`]s: 413 for a body over the limit, 400 for anything else
/// (missing content type, malformed JSON, missing or mistyped fields).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    let detail = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "expected a JSON body (Content-Type: application/json)".to_owned()
        }
        JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".to_owned(),
        JsonRejection::JsonDataError(error) => format!("invalid request: {}", error.body_text()),
        other => other.body_text(),
    };
    body_rejection(rejection.status(), detail)
}

/// `Query<T>` with 400 `{"error"}` for bad parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| {
                AppError::BadRequest(format!("invalid query: {}", rejection.body_text()))
            })
    }
}

/// `Form<T>` for page forms, with the same mapping as [`ApiJson`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PageForm<T>(pub T);

impl<T, S> FromRequest<S> for PageForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(PageForm(value)),
            Err(rejection) => {
                let status = rejection.status();
                let detail = match rejection {
                    FormRejection::FailedToDeserializeForm(_)
                    | FormRejection::FailedToDeserializeFormBody(_) => {
                        "the form is incomplete".to_owned()
                    }
                    other => other.body_text(),
                };
                Err(body_rejection(status, detail))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::ZERO), 1);
        assert_eq!(seconds(Duration::from_secs(2)), 2);
        assert_eq!(seconds(Duration::from_millis(2500)), 3);
        assert_eq!(seconds(Duration::new(u64::MAX, 1)), u64::MAX);
    }

    #[test]
    fn a_peers_answer_with_the_longest_retry_after_becomes_a_503_without_overflow() {
        // The data_frame fuzz target's regression input: an `unavailable` answer whose `retry_after`
        // is u64::MAX s and 1 ns overflowed while being rounded up to whole seconds.
        let bytes = include_bytes!("../../../fuzz/regressions/data_frame/retry-after-overflow");
        let envelope = crate::data::message::decode(bytes).expect("a well-formed data message");
        let crate::data::DataMessage::Response {
            result: Err(error), ..
        } = envelope.body
        else {
            panic!("not an error answer: {:?}", envelope.body);
        };
        let response = AppError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::RETRY_AFTER],
            u64::MAX.to_string().as_str()
        );
    }

    #[test]
    fn cluster_conditions_are_503_and_internal_errors_hide_their_detail() {
        for error in [
            ServiceError::Timeout,
            ServiceError::ReadOnly,
            ServiceError::Stale { wanted: 2, have: 1 },
            ServiceError::Unavailable {
                retry_after: Duration::from_secs(3),
            },
        ] {
            let error = AppError::from(error);
            assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(error.retry_after().is_some());
        }
        let internal = AppError::from(ServiceError::Internal("disk on fire".into()));
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.public_message().contains("disk"));
    }
}
