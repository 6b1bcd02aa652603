//! Sites: the list (search, filters, pages), a site's page with a button for every task that
//! applies in its state, and the forms that add a site and change its names.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use engine::SiteQuery;
use engine::compat::Report;
use engine::kinds::{InstallInput, Package};
use engine::model::{SiteStatus, TaskKind};
use engine::ops::{LogKind, SiteEdit, SiteInput};
use model::Action;
use serde::Deserialize;

use super::{Ctx, FormErrors, NoFields, PageResult, page, page_with_status, see, see_task};
use crate::session::{Posted, Viewer};
use crate::views::{
    BackupView, CertificateView, Names, SiteView, TaskView, now_ms, size, when, when_opt,
};
use crate::{AppState, WebError};

pub const PAGE_SIZE: u64 = 50;

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub page: Option<u64>,
}

#[derive(Template)]
#[template(path = "sites.html")]
struct SitesPage {
    ctx: Ctx,
    query: ListQuery,
    sites: Vec<SiteView>,
    total: u64,
    page: u64,
    pages: u64,
    platforms: Vec<String>,
    statuses: Vec<&'static str>,
    can_add: bool,
}

impl SitesPage {
    /// The list's address with the same filters, at another page.
    fn at_page(&self, page: impl std::borrow::Borrow<u64>) -> String {
        let page = *page.borrow();
        let mut params = vec![];
        for (k, v) in [
            ("q", &self.query.q),
            ("status", &self.query.status),
            ("platform", &self.query.platform),
        ] {
            if !v.is_empty() {
                params.push(format!("{k}={}", crate::session::encode_path(v)));
            }
        }
        params.push(format!("page={page}"));
        format!("/sites?{}", params.join("&"))
    }
}

const STATUSES: [&str; 6] = [
    "queued",
    "installed",
    "disabled",
    "failed",
    "needs-attention",
    "deleted",
];

/// Reads the list's filters into the engine's query.
pub fn site_query(
    q: &ListQuery,
    platform_id: Option<i64>,
    page_size: u64,
) -> Result<SiteQuery, WebError> {
    let status = match q.status.as_str() {
        "" => None,
        s => Some(SiteStatus::from_db(s).ok_or_else(|| {
            WebError::from(engine::Error::Invalid(model::Invalid::new(
                "status",
                s,
                format!("must be one of {}", STATUSES.join(", ")),
            )))
        })?),
    };
    let page = q.page.unwrap_or(1).max(1);
    Ok(SiteQuery {
        search: Some(q.q.trim().to_lowercase()).filter(|s| !s.is_empty()),
        status,
        platform_id,
        client_id: None,
        offset: (page - 1).saturating_mul(page_size),
        limit: page_size,
    })
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let actor = viewer.actor();
    let query = q.clone();
    let (sites, total, platforms) = state
        .run(move |f| {
            let a = f.acting(actor);
            let platforms = a.platforms().unwrap_or_default();
            let platform_id = match query.platform.as_str() {
                "" => None,
                name => Some(a.platform(name)?.id),
            };
            let sq = site_query(&query, platform_id, PAGE_SIZE).map_err(|e| {
                engine::Error::Invalid(model::Invalid::new("status", &query.status, e.message))
            })?;
            let page = a.sites(&sq)?;
            let names = Names::load(&a, page.sites.iter().filter_map(|s| s.client_id))?;
            let views = page
                .sites
                .iter()
                .map(|s| SiteView::new(&names, s))
                .collect();
            Ok((
                views,
                page.total,
                platforms.iter().map(|p| p.name.to_string()).collect(),
            ))
        })
        .await?;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    page(SitesPage {
        ctx: Ctx::new(&viewer, "sites"),
        page: q.page.unwrap_or(1).max(1),
        query: q,
        sites,
        total,
        pages,
        platforms,
        statuses: STATUSES.to_vec(),
        can_add: viewer.actor().may(Action::AddSite),
    })
}

#[derive(Template)]
#[template(path = "site.html")]
struct SitePage {
    ctx: Ctx,
    site: SiteView,
    certificate: Option<CertificateView>,
    actions: Vec<(&'static str, &'static str, bool)>,
    backups: Vec<BackupView>,
    tasks: Vec<TaskView>,
    packages: Vec<Package>,
    version: Option<String>,
    cron_last: String,
    cron_ok: Option<bool>,
    cron_message: String,
    targets: Vec<String>,
    can_restore: bool,
    can_clone: bool,
    can_migrate: bool,
    can_edit: bool,
    /// The last lines of each of the site's logs: (title, lines).
    logs: Vec<(&'static str, Vec<String>)>,
    errors: FormErrors,
}

/// How many of each log's last lines the site's page shows.
const LOG_LINES_SHOWN: usize = 20;

impl SitePage {
    fn when(&self, ms: &i64) -> String {
        when(*ms)
    }

