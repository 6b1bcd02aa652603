//! Database administration through the engines' own clients (`mariadb`, `psql`,
//! `mariadb-dump`, `pg_dump`, `pg_restore`), as Aegir does: no driver to build, and the same
//! tools an operator would use by hand. Passwords go through the environment, never argv.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::{HostError, Result};

mod dump;
mod freeze;
mod grants;
mod ids;
mod parallel_load;
mod rename;

use grants::grant_on;
#[cfg(test)]
mod isolation_tests;

#[cfg(test)]
pub(crate) use dump::is_zstd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Mysql,
    Postgresql,
}

/// How to reach one database server as its administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbCtl {
    pub kind: DbKind,
    pub socket: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub admin_user: String,
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the admin password (read when needed, never stored).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Where sites' users connect from, when the web server is another machine than the
    /// database server (its address as the database server sees it); None: this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_host: Option<String>,
}

/// Names fjord puts into SQL: `[a-z][a-z0-9_]*`, so that they need no escaping on any engine.
pub(crate) fn check_identifier(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(HostError::Refused(format!(
            "unsafe database identifier {name:?}"
        )))
    }
}

/// Generated passwords are hex; anything else is refused rather than escaped.
fn check_password(password: &str) -> Result<()> {
    if !password.is_empty() && password.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(HostError::Refused(
            "unsafe database password (fjord generates alphanumeric ones)".into(),
        ))
    }
}

/// Table names come from the server; fjord quotes them with backticks and refuses the few
/// it would rather not quote (control characters, backslashes: the batch output escapes
/// them).
pub(crate) fn quotable_table(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_control() || c == '\\')
}

/// One RENAME TABLE statement moving each listed table from one database to another
/// (a no-op statement when there is none to move).
fn rename_tables(moves: &[(&str, &str, &[String])]) -> String {
    let quoted = |t: &str| t.replace('`', "``");
    let pairs: Vec<String> = moves
        .iter()
        .flat_map(|(from, to, tables)| {
            tables.iter().map(move |t| {
                let t = quoted(t);
                format!("`{from}`.`{t}` TO `{to}`.`{t}`")
            })
        })
        .collect();
    if pairs.is_empty() {
        return "DO 0".to_string();
    }
    format!("RENAME TABLE {}", pairs.join(", "))
}

