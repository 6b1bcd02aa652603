//! `/platforms`, `/servers` and `/tasks`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::TaskFilter;
use engine::ops::{PlatformInput, ServerInput};
use serde::Deserialize;

use super::{ApiResult, Body, Params, QueuedView, Refusals, Segments, queued};
use crate::html::task_status;
use crate::session::ApiUser;
use crate::views::{
    BackupTargetView, ClaimsView, LogLineView, Names, PlatformView, ServerView, ServiceEventView,
    TaskView,
};
use crate::{AppState, WebError};

#[utoipa::path(get, path = "/platforms", tag = "platforms",
    responses((status = 200, body = Vec<PlatformView>), Refusals))]
pub async fn platforms(
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

#[utoipa::path(get, path = "/platforms/{name}", tag = "platforms",
    params(("name" = String, Path, description = "The platform's name")),
    responses((status = 200, body = PlatformView), Refusals))]
pub async fn platform(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewPlatform {
    name: String,
    /// The server it is on.
    server: String,
    /// The absolute path of its code.
    path: String,
    /// static, php, wordpress or drupal.
    kind: String,
    /// Its sites' PHP version [default: the server's newest].
    #[serde(default)]
    php: Option<String>,
    /// The largest file its sites take in one upload (MiB, or `64M`, `1G`; 1M to 4G)
    /// [default: 64M].
    #[serde(default)]
    upload_limit: Option<String>,
}

/// Adds a platform and queues its verify.
#[utoipa::path(post, path = "/platforms", tag = "platforms", request_body = NewPlatform,
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn add_platform(
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
        upload_limit: body.upload_limit,
        ..PlatformInput::default()
    };
    let q = state
        .run(move |f| f.acting(actor).add_platform(&input))
        .await?;
    Ok(queued(q))
}

#[utoipa::path(post, path = "/platforms/{name}/verify", tag = "platforms",
    params(("name" = String, Path, description = "The platform's name")),
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn verify_platform(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| f.acting(actor).verify_platform(&name))
        .await?;
    Ok(queued(q))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UploadLimitBody {
    /// The largest file its sites take in one upload (MiB, or `64M`, `1G`; 1M to 4G), or
    /// `default` (64M).
    upload_limit: String,
}

/// Sets the largest upload a platform's sites take; queues the verify of each of its served
/// sites without a limit of its own.
#[utoipa::path(post, path = "/platforms/{name}/upload-limit", tag = "platforms",
    request_body = UploadLimitBody,
    params(("name" = String, Path, description = "The platform's name")),
    responses((status = 202, body = Vec<TaskView>), Refusals))]
pub async fn platform_upload_limit(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Body(body): Body<UploadLimitBody>,
) -> Result<Response, WebError> {
    let tasks = state
        .run(move |f| {
            f.acting(actor)
                .set_platform_upload_limit(&name, &body.upload_limit)
        })
        .await?;
    let views: Vec<TaskView> = tasks.iter().map(TaskView::new).collect();
    Ok((StatusCode::ACCEPTED, Json(views)).into_response())
}

#[utoipa::path(get, path = "/backup-targets", tag = "servers",
    responses((status = 200, body = Vec<BackupTargetView>), Refusals))]
pub async fn backup_targets(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> ApiResult<Vec<BackupTargetView>> {
    let targets = state.run(move |f| f.acting(actor).backup_targets()).await?;
    Ok(Json(targets.iter().map(BackupTargetView::new).collect()))
}

#[utoipa::path(get, path = "/servers", tag = "servers",
    responses((status = 200, body = Vec<ServerView>), Refusals))]