    fn size(&self, bytes: &i64) -> String {
        size(*bytes)
    }
}

/// The button of each task a site's page may show: its path segment, its label, and whether
/// it needs a confirmation.
fn action_button(kind: TaskKind) -> Option<(&'static str, &'static str, bool)> {
    Some(match kind {
        TaskKind::SiteInstall => ("install", "Install", false),
        TaskKind::SiteVerify => ("verify", "Verify", false),
        TaskKind::SiteHttps => ("https", "Get a certificate", false),
        TaskKind::SiteLoginLink => ("login-link", "Log in to the site", false),
        TaskKind::SiteBackup => ("backup", "Back up", false),
        TaskKind::SiteCacheClear => ("cache-clear", "Clear caches", false),
        TaskKind::SiteDisable => ("disable", "Disable", true),
        TaskKind::SiteEnable => ("enable", "Enable", false),
        TaskKind::SiteDelete => ("delete", "Delete", true),
        _ => return None,
    })
}

fn kind_of_action(action: &str) -> Option<TaskKind> {
    [
        TaskKind::SiteInstall,
        TaskKind::SiteVerify,
        TaskKind::SiteHttps,
        TaskKind::SiteBackup,
        TaskKind::SiteCacheClear,
        TaskKind::SiteDisable,
        TaskKind::SiteEnable,
        TaskKind::SiteDelete,
    ]
    .into_iter()
    .find(|k| action_button(*k).is_some_and(|(a, _, _)| a == action))
}

async fn site_page(
    state: &AppState,
    viewer: &Viewer,
    name: String,
    errors: FormErrors,
) -> PageResult {
    let actor = viewer.actor();
    let page_data = state
        .run(move |f| {
            let a = f.acting(actor);
            let site = a.site(&name)?;
            let kinds = a.site_actions(&site)?;
            let names = Names::load(&a, site.client_id)?;
            let backups = a.backups(&name)?;
            let tasks = a.site_tasks(&name, 20)?;
            let (version, packages) = a.site_code(&name)?;
            let cron = a.site_cron(&name)?;
            let certificate = a.site_certificate(&name)?;
            // A log that cannot be read shows as empty: the page is about the site.
            let logs = [
                ("Access log", LogKind::Access),
                ("Error log", LogKind::Error),
                ("PHP log", LogKind::Php),
            ]
            .into_iter()
            .map(|(title, kind)| {
                let lines = a.site_log(&name, kind, LOG_LINES_SHOWN);
                (title, lines.unwrap_or_default())
            })
            .collect::<Vec<_>>();
            let targets = a
                .platforms()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p.id != site.platform_id)
                .map(|p| p.name.to_string())
                .collect::<Vec<_>>();
            Ok((
                SiteView::new(&names, &site),
                kinds,
                backups,
                tasks,
                version,
                packages,
                cron,
                targets,
                logs,
                certificate,
            ))
        })
        .await?;
    let (site, kinds, backups, tasks, version, packages, cron, targets, logs, certificate) =
        page_data;
    let status = errors.status();
    page_with_status(
        status,
        SitePage {
            ctx: Ctx::new(viewer, "sites"),
            site,
            certificate: certificate
                .as_ref()
                .map(|c| CertificateView::new(c, now_ms())),
            actions: kinds.iter().filter_map(|k| action_button(*k)).collect(),
            can_restore: kinds.contains(&TaskKind::SiteRestore) && !backups.is_empty(),
            can_clone: kinds.contains(&TaskKind::SiteClone),
            can_migrate: kinds.contains(&TaskKind::SiteMigrate) && !targets.is_empty(),
            can_edit: viewer.actor().may(Action::EditSite),
            backups: backups.iter().map(BackupView::new).collect(),
            tasks: tasks.iter().map(TaskView::new).collect(),
            packages,
            version,
            cron_last: when_opt(&cron.last_at),
            cron_ok: cron.last_ok,
            cron_message: cron.last_message.unwrap_or_default(),
            targets,
            logs,
            errors,
        },
    )
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> PageResult {
    site_page(&state, &viewer, name, FormErrors::default()).await
}

/// Runs a change; a refusal the person can fix is shown on the site's page, by the form.
async fn on_site_page<T: Send + 'static>(
    state: &AppState,
    viewer: &Viewer,
    name: String,
    result: Result<T, WebError>,
    then: impl FnOnce(T) -> PageResult,
) -> PageResult {
    match result {
        Ok(v) => then(v),
        Err(e) if super::is_form_error(&e) => {
            site_page(state, viewer, name, FormErrors::from(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn task(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    posted: Posted<NoFields>,
) -> PageResult {
    let kind = kind_of_action(&action).ok_or_else(|| WebError::not_found("task"))?;
    let actor = posted.viewer.actor();
    let site = name.clone();
    let result = state
        .run(move |f| f.acting(actor).site_task(&site, kind))
        .await;
    on_site_page(&state, &posted.viewer, name, result, |q| see_task(&q)).await
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage {
    ctx: Ctx,
    title: String,
    message: String,
    link: Option<String>,
    back: String,
}

async fn login_link(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let site = name.clone();
    let result = state.run(move |f| f.acting(actor).login_link(&site)).await;
    let viewer = posted.viewer.clone();
    on_site_page(
        &state,
        &posted.viewer,
        name.clone(),
        result,
        move |(q, link)| {
            let task = q.task.map(|t| t.id).unwrap_or_default();
            page(NoticePage {
                ctx: Ctx::new(&viewer, "sites"),
                title: format!("Log in to {name}"),
                message: format!(
                    "The link works once, for 15 minutes, as soon as task {task} has armed it."
                ),
                link: Some(link),
                back: format!("/tasks/{task}"),
            })
        },
    )
    .await
}

#[derive(Deserialize)]
struct RestoreForm {
    backup: i64,
}

async fn restore(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<RestoreForm>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let site = name.clone();
    let backup = posted.form.backup;
    let result = state
        .run(move |f| f.acting(actor).restore_site(&site, Some(backup)))
        .await;
    on_site_page(&state, &posted.viewer, name, result, |q| see_task(&q)).await
}

#[derive(Deserialize)]
struct CloneForm {
    #[serde(default)]
    new_name: String,
    #[serde(default)]
    platform: String,
}

async fn clone(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<CloneForm>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let site = name.clone();
    let form = posted.form;
    let result = state
        .run(move |f| {
            f.acting(actor)
                .clone_site(&site, form.new_name.trim(), &form.platform)
        })
        .await;
    on_site_page(&state, &posted.viewer, name, result, |q| see_task(&q)).await
}

#[derive(Deserialize)]
struct MigrateForm {
    #[serde(default)]
    platform: String,
}

async fn migrate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<MigrateForm>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let site = name.clone();
    let platform = posted.form.platform;
    let result = state
        .run(move |f| f.acting(actor).migrate_site(&site, &platform, false))
        .await;
    on_site_page(&state, &posted.viewer, name, result, |q| see_task(&q)).await
}

#[derive(Template)]
#[template(path = "migrate_check.html")]
struct MigrateCheckPage {
    ctx: Ctx,
    site: String,
    platform: String,
    report: Report,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct CheckQuery {
    #[serde(default)]
    platform: String,
}

async fn migrate_check(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<CheckQuery>,
) -> PageResult {
    let actor = viewer.actor();
    let (site, platform) = (name.clone(), q.platform.clone());
    let report = state
        .run(move |f| f.acting(actor).migrate_check(&site, &platform))
        .await?;
    page(MigrateCheckPage {
        ctx: Ctx::new(&viewer, "sites"),
        refusal: report.refusal(),
        site: name,
        platform: q.platform,
        report,
    })
}

#[derive(Deserialize)]
struct NamesForm {
    #[serde(default)]
    aliases: String,
    #[serde(default)]
    redirect_aliases: Option<String>,
    /// Empty: the platform's. Absent (an older page): unchanged.
    #[serde(default)]
    upload_limit: Option<String>,
    /// Absent (an older page): HTTPS settings unchanged.
    #[serde(default)]
    https: Option<String>,
    /// A checkbox: read only when `https` was posted with it.
    #[serde(default)]
    hsts: Option<String>,
}

/// Aliases as typed in a text area: one per line, or separated by commas or spaces.
pub fn split_names(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

async fn edit_names(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<NamesForm>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let site = name.clone();
    let edit = SiteEdit {
        set_aliases: Some(split_names(&posted.form.aliases)),
        redirect_aliases: Some(posted.form.redirect_aliases.is_some()),
        upload_limit: posted.form.upload_limit.as_deref().map(|l| match l.trim() {
            "" => "platform".to_string(),
            l => l.to_string(),
        }),
        hsts: posted
            .form
            .https
            .as_ref()
            .map(|_| posted.form.hsts.is_some()),
        https: posted.form.https.clone(),
        ..SiteEdit::default()
    };
    let result = state
        .run(move |f| f.acting(actor).edit_site(&site, &edit))
        .await;
    on_site_page(&state, &posted.viewer, name.clone(), result, |q| {
        match q.task {
            Some(t) => see(&format!("/tasks/{}", t.id)),
            None => see(&format!("/sites/{name}")),
        }
    })
    .await
}

#[derive(Template)]
#[template(path = "site_new.html")]
struct NewSitePage {
    ctx: Ctx,
    form: NewSiteForm,
    platforms: Vec<engine::ops::PlatformChoice>,
    /// The engines the selected platform's sites may ask for.
    db_engines: Vec<&'static str>,
    clients: Vec<String>,
    /// A client user adds sites for its own client only.
    choose_client: bool,
    errors: FormErrors,
}

#[derive(Deserialize, Default, Clone)]
struct NewSiteForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    aliases: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    db: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    admin_email: String,
    #[serde(default)]
    upload_limit: String,
    #[serde(default)]
    https: String,
    #[serde(default)]
    hsts: Option<String>,
}

async fn new_site_page(
    state: &AppState,
    viewer: &Viewer,
    form: NewSiteForm,
    errors: FormErrors,
) -> PageResult {
    let actor = viewer.actor();
    let choose_client = actor.may(Action::ViewClients);
    let (platforms, clients) = state
        .run(move |f| {
            let a = f.acting(actor);
            let platforms = a.new_site_platforms()?;
            let clients = if a.may(Action::ViewClients) {
                a.clients()?
                    .into_iter()
                    .map(|c| c.client.name.to_string())
                    .collect()
            } else {
                vec![]
            };
            Ok((platforms, clients))
        })
        .await?;
    // The platform asked for, or else the first that is ready: never one whose verify
    // failed unless asked for.
    let mut form = form;
    if !platforms.iter().any(|p| p.name == form.platform) {
        form.platform = platforms
            .iter()
            .find(|p| p.ready)
            .map(|p| p.name.clone())
            .unwrap_or_default();
    }
    let db_engines = platforms
        .iter()
        .find(|p| p.name == form.platform)
        .map(|p| p.db_engines.clone())
        .unwrap_or_else(|| vec!["mysql", "postgresql", "sqlite"]);
    let status = errors.status();
    page_with_status(
        status,
        NewSitePage {
            ctx: Ctx::new(viewer, "sites"),
            form,
            platforms,
            db_engines,
            clients,
            choose_client,
            errors,
        },
    )
}

async fn new_site(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    if !viewer.actor().may(Action::AddSite) {
        return Err(WebError::from(engine::Error::Forbidden(
            "your role may not add sites".into(),
        ))
        .into());
    }
    new_site_page(
        &state,
        &viewer,
        NewSiteForm::default(),
        FormErrors::default(),
    )
    .await
}

async fn create_site(State(state): State<AppState>, posted: Posted<NewSiteForm>) -> PageResult {
    let Posted { viewer, form } = posted;
    let actor = viewer.actor();
    let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let input = SiteInput {
        name: form.name.trim().to_string(),
        platform: form.platform.clone(),
        aliases: split_names(&form.aliases),
        client: non_empty(&form.client),
        db: non_empty(&form.db),
        upload_limit: non_empty(&form.upload_limit),
        https: non_empty(&form.https),
        hsts: form.hsts.is_some(),
        install: InstallInput {
            title: non_empty(&form.title),
            admin_email: non_empty(&form.admin_email),
            ..InstallInput::default()
        },
        ..SiteInput::default()
    };
    let result = state.run(move |f| f.acting(actor).add_site(&input)).await;
    match result {
        Ok(q) => see_task(&q),
        Err(e) if super::is_form_error(&e) => {
            new_site_page(&state, &viewer, form, FormErrors::from(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sites", get(list).post(create_site))
        .route("/sites/new", get(new_site))
        .route("/sites/{name}", get(show))
        .route("/sites/{name}/tasks/{action}", post(task))
        .route("/sites/{name}/login-link", post(login_link))
        .route("/sites/{name}/restore", post(restore))
        .route("/sites/{name}/clone", post(clone))
        .route("/sites/{name}/migrate", post(migrate))
        .route("/sites/{name}/migrate-check", get(migrate_check))
        .route("/sites/{name}/names", post(edit_names))
}
