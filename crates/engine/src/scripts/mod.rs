//! One short, linear script per task kind. A script only *describes* host changes, through
//! `host::Steps`: the dispatcher hands it `LiveSteps` (journaled, with undo), a dry run hands
//! it `DryRun`. Scripts never touch the state database; what a task changes in fjord's state
//! is the [`TaskEffect`] it returns, committed with the task's status.

use std::path::{Path, PathBuf};

use host::{Faults, NginxCtl, Ownership, PhpFpmCtl, Steps};
use model::{
    DbEngine, DbService, HttpService, PhpFpmService, Platform, Server, Site, SiteDatabase,
    SiteStatus, Target, TaskKind,
};
use store::TaskEffect;

use crate::{Error, Fjord, Result, kinds};

mod backup;
mod https;
mod moves;
mod platform;
mod server;
pub use server::nginx_hook;
mod site;

use backup::*;
pub use https::ORDERS_IN_FLIGHT;
use https::*;
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

/// How a site's web server and its database server, two machines, reach each other.
#[derive(Debug, Clone)]
pub struct DbReach {
    /// The web server's address as the database server sees it: where the site's database
    /// user connects from (its grants name it).
    pub client_host: String,
    /// The database server's address as the web server sees it: where the site connects to.
    pub server_host: String,
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
    /// Backup and restore tasks: backup targets, the site's copies there, what to copy.
    pub copies: crate::ops::CopyPlan,
    /// How the site's web server and its database server reach each other, when they are
    /// two machines (set by the dispatcher, which knows the links).
    pub db_reach: Option<DbReach>,
    /// The site's database service as the site reaches it over `db_reach`.
    pub site_db: Option<DbService>,
    /// Platform verify: every site of the state (their names and aliases are taken).
    pub all_sites: Vec<Site>,
    /// Platform verify: the servers of its sites' databases.
    pub db_servers: Vec<Server>,
    /// Site tasks: the certificate its vhost serves HTTPS with.
    pub tls: Option<model::TlsFiles>,
    /// Platform tasks: the certificate of each of its sites that has one, by site id.
    pub tls_of_sites: std::collections::BTreeMap<i64, model::TlsFiles>,
    /// A site's certificate, install and verify tasks: the installation's ACME account.
    pub acme_account: Option<store::AcmeAccount>,
    /// A site's install and verify tasks: its certificate as the state records it.
    pub certificate: Option<store::SiteCertificate>,
    /// A server's batch of certificates: each installed or disabled site of the server, as a
    /// site task would see it, with its certificate and the ACME account.
    pub fleet: Vec<TaskObjects>,
    /// A server's batch of certificates: how many orders the CA's limit leaves room for now
    /// (none: no limit known).
    pub orders_room: Option<usize>,
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
    /// The administration of the site's database server, its grants naming where the site
    /// connects from.
    pub(crate) fn db_ctl(&self, db: &SiteDatabase) -> Result<Option<host::DbCtl>> {
        let mut ctl = db_ctl(self.db_service(db)?);
        if let (Some(ctl), Some(reach)) = (&mut ctl, &self.extra.db_reach) {
            ctl.client_host = Some(reach.client_host.clone());
        }
        Ok(ctl)
    }

    /// Sets how the web server and the database server, two machines, reach each other:
    /// the site connects to the database server's address over TCP, and its database user is
    /// granted from the web server's address only.
    pub(crate) fn reach_db_over(&mut self, reach: DbReach) -> Result<()> {
        if let Some(db) = self.site.as_ref().and_then(|s| s.database.clone()) {
            let mut service = self.db_service(&db)?.clone();
            service.socket = None;
            service.host = Some(reach.server_host.clone());
            self.extra.site_db = Some(service);
        }
        self.extra.db_reach = Some(reach);
        Ok(())
    }

    /// The site's database service as the site reaches it (see [`TaskObjects::reach_db_over`]).
    fn site_db_service(&self, db: &SiteDatabase) -> Result<&DbService> {
        match &self.extra.site_db {
            Some(service) => Ok(service),
            None => self.db_service(db),
        }
    }

