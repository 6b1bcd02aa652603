//! Clone, migrate and batch migrate.

use model::{DbEngine, Hostname, Site, SiteStatus, Target, TaskArgs, TaskKind};
use store::{NewSite, NewTask};

use super::*;
use crate::scripts::{self};
use crate::{Error, Fjord, Result, compat};

impl Fjord {
    /// Records a new site `new_name` on `platform` and queues its clone from `source`: a
    /// backup of the source, deployed as the new site with a database of its own. The source
    /// is never changed.
    pub fn clone_site(
        &self,
        source: &str,
        new_name: Rename<'_>,
        platform: &str,
        force: bool,
        dry_run: bool,
    ) -> Result<Queued> {
        let source = self.site(source)?;
        scripts::check_site_status(TaskKind::SiteBackup, &source, false)?;
        let name = Hostname::parse("site name", new_name.name)?;
        check_public_names("site name", [&name], new_name.allow_private_name)?;
        let platform = self.platform(platform)?;
        self.refuse_panel_move(&source, &platform)?;
        self.refuse_incompatible(&source, &platform, force)?;
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
            // A clone takes what its source takes.
            upload_limit: source.upload_limit,
            https: source.https,
        };
        let args = TaskArgs::Clone {
            source: source.id,
            force,
        };
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
                upload_limit: new.upload_limit,
                https: new.https,
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
        new_name: Option<Rename<'_>>,
        db_server: Option<&str>,
        force: bool,
        dry_run: bool,
    ) -> Result<Queued> {
        let site = self.site(name)?;
        scripts::check_site_status(TaskKind::SiteMigrate, &site, false)?;
        let platform = match to_platform {
            Some(p) => self.platform(p)?,
            None => self.store().platform(site.platform_id)?,
        };
        self.refuse_panel_move(&site, &platform)?;
        if platform.id != site.platform_id {
            self.refuse_incompatible(&site, &platform, force)?;
        }
        if platform.id != site.platform_id && platform.locked {
            return Err(Error::Refused(format!(
                "platform {} is locked: it takes no new sites",
                platform.name
            )));
        }
        let new_name = match new_name {
            Some(rename) => {
                let name = Hostname::parse("new site name", rename.name)?;
                if name != site.name {
                    check_public_names("new site name", [&name], rename.allow_private_name)?;
                }
                name
            }
            None => site.name.clone(),
        };
        if new_name != site.name {
            self.check_host_free(&new_name, Some(site.id))?;
        }
        let mut args = model::MigrateArgs {
            platform: platform.id,
            name: new_name.clone(),
            db_server: None,
            db_name: None,
            force,
        };
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
                args.db_server = Some(server.id);
                args.db_name = Some(new_db.name);
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
        self.queue(
            Target::Site(site.id),
            TaskKind::SiteMigrate,
            TaskArgs::Migrate(args),
            dry_run,
        )
    }

    /// The migrate compatibility check of `site` onto `platform`: each package the site has
    /// enabled (as its last verify recorded them) against the platform's code (as its last
    /// verify found it). Changes nothing.
    pub fn migrate_check(&self, site: &str, platform: &str, force: bool) -> Result<compat::Report> {
        let site = self.site(site)?;
        let platform = self.platform(platform)?;
        self.compat_report(&site, &platform, force)
    }

    fn compat_report(
        &self,
        site: &Site,
        platform: &model::Platform,
        force: bool,
    ) -> Result<compat::Report> {
        let current = self.store().platform(site.platform_id)?;
        if current.kind != platform.kind {
            return Err(Error::Refused(format!(
                "site {} is a {} site and platform {} is a {} platform: a site moves only \
                 between platforms of its kind",
                site.name, current.kind, platform.name, platform.kind
            )));
        }
        Ok(compat::check(
            &self.code_found(Target::Site(site.id))?.1,
            &self.code_found(Target::Platform(platform.id))?.1,
            force,
        ))
    }

    fn refuse_incompatible(
        &self,
        site: &Site,
        platform: &model::Platform,
        force: bool,
    ) -> Result<()> {
        let report = self.compat_report(site, platform, force)?;
        match report.refusal() {
            Some(why) => Err(Error::Refused(format!(
                "site {} cannot move to platform {}: {why}\n{}",
                site.name,
                platform.name,
                report.table()
            ))),
            None => Ok(()),
        }
    }

    /// Migrates every site of platform `from` to `to`, as one task per site (run side by side
    /// within the concurrency limit) and a summary task that runs after them all. Returns the
    /// summary task (or, with `dry_run`, the sites that would move) and the number of sites.
    pub fn migrate_platform(&self, from: &str, to: &str, dry_run: bool) -> Result<(Queued, usize)> {
        let source = self.platform(from)?;
        let target = self.platform(to)?;
        if [source.kind, target.kind].contains(&model::PlatformKind::Proxy) {
            return Err(Error::Refused(
                "the panel's own platform (kind proxy) is neither migrated nor migrated to".into(),
            ));
        }
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
            let args = TaskArgs::Migrate(model::MigrateArgs {
                platform: target.id,
                name: site.name.clone(),
                db_server: None,
                db_name: None,
                force: false,
            });
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
                TaskArgs::MigrateAll {
                    children: ids,
                    to: target.name.to_string(),
                },
            ),
        )?;
        self.notify_dispatchers();
        Ok((Queued::task(Some(summary)), children.len()))
    }
}
