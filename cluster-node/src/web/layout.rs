//! What every page shares: the layout's data, the rendering of a template into a response, and the error
//! page. A leaf of the web layer, so the middlewares can answer with a page without depending on the
//! page handlers.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::WebState;
use super::error::AppError;
use super::flash::Flash;
use super::session::SessionUser;

/// What the layout needs on every page.
pub(in crate::web) struct Layout {
    /// The page's own part of the title (`Weekend`); empty for the home page, whose title is "Chat".
    pub(in crate::web) title: String,
    pub(in crate::web) user: Option<SessionUser>,
    /// The nameservers' HTTP addresses, space-separated, the reachable ones first: where the script
    /// goes when this node stops answering.
    pub(in crate::web) nameserver: String,
    /// Unread messages over all conversations, shown as `(3)` in the title.
    pub(in crate::web) unread: u64,
    pub(in crate::web) body_class: &'static str,
    pub(in crate::web) flash: Flash,
}

/// The reachable nameservers first, each group in the configured order.
fn nameservers_in_order(links: &[super::NameserverLink]) -> String {
    let up =
        |link: &&super::NameserverLink| link.reachable.load(std::sync::atomic::Ordering::Relaxed);
    links
        .iter()
        .filter(up)
        .chain(links.iter().filter(|link| !up(link)))
        .map(|link| link.url.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Layout {
    pub(in crate::web) fn new(
        state: &WebState,
        title: impl Into<String>,
        user: Option<&SessionUser>,
    ) -> Self {
        Layout {
            title: title.into(),
            user: user.cloned(),
            nameserver: nameservers_in_order(&state.options.nameservers),
            unread: 0,
            body_class: "",
            flash: Flash::default(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html", config = "../templates/askama.toml")]
pub(in crate::web) struct ErrorPage {
    pub(in crate::web) layout: Layout,
    pub(in crate::web) status: u16,
    pub(in crate::web) message: String,
}

/// A page: never cached, as it embeds live state (epochs, unread counts) a stale copy would replay.
pub(in crate::web) fn render(status: StatusCode, template: &impl Template) -> Response {
    let mut response = match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "a template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()),
            )
                .into_response()
        }
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error as a small page (used by the middlewares outside any handler, so no state or user).
pub(in crate::web) fn error_page(error: &AppError) -> Response {
    let page = ErrorPage {
        layout: Layout {
            title: "Error".into(),
            user: None,
            nameserver: String::new(),
            unread: 0,
            body_class: "",
            flash: Flash::default(),
        },
        status: error.status().as_u16(),
        message: error.public_message(),
    };
    render(error.status(), &page)
}
