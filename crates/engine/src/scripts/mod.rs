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

mod backup;
mod moves;
mod platform;
mod server;
mod site;

use backup::*;
use moves::*;
use platform::*;
use server::*;
use site::*;

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