    fn db_service(&self, db: &SiteDatabase) -> Result<&DbService> {
        self.db_server
            .as_ref()
            .and_then(|s| s.db_service(db.engine))
            .ok_or_else(|| {
                Error::NotFound(
                    format!("the {} service of the site's database server", db.engine).into(),
                )
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
    pub installation: String,
    /// The site's client's address, when mail is set up and the client has one.
    pub mail_to: Option<model::EmailAddress>,
    /// Mail to send once the task has succeeded.
    pub outbox: std::sync::Mutex<Vec<crate::notify::Mail>>,
    /// Reads of the machine the task's steps are made on (its server's).
    pub reads: std::sync::Arc<dyn host::Reads>,
    /// fjord's dir on that machine, when it is a remote server.
    pub remote_dir: Option<PathBuf>,
}

impl Fjord {
    pub(crate) fn script_env(&self) -> ScriptEnv {
        ScriptEnv {
            data_dir: self.data_dir().to_path_buf(),
            faults: Faults::from_env(),
            installation: self.installation.clone(),
            mail_to: None,
            outbox: Default::default(),
            reads: std::sync::Arc::new(host::LocalReads),
            remote_dir: None,
        }
    }
}

impl ScriptEnv {
    /// fjord's dir on the server's machine: its data dir here, the dir given to a remote
    /// server there.
    pub(crate) fn machine_dir<'a>(&'a self, server: &'a Server) -> &'a Path {
        match &server.remote {
            Some(remote) => remote.dir.as_path(),
            None => &self.data_dir,
        }
    }

    pub(super) fn nginx_dir(&self, server: &Server) -> PathBuf {
        self.machine_dir(server)
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
            listen: nginx.listen[0],
            probe_host: render::PROBE_HOST.to_string(),
            probe_path: render::PROBE_GENERATION_PATH.to_string(),
        }
    }

    /// The Unix user (and group, and php-fpm pool) a PHP site runs as: named after this
    /// installation and the site's id, so that it never clashes with the machine's own
    /// users or another installation's, and keeps its name when the site is renamed.
    pub fn site_user(&self, site: &Site) -> String {
        format!("fj{}-{}", self.installation, site.id)
    }

    /// A site's log dir: named by its user, so it stays through a rename or a move.
    pub fn site_log_dir(&self, site: &Site) -> PathBuf {
        let machine_dir = self.remote_dir.as_deref().unwrap_or(&self.data_dir);
        crate::ops::site_log_dir(machine_dir, &self.site_user(site))
    }

    /// A site's log dir and its files, with their writers: nginx's two logs and, for a site
    /// that runs PHP, PHP's, written by the site's user (whose group reads them all).
    pub(crate) fn site_logs(&self, platform: &Platform, site: &Site) -> host::LogDir {
        let user = platform.kind.runs_php().then(|| self.site_user(site));
        let mut files: Vec<host::LogFile> = [render::ACCESS_LOG, render::ERROR_LOG]
            .into_iter()
            .map(|name| host::LogFile {
                name: name.to_string(),
                owner: None,
            })
            .collect();
        if let Some(user) = &user {
            files.push(host::LogFile {
                name: render::PHP_ERROR_LOG.to_string(),
                owner: Some(user.clone()),
            });
        }
        host::LogDir {
            dir: self.site_log_dir(site),
            group: user,
            files,
        }
    }

    fn php_dir(&self, server: &Server, service: &PhpFpmService) -> PathBuf {
        self.machine_dir(server)
            .join("config")
            .join(server.name.as_str())
            .join(format!("php-{}", service.version))
    }

    pub fn php_ctl(&self, server: &Server, service: &PhpFpmService) -> PhpFpmCtl {
        let dir = self.php_dir(server, service);
        PhpFpmCtl {
            binary: service.binary.as_path().to_path_buf(),
            config: service.config.as_path().to_path_buf(),
            pid_file: service.pid_file.as_path().to_path_buf(),
            pool_dir: service.pool_dir.as_path().to_path_buf(),
            probe_socket: dir.join("probe.sock"),
            probe_user: "nobody".into(),
            config_dir: dir,
        }
    }

    /// A site's pool at one place (platform and name): while a site moves, its old place
    /// and its new one each run in a pool of their own, with their own paths.
    pub fn pool_name(&self, platform: &Platform, site: &Site) -> String {
        let name_hash = host::sha256_hex(site.name.as_str().as_bytes());
        format!(
            "{}-{}-{}",
            self.site_user(site),
            platform.id,
            &name_hash[..6]
        )
    }

    fn pool_path(&self, service: &PhpFpmService, pool: &str) -> PathBuf {
        service.pool_dir.join(format!("fjord-{pool}.conf").as_str())
    }

    /// The site as its application sees it.
    pub(crate) fn site_app<'a>(&self, objects: &'a TaskObjects) -> Result<kinds::SiteApp<'a>> {
        let (platform, site) = (objects.platform()?, objects.site()?);
        let private_dir = render::site_private_dir(platform, site);
        let files_dir = render::site_files_dir(platform, site);
        let php = if platform.kind.runs_php() {
            let service = php_service(&objects.server, platform)?;
            let tmp_dir = private_dir.join("tmp");
            let pool = self.pool_name(platform, site);
            Some(kinds::SitePhp {
                user: self.site_user(site),
                cli: PathBuf::from(service.cli()),
                socket: self
                    .php_dir(&objects.server, service)
                    .join(format!("{pool}.sock")),
                pool,
                site_config: private_dir.join("settings.php"),
                open_basedir: [
                    platform.path.as_path().to_path_buf(),
                    files_dir.clone(),
                    private_dir.clone(),
                ]
                .into_iter()
                .chain(kinds::of(platform.kind).system_libraries(&*self.reads))
                .collect(),
                tmp_dir,
            })
        } else {
            None
        };
        let db = match &site.database {
            Some(db) => Some((db, objects.site_db_service(db)?)),
            None => None,
        };
        Ok(kinds::SiteApp {
            reads: self.reads.clone(),
            platform,
            site,
            sqlite: render::site_sqlite_path(platform, site),
            files_dir,
            private_dir,
            php,
            db,
            url: objects
                .server
                .site_url_of(site, objects.extra.tls.is_some()),
        })
    }

