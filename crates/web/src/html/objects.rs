//! Servers and platforms: lists, pages, and the form that adds a platform.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use engine::kinds::Package;
use engine::ops::{PlatformInput, ServerInput};
use model::Action;
use serde::Deserialize;

use super::sites::PAGE_SIZE;
use super::{Ctx, FormErrors, NoFields, PageResult, page, page_with_status, see, see_task};
use crate::session::{Posted, Viewer};
use crate::views::{Names, PlatformView, ServerView, ServiceEventView, SiteView};

/// The monitor's events a server's page lists.
const SHOWN_EVENTS: u32 = 20;
use crate::{AppState, WebError};

#[derive(Template)]
#[template(path = "servers.html")]
struct ServersPage {
    ctx: Ctx,
    servers: Vec<ServerView>,
    can_add: bool,
}

async fn servers(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let actor = viewer.actor();
    let servers = state.run(move |f| f.acting(actor).servers()).await?;
    page(ServersPage {
        ctx: Ctx::new(&viewer, "servers"),
        servers: servers.iter().map(ServerView::new).collect(),
        can_add: viewer.actor().may(Action::ManageServers),
    })
}

#[derive(Template)]
#[template(path = "server.html")]
struct ServerPage {
    ctx: Ctx,
    server: ServerView,
    platforms: Vec<PlatformView>,
    events: Vec<ServiceEventView>,
    can_verify: bool,
}

async fn server(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> PageResult {
    let actor = viewer.actor();
    let (server, platforms, events) = state
        .run(move |f| {
            let a = f.acting(actor);
            let server = a.server(&name)?;
            let events = a
                .service_events(&name, SHOWN_EVENTS)?
                .iter()
                .map(ServiceEventView::new)
                .collect();
            let names = Names::load(&a, None)?;
            let platforms = a
                .platforms()?
                .iter()
                .filter(|p| p.server_id == server.id)
                .map(|p| PlatformView::new(&names, p))
                .collect();
            Ok((ServerView::new(&server), platforms, events))
        })
        .await?;
    page(ServerPage {
        ctx: Ctx::new(&viewer, "servers"),
        server,
        platforms,
        events,
        can_verify: viewer.actor().may(Action::ManageServers),
    })
}

async fn verify_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let q = state
        .run(move |f| f.acting(actor).verify_server(&name))
        .await?;
    see_task(&q)
}

/// The services form of a server's page: one service per line to add, engines or PHP
/// versions to remove.
#[derive(Deserialize, Default)]
struct ServicesForm {
    #[serde(default)]
    add_db: String,
    #[serde(default)]
    remove_db: String,
    #[serde(default)]
    add_php: String,
    #[serde(default)]
    remove_php: String,
    /// New HTTP addresses (empty: unchanged).
    #[serde(default)]
    listen: String,
    /// New HTTPS addresses (empty: unchanged; `none`: no HTTPS).
    #[serde(default)]
    https_listen: String,
    /// `on` or `off`: whether the monitor watches the server's daemons (empty: unchanged).
    #[serde(default)]
    monitor: String,
}

async fn edit_server(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<ServicesForm>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let form = posted.form;
    let edit = engine::ops::ServerEdit {
        name,
        add_db: lines(&form.add_db),
        remove_db: words(&form.remove_db),
        add_php: lines(&form.add_php),
        remove_php: words(&form.remove_php),
        listen: words(&form.listen),
        https_listen: words(&form.https_listen),
        monitor: engine::ops::parse_on_off("monitor", &form.monitor)?,
        host_key: None,
    };
    let q = state
        .run(move |f| f.acting(actor).edit_server(&edit))
        .await?;
    see_task(&q)
}

#[derive(Template)]
#[template(path = "server_new.html")]
struct NewServerPage {
    ctx: Ctx,
    form: ServerForm,
    errors: FormErrors,
}

#[derive(Deserialize, Clone)]
struct ServerForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    nginx_binary: String,
    #[serde(default)]
    nginx_config: String,
    #[serde(default)]
    nginx_prefix: String,
    #[serde(default)]
    include_dir: String,
    /// HTTP addresses, separated by spaces or commas.
    #[serde(default)]
    listen: String,
    /// HTTPS addresses, separated by spaces or commas.
    #[serde(default)]
    https_listen: String,
    #[serde(default)]
    reload: String,
    #[serde(default)]
    web_group: String,
    /// Database services, one per line (`mysql`, `postgresql:host=…`).
    #[serde(default)]
    db: String,
    /// php-fpm services, one per line (`8.2`).
    #[serde(default)]
    php: String,
}

