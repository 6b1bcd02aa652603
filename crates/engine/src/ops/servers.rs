//! Servers: their services (nginx, databases, php-fpm) and their verify.

use model::{
    AbsPath, DbEngine, DbService, HostKey, HttpService, Name, NginxService, PhpFpmService,
    PhpVersion, ReloadMethod, Remote, Server, SiteStatus, SshTarget, Target, TaskArgs, TaskKind,
    parse_listens,
};
use store::NewTask;

use super::*;
use crate::scripts::TaskObjects;
use crate::{Error, Fjord, Result};

impl Fjord {
    /// The server `input` describes, checked field by field (not yet registered: id 0).
    pub fn parse_server(&self, input: &ServerInput) -> Result<Server> {
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
            listen: parse_listens("listen address", &input.listen)?,
            https_listen: parse_listens("https listen address", &input.https_listen)?,
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
            restart: model::Restart {
                start: input
                    .nginx_start
                    .as_deref()
                    .map(|s| model::monitor::parse_start_command("nginx start command", s))
                    .transpose()?,
                unit: input
                    .nginx_unit
                    .as_deref()
                    .map(|u| model::monitor::parse_unit("nginx unit", u))
                    .transpose()?,
            },
        };
        nginx.check_listens()?;
        let php = one_per(&input.php, "php-fpm service", PhpFpmService::parse, |p| {
            format!("php-fpm {}", p.version)
        })?;
        let http = HttpService::Nginx(nginx);
        let db = one_per(&input.db, "database service", DbService::parse, |d| {
            format!("{} service", d.engine)
        })?;
        let remote = input.remote.as_ref().map(parse_remote).transpose()?;
        Ok(Server {
            id: 0,
            name,
            http,
            db,
            php,
            monitor: input.monitor,
            remote,
        })
    }

    pub fn add_server(&self, input: &ServerInput, dry_run: bool) -> Result<Queued> {
        let server = self.parse_server(input)?;
        if self.store().server_by_name(server.name.as_str()).is_ok() {
            return Err(Error::Conflict(format!(
                "a server named {} already exists",
                server.name
            )));
        }
        if dry_run {
            return self.plan(
                TaskKind::ServerVerify,
                TaskObjects::server(server),
                &TaskArgs::None,
            );
        }
        let (_, task) = self
            .store()
            .insert_server(&server, Some(NewTask::new(TaskKind::ServerVerify)))?;
        self.notify_dispatchers();
        Ok(Queued::task(task))
    }

    /// The server `name` with `edit`'s services added and removed (a service removed and
    /// added again is replaced: its options change). Not yet recorded.
    pub fn edited_server(&self, edit: &ServerEdit) -> Result<Server> {
        let mut server = self.server(&edit.name)?;
        for spec in &edit.remove_db {
            let engine = DbEngine::parse(spec)?;
            if !server.db.iter().any(|d| d.engine == engine) {
                return Err(Error::Invalid(model::Invalid::new(
                    "database service",
                    spec,
                    format!(
                        "server {} offers no {engine} service to remove",
                        server.name
                    ),
                )));
            }
            server.db.retain(|d| d.engine != engine);
        }
        for spec in &edit.remove_php {
            let version = PhpVersion::parse(spec)?;
            if server.php_service(&version).is_none() {
                return Err(Error::Invalid(model::Invalid::new(
                    "php-fpm service",
                    spec,
                    format!(
                        "server {} offers no php-fpm {version} to remove",
                        server.name
                    ),
                )));
            }
            server.php.retain(|p| p.version != version);
        }
        for service in one_per(&edit.add_db, "database service", DbService::parse, |d| {
            format!("{} service", d.engine)
        })? {
            if server.db.iter().any(|d| d.engine == service.engine) {
                return Err(Error::Invalid(model::Invalid::new(
                    "database service",
                    service.engine.as_str(),
                    format!(
                        "server {} already offers a {} service (remove it in the same edit to \
                         replace it)",
                        server.name, service.engine
                    ),
                )));
            }
            server.db.push(service);
        }
        for service in one_per(
            &edit.add_php,
            "php-fpm service",
            PhpFpmService::parse,
            |p| format!("php-fpm {}", p.version),
        )? {
            if server.php_service(&service.version).is_some() {
                return Err(Error::Invalid(model::Invalid::new(
                    "php-fpm service",
                    service.version.as_str(),
                    format!(
                        "server {} already offers php-fpm {} (remove it in the same edit to \
                         replace it)",
                        server.name, service.version
                    ),
                )));
            }
            server.php.push(service);
        }
        let model::HttpService::Nginx(nginx) = &mut server.http;
        if !edit.listen.is_empty() {
            nginx.listen = parse_listens("listen address", &edit.listen)?;
        }
        match edit.https_listen.as_slice() {
            [] => {}
            [none] if none.trim() == "none" => nginx.https_listen.clear(),
            addrs => nginx.https_listen = parse_listens("https listen address", addrs)?,
        }
        nginx.check_listens()?;
        if let Some(monitor) = edit.monitor {
            server.monitor = monitor;
        }
        if let Some(key) = &edit.host_key {
            let Some(remote) = &mut server.remote else {
                return Err(Error::Invalid(model::Invalid::new(
                    "host key",
                    key,
                    format!(
                        "server {} is the machine fjord runs on: it has no SSH host key",
                        server.name
                    ),
                )));
            };
            remote.host_key = HostKey::parse("host key", key)?;
        }
        Ok(server)
    }

    /// Adds and removes a server's database and php-fpm services, then queues its verify.
    /// A service that a site's database or a platform uses is not removed (they are named).
    pub fn edit_server(&self, edit: &ServerEdit, dry_run: bool) -> Result<Queued> {
        let server = self.edited_server(edit)?;
        if dry_run {
            return self.plan(
                TaskKind::ServerVerify,
                TaskObjects::server(server),
                &TaskArgs::None,
            );
        }
        let before = self.server(&edit.name)?;
        let (_, task) = self
            .store()
            .update_server_services(&server, Some(NewTask::new(TaskKind::ServerVerify)))?;
        // Every vhost names the addresses: the served sites are verified after the server.
        if before.http != server.http {
            for platform in self.store().platforms()? {
                if platform.server_id != server.id {
                    continue;
                }
                for site in self.store().sites(Some(platform.id))? {
                    if matches!(site.status, SiteStatus::Installed | SiteStatus::Disabled) {
                        self.store().enqueue(
                            Target::Site(site.id),
                            site.name.as_str(),
                            NewTask::with_args(
                                TaskKind::SiteVerify,
                                TaskArgs::none_for(TaskKind::SiteVerify),
                            ),
                        )?;
                    }
                }
            }
        }
        self.notify_dispatchers();
        Ok(Queued::task(task))
    }

    pub fn server(&self, name: &str) -> Result<Server> {
        self.store()
            .server_by_name(name)
            .map_err(|e| missing(e, NameKind::Server, name))
    }

    pub fn servers(&self) -> Result<Vec<Server>> {
        Ok(self.store().servers()?)
    }

    pub fn verify_server(&self, name: &str, dry_run: bool) -> Result<Queued> {
        let server = self.server(name)?;
        self.queue(
            Target::Server(server.id),
            TaskKind::ServerVerify,
            TaskArgs::None,
            dry_run,
        )
    }
}

