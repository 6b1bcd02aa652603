//! One short, linear script per task kind. A script only *describes* host changes, through
//! `host::Steps`: the dispatcher hands it `LiveSteps` (journaled, with undo), a dry run hands
//! it `DryRun`. Scripts never touch the state database; what a task changes in fjord's state
//! is the [`TaskEffect`] it returns, committed with the task's status.

use std::path::{Path, PathBuf};

use host::{Faults, NginxCtl, Steps};
use model::{
    DbEngine, DbService, HttpService, Platform, Server, Site, SiteDatabase, SiteStatus, Target,
    TaskKind,
};
use store::TaskEffect;

use crate::{Error, Fjord, Result};

/// What a task works on, loaded when it starts.
#[derive(Debug, Clone)]
pub struct TaskObjects {
    pub server: Server,
    pub platform: Option<Platform>,
    pub site: Option<Site>,
    /// For platform tasks: the platform's sites.
    pub sites: Vec<Site>,
    /// For a site with a database: the server offering it.
    pub db_server: Option<Server>,
    pub extra: Extra,
}

/// What some task kinds need beyond their target.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Clone: the site cloned from.
    pub source: Option<Box<TaskObjects>>,
    /// Migrate: where the site goes.
    pub to_platform: Option<Platform>,
    pub to_server: Option<Server>,
    pub to_db_server: Option<Server>,
    /// Batch migrate summary: the child tasks.
    pub children: Vec<model::Task>,
    /// Backup tasks: the site's backups and its effective retention.
    pub backups: Vec<store::Backup>,
    pub retention: Option<model::Retention>,
    /// Platform verify: every site of the state (their names and aliases are taken).
    pub all_sites: Vec<Site>,
}

impl TaskObjects {
    pub fn server(server: Server) -> TaskObjects {
        TaskObjects {
            server,
            platform: None,
            site: None,
            sites: Vec::new(),
            db_server: None,
            extra: Default::default(),
        }
    }

    pub fn target_name(&self, target: Target) -> String {
        match target {
            Target::Server(_) => self.server.name.to_string(),
            Target::Platform(_) => self
                .platform
                .as_ref()
                .map(|p| p.name.to_string())
                .unwrap_or_default(),
            Target::Site(_) => self
                .site
                .as_ref()
                .map(|s| s.name.to_string())
                .unwrap_or_default(),
        }
    }

    fn platform(&self) -> Result<&Platform> {
        self.platform
            .as_ref()
            .ok_or_else(|| Error::NotFound("the task's platform".into()))
    }

    /// The database service and its server for the site's database.
    fn db_service(&self, db: &SiteDatabase) -> Result<&DbService> {
        self.db_server
            .as_ref()
            .and_then(|s| s.db_service(db.engine))
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "the {} service of the site's database server",
                    db.engine
                ))
            })
    }

    fn site(&self) -> Result<&Site> {
        self.site
            .as_ref()
            .ok_or_else(|| Error::NotFound("the task's site".into()))
    }
}

/// What scripts need to know about this installation.
pub struct ScriptEnv {
    pub data_dir: PathBuf,
    pub faults: Faults,
}

impl Fjord {
    pub(crate) fn script_env(&self) -> ScriptEnv {
        ScriptEnv {
            data_dir: self.data_dir().to_path_buf(),
            faults: Faults::from_env(),
        }
    }
}

impl ScriptEnv {
    fn nginx_dir(&self, server: &Server) -> PathBuf {
        self.data_dir
            .join("config")
            .join(server.name.as_str())
            .join("nginx")
    }

    pub fn nginx_ctl(&self, server: &Server) -> NginxCtl {
        let HttpService::Nginx(nginx) = &server.http;
        NginxCtl {
            binary: nginx.binary.as_path().to_path_buf(),
            config: nginx.config.as_path().to_path_buf(),
            prefix: nginx.prefix.as_ref().map(|p| p.as_path().to_path_buf()),
            reload_command: match &nginx.reload {
                model::ReloadMethod::Signal => None,
                model::ReloadMethod::Command(argv) => Some(argv.clone()),
            },
            config_dir: self.nginx_dir(server),
            listen: nginx.listen,
            probe_host: render::PROBE_HOST.to_string(),
            probe_path: render::PROBE_GENERATION_PATH.to_string(),
        }
    }

    fn vhost_path(&self, server: &Server, site: &Site) -> PathBuf {
        self.nginx_dir(server)
            .join("vhost.d")
            .join(format!("{}.conf", site.name))
    }