pub async fn servers(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> ApiResult<Vec<ServerView>> {
    let servers = state.run(move |f| f.acting(actor).servers()).await?;
    Ok(Json(servers.iter().map(ServerView::new).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewServer {
    name: String,
    /// The nginx program [default: /usr/sbin/nginx].
    #[serde(default)]
    nginx_binary: Option<String>,
    /// nginx's main config [default: /etc/nginx/nginx.conf].
    #[serde(default)]
    nginx_config: Option<String>,
    /// nginx's prefix (-p), for an instance of its own.
    #[serde(default)]
    nginx_prefix: Option<String>,
    /// A directory nginx includes at http level [default: /etc/nginx/conf.d].
    #[serde(default)]
    include_dir: Option<String>,
    /// Where sites answer HTTP: one address or a list [default: 0.0.0.0:80].
    #[serde(default)]
    listen: Option<Addresses>,
    /// Where sites with a certificate answer HTTPS [default: none].
    #[serde(default)]
    https_listen: Vec<String>,
    /// `signal`, or an absolute command [default: signal].
    #[serde(default)]
    reload: Option<String>,
    /// Database services: mysql, postgresql, sqlite, with `:key=value` options.
    #[serde(default)]
    db: Vec<String>,
    /// php-fpm services: a PHP version, with `:key=value` options.
    #[serde(default)]
    php: Vec<String>,
    /// The group nginx's workers run as [default: www-data].
    #[serde(default)]
    web_group: Option<String>,
    /// Whether the dispatchers' monitor probes its daemons and restarts one found down
    /// [default: true].
    #[serde(default)]
    monitor: Option<bool>,
    /// The command that starts nginx again (an absolute program and its arguments, no
    /// shell) [default: nginx -c CONFIG, or systemd's nginx.service for the standard nginx].
    #[serde(default)]
    nginx_start: Option<String>,
    /// nginx's systemd unit, for the monitor's restarts.
    #[serde(default)]
    nginx_unit: Option<String>,
}

/// One listen address, as the API took before, or several.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Addresses {
    One(String),
    Many(Vec<String>),
}

/// Registers a server and queues its verify.
#[utoipa::path(post, path = "/servers", tag = "servers", request_body = NewServer,
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn add_server(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Body(body): Body<NewServer>,
) -> Result<Response, WebError> {
    let input = ServerInput {
        name: body.name,
        nginx_binary: body
            .nginx_binary
            .unwrap_or_else(|| model::STANDARD_NGINX_BINARY.into()),
        nginx_config: body
            .nginx_config
            .unwrap_or_else(|| model::STANDARD_NGINX_CONFIG.into()),
        nginx_prefix: body.nginx_prefix,
        include_dir: body
            .include_dir
            .unwrap_or_else(|| model::STANDARD_NGINX_INCLUDE_DIR.into()),
        listen: match body.listen {
            None => vec!["0.0.0.0:80".into()],
            Some(Addresses::One(addr)) => vec![addr],
            Some(Addresses::Many(addrs)) => addrs,
        },
        https_listen: body.https_listen,
        reload: body.reload.unwrap_or_else(|| "signal".into()),
        files_owner: None,
        db: body.db,
        php: body.php,
        web_group: body.web_group,
        monitor: body.monitor.unwrap_or(true),
        nginx_start: body.nginx_start,
        nginx_unit: body.nginx_unit,
        remote: None,
    };
    let q = state
        .run(move |f| f.acting(actor).add_server(&input))
        .await?;
    Ok(queued(q))
}

#[utoipa::path(get, path = "/servers/{name}", tag = "servers",
    params(("name" = String, Path, description = "The server's name")),
    responses((status = 200, body = ServerView), Refusals))]
pub async fn server(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
) -> ApiResult<ServerView> {
    let server = state.run(move |f| f.acting(actor).server(&name)).await?;
    Ok(Json(ServerView::new(&server)))
}

/// What the monitor saw happen to the server's daemons (down, restarted, restart failed,
/// back), newest first: the last 100.
#[utoipa::path(get, path = "/servers/{name}/events", tag = "servers",
    params(("name" = String, Path, description = "The server's name")),
    responses((status = 200, body = Vec<ServiceEventView>), Refusals))]
pub async fn server_events(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
) -> ApiResult<Vec<ServiceEventView>> {
    let events = state
        .run(move |f| f.acting(actor).service_events(&name, 100))
        .await?;
    Ok(Json(events.iter().map(ServiceEventView::new).collect()))
}

