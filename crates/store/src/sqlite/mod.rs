mod accounts;
mod effects;
mod migrations;
mod queue;
mod rows;

use accounts::load_clients;
use effects::*;
use rows::*;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use model::{
    AbsPath, Client, DbEngine, Hostname, LockKey, Name, PhpVersion, Platform, PlatformKind, Server,
    Site, SiteDatabase, SiteStatus, Target, Task, TaskKind, TaskStatus, WebRoot, locks_conflict,
};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::{
    Backup, Claim, CronRun, JournalEntry, LogLine, NewBackup, NewSite, NewTask, Result,
    RunningTask, SiteCron, SiteSchedule, Store, StoreError, TaskEffect, TaskFilter, now_ms,
};

pub use migrations::MIGRATIONS;

/// The embedded default: one SQLite file in WAL mode. Several processes (the CLI, one or more
/// dispatchers) share it; writes that must not interleave run in `BEGIN IMMEDIATE`.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

fn conflict_or(e: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(what())
        }
        e => StoreError::Db(e),
    }
}

impl SqliteStore {
    /// Opens the state database at `path`, creating it if there is none. An existing file of
    /// 0 bytes is refused: it is a state that was truncated (or never written), and taking it
    /// for a new installation would forget every site.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(StoreError::Corrupt(format!(
                "{} is empty (0 bytes): the state was truncated or never written. Restore it \
                 from a copy; remove it only to start a new installation",
                path.display()
            )));
        }
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    pub fn open_in_memory() -> Result<SqliteStore> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<SqliteStore> {
        // The busy timeout comes first, so that everything below waits for another process
        // that is creating or migrating the same state instead of failing "locked".
        conn.busy_timeout(Duration::from_secs(30))?;
        set_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.with(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }
}