    /// The vhost of an installed site whose writes are frozen while it moves.
    fn vhost_read_only(&self, server: &Server, platform: &Platform, site: &Site) -> Vec<u8> {
        let HttpService::Nginx(nginx) = &server.http;
        render::nginx_vhost_read_only(nginx, platform, site, &self.nginx_dir(server)).into_bytes()
    }

    fn vhost(&self, server: &Server, platform: &Platform, site: &Site) -> Vec<u8> {
        let HttpService::Nginx(nginx) = &server.http;
        let mut conf = render::nginx_vhost(nginx, platform, site, &self.nginx_dir(server));
        if self.faults.corrupt_vhost(site.name.as_str()) {
            conf.push_str("fjord_injected_fault_not_a_directive;\n");
        }
        conf.into_bytes()
    }
}

/// How to administer a database service (none for SQLite, which is a file).
pub fn db_ctl(service: &DbService) -> Option<host::DbCtl> {
    let kind = match service.engine {
        DbEngine::Mysql => host::DbKind::Mysql,
        DbEngine::Postgresql => host::DbKind::Postgresql,
        DbEngine::Sqlite => return None,
    };
    Some(host::DbCtl {
        kind,
        socket: service.socket.as_ref().map(|s| s.as_path().to_path_buf()),
        host: service.host.clone(),
        port: service.port,
        admin_user: service.admin_user.clone().unwrap_or_default(),
        password_file: service
            .password_file
            .as_ref()
            .map(|p| p.as_path().to_path_buf()),
        password_env: service.password_env.clone(),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DbMode {
    Install,
    Verify,
}

/// The site's database and its credentials file, in the site's private directory.
fn site_database(
    objects: &TaskObjects,
    db: &SiteDatabase,
    mode: DbMode,
    x: &mut dyn Steps,
) -> Result<()> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let service = objects.db_service(db)?;
    let private = render::site_private_dir(platform, site);
    x.make_dir(&platform.path.join("private"))?;
    x.make_dir(&private)?;
    let sqlite = render::site_sqlite_path(platform, site);
    match (db_ctl(service), mode) {
        (Some(ctl), DbMode::Install) => {
            x.create_database(&ctl, &db.name, &db.user, &db.password)?
        }
        (Some(ctl), DbMode::Verify) => x.repair_database(&ctl, &db.name, &db.user, &db.password)?,
        (None, DbMode::Install) if !sqlite.exists() => x.write_file(&sqlite, b"", 0o640)?,
        (None, DbMode::Verify) if !sqlite.exists() => {
            return Err(Error::Refused(format!(
                "the SQLite database {} is missing: restore the site from a backup",
                sqlite.display()
            )));
        }
        (None, _) => {}
    }
    let env = render::site_db_env(db, service, &sqlite);
    x.write_file(&private.join("db.env"), env.as_bytes(), 0o640)?;
    Ok(())
}

fn files_owner(server: &Server) -> Option<&str> {
    let HttpService::Nginx(nginx) = &server.http;
    nginx.files_owner.as_ref().map(|o| o.as_str())
}

/// Refuses a site task that the site's status does not allow; checked when the task is
/// queued (for a quick answer) and again when it runs (the authoritative check).
pub fn check_site_status(kind: TaskKind, site: &Site, force: bool) -> Result<()> {
    use SiteStatus::*;
    let allowed = match kind {
        TaskKind::SiteInstall => matches!(site.status, Queued | Failed),
        TaskKind::SiteImport => matches!(site.status, Queued | Failed),
        TaskKind::SiteVerify => matches!(site.status, Installed | Disabled | NeedsAttention),
        TaskKind::SiteDisable => site.status == Installed,
        TaskKind::SiteEnable => site.status == Disabled,
        TaskKind::SiteDelete => site.status == Disabled || force,
        TaskKind::SiteBackupDelete => true,
        TaskKind::SiteBackup | TaskKind::SiteRestore => {
            matches!(site.status, Installed | Disabled | NeedsAttention)
        }
        TaskKind::SiteMigrate => matches!(site.status, Installed | Disabled),
        TaskKind::SiteClone => matches!(site.status, Queued | Failed),
        _ => true,
    };
    if allowed {
        return Ok(());
    }
    let hint = match kind {
        TaskKind::SiteDelete => ": disable it first, or pass --force",
        _ => "",
    };
    Err(Error::Refused(format!(
        "site {} is {}: {} is not possible{hint}",
        site.name,
        site.status.as_str(),
        kind.as_str()
    )))
}

/// Runs the script of `kind`; returns the change to fjord's state to commit on success.
pub fn run(
    env: &ScriptEnv,
    kind: TaskKind,
    objects: &TaskObjects,
    args: &serde_json::Value,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let force = args.get("force").and_then(|f| f.as_bool()).unwrap_or(false);
    if let Some(site) = &objects.site {
        check_site_status(kind, site, force)?;
    }
    match kind {
        TaskKind::ServerVerify => server_verify(env, &objects.server, x),
        TaskKind::PlatformVerify => {
            platform_verify(objects.platform()?, &objects.extra.all_sites, x)
        }
        TaskKind::SiteInstall => site_install(env, objects, x),
        TaskKind::SiteVerify => site_verify(env, objects, x).map(|_| TaskEffect::None),
        TaskKind::SiteImport => site_verify(env, objects, x),
        TaskKind::SiteDisable => {
            let backup = site_backup(env, objects, x)?;
            let effect = site_set_served(env, objects, SiteStatus::Disabled, x)?;
            Ok(TaskEffect::Many(vec![backup, effect]))
        }
        TaskKind::SiteBackup => {
            let backup = site_backup(env, objects, x)?;
            let pruned = prune_backups(objects, x)?;
            Ok(TaskEffect::Many(vec![backup, pruned]))
        }
        TaskKind::SiteBackupDelete => {
            let ids: Vec<i64> = args
                .get("delete")
                .and_then(|d| d.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_i64()).collect())
                .unwrap_or_default();
            remove_backups(objects, &ids, x)
        }
        TaskKind::SiteClone => site_clone(env, objects, x),
        TaskKind::SiteMigrate => site_migrate(env, objects, args, x),
        TaskKind::PlatformMigrateAll => migrate_summary(objects, x),
        TaskKind::SiteRestore => site_restore(env, objects, args, x),
        TaskKind::SiteEnable => site_set_served(env, objects, SiteStatus::Installed, x),
        TaskKind::SiteDelete => {
            // A delete that cannot back the site up first does not go on, unless there is
            // nothing to back up: an install or clone that failed and was rolled back.
            let (platform, site) = (objects.platform()?, objects.site()?);
            let never_made =
                site.status == SiteStatus::Failed && !render::site_docroot(platform, site).exists();
            let backup = if never_made {
                x.log("the site was never installed (its install or clone failed and was rolled back): nothing to back up");
                TaskEffect::None
            } else {
                site_backup(env, objects, x)?
            };
            let effect = site_delete(env, objects, x)?;
            Ok(TaskEffect::Many(vec![backup, effect]))
        }
    }
}

/// The change to fjord's state when a task fails (after its rollback). A rollback that
/// lost data leaves its site needing attention, whatever the task.
pub fn failure_effect(task: &model::Task, data_lost: bool) -> TaskEffect {
    let (kind, target) = (task.kind, task.target);
    match (kind, target) {
        (_, Target::Site(id)) if data_lost => {
            TaskEffect::SetSiteStatus(id, SiteStatus::NeedsAttention)
        }
        (TaskKind::SiteVerify, Target::Site(site_id)) => {
            // The verify of a `site edit`: its names go back to what nginx still serves.
            let before = &task.args["names_before"];
            let aliases: Option<Vec<model::Hostname>> = before["aliases"].as_array().map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str())
                    .filter_map(|h| model::Hostname::parse("alias", h).ok())
                    .collect()
            });
            match (aliases, before["redirect_aliases"].as_bool()) {
                (Some(aliases), Some(redirect_aliases)) => TaskEffect::SetSiteNames {
                    site_id,
                    aliases,
                    redirect_aliases,
                },
                _ => TaskEffect::None,
            }
        }
        (TaskKind::SiteInstall | TaskKind::SiteImport | TaskKind::SiteClone, Target::Site(id)) => {
            TaskEffect::SetSiteStatus(id, SiteStatus::Failed)
        }
        _ => TaskEffect::None,
    }
}

