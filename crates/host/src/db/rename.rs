//! A PostgreSQL database replaced by a restored copy in one switch: the copy is loaded
//! beside the live database while the site reads the old one, then the two are renamed.
//!
//! PostgreSQL cannot move tables between databases (MariaDB's `RENAME TABLE` does that), and
//! cannot rename a database anyone is connected to. So the switch refuses new connections
//! to the live database, ends the site's sessions (its writes are frozen: they are reads),
//! and renames the live database aside and the copy into its place, all in a few
//! milliseconds. A page being read at that moment fails, where a drop and reload failed
//! every read for as long as the load took.

use super::{DbCtl, DbKind, check_identifier};
use crate::{HostError, Result};

/// How long the switch waits for ended sessions to be gone before it gives up (and its undo
/// lets the site in again).
const SESSIONS_GONE_WITHIN_S: u32 = 10;

impl DbCtl {
    /// An empty database the site's user `user` owns and only it (and the administrator)
    /// may connect to, as [`DbCtl::create`] makes the live one: a staging place to load a
    /// backup into as the site's user.
    pub fn create_staging_database_for(&self, name: &str, user: &str) -> Result<()> {
        check_identifier(name)?;
        check_identifier(user)?;
        if self.kind != DbKind::Postgresql {
            return self.create_database_only(name);
        }
        self.admin(&[
            format!("CREATE DATABASE \"{name}\" OWNER \"{user}\""),
            format!("REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC"),
        ])
        .map(|_| ())
    }

    /// Puts the database `stage` in the place of `live`, which becomes `hold` (PostgreSQL).
    /// Connections to `live` are refused from the first statement; the site's sessions are
    /// ended and waited for; then both renames. [`DbCtl::swap_databases_back`] undoes any
    /// prefix of it.
    pub fn swap_databases(&self, live: &str, hold: &str, stage: &str) -> Result<()> {
        for name in [live, hold, stage] {
            check_identifier(name)?;
        }
        if self.kind != DbKind::Postgresql {
            return Err(HostError::Refused(
                "databases are swapped by renames on PostgreSQL only".into(),
            ));
        }
        // One psql session, statement by statement: the window between the first and the
        // last is the time the site cannot connect.
        let mut statements = self.end_sessions_statements(live);
        statements.push(format!("ALTER DATABASE \"{live}\" RENAME TO \"{hold}\""));
        statements.push(format!("ALTER DATABASE \"{stage}\" RENAME TO \"{live}\""));
        self.admin(&statements).map(|_| ())
    }

    /// Undoes whatever part of [`DbCtl::swap_databases`] was made: the copy goes back to
    /// `stage` and the old database from `hold` to `live`, which takes connections again.
    /// `hold` exists only once the first rename was made, so it tells how far the swap got;
    /// running this again changes nothing.
    pub fn swap_databases_back(&self, live: &str, hold: &str, stage: &str) -> Result<()> {
        for name in [live, hold, stage] {
            check_identifier(name)?;
        }
        if self.database_exists(hold)? {
            let mut statements = Vec::new();
            if self.database_exists(live)? {
                if self.database_exists(stage)? {
                    return Err(HostError::Refused(format!(
                        "databases {live}, {hold} and {stage} all exist: the site's old \
                         database is {hold}; left for inspection"
                    )));
                }
                statements.extend(self.end_sessions_statements(live));
                statements.push(format!("ALTER DATABASE \"{live}\" RENAME TO \"{stage}\""));
            }
            statements.extend(self.end_sessions_statements(hold));
            statements.push(format!("ALTER DATABASE \"{hold}\" RENAME TO \"{live}\""));
            self.admin(&statements)?;
        }
        if self.database_exists(live)? {
            self.admin(&[format!("ALTER DATABASE \"{live}\" ALLOW_CONNECTIONS true")])?;
        }
        Ok(())
    }

    /// Refuses new connections to `name`, ends those open and waits until they are gone.
    fn end_sessions_statements(&self, name: &str) -> Vec<String> {
        vec![
            format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"),
            format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ),
            format!(
                "DO $$ BEGIN FOR i IN 1..{} LOOP \
                   EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = '{name}' \
                     AND pid <> pg_backend_pid()); \
                   PERFORM pg_sleep(0.005); \
                 END LOOP; END $$",
                SESSIONS_GONE_WITHIN_S * 200
            ),
        ]
    }
}