static SESSION_TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the database sessions of this process (PostgreSQL's `application_name`), so that
/// [`DbCtl::end_sessions_tagged`] can find them once the process is gone.
pub fn set_session_tag(tag: &str) {
    let _ = SESSION_TAG.set(tag.to_string());
}

impl DbCtl {
    /// Ends the server-side work a dead dispatcher tagged `tag` left behind (a statement goes
    /// on after its client is killed) and waits until it is gone, so that a rollback does not
    /// race it. PostgreSQL: its sessions, by `application_name`; MariaDB: its statements
    /// still running, by the comment each carries.
    pub fn end_sessions_tagged(&self, tag: &str) -> Result<()> {
        if !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = match self.kind {
                DbKind::Postgresql => self.admin(&[format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = '{tag}'"
                )])?,
                DbKind::Mysql => {
                    let ids = self.admin(&[format!(
                        "SELECT id FROM information_schema.processlist \
                         WHERE info LIKE '/* {tag} */%' AND id <> CONNECTION_ID()"
                    )])?;
                    let ids: Vec<&str> = ids.lines().map(str::trim).collect();
                    for id in &ids {
                        if id.chars().all(|c| c.is_ascii_digit()) {
                            // Ended meanwhile: fine.
                            let _ = self.admin(&[format!("KILL {id}")]);
                        }
                    }
                    ids.len().to_string()
                }
            };
            if left.trim() == "0" {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(HostError::Refused(format!(
                    "sessions of the dead dispatcher {tag} did not end within a minute"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub(crate) fn admin_password(&self) -> Result<Option<String>> {
        if let Some(var) = &self.password_env {
            return std::env::var(var).map(Some).map_err(|_| {
                HostError::Refused(format!(
                    "the environment variable {var} (the database admin password) is not set"
                ))
            });
        }
        self.password_file
            .as_ref()
            .map(|p| {
                std::fs::read_to_string(p)
                    .map(|s| s.trim().to_string())
                    .map_err(|e| HostError::io(p, e))
            })
            .transpose()
    }

    /// The clients fjord administers this engine's databases with (Debian's names).
    pub fn clients(&self) -> &'static [&'static str] {
        match self.kind {
            DbKind::Mysql => &["mariadb", "mariadb-dump"],
            DbKind::Postgresql => &["psql", "pg_dump", "pg_restore"],
        }
    }

    pub(crate) fn mysql_client() -> &'static str {
        if Path::new("/usr/bin/mariadb").exists() {
            "mariadb"
        } else {
            "mysql"
        }
    }

    pub(crate) fn mysql_dump() -> &'static str {
        if Path::new("/usr/bin/mariadb-dump").exists() {
            "mariadb-dump"
        } else {
            "mysqldump"
        }
    }

    /// A command connecting as `user` (with `password`), to `database` if given.
    pub(crate) fn command(
        &self,
        program: &str,
        user: &str,
        password: Option<&str>,
        database: Option<&str>,
    ) -> Command {
        self.connecting(
            crate::process::child_command(program),
            program,
            user,
            password,
            database,
        )
    }

    /// `cmd` (a database client) with the arguments and environment that connect it.
    fn connecting(
        &self,
        mut cmd: Command,
        program: &str,
        user: &str,
        password: Option<&str>,
        database: Option<&str>,
    ) -> Command {
        cmd.stdin(Stdio::null());
        match self.kind {
            DbKind::Mysql => {
                match (&self.socket, &self.host) {
                    (Some(socket), _) => cmd
                        .arg("--protocol=SOCKET")
                        .arg(format!("--socket={}", socket.display())),
                    (None, Some(host)) => cmd.arg("--protocol=TCP").arg(format!("--host={host}")),
                    (None, None) => &mut cmd,
                };
                if let Some(port) = self.port {
                    cmd.arg(format!("--port={port}"));
                }
                cmd.arg(format!("--user={user}"));
                if let Some(pw) = password {
                    cmd.env("MYSQL_PWD", pw);
                }
                if let Some(db) = database {
                    cmd.arg(format!("--database={db}"));
                }
            }
            DbKind::Postgresql => {
                let host = self
                    .socket
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .or_else(|| self.host.clone());
                if let Some(host) = host {
                    cmd.arg("-h").arg(host);
                }
                if let Some(port) = self.port {
                    cmd.arg("-p").arg(port.to_string());
                }
                cmd.arg("-U").arg(user);
                if let Some(pw) = password {
                    cmd.env("PGPASSWORD", pw);
                }
                cmd.env("PGCONNECT_TIMEOUT", "10");
                // Sessions are named after their dispatcher: the next one ends what a dead
                // one left running on the server before it rolls back.
                if let Some(tag) = SESSION_TAG.get() {
                    cmd.env("PGAPPNAME", tag);
                }
                if program == "psql" {
                    cmd.arg("-d").arg(database.unwrap_or("postgres"));
                }
            }
        }
        cmd
    }

    fn sql_as(
        &self,
        user: &str,
        password: Option<&str>,
        database: Option<&str>,
        statements: &[String],
    ) -> Result<String> {
        let (cmd, script) = match self.kind {
            DbKind::Mysql => {
                let mut c = self.command(Self::mysql_client(), user, password, database);
                // Each statement carries its dispatcher's name in a comment (kept by
                // --comments), which the server shows while it runs: see
                // `end_sessions_tagged`.
                let tagged: Vec<String> = match SESSION_TAG.get() {
                    Some(tag) => statements
                        .iter()
                        .map(|s| format!("/* {tag} */ {s}"))
                        .collect(),
                    None => statements.to_vec(),
                };
                c.args(["--batch", "--skip-column-names", "--comments"]);
                (c, tagged.join(";\n") + ";\n")
            }
            DbKind::Postgresql => {
                let mut c = self.command("psql", user, password, database);
                c.args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]);
                // psql runs a script from its input statement by statement, each in its own
                // transaction (CREATE DATABASE needs that).
                (c, statements.join(";\n") + ";\n")
            }
        };
        let stdout = self.stdout_fed(cmd, script.as_bytes())?;
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }

    /// Runs the engine's client with `script` on its standard input: SQL, and the secrets in
    /// it, never stand in a process's arguments, where any local user could read them.
    pub(crate) fn stdout_fed(&self, cmd: Command, script: &[u8]) -> Result<Vec<u8>> {
        self.stdout_fed_bounded(cmd, script, u64::MAX)
    }

    /// [`DbCtl::stdout_fed`], refusing an answer longer than `most` bytes (the client is
    /// killed rather than read to its end).
    pub(crate) fn stdout_fed_bounded(
        &self,
        mut cmd: Command,
        script: &[u8],
        most: u64,
    ) -> Result<Vec<u8>> {
        let failed = |e| HostError::io(Path::new(self.program()), e);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(failed)?;
        let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(HostError::Refused(
                "the database client has no pipes".into(),
            ));
        };
        let script = script.to_vec();
        // Fed and drained on their own threads, so that a client writing much before it has
        // read all its input cannot stall both sides.
        let feeder = std::thread::spawn(move || stdin.write_all(&script));
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            text
        });
        let mut out = Vec::new();
        let read = stdout.take(most.saturating_add(1)).read_to_end(&mut out);
        let too_long = out.len() as u64 > most;
        if too_long {
            let _ = child.kill();
        }
        let status = child.wait().map_err(failed)?;
        let fed = feeder.join().unwrap_or(Ok(()));
        let stderr = errors.join().unwrap_or_default();
        if too_long {
            return Err(HostError::Refused(format!(
                "{} answered more than {most} bytes; refused",
                self.program()
            )));
        }
        if !status.success() {
            return Err(HostError::Command {
                program: self.program().to_string(),
                status: status.to_string(),
                output: String::from_utf8_lossy(&stderr).trim().to_string(),
            });
        }
        read.map_err(failed)?;
        fed.map_err(failed)?;
        Ok(out)
    }

    fn program(&self) -> &'static str {
        match self.kind {
            DbKind::Mysql => Self::mysql_client(),
            DbKind::Postgresql => "psql",
        }
    }

    pub(crate) fn admin(&self, statements: &[String]) -> Result<String> {
        let password = self.admin_password()?;
        self.sql_as(&self.admin_user, password.as_deref(), None, statements)
    }

    /// Where a site's user may connect from: the web server's address when it is another
    /// machine, else this machine (through the socket, or over loopback).
    fn client_host(&self) -> &str {
        match &self.client_host {
            Some(host) => host,
            None if self.socket.is_some() || self.host.is_none() => "localhost",
            None => "127.0.0.1",
        }
    }

    pub fn database_exists(&self, name: &str) -> Result<bool> {
        check_identifier(name)?;
        let sql = match self.kind {
            DbKind::Mysql => {
                format!("SELECT 1 FROM information_schema.schemata WHERE schema_name = '{name}'")
            }
            DbKind::Postgresql => format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
        };
        Ok(self.admin(&[sql])?.trim() == "1")
    }

    pub fn user_exists(&self, user: &str) -> Result<bool> {
        check_identifier(user)?;
        let sql = match self.kind {
            DbKind::Mysql => format!("SELECT 1 FROM mysql.user WHERE user = '{user}' LIMIT 1"),
            DbKind::Postgresql => format!("SELECT 1 FROM pg_roles WHERE rolname = '{user}'"),
        };
        Ok(self.admin(&[sql])?.trim() == "1")
    }

    /// Every database and user on the server (for orphan checks).
    pub fn list(&self) -> Result<(Vec<String>, Vec<String>)> {
        let (dbs, users) = match self.kind {
            DbKind::Mysql => (
                "SELECT schema_name FROM information_schema.schemata",
                "SELECT DISTINCT user FROM mysql.user",
            ),
            DbKind::Postgresql => (
                "SELECT datname FROM pg_database",
                "SELECT rolname FROM pg_roles",
            ),
        };
        let lines = |s: String| s.lines().map(str::to_string).collect();
        Ok((
            lines(self.admin(&[dbs.to_string()])?),
            lines(self.admin(&[users.to_string()])?),
        ))
    }

    pub fn create(&self, name: &str, user: &str, password: &str) -> Result<()> {
        check_identifier(name)?;
        check_identifier(user)?;
        check_password(password)?;
        let host = self.client_host();
        let statements = match self.kind {
            DbKind::Mysql => vec![
                format!(
                    "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ),
                format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"),
                format!(
                    "GRANT ALL PRIVILEGES ON {} TO '{user}'@'{host}'",
                    grant_on(name)
                ),
            ],
            DbKind::Postgresql => vec![
                format!("CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'"),
                format!("CREATE DATABASE \"{name}\" OWNER \"{user}\""),
                format!("REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC"),
            ],
        };
        self.admin(&statements).map(|_| ())
    }

    /// Drops the database and the user; nothing if they are already gone.
    pub fn drop(&self, name: &str, user: &str) -> Result<()> {
        check_identifier(name)?;
        check_identifier(user)?;
        let statements = match self.kind {
            DbKind::Mysql => vec![
                format!("DROP DATABASE IF EXISTS `{name}`"),
                format!("DROP USER IF EXISTS '{user}'@'{}'", self.client_host()),
            ],
            DbKind::Postgresql => vec![
                format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                format!("DROP ROLE IF EXISTS \"{user}\""),
            ],
        };
        self.admin(&statements).map(|_| ())
    }

    /// Whether the site's own credentials open its database.
    pub fn can_login(&self, name: &str, user: &str, password: &str) -> bool {
        self.sql_as(user, Some(password), Some(name), &["SELECT 1".to_string()])
            .is_ok_and(|o| o.trim() == "1")
    }

    /// Sets the user's password and grants to what fjord's state says.
    pub fn repair(&self, name: &str, user: &str, password: &str) -> Result<()> {
        check_identifier(name)?;
        check_identifier(user)?;
        check_password(password)?;
        let host = self.client_host();
        let statements = match self.kind {
            DbKind::Mysql => vec![
                format!("CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{password}'"),
                format!("ALTER USER '{user}'@'{host}' IDENTIFIED BY '{password}'"),
            ],
            DbKind::Postgresql => vec![
                format!("ALTER ROLE \"{user}\" LOGIN PASSWORD '{password}'"),
                format!("ALTER DATABASE \"{name}\" OWNER TO \"{user}\""),
                format!("REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC"),
            ],
        };
        self.admin(&statements)?;
        if self.kind == DbKind::Mysql {
            // After the user exists: its grants are then set to exactly its database.
            let mut statements = self.revoke_database_grants(user)?;
            statements.push(format!(
                "GRANT ALL PRIVILEGES ON {} TO '{user}'@'{host}'",
                grant_on(name)
            ));
            self.admin(&statements)?;
        }
        Ok(())
    }

    /// Creates an empty database with no user (a staging or holding place).
    pub fn create_database_only(&self, name: &str) -> Result<()> {
        check_identifier(name)?;
        self.admin(&[match self.kind {
            DbKind::Mysql => {
                format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            }
            DbKind::Postgresql => format!("CREATE DATABASE \"{name}\""),
        }])
        .map(|_| ())
    }

    /// Drops a database, leaving users alone; nothing if it is gone.
    pub fn drop_database_only(&self, name: &str) -> Result<()> {
        check_identifier(name)?;
        self.admin(&[match self.kind {
            DbKind::Mysql => format!("DROP DATABASE IF EXISTS `{name}`"),
            DbKind::Postgresql => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        }])
        .map(|_| ())
    }

    /// Drops a database fjord set aside (a staging or holding place), its MariaDB tables
    /// first, several connections side by side: dropping is bound by the server's syncs,
    /// and DROP DATABASE removes its tables one after another. Nothing if it is gone.
    pub fn drop_set_aside(&self, name: &str) -> Result<()> {
        check_identifier(name)?;
        if self.kind == DbKind::Mysql {
            let tables: Vec<String> = self
                .admin(&[format!(
                    "SELECT table_name FROM information_schema.tables \
                     WHERE table_schema = '{name}' AND table_type = 'BASE TABLE'"
                )])?
                .lines()
                .filter(|t| quotable_table(t))
                .map(str::to_string)
                .collect();
            let share = tables.len().div_ceil(parallel_load::CONNECTIONS).max(1);
            std::thread::scope(|scope| {
                for part in tables.chunks(share) {
                    scope.spawn(move || {
                        let mut statements = vec!["SET SESSION foreign_key_checks = 0".to_string()];
                        statements.extend(
                            part.iter()
                                .map(|t| format!("DROP TABLE IF EXISTS `{name}`.`{t}`")),
                        );
                        // What is left is dropped with the database below.
                        let _ = self.admin(&statements);
                    });
                }
            });
        }
        self.drop_database_only(name)
    }

    /// The tables of a MariaDB database when a table swap can move all of its content: only
    /// base tables, each with a name fjord can quote, and no views, triggers, routines or
    /// events (which RENAME TABLE would leave behind or refuse to move). `None` otherwise,
    /// and on PostgreSQL.
    pub fn swappable_tables(&self, name: &str) -> Result<Option<Vec<String>>> {
        check_identifier(name)?;
        if self.kind != DbKind::Mysql {
            return Ok(None);
        }
        let sql = format!(
            "SELECT CONCAT('T', table_name) FROM information_schema.tables \
               WHERE table_schema = '{name}' AND table_type = 'BASE TABLE' \
             UNION ALL SELECT 'X' FROM information_schema.tables \
               WHERE table_schema = '{name}' AND table_type <> 'BASE TABLE' \
             UNION ALL SELECT 'X' FROM information_schema.triggers WHERE trigger_schema = '{name}' \
             UNION ALL SELECT 'X' FROM information_schema.routines WHERE routine_schema = '{name}' \
             UNION ALL SELECT 'X' FROM information_schema.events WHERE event_schema = '{name}'"
        );
        let mut tables = Vec::new();
        for line in self.admin(&[sql])?.lines() {
            match line.strip_prefix('T') {
                Some(table) if quotable_table(table) => tables.push(table.to_string()),
                _ => return Ok(None),
            }
        }
        Ok(Some(tables))
    }

    /// Moves every table of `live` into a new database `hold` and every table of `stage`
    /// into `live`, in one atomic RENAME TABLE: the site sees either all old or all new
    /// tables.
    pub fn swap_tables(&self, live: &str, hold: &str, stage: &str) -> Result<()> {
        let unswappable = |db: &str| {
            HostError::Refused(format!(
                "database {db} holds views, triggers, routines or events: its tables cannot be swapped"
            ))
        };
        let old = self
            .swappable_tables(live)?
            .ok_or_else(|| unswappable(live))?;
        let new = self
            .swappable_tables(stage)?
            .ok_or_else(|| unswappable(stage))?;
        self.create_database_only(hold)?;
        self.admin(&[
            // A long query on the live tables must not stall the site behind the rename.
            "SET SESSION lock_wait_timeout = 30".to_string(),
            rename_tables(&[(live, hold, &old), (stage, live, &new)]),
        ])
        .map(|_| ())
    }

    /// Undoes [`DbCtl::swap_tables`] if it happened: the restored tables go back to `stage`
    /// and the old ones from `hold` to `live`, again in one statement; then the empty `hold`
    /// is dropped. `stage` was loaded with at least one table, so an empty `stage` beside an
    /// existing `hold` means the swap was made.
    pub fn swap_tables_back(&self, live: &str, hold: &str, stage: &str) -> Result<()> {
        if !self.database_exists(hold)? {
            return Ok(());
        }
        let tables = |db: &str| {
            self.swappable_tables(db)?.ok_or_else(|| {
                HostError::Refused(format!(
                    "database {db} holds views, triggers, routines or events; {hold} holds the site's old tables"
                ))
            })
        };
        if self.database_exists(stage)? && tables(stage)?.is_empty() {
            let (restored, old) = (tables(live)?, tables(hold)?);
            self.admin(&[
                "SET SESSION lock_wait_timeout = 30".to_string(),
                rename_tables(&[(live, stage, &restored), (hold, live, &old)]),
            ])?;
        }
        if !tables(hold)?.is_empty() {
            return Err(HostError::Refused(format!(
                "database {hold} still holds the site's old tables; left for inspection"
            )));
        }
        self.drop_database_only(hold)
    }

    /// Checks that the administrator can create and drop a database.
    pub fn check_admin(&self) -> Result<()> {
        let probe = format!("fjord_probe_{}", crate::random_hex(4));
        let created = self.admin(&[match self.kind {
            DbKind::Mysql => format!("CREATE DATABASE `{probe}`"),
            DbKind::Postgresql => format!("CREATE DATABASE \"{probe}\""),
        }]);
        let dropped = self.admin(&[match self.kind {
            DbKind::Mysql => format!("DROP DATABASE IF EXISTS `{probe}`"),
            DbKind::Postgresql => format!("DROP DATABASE IF EXISTS \"{probe}\""),
        }]);
        created.and(dropped).map(|_| ())
    }
}