/// Writes fjord's server-level nginx config and hooks it into the server's nginx.
fn server_verify(env: &ScriptEnv, server: &Server, x: &mut dyn Steps) -> Result<TaskEffect> {
    let HttpService::Nginx(nginx) = &server.http;
    let dir = env.nginx_dir(server);
    x.make_dir(dir.parent().expect("nginx dir has a parent"))?;
    x.make_dir(&dir)?;
    x.make_dir(&dir.join("vhost.d"))?;
    x.make_dir(&dir.join("disabled"))?;
    x.write_file(
        &dir.join("disabled/fjord-disabled.html"),
        render::disabled_page().as_bytes(),
        0o644,
    )?;
    let server_conf = dir.join("server.conf");
    let hook = nginx
        .include_dir
        .join(&format!("fjord-{}.conf", server.name));
    let mut changes = vec![
        (
            server_conf.clone(),
            Some(render::nginx_server_conf(nginx, &dir).into_bytes()),
        ),
        (hook, Some(render::nginx_hook(&server_conf).into_bytes())),
    ];
    // The generation file is rewritten by every reload; it only has to exist for the test.
    let generation = dir.join("generation.conf");
    if !generation.exists() {
        changes.push((generation, Some(host_generation_placeholder())));
    }
    x.nginx(&env.nginx_ctl(server), changes)?;
    for ctl in server.db.iter().filter_map(db_ctl) {
        x.check_db_admin(&ctl)?;
    }
    Ok(TaskEffect::None)
}

