//! The use cases. Each validates its input, applies the business rules, and either changes
//! the state (queueing the task that brings the hosts in line) or, with `dry_run`, shows the
//! plan of that task and changes nothing.

use model::{
    AbsPath, CronSchedule, DbEngine, DbService, Hostname, HttpService, Name, NginxService,
    PhpFpmService, PhpVersion, Platform, PlatformKind, ReloadMethod, Retention, Server, Site,
    SiteDatabase, SiteStatus, Target, Task, TaskKind, TaskStatus, derive_db_name, parse_listen,
    validate_aliases,
};
use store::{LogLine, NewSite, NewTask, TaskFilter};

use crate::scripts::{self, TaskObjects};
use crate::{Error, Fjord, Result};

const SCHEDULE_KEY: &str = "backup.schedule";
const RETENTION_KEY: &str = "backup.retention";

/// What a use case that queues a task returns: the task, or with `dry_run` the plan.
#[derive(Debug)]
pub struct Queued {
    pub task: Option<Task>,
    pub plan: Option<Vec<String>>,
}

impl Queued {
    fn task(task: Option<Task>) -> Queued {
        Queued { task, plan: None }
    }

    fn plan(plan: Vec<String>) -> Queued {
        Queued {
            task: None,
            plan: Some(plan),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerInput {
    pub name: String,
    pub nginx_binary: String,
    pub nginx_config: String,
    pub nginx_prefix: Option<String>,
    pub include_dir: String,
    pub listen: String,
    pub reload: String,
    pub files_owner: Option<String>,
    /// Database services: `ENGINE[:key=value,...]` (see `model::DbService::parse`).
    pub db: Vec<String>,
    /// php-fpm services: `VERSION[:key=value,...]` (see `model::PhpFpmService::parse`).
    pub php: Vec<String>,
    /// The group nginx's workers run as.
    pub web_group: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PlatformInput {
    pub name: String,
    pub server: String,
    pub path: String,
    pub kind: String,
    /// The PHP version its sites run on [default: the server's newest].
    pub php: Option<String>,
    /// A directory to copy the code base in from.
    pub from: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SiteInput {
    pub name: String,
    pub platform: String,
    pub aliases: Vec<String>,
    pub redirect_aliases: bool,
    pub client: Option<String>,
    /// The engine of the site's own database, if it has one.
    pub db: Option<String>,
    /// The server whose database service to use [default: the platform's server].
    pub db_server: Option<String>,
    /// What the application's installer is told (title, admin user and email).
    pub install: crate::kinds::InstallInput,
}

#[derive(Debug, Clone, Default)]
pub struct SiteEdit {
    /// Replace the alias list.
    pub set_aliases: Option<Vec<String>>,
    pub add_aliases: Vec<String>,
    pub remove_aliases: Vec<String>,
    pub redirect_aliases: Option<bool>,
}

/// Title, admin user and email for an application's installer: refused with the rule when
/// they could not be what the person meant (control characters, an address without a
/// domain).
fn validate_install_input(
    input: &crate::kinds::InstallInput,
) -> Result<crate::kinds::InstallInput> {
    let invalid = |field: &'static str, value: &str, rule: &str| {
        Err(Error::Invalid(model::Invalid::new(field, value, rule)))
    };
    if let Some(title) = &input.title {
        if title.trim().is_empty() || title.chars().count() > 200 {
            return invalid(
                "site title",
                title,
                "must be 1 to 200 characters, not only spaces",
            );
        }
        if title.chars().any(char::is_control) {
            return invalid(
                "site title",
                title,
                "must not contain control characters (newlines, tabs)",
            );
        }
    }
    if let Some(user) = &input.admin_user
        && (user.is_empty()
            || user.len() > 60
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
    {
        return invalid(
            "admin user",
            user,
            "must be 1 to 60 characters: ASCII letters, digits, '.', '_' and '-'",
        );
    }
    if let Some(email) = &input.admin_email {
        let ok = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && local
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
                    && domain.contains('.')
                    && Hostname::parse("email domain", domain).is_ok()
            });
        if !ok {
            return invalid(
                "admin email",
                email,
                "must be an address like name@example.com (ASCII, a domain with a dot)",
            );
        }
    }
    Ok(input.clone())
}

fn parse_hosts(field: &'static str, inputs: &[String]) -> Result<Vec<Hostname>> {
    inputs
        .iter()
        .map(|a| Ok(Hostname::parse(field, a)?))
        .collect()
}

impl Fjord {
    // ---- servers ----

    pub fn add_server(&self, input: &ServerInput, dry_run: bool) -> Result<Queued> {
        let name = Name::parse("server name", &input.name)?;
        let nginx = NginxService {
            binary: AbsPath::parse("nginx binary", &input.nginx_binary)?,
            config: AbsPath::parse("nginx config", &input.nginx_config)?,
            prefix: input
                .nginx_prefix
                .as_deref()
                .map(|p| AbsPath::parse("nginx prefix", p))
                .transpose()?,
            include_dir: AbsPath::parse("nginx include dir", &input.include_dir)?,
            listen: parse_listen(&input.listen)?,
            reload: ReloadMethod::parse(&input.reload)?,
            files_owner: input
                .files_owner
                .as_deref()
                .map(|o| Name::parse("files owner", o))
                .transpose()?,
            web_group: input
                .web_group
                .as_deref()
                .map(|g| Name::parse("web group", g))
                .transpose()?,
        };
        let mut php: Vec<PhpFpmService> = Vec::new();
        for spec in &input.php {
            let service = PhpFpmService::parse(spec)?;
            if php.iter().any(|p| p.version == service.version) {
                return Err(Error::Invalid(model::Invalid::new(
                    "php-fpm service",
                    spec,
                    format!("a server offers at most one php-fpm {}", service.version),
                )));
            }
            php.push(service);
        }
        let http = HttpService::Nginx(nginx);
        let mut db: Vec<DbService> = Vec::new();
        for spec in &input.db {
            let service = DbService::parse(spec)?;
            if db.iter().any(|d| d.engine == service.engine) {
                return Err(Error::Invalid(model::Invalid::new(
                    "database service",
                    spec,
                    format!("a server offers at most one {} service", service.engine),
                )));
            }
            db.push(service);
        }
        if self.store().server_by_name(name.as_str()).is_ok() {
            return Err(Error::Conflict(format!(
                "a server named {name} already exists"
            )));
        }
        if dry_run {
            let server = Server {
                id: 0,
                name,
                http,
                db,
                php,
            };
            return self.plan(
                TaskKind::ServerVerify,
                TaskObjects::server(server),
                &serde_json::Value::Null,
            );
        }
        let server = Server {
            id: 0,
            name,
            http,
            db,
            php,
        };
        let (_, task) = self
            .store()
            .insert_server(&server, Some(NewTask::new(TaskKind::ServerVerify)))?;
        self.notify_dispatchers();
        Ok(Queued::task(task))
    }

    pub fn server(&self, name: &str) -> Result<Server> {
        Ok(self.store().server_by_name(name)?)
    }

    pub fn servers(&self) -> Result<Vec<Server>> {
        Ok(self.store().servers()?)
    }

    pub fn verify_server(&self, name: &str, dry_run: bool) -> Result<Queued> {
        let server = self.server(name)?;
        self.queue(
            Target::Server(server.id),
            TaskKind::ServerVerify,
            serde_json::Value::Null,
            dry_run,
        )
    }

    // ---- platforms ----

    pub fn add_platform(&self, input: &PlatformInput, dry_run: bool) -> Result<Queued> {
        let name = Name::parse("platform name", &input.name)?;
        let path = AbsPath::parse("platform path", &input.path)?;
        let kind = PlatformKind::parse(&input.kind)?;
        let server = self.server(&input.server)?;
        self.check_platform_path(&path)?;
        let from = input
            .from
            .as_deref()
            .map(|f| AbsPath::parse("--from", f))
            .transpose()?;
        if let Some(from) = &from {
            self.check_code_source(from, &path)?;
        }
        let php_version = match (kind.runs_php(), &input.php) {
            (false, None) => None,
            (false, Some(v)) => {
                return Err(Error::Invalid(model::Invalid::new(
                    "PHP version",
                    v,
                    format!("a {kind} platform runs no PHP"),
                )));
            }
            (true, Some(v)) => {
                let version = PhpVersion::parse(v)?;
                if server.php_service(&version).is_none() {
                    return Err(Error::Refused(format!(
                        "server {} offers no php-fpm {version} (it offers: {})",
                        server.name,
                        php_versions(&server)
                    )));
                }
                Some(version)
            }
            (true, None) => Some(
                server
                    .php
                    .iter()
                    .map(|p| p.version.clone())
                    .max_by_key(|v| {
                        let (major, minor) = v.as_str().split_once('.').unwrap_or(("0", "0"));
                        (
                            major.parse::<u32>().unwrap_or(0),
                            minor.parse::<u32>().unwrap_or(0),
                        )
                    })
                    .ok_or_else(|| {
                        Error::Refused(format!(
                            "a {kind} platform needs PHP, and server {} offers no php-fpm (add \
                             one with --php on `fjord server add`)",
                            server.name
                        ))
                    })?,
            ),
        };
        if self.store().platform_by_name(name.as_str()).is_ok() {
            return Err(Error::Conflict(format!(
                "a platform named {name} already exists"
            )));
        }
        let platform = Platform {
            id: 0,
            name,
            server_id: server.id,
            path,
            kind,
            locked: false,
            php_version,
        };
        let args = match &from {
            Some(from) => serde_json::json!({ "from": from.as_str() }),
            None => serde_json::Value::Null,
        };
        if dry_run {
            let objects = TaskObjects {
                server,
                platform: Some(platform),
                site: None,
                sites: Vec::new(),
                db_server: None,
                extra: Default::default(),
            };
            return self.plan(TaskKind::PlatformVerify, objects, &args);
        }
        let mut task = NewTask::new(TaskKind::PlatformVerify);
        task.args = args;
        let (_, task) = self.store().insert_platform(&platform, Some(task))?;
        self.notify_dispatchers();
        Ok(Queued::task(task))
    }

    /// `--from` must be a directory holding a code base, not the platform's own path.
    fn check_code_source(&self, from: &AbsPath, path: &AbsPath) -> Result<()> {
        let refuse = |rule: String| {
            Err(Error::Invalid(model::Invalid::new(
                "--from",
                from.as_str(),
                rule,
            )))
        };
        if !from.as_path().is_dir() {
            return refuse(
                "must be a directory holding a code base (release archives are not supported yet)"
                    .into(),
            );
        }
        if path.as_path().exists() {
            return Err(Error::Invalid(model::Invalid::new(
                "platform path",
                path.as_str(),
                "must not exist yet when --from is given: the code base is copied there",
            )));
        }
        let (from_resolved, path_resolved) = (
            resolve_existing(from.as_path()),
            resolve_existing(path.as_path()),
        );
        if path_resolved.starts_with(&from_resolved) || from_resolved.starts_with(&path_resolved) {
            return refuse(format!(
                "must not contain or lie inside the platform path {path}"
            ));
        }
        let data = resolve_existing(self.data_dir());
        if from_resolved.starts_with(&data) || data.starts_with(&from_resolved) {
            return refuse("must not be inside fjord's data dir or contain it".into());
        }
        // Another platform holds its sites' files and credentials: a copy of it would hand
        // them to every site of the new one.
        for other in self.store().platforms()? {
            let other_path = resolve_existing(other.path.as_path());
            if from_resolved.starts_with(&other_path) || other_path.starts_with(&from_resolved) {
                return refuse(format!(
                    "overlaps platform {} at {}: copy a code base from a release, not from a \
                     platform with sites",
                    other.name, other.path
                ));
            }
        }
        Ok(())
    }

    /// A platform's directory may not hold or lie inside fjord's data or another platform:
    /// a site's files would then belong to two owners.
    fn check_platform_path(&self, path: &AbsPath) -> Result<()> {
        let refuse = |rule: String| {
            Err(Error::Invalid(model::Invalid::new(
                "platform path",
                path.as_str(),
                rule,
            )))
        };
        // Links are resolved as far as the path exists: a link to /etc, to the data dir or
        // into another platform is what it points to.
        let resolved = resolve_existing(path.as_path());
        let data = self.data_dir();
        let data_resolved = resolve_existing(data);
        let platforms = self.store().platforms()?;
        for candidate in [path.as_path(), resolved.as_path()] {
            if let Some(rule) = AbsPath::system_dir(candidate) {
                return refuse(if candidate == path.as_path() {
                    rule
                } else {
                    format!("resolves to {}, which {rule}", candidate.display())
                });
            }
            for data in [data, data_resolved.as_path()] {
                if candidate.starts_with(data) || data.starts_with(candidate) {
                    return refuse(format!(
                        "must not be inside fjord's data dir {} or contain it",
                        data.display()
                    ));
                }
            }
            for other in &platforms {
                let other_resolved = resolve_existing(other.path.as_path());
                for other_path in [other.path.as_path(), other_resolved.as_path()] {
                    if candidate.starts_with(other_path) || other_path.starts_with(candidate) {
                        return refuse(format!(
                            "overlaps platform {} at {}",
                            other.name, other.path
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn platform(&self, name: &str) -> Result<Platform> {
        Ok(self.store().platform_by_name(name)?)
    }

    /// The version and packages (as JSON) the last verify of a platform or site found.
    pub fn code_found(&self, target: Target) -> Result<(Option<String>, serde_json::Value)> {
        let (version, packages) = self.store().code_found(target)?;
        let packages = packages
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or(serde_json::Value::Array(Vec::new()));
        Ok((version, packages))
    }

    pub fn platforms(&self) -> Result<Vec<Platform>> {
        Ok(self.store().platforms()?)
    }

    pub fn verify_platform(&self, name: &str, dry_run: bool) -> Result<Queued> {
        let platform = self.platform(name)?;
        self.queue(
            Target::Platform(platform.id),
            TaskKind::PlatformVerify,
            serde_json::Value::Null,
            dry_run,
        )
    }

    pub fn lock_platform(&self, name: &str, locked: bool) -> Result<Platform> {
        let platform = self.platform(name)?;
        self.store().set_platform_locked(platform.id, locked)?;
        self.platform(name)
    }

    /// Forgets a platform. Refused while sites live on it or a task on it is unfinished; its
    /// code base on disk is left alone (fjord does not own a platform's code).
    pub fn delete_platform(&self, name: &str) -> Result<()> {
        let platform = self.platform(name)?;
        let sites = self.store().sites(Some(platform.id))?;
        if !sites.is_empty() {
            let names: Vec<&str> = sites.iter().take(5).map(|s| s.name.as_str()).collect();
            return Err(Error::Refused(format!(
                "platform {name} still has {} site(s) ({}{}): delete or migrate them first",
                sites.len(),
                names.join(", "),
                if sites.len() > 5 { ", …" } else { "" }
            )));
        }
        if let Some(t) = self
            .store()
            .active_tasks(Target::Platform(platform.id))?
            .first()
        {
            return Err(Error::Refused(format!(
                "platform {name} has unfinished task {}",
                t.id
            )));
        }
        Ok(self.store().delete_platform(platform.id)?)
    }

    // ---- sites ----

    pub fn add_site(&self, input: &SiteInput, dry_run: bool) -> Result<Queued> {
        let name = Hostname::parse("site name", &input.name)?;
        let aliases = parse_hosts("alias", &input.aliases)?;
        validate_aliases(&name, &aliases)?;
        let client = input
            .client
            .as_deref()
            .map(|c| Name::parse("client name", c))
            .transpose()?;
        let platform = self.platform(&input.platform)?;
        if platform.locked {
            return Err(Error::Refused(format!(
                "platform {} is locked: it takes no new sites",
                platform.name
            )));
        }
        for host in std::iter::once(&name).chain(&aliases) {
            self.check_host_free(host, None)?;
        }
        let kind = crate::kinds::of(platform.kind);
        let db_engine = input.db.as_deref().or(kind.default_db_engine());
        if let (Some(engine), Some(allowed)) = (db_engine, kind.db_engines()) {
            let parsed = DbEngine::parse(engine)?;
            if !allowed.contains(&parsed) {
                return Err(Error::Invalid(model::Invalid::new(
                    "database engine",
                    engine,
                    format!(
                        "a {} site needs one of: {}",
                        platform.kind,
                        allowed
                            .iter()
                            .map(|e| e.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )));
            }
        }
        let install = validate_install_input(&input.install)?;
        let database = match db_engine {
            Some(engine) => Some(self.new_site_database(
                &name,
                engine,
                input.db_server.as_deref(),
                &platform,
            )?),
            None => None,
        };
        let app_secret = host::random_secret(256)?;
        let client_id = match (&client, dry_run) {
            (Some(c), false) => Some(self.store().client_by_name_or_insert(c)?.id),
            _ => None,
        };
        let new = NewSite {
            name,
            platform_id: platform.id,
            aliases,
            redirect_aliases: input.redirect_aliases,
            client_id,
            status: SiteStatus::Queued,
            database,
            app_secret,
        };
        let args = serde_json::json!({ "install": install });
        if dry_run {
            let site = Site {
                id: 0,
                name: new.name,
                platform_id: platform.id,
                aliases: new.aliases,
                redirect_aliases: new.redirect_aliases,
                status: SiteStatus::Queued,
                client_id: None,
                database: new.database,
                app_secret: new.app_secret,
            };
            let server = self.store().server(platform.server_id)?;
            let db_server = site
                .database
                .as_ref()
                .map(|d| self.store().server(d.server_id))
                .transpose()?;
            let objects = TaskObjects {
                server,
                platform: Some(platform),
                site: Some(site),
                sites: Vec::new(),
                db_server,
                extra: Default::default(),
            };
            return self.plan(TaskKind::SiteInstall, objects, &args);
        }
        let mut task = NewTask::new(TaskKind::SiteInstall);
        task.args = args;
        let (_, task) = self.store().insert_site(&new, Some(task))?;
        self.notify_dispatchers();
        Ok(Queued::task(task))
    }

    /// Chooses the site's database: the engine's service on the given server (or the
    /// platform's), a name derived from the site's (unique on that server), and a generated
    /// password of 32 hex characters.
    fn new_site_database(
        &self,
        site: &Hostname,
        engine: &str,
        db_server: Option<&str>,
        platform: &Platform,
    ) -> Result<SiteDatabase> {
        let engine = DbEngine::parse(engine)?;
        let server = match db_server {
            Some(name) => self.server(name)?,
            None => self.store().server(platform.server_id)?,
        };
        if server.db_service(engine).is_none() {
            return Err(Error::Refused(format!(
                "server {} offers no {engine} database service (add one with --db {engine} on `fjord server add`)",
                server.name
            )));
        }
        let base = derive_db_name(site.as_str(), engine.name_max());
        let mut name = base.clone();
        let mut n = 2;
        while self.store().database_name_taken(server.id, engine, &name)? {
            let suffix = format!("_{n}");
            name = format!(
                "{}{suffix}",
                &base[..base.len().min(engine.name_max() - suffix.len())]
            );
            n += 1;
        }
        Ok(SiteDatabase {
            server_id: server.id,
            engine,
            user: name.clone(),
            name,
            password: host::random_secret(16)?,
        })
    }

    fn check_host_free(&self, host: &Hostname, except_site: Option<i64>) -> Result<()> {
        match self.store().site_by_host(host.as_str()) {
            Ok(owner) if Some(owner.id) != except_site => Err(Error::Conflict(format!(
                "host name {host} already belongs to site {}",
                owner.name
            ))),
            Ok(_) | Err(store::StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Finds a site by its main name or an alias, given in any form a user may type.
    pub fn site(&self, name: &str) -> Result<Site> {
        let host = Hostname::parse("site name", name)?;
        Ok(self.store().site_by_host(host.as_str())?)
    }

    pub fn sites(&self, platform: Option<&str>) -> Result<Vec<Site>> {
        let platform_id = platform
            .map(|p| self.platform(p).map(|p| p.id))
            .transpose()?;
        Ok(self.store().sites(platform_id)?)
    }

    pub fn edit_site(&self, name: &str, edit: &SiteEdit, dry_run: bool) -> Result<Queued> {
        let mut site = self.site(name)?;
        if matches!(site.status, SiteStatus::Deleted) {
            return Err(Error::Refused(format!("site {} is deleted", site.name)));
        }
        let mut aliases = match &edit.set_aliases {
            Some(set) => parse_hosts("alias", set)?,
            None => site.aliases.clone(),
        };
        for add in parse_hosts("alias", &edit.add_aliases)? {
            if !aliases.contains(&add) {
                aliases.push(add);
            }
        }
        for remove in parse_hosts("alias", &edit.remove_aliases)? {
            if !aliases.contains(&remove) {
                return Err(Error::Invalid(model::Invalid::new(
                    "alias",
                    remove.as_str(),
                    format!("is not an alias of {}", site.name),
                )));
            }
            aliases.retain(|a| *a != remove);
        }
        validate_aliases(&site.name, &aliases)?;
        for alias in &aliases {
            self.check_host_free(alias, Some(site.id))?;
        }
        let redirect = edit.redirect_aliases.unwrap_or(site.redirect_aliases);
        let verify = matches!(site.status, SiteStatus::Installed | SiteStatus::Disabled);
        if dry_run {
            site.aliases = aliases;
            site.redirect_aliases = redirect;
            if !verify {
                return Ok(Queued::plan(vec![
                    "# the site is not installed: only its record changes".into(),
                ]));
            }
            let objects = self.objects(
                TaskKind::SiteVerify,
                Target::Site(site.id),
                &serde_json::Value::Null,
            )?;
            let objects = TaskObjects {
                site: Some(site),
                ..objects
            };
            return self.plan(TaskKind::SiteVerify, objects, &serde_json::Value::Null);
        }
        // A verify that fails puts the names back, so that the state says what nginx serves.
        let before = serde_json::json!({
            "names_before": {
                "aliases": site.aliases.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                "redirect_aliases": site.redirect_aliases,
            }
        });
        let then = verify.then(|| NewTask::with_args(TaskKind::SiteVerify, before));
        let (_, task) = self
            .store()
            .update_site_names(site.id, &aliases, redirect, then)?;
        self.notify_dispatchers();
        Ok(Queued::task(task))
    }

    /// Queues install, verify, disable, enable or delete of a site, if its status allows.
    pub fn site_task(
        &self,
        name: &str,
        kind: TaskKind,
        force: bool,
        dry_run: bool,
    ) -> Result<Queued> {
        let site = self.site(name)?;
        scripts::check_site_status(kind, &site, force)?;
        let args = if force {
            serde_json::json!({ "force": true })
        } else {
            serde_json::Value::Null
        };
        self.queue(Target::Site(site.id), kind, args, dry_run)
    }

    /// Queues a one-time login link for the site's administrator; returns the task and the
    /// link. The link works once the task has succeeded, once, for 15 minutes; only its hash
    /// is stored (in the task and in the site's application).
    pub fn login_link(&self, name: &str) -> Result<(Queued, String)> {
        let site = self.site(name)?;
        let platform = self.store().platform(site.platform_id)?;
        if !crate::kinds::of(platform.kind).has_login_link() {
            return Err(Error::Refused(format!(
                "site {} is a {} site: it has no login fjord can hand out",
                site.name, platform.kind
            )));
        }
        scripts::check_site_status(TaskKind::SiteLoginLink, &site, false)?;
        let token = host::random_secret(24)?;
        let expires_at_s = store::now_ms() / 1000 + LOGIN_LINK_TTL_S;
        let args = serde_json::json!({
            "token_sha256": host::sha256_hex(token.as_bytes()),
            "expires_at_s": expires_at_s,
        });
        let queued = self.queue(Target::Site(site.id), TaskKind::SiteLoginLink, args, false)?;
        Ok((queued, format!("http://{}/?fjord-login={token}", site.name)))
    }

    // ---- clone and migrate ----

    /// Records a new site `new_name` on `platform` and queues its clone from `source`: a
    /// backup of the source, deployed as the new site with a database of its own. The source
    /// is never changed.
    pub fn clone_site(
        &self,
        source: &str,
        new_name: &str,
        platform: &str,
        dry_run: bool,
    ) -> Result<Queued> {
        let source = self.site(source)?;
        scripts::check_site_status(TaskKind::SiteBackup, &source, false)?;
        let name = Hostname::parse("site name", new_name)?;
        let platform = self.platform(platform)?;
        if platform.locked {
            return Err(Error::Refused(format!(
                "platform {} is locked: it takes no new sites",
                platform.name
            )));
        }
        self.check_host_free(&name, None)?;
        let database = match &source.database {
            Some(db) => {
                let server = self.store().server(db.server_id)?;
                Some(self.new_site_database(
                    &name,
                    db.engine.as_str(),
                    Some(server.name.as_str()),
                    &platform,
                )?)
            }
            None => None,
        };
        let new = NewSite {
            name,
            platform_id: platform.id,
            aliases: Vec::new(),
            redirect_aliases: false,
            client_id: source.client_id,
            status: SiteStatus::Queued,
            database,
            app_secret: host::random_secret(256)?,
        };
        let args = serde_json::json!({ "source": source.id });
        if dry_run {
            let site = Site {
                id: 0,
                name: new.name,
                platform_id: platform.id,
                aliases: Vec::new(),
                redirect_aliases: false,
                status: SiteStatus::Queued,
                client_id: None,
                database: new.database,
                app_secret: new.app_secret,
            };
            let mut objects = self.objects(TaskKind::SiteClone, Target::Site(source.id), &args)?;
            objects.db_server = site
                .database
                .as_ref()
                .map(|d| self.store().server(d.server_id))
                .transpose()?;
            objects.server = self.store().server(platform.server_id)?;
            objects.platform = Some(platform);
            objects.site = Some(site);
            return self.plan(TaskKind::SiteClone, objects, &args);
        }
        let (_, task) = self
            .store()
            .insert_site(&new, Some(NewTask::with_args(TaskKind::SiteClone, args)))?;
        self.notify_dispatchers();
        Ok(Queued::task(task))
    }

    /// Queues the move of a site to another platform, and/or a new name, and/or another
    /// database server.
    pub fn migrate_site(
        &self,
        name: &str,
        to_platform: Option<&str>,
        new_name: Option<&str>,
        db_server: Option<&str>,
        dry_run: bool,
    ) -> Result<Queued> {
        let site = self.site(name)?;
        scripts::check_site_status(TaskKind::SiteMigrate, &site, false)?;
        let platform = match to_platform {
            Some(p) => self.platform(p)?,
            None => self.store().platform(site.platform_id)?,
        };
        if platform.id != site.platform_id && platform.locked {
            return Err(Error::Refused(format!(
                "platform {} is locked: it takes no new sites",
                platform.name
            )));
        }
        let new_name = new_name
            .map(|n| Hostname::parse("new site name", n))
            .transpose()?
            .unwrap_or_else(|| site.name.clone());
        if new_name != site.name {
            self.check_host_free(&new_name, Some(site.id))?;
        }
        let mut args = serde_json::json!({ "platform": platform.id, "name": new_name.as_str() });
        // A database that stays on its server stays as it is: the site goes on writing to it
        // through the move. One that moves to another server is copied there under a new
        // name while the site's writes are frozen, and the old one dropped once the site is
        // switched: the old database stays intact until the very end.
        let mut db_moves = false;
        if let Some(db) = site
            .database
            .as_ref()
            .filter(|d| d.engine != DbEngine::Sqlite)
        {
            let server = match db_server {
                Some(name) => self.server(name)?,
                None => self.store().server(db.server_id)?,
            };
            if server.id != db.server_id {
                let new_db = self.new_site_database(
                    &new_name,
                    db.engine.as_str(),
                    Some(server.name.as_str()),
                    &platform,
                )?;
                args["db_server"] = serde_json::json!(server.id);
                args["db_name"] = serde_json::json!(new_db.name);
                db_moves = true;
            }
        } else if db_server.is_some() {
            return Err(Error::Refused(format!(
                "site {} has no database on a server to move",
                site.name
            )));
        }
        if platform.id == site.platform_id && new_name == site.name && !db_moves {
            return Err(Error::Refused(format!(
                "site {} is already on platform {} with that name and database server: nothing to migrate",
                site.name, platform.name
            )));
        }
        self.queue(Target::Site(site.id), TaskKind::SiteMigrate, args, dry_run)
    }

    /// Migrates every site of platform `from` to `to`, as one task per site (run side by side
    /// within the concurrency limit) and a summary task that runs after them all. Returns the
    /// summary task (or, with `dry_run`, the sites that would move) and the number of sites.
    pub fn migrate_platform(&self, from: &str, to: &str, dry_run: bool) -> Result<(Queued, usize)> {
        let source = self.platform(from)?;
        let target = self.platform(to)?;
        if source.id == target.id {
            return Err(Error::Refused(
                "a platform cannot be migrated to itself".into(),
            ));
        }
        if target.locked {
            return Err(Error::Refused(format!(
                "platform {} is locked: it takes no new sites",
                target.name
            )));
        }
        let sites: Vec<Site> = self
            .store()
            .sites(Some(source.id))?
            .into_iter()
            .filter(|s| matches!(s.status, SiteStatus::Installed | SiteStatus::Disabled))
            .collect();
        if dry_run {
            let plan = sites
                .iter()
                .map(|s| format!("migrate site {} to platform {}", s.name, target.name))
                .collect();
            return Ok((Queued::plan(plan), sites.len()));
        }
        let mut children = Vec::new();
        for site in &sites {
            let args = serde_json::json!({ "platform": target.id, "name": site.name.as_str() });
            children.push(self.store().enqueue(
                Target::Site(site.id),
                site.name.as_str(),
                NewTask::with_args(TaskKind::SiteMigrate, args),
            )?);
        }
        let ids: Vec<i64> = children.iter().map(|t| t.id).collect();
        let summary = self.store().enqueue(
            Target::Platform(source.id),
            source.name.as_str(),
            NewTask::with_args(
                TaskKind::PlatformMigrateAll,
                serde_json::json!({ "children": ids, "to": target.name.as_str() }),
            ),
        )?;
        self.notify_dispatchers();
        Ok((Queued::task(Some(summary)), children.len()))
    }

    // ---- backup schedules and retention ----

    /// The effective (schedule, retention) of a site: its own, or the installation's.
    fn backup_policy_of(&self, site_id: i64) -> Result<(Option<CronSchedule>, Option<Retention>)> {
        let (own_schedule, own_retention) = self.store().site_backup_policy(site_id)?;
        let schedule = match own_schedule.or(self.store().setting(SCHEDULE_KEY)?) {
            Some(s) => Some(CronSchedule::parse(&s)?),
            None => None,
        };
        let retention = match own_retention.or(self.store().setting(RETENTION_KEY)?) {
            Some(r) => Some(Retention::parse(&r)?),
            None => None,
        };
        Ok((schedule, retention))
    }

    /// Sets the backup schedule and retention of one site, or (with `site: None`) the
    /// installation's defaults, which every site without its own follows. `""` clears one.
    pub fn set_backup_policy(
        &self,
        site: Option<&str>,
        schedule: Option<&str>,
        retention: Option<&str>,
    ) -> Result<(Option<String>, Option<String>)> {
        let normalize = |value: Option<&str>,
                         parse: &dyn Fn(&str) -> Result<String>|
         -> Result<Option<Option<String>>> {
            match value {
                None => Ok(None),
                Some("") => Ok(Some(None)),
                Some(v) => Ok(Some(Some(parse(v)?))),
            }
        };
        let schedule = normalize(schedule, &|v| {
            Ok(CronSchedule::parse(v)?.as_str().to_string())
        })?;
        let retention = normalize(retention, &|v| {
            Retention::parse(v)?;
            Ok(v.to_string())
        })?;
        match site {
            Some(name) => {
                let site = self.site(name)?;
                let (old_schedule, old_retention) = self.store().site_backup_policy(site.id)?;
                let schedule = schedule.unwrap_or(old_schedule);
                let retention = retention.unwrap_or(old_retention);
                self.store().set_site_backup_policy(
                    site.id,
                    schedule.as_deref(),
                    retention.as_deref(),
                )?;
                Ok((schedule, retention))
            }
            None => {
                if let Some(s) = &schedule {
                    self.store().set_setting(SCHEDULE_KEY, s.as_deref())?;
                }
                if let Some(r) = &retention {
                    self.store().set_setting(RETENTION_KEY, r.as_deref())?;
                }
                Ok((
                    self.store().setting(SCHEDULE_KEY)?,
                    self.store().setting(RETENTION_KEY)?,
                ))
            }
        }
    }

    /// Queues a backup of every site whose schedule has come due at `now_ms` (one backup
    /// however many fire times were missed), and sets each site's next time. Called by the
    /// dispatcher; returns the queued tasks.
    pub fn queue_due_backups(&self, now_ms: i64) -> Result<Vec<Task>> {
        let default = self.store().setting(SCHEDULE_KEY)?;
        let mut queued = Vec::new();
        for store::SiteSchedule {
            site_id: id,
            site_name: name,
            own_schedule: own,
            next_at: next,
        } in self.store().backup_schedules()?
        {
            let Some(text) = own.or_else(|| default.clone()) else {
                continue;
            };
            let schedule = CronSchedule::parse(&text)?;
            match next {
                None => self
                    .store()
                    .set_next_backup(id, schedule.next_after(now_ms))?,
                Some(at) if at <= now_ms => {
                    let busy = self
                        .store()
                        .active_tasks(Target::Site(id))?
                        .iter()
                        .any(|t| t.kind == TaskKind::SiteBackup);
                    let backup = (!busy).then(|| {
                        NewTask::with_args(
                            TaskKind::SiteBackup,
                            serde_json::json!({ "scheduled": true }),
                        )
                    });
                    // Every dispatcher runs this: only the one that moves the time on queues.
                    queued.extend(self.store().take_due_backup(
                        id,
                        &name,
                        at,
                        schedule.next_after(now_ms),
                        backup,
                    )?);
                }
                Some(_) => {}
            }
        }
        if !queued.is_empty() {
            self.notify_dispatchers();
        }
        Ok(queued)
    }

    /// Queues the removal of some of a site's backups.
    pub fn delete_backups(&self, site: &str, ids: &[i64], dry_run: bool) -> Result<Queued> {
        let site = self.site(site)?;
        for id in ids {
            let backup = self.store().backup(*id)?;
            if backup.site_id != site.id {
                return Err(Error::Refused(format!(
                    "backup {id} is of site {}, not of {}",
                    backup.site_name, site.name
                )));
            }
        }
        self.queue(
            Target::Site(site.id),
            TaskKind::SiteBackupDelete,
            serde_json::json!({ "delete": ids }),
            dry_run,
        )
    }

    // ---- backups ----

    /// A site's backups, newest first, whatever name it had when each was taken; a deleted
    /// site's stay listed under its name.
    pub fn backups(&self, name: &str) -> Result<Vec<store::Backup>> {
        let host = Hostname::parse("site name", name)?;
        match self.site(host.as_str()) {
            Ok(site) => Ok(self.store().site_backups(site.id)?),
            Err(Error::NotFound(_)) => Ok(self.store().backups(host.as_str())?),
            Err(e) => Err(e),
        }
    }

    /// Queues a restore from one of the site's backups (the newest if none is named), or from
    /// an archive file. The archive is checked whole before anything changes.
    pub fn restore_site(
        &self,
        name: &str,
        backup_id: Option<i64>,
        file: Option<&str>,
        dry_run: bool,
    ) -> Result<Queued> {
        let site = self.site(name)?;
        scripts::check_site_status(TaskKind::SiteRestore, &site, false)?;
        let path = match (backup_id, file) {
            (Some(_), Some(_)) => {
                return Err(Error::Refused("give --backup or --file, not both".into()));
            }
            (_, Some(file)) => AbsPath::parse("backup file", file)?.to_string(),
            (Some(id), None) => {
                let backup = self.store().backup(id)?;
                if backup.site_id != site.id {
                    return Err(Error::Refused(format!(
                        "backup {id} is of site {}, not of {}",
                        backup.site_name, site.name
                    )));
                }
                backup.path
            }
            (None, None) => {
                self.store()
                    .site_backups(site.id)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Refused(format!("site {} has no backups", site.name)))?
                    .path
            }
        };
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(Error::Refused(format!(
                    "backup file {path} is not a regular file; a backup is read only from one"
                )));
            }
            Err(_) => return Err(Error::Refused(format!("backup file {path} does not exist"))),
        }
        // One of the site's own backups may carry a name the site had before a rename.
        let args = serde_json::json!({ "backup": path, "own": file.is_none() });
        self.queue(Target::Site(site.id), TaskKind::SiteRestore, args, dry_run)
    }

    // ---- tasks ----

    fn queue(
        &self,
        target: Target,
        kind: TaskKind,
        args: serde_json::Value,
        dry_run: bool,
    ) -> Result<Queued> {
        let objects = self.objects(kind, target, &args)?;
        if dry_run {
            return self.plan(kind, objects, &args);
        }
        let task = self.store().enqueue(
            target,
            &objects.target_name(target),
            NewTask::with_args(kind, args),
        )?;
        self.notify_dispatchers();
        Ok(Queued::task(Some(task)))
    }

    fn plan(
        &self,
        kind: TaskKind,
        objects: TaskObjects,
        args: &serde_json::Value,
    ) -> Result<Queued> {
        let mut dry = host::DryRun::new();
        let env = self.script_env();
        scripts::run(&env, kind, &objects, args, &mut dry)?;
        Ok(Queued::plan(dry.out))
    }

    /// Loads what a task on `target` works on.
    pub(crate) fn objects(
        &self,
        kind: TaskKind,
        target: Target,
        args: &serde_json::Value,
    ) -> Result<TaskObjects> {
        let mut objects = self.target_objects(target)?;
        let id = |key: &str| args.get(key).and_then(|v| v.as_i64());
        if let Some(source) = id("source") {
            objects.extra.source = Some(Box::new(self.target_objects(Target::Site(source))?));
        }
        if let Some(platform) = id("platform") {
            let platform = self.store().platform(platform)?;
            objects.extra.to_server = Some(self.store().server(platform.server_id)?);
            objects.extra.to_platform = Some(platform);
        }
        if let Some(server) = id("db_server") {
            objects.extra.to_db_server = Some(self.store().server(server)?);
        }
        // Only the backup tasks read a site's backups and its retention.
        let backup_task = matches!(kind, TaskKind::SiteBackup | TaskKind::SiteBackupDelete);
        if let (true, Target::Site(id)) = (backup_task, target) {
            objects.extra.backups = self.store().site_backups(id)?;
            objects.extra.retention = self.backup_policy_of(id)?.1;
        }
        if let Some(children) = args.get("children").and_then(|c| c.as_array()) {
            for child in children.iter().filter_map(|c| c.as_i64()) {
                objects.extra.children.push(self.store().task(child)?);
            }
        }
        Ok(objects)
    }

    fn target_objects(&self, target: Target) -> Result<TaskObjects> {
        let store = self.store();
        Ok(match target {
            Target::Server(id) => TaskObjects::server(store.server(id)?),
            Target::Platform(id) => {
                let platform = store.platform(id)?;
                let all_sites = store.sites(None)?;
                TaskObjects {
                    server: store.server(platform.server_id)?,
                    sites: all_sites
                        .iter()
                        .filter(|s| s.platform_id == platform.id)
                        .cloned()
                        .collect(),
                    platform: Some(platform),
                    site: None,
                    db_server: None,
                    extra: scripts::Extra {
                        all_sites,
                        ..Default::default()
                    },
                }
            }
            Target::Site(id) => {
                let site = store.site(id)?;
                let platform = store.platform(site.platform_id)?;
                TaskObjects {
                    server: store.server(platform.server_id)?,
                    db_server: site
                        .database
                        .as_ref()
                        .map(|d| store.server(d.server_id))
                        .transpose()?,
                    platform: Some(platform),
                    site: Some(site),
                    sites: Vec::new(),
                    extra: Default::default(),
                }
            }
        })
    }

    pub fn task(&self, id: i64) -> Result<Task> {
        Ok(self.store().task(id)?)
    }

    pub fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        Ok(self.store().tasks(filter)?)
    }

    pub fn task_log(&self, id: i64, after_id: i64) -> Result<Vec<LogLine>> {
        self.store().task(id)?;
        Ok(self.store().log(id, after_id)?)
    }

    /// The plan a task would run if it started now.
    pub fn plan_task(&self, id: i64) -> Result<Vec<String>> {
        let task = self.task(id)?;
        let objects = self.objects(task.kind, task.target, &task.args)?;
        let queued = self.plan(task.kind, objects, &task.args)?;
        Ok(queued.plan.unwrap_or_default())
    }

    pub fn retry_task(&self, id: i64) -> Result<Task> {
        let task = self.task(id)?;
        if !task.status.can_retry() {
            return Err(Error::Refused(format!(
                "task {id} is {}: only a failed or cancelled task can be retried",
                task.status.as_str()
            )));
        }
        let task = self.store().retry_task(id)?;
        self.notify_dispatchers();
        Ok(task)
    }

    pub fn cancel_task(&self, id: i64) -> Result<Task> {
        let task = self.task(id)?;
        if task.status != TaskStatus::Queued {
            return Err(Error::Refused(format!(
                "task {id} is {}: only a queued task can be cancelled",
                task.status.as_str()
            )));
        }
        Ok(self.store().cancel_task(id)?)
    }
}

/// `path` with links resolved as far as it exists (the rest appended as it is).
/// The PHP versions whose php-fpm is installed on this machine (Debian's `php-fpmX.Y`).
pub fn installed_php_fpm() -> Vec<String> {
    host::list_files(std::path::Path::new("/usr/sbin"))
        .into_iter()
        .filter_map(|f| f.strip_prefix("php-fpm").map(str::to_string))
        .filter(|v| PhpVersion::parse(v).is_ok())
        .collect()
}

/// How long a login link works.
pub const LOGIN_LINK_TTL_S: i64 = 15 * 60;

fn php_versions(server: &Server) -> String {
    if server.php.is_empty() {
        return "none".into();
    }
    server
        .php
        .iter()
        .map(|p| p.version.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn resolve_existing(path: &std::path::Path) -> std::path::PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return missing.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}