/// Parses service specs, refusing a second one of the same kind (`kind` names it: "mysql
/// service", "php-fpm 8.2").
fn one_per<T>(
    specs: &[String],
    field: &'static str,
    parse: fn(&str) -> std::result::Result<T, model::Invalid>,
    kind: fn(&T) -> String,
) -> Result<Vec<T>> {
    let mut services: Vec<T> = Vec::new();
    for spec in specs {
        let service = parse(spec)?;
        if services.iter().any(|s| kind(s) == kind(&service)) {
            return Err(Error::Invalid(model::Invalid::new(
                field,
                spec,
                format!("a server offers at most one {}", kind(&service)),
            )));
        }
        services.push(service);
    }
    Ok(services)
}

/// `on` or `off` (empty: not given).
/// A remote server's `--ssh`, `--host-key` and `--remote-dir`, checked; without a host key,
/// the one the server offers now is asked for (and pinned, and shown by the caller).
fn parse_remote(input: &RemoteInput) -> Result<Remote> {
    let ssh = SshTarget::parse("ssh", &input.ssh)?;
    let dir = input.dir.as_deref().unwrap_or(model::DEFAULT_REMOTE_DIR);
    let dir = AbsPath::parse("remote dir", dir)?;
    if !dir
        .as_str()
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        || dir.as_str() == "/"
    {
        return Err(Error::Invalid(model::Invalid::new(
            "remote dir",
            dir.as_str(),
            "must be a directory below / of letters, digits, /, ., _ and - only",
        )));
    }
    let host_key = match &input.host_key {
        Some(key) => HostKey::parse("host key", key)?,
        None => {
            let offered = host::remote::scan_host_key(&ssh.host, ssh.port)?;
            HostKey::parse("host key", &offered)?
        }
    };
    Ok(Remote { ssh, host_key, dir })
}

pub fn parse_on_off(field: &'static str, input: &str) -> Result<Option<bool>> {
    match input.trim() {
        "" => Ok(None),
        "on" => Ok(Some(true)),
        "off" => Ok(Some(false)),
        other => Err(Error::Invalid(model::Invalid::new(
            field,
            other,
            "give on or off",
        ))),
    }
}
