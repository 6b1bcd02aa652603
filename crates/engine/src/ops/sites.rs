//! Sites: add, edit, the tasks of a site's own life, login links.

use model::{
    DbEngine, Hostname, Name, Platform, Site, SiteDatabase, SiteStatus, Target, TaskArgs, TaskKind,
    derive_db_name, validate_aliases,
};
use store::{NewSite, NewTask};

use super::*;
use crate::scripts::{self, TaskObjects};
use crate::{Error, Fjord, Result};

impl Fjord {
    pub fn add_site(&self, input: &SiteInput, dry_run: bool) -> Result<Queued> {
        self.add_site_as(input, dry_run, false)
    }

    /// Adds a site; only the panel's own (`panel`) goes on a `proxy` platform.
    pub(super) fn add_site_as(
        &self,
        input: &SiteInput,
        dry_run: bool,
        panel: bool,
    ) -> Result<Queued> {
        let name = Hostname::parse("site name", &input.name)?;
        let aliases = parse_hosts("alias", &input.aliases)?;
        validate_aliases(&name, &aliases)?;
        check_public_names("site name", [&name], input.allow_private_names)?;
        check_public_names("alias", &aliases, input.allow_private_names)?;
        let client = input
            .client
            .as_deref()
            .map(|c| Name::parse("client name", c))
            .transpose()?;
        let platform = self.platform(&input.platform)?;
        if platform.kind == model::PlatformKind::Proxy && !panel {
            return Err(Error::Refused(format!(
                "platform {} is the panel's own (made by `fjord serve --url`): it takes no \
                 other site",
                platform.name
            )));
        }
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
        let upload_limit = input
            .upload_limit
            .as_deref()
            .map(model::UploadLimit::parse)
            .transpose()?;
        let https = model::SiteHttps {
            mode: match input.https.as_deref() {
                Some(mode) => model::HttpsMode::parse(mode.trim())?,
                None => model::HttpsMode::default(),
            },
            hsts: input.hsts,
        };
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
            upload_limit,
            https,
        };
        let args = TaskArgs::Install(install);
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
                upload_limit: new.upload_limit,
                https: new.https,
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
        let task = NewTask::with_args(TaskKind::SiteInstall, args);
        let (_, task) = self.store().insert_site(&new, Some(task))?;
        self.notify_dispatchers();
        Ok(Queued::task(task))
    }

    /// Chooses the site's database: the engine's service on the given server (or the
    /// platform's), a name derived from the site's (unique on that server), and a generated
    /// password of 32 hex characters.
    pub(super) fn new_site_database(
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

    pub(super) fn check_host_free(&self, host: &Hostname, except_site: Option<i64>) -> Result<()> {
        match self.store().site_by_host(host.as_str()) {
            // Whose it is stays unsaid: it may be another client's site or alias.
            // A site whose install failed keeps its name until it is deleted: say how.
            Ok(owner) if Some(owner.id) != except_site => Err(Error::Conflict(format!(
                "host name {host} is taken: it is already a site's name or alias (a site \
                 whose install failed keeps its names until `fjord site delete {host}` removes it)"
            ))),
            Ok(_) | Err(store::StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Finds a site by its main name or an alias, given in any form a user may type.
    pub fn site(&self, name: &str) -> Result<Site> {
        let host = Hostname::parse("site name", name)?;
        self.store()
            .site_by_host(host.as_str())
            .map_err(|e| missing(e, NameKind::Site, name))
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
        // Aliases the site already has were allowed when they were added.
        check_public_names(
            "alias",
            aliases.iter().filter(|a| !site.aliases.contains(a)),
            edit.allow_private_names,
        )?;
        for alias in &aliases {
            self.check_host_free(alias, Some(site.id))?;
        }
        let redirect = edit.redirect_aliases.unwrap_or(site.redirect_aliases);
        let upload_limit = match edit.upload_limit.as_deref().map(str::trim) {
            None => site.upload_limit,
            Some("platform") => None,
            Some(limit) => Some(model::UploadLimit::parse(limit)?),
        };
        let https = model::SiteHttps {
            mode: match edit.https.as_deref() {
                Some(mode) => model::HttpsMode::parse(mode.trim())?,
                None => site.https.mode,
            },
            hsts: edit.hsts.unwrap_or(site.https.hsts),
        };
        let verify = matches!(site.status, SiteStatus::Installed | SiteStatus::Disabled);
        if dry_run {
            site.aliases = aliases;
            site.redirect_aliases = redirect;
            site.upload_limit = upload_limit;
            site.https = https;
            if !verify {
                return Ok(Queued::plan(vec![
                    "# the site is not installed: only its record changes".into(),
                ]));
            }
            let objects =
                self.objects(TaskKind::SiteVerify, Target::Site(site.id), &TaskArgs::None)?;
            let objects = TaskObjects {
                site: Some(site),
                ..objects
            };
            return self.plan(TaskKind::SiteVerify, objects, &TaskArgs::None);
        }
        // A verify that fails puts the names back, so that the state says what nginx serves.
        let before = TaskArgs::SiteVerify {
            names_before: Some(model::SiteNames {
                aliases: site.aliases.clone(),
                redirect_aliases: site.redirect_aliases,
                upload_limit: site.upload_limit,
                https: site.https,
            }),
        };
        let then = verify.then(|| NewTask::with_args(TaskKind::SiteVerify, before));
        let (_, task) = self.store().update_site_names(
            site.id,
            &aliases,
            redirect,
            upload_limit,
            https,
            then,
        )?;
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
        if matches!(kind, TaskKind::SiteDelete | TaskKind::SiteDisable) {
            self.refuse_panel_site(&site, kind)?;
        }
        scripts::check_site_status(kind, &site, force)?;
        if kind == TaskKind::SiteCacheClear {
            let platform = self.store().platform(site.platform_id)?;
            if !crate::kinds::of(platform.kind).has_cache() {
                return Err(Error::Refused(format!(
                    "site {} is a {} site: it has no cache fjord can clear",
                    site.name, platform.kind
                )));
            }
        }
        let args = match TaskArgs::none_for(kind) {
            TaskArgs::Site { .. } => TaskArgs::Site { force },
            other => other,
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
        let args = TaskArgs::LoginLink {
            token_sha256: host::sha256_hex(token.as_bytes()),
            expires_at_s,
        };
        let queued = self.queue(Target::Site(site.id), TaskKind::SiteLoginLink, args, false)?;
        let has_certificate = self.store().site_tls(site.id)?.is_some();
        let url = self
            .store()
            .server(platform.server_id)?
            .site_url_of(&site, has_certificate);
        Ok((queued, format!("{url}/?fjord-login={token}")))
    }
}
