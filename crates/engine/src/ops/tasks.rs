//! The queue: queueing a task (or planning it), loading what it works on, and the task list.

use model::{Target, Task, TaskArgs, TaskKind, TaskStatus};
use store::{LogLine, NewTask, TaskFilter};

use super::*;
use crate::scripts::{self, TaskObjects};
use crate::{Error, Fjord, Result};

impl Fjord {
    pub(super) fn queue(
        &self,
        target: Target,
        kind: TaskKind,
        args: TaskArgs,
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

    pub(super) fn plan(
        &self,
        kind: TaskKind,
        objects: TaskObjects,
        args: &TaskArgs,
    ) -> Result<Queued> {
        // The plan is read from the machine the task would step on, as the task would.
        let reads = self.reads_of(&objects.server)?;
        let mut dry = host::DryRun::reading(reads.clone());
        let mut env = self.script_env();
        env.reads = reads;
        env.remote_dir = crate::remote::endpoint(&objects.server).map(|e| e.dir);
        scripts::run(&env, kind, &objects, args, &mut dry)?;
        Ok(Queued::plan(dry.out))
    }

    /// Loads what a task on `target` works on.
    pub(crate) fn objects(
        &self,
        kind: TaskKind,
        target: Target,
        args: &TaskArgs,
    ) -> Result<TaskObjects> {
        let mut objects = self.target_objects(target)?;
        if let Some(source) = args.source_site() {
            objects.extra.source = Some(Box::new(self.target_objects(Target::Site(source))?));
        }
        if let TaskArgs::Migrate(m) = args {
            let platform = self.store().platform(m.platform)?;
            objects.extra.to_server = Some(self.store().server(platform.server_id)?);
            objects.extra.to_platform = Some(platform);
            if let Some(server) = m.db_server {
                objects.extra.to_db_server = Some(self.store().server(server)?);
            }
        }
        // Only the backup tasks read a site's backups and its retention.
        let backup_task = matches!(kind, TaskKind::SiteBackup | TaskKind::SiteBackupDelete);
        if let (true, Target::Site(id)) = (backup_task, target) {
            objects.extra.backups = self.store().site_backups(id)?;
            objects.extra.retention = self.backup_policy_of(id)?.1;
            objects.extra.copies = self.copy_plan(id, kind == TaskKind::SiteBackup)?;
        }
        if let TaskArgs::Restore {
            from_target: Some(from),
            ..
        } = args
        {
            objects.extra.copies.fetch = Some(self.fetch_plan(from)?);
            objects.extra.copies.keys = self.ssh_keys_dir();
        }
        if matches!(
            kind,
            TaskKind::SiteHttps
                | TaskKind::SiteInstall
                | TaskKind::SiteVerify
                | TaskKind::SiteClone
                | TaskKind::SiteMigrate
        ) {
            objects.extra.acme_account = self.store().acme_account()?;
            if let Target::Site(id) = target {
                objects.extra.certificate = self.store().site_certificate(id)?;
            }
        }
        if let (TaskKind::HttpsIssue, Target::Server(id)) = (kind, target) {
            self.load_fleet(id, &mut objects)?;
        }
        if let TaskArgs::MigrateAll { children, .. } = args {
            for child in children {
                objects.extra.children.push(self.store().task(*child)?);
            }
        }
        Ok(objects)
    }

    /// A batch of certificates: the ACME account, the room its CA's limit leaves, and each
    /// installed or disabled site of server `server` as its own certificate task sees it.
    fn load_fleet(&self, server: i64, objects: &mut TaskObjects) -> Result<()> {
        let store = self.store();
        let account = store.acme_account()?;
        objects.extra.orders_room = match &account {
            Some(account) => self.acme_orders_room(account, store::now_ms())?,
            None => None,
        };
        let mut on_server = std::collections::BTreeMap::new();
        for site in store.sites(None)? {
            if !matches!(
                site.status,
                model::SiteStatus::Installed | model::SiteStatus::Disabled
            ) {
                continue;
            }
            let here = match on_server.get(&site.platform_id) {
                Some(here) => *here,
                None => {
                    let here = store.platform(site.platform_id)?.server_id == server;
                    on_server.insert(site.platform_id, here);
                    here
                }
            };
            if !here {
                continue;
            }
            let mut site_objects = self.target_objects(Target::Site(site.id))?;
            site_objects.extra.acme_account = account.clone();
            site_objects.extra.certificate = store.site_certificate(site.id)?;
            objects.extra.fleet.push(site_objects);
        }
        objects.extra.acme_account = account;
        Ok(())
    }

    pub(super) fn target_objects(&self, target: Target) -> Result<TaskObjects> {
        let store = self.store();
        Ok(match target {
            Target::Server(id) => TaskObjects::server(store.server(id)?),
            Target::Platform(id) => {
                let platform = store.platform(id)?;
                let all_sites = store.sites(None)?;
                let sites: Vec<_> = all_sites
                    .iter()
                    .filter(|s| s.platform_id == platform.id)
                    .cloned()
                    .collect();
                let mut db_servers: Vec<model::Server> = Vec::new();
                for id in sites
                    .iter()
                    .filter_map(|s| Some(s.database.as_ref()?.server_id))
                {
                    if !db_servers.iter().any(|s| s.id == id) {
                        db_servers.push(store.server(id)?);
                    }
                }
                let mut tls_of_sites = std::collections::BTreeMap::new();
                for site in &sites {
                    if let Some(tls) = store.site_tls(site.id)? {
                        tls_of_sites.insert(site.id, tls);
                    }
                }
                TaskObjects {
                    server: store.server(platform.server_id)?,
                    sites,
                    platform: Some(platform),
                    site: None,
                    db_server: None,
                    extra: scripts::Extra {
                        all_sites,
                        db_servers,
                        tls_of_sites,
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
                    extra: scripts::Extra {
                        tls: store.site_tls(site.id)?,
                        ..Default::default()
                    },
                    site: Some(site),
                    sites: Vec::new(),
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

    /// Where a queued task stands: how many wait before it, and the task on one of its
    /// objects it runs after.
    pub fn queue_place(&self, id: i64) -> Result<store::QueuePlace> {
        Ok(self.store().queue_place(id)?)
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
