//! A site's database writes frozen while a move or a restore copies or replaces them, and
//! given back.

use super::{DbCtl, DbKind, check_identifier, grant_on};
use crate::{HostError, Result};

/// Every database-level privilege but SELECT and SHOW VIEW (MariaDB).
const WRITE_PRIVILEGES: &str = "INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER, \
     CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, CREATE ROUTINE, ALTER ROUTINE, \
     EVENT, TRIGGER, DELETE HISTORY";

impl DbCtl {
    /// Statements revoking every database-level grant of `user` but the one on exactly
    /// `name` (see `revoke_database_grants`).
    fn revoke_other_database_grants(&self, name: &str, user: &str) -> Result<Vec<String>> {
        let exact = grant_on(name);
        Ok(self
            .revoke_database_grants(user)?
            .into_iter()
            .filter(|statement| !statement.contains(&format!(" ON {exact} FROM ")))
            .collect())
    }

    /// Holds the site's user to reads of its database, and ends its sessions (waiting until
    /// they are gone), so that nothing it writes from now on can be acknowledged.
    /// MariaDB: the user keeps SELECT only. PostgreSQL (the user owns its tables, so a grant
    /// cannot hold it): its new sessions start read-only.
    pub fn freeze_writes(&self, name: &str, user: &str) -> Result<()> {
        check_identifier(name)?;
        check_identifier(user)?;
        let host = self.client_host();
        let statements = match self.kind {
            DbKind::Mysql => {
                // Reads are granted before writes are revoked: the site is never, even for a
                // statement, refused its own database.
                let mut statements = vec![format!(
                    "GRANT SELECT, SHOW VIEW ON {} TO '{user}'@'{host}'",
                    grant_on(name)
                )];
                statements.extend(self.revoke_other_database_grants(name, user)?);
                statements.push(format!(
                    "REVOKE {WRITE_PRIVILEGES} ON {} FROM '{user}'@'{host}'",
                    grant_on(name)
                ));
                statements
            }
            DbKind::Postgresql => vec![format!(
                "ALTER ROLE \"{user}\" SET default_transaction_read_only = on"
            )],
        };
        self.admin(&statements)?;
        self.end_sessions_begun_before(user)
    }

    /// Gives the site's user its writes back (the undo of [`DbCtl::freeze_writes`]).
    pub fn thaw_writes(&self, name: &str, user: &str) -> Result<()> {
        check_identifier(name)?;
        check_identifier(user)?;
        let host = self.client_host();
        let statements = match self.kind {
            DbKind::Mysql => {
                if !self.user_exists(user)? {
                    return Ok(());
                }
                // Granted first, for the same reason.
                let mut statements = vec![format!(
                    "GRANT ALL PRIVILEGES ON {} TO '{user}'@'{host}'",
                    grant_on(name)
                )];
                statements.extend(self.revoke_other_database_grants(name, user)?);
                statements
            }
            DbKind::Postgresql => {
                if !self.user_exists(user)? {
                    return Ok(());
                }
                vec![format!(
                    "ALTER ROLE \"{user}\" RESET default_transaction_read_only"
                )]
            }
        };
        self.admin(&statements).map(|_| ())
    }

    /// Waits for the sessions of `user` open now (begun with its old rights) to end by
    /// themselves, for as long as a page takes, then ends those left and waits until they
    /// are gone. Sessions begun from now on have the new rights and are left alone, so a
    /// site's readers are not cut off while its writes are frozen.
    fn end_sessions_begun_before(&self, user: &str) -> Result<()> {
        let open = |user: &str| -> Result<std::collections::BTreeSet<u64>> {
            let sessions = match self.kind {
                DbKind::Mysql => {
                    format!("SELECT id FROM information_schema.processlist WHERE user = '{user}'")
                }
                DbKind::Postgresql => format!(
                    "SELECT pid FROM pg_stat_activity WHERE usename = '{user}' \
                     AND pid <> pg_backend_pid()"
                ),
            };
            Ok(self
                .admin(&[sessions])?
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect())
        };
        let old = open(user)?;
        let grace = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left: Vec<u64> = open(user)?.intersection(&old).copied().collect();
            if left.is_empty() {
                return Ok(());
            }
            let now = std::time::Instant::now();
            if now > deadline {
                return Err(HostError::Refused(format!(
                    "sessions of database user {user} did not end within a minute"
                )));
            }
            if now > grace {
                for id in left {
                    let end = match self.kind {
                        DbKind::Mysql => format!("KILL CONNECTION {id}"),
                        DbKind::Postgresql => format!("SELECT pg_terminate_backend({id})"),
                    };
                    // Gone meanwhile: fine.
                    let _ = self.admin(&[end]);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