/// Against the machine's own PostgreSQL (postgres on 127.0.0.1), as the project's tests are.
#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    fn postgresql() -> DbCtl {
        DbCtl {
            kind: DbKind::Postgresql,
            socket: None,
            host: Some("127.0.0.1".into()),
            port: Some(5432),
            admin_user: "postgres".into(),
            password_file: None,
            password_env: None,
            client_host: None,
        }
    }

    /// What a reader of the site's database saw: when each read ended and whether it worked.
    fn read_until(
        ctl: &DbCtl,
        name: &str,
        password: &str,
        stop: &AtomicBool,
    ) -> Vec<(Instant, std::result::Result<String, String>)> {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let read = ctl
                .sql_as(
                    name,
                    Some(password),
                    Some(name),
                    &["SELECT string_agg(v, ',' ORDER BY id) FROM notes".into()],
                )
                .map(|s| s.trim().to_string())
                .map_err(|e| e.to_string());
            seen.push((Instant::now(), read));
        }
        seen
    }

    /// A frozen site's database is replaced by its backup's copy while a reader reads it all
    /// along: every read made while the copy loads answers (the old rows), the first reads
    /// after the switch answer the backup's rows, and the undo puts the old database back
    /// however often it runs.
    #[test]
    fn a_postgresql_database_is_replaced_in_one_switch_while_its_site_reads_it() {
        let ctl = postgresql();
        let name = format!("fjren_{}", crate::random_hex(4));
        let (hold, stage) = (format!("{name}_fjhx"), format!("{name}_fjsx"));
        let password = crate::random_hex(16);
        ctl.create(&name, &name, &password).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let result = (|| -> Result<()> {
            let sql = |statements: &[&str]| {
                let statements: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
                ctl.sql_as(&name, Some(&password), Some(&name), &statements)
            };
            // Enough rows that the load takes a while beside the reader.
            sql(&[
                "CREATE TABLE notes (id SERIAL PRIMARY KEY, v TEXT)",
                "INSERT INTO notes (v) VALUES ('backed-up')",
                "CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS v \
                 FROM generate_series(1, 200000) g",
            ])?;
            let dump = scratch.path().join("db.pgdump");
            ctl.dump(&name, &dump)?;
            sql(&["INSERT INTO notes (v) VALUES ('after-backup')"])?;
            ctl.freeze_writes(&name, &name)?;

            let stop = AtomicBool::new(false);
            let (seen, loaded, switched) = std::thread::scope(|scope| {
                let reader = scope.spawn(|| read_until(&ctl, &name, &password, &stop));
                std::thread::sleep(Duration::from_millis(200));
                let started = Instant::now();
                let load = (|| {
                    ctl.create_staging_database_for(&stage, &name)?;
                    ctl.load(&stage, &name, &password, &dump)?;
                    let loaded = Instant::now();
                    ctl.swap_databases(&name, &hold, &stage)?;
                    Ok::<_, HostError>((started, loaded, Instant::now()))
                })();
                std::thread::sleep(Duration::from_millis(300));
                stop.store(true, Ordering::Relaxed);
                let seen = reader.join().unwrap();
                let (started, loaded, switched) = load?;
                Ok::<_, HostError>((seen, (started, loaded), switched))
            })?;
            let (started, loaded) = loaded;
            let during_load = seen
                .iter()
                .filter(|(at, _)| (started..loaded).contains(at))
                .count();
            assert!(during_load > 0, "the reader read during the load: {seen:?}");
            for (_, read) in seen.iter().filter(|(at, _)| *at < loaded) {
                assert_eq!(
                    read.as_deref(),
                    Ok("backed-up,after-backup"),
                    "every read during the load answers the old rows"
                );
            }
            let after: Vec<_> = seen.iter().filter(|(at, _)| *at > switched).collect();
            assert!(
                after.len() > 1,
                "the reader read after the switch: {seen:?}"
            );
            for (_, read) in after.iter().skip(1) {
                assert_eq!(read.as_deref(), Ok("backed-up"), "the backup's rows");
            }
            // Undone (as a rollback would, twice): the old database is back and takes
            // connections.
            ctl.swap_databases_back(&name, &hold, &stage)?;
            ctl.swap_databases_back(&name, &hold, &stage)?;
            ctl.thaw_writes(&name, &name)?;
            assert_eq!(
                sql(&["SELECT string_agg(v, ',' ORDER BY id) FROM notes"])?.trim(),
                "backed-up,after-backup"
            );
            assert!(ctl.database_exists(&stage)? && !ctl.database_exists(&hold)?);
            Ok(())
        })();
        let _ = ctl.thaw_writes(&name, &name);
        for db in [&stage, &hold] {
            let _ = ctl.drop_database_only(db);
        }
        ctl.drop(&name, &name).unwrap();
        result.unwrap();
    }

    /// A switch cut short after it refused connections (the step failed, or its dispatcher
    /// died) is undone: the live database takes connections again.
    #[test]
    fn a_switch_cut_short_lets_the_site_in_again_when_undone() {
        let ctl = postgresql();
        let name = format!("fjren_{}", crate::random_hex(4));
        let password = crate::random_hex(16);
        ctl.create(&name, &name, &password).unwrap();
        let result = (|| -> Result<()> {
            ctl.admin(&[format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")])?;
            assert!(!ctl.can_login(&name, &name, &password));
            ctl.swap_databases_back(&name, &format!("{name}_fjhy"), &format!("{name}_fjsy"))?;
            assert!(ctl.can_login(&name, &name, &password));
            Ok(())
        })();
        ctl.drop(&name, &name).unwrap();
        result.unwrap();
    }
}