    fn vhost_path(&self, server: &Server, site: &Site) -> PathBuf {
        self.nginx_dir(server)
            .join("vhost.d")
            .join(format!("{}.conf", site.name))
    }

    /// The vhost of an installed site whose writes are frozen while it moves.
    fn vhost_read_only(&self, objects: &TaskObjects) -> Result<Vec<u8>> {
        let spec = self.vhost_spec(objects, render::VhostState::ReadOnly)?;
        Ok(render::nginx_vhost(&spec).into_bytes())
    }

    fn vhost(&self, objects: &TaskObjects) -> Result<Vec<u8>> {
        let spec = self.vhost_spec(objects, render::VhostState::Serving)?;
        let mut conf = render::nginx_vhost(&spec);
        if self.faults.corrupt_vhost(&spec.name) {
            conf.push_str("fjord_injected_fault_not_a_directive;\n");
        }
        Ok(conf.into_bytes())
    }

    /// Everything a web server needs to serve the task's site, from the state (a disabled
    /// site is disabled whatever `state`).
    fn vhost_spec(
        &self,
        objects: &TaskObjects,
        state: render::VhostState,
    ) -> Result<render::VhostSpec> {
        let app = self.site_app(objects)?;
        let web = kinds::of(app.platform.kind).web(&app);
        let HttpService::Nginx(nginx) = &objects.server.http;
        Ok(vhost_spec(
            nginx,
            app.platform,
            app.site,
            web,
            &self.nginx_dir(&objects.server),
            objects.extra.tls.clone(),
            Some(self.site_log_dir(app.site)),
            state,
        ))
    }
}

