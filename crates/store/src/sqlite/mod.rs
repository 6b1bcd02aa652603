mod accounts;
mod backup_targets;
mod backups;
mod certificates;
mod claim_pauses;
mod effects;
mod metrics;
mod migrations;
mod platforms;
mod queue;
mod rows;
mod servers;
mod services;
mod sites;

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
    AcmeAccount, Backup, CertSource, Claim, CronRun, JournalEntry, LogLine, NewBackup, NewSite,
    NewTask, PendingLogLine, Result, RunningTask, SiteCertificate, SiteCron, SiteSchedule, Store,
    StoreError, TaskEffect, TaskFilter, now_ms,
};

pub use migrations::MIGRATIONS;

/// The embedded default: one SQLite file in WAL mode. Several processes (the CLI, one or more
/// dispatchers) share it; writes that must not interleave run in `BEGIN IMMEDIATE`.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Taken only while `conn` is held.
    held_locks: Mutex<queue::HeldLocks>,
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
        Self::setup(conn).map_err(|e| match e {
            StoreError::NewerSchema { found, known, .. } => StoreError::NewerSchema {
                dir: path.parent().unwrap_or(path).display().to_string(),
                found,
                known,
            },
            e => e,
        })
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
            held_locks: Mutex::default(),
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
    if current > MIGRATIONS.len() as i64 {
        // `open` names the state's directory; a database in memory has none.
        return Err(StoreError::NewerSchema {
            dir: ":memory:".into(),
            found: current,
            known: MIGRATIONS.len() as i64,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

impl Store for SqliteStore {
    fn acme_account(&self) -> Result<Option<AcmeAccount>> {
        SqliteStore::acme_account(self)
    }

    fn site_certificate(&self, site_id: i64) -> Result<Option<SiteCertificate>> {
        SqliteStore::site_certificate(self, site_id)
    }

    fn renewable_certificates(&self, now: i64) -> Result<Vec<(SiteCertificate, String)>> {
        SqliteStore::renewable_certificates(self, now)
    }

    fn take_due_renewal(
        &self,
        site_id: i64,
        site_name: &str,
        attempts: u32,
        now: i64,
        task: NewTask,
    ) -> Result<Option<Task>> {
        SqliteStore::take_due_renewal(self, site_id, site_name, attempts, now, task)
    }

    fn tasks_queued_since(&self, kind: TaskKind, since_ms: i64) -> Result<usize> {
        self.with(|c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM tasks WHERE kind = ?1 AND created_at > ?2",
                params![kind.as_str(), since_ms],
                |r| r.get(0),
            )?;
            Ok(n as usize)
        })
    }

    fn acme_orders_since(&self, since_ms: i64) -> Result<usize> {
        self.with(|c| {
            let n: i64 = c.query_row(
                "SELECT (SELECT COUNT(*) FROM tasks WHERE kind = ?1 AND created_at > ?2) \
                 + (SELECT COALESCE(SUM(count), 0) FROM acme_orders WHERE placed_at > ?2)",
                params![TaskKind::SiteHttps.as_str(), since_ms],
                |r| r.get(0),
            )?;
            Ok(n as usize)
        })
    }

    fn record_certificate_attempt(
        &self,
        site_id: i64,
        at: i64,
        failure: Option<&str>,
    ) -> Result<()> {
        SqliteStore::record_certificate_attempt(self, site_id, at, failure)
    }

    fn site_backup_policy(&self, site_id: i64) -> Result<(Option<String>, Option<String>)> {
        SqliteStore::site_backup_policy(self, site_id)
    }

    fn set_site_backup_policy(
        &self,
        site_id: i64,
        schedule: Option<&str>,
        retention: Option<&str>,
    ) -> Result<()> {
        SqliteStore::set_site_backup_policy(self, site_id, schedule, retention)
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
        SqliteStore::backup_schedules(self)
    }

    fn set_next_backup(&self, site_id: i64, at: Option<i64>) -> Result<()> {
        SqliteStore::set_next_backup(self, site_id, at)
    }

    fn take_due_backup(
        &self,
        site_id: i64,
        site_name: &str,
        due: i64,
        next: Option<i64>,
        backup: Option<NewTask>,
    ) -> Result<Option<Task>> {
        SqliteStore::take_due_backup(self, site_id, site_name, due, next, backup)
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
        self.with(|c| {
            let mut held = self.held_locks.lock().unwrap_or_else(|p| p.into_inner());
            queue::take_due_cron(c, &mut held, site_id, due, next, owner)
        })
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

    fn metrics(&self) -> Result<crate::StateMetrics> {
        let sites = crate::Accounts::site_counts(self, None)?;
        self.with(|c| metrics::read(c, sites))
    }

    fn set_claim_pause(&self, owner: &str, pauses: &[crate::ClaimPause]) -> Result<()> {
        self.with(|c| claim_pauses::set(c, owner, pauses))
    }

    fn claim_pauses(&self) -> Result<Vec<crate::ClaimPause>> {
        self.with(claim_pauses::read)
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
        SqliteStore::backups(self, site_name)
    }

    fn site_backups(&self, site_id: i64) -> Result<Vec<Backup>> {
        SqliteStore::site_backups(self, site_id)
    }

    fn backup(&self, id: i64) -> Result<Backup> {
        SqliteStore::backup(self, id)
    }

    fn add_backup_target(
        &self,
        name: &Name,
        target: &model::BackupTarget,
        host_key: &model::HostKey,
    ) -> Result<crate::BackupTargetRecord> {
        SqliteStore::add_backup_target(self, name, target, host_key)
    }

    fn backup_targets(&self) -> Result<Vec<crate::BackupTargetRecord>> {
        SqliteStore::backup_targets(self)
    }

    fn backup_target(&self, name: &str) -> Result<crate::BackupTargetRecord> {
        SqliteStore::backup_target(self, name)
    }

    fn backup_target_by_id(&self, id: i64) -> Result<crate::BackupTargetRecord> {
        SqliteStore::backup_target_by_id(self, id)
    }

    fn remove_backup_target(&self, name: &str, default_key: &str) -> Result<()> {
        SqliteStore::remove_backup_target(self, name, default_key)
    }

    fn site_backup_copies(&self, site_id: i64) -> Result<Vec<crate::BackupCopy>> {
        SqliteStore::site_backup_copies(self, site_id)
    }

    fn backup_copies_by_site_name(&self, site_name: &str) -> Result<Vec<crate::BackupCopy>> {
        SqliteStore::backup_copies_by_site_name(self, site_name)
    }

    fn site_backup_copy_to(&self, site_id: i64) -> Result<Option<String>> {
        SqliteStore::site_backup_copy_to(self, site_id)
    }

    fn set_site_backup_copy_to(&self, site_id: i64, copy_to: Option<&str>) -> Result<()> {
        SqliteStore::set_site_backup_copy_to(self, site_id, copy_to)
    }

    fn insert_server(
        &self,
        server: &Server,
        then: Option<NewTask>,
    ) -> Result<(Server, Option<Task>)> {
        SqliteStore::insert_server(self, server, then)
    }

    fn update_server_services(
        &self,
        server: &Server,
        then: Option<NewTask>,
    ) -> Result<(Server, Option<Task>)> {
        SqliteStore::update_server_services(self, server, then)
    }

    fn server(&self, id: i64) -> Result<Server> {
        SqliteStore::server(self, id)
    }

    fn server_by_name(&self, name: &str) -> Result<Server> {
        SqliteStore::server_by_name(self, name)
    }

    fn servers(&self) -> Result<Vec<Server>> {
        SqliteStore::servers(self)
    }

    fn record_service_event(&self, event: &model::ServiceEvent) -> Result<()> {
        SqliteStore::record_service_event(self, event)
    }

    fn service_events(&self, server_id: i64, limit: u32) -> Result<Vec<model::ServiceEvent>> {
        SqliteStore::service_events(self, server_id, limit)
    }

    fn service_states(&self) -> Result<Vec<(i64, String, bool)>> {
        SqliteStore::service_states(self)
    }

    fn note_service_up(&self, server_id: i64, service: &str) -> Result<()> {
        SqliteStore::note_service_up(self, server_id, service)
    }

    fn insert_platform(
        &self,
        platform: &Platform,
        then: Option<NewTask>,
    ) -> Result<(Platform, Option<Task>)> {
        SqliteStore::insert_platform(self, platform, then)
    }

    fn platform(&self, id: i64) -> Result<Platform> {
        SqliteStore::platform(self, id)
    }

    fn platform_by_name(&self, name: &str) -> Result<Platform> {
        SqliteStore::platform_by_name(self, name)
    }

    fn platforms(&self) -> Result<Vec<Platform>> {
        SqliteStore::platforms(self)
    }

    fn set_platform_upload_limit(
        &self,
        id: i64,
        limit: Option<model::UploadLimit>,
        then: Option<NewTask>,
    ) -> Result<Option<Task>> {
        SqliteStore::set_platform_upload_limit(self, id, limit, then)
    }

    fn set_platform_upstream(
        &self,
        id: i64,
        upstream: std::net::SocketAddr,
        then: Option<NewTask>,
    ) -> Result<Option<Task>> {
        SqliteStore::set_platform_upstream(self, id, upstream, then)
    }

    fn set_platform_locked(&self, id: i64, locked: bool) -> Result<()> {
        SqliteStore::set_platform_locked(self, id, locked)
    }

    fn delete_platform(&self, id: i64) -> Result<()> {
        SqliteStore::delete_platform(self, id)
    }

    fn insert_site(&self, site: &NewSite, then: Option<NewTask>) -> Result<(Site, Option<Task>)> {
        SqliteStore::insert_site(self, site, then)
    }

    fn site(&self, id: i64) -> Result<Site> {
        SqliteStore::site(self, id)
    }

    fn site_by_host(&self, host: &str) -> Result<Site> {
        SqliteStore::site_by_host(self, host)
    }

    fn sites(&self, platform_id: Option<i64>) -> Result<Vec<Site>> {
        SqliteStore::sites(self, platform_id)
    }

    fn update_site_names(
        &self,
        id: i64,
        aliases: &[Hostname],
        redirect_aliases: bool,
        upload_limit: Option<model::UploadLimit>,
        https: model::SiteHttps,
        then: Option<NewTask>,
    ) -> Result<(Site, Option<Task>)> {
        SqliteStore::update_site_names(
            self,
            id,
            aliases,
            redirect_aliases,
            upload_limit,
            https,
            then,
        )
    }

    fn set_site_status(&self, id: i64, status: SiteStatus) -> Result<()> {
        SqliteStore::set_site_status(self, id, status)
    }

    fn delete_site(&self, id: i64) -> Result<()> {
        SqliteStore::delete_site(self, id)
    }

    fn database_name_taken(&self, server_id: i64, engine: DbEngine, name: &str) -> Result<bool> {
        SqliteStore::database_name_taken(self, server_id, engine, name)
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

    fn queue_place(&self, id: i64) -> Result<crate::QueuePlace> {
        self.with(|c| queue::queue_place(c, id))
    }

    fn claim_next(&self, owner: &str) -> Result<Option<RunningTask>> {
        self.with(|c| {
            let mut held = self.held_locks.lock().unwrap_or_else(|p| p.into_inner());
            queue::claim_next(c, &mut held, owner)
        })
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

    fn task_claim(&self, id: i64) -> Result<Option<Claim>> {
        self.with(|c| Ok(queue::claim_of(c, id)?.map(|(owner, seq)| Claim { owner, seq })))
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

    fn append_logs(&self, lines: &[PendingLogLine]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO task_log (task_id, at, line) VALUES (?1, ?2, ?3)",
                )?;
                for l in lines {
                    insert.execute(params![l.task_id, l.at, l.line])?;
                }
            }
            tx.commit()?;
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
                "INSERT INTO journal (task_id, seq, step, undo, saved, machine) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![e.task_id, e.seq, e.step, e.undo, e.saved, e.machine],
            )?;
            Ok(())
        })
    }

    fn journal_append_all(&self, entries: &[JournalEntry]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO journal (task_id, seq, step, undo, saved, machine) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for e in entries {
                    insert.execute(params![
                        e.task_id, e.seq, e.step, e.undo, e.saved, e.machine
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn journal(&self, task_id: i64) -> Result<Vec<JournalEntry>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT task_id, seq, step, undo, saved, machine FROM journal WHERE task_id = ?1 \
                 ORDER BY seq",
            )?;
            let rows = stmt.query_map([task_id], |r| {
                Ok(JournalEntry {
                    task_id: r.get(0)?,
                    seq: r.get(1)?,
                    step: r.get(2)?,
                    undo: r.get(3)?,
                    saved: r.get(4)?,
                    machine: r.get(5)?,
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
mod backup_targets_tests;
#[cfg(test)]
mod tests;
