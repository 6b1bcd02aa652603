//! `/sites`: the list, a site, and the tasks on it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::kinds::InstallInput;
use engine::model::TaskKind;
use engine::ops::{SiteEdit, SiteInput};
use serde::{Deserialize, Serialize};

use super::{ApiResult, Body, Params, QueuedView, Refusals, Segments, queued};
use crate::html::{ListQuery, site_query};
use crate::session::ApiUser;
use crate::views::{BackupView, MigrateCheckView, Names, SiteView, TaskView};
use crate::{AppState, WebError};

/// Who the token belongs to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub name: String,
    /// administrator, platform-manager, account-manager or client.
    pub role: String,
}

#[utoipa::path(get, path = "/me", tag = "users",
    responses((status = 200, body = Me), Refusals))]
pub async fn me(ApiUser(actor): ApiUser) -> Json<Me> {
    Json(Me {
        name: actor.name,
        role: actor.role.as_str().to_string(),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SitePageView {
    pub sites: Vec<SiteView>,
    /// How many sites match, over all pages.
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SitesQuery {
    /// A part of a site's name or alias.
    #[serde(default)]
    q: String,
    /// queued, installed, disabled, failed, needs-attention or deleted.
    #[serde(default)]
    status: String,
    /// Only sites on this platform.
    #[serde(default)]
    platform: String,
    #[serde(default)]
    offset: u64,
    /// At most 500 [default: 50].
    #[serde(default)]
    limit: Option<u64>,
}

/// The sites the token's user may see, by name, a page at a time.
#[utoipa::path(get, path = "/sites", tag = "sites", params(SitesQuery),
    responses((status = 200, body = SitePageView), Refusals))]
pub async fn sites(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Params(q): Params<SitesQuery>,
) -> ApiResult<SitePageView> {
    let limit = q
        .limit
        .unwrap_or(50)
        .clamp(1, engine::acting::MAX_SITE_PAGE);
    let list = ListQuery {
        q: q.q.clone(),
        status: q.status.clone(),
        platform: String::new(),
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

#[utoipa::path(get, path = "/sites/{name}", tag = "sites",
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 200, body = SiteView), Refusals))]
pub async fn site(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewSite {
    /// Its host name.
    name: String,
    platform: String,
    #[serde(default)]
    aliases: Vec<String>,
    /// Its client (a client user's own, always).
    #[serde(default)]
    client: Option<String>,
    /// mysql, postgresql or sqlite: a database of its own.
    #[serde(default)]
    db: Option<String>,
    /// The application's site title.
    #[serde(default)]
    title: Option<String>,
    /// The application administrator's email.
    #[serde(default)]
    admin_email: Option<String>,
    /// Accept names that are not public host names (localhost, *.local, a single label…):
    /// an administrator's choice only.
    #[serde(default)]
    allow_private_names: bool,
    /// The largest file it takes in one upload (MiB, or `64M`, `1G`; 1M to 4G) [default:
    /// its platform's].
    #[serde(default)]
    upload_limit: Option<String>,
    /// HTTPS once it has a certificate: `off`, `on` or `required` [default: on].
    #[serde(default)]
    https: Option<String>,
    /// Strict-Transport-Security on its HTTPS responses [default: false].
    #[serde(default)]
    hsts: bool,
}

/// Adds a site and queues its install.
#[utoipa::path(post, path = "/sites", tag = "sites", request_body = NewSite,
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn add_site(
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
        allow_private_names: body.allow_private_names,
        upload_limit: body.upload_limit,
        https: body.https,
        hsts: body.hsts,
        ..SiteInput::default()
    };
    let q = state.run(move |f| f.acting(actor).add_site(&input)).await?;
    Ok(queued(q))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SiteTaskBody {
    /// verify, install, disable, enable, delete, backup, cache-clear or https (a certificate
    /// from the installation's ACME account).
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
                | TaskKind::SiteHttps
        )
    });
    kind.ok_or_else(|| {
        engine::Error::Invalid(model::Invalid::new(
            "task",
            task,
            "must be one of verify, install, disable, enable, delete, backup, cache-clear, https",
        ))
        .into()
    })
}

/// Queues a task that needs nothing but the site.
#[utoipa::path(post, path = "/sites/{name}/tasks", tag = "sites", request_body = SiteTaskBody,
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn site_task(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Body(body): Body<SiteTaskBody>,
) -> Result<Response, WebError> {
    let kind = site_task_kind(&body.task)?;
    let q = state
        .run(move |f| f.acting(actor).site_task(&name, kind))
        .await?;
    Ok(queued(q))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// access (nginx's access log), error (nginx's error log) or php (the site's PHP's)
    /// [default: access].
    #[serde(default)]
    log: Option<String>,
    /// How many of the last lines (1 to 10000) [default: 100].
    #[serde(default)]
    lines: Option<usize>,
}

/// A site's log, its last lines, with any login token taken out.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LogView {
    pub log: String,
    pub lines: Vec<String>,
}

