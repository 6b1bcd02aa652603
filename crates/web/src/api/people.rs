//! `/clients`, `/users` and the token owner's `/tokens`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::acting::{ClientInput, LinkDelivery, UserInput};
use serde::{Deserialize, Serialize};

use super::{ApiResult, Body, Refusals, Segments};
use crate::session::ApiUser;
use crate::views::{ClientView, Names, TokenView, UserView};
use crate::{AppState, WebError};

#[utoipa::path(get, path = "/clients", tag = "clients",
    responses((status = 200, body = Vec<ClientView>), Refusals))]
pub async fn clients(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> ApiResult<Vec<ClientView>> {
    Ok(Json(
        state
            .run(move |f| {
                let a = f.acting(actor);
                let names = Names::load(&a, None)?;
                Ok(a.clients()?
                    .iter()
                    .map(|c| ClientView::new(&names, c))
                    .collect())
            })
            .await?,
    ))
}

#[utoipa::path(get, path = "/clients/{name}", tag = "clients",
    params(("name" = String, Path, description = "The client's name")),
    responses((status = 200, body = ClientView), Refusals))]
pub async fn client(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
) -> ApiResult<ClientView> {
    Ok(Json(
        state
            .run(move |f| {
                let a = f.acting(actor);
                let names = Names::load(&a, None)?;
                Ok(ClientView::new(&names, &a.client(&name)?))
            })
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ClientBody {
    /// Its name (ignored when changing a client: the path names it).
    name: String,
    #[serde(default)]
    email: Option<String>,
    /// How many sites it may have; none or 0: no limit.
    #[serde(default)]
    site_quota: Option<u32>,
    /// The platforms its users may put sites on.
    #[serde(default)]
    platforms: Vec<String>,
}

async fn save_client(
    state: AppState,
    actor: model::Actor,
    body: ClientBody,
    update: bool,
) -> Result<Response, WebError> {
    let input = ClientInput {
        name: body.name,
        email: body.email,
        site_quota: body.site_quota.filter(|q| *q > 0),
        platforms: body.platforms,
    };
    let view = state
        .run(move |f| {
            let a = f.acting(actor);
            let c = a.save_client(&input, update)?;
            let names = Names::load(&a, None)?;
            Ok(ClientView::new(&names, &c))
        })
        .await?;
    let status = if update {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view)).into_response())
}

#[utoipa::path(post, path = "/clients", tag = "clients", request_body = ClientBody,
    responses((status = 201, body = ClientView), Refusals))]
pub async fn add_client(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Body(body): Body<ClientBody>,
) -> Result<Response, WebError> {
    save_client(state, actor, body, false).await
}

/// Changes a client: email, quota and platforms, all at once.
#[utoipa::path(post, path = "/clients/{name}", tag = "clients", request_body = ClientBody,
    params(("name" = String, Path, description = "The client's name")),
    responses((status = 200, body = ClientView), Refusals))]
pub async fn update_client(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Body(mut body): Body<ClientBody>,
) -> Result<Response, WebError> {
    body.name = name;
    save_client(state, actor, body, true).await
}

#[utoipa::path(get, path = "/users", tag = "users",
    responses((status = 200, body = Vec<UserView>), Refusals))]
pub async fn users(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> ApiResult<Vec<UserView>> {
    Ok(Json(
        state
            .run(move |f| {
                let a = f.acting(actor);
                let users = a.users()?;
                let names = Names::load(&a, users.iter().filter_map(|u| u.client_id))?;
                Ok(users.iter().map(|u| UserView::new(&names, u)).collect())
            })
            .await?,
    ))
}

#[utoipa::path(get, path = "/users/{name}", tag = "users",
    params(("name" = String, Path, description = "The user's name")),
    responses((status = 200, body = UserView), Refusals))]