/// Against the machine's own MariaDB and PostgreSQL, as the project's tests are.
#[cfg(test)]
mod session_tests {
    use super::*;

    fn server(kind: DbKind) -> DbCtl {
        let (socket, host, port, admin_user) = match kind {
            DbKind::Mysql => (
                Some(PathBuf::from("/run/mysqld/mysqld.sock")),
                None,
                None,
                "root",
            ),
            DbKind::Postgresql => (None, Some("127.0.0.1".to_string()), Some(5432), "postgres"),
        };
        DbCtl {
            kind,
            socket,
            host,
            port,
            admin_user: admin_user.into(),
            password_file: None,
            password_env: None,
            client_host: None,
        }
    }

    /// A statement a killed dispatcher left running on the server is ended, and waited for,
    /// before its task is rolled back.
    #[test]
    fn a_dead_dispatchers_statements_are_ended_on_both_servers() {
        for kind in [DbKind::Mysql, DbKind::Postgresql] {
            let ctl = server(kind);
            let tag = format!("fjord-unit-{}-{kind:?}", std::process::id()).to_lowercase();
            let mut client = match kind {
                DbKind::Mysql => {
                    let mut c = ctl.command("mariadb", "root", None, None);
                    c.args(["--comments", "-e", &format!("/* {tag} */ SELECT SLEEP(60)")]);
                    c
                }
                DbKind::Postgresql => {
                    let mut c = ctl.command("psql", "postgres", None, None);
                    c.env("PGAPPNAME", &tag).args(["-c", "SELECT pg_sleep(60)"]);
                    c
                }
            };
            let mut client = client
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(500));
            let started = std::time::Instant::now();
            ctl.end_sessions_tagged(&tag).unwrap();
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{kind:?}"
            );
            // The client sees its statement end long before its 60 s.
            let status = client.wait().unwrap();
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{kind:?} {status}"
            );
        }
    }
}
