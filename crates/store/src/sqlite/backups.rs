//! Backups on SQLite: the backups kept of each site, and when each site is backed up next.
//! The `Store` impl forwards to these.

use super::*;

impl SqliteStore {
    pub(super) fn site_backup_policy(
        &self,
        site_id: i64,
    ) -> Result<(Option<String>, Option<String>)> {
        self.with(|c| {
            c.query_row(
                "SELECT backup_schedule, backup_retention FROM sites WHERE id = ?1",
                [site_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("site {site_id}")))
        })
    }

    pub(super) fn set_site_backup_policy(
        &self,
        site_id: i64,
        schedule: Option<&str>,
        retention: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE sites SET backup_schedule = ?2, backup_retention = ?3, next_backup_at = NULL WHERE id = ?1",
                params![site_id, schedule, retention],
            )?;
            Ok(())
        })
    }

    pub(super) fn backup_schedules(&self) -> Result<Vec<SiteSchedule>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, backup_schedule, next_backup_at FROM sites
                 WHERE status IN ('installed', 'disabled') ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(SiteSchedule {
                    site_id: r.get(0)?,
                    site_name: r.get(1)?,
                    own_schedule: r.get(2)?,
                    next_at: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub(super) fn set_next_backup(&self, site_id: i64, at: Option<i64>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE sites SET next_backup_at = ?2 WHERE id = ?1",
                params![site_id, at],
            )?;
            Ok(())
        })
    }

    pub(super) fn take_due_backup(
        &self,
        site_id: i64,
        site_name: &str,
        due: i64,
        next: Option<i64>,
        backup: Option<NewTask>,
    ) -> Result<Option<Task>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let moved = tx.execute(
                "UPDATE sites SET next_backup_at = ?3 WHERE id = ?1 AND next_backup_at = ?2",
                params![site_id, due, next],
            )?;
            let queued = match backup {
                Some(task) if moved == 1 => {
                    let task = insert_task(&tx, Target::Site(site_id), site_name, &task)?;
                    tx.execute(
                        "UPDATE tasks SET queued_by = 'schedule' WHERE id = ?1",
                        [task.id],
                    )?;
                    Some(Task {
                        queued_by: "schedule".into(),
                        ..task
                    })
                }
                _ => None,
            };
            tx.commit()?;
            Ok(queued)
        })
    }

    pub(super) fn backups(&self, site_name: &str) -> Result<Vec<Backup>> {
        self.with(|c| {
            collect(
                c,
                "SELECT id, site_id, site_name, path, size, created_at FROM backups WHERE site_name = ?1 ORDER BY id DESC",
                [site_name],
                backup_from_row,
            )
        })
    }

    pub(super) fn site_backups(&self, site_id: i64) -> Result<Vec<Backup>> {
        self.with(|c| {
            collect(
                c,
                "SELECT id, site_id, site_name, path, size, created_at FROM backups WHERE site_id = ?1 ORDER BY id DESC",
                [site_id],
                backup_from_row,
            )
        })
    }

    pub(super) fn backup(&self, id: i64) -> Result<Backup> {
        self.with(|c| {
            one(
                collect(c, "SELECT id, site_id, site_name, path, size, created_at FROM backups WHERE id = ?1", [id], backup_from_row)?,
                || format!("backup {id}"),
            )
        })
    }
}
