//! The JSON API under `/api/v1`: the panel's operations for scripts, authenticated by a
//! per-user token (`Authorization: Bearer fjord_…`). No cookie is read here, so no request
//! another site makes a browser send can act through it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::TaskFilter;
use engine::acting::{ClientInput, UserInput};
use engine::kinds::InstallInput;
use engine::model::TaskKind;
use engine::ops::{PlatformInput, Queued, SiteEdit, SiteInput};
use serde::{Deserialize, Serialize};

use crate::html::{ListQuery, site_query, task_status};
use crate::session::ApiUser;
use crate::views::{
    BackupView, ClientView, LogLineView, Names, PlatformView, ServerView, SiteView, TaskView,
    TokenView, UserView,
};
use crate::{AppState, WebError};

type ApiResult<T> = Result<Json<T>, WebError>;

/// The JSON body of a request, refused with the API's error shape when it cannot be read.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = WebError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, WebError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(WebError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                e.body_text(),
            )),
        }
    }
}

#[derive(Serialize)]
pub struct QueuedView {
    /// The task queued; none when nothing needed doing.
    pub task: Option<TaskView>,
}

fn queued(q: Queued) -> (StatusCode, Json<QueuedView>) {
    (
        StatusCode::ACCEPTED,
        Json(QueuedView {
            task: q.task.as_ref().map(TaskView::new),
        }),
    )
}

#[derive(Serialize)]
pub struct Me {
    pub name: String,
    pub role: String,
}

async fn me(ApiUser(actor): ApiUser) -> Json<Me> {
    Json(Me {
        name: actor.name,
        role: actor.role.as_str().to_string(),
    })
}

#[derive(Serialize)]
pub struct SitePageView {
    pub sites: Vec<SiteView>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Deserialize, Default)]
pub struct SitesQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    limit: Option<u64>,
}

async fn sites(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Query(q): Query<SitesQuery>,
) -> ApiResult<SitePageView> {
    let limit = q
        .limit
        .unwrap_or(50)
        .clamp(1, engine::acting::MAX_SITE_PAGE);
    let list = ListQuery {
        q: q.q.clone(),
        status: q.status.clone(),
        platform: q.platform.clone(),
        page: None,
    };
    let mut query = site_query(&list, None, limit)?;
    query.offset = q.offset;
    let platform = q.platform.clone();
    let (sites, total) = state
        .run(move |f| {
            let a = f.acting(actor);
            if !platform.is_empty() {
                query.platform_id = Some(a.platform(&platform)?.id);
            }
            let page = a.sites(&query)?;
            let names = Names::load(&a, page.sites.iter().filter_map(|s| s.client_id))?;
            Ok((
                page.sites
                    .iter()
                    .map(|s| SiteView::new(&names, s))
                    .collect(),
                page.total,
            ))
        })
        .await?;
    Ok(Json(SitePageView {
        sites,
        total,
        offset: q.offset,
        limit,
    }))
}

async fn site(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
) -> ApiResult<SiteView> {
    Ok(Json(
        state
            .run(move |f| {
                let a = f.acting(actor);
                let site = a.site(&name)?;
                let names = Names::load(&a, site.client_id)?;
                Ok(SiteView::new(&names, &site))
            })
            .await?,
    ))
}

#[derive(Deserialize)]
pub struct NewSite {
    name: String,
    platform: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    db: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    admin_email: Option<String>,
}

async fn add_site(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Body(body): Body<NewSite>,
) -> Result<Response, WebError> {
    let input = SiteInput {
        name: body.name,
        platform: body.platform,
        aliases: body.aliases,
        client: body.client,
        db: body.db,
        install: InstallInput {
            title: body.title,
            admin_email: body.admin_email,
            ..InstallInput::default()
        },
        ..SiteInput::default()
    };
    let q = state.run(move |f| f.acting(actor).add_site(&input)).await?;
    Ok(queued(q).into_response())
}

#[derive(Deserialize)]
pub struct SiteTaskBody {
    /// verify, install, disable, enable, delete, backup, cache-clear
    task: String,
}

fn site_task_kind(task: &str) -> Result<TaskKind, WebError> {
    let kind = TaskKind::from_db(&format!("site-{task}")).filter(|k| {
        matches!(
            k,
            TaskKind::SiteInstall
                | TaskKind::SiteVerify
                | TaskKind::SiteDisable
                | TaskKind::SiteEnable
                | TaskKind::SiteDelete
                | TaskKind::SiteBackup
                | TaskKind::SiteCacheClear
        )
    });
    kind.ok_or_else(|| {
        engine::Error::Invalid(model::Invalid::new(
            "task",
            task,
            "must be one of verify, install, disable, enable, delete, backup, cache-clear",
        ))
        .into()
    })
}

