//! The one mapping of failures to HTTP: each engine error kind has one status and a stable
//! code. The API answers with a JSON body `{"error": {"code", "message", "field"}}`; the panel
//! renders the same message in a page (`html::PageError`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::Error;
use serde::Serialize;

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The input field at fault, for a form to show the message beside it.
    pub field: Option<&'static str>,
    pub retry_after_s: Option<u64>,
}

/// What the API answers when it refuses.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable: scripts may match on it (invalid, not_found, refused, conflict, forbidden,
    /// unauthenticated, throttled, csrf, bad_request).
    pub code: String,
    pub message: String,
    /// The input field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl WebError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> WebError {
        WebError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_s: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> WebError {
        let message = message.into();
        tracing::error!("internal error: {message}");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "fjord failed to answer; the server's log says why",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthenticated() -> WebError {
        WebError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: give an API token as `Authorization: Bearer fjord_…`",
        )
    }

    pub fn csrf() -> WebError {
        WebError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this form is stale or was sent from another site: reload the page and try again",
        )
    }

    pub fn not_found(what: &str) -> WebError {
        WebError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.map(str::to_string),
            },
        }
    }

    pub fn headers(&self, response: &mut Response) {
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
}

/// The status of each kind of failure, in one place.
fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Refused(_) | Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Host(_) | Error::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for WebError {
    fn from(e: Error) -> WebError {
        let status = status_of(&e);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return WebError::internal(e.to_string());
        }
        WebError {
            status,
            code: e.code(),
            field: match &e {
                Error::Invalid(i) => Some(i.field),
                _ => None,
            },
            retry_after_s: match &e {
                Error::Throttled { retry_after_s } => Some(*retry_after_s),
                _ => None,
            },
            message: e.to_string(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        self.headers(&mut response);
        response
    }
}
