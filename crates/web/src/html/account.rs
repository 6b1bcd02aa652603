//! Signing in and out, one-time login links, and one's own account: password and API tokens.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{Ctx, FormErrors, NoFields, PageResult, page, page_with_status, see};
use crate::client::ClientAddress;
use crate::session::{Posted, Viewer, clear_cookie, cross_site, same_origin_path, session_cookie};
use crate::views::{TokenView, when, when_opt};
use crate::{AppState, WebError};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: Ctx,
    name: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: a path on this site, else the dashboard.
fn safe_next(next: &str) -> &str {
    if same_origin_path(next) { next } else { "/" }
}

async fn login_form(axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> PageResult {
    page(LoginPage {
        ctx: Ctx::anonymous(),
        name: String::new(),
        next: safe_next(&q.next).to_string(),
        error: None,
    })
}

fn signed_in(state: &AppState, token: &str, to: &str) -> Response {
    (
        [(
            header::SET_COOKIE,
            session_cookie(token, state.secure_cookies),
        )],
        Redirect::to(to),
    )
        .into_response()
}

async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> PageResult {
    if cross_site(&headers) {
        return Err(WebError::csrf().into());
    }
    let address = client.to_string();
    let name = form.name.clone();
    let delay = state.run(move |f| f.login_delay(&name)).await?;
    // Waited here, on a timer, so that a flood of tries on one account holds no thread.
    tokio::time::sleep(delay).await;
    let (name, password) = (form.name.clone(), form.password);
    match state
        .run(move |f| f.login(&name, &password, &address))
        .await
    {
        Ok(session) => Ok(signed_in(&state, &session.token, safe_next(&form.next))),
        Err(e)
            if e.status == StatusCode::UNAUTHORIZED
                || e.status == StatusCode::TOO_MANY_REQUESTS =>
        {
            let status = e.status;
            let mut response = page_with_status(
                status,
                LoginPage {
                    ctx: Ctx::anonymous(),
                    name: form.name,
                    next: safe_next(&form.next).to_string(),
                    error: Some(e.message.clone()),
                },
            )?;
            e.headers(&mut response);
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

async fn login_link(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Path(token): Path<String>,
) -> PageResult {
    let address = client.to_string();
    let session = state
        .run(move |f| f.login_with_link(&token, &address))
        .await?;
    Ok(signed_in(&state, &session.token, "/account"))
}

async fn logout(State(state): State<AppState>, posted: Posted<NoFields>) -> PageResult {
    let token = posted.viewer.token.clone();
    state.run(move |f| f.logout(&token)).await?;
    Ok((
        [(header::SET_COOKIE, clear_cookie(state.secure_cookies))],
        Redirect::to("/login"),
    )
        .into_response())
}

async fn logout_everywhere(State(state): State<AppState>, posted: Posted<NoFields>) -> PageResult {
    let actor = posted.viewer.actor();
    state.run(move |f| f.logout_everywhere(&actor)).await?;
    Ok((
        [(header::SET_COOKIE, clear_cookie(state.secure_cookies))],
        Redirect::to("/login"),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    ctx: Ctx,
    has_password: bool,
    tokens: Vec<TokenView>,
    /// A token just made: shown this once.
    new_token: Option<String>,
    errors: FormErrors,
    notice: Option<String>,
}

impl AccountPage {
    fn when(&self, ms: &i64) -> String {
        when(*ms)
    }

    fn when_opt(&self, ms: &Option<i64>) -> String {
        when_opt(ms)
    }
}

async fn account_page(
    state: &AppState,
    viewer: &Viewer,
    new_token: Option<String>,
    errors: FormErrors,
    notice: Option<String>,
) -> PageResult {
    let actor = viewer.actor();
    let (has_password, tokens) = state
        .run(move |f| {
            let a = f.acting(actor);
            Ok((a.has_password()?, a.api_tokens()?))
        })
        .await?;
    let status = errors.status();
    page_with_status(
        status,
        AccountPage {
            ctx: Ctx::new(viewer, "account"),
            has_password,
            tokens: tokens.iter().map(TokenView::new).collect(),
            new_token,
            errors,
            notice,
        },
    )
}

async fn account(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    account_page(&state, &viewer, None, FormErrors::default(), None).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn change_password(
    State(state): State<AppState>,
    posted: Posted<PasswordForm>,
) -> PageResult {
    let Posted { viewer, form } = posted;
    if form.password != form.confirm {
        let errors = FormErrors {
            field: Some("confirm".into()),
            message: Some("the two new passwords differ".into()),
            status: Some(StatusCode::UNPROCESSABLE_ENTITY),
        };
        return account_page(&state, &viewer, None, errors, None).await;
    }
    let actor = viewer.actor();
    let name = actor.name.clone();
    let result = state
        .run(move |f| {
            f.acting(actor)
                .set_password(&name, Some(&form.current), &form.password)
        })
        .await;
    match result {
        Ok(()) => {
            account_page(
                &state,
                &viewer,
                None,
                FormErrors::default(),
                Some("Your password is set.".into()),
            )
            .await
        }
        Err(e) if super::is_form_error(&e) || e.status == StatusCode::UNAUTHORIZED => {
            let mut errors = FormErrors::from(&e);
            if e.status == StatusCode::UNAUTHORIZED {
                errors.field = Some("current".into());
            }
            account_page(&state, &viewer, None, errors, None).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    name: String,
}

async fn create_token(State(state): State<AppState>, posted: Posted<TokenForm>) -> PageResult {
    let Posted { viewer, form } = posted;
    let actor = viewer.actor();
    match state
        .run(move |f| f.acting(actor).create_api_token(&form.name))
        .await
    {
        Ok((_, secret)) => {
            account_page(&state, &viewer, Some(secret), FormErrors::default(), None).await
        }
        Err(e) if super::is_form_error(&e) => {
            account_page(&state, &viewer, None, FormErrors::from(&e), None).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted<NoFields>,
) -> PageResult {
    let actor = posted.viewer.actor();
    state
        .run(move |f| f.acting(actor).revoke_api_token(id))
        .await?;
    see("/account")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/login/link/{token}", get(login_link))
        .route("/logout", post(logout))
        .route("/logout/everywhere", post(logout_everywhere))
        .route("/account", get(account))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}
