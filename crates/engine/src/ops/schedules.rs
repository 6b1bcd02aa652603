//! Backup schedules and retention, per site or for the installation.

use model::{CronSchedule, Retention, Target, Task, TaskArgs, TaskKind};
use store::NewTask;

use super::*;
use crate::{Error, Fjord, Result};

impl Fjord {
    /// The effective (schedule, retention) of a site: its own, or the installation's.
    pub(super) fn backup_policy_of(
        &self,
        site_id: i64,
    ) -> Result<(Option<CronSchedule>, Option<Retention>)> {
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
                            TaskArgs::Backup { scheduled: true },
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
            TaskArgs::BackupDelete { ids: ids.to_vec() },
            dry_run,
        )
    }
}
