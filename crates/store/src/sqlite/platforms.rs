//! Platforms on SQLite: a code base on a server, its upload limit and its lock.
//! The `Store` impl forwards to these.

use super::*;

impl SqliteStore {
    pub(super) fn insert_platform(
        &self,
        platform: &Platform,
        then: Option<NewTask>,
    ) -> Result<(Platform, Option<Task>)> {
        let (name, path) = (&platform.name, &platform.path);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO platforms (name, server_id, path, kind, php_version, drush, \
                 allow_exec, created_at, upload_limit_mb, upstream) VALUES (?1, ?2, ?3, ?4, ?5, \
                 ?6, ?7, ?8, ?9, ?10)",
                params![
                    name.as_str(),
                    platform.server_id,
                    path.as_str(),
                    platform.kind.as_str(),
                    platform.php_version.as_ref().map(|v| v.as_str()),
                    platform.drush.as_ref().map(|d| d.as_str()),
                    platform.allow_exec,
                    now_ms(),
                    platform.upload_limit.map(|l| l.mb()),
                    platform.upstream.map(|u| u.to_string())
                ],
            )
            .map_err(|e| {
                conflict_or(e, || {
                    format!("a platform named {name} or at {path} already exists")
                })
            })?;
            let id = tx.last_insert_rowid();
            let task = maybe_enqueue(&tx, Target::Platform(id), name.as_str(), then)?;
            tx.commit()?;
            Ok((
                Platform {
                    id,
                    locked: false,
                    ..platform.clone()
                },
                task,
            ))
        })
    }

    pub(super) fn platform(&self, id: i64) -> Result<Platform> {
        self.with(|c| {
            one(
                collect(
                    c,
                    &format!("SELECT {PLATFORM_COLS} FROM platforms WHERE id = ?1"),
                    [id],
                    platform_from_row,
                )?,
                || format!("platform {id}"),
            )
        })
    }

    pub(super) fn platform_by_name(&self, name: &str) -> Result<Platform> {
        self.with(|c| {
            one(
                collect(
                    c,
                    &format!("SELECT {PLATFORM_COLS} FROM platforms WHERE name = ?1"),
                    [name],
                    platform_from_row,
                )?,
                || format!("platform {name:?}"),
            )
        })
    }

    pub(super) fn platforms(&self) -> Result<Vec<Platform>> {
        self.with(|c| {
            collect(
                c,
                &format!("SELECT {PLATFORM_COLS} FROM platforms ORDER BY name"),
                [],
                platform_from_row,
            )
        })
    }

    pub(super) fn set_platform_upload_limit(
        &self,
        id: i64,
        limit: Option<model::UploadLimit>,
        then: Option<NewTask>,
    ) -> Result<Option<Task>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE platforms SET upload_limit_mb = ?2 WHERE id = ?1",
                params![id, limit.map(|l| l.mb())],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("platform {id}")));
            }
            let name: String =
                tx.query_row("SELECT name FROM platforms WHERE id = ?1", [id], |r| {
                    r.get(0)
                })?;
            let task = maybe_enqueue(&tx, Target::Platform(id), &name, then)?;
            tx.commit()?;
            Ok(task)
        })
    }

    /// Changes where a `proxy` platform passes requests, and queues `then` (its verify, which
    /// rewrites its sites' vhosts) in the same transaction.
    pub(super) fn set_platform_upstream(
        &self,
        id: i64,
        upstream: std::net::SocketAddr,
        then: Option<NewTask>,
    ) -> Result<Option<Task>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE platforms SET upstream = ?2 WHERE id = ?1",
                params![id, upstream.to_string()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("platform {id}")));
            }
            let name: String =
                tx.query_row("SELECT name FROM platforms WHERE id = ?1", [id], |r| {
                    r.get(0)
                })?;
            let task = maybe_enqueue(&tx, Target::Platform(id), &name, then)?;
            tx.commit()?;
            Ok(task)
        })
    }

    pub(super) fn set_platform_locked(&self, id: i64, locked: bool) -> Result<()> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE platforms SET locked = ?2 WHERE id = ?1",
                params![id, locked],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("platform {id}")));
            }
            Ok(())
        })
    }

    pub(super) fn delete_platform(&self, id: i64) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM platforms WHERE id = ?1", [id])
                .map_err(|e| conflict_or(e, || format!("platform {id} still has sites")))?;
            Ok(())
        })
    }
}
