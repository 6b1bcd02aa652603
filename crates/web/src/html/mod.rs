//! The panel: server-rendered pages that work without JavaScript. Each handler reads its
//! input, calls `engine::acting` as the signed-in user, and renders a template; a change is a
//! POST with the session's CSRF token, answered by a redirect to what it made.

mod account;
mod charts;
mod objects;
mod people;
mod sites;
mod tasks;

pub use sites::{ListQuery, site_query};
pub use tasks::task_status;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use model::{Action, Actor};

use crate::session::Viewer;
use crate::{AppState, WebError};

/// What every page's frame needs: who is signed in, the CSRF token for its forms, and which
/// sections the role may open.
pub struct Ctx {
    pub signed_in: bool,
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub section: &'static str,
    pub nav: Nav,
    /// A banner over the page (the disk guard holding task claims back).
    pub notice: Option<String>,
}

pub struct Nav {
    pub servers: bool,
    pub platforms: bool,
    pub tasks: bool,
    pub clients: bool,
    pub users: bool,
}

impl Ctx {
    pub fn new(viewer: &Viewer, section: &'static str) -> Ctx {
        let actor = viewer.actor();
        Ctx {
            signed_in: true,
            user: actor.name.clone(),
            role: actor.role.title().to_string(),
            csrf: viewer.session.csrf.clone(),
            section,
            nav: Nav::for_actor(&actor),
            notice: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Ctx {
        self.notice = notice;
        self
    }

    /// The frame of a page for someone not signed in (login, errors before sign-in).
    pub fn anonymous() -> Ctx {
        Ctx {
            signed_in: false,
            user: String::new(),
            role: String::new(),
            csrf: String::new(),
            section: "",
            nav: Nav {
                servers: false,
                platforms: false,
                tasks: false,
                clients: false,
                users: false,
            },
            notice: None,
        }
    }
}

impl Nav {
    fn for_actor(actor: &Actor) -> Nav {
        Nav {
            servers: actor.may(Action::ViewServers),
            platforms: actor.may(Action::ViewPlatforms),
            tasks: actor.may(Action::ViewTasks),
            clients: actor.may(Action::ViewClients),
            users: actor.may(Action::ViewUsers),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    ctx: Ctx,
    status: u16,
    title: String,
    message: String,
}

/// A failure shown as a page, with the status the API would answer.
pub struct PageError(pub WebError);

impl From<WebError> for PageError {
    fn from(e: WebError) -> PageError {
        PageError(e)
    }
}

impl From<engine::Error> for PageError {
    fn from(e: engine::Error) -> PageError {
        PageError(e.into())
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> PageError {
        PageError(WebError::internal(format!("a template failed: {e}")))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        let page = ErrorPage {
            ctx: Ctx::anonymous(),
            status: e.status.as_u16(),
            title: e.status.canonical_reason().unwrap_or("Error").to_string(),
            message: e.message.clone(),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{}: {}", page.status, page.message));
        let mut response = (e.status, Html(body)).into_response();
        e.headers(&mut response);
        response
    }
}

pub type PageResult = Result<Response, PageError>;

/// The form of a button: nothing but its CSRF token, which `Posted` checks.
#[derive(serde::Deserialize)]
pub struct NoFields {}

/// Renders a page.
pub fn page(t: impl Template) -> PageResult {
    Ok(Html(t.render()?).into_response())
}

/// Renders a form again with its errors, with the status the API would answer.
pub fn page_with_status(status: StatusCode, t: impl Template) -> PageResult {
    Ok((status, Html(t.render()?)).into_response())
}

/// After a change: where to look at its result.
pub fn see(path: &str) -> PageResult {
    Ok(Redirect::to(path).into_response())
}

/// After queueing a task: its page, where its log streams.
pub fn see_task(q: &engine::ops::Queued) -> PageResult {
    match &q.task {
        Some(t) => see(&format!("/tasks/{}", t.id)),
        None => see("/tasks"),
    }
}

/// The error of a form, for its field (engine fields are named as the CLI names them).
#[derive(Default)]
pub struct FormErrors {
    pub field: Option<String>,
    pub message: Option<String>,
    /// The status the page answers with (what the API would).
    pub status: Option<StatusCode>,
}

/// Whether a failure belongs beside the form that caused it (a value breaking a rule, a state
/// that does not allow it), rather than on an error page (not signed in, not allowed, not
/// found: the form itself is not the actor's to use).
pub fn is_form_error(e: &WebError) -> bool {
    matches!(
        e.status,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT | StatusCode::BAD_REQUEST
    )
}

impl FormErrors {
    pub fn from(e: &WebError) -> FormErrors {
        FormErrors {
            field: e.field.map(str::to_string),
            message: Some(e.message.clone()),
            status: Some(e.status),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(StatusCode::OK)
    }

    /// The message, if it belongs beside one of these fields.
    pub fn at(&self, fields: &[&str]) -> Option<&str> {
        let field = self.field.as_deref()?;
        fields
            .contains(&field)
            .then_some(self.message.as_deref())
            .flatten()
    }

    /// The message, if it belongs to none of these fields (shown above the form).
    pub fn general(&self, fields: &[&str]) -> Option<&str> {
        match self.field.as_deref() {
            Some(f) if fields.contains(&f) => None,
            _ => self.message.as_deref(),
        }
    }
}

const STYLE: &str = include_str!("../../assets/style.css");
const SCRIPT: &str = include_str!("../../assets/app.js");
const ICON: &str = include_str!("../../assets/icon.svg");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Headers on every page: only fjord's own scripts and styles run, nothing frames the panel,
/// and no address (a login link's) leaks to another site as a referrer.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(account::routes())
        .merge(sites::routes())
        .merge(objects::routes())
        .merge(people::routes())
        .merge(tasks::routes())
        .route(
            "/assets/style.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/icon.svg",
            get(|| async { asset(ICON, "image/svg+xml") }),
        )
        .fallback(|| async {
            PageError(WebError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "there is no such page",
            ))
        })
        .layer(axum::middleware::from_fn(security_headers))
}