impl Default for ServerForm {
    /// Debian's nginx, as `fjord server add` takes it by default.
    fn default() -> ServerForm {
        ServerForm {
            name: String::new(),
            nginx_binary: model::STANDARD_NGINX_BINARY.into(),
            nginx_config: model::STANDARD_NGINX_CONFIG.into(),
            nginx_prefix: String::new(),
            include_dir: model::STANDARD_NGINX_INCLUDE_DIR.into(),
            listen: "0.0.0.0:80".into(),
            https_listen: String::new(),
            reload: "signal".into(),
            web_group: String::new(),
            db: String::new(),
            php: String::new(),
        }
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Addresses given in one field, separated by spaces or commas.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn new_server_page(viewer: &Viewer, form: ServerForm, errors: FormErrors) -> PageResult {
    let status = errors.status();
    page_with_status(
        status,
        NewServerPage {
            ctx: Ctx::new(viewer, "servers"),
            form,
            errors,
        },
    )
}

async fn new_server(viewer: Viewer) -> PageResult {
    if !viewer.actor().may(Action::ManageServers) {
        return Err(WebError::from(engine::Error::Forbidden(
            "your role may not add servers".into(),
        ))
        .into());
    }
    new_server_page(&viewer, ServerForm::default(), FormErrors::default())
}

async fn create_server(State(state): State<AppState>, posted: Posted<ServerForm>) -> PageResult {
    let Posted { viewer, form } = posted;
    let actor = viewer.actor();
    let optional = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let input = ServerInput {
        name: form.name.trim().to_string(),
        nginx_binary: form.nginx_binary.trim().to_string(),
        nginx_config: form.nginx_config.trim().to_string(),
        nginx_prefix: optional(&form.nginx_prefix),
        include_dir: form.include_dir.trim().to_string(),
        listen: words(&form.listen),
        https_listen: words(&form.https_listen),
        reload: form.reload.trim().to_string(),
        files_owner: None,
        db: lines(&form.db),
        php: lines(&form.php),
        web_group: optional(&form.web_group),
        monitor: true,
        nginx_start: None,
        nginx_unit: None,
        remote: None,
    };
    match state.run(move |f| f.acting(actor).add_server(&input)).await {
        Ok(q) => see_task(&q),
        Err(e) if super::is_form_error(&e) => new_server_page(&viewer, form, FormErrors::from(&e)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "platforms.html")]
struct PlatformsPage {
    ctx: Ctx,
    platforms: Vec<PlatformView>,
    can_add: bool,
}

async fn platforms(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let actor = viewer.actor();
    let platforms = state
        .run(move |f| {
            let a = f.acting(actor);
            let names = Names::load(&a, None)?;
            Ok(a.platforms()?
                .iter()
                .map(|p| PlatformView::new(&names, p))
                .collect())
        })
        .await?;
    page(PlatformsPage {
        ctx: Ctx::new(&viewer, "platforms"),
        platforms,
        can_add: viewer.actor().may(Action::ManagePlatforms),
    })
}

#[derive(Template)]
#[template(path = "platform.html")]
struct PlatformPage {
    ctx: Ctx,
    platform: PlatformView,
    version: Option<String>,
    packages: Vec<Package>,
    sites: Vec<SiteView>,
    site_total: u64,
    can_manage: bool,
}

async fn platform(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> PageResult {
    let actor = viewer.actor();
    let (platform, version, packages, sites, site_total) = state
        .run(move |f| {
            let a = f.acting(actor);
            let platform = a.platform(&name)?;
            let (version, packages) = a.platform_code(&name)?;
            let page = a.sites(&engine::SiteQuery {
                platform_id: Some(platform.id),
                limit: PAGE_SIZE,
                ..Default::default()
            })?;
            let names = Names::load(&a, page.sites.iter().filter_map(|s| s.client_id))?;
            Ok((
                PlatformView::new(&names, &platform),
                version,
                packages,
                page.sites
                    .iter()
                    .map(|s| SiteView::new(&names, s))
                    .collect(),
                page.total,
            ))
        })
        .await?;
    page(PlatformPage {
        ctx: Ctx::new(&viewer, "platforms"),
        platform,
        version,
        packages,
        sites,
        site_total,
        can_manage: viewer.actor().may(Action::ManagePlatforms),
    })
}

async fn verify_platform(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let q = state
        .run(move |f| f.acting(actor).verify_platform(&name))
        .await?;
    see_task(&q)
}

#[derive(Deserialize)]
struct LockForm {
    #[serde(default)]
    locked: String,
}

async fn lock_platform(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<LockForm>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let locked = posted.form.locked == "true";
    let back = format!("/platforms/{name}");
    state
        .run(move |f| f.acting(actor).lock_platform(&name, locked))
        .await?;
    see(&back)
}

#[derive(Deserialize)]
struct UploadLimitForm {
    #[serde(default)]
    upload_limit: String,
}

async fn platform_upload_limit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<UploadLimitForm>,
) -> PageResult {
    let actor = posted.viewer.actor();
    let back = format!("/platforms/{name}");
    let limit = match posted.form.upload_limit.trim() {
        "" => "default".to_string(),
        l => l.to_string(),
    };
    state
        .run(move |f| f.acting(actor).set_platform_upload_limit(&name, &limit))
        .await?;
    see(&back)
}

async fn delete_platform(
    State(state): State<AppState>,
    Path(name): Path<String>,
    posted: Posted<NoFields>,
) -> PageResult {
    let actor = posted.viewer.actor();
    state
        .run(move |f| f.acting(actor).delete_platform(&name))
        .await?;
    see("/platforms")
}

#[derive(Template)]
#[template(path = "platform_new.html")]
struct NewPlatformPage {
    ctx: Ctx,
    form: PlatformForm,
    servers: Vec<String>,
    kinds: Vec<&'static str>,
    errors: FormErrors,
}

#[derive(Deserialize, Default, Clone)]
struct PlatformForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    server: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    php: String,
    #[serde(default)]
    upload_limit: String,
}

async fn new_platform_page(
    state: &AppState,
    viewer: &Viewer,
    form: PlatformForm,
    errors: FormErrors,
) -> PageResult {
    let actor = viewer.actor();
    let servers = state
        .run(move |f| {
            Ok(f.acting(actor)
                .servers()?
                .into_iter()
                .map(|s| s.name.to_string())
                .collect())
        })
        .await?;
    let status = errors.status();
    page_with_status(
        status,
        NewPlatformPage {
            ctx: Ctx::new(viewer, "platforms"),
            form,
            servers,
            kinds: model::PlatformKind::addable().map(|k| k.as_str()).collect(),
            errors,
        },
    )
}

async fn new_platform(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    if !viewer.actor().may(Action::ManagePlatforms) {
        return Err(WebError::from(engine::Error::Forbidden(
            "your role may not add platforms".into(),
        ))
        .into());
    }
    new_platform_page(
        &state,
        &viewer,
        PlatformForm::default(),
        FormErrors::default(),
    )
    .await
}

async fn create_platform(
    State(state): State<AppState>,
    posted: Posted<PlatformForm>,
) -> PageResult {
    let Posted { viewer, form } = posted;
    let actor = viewer.actor();
    let input = PlatformInput {
        name: form.name.trim().to_string(),
        server: form.server.clone(),
        path: form.path.trim().to_string(),
        kind: form.kind.clone(),
        php: Some(form.php.trim().to_string()).filter(|s| !s.is_empty()),
        upload_limit: Some(form.upload_limit.trim().to_string()).filter(|s| !s.is_empty()),
        ..PlatformInput::default()
    };
    match state
        .run(move |f| f.acting(actor).add_platform(&input))
        .await
    {
        Ok(q) => see_task(&q),
        Err(e) if super::is_form_error(&e) => {
            new_platform_page(&state, &viewer, form, FormErrors::from(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/servers", get(servers).post(create_server))
        .route("/servers/new", get(new_server))
        .route("/servers/{name}", get(server))
        .route("/servers/{name}/verify", post(verify_server))
        .route("/servers/{name}/services", post(edit_server))
        .route("/platforms", get(platforms).post(create_platform))
        .route("/platforms/new", get(new_platform))
        .route("/platforms/{name}", get(platform))
        .route("/platforms/{name}/verify", post(verify_platform))
        .route("/platforms/{name}/lock", post(lock_platform))
        .route(
            "/platforms/{name}/upload-limit",
            post(platform_upload_limit),
        )
        .route("/platforms/{name}/delete", post(delete_platform))
}
