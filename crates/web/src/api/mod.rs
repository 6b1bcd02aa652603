//! The JSON API under `/api/v1`: the panel's operations for scripts, authenticated by a
//! per-user token (`Authorization: Bearer fjord_…`). No cookie is read here, so no request
//! another site makes a browser send can act through it.
//!
//! Each handler carries its OpenAPI description (`utoipa::path`); the document at
//! `/api/v1/openapi.json` is collected from them, so it cannot drift from the routes.

mod objects;
mod people;
mod sites;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{RefOr, Response as DocResponse, ResponseBuilder, content::ContentBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::views::TaskView;
use crate::{AppState, WebError};

pub const PREFIX: &str = "/api/v1";

pub type ApiResult<T> = Result<Json<T>, WebError>;

/// A JSON body, refused in the API's error shape when it cannot be read.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(WebError::bad_request(e.body_text())),
        }
    }
}

/// A query string, refused in the API's error shape when it cannot be read.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Params(q.0)),
            Err(e) => Err(WebError::bad_request(e.body_text())),
        }
    }
}

/// Path segments, refused in the API's error shape when they cannot be read (an id that is
/// not a number).
pub struct Segments<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Segments<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(Segments(p.0)),
            Err(e) => Err(WebError::bad_request(e.body_text())),
        }
    }
}

/// The refusals every endpoint may answer, each with the error body.
pub struct Refusals;

impl utoipa::IntoResponses for Refusals {
    fn responses() -> std::collections::BTreeMap<String, RefOr<DocResponse>> {
        [
            ("400", "The request cannot be read"),
            ("401", "No valid API token"),
            ("403", "The token's user may not do this"),
            ("404", "No such object, or one the token's user may not see"),
            ("409", "The object's state does not allow it"),
            ("422", "A value breaks a rule; `field` names it"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorBody",
                        ))))
                        .build(),
                )
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
    }
}

/// What queueing a task answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QueuedView {
    /// The task queued; none when nothing needed doing.
    pub task: Option<TaskView>,
}

pub fn queued(q: engine::ops::Queued) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(QueuedView {
            task: q.task.as_ref().map(TaskView::new),
        }),
    )
        .into_response()
}

struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "token",
            Vec::<String>::new(),
        )]);
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "fjord API",
        description = "Servers, platforms, sites, clients, users and tasks of a fjord \
                       installation. Every change queues a task; follow it under /tasks.",
        version = "1"
    ),
    modifiers(&BearerToken),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The API's routes and its OpenAPI document, both from the same handlers.
pub fn routes() -> Router<AppState> {
    let (router, mut doc) = OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(sites::me))
        .routes(routes!(sites::sites, sites::add_site))
        .routes(routes!(sites::site))
        .routes(routes!(sites::site_task))
        .routes(routes!(sites::backups))
        .routes(routes!(sites::logs))
        .routes(routes!(sites::restore))
        .routes(routes!(sites::clone))
        .routes(routes!(sites::migrate))
        .routes(routes!(sites::migrate_check))
        .routes(routes!(sites::login_link))
        .routes(routes!(sites::edit_names))
        .routes(routes!(objects::platforms, objects::add_platform))
        .routes(routes!(objects::platform))
        .routes(routes!(objects::verify_platform))
        .routes(routes!(objects::platform_upload_limit))
        .routes(routes!(objects::servers, objects::add_server))
        .routes(routes!(objects::server))
        .routes(routes!(objects::server_events))
        .routes(routes!(objects::backup_targets))
        .routes(routes!(objects::verify_server))
        .routes(routes!(objects::edit_server))
        .routes(routes!(objects::tasks))
        .routes(routes!(objects::claims))
        .routes(routes!(objects::task))
        .routes(routes!(objects::task_log))
        .routes(routes!(objects::retry_task))
        .routes(routes!(objects::cancel_task))
        .routes(routes!(people::clients, people::add_client))
        .routes(routes!(people::client, people::update_client))
        .routes(routes!(people::users, people::add_user))
        .routes(routes!(
            people::user,
            people::update_user,
            people::delete_user
        ))
        .routes(routes!(people::tokens, people::create_token))
        .routes(routes!(people::revoke_token))
        .split_for_parts();
    doc.servers = Some(vec![utoipa::openapi::Server::new(PREFIX)]);
    let spec = std::sync::Arc::new(doc);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { Json((*spec).clone()) }
            }),
        )
        .fallback(|| async { WebError::not_found("API endpoint") })
}