fn host_generation_placeholder() -> Vec<u8> {
    b"# written by fjord before each reload\n".to_vec()
}

/// Makes sure the platform's directories exist and records the sites found in `sites/` that
/// fjord does not know, each with an import task.
fn platform_verify(platform: &Platform, all: &[Site], x: &mut dyn Steps) -> Result<TaskEffect> {
    // Sites recorded but not installed yet (queued with the platform) have nothing there.
    let own = all
        .iter()
        .filter(|s| s.platform_id == platform.id)
        .filter(|s| matches!(s.status, SiteStatus::Installed | SiteStatus::Disabled))
        .count();
    if own > 0 && !platform.path.as_path().is_dir() {
        return Err(Error::Refused(format!(
            "the code base of platform {} at {} is gone, and {own} site(s) live on it; \
             restore it (or each site from its backups), then verify again",
            platform.name, platform.path
        )));
    }
    x.make_dir(platform.path.as_path())?;
    let sites_dir = platform.path.join("sites");
    x.make_dir(&sites_dir)?;
    x.make_dir(&platform.path.join("private"))?;
    let mut found = Vec::new();
    for dir in host::list_subdirs(&sites_dir)? {
        if dir.starts_with('.') {
            continue;
        }
        match model::Hostname::parse("site directory", &dir) {
            Ok(name) if name.as_str() == dir => {
                match all.iter().find(|s| s.all_names().any(|n| *n == name)) {
                    None => {
                        x.log(&format!("found site {name}: queueing its import"));
                        found.push(name);
                    }
                    Some(site) if site.platform_id == platform.id && site.name == name => {}
                    Some(site) => x.log(&format!(
                        "skipped sites/{dir}: {name} is already taken by site {} (as its {}); \
                         rename the directory, or remove it if it is left over",
                        site.name,
                        if site.name == name {
                            "name, on another platform"
                        } else {
                            "alias"
                        }
                    )),
                }
            }
            Ok(_) => x.log(&format!(
                "skipped sites/{dir}: not in canonical (lowercase, punycode) form"
            )),
            Err(e) => x.log(&format!("skipped sites/{dir}: {e}")),
        }
    }
    Ok(if found.is_empty() {
        TaskEffect::None
    } else {
        TaskEffect::ImportSites {
            platform_id: platform.id,
            names: found,
        }
    })
}

fn site_install(env: &ScriptEnv, objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let docroot = render::site_docroot(platform, site);
    x.make_dir(&platform.path.join("sites"))?;
    x.make_dir(&docroot)?;
    if !docroot.join("index.html").exists() && !docroot.join("index.htm").exists() {
        x.write_file(
            &docroot.join("index.html"),
            render::placeholder_index(site).as_bytes(),
            0o644,
        )?;
    }
    x.fix_permissions(&docroot, files_owner(&objects.server))?;
    if let Some(db) = &site.database {
        site_database(objects, db, DbMode::Install, x)?;
    }
    site_set_served(env, objects, SiteStatus::Installed, x)
}

/// Verify (and import) rewrite everything a site needs and repair what drifted; running it
/// twice changes nothing the second time.
fn site_verify(env: &ScriptEnv, objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let docroot = render::site_docroot(platform, site);
    // Verify repairs; it never makes up a site whose files are gone (an empty docroot
    // would then be served as if it were the site).
    if !platform.path.as_path().is_dir() {
        return Err(Error::Refused(format!(
            "the code base of platform {} at {} is gone; restore it, then verify again",
            platform.name, platform.path
        )));
    }
    if !docroot.exists() {
        return Err(Error::Refused(format!(
            "the files of site {} at {} are gone; restore them from a backup \
             (fjord site restore {})",
            site.name,
            docroot.display(),
            site.name
        )));
    }
    x.make_dir(&platform.path.join("sites"))?;
    x.make_dir(&docroot)?;
    x.fix_permissions(&docroot, files_owner(&objects.server))?;
    if let Some(db) = &site.database {
        site_database(objects, db, DbMode::Verify, x)?;
    }
    let served = match site.status {
        SiteStatus::Disabled => site.clone(),
        _ => Site {
            status: SiteStatus::Installed,
            ..site.clone()
        },
    };
    let vhost = env.vhost(&objects.server, platform, &served);
    x.nginx(
        &env.nginx_ctl(&objects.server),
        vec![(env.vhost_path(&objects.server, site), Some(vhost))],
    )?;
    Ok(TaskEffect::SetSiteStatus(site.id, served.status))
}