/// What a site's vhost serves, and how: the one place a vhost's contents are decided from
/// the state, whichever web server renders it. `config_dir` is fjord's config dir of the
/// server's nginx; `tls` the site's certificate, once it has one; `log_dir` the site's log
/// dir ([`ScriptEnv::site_log_dir`]), which a task's vhost always names (`None` leaves
/// nginx's own logs: a vhost written by hand, beside fjord's, in the benchmarks).
#[allow(clippy::too_many_arguments)] // each is a separate fact of the state; no two travel together
pub fn vhost_spec(
    nginx: &model::NginxService,
    platform: &Platform,
    site: &Site,
    web: render::WebApp,
    config_dir: &Path,
    tls: Option<model::TlsFiles>,
    log_dir: Option<PathBuf>,
    state: render::VhostState,
) -> render::VhostSpec {
    render::VhostSpec {
        name: site.name.as_str().to_string(),
        aliases: site
            .aliases
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        redirect_aliases: site.redirect_aliases,
        platform: platform.name.to_string(),
        http_listen: nginx.listen.clone(),
        https_listen: nginx.https_listen.clone(),
        tls,
        https: site.https.mode,
        hsts: site.https.hsts,
        acme_dir: render::acme_root(config_dir),
        disabled_dir: config_dir.join("disabled"),
        web,
        state: if site.status == SiteStatus::Disabled {
            render::VhostState::Disabled
        } else {
            state
        },
        upload_limit: site.upload_limit_on(platform),
        canonical_http_port: nginx.http_port(),
        canonical_https_port: nginx.https_port(),
        log_dir,
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
        client_host: None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum DbMode {
    /// Create the database and its user.
    Install,
    /// Repair the user's password and grants.
    Verify,
    /// Leave the database alone (a move whose database stays, maybe with writes frozen):
    /// only the credentials file is written.
    Keep,
}

/// The site's database and its credentials file, in the site's private directory.
fn site_database(
    objects: &TaskObjects,
    db: &SiteDatabase,
    mode: DbMode,
    x: &mut dyn Steps,
) -> Result<()> {
    let (platform, site) = (objects.platform()?, objects.site()?);
    let service = objects.site_db_service(db)?;
    let private = render::site_private_dir(platform, site);
    x.make_dir(&platform.path.join("private"))?;
    x.make_dir(&private)?;
    let sqlite = render::site_sqlite_path(platform, site);
    match (objects.db_ctl(db)?, mode) {
        (Some(ctl), DbMode::Install) => {
            x.create_database(&ctl, &db.name, &db.user, &db.password)?
        }
        (Some(ctl), DbMode::Verify) => x.repair_database(&ctl, &db.name, &db.user, &db.password)?,
        (Some(_), DbMode::Keep) => {}
        (None, DbMode::Install) if !x.reads().exists(&sqlite)? => {
            x.write_file(&sqlite, b"", 0o640)?
        }
        (None, DbMode::Verify) if !x.reads().exists(&sqlite)? => {
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

/// The php-fpm service a platform's sites run on.
fn php_service<'a>(server: &'a Server, platform: &Platform) -> Result<&'a PhpFpmService> {
    let version = platform.php_version.as_ref();
    version.and_then(|v| server.php_service(v)).ok_or_else(|| {
        Error::Refused(format!(
            "server {} offers no php-fpm {} for platform {} (add one with --php on `fjord \
                 server add`)",
            server.name,
            version.map(|v| v.as_str()).unwrap_or("(none chosen)"),
            platform.name
        ))
    })
}

/// Who owns a site's own files: a PHP site's user, with nginx's group to read them; for a
/// static site, the server's files owner if it has one.
fn files_ownership(server: &Server, app: &kinds::SiteApp) -> Ownership {
    let HttpService::Nginx(nginx) = &server.http;
    match &app.php {
        Some(php) => Ownership {
            user: Some(php.user.clone()),
            group: Some(web_group(server)),
            private: true,
            // What the site writes (uploads, caches) takes the web group at once.
            inherit_group: true,
        },
        None => Ownership {
            user: nginx.files_owner.as_ref().map(|o| o.to_string()),
            group: None,
            private: false,
            inherit_group: false,
        },
    }
}

/// A site's private dir: readable by its own user only (for a static site, by fjord).
fn private_ownership(app: &kinds::SiteApp) -> Ownership {
    Ownership {
        user: app.php.as_ref().map(|p| p.user.clone()),
        group: None,
        private: true,
        inherit_group: false,
    }
}

fn web_group(server: &Server) -> String {
    let HttpService::Nginx(nginx) = &server.http;
    nginx
        .web_group
        .as_ref()
        .map_or_else(|| "www-data".to_string(), |g| g.to_string())
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
        // A site that never installed (its install or clone failed and was rolled back)
        // has nothing on the host to lose: it is deleted plainly.
        TaskKind::SiteDelete => matches!(site.status, Disabled | Failed) || force,
        TaskKind::SiteBackupDelete => true,
        TaskKind::SiteBackup | TaskKind::SiteRestore => {
            matches!(site.status, Installed | Disabled | NeedsAttention)
        }
        TaskKind::SiteMigrate => matches!(site.status, Installed | Disabled),
        TaskKind::SiteLoginLink => site.status == Installed,
        TaskKind::SiteCacheClear => matches!(site.status, Installed | Disabled),
        TaskKind::SiteClone => matches!(site.status, Queued | Failed),
        TaskKind::SiteHttps => matches!(site.status, Installed | Disabled),
        _ => true,
    };
    if allowed {
        return Ok(());
    }
    let hint = match kind {
        TaskKind::SiteDelete => format!(
            ": disable it first (`fjord site disable {}`), or pass --force",
            site.name
        ),
        _ => String::new(),
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
    args: &model::TaskArgs,
    x: &mut dyn Steps,
) -> Result<TaskEffect> {
    let force = args.force();
    if let Some(site) = &objects.site {
        check_site_status(kind, site, force)?;
    }
    match kind {
        TaskKind::ServerVerify => server_verify(env, &objects.server, x),
        TaskKind::HttpsAccount => https_account(env, args, x),
        TaskKind::SiteHttps => site_https(env, objects, args, x),
        TaskKind::HttpsIssue => https_issue(env, objects, x),
        TaskKind::PlatformVerify => platform_verify(env, objects, args, x),
        TaskKind::SiteInstall => site_install(env, objects, args, x),
        // A verify leaves the site's status as it is (a site needing attention still does);
        // what it found in the site's code is recorded.
        TaskKind::SiteVerify => site_verify(env, objects, x).map(|effect| match effect {
            TaskEffect::Many(effects) => TaskEffect::Many(
                effects
                    .into_iter()
                    .filter(|e| {
                        matches!(
                            e,
                            TaskEffect::SetCodeFound { .. } | TaskEffect::QueueTask { .. }
                        )
                    })
                    .collect(),
            ),
            _ => TaskEffect::None,
        }),
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
        TaskKind::SiteBackupDelete => match args {
            model::TaskArgs::BackupDelete { ids } => remove_backups(objects, ids, x),
            _ => remove_backups(objects, &[], x),
        },
        TaskKind::SiteClone => site_clone(env, objects, args, x),
        TaskKind::SiteMigrate => site_migrate(env, objects, args, x),
        TaskKind::PlatformMigrateAll => migrate_summary(objects, x),
        TaskKind::SiteLoginLink => site_login_link(env, objects, args, x),
        TaskKind::SiteCacheClear => site_cache_clear(env, objects, x),
        TaskKind::SiteRestore => site_restore(env, objects, args, x),
        TaskKind::SiteEnable => site_set_served(env, objects, SiteStatus::Installed, x),
        TaskKind::SiteDelete => {
            // A delete that cannot back the site up first does not go on, unless there is
            // nothing to back up: an install or clone that failed and was rolled back.
            let (platform, site) = (objects.platform()?, objects.site()?);
            let never_made = site.status == SiteStatus::Failed
                && !x.reads().exists(&render::site_files_dir(platform, site))?;
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
        (TaskKind::SiteVerify, Target::Site(site_id)) => match &task.args {
            // The verify of a `site edit`: its names go back to what nginx still serves.
            model::TaskArgs::SiteVerify {
                names_before: Some(before),
            } => TaskEffect::SetSiteNames {
                site_id,
                aliases: before.aliases.clone(),
                redirect_aliases: before.redirect_aliases,
                upload_limit: before.upload_limit,
                https: before.https,
            },
            _ => TaskEffect::None,
        },
        // The verify of a `platform edit`: its limit goes back to what its sites still take.
        (TaskKind::PlatformVerify, Target::Platform(platform_id)) => match &task.args {
            model::TaskArgs::PlatformVerify {
                limit_before: Some(before),
                ..
            } => TaskEffect::SetPlatformUploadLimit {
                platform_id,
                upload_limit: before.upload_limit,
            },
            _ => TaskEffect::None,
        },
        (TaskKind::SiteInstall | TaskKind::SiteImport | TaskKind::SiteClone, Target::Site(id)) => {
            TaskEffect::SetSiteStatus(id, SiteStatus::Failed)
        }
        _ => TaskEffect::None,
    }
}