pub async fn user(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
) -> ApiResult<UserView> {
    Ok(Json(
        state
            .run(move |f| {
                let a = f.acting(actor);
                let user = a.user(&name)?;
                let names = Names::load(&a, user.client_id)?;
                Ok(UserView::new(&names, &user))
            })
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UserBody {
    /// Its name (ignored when changing a user: the path names it).
    name: String,
    /// administrator, platform-manager, account-manager or client.
    role: String,
    #[serde(default)]
    email: Option<String>,
    /// The client of a client user.
    #[serde(default)]
    client: Option<String>,
    /// A disabled user may not sign in; its sessions end.
    #[serde(default)]
    disabled: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NewUserView {
    pub user: UserView,
    /// Signs the user in once, within a day, to set a password: only in an administrator's
    /// answer. Anyone else's new user gets it by mail.
    pub login_link: Option<String>,
    /// Where the login link was mailed, if it was.
    pub login_link_mailed_to: Option<String>,
    /// Why no login link was made, if none was.
    pub login_link_withheld: Option<String>,
}

/// Adds a user; it signs in first with a login link: in an administrator's answer, else mailed to
/// the user's address.
#[utoipa::path(post, path = "/users", tag = "users", request_body = UserBody,
    responses((status = 201, body = NewUserView), Refusals))]
pub async fn add_user(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Body(body): Body<UserBody>,
) -> Result<Response, WebError> {
    let input = UserInput {
        name: body.name,
        email: body.email,
        role: body.role,
        client: body.client,
        password: None,
    };
    let view = state
        .run(move |f| {
            let a = f.acting(actor);
            let user = a.add_user(&input)?;
            let delivery = a.send_login_link(user.name.as_str())?;
            let names = Names::load(&a, user.client_id)?;
            let (mut shown, mut mailed, mut withheld) = (None, None, None);
            match delivery {
                LinkDelivery::Shown(url) => shown = Some(url),
                LinkDelivery::Mailed(to) => mailed = Some(to.to_string()),
                LinkDelivery::Withheld(why) => withheld = Some(why),
            }
            Ok(NewUserView {
                user: UserView::new(&names, &user),
                login_link: shown,
                login_link_mailed_to: mailed,
                login_link_withheld: withheld,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(post, path = "/users/{name}", tag = "users", request_body = UserBody,
    params(("name" = String, Path, description = "The user's name")),
    responses((status = 200, body = UserView), Refusals))]
pub async fn update_user(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Body(body): Body<UserBody>,
) -> ApiResult<UserView> {
    let input = UserInput {
        name: name.clone(),
        email: body.email,
        role: body.role,
        client: body.client,
        password: None,
    };
    let disabled = body.disabled;
    Ok(Json(
        state
            .run(move |f| {
                let a = f.acting(actor);
                let user = a.update_user(&name, &input, disabled)?;
                let names = Names::load(&a, user.client_id)?;
                Ok(UserView::new(&names, &user))
            })
            .await?,
    ))
}

#[utoipa::path(delete, path = "/users/{name}", tag = "users",
    params(("name" = String, Path, description = "The user's name")),
    responses((status = 204, description = "Removed, with its sessions and tokens"), Refusals))]
pub async fn delete_user(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
) -> Result<StatusCode, WebError> {
    state
        .run(move |f| f.acting(actor).delete_user(&name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token owner's API tokens (never their secrets).
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), Refusals))]
pub async fn tokens(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> ApiResult<Vec<TokenView>> {
    let tokens = state.run(move |f| f.acting(actor).api_tokens()).await?;
    Ok(Json(tokens.iter().map(TokenView::new).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenBody {
    /// What the token is for.
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NewTokenView {
    pub token: TokenView,
    /// The secret: in this answer only, stored as a hash.
    pub secret: String,
}

#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = TokenBody,
    responses((status = 201, body = NewTokenView), Refusals))]
pub async fn create_token(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Body(body): Body<TokenBody>,
) -> Result<Response, WebError> {
    let (token, secret) = state
        .run(move |f| f.acting(actor).create_api_token(&body.name))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewTokenView {
            token: TokenView::new(&token),
            secret,
        }),
    )
        .into_response())
}

#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "The token's id")),
    responses((status = 204, description = "Revoked"), Refusals))]
pub async fn revoke_token(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(id): Segments<i64>,
) -> Result<StatusCode, WebError> {
    state
        .run(move |f| f.acting(actor).revoke_api_token(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