fn site_set_served(
    env: &ScriptEnv,
    objects: &TaskObjects,
    status: SiteStatus,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let served = Site {
        status,
        ..site.clone()
    };
    let vhost = env.vhost(&objects.server, platform, &served);
    x.nginx(
        &env.nginx_ctl(&objects.server),
        vec![(env.vhost_path(&objects.server, site), Some(vhost))],
    )?;
    Ok(TaskEffect::SetSiteStatus(site.id, status))
}

fn site_delete(env: &ScriptEnv, objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    x.nginx(
        &env.nginx_ctl(&objects.server),
        vec![(env.vhost_path(&objects.server, site), None)],
    )?;
    x.remove_tree(&render::site_docroot(platform, site))?;
    if let Some(db) = &site.database
        && let Some(ctl) = db_ctl(objects.db_service(db)?)
    {
        x.drop_database(&ctl, &db.name, &db.user, &db.password)?;
    }
    x.remove_tree(&render::site_private_dir(platform, site))?;
    Ok(TaskEffect::DeleteSite(site.id))
}

impl ScriptEnv {
    fn backup_dir(&self, site: &Site) -> PathBuf {
        self.data_dir.join("backups").join(site.name.as_str())
    }
}

/// Backs the site up: docroot, private files and a consistent dump of its database.
fn site_backup(env: &ScriptEnv, objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let request = backup_request(env, objects)?;
    let written = x.create_backup(&request)?;
    backup_effect(objects, &request, written)
}

/// What a backup of the site holds and where it goes.
fn backup_request(env: &ScriptEnv, objects: &TaskObjects) -> Result<host::BackupRequest> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let dir = env.backup_dir(site);
    let stamp = model::time::utc_stamp(store::now_ms());
    let mut out = dir.join(format!("{}-{stamp}.tar.zst", site.name));
    let mut n = 2;
    while out.exists() {
        out = dir.join(format!("{}-{stamp}_{n}.tar.zst", site.name));
        n += 1;
    }
    let db = match &site.database {
        Some(db) => match db_ctl(objects.db_service(db)?) {
            // A database that is gone (a site needing attention) is not in the backup; the
            // files are.
            Some(ctl)
                if site.status == SiteStatus::NeedsAttention
                    && !ctl.database_exists(&db.name)? =>
            {
                None
            }
            Some(ctl) => Some(host::BackupDb::Server {
                ctl,
                name: db.name.clone(),
            }),
            None => Some(host::BackupDb::Sqlite {
                path: render::site_sqlite_path(platform, site),
            }),
        },
        None => None,
    };
    let private = render::site_private_dir(platform, site);
    Ok(host::BackupRequest {
        out,
        manifest: host::Manifest {
            format: host::BACKUP_FORMAT,
            fjord_version: env!("CARGO_PKG_VERSION").to_string(),
            site: site.name.to_string(),
            platform: platform.name.to_string(),
            platform_kind: platform.kind.as_str().to_string(),
            db_engine: db.as_ref().and(
                site.database
                    .as_ref()
                    .map(|d| d.engine.as_str().to_string()),
            ),
            db_member: None,
            created_at: model::time::utc_display(store::now_ms()),
            members: Vec::new(),
        },
        docroot: render::site_docroot(platform, site),
        private: private.exists().then_some(private),
        db,
    })
}

/// The new backup's row, once it is written (none in a dry run).
fn backup_effect(
    objects: &TaskObjects,
    request: &host::BackupRequest,
    written: Option<host::Manifest>,
) -> Result<TaskEffect> {
    let site = objects.site()?;
    if written.is_none() {
        return Ok(TaskEffect::None);
    }
    let size = std::fs::metadata(&request.out)
        .map(|m| m.len() as i64)
        .unwrap_or(0);
    Ok(TaskEffect::AddBackup(store::NewBackup {
        site_id: site.id,
        site_name: site.name.to_string(),
        path: request.out.display().to_string(),
        size,
    }))
}