/// Switches the state to WAL. The switch needs the database to itself and SQLite may answer
/// busy at once, without calling the busy handler, while another connection opens it: retried
/// for as long as the busy timeout would wait. A database already in WAL returns at once.
fn set_wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") || mode == "memory" => return Ok(()),
            Ok(mode) => return Err(corrupt(format!("journal mode stays {mode}, not WAL"))),
            Err(rusqlite::Error::SqliteFailure(f, _))
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Applies pending migrations in one IMMEDIATE transaction: it takes the write lock before it
/// reads the version, so two processes never both see a migration as pending.
fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current as usize > MIGRATIONS.len() {
        return Err(corrupt(format!(
            "schema version {current} is newer than this fjord knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

impl Store for SqliteStore {
    fn site_backup_policy(&self, site_id: i64) -> Result<(Option<String>, Option<String>)> {
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

    fn set_site_backup_policy(
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

    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| {
            Ok(
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
    }

    fn set_setting(&self, key: &str, value: Option<&str>) -> Result<()> {
        self.with(|c| {
            match value {
                Some(v) => c.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                    params![key, v],
                )?,
                None => c.execute("DELETE FROM settings WHERE key = ?1", [key])?,
            };
            // Every site following the defaults gets its next time computed anew.
            c.execute("UPDATE sites SET next_backup_at = NULL WHERE backup_schedule IS NULL", [])?;
            Ok(())
        })
    }

    fn backup_schedules(&self) -> Result<Vec<SiteSchedule>> {
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

    fn set_next_backup(&self, site_id: i64, at: Option<i64>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE sites SET next_backup_at = ?2 WHERE id = ?1",
                params![site_id, at],
            )?;
            Ok(())
        })
    }

    fn take_due_backup(
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

    fn due_crons(&self, now: i64, kinds: &[&str], limit: usize) -> Result<Vec<i64>> {
        self.with(|c| {
            let kinds_json = serde_json::to_string(kinds).map_err(|e| corrupt(e.to_string()))?;
            let mut stmt = c.prepare(
                "SELECT s.id FROM sites s JOIN platforms p ON p.id = s.platform_id
                 WHERE s.status = 'installed'
                   AND p.kind IN (SELECT value FROM json_each(?1))
                   AND (s.cron_next_at IS NULL OR s.cron_next_at <= ?2)
                 ORDER BY s.cron_next_at IS NOT NULL, s.cron_next_at, s.id
                 LIMIT ?3",
            )?;
            let ids = stmt
                .query_map(params![kinds_json, now, limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok(ids)
        })
    }

    fn take_due_cron(
        &self,
        site_id: i64,
        due: Option<i64>,
        next: i64,
        owner: &str,
    ) -> Result<bool> {
        self.with(|c| queue::take_due_cron(c, site_id, due, next, owner))
    }

    fn record_cron(
        &self,
        site_id: i64,
        owner: &str,
        at: i64,
        ok: bool,
        message: &str,
    ) -> Result<()> {
        self.with(|c| queue::record_cron(c, site_id, owner, at, ok, message))
    }

    fn cron_runs(&self) -> Result<Vec<CronRun>> {
        self.with(queue::cron_runs)
    }

    fn site_cron(&self, site_id: i64) -> Result<SiteCron> {
        self.with(|c| {
            c.query_row(
                "SELECT cron_interval_s, cron_last_at, cron_last_ok, cron_last_message, cron_next_at FROM sites WHERE id = ?1",
                [site_id],
                |r| {
                    Ok(SiteCron {
                        own_interval_s: r.get(0)?,
                        last_at: r.get(1)?,
                        last_ok: r.get(2)?,
                        last_message: r.get(3)?,
                        next_at: r.get(4)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("site {site_id}")))
        })
    }

    fn code_found(&self, target: Target) -> Result<(Option<String>, Option<String>)> {
        self.with(|c| {
            let found = match target {
                Target::Platform(id) => c
                    .query_row(
                        "SELECT code_version, packages FROM platforms WHERE id = ?1",
                        [id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?,
                Target::Site(id) => c
                    .query_row("SELECT packages FROM sites WHERE id = ?1", [id], |r| {
                        Ok((None, r.get(0)?))
                    })
                    .optional()?,
                Target::Server(_) => None,
            };
            Ok(found.unwrap_or((None, None)))
        })
    }

    fn set_site_cron(
        &self,
        site_id: i64,
        interval_s: Option<i64>,
        next_at: Option<i64>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE sites SET cron_interval_s = ?2, cron_next_at = ?3 WHERE id = ?1",
                params![site_id, interval_s, next_at],
            )?;
            Ok(())
        })
    }

    fn backups(&self, site_name: &str) -> Result<Vec<Backup>> {
        self.with(|c| {
            collect(
                c,
                "SELECT id, site_id, site_name, path, size, created_at FROM backups WHERE site_name = ?1 ORDER BY id DESC",
                [site_name],
                backup_from_row,
            )
        })
    }

    fn site_backups(&self, site_id: i64) -> Result<Vec<Backup>> {
        self.with(|c| {
            collect(
                c,
                "SELECT id, site_id, site_name, path, size, created_at FROM backups WHERE site_id = ?1 ORDER BY id DESC",
                [site_id],
                backup_from_row,
            )
        })
    }

    fn backup(&self, id: i64) -> Result<Backup> {
        self.with(|c| {
            one(
                collect(c, "SELECT id, site_id, site_name, path, size, created_at FROM backups WHERE id = ?1", [id], backup_from_row)?,
                || format!("backup {id}"),
            )
        })
    }

    fn insert_server(
        &self,
        server: &Server,
        then: Option<NewTask>,
    ) -> Result<(Server, Option<Task>)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let name = &server.name;
            tx.execute(
                "INSERT INTO servers (name, http, db, php, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    name.as_str(),
                    to_json(&server.http)?,
                    to_json(&server.db)?,
                    to_json(&server.php)?,
                    now_ms()
                ],
            )
            .map_err(|e| conflict_or(e, || format!("a server named {name} already exists")))?;
            let id = tx.last_insert_rowid();
            let task = maybe_enqueue(&tx, Target::Server(id), name.as_str(), then)?;
            tx.commit()?;
            Ok((
                Server {
                    id,
                    ..server.clone()
                },
                task,
            ))
        })
    }

    fn update_server_services(
        &self,
        server: &Server,
        then: Option<NewTask>,
    ) -> Result<(Server, Option<Task>)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let in_use: Vec<(String, String)> = collect(
                &tx,
                "SELECT d.engine, s.name FROM site_databases d JOIN sites s ON s.id = d.site_id \
                 WHERE d.server_id = ?1 ORDER BY s.name",
                [server.id],
                |r: &Row| Ok(Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))),
            )?;
            let mut refused = Vec::new();
            for engine in in_use.iter().map(|(e, _)| e) {
                if server.db.iter().any(|d| d.engine.as_str() == engine)
                    || refused.iter().any(|(e, _): &(String, _)| e == engine)
                {
                    continue;
                }
                let sites: Vec<&str> = in_use
                    .iter()
                    .filter(|(e, _)| e == engine)
                    .map(|(_, s)| s.as_str())
                    .collect();
                refused.push((
                    engine.clone(),
                    format!(
                        "the {engine} service holds the databases of sites {}",
                        sites.join(", ")
                    ),
                ));
            }
            let platforms: Vec<(String, String)> = collect(
                &tx,
                "SELECT php_version, name FROM platforms WHERE server_id = ?1 \
                 AND php_version IS NOT NULL ORDER BY name",
                [server.id],
                |r: &Row| Ok(Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))),
            )?;
            for (version, platform) in &platforms {
                if !server.php.iter().any(|p| p.version.as_str() == version) {
                    refused.push((
                        version.clone(),
                        format!("platform {platform} runs on php-fpm {version}"),
                    ));
                }
            }
            if !refused.is_empty() {
                let why: Vec<String> = refused.into_iter().map(|(_, why)| why).collect();
                return Err(StoreError::Conflict(format!(
                    "server {} keeps the services in use: {}",
                    server.name,
                    why.join("; ")
                )));
            }
            let changed = tx.execute(
                "UPDATE servers SET db = ?2, php = ?3 WHERE id = ?1",
                params![server.id, to_json(&server.db)?, to_json(&server.php)?],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("server {}", server.name)));
            }
            let task = maybe_enqueue(&tx, Target::Server(server.id), server.name.as_str(), then)?;
            tx.commit()?;
            Ok((server.clone(), task))
        })
    }

    fn server(&self, id: i64) -> Result<Server> {
        self.with(|c| {
            one(
                collect(
                    c,
                    "SELECT id, name, http, db, php FROM servers WHERE id = ?1",
                    [id],
                    server_from_row,
                )?,
                || format!("server {id}"),
            )
        })
    }

    fn server_by_name(&self, name: &str) -> Result<Server> {
        self.with(|c| {
            one(
                collect(
                    c,
                    "SELECT id, name, http, db, php FROM servers WHERE name = ?1",
                    [name],
                    server_from_row,
                )?,
                || format!("server {name:?}"),
            )
        })
    }

    fn servers(&self) -> Result<Vec<Server>> {
        self.with(|c| {
            collect(
                c,
                "SELECT id, name, http, db, php FROM servers ORDER BY name",
                [],
                server_from_row,
            )
        })
    }

    fn insert_platform(
        &self,
        platform: &Platform,
        then: Option<NewTask>,
    ) -> Result<(Platform, Option<Task>)> {
        let (name, path) = (&platform.name, &platform.path);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO platforms (name, server_id, path, kind, php_version, drush, \
                 allow_exec, created_at, upload_limit_mb) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
                 ?8, ?9)",
                params![
                    name.as_str(),
                    platform.server_id,
                    path.as_str(),
                    platform.kind.as_str(),
                    platform.php_version.as_ref().map(|v| v.as_str()),
                    platform.drush.as_ref().map(|d| d.as_str()),
                    platform.allow_exec,
                    now_ms(),
                    platform.upload_limit.map(|l| l.mb())
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

    fn platform(&self, id: i64) -> Result<Platform> {
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

    fn platform_by_name(&self, name: &str) -> Result<Platform> {
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

    fn platforms(&self) -> Result<Vec<Platform>> {
        self.with(|c| {
            collect(
                c,
                &format!("SELECT {PLATFORM_COLS} FROM platforms ORDER BY name"),
                [],
                platform_from_row,
            )
        })
    }

    fn set_platform_upload_limit(&self, id: i64, limit: Option<model::UploadLimit>) -> Result<()> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE platforms SET upload_limit_mb = ?2 WHERE id = ?1",
                params![id, limit.map(|l| l.mb())],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("platform {id}")));
            }
            Ok(())
        })
    }

    fn set_platform_locked(&self, id: i64, locked: bool) -> Result<()> {
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

    fn delete_platform(&self, id: i64) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM platforms WHERE id = ?1", [id])
                .map_err(|e| conflict_or(e, || format!("platform {id} still has sites")))?;
            Ok(())
        })
    }

    fn insert_site(&self, site: &NewSite, then: Option<NewTask>) -> Result<(Site, Option<Task>)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The quota is checked in the transaction that adds the site, so that two adds at
            // once cannot both take the last place.
            if let Some(client) = site.client_id {
                let (name, quota, count): (String, Option<u32>, u32) = tx.query_row(
                    "SELECT name, site_quota, (SELECT count(*) FROM sites WHERE client_id = ?1)
                     FROM clients WHERE id = ?1",
                    [client],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                if let Some(quota) = quota.filter(|q| count >= *q) {
                    return Err(StoreError::Conflict(format!(
                        "client {name} has {count} sites and may have at most {quota} \
                         (its quota): delete one or raise the quota"
                    )));
                }
            }
            tx.execute(
                "INSERT INTO sites (name, platform_id, redirect_aliases, status, client_id, created_at, app_secret, upload_limit_mb)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    site.name.as_str(),
                    site.platform_id,
                    site.redirect_aliases,
                    site.status.as_str(),
                    site.client_id,
                    now_ms(),
                    site.app_secret,
                    site.upload_limit.map(|l| l.mb())
                ],
            )
            .map_err(|e| conflict_or(e, || format!("a site named {} already exists", site.name)))?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO host_names (name, site_id, is_main, position) VALUES (?1, ?2, 1, 0)",
                params![site.name.as_str(), id],
            )
            .map_err(|e| {
                conflict_or(e, || format!("host name {} is already an alias of another site", site.name))
            })?;
            insert_aliases(&tx, id, &site.aliases)?;
            if let Some(db) = &site.database {
                insert_site_database(&tx, id, db)?;
            }
            let task = maybe_enqueue(&tx, Target::Site(id), site.name.as_str(), then)?;
            let created = one(load_sites(&tx, "WHERE id = ?1", [id])?, || format!("site {id}"))?;
            tx.commit()?;
            Ok((created, task))
        })
    }

    fn site(&self, id: i64) -> Result<Site> {
        self.with(|c| {
            one(load_sites(c, "WHERE id = ?1", [id])?, || {
                format!("site {id}")
            })
        })
    }

    fn site_by_host(&self, host: &str) -> Result<Site> {
        self.with(|c| {
            one(
                load_sites(
                    c,
                    "WHERE id = (SELECT site_id FROM host_names WHERE name = ?1)",
                    [host],
                )?,
                || format!("site {host:?}"),
            )
        })
    }

    fn sites(&self, platform_id: Option<i64>) -> Result<Vec<Site>> {
        self.with(|c| match platform_id {
            Some(p) => load_sites(c, "WHERE platform_id = ?1", [p]),
            None => load_sites(c, "", []),
        })
    }

    fn update_site_names(
        &self,
        id: i64,
        aliases: &[Hostname],
        redirect_aliases: bool,
        upload_limit: Option<model::UploadLimit>,
        then: Option<NewTask>,
    ) -> Result<(Site, Option<Task>)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE sites SET redirect_aliases = ?2, upload_limit_mb = ?3 WHERE id = ?1",
                params![id, redirect_aliases, upload_limit.map(|l| l.mb())],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("site {id}")));
            }
            tx.execute(
                "DELETE FROM host_names WHERE site_id = ?1 AND is_main = 0",
                [id],
            )?;
            insert_aliases(&tx, id, aliases)?;
            let name: String =
                tx.query_row("SELECT name FROM sites WHERE id = ?1", [id], |r| r.get(0))?;
            let task = maybe_enqueue(&tx, Target::Site(id), &name, then)?;
            let site = one(load_sites(&tx, "WHERE id = ?1", [id])?, || {
                format!("site {id}")
            })?;
            tx.commit()?;
            Ok((site, task))
        })
    }

    fn set_site_status(&self, id: i64, status: SiteStatus) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE sites SET status = ?2 WHERE id = ?1",
                params![id, status.as_str()],
            )?;
            Ok(())
        })
    }

    fn delete_site(&self, id: i64) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM site_databases WHERE site_id = ?1", [id])?;
            c.execute("DELETE FROM sites WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    fn database_name_taken(&self, server_id: i64, engine: DbEngine, name: &str) -> Result<bool> {
        self.with(|c| {
            let n: i64 = c.query_row(
                "SELECT count(*) FROM site_databases WHERE server_id = ?1 AND engine = ?2 AND (name = ?3 OR user = ?3)",
                params![server_id, engine.as_str(), name],
                |r| r.get(0),
            )?;
            Ok(n > 0)
        })
    }

    fn client_by_name_or_insert(&self, name: &Name) -> Result<Client> {
        let id = self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO clients (name) VALUES (?1)",
                [name.as_str()],
            )?;
            Ok(c.query_row(
                "SELECT id FROM clients WHERE name = ?1",
                [name.as_str()],
                |r| r.get::<_, i64>(0),
            )?)
        })?;
        self.client(id)
    }

    fn client(&self, id: i64) -> Result<Client> {
        self.with(|c| {
            one(load_clients(c, "WHERE id = ?1", [id])?, || {
                format!("client {id}")
            })
        })
    }

    fn set_client_email(&self, id: i64, email: Option<&model::EmailAddress>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE clients SET email = ?2 WHERE id = ?1",
                params![id, email.map(|e| e.as_str())],
            )?;
            Ok(())
        })
    }

    fn enqueue(&self, target: Target, target_name: &str, task: NewTask) -> Result<Task> {
        self.with(|c| insert_task(c, target, target_name, &task))
    }

    fn task(&self, id: i64) -> Result<Task> {
        self.with(|c| get_task(c, id))
    }

    fn set_task_queued_by(&self, id: i64, by: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE tasks SET queued_by = ?2 WHERE id = ?1",
                params![id, by],
            )?;
            Ok(())
        })
    }

    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.with(|c| {
            let mut sql = format!("SELECT {TASK_COLS} FROM tasks WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(s) = filter.status {
                args.push(s.as_str().to_string().into());
                sql += &format!(" AND status = ?{}", args.len());
            }
            if let Some(client) = filter.client_id {
                args.push(client.into());
                sql += &format!(" AND client_id = ?{}", args.len());
            }
            if let Some(t) = filter.target {
                args.push(t.type_str().to_string().into());
                sql += &format!(" AND target_type = ?{}", args.len());
                args.push(t.id().into());
                sql += &format!(" AND target_id = ?{}", args.len());
            }
            sql += " ORDER BY id DESC";
            if let Some(limit) = filter.limit {
                sql += &format!(" LIMIT {limit}");
            }
            query_tasks(c, &sql, rusqlite::params_from_iter(args))
        })
    }

    fn active_tasks(&self, target: Target) -> Result<Vec<Task>> {
        self.with(|c| {
            query_tasks(
                c,
                &format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE target_type = ?1 AND target_id = ?2
                     AND status IN ('queued', 'processing') ORDER BY id"
                ),
                params![target.type_str(), target.id()],
            )
        })
    }

    fn claim_next(&self, owner: &str) -> Result<Option<RunningTask>> {
        self.with(|c| queue::claim_next(c, owner))
    }

    fn finish_task(
        &self,
        id: i64,
        claim: &Claim,
        status: TaskStatus,
        error: Option<&str>,
        effect: &TaskEffect,
    ) -> Result<bool> {
        self.with(|c| queue::finish_task(c, id, claim, status, error, effect))
    }

    fn adopt_task(&self, id: i64, from: &Claim, owner: &str) -> Result<Option<Claim>> {
        self.with(|c| queue::adopt_task(c, id, from, owner))
    }

    fn cancel_task(&self, id: i64) -> Result<Task> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE tasks SET status = 'cancelled', finished_at = ?2 WHERE id = ?1 AND status = 'queued'",
                params![id, now_ms()],
            )?;
            let task = get_task(c, id)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "task {id} is {}: only a queued task can be cancelled",
                    task.status.as_str()
                )));
            }
            Ok(task)
        })
    }

    fn retry_task(&self, id: i64) -> Result<Task> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE tasks SET status = 'queued', started_at = NULL, finished_at = NULL,
                 owner = NULL, error = NULL WHERE id = ?1 AND status IN ('failed', 'cancelled')",
                [id],
            )?;
            let task = get_task(c, id)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "task {id} is {}: only a failed or cancelled task can be retried",
                    task.status.as_str()
                )));
            }
            Ok(task)
        })
    }

    fn running_tasks(&self) -> Result<Vec<RunningTask>> {
        self.with(queue::running_tasks)
    }

    fn append_log(&self, task_id: i64, line: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO task_log (task_id, at, line) VALUES (?1, ?2, ?3)",
                params![task_id, now_ms(), line],
            )?;
            Ok(())
        })
    }

    fn log(&self, task_id: i64, after_id: i64) -> Result<Vec<LogLine>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, at, line FROM task_log WHERE task_id = ?1 AND id > ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![task_id, after_id], |r| {
                Ok(LogLine {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    line: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn journal_append(&self, e: &JournalEntry) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO journal (task_id, seq, step, undo, saved) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.task_id, e.seq, e.step, e.undo, e.saved],
            )?;
            Ok(())
        })
    }

    fn journal(&self, task_id: i64) -> Result<Vec<JournalEntry>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT task_id, seq, step, undo, saved FROM journal WHERE task_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([task_id], |r| {
                Ok(JournalEntry {
                    task_id: r.get(0)?,
                    seq: r.get(1)?,
                    step: r.get(2)?,
                    undo: r.get(3)?,
                    saved: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn journal_clear(&self, task_id: i64) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM journal WHERE task_id = ?1", [task_id])?;
            Ok(())
        })
    }

    fn unpurged_tasks(&self) -> Result<Vec<(i64, String)>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT t.id, COALESCE(t.owner, '') FROM tasks t \
                 JOIN journal j ON j.task_id = t.id WHERE t.status = 'success' ORDER BY t.id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

#[cfg(test)]
mod tests;