/// Services to add to and remove from a server.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerServices {
    /// Database services to add: mysql, postgresql, sqlite, with `:key=value` options.
    #[serde(default)]
    add_db: Vec<String>,
    /// Database engines whose service goes (with `add_db` of the same engine: replaced).
    #[serde(default)]
    remove_db: Vec<String>,
    /// php-fpm services to add: a PHP version, with `:key=value` options.
    #[serde(default)]
    add_php: Vec<String>,
    /// PHP versions whose php-fpm service goes.
    #[serde(default)]
    remove_php: Vec<String>,
    /// New HTTP listen addresses (none: unchanged); every served site is verified after.
    #[serde(default)]
    listen: Vec<String>,
    /// New HTTPS listen addresses (none: unchanged; `["none"]`: no HTTPS).
    #[serde(default)]
    https_listen: Vec<String>,
    /// Whether the monitor watches the server's daemons (none: unchanged).
    #[serde(default)]
    monitor: Option<bool>,
}

/// Adds and removes a server's database and php-fpm services, and queues its verify. A
/// service that sites or platforms use is not removed (409, naming them).
#[utoipa::path(post, path = "/servers/{name}/services", tag = "servers",
    params(("name" = String, Path, description = "The server's name")),
    request_body = ServerServices,
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn edit_server(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Body(body): Body<ServerServices>,
) -> Result<Response, WebError> {
    let edit = engine::ops::ServerEdit {
        name,
        add_db: body.add_db,
        remove_db: body.remove_db,
        add_php: body.add_php,
        remove_php: body.remove_php,
        listen: body.listen,
        https_listen: body.https_listen,
        monitor: body.monitor,
        host_key: None,
    };
    let q = state
        .run(move |f| f.acting(actor).edit_server(&edit))
        .await?;
    Ok(queued(q))
}

#[utoipa::path(post, path = "/servers/{name}/verify", tag = "servers",
    params(("name" = String, Path, description = "The server's name")),
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn verify_server(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| f.acting(actor).verify_server(&name))
        .await?;
    Ok(queued(q))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TasksQuery {
    /// queued, processing, success, failed, warning or cancelled.
    #[serde(default)]
    status: String,
    /// At most 1000 [default: 100].
    #[serde(default)]
    limit: Option<u32>,
}

/// The tasks the token's user may see, newest first.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(TasksQuery),
    responses((status = 200, body = Vec<TaskView>), Refusals))]
pub async fn tasks(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Params(q): Params<TasksQuery>,
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

/// Whether dispatchers claim tasks: a dispatcher's disk guard stops claiming while the data
/// dir's or a platform's file system is too full, and says which.
#[utoipa::path(get, path = "/claims", tag = "tasks",
    responses((status = 200, body = ClaimsView), Refusals))]
pub async fn claims(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
) -> ApiResult<ClaimsView> {
    let pauses = state.run(move |f| f.acting(actor).claim_pauses()).await?;
    Ok(Json(ClaimsView::new(&pauses)))
}

#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, body = TaskView), Refusals))]
pub async fn task(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(id): Segments<i64>,
) -> ApiResult<TaskView> {
    let task = state.run(move |f| f.acting(actor).task(id)).await?;
    Ok(Json(TaskView::new(&task)))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only lines after this line id (to follow a running task).
    #[serde(default)]
    after: i64,
}

#[utoipa::path(get, path = "/tasks/{id}/log", tag = "tasks",
    params(("id" = i64, Path, description = "The task's id"), LogQuery),
    responses((status = 200, body = Vec<LogLineView>), Refusals))]
pub async fn task_log(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(id): Segments<i64>,
    Params(q): Params<LogQuery>,
) -> ApiResult<Vec<LogLineView>> {
    let lines = state
        .run(move |f| f.acting(actor).task_log(id, q.after))
        .await?;
    Ok(Json(lines.iter().map(LogLineView::new).collect()))
}

/// Queues a failed or cancelled task again.
#[utoipa::path(post, path = "/tasks/{id}/retry", tag = "tasks",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 202, body = TaskView), Refusals))]
pub async fn retry_task(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(id): Segments<i64>,
) -> Result<Response, WebError> {
    let task = state.run(move |f| f.acting(actor).retry_task(id)).await?;
    Ok((StatusCode::ACCEPTED, Json(TaskView::new(&task))).into_response())
}

/// Cancels a queued task.
#[utoipa::path(post, path = "/tasks/{id}/cancel", tag = "tasks",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, body = TaskView), Refusals))]
pub async fn cancel_task(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(id): Segments<i64>,
) -> ApiResult<TaskView> {
    let task = state.run(move |f| f.acting(actor).cancel_task(id)).await?;
    Ok(Json(TaskView::new(&task)))
}