/// Restores a site from one of its backups. The archive is checked whole before anything
/// changes; the current state is backed up first; files, private files and database are
/// then swapped in, each step undoable.
fn site_restore(
    env: &ScriptEnv,
    objects: &TaskObjects,
    args: &serde_json::Value,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let archive = PathBuf::from(
        args.get("backup")
            .and_then(|b| b.as_str())
            .unwrap_or_default(),
    );
    // Extracting into staging checks every member on the way: a corrupt, truncated or
    // foreign archive fails here, and the journal removes the staging directories, before
    // anything the site serves has changed.
    let docroot = render::site_docroot(platform, site);
    let private = render::site_private_dir(platform, site);
    x.make_dir(&platform.path.join("private"))?;
    let tag = format!("restore-{}", host::random_hex(4));
    let files_stage = host::trash_path(&docroot, &tag);
    let private_stage = host::trash_path(&private, &tag);
    // The current state is backed up while the archive is extracted: both must be done
    // before anything changes, and neither touches what the other does.
    let request = backup_request(env, objects)?;
    let done = x.extract_and_back_up(&archive, &files_stage, &private_stage, &request)?;
    let dump = done.dump;
    if let Some(manifest) = &done.manifest {
        let own = args.get("own").and_then(|o| o.as_bool()).unwrap_or(false);
        check_backup_fits(&archive, manifest, site, own)?;
    }
    let before = backup_effect(objects, &request, done.backup)?;
    x.swap_tree(&docroot, &files_stage)?;
    x.swap_tree(&private, &private_stage)?;
    if let Some(db) = &site.database {
        if let Some(ctl) = db_ctl(objects.db_service(db)?) {
            x.replace_database(&ctl, &db.name, &db.user, &db.password, &dump)?;
        }
        // Credentials are the site's own, whatever the backup held.
        site_database(objects, db, DbMode::Verify, x)?;
    }
    if site.status == SiteStatus::NeedsAttention {
        // Restored whole from a backup: the site is served again.
        let served = site_set_served(env, objects, SiteStatus::Installed, x)?;
        return Ok(TaskEffect::Many(vec![before, served]));
    }
    Ok(before)
}

/// Refuses a backup of another site, or one whose database engine is not the site's. One of
/// the site's `own` backups may name the site as it was called when it was taken.
fn check_backup_fits(
    archive: &Path,
    manifest: &host::Manifest,
    site: &Site,
    own: bool,
) -> Result<()> {
    if !own && manifest.site != site.name.as_str() {
        return Err(Error::Refused(format!(
            "{} is a backup of site {}, not of {}",
            archive.display(),
            manifest.site,
            site.name
        )));
    }
    let wanted_engine = site
        .database
        .as_ref()
        .map(|d| d.engine.as_str().to_string());
    if manifest.db_engine != wanted_engine {
        return Err(Error::Refused(format!(
            "{} holds a {} database; the site has {}",
            archive.display(),
            manifest.db_engine.as_deref().unwrap_or("no"),
            wanted_engine.as_deref().unwrap_or("none")
        )));
    }
    Ok(())
}

/// The archive a backup step wrote (or, in a dry run, a stand-in name).
fn backup_path(effect: &TaskEffect) -> PathBuf {
    match effect {
        TaskEffect::AddBackup(b) => PathBuf::from(&b.path),
        _ => PathBuf::from("(the new backup)"),
    }
}

/// Puts a backup's files, private files and database in place as `site` on `platform`, whose
/// docroot and private dir must not exist yet: the deploy half of clone and migrate.
fn deploy(objects: &TaskObjects, archive: &Path, x: &mut dyn Steps) -> Result<()> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let docroot = render::site_docroot(platform, site);
    let private = render::site_private_dir(platform, site);
    if docroot.exists() {
        return Err(Error::Refused(format!(
            "{} already exists: fjord will not overwrite it",
            docroot.display()
        )));
    }
    x.make_dir(&platform.path.join("sites"))?;
    x.make_dir(&platform.path.join("private"))?;
    let tag = format!("deploy-{}", host::random_hex(4));
    let files_stage = host::trash_path(&docroot, &tag);
    let private_stage = host::trash_path(&private, &tag);
    let (dump, _) = x.extract_backup(archive, &files_stage, &private_stage)?;
    x.swap_tree(&docroot, &files_stage)?;
    x.swap_tree(&private, &private_stage)?;
    if let Some(db) = &site.database {
        if let Some(ctl) = db_ctl(objects.db_service(db)?) {
            x.create_database_from(&ctl, &db.name, &db.user, &db.password, &dump)?;
        }
        site_database(objects, db, DbMode::Verify, x)?;
    }
    x.fix_permissions(&docroot, files_owner(&objects.server))?;
    Ok(())
}

