//! For the machines that watch fjord: `/metrics` (Prometheus' text format, with an API token
//! of someone who may see the servers: the figures name every site) and `/healthz` (no
//! token: it tells only whether fjord can work).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::session::ApiUser;
use crate::{AppState, WebError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
}

async fn metrics(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> Result<Response, WebError> {
    let text = state.run(move |f| f.acting(actor).metrics()).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// 200 while the state answers and a dispatcher is alive; 503, saying which is wrong, when
/// not.
async fn healthz(State(state): State<AppState>) -> Response {
    let (status, body) = match state.run(|f| f.health()).await {
        Ok(h) if h.dispatcher_up => (
            StatusCode::OK,
            serde_json::json!({"status": "ok", "state": "ok", "dispatcher": "up"}),
        ),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "state": "ok", "dispatcher": "down",
                "message": "no dispatcher is running: queued tasks wait"}),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "state": "failed",
                "message": e.message}),
        ),
    };
    (status, axum::Json(body)).into_response()
}