async fn site_task(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
    Body(body): Body<SiteTaskBody>,
) -> Result<Response, WebError> {
    let kind = site_task_kind(&body.task)?;
    let q = state
        .run(move |f| f.acting(actor).site_task(&name, kind))
        .await?;
    Ok(queued(q).into_response())
}

async fn backups(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
) -> ApiResult<Vec<BackupView>> {
    let backups = state.run(move |f| f.acting(actor).backups(&name)).await?;
    Ok(Json(backups.iter().map(BackupView::new).collect()))
}

#[derive(Deserialize)]
pub struct RestoreBody {
    /// The backup to restore [default: the newest].
    #[serde(default)]
    backup: Option<i64>,
}

async fn restore(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
    Body(body): Body<RestoreBody>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| f.acting(actor).restore_site(&name, body.backup))
        .await?;
    Ok(queued(q).into_response())
}

#[derive(Deserialize)]
pub struct CloneBody {
    new_name: String,
    platform: String,
}

async fn clone(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
    Body(body): Body<CloneBody>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| {
            f.acting(actor)
                .clone_site(&name, &body.new_name, &body.platform)
        })
        .await?;
    Ok(queued(q).into_response())
}

#[derive(Deserialize)]
pub struct MigrateBody {
    platform: String,
    #[serde(default)]
    force: bool,
}

async fn migrate(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
    Body(body): Body<MigrateBody>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| {
            f.acting(actor)
                .migrate_site(&name, &body.platform, body.force)
        })
        .await?;
    Ok(queued(q).into_response())
}

#[derive(Deserialize)]
pub struct CheckQuery {
    platform: String,
}

async fn migrate_check(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
    Query(q): Query<CheckQuery>,
) -> Result<Response, WebError> {
    let report = state
        .run(move |f| f.acting(actor).migrate_check(&name, &q.platform))
        .await?;
    Ok(Json(serde_json::json!({
        "refused": report.refusal(),
        "packages": report.rows,
    }))
    .into_response())
}

#[derive(Serialize)]
pub struct LoginLinkView {
    pub task: Option<TaskView>,
    /// Works once, for 15 minutes, once the task has succeeded.
    pub link: String,
}