#[utoipa::path(get, path = "/sites/{name}/logs", tag = "sites",
    params(("name" = String, Path, description = "The site's name"), LogQuery),
    responses((status = 200, body = LogView), Refusals))]
pub async fn logs(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Params(q): Params<LogQuery>,
) -> ApiResult<LogView> {
    let log = q.log.unwrap_or_else(|| "access".into());
    let kind = engine::ops::LogKind::parse(&log)?;
    let count = q.lines.unwrap_or(100);
    let lines = state
        .run(move |f| f.acting(actor).site_log(&name, kind, count))
        .await?;
    Ok(Json(LogView { log, lines }))
}

#[utoipa::path(get, path = "/sites/{name}/backups", tag = "sites",
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 200, body = Vec<BackupView>), Refusals))]
pub async fn backups(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
) -> ApiResult<Vec<BackupView>> {
    let backups = state.run(move |f| f.acting(actor).backups(&name)).await?;
    Ok(Json(backups.iter().map(BackupView::new).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RestoreBody {
    /// The backup to restore [default: the newest].
    #[serde(default)]
    backup: Option<i64>,
}

#[utoipa::path(post, path = "/sites/{name}/restore", tag = "sites", request_body = RestoreBody,
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn restore(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Body(body): Body<RestoreBody>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| f.acting(actor).restore_site(&name, body.backup))
        .await?;
    Ok(queued(q))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CloneBody {
    new_name: String,
    platform: String,
}

#[utoipa::path(post, path = "/sites/{name}/clone", tag = "sites", request_body = CloneBody,
    params(("name" = String, Path, description = "The site to copy")),
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn clone(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Body(body): Body<CloneBody>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| {
            f.acting(actor)
                .clone_site(&name, &body.new_name, &body.platform)
        })
        .await?;
    Ok(queued(q))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MigrateBody {
    platform: String,
    /// Move even if packages the site uses are missing there (not for client users).
    #[serde(default)]
    force: bool,
}

#[utoipa::path(post, path = "/sites/{name}/migrate", tag = "sites", request_body = MigrateBody,
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn migrate(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Body(body): Body<MigrateBody>,
) -> Result<Response, WebError> {
    let q = state
        .run(move |f| {
            f.acting(actor)
                .migrate_site(&name, &body.platform, body.force)
        })
        .await?;
    Ok(queued(q))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// The platform to move to.
    platform: String,
}

/// Whether the site could move to a platform: each package, and why a move would be refused.
#[utoipa::path(get, path = "/sites/{name}/migrate-check", tag = "sites",
    params(("name" = String, Path, description = "The site's name"), CheckQuery),
    responses((status = 200, body = MigrateCheckView), Refusals))]
pub async fn migrate_check(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Params(q): Params<CheckQuery>,
) -> ApiResult<MigrateCheckView> {
    let report = state
        .run(move |f| f.acting(actor).migrate_check(&name, &q.platform))
        .await?;
    Ok(Json(MigrateCheckView::new(&report)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginLinkView {
    pub task: Option<TaskView>,
    /// Works once, for 15 minutes, once the task has succeeded.
    pub link: String,
}

/// Queues a one-time login link to the site's application.
#[utoipa::path(post, path = "/sites/{name}/login-link", tag = "sites",
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 202, body = LoginLinkView), Refusals))]
pub async fn login_link(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NamesBody {
    /// Every alias the site is to have.
    aliases: Vec<String>,
    /// Redirect the aliases to the site's name.
    #[serde(default)]
    redirect_aliases: bool,
    /// Accept names that are not public host names (localhost, *.local, a single label…):
    /// an administrator's choice only.
    #[serde(default)]
    allow_private_names: bool,
    /// A new upload limit of its own (MiB, or `64M`, `1G`; 1M to 4G), or `platform` for its
    /// platform's; absent: unchanged.
    #[serde(default)]
    upload_limit: Option<String>,
    /// A new HTTPS mode: `off`, `on` or `required`; absent: unchanged.
    #[serde(default)]
    https: Option<String>,
    /// HSTS on or off; absent: unchanged.
    #[serde(default)]
    hsts: Option<bool>,
}

/// Replaces the site's aliases (and, if given, its upload limit and HTTPS settings); queues
/// a verify.
#[utoipa::path(post, path = "/sites/{name}/names", tag = "sites", request_body = NamesBody,
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 202, body = QueuedView), Refusals))]
pub async fn edit_names(
    State(state): State<AppState>,
    ApiUser(actor): ApiUser,
    Segments(name): Segments<String>,
    Body(body): Body<NamesBody>,
) -> Result<Response, WebError> {
    let edit = SiteEdit {
        set_aliases: Some(body.aliases),
        redirect_aliases: Some(body.redirect_aliases),
        allow_private_names: body.allow_private_names,
        upload_limit: body.upload_limit,
        https: body.https,
        hsts: body.hsts,
        ..SiteEdit::default()
    };
    let q = state
        .run(move |f| f.acting(actor).edit_site(&name, &edit))
        .await?;
    Ok(queued(q))
}