/// Clone: back the source up, deploy that backup as the new site, serve it. The source site
/// is only read.
fn site_clone(env: &ScriptEnv, objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let source = objects
        .extra
        .source
        .as_deref()
        .ok_or_else(|| Error::NotFound("the site to clone from".into()))?;
    let backup = site_backup(env, source, x)?;
    deploy(objects, &backup_path(&backup), x)?;
    let served = site_set_served(env, objects, SiteStatus::Installed, x)?;
    Ok(TaskEffect::Many(vec![backup, served]))
}

/// Migrate: copy the site to its new place while it serves, freeze its writes for the last
/// pass, switch, and remove it from its old place, so that nothing the site acknowledged is
/// lost and it answers reads throughout:
/// 1. back up, deploy the files at the new place (the database stays where it is, or is
///    copied below);
/// 2. if the database moves to another server: freeze writes (HTTP writes answered 503, the
///    database user held to reads) and copy it;
/// 3. copy what changed in the files since the backup began;
/// 4. switch the vhost to the new place, still read-only; set the old files aside (writes
///    to them fail from here) and copy what changed in them since step 3;
/// 5. serve the site read-write at its new place; drop the old database if it moved.
///
/// Until the switch the old site serves; any failure puts everything back.
fn site_migrate(
    env: &ScriptEnv,
    objects: &TaskObjects,
    args: &serde_json::Value,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let (old_platform, old_site) = (objects.platform()?, objects.site()?);
    let new_platform = objects
        .extra
        .to_platform
        .clone()
        .ok_or_else(|| Error::NotFound("the target platform".into()))?;
    let new_server = objects
        .extra
        .to_server
        .clone()
        .ok_or_else(|| Error::NotFound("the target server".into()))?;
    let new_name = match args.get("name").and_then(|n| n.as_str()) {
        Some(n) => model::Hostname::parse("new site name", n)?,
        None => old_site.name.clone(),
    };
    let new_db = match (
        &old_site.database,
        &objects.extra.to_db_server,
        args.get("db_name").and_then(|n| n.as_str()),
    ) {
        (Some(db), Some(server), Some(name)) => Some(SiteDatabase {
            server_id: server.id,
            engine: db.engine,
            name: name.to_string(),
            user: name.to_string(),
            password: host::random_secret(16)?,
        }),
        (db, _, _) => db.clone(),
    };
    let new_site = Site {
        name: new_name,
        platform_id: new_platform.id,
        database: new_db.clone(),
        ..old_site.clone()
    };
    let new_objects = TaskObjects {
        server: new_server.clone(),
        platform: Some(new_platform.clone()),
        site: Some(new_site.clone()),
        sites: Vec::new(),
        db_server: objects
            .extra
            .to_db_server
            .clone()
            .or_else(|| objects.db_server.clone()),
        extra: Extra::default(),
    };
    let moves_files = new_platform.id != old_platform.id || new_site.name != old_site.name;
    let db_moves = new_db != old_site.database;
    let serving = old_site.status == SiteStatus::Installed;
    let (old_docroot, new_docroot) = (
        render::site_docroot(old_platform, old_site),
        render::site_docroot(&new_platform, &new_site),
    );
    let (old_private, new_private) = (
        render::site_private_dir(old_platform, old_site),
        render::site_private_dir(&new_platform, &new_site),
    );
    let old_vhost = env.vhost_path(&objects.server, old_site);
    let new_vhost = env.vhost_path(&new_server, &new_site);
    // A file changed from a second before the backup on is copied again by the last passes
    // (file times have a granularity; copying too much is only slower).
    let since_backup = store::now_ms() / 1000 - 1;

    // 1. Copy while the site serves.
    let backup = site_backup(env, objects, x)?;
    if moves_files {
        let files_only = TaskObjects {
            site: Some(Site {
                database: None,
                ..new_site.clone()
            }),
            ..new_objects.clone()
        };
        deploy(&files_only, &backup_path(&backup), x)?;
    }

    // 2. A database that moves is copied with the site's writes frozen.
    if db_moves
        && let (Some(old_db), Some(db)) = (&old_site.database, &new_site.database)
        && let (Some(from), Some(to)) = (
            db_ctl(objects.db_service(old_db)?),
            db_ctl(new_objects.db_service(db)?),
        )
    {
        if serving {
            let read_only = env.vhost_read_only(&objects.server, old_platform, old_site);
            x.nginx(
                &env.nginx_ctl(&objects.server),
                vec![(old_vhost.clone(), Some(read_only))],
            )?;
        }
        x.freeze_database_writes(&from, &old_db.name, &old_db.user)?;
        x.copy_database(&from, &old_db.name, &to, &db.name, &db.user, &db.password)?;
    }

    // 3. What changed in the files since the backup began.
    let since_first_pass = store::now_ms() / 1000 - 1;
    if moves_files {
        x.sync_tree(&old_docroot, &new_docroot, since_backup, true)?;
        if old_private.exists() {
            x.sync_tree(&old_private, &new_private, since_backup, true)?;
        }
    }
    if let Some(db) = &new_site.database {
        // The credentials file at the new place names the database the site now uses.
        site_database(&new_objects, db, DbMode::Verify, x)?;
    }

    // 4. Switch, still read-only; the new vhost and the removal of the old one are tested and
    // reloaded together when both are on one nginx.
    let switched = |read_only: bool| {
        if read_only && serving {
            env.vhost_read_only(&new_server, &new_platform, &new_site)
        } else {
            env.vhost(&new_server, &new_platform, &new_site)
        }
    };
    let last_pass = moves_files && serving;
    if new_server.id == objects.server.id {
        let mut changes = vec![(new_vhost.clone(), Some(switched(last_pass)))];
        if old_vhost != new_vhost {
            changes.push((old_vhost, None));
        }
        x.nginx(&env.nginx_ctl(&new_server), changes)?;
    } else {
        x.nginx(
            &env.nginx_ctl(&new_server),
            vec![(new_vhost.clone(), Some(switched(last_pass)))],
        )?;
        x.nginx(&env.nginx_ctl(&objects.server), vec![(old_vhost, None)])?;
    }
    if moves_files {
        // Set aside, the old files take no more writes; what they took since step 3 is
        // copied (nothing is removed: the new place may already hold newer files).
        if let Some(aside) = x.remove_tree(&old_docroot)? {
            x.sync_tree(&aside, &new_docroot, since_first_pass, false)?;
        }
        if let Some(aside) = x.remove_tree(&old_private)? {
            x.sync_tree(&aside, &new_private, since_first_pass, false)?;
        }
        x.fix_permissions(&new_docroot, files_owner(&new_server))?;
    }

    // 5. Read-write at the new place.
    if last_pass {
        x.nginx(
            &env.nginx_ctl(&new_server),
            vec![(new_vhost, Some(switched(false)))],
        )?;
    }
    if db_moves
        && let Some(db) = &old_site.database
        && let Some(ctl) = db_ctl(objects.db_service(db)?)
    {
        x.drop_database(&ctl, &db.name, &db.user, &db.password)?;
    }
    Ok(TaskEffect::Many(vec![
        backup,
        TaskEffect::MoveSite {
            site_id: old_site.id,
            platform_id: new_platform.id,
            name: new_site.name.clone(),
            database: new_db,
        },
    ]))
}

