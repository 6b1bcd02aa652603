//! Who is asking: the panel's session cookie (with its CSRF token for every change) or the
//! API's bearer token.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use engine::auth::Session;
use model::Actor;
use serde::de::DeserializeOwned;

use crate::{AppState, WebError};

pub const COOKIE: &str = "fjord_session";
/// The most a form may send: site forms are small; an archive never comes this way.
const FORM_LIMIT: usize = 64 * 1024;

/// The session id in the request's cookie, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The `Set-Cookie` value of a new session: the browser's scripts never see it, other sites'
/// requests never carry it on a POST, and over https it travels only encrypted.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A request another site made the browser send: refused for every change, whatever the
/// cookie says. Browsers mark them (`Sec-Fetch-Site`, `Origin`); a request without either is
/// from a script or an old browser and is held to the CSRF token alone.
pub fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "cross-site";
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
            origin_host != host
        }
        _ => false,
    }
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A signed-in person looking at the panel. Without a session, a page redirects to the login
/// form (and comes back after).
#[derive(Clone)]
pub struct Viewer {
    pub session: Session,
    pub token: String,
}

impl Viewer {
    pub fn actor(&self) -> Actor {
        self.session.actor()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || {
            let back = parts.uri.path();
            let next = if parts.method == Method::GET && back != "/" {
                format!("?next={}", encode_path(back))
            } else {
                String::new()
            };
            Redirect::to(&format!("/login{next}")).into_response()
        };
        let Some(token) = session_token(&parts.headers) else {
            return Err(to_login());
        };
        let lookup = token.clone();
        match state.run(move |f| f.session(&lookup)).await {
            Ok(Some(session)) => Ok(Viewer { session, token }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(crate::html::PageError::from(e).into_response()),
        }
    }
}

/// Keeps a path safe in a query string (and safe to redirect to: it must stay on this site).
pub fn encode_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether `target` is a path on this site that a `Location` header can carry as it is.
/// Browsers drop tabs and newlines from a URL and read `\\` as `/` before they resolve it
/// (`/\t/evil.example` becomes `//evil.example`, another origin), and a header value cannot
/// hold a control character or a non-ASCII byte; so only printable ASCII is accepted, one
/// leading `/`, and no backslash anywhere.
pub fn same_origin_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.starts_with("//")
        && target.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

/// A form posted by a signed-in person, with a valid CSRF token, from this site.
pub struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        if cross_site(&parts.headers) {
            return Err(crate::html::PageError::from(WebError::csrf()).into_response());
        }
        let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
            crate::html::PageError::from(WebError::bad_request(format!(
                "the form is larger than {FORM_LIMIT} bytes"
            )))
            .into_response()
        })?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or(CsrfField {
            csrf: String::new(),
        });
        if !same_secret(&field.csrf, &viewer.session.csrf) {
            return Err(crate::html::PageError::from(WebError::csrf()).into_response());
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            crate::html::PageError::from(WebError::bad_request(format!(
                "the form cannot be read: {e}"
            )))
            .into_response()
        })?;
        Ok(Posted { viewer, form })
    }
}

/// The owner of the API token a request carries.
pub struct ApiUser(pub Actor);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or_else(WebError::unauthenticated)?;
        match state.run(move |f| f.token_user(&presented)).await? {
            Some(user) => Ok(ApiUser(user.actor())),
            None => Err(WebError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "this API token is not valid: it was revoked, or never existed",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_site_requests_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h));
        h.insert(header::HOST, "127.0.0.1:8470".parse().unwrap());
        h.insert(header::ORIGIN, "http://127.0.0.1:8470".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(cross_site(&h));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(cross_site(&h));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; fjord_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_token(&h).as_deref(), Some("abc"));
        assert!(session_cookie("x", true).contains("Secure"));
        assert!(session_cookie("x", false).contains("HttpOnly; SameSite=Lax"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn only_a_path_on_this_site_is_a_place_to_return_to() {
        for good in ["/", "/sites/a.example", "/tasks/12?x=1", "/sites/%0Aa"] {
            assert!(same_origin_path(good), "{good:?}");
        }
        for bad in [
            "",
            "sites",
            "//evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: x=1",
            "/ /evil.example",
            "/\u{7f}",
            "/caf\u{e9}",
            "https://evil.example/",
            "javascript:alert(1)",
            "/\u{2028}/evil.example",
        ] {
            assert!(!same_origin_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_path_to_return_to_stays_a_path() {
        assert_eq!(encode_path("/sites/a.example"), "/sites/a.example");
        assert_eq!(encode_path("//evil?x"), "//evil%3Fx");
    }
}