async fn login_link(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let (q, link) = state
        .run(move |f| f.acting(actor).login_link(&name))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(LoginLinkView {
            task: q.task.as_ref().map(TaskView::new),
            link,
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct NamesBody {
    aliases: Vec<String>,
    #[serde(default)]
    redirect_aliases: bool,
}

async fn edit_names(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
    Body(body): Body<NamesBody>,
) -> Result<Response, WebError> {
    let edit = SiteEdit {
        set_aliases: Some(body.aliases),
        redirect_aliases: Some(body.redirect_aliases),
        ..SiteEdit::default()
    };
    let q = state
        .run(move |f| f.acting(actor).edit_site(&name, &edit))
        .await?;
    Ok(queued(q).into_response())
}

async fn platforms(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> ApiResult<Vec<PlatformView>> {
    Ok(Json(
        state
            .run(move |f| {
                let a = f.acting(actor);
                let names = Names::load(&a, None)?;
                Ok(a.platforms()?
                    .iter()
                    .map(|p| PlatformView::new(&names, p))
                    .collect())
            })
            .await?,
    ))
}

async fn platform(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
) -> ApiResult<PlatformView> {
    Ok(Json(
        state
            .run(move |f| {
                let a = f.acting(actor);
                let names = Names::load(&a, None)?;
                Ok(PlatformView::new(&names, &a.platform(&name)?))
            })
            .await?,
    ))
}

#[derive(Deserialize)]
pub struct NewPlatform {
    name: String,
    server: String,
    path: String,
    kind: String,
    #[serde(default)]
    php: Option<String>,
}

async fn add_platform(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Body(body): Body<NewPlatform>,
) -> Result<Response, WebError> {
    let input = PlatformInput {
        name: body.name,
        server: body.server,
        path: body.path,
        kind: body.kind,
        php: body.php,
        ..PlatformInput::default()
    };
    let q = state
        .run(move |f| f.acting(actor).add_platform(&input))
        .await?;
    Ok(queued(q).into_response())
}

async fn verify_platform(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| f.acting(actor).verify_platform(&name))
        .await?;
    Ok(queued(q).into_response())
}

async fn servers(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> ApiResult<Vec<ServerView>> {
    let servers = state.run(move |f| f.acting(actor).servers()).await?;
    Ok(Json(servers.iter().map(ServerView::new).collect()))
}

async fn server(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
) -> ApiResult<ServerView> {
    let server = state.run(move |f| f.acting(actor).server(&name)).await?;
    Ok(Json(ServerView::new(&server)))
}

async fn verify_server(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| f.acting(actor).verify_server(&name))
        .await?;
    Ok(queued(q).into_response())
}

#[derive(Deserialize, Default)]
pub struct TasksQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    limit: Option<u32>,
}

async fn tasks(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Query(q): Query<TasksQuery>,
) -> ApiResult<Vec<TaskView>> {
    let status = task_status(&q.status)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let tasks = state
        .run(move |f| {
            f.acting(actor).tasks(&TaskFilter {
                status,
                limit: Some(limit),
                ..TaskFilter::default()
            })
        })
        .await?;
    Ok(Json(tasks.iter().map(TaskView::new).collect()))
}

async fn task(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<TaskView> {
    let task = state.run(move |f| f.acting(actor).task(id)).await?;
    Ok(Json(TaskView::new(&task)))
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    after: i64,
}

async fn task_log(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(id): Path<i64>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Vec<LogLineView>> {
    let lines = state
        .run(move |f| f.acting(actor).task_log(id, q.after))
        .await?;
    Ok(Json(lines.iter().map(LogLineView::new).collect()))
}

async fn retry_task(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let task = state.run(move |f| f.acting(actor).retry_task(id)).await?;
    Ok((StatusCode::ACCEPTED, Json(TaskView::new(&task))).into_response())
}

async fn cancel_task(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<TaskView> {
    let task = state.run(move |f| f.acting(actor).cancel_task(id)).await?;
    Ok(Json(TaskView::new(&task)))
}

async fn clients(
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

async fn client(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
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

#[derive(Deserialize)]
pub struct ClientBody {
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    site_quota: Option<u32>,
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

async fn add_client(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Body(body): Body<ClientBody>,
) -> Result<Response, WebError> {
    save_client(state, actor, body, false).await
}

async fn update_client(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
    Body(mut body): Body<ClientBody>,
) -> Result<Response, WebError> {
    body.name = name;
    save_client(state, actor, body, true).await
}

async fn users(State(state): State<AppState>, ApiUser(actor): ApiUser) -> ApiResult<Vec<UserView>> {
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

async fn user(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
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

#[derive(Deserialize)]
pub struct UserBody {
    name: String,
    role: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    disabled: bool,
}

#[derive(Serialize)]
pub struct NewUserView {
    pub user: UserView,
    /// Signs the user in once, within a day, to set a password.
    pub login_link: String,
}

async fn add_user(
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
            let token = a.user_login_link(user.name.as_str())?;
            let names = Names::load(&a, user.client_id)?;
            Ok(NewUserView {
                user: UserView::new(&names, &user),
                login_link: f.login_link_url(&token)?,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn update_user(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
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

async fn delete_user(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(name): Path<String>,
) -> Result<StatusCode, WebError> {
    state
        .run(move |f| f.acting(actor).delete_user(&name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tokens(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> ApiResult<Vec<TokenView>> {
    let tokens = state.run(move |f| f.acting(actor).api_tokens()).await?;
    Ok(Json(tokens.iter().map(TokenView::new).collect()))
}

#[derive(Deserialize)]
pub struct TokenBody {
    name: String,
}

#[derive(Serialize)]
pub struct NewTokenView {
    pub token: TokenView,
    /// The secret: shown this once, stored only as a hash.
    pub secret: String,
}

async fn create_token(
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

async fn revoke_token(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, WebError> {
    state
        .run(move |f| f.acting(actor).revoke_api_token(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/sites", get(sites).post(add_site))
        .route("/sites/{name}", get(site))
        .route("/sites/{name}/tasks", post(site_task))
        .route("/sites/{name}/backups", get(backups))
        .route("/sites/{name}/restore", post(restore))
        .route("/sites/{name}/clone", post(clone))
        .route("/sites/{name}/migrate", post(migrate))
        .route("/sites/{name}/migrate-check", get(migrate_check))
        .route("/sites/{name}/login-link", post(login_link))
        .route("/sites/{name}/names", post(edit_names))
        .route("/platforms", get(platforms).post(add_platform))
        .route("/platforms/{name}", get(platform))
        .route("/platforms/{name}/verify", post(verify_platform))
        .route("/servers", get(servers))
        .route("/servers/{name}", get(server))
        .route("/servers/{name}/verify", post(verify_server))
        .route("/tasks", get(tasks))
        .route("/tasks/{id}", get(task))
        .route("/tasks/{id}/log", get(task_log))
        .route("/tasks/{id}/retry", post(retry_task))
        .route("/tasks/{id}/cancel", post(cancel_task))
        .route("/clients", get(clients).post(add_client))
        .route("/clients/{name}", get(client).post(update_client))
        .route("/users", get(users).post(add_user))
        .route(
            "/users/{name}",
            get(user).post(update_user).delete(delete_user),
        )
        .route("/tokens", get(tokens).post(create_token))
        .route("/tokens/{id}", axum::routing::delete(revoke_token))
        .fallback(|| async { WebError::not_found("API endpoint") })
}