/// The summary of a batch migrate: each child's result; fails if any child failed.
fn migrate_summary(objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let children = &objects.extra.children;
    let mut failed = Vec::new();
    for child in children {
        x.log(&format!(
            "task {} {} {}: {}{}",
            child.id,
            child.kind.as_str(),
            child.target_name,
            child.status.as_str(),
            child
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
        if child.status != model::TaskStatus::Success {
            failed.push(child.target_name.clone());
        }
    }
    if failed.is_empty() {
        x.log(&format!("all {} sites migrated", children.len()));
        Ok(TaskEffect::None)
    } else {
        Err(Error::Refused(format!(
            "{} of {} migrations failed: {}",
            failed.len(),
            children.len(),
            failed.join(", ")
        )))
    }
}

/// Removes the backups the retention policy no longer keeps (never the one just written,
/// which is not in the list yet).
fn prune_backups(objects: &TaskObjects, x: &mut dyn Steps) -> Result<TaskEffect> {
    let Some(retention) = objects.extra.retention else {
        return Ok(TaskEffect::None);
    };
    // The new backup counts as the newest.
    let mut list: Vec<(i64, i64)> = objects
        .extra
        .backups
        .iter()
        .map(|b| (b.id, b.created_at))
        .collect();
    list.push((i64::MAX, store::now_ms()));
    let prunable: Vec<i64> = retention
        .prunable(&list, store::now_ms())
        .into_iter()
        .filter(|id| *id != i64::MAX)
        .collect();
    if !prunable.is_empty() {
        x.log(&format!(
            "retention {retention:?}: removing {} old backup(s)",
            prunable.len()
        ));
    }
    remove_backups(objects, &prunable, x)
}

fn remove_backups(objects: &TaskObjects, ids: &[i64], x: &mut dyn Steps) -> Result<TaskEffect> {
    for id in ids {
        let backup = objects
            .extra
            .backups
            .iter()
            .find(|b| b.id == *id)
            .ok_or_else(|| Error::NotFound(format!("backup {id} of this site")))?;
        x.remove_tree(Path::new(&backup.path))?;
    }
    Ok(TaskEffect::RemoveBackups(ids.to_vec()))
}
