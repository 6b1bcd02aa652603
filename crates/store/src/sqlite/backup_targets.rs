//! Backup targets on SQLite: the machines that keep copies of backups, the copies each holds,
//! and where each site's backups are copied. The `Store` impl forwards to these.

use super::*;
use crate::{BackupCopy, BackupTargetRecord};

const TARGET_COLUMNS: &str = "id, name, ssh, host_key, path";

fn target_from_row(r: &Row) -> rusqlite::Result<Result<BackupTargetRecord>> {
    let (id, name, ssh, host_key, path): (i64, String, String, String, String) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
    Ok((|| {
        let bad = |what: &str, e: String| corrupt(format!("backup target {name}'s {what}: {e}"));
        Ok(BackupTargetRecord {
            id,
            name: Name::parse("backup target", &name).map_err(|e| bad("name", e.to_string()))?,
            target: model::BackupTarget {
                ssh: serde_json::from_str(&ssh).map_err(|e| bad("ssh", e.to_string()))?,
                path,
            },
            host_key: model::HostKey::parse("host key", &host_key)
                .map_err(|e| bad("host key", e.to_string()))?,
        })
    })())
}

const COPY_SELECT: &str = "SELECT c.backup_id, c.target_id, t.name, c.path, c.size, c.sha256, \
     c.copied_at FROM backup_copies c JOIN backup_targets t ON t.id = c.target_id \
     JOIN backups b ON b.id = c.backup_id";

fn copy_from_row(r: &Row) -> rusqlite::Result<Result<BackupCopy>> {
    Ok(Ok(BackupCopy {
        backup_id: r.get(0)?,
        target_id: r.get(1)?,
        target_name: r.get(2)?,
        path: r.get(3)?,
        size: r.get(4)?,
        sha256: r.get(5)?,
        copied_at: r.get(6)?,
    }))
}

impl SqliteStore {
    pub(super) fn add_backup_target(
        &self,
        name: &Name,
        target: &model::BackupTarget,
        host_key: &model::HostKey,
    ) -> Result<BackupTargetRecord> {
        let ssh = serde_json::to_string(&target.ssh).map_err(|e| corrupt(e.to_string()))?;
        let id = self.with(|c| {
            c.execute(
                "INSERT INTO backup_targets (name, ssh, host_key, path) VALUES (?1, ?2, ?3, ?4)",
                params![name.as_str(), ssh, host_key.to_string(), target.path],
            )
            .map_err(|e| conflict_or(e, || format!("backup target {name} already exists")))?;
            Ok(c.last_insert_rowid())
        })?;
        self.backup_target_by_id(id)
    }

    pub(super) fn backup_targets(&self) -> Result<Vec<BackupTargetRecord>> {
        self.with(|c| {
            collect(
                c,
                &format!("SELECT {TARGET_COLUMNS} FROM backup_targets ORDER BY name"),
                [],
                target_from_row,
            )
        })
    }

    pub(super) fn backup_target(&self, name: &str) -> Result<BackupTargetRecord> {
        self.with(|c| {
            one(
                collect(
                    c,
                    &format!("SELECT {TARGET_COLUMNS} FROM backup_targets WHERE name = ?1"),
                    [name],
                    target_from_row,
                )?,
                || format!("backup target {name}"),
            )
        })
    }

    pub(super) fn backup_target_by_id(&self, id: i64) -> Result<BackupTargetRecord> {
        self.with(|c| {
            one(
                collect(
                    c,
                    &format!("SELECT {TARGET_COLUMNS} FROM backup_targets WHERE id = ?1"),
                    [id],
                    target_from_row,
                )?,
                || format!("backup target {id}"),
            )
        })
    }

    pub(super) fn remove_backup_target(&self, name: &str, default_key: &str) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let default: Option<String> = tx
                .query_row(
                    "SELECT value FROM settings WHERE key = ?1",
                    [default_key],
                    |r| r.get(0),
                )
                .optional()?;
            if default.as_deref() == Some(name) {
                return Err(StoreError::Conflict(format!(
                    "backup target {name} is the installation's default (`fjord backup-policy \
                     --copy-to`): name another target or none first"
                )));
            }
            let mut stmt = tx.prepare(
                "SELECT name FROM sites WHERE backup_copy_to = ?1 ORDER BY name LIMIT 6",
            )?;
            let sites: Vec<String> = stmt
                .query_map([name], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            drop(stmt);
            if !sites.is_empty() {
                let mut listed = sites.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                if sites.len() > 5 {
                    listed.push_str(", …");
                }
                return Err(StoreError::Conflict(format!(
                    "backup target {name} is named by the backup policy of site(s) {listed}: \
                     change theirs first (`fjord site backup-policy SITE --copy-to`)"
                )));
            }
            let removed = tx.execute("DELETE FROM backup_targets WHERE name = ?1", [name])?;
            if removed == 0 {
                return Err(StoreError::NotFound(format!("backup target {name}")));
            }
            tx.commit()?;
            Ok(())
        })
    }

    pub(super) fn site_backup_copies(&self, site_id: i64) -> Result<Vec<BackupCopy>> {
        self.with(|c| {
            collect(
                c,
                &format!("{COPY_SELECT} WHERE b.site_id = ?1 ORDER BY c.backup_id DESC, t.name"),
                [site_id],
                copy_from_row,
            )
        })
    }

    pub(super) fn backup_copies_by_site_name(&self, site_name: &str) -> Result<Vec<BackupCopy>> {
        self.with(|c| {
            collect(
                c,
                &format!("{COPY_SELECT} WHERE b.site_name = ?1 ORDER BY c.backup_id DESC, t.name"),
                [site_name],
                copy_from_row,
            )
        })
    }

    pub(super) fn site_backup_copy_to(&self, site_id: i64) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT backup_copy_to FROM sites WHERE id = ?1",
                [site_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("site {site_id}")))
        })
    }

    pub(super) fn set_site_backup_copy_to(
        &self,
        site_id: i64,
        copy_to: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE sites SET backup_copy_to = ?2 WHERE id = ?1",
                params![site_id, copy_to],
            )?;
            Ok(())
        })
    }
}
