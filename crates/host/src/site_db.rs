//! Reads from a site's own database: the queries are fjord's (an application's state, such as
//! which Drupal modules are enabled), the values are the site's and are returned as bytes.

use std::path::Path;

use std::process::Command;

use crate::{DbCtl, DbKind, HostError, Result};

/// A site's database, to read from.
pub enum SiteDb<'a> {
    /// On a database server, read as the site's own user: the site owns its schema, so
    /// whatever it named like the tables fjord reads (a view, a function behind it) runs with
    /// the site's rights, never the administrator's.
    Server {
        ctl: &'a DbCtl,
        database: &'a str,
        user: &'a str,
        password: &'a str,
    },
    /// A SQLite file, opened read-only.
    Sqlite(&'a Path),
}

/// A [`SiteDb`] as a value, to be read on the machine that holds it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub enum SiteDbSpec {
    Server {
        ctl: DbCtl,
        database: String,
        user: String,
        password: String,
    },
    Sqlite(std::path::PathBuf),
}

impl SiteDbSpec {
    pub fn site_db(&self) -> SiteDb<'_> {
        match self {
            SiteDbSpec::Server {
                ctl,
                database,
                user,
                password,
            } => SiteDb::Server {
                ctl,
                database,
                user,
                password,
            },
            SiteDbSpec::Sqlite(path) => SiteDb::Sqlite(path),
        }
    }
}

impl SiteDb<'_> {
    pub fn spec(&self) -> SiteDbSpec {
        match self {
            SiteDb::Server {
                ctl,
                database,
                user,
                password,
            } => SiteDbSpec::Server {
                ctl: (*ctl).clone(),
                database: database.to_string(),
                user: user.to_string(),
                password: password.to_string(),
            },
            SiteDb::Sqlite(path) => SiteDbSpec::Sqlite(path.to_path_buf()),
        }
    }
}

/// A row: each column's bytes, `None` for NULL.
pub type Row = Vec<Option<Vec<u8>>>;

impl SiteDb<'_> {
    /// Runs one read-only query and returns its rows.
    pub fn rows(&self, sql: &str) -> Result<Vec<Row>> {
        match self {
            SiteDb::Server {
                ctl,
                database,
                user,
                password,
            } => ctl.read_rows(database, user, password, sql),
            SiteDb::Sqlite(path) => sqlite_rows(path, sql),
        }
    }

    /// Whether it is a PostgreSQL database, whose binary columns (`bytea`) a query must
    /// decode itself (`convert_from(col, 'UTF8')`).
    pub fn is_postgresql(&self) -> bool {
        matches!(self, SiteDb::Server { ctl, .. } if ctl.kind == DbKind::Postgresql)
    }

    /// Whether the database has this table.
    pub fn has_table(&self, table: &str) -> Result<bool> {
        if !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Ok(false);
        }
        let sql = match self {
            SiteDb::Server { ctl, .. } if ctl.kind == DbKind::Postgresql => format!(
                "SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_name = '{table}'"
            ),
            SiteDb::Server { .. } => format!(
                "SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '{table}'"
            ),
            SiteDb::Sqlite(_) => {
                format!("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
            }
        };
        Ok(!self.rows(&sql)?.is_empty())
    }
}

/// What fjord reads from a site's database is small (which packages are enabled); an answer
/// beyond this is the site's doing and is refused rather than held in memory.
pub const MOST_READ_FROM_A_SITE: u64 = 16 << 20;

/// How long a query fjord runs in a site's database may take, in seconds.
const SITE_QUERY_SECONDS: u32 = 10;

impl DbCtl {
    /// Rows of a read-only query in one database, as the site's user `user` (see `SiteDb`),
    /// bounded in time and in size.
    pub(crate) fn read_rows(
        &self,
        database: &str,
        user: &str,
        password: &str,
        sql: &str,
    ) -> Result<Vec<Row>> {
        crate::db::check_identifier(database)?;
        crate::db::check_identifier(user)?;
        let (cmd, script, null): (Command, String, &[u8]) = match self.kind {
            DbKind::Mysql => {
                let mut c =
                    self.command(DbCtl::mysql_client(), user, Some(password), Some(database));
                c.args(["--batch", "--skip-column-names", "--sandbox"]);
                (
                    c,
                    format!("SET STATEMENT max_statement_time = {SITE_QUERY_SECONDS} FOR {sql};\n"),
                    b"NULL",
                )
            }
            DbKind::Postgresql => {
                let mut c = self.command("psql", user, Some(password), Some(database));
                c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]);
                (
                    c,
                    format!(
                        "SET statement_timeout = '{SITE_QUERY_SECONDS}s';\n\
                         SET search_path = pg_catalog, public;\n\
                         COPY ({sql}) TO STDOUT;\n"
                    ),
                    b"\\N",
                )
            }
        };
        let out = self.stdout_fed_bounded(cmd, script.as_bytes(), MOST_READ_FROM_A_SITE)?;
        Ok(split_rows(&out, null))
    }
}

fn sqlite_rows(path: &Path, sql: &str) -> Result<Vec<Row>> {
    use rusqlite::{OpenFlags, types::ValueRef};
    let failed = |e: rusqlite::Error| HostError::Refused(format!("{}: {e}", path.display()));
    // The file is the site's (hostile, as far as fjord knows): read-only, and its schema
    // may not call functions.
    let c = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    c.execute_batch("PRAGMA trusted_schema = OFF")
        .map_err(failed)?;
    let mut stmt = c.prepare(sql).map_err(failed)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query([]).map_err(failed)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(match row.get_ref(i).map_err(failed)? {
                ValueRef::Null => None,
                ValueRef::Integer(n) => Some(n.to_string().into_bytes()),
                ValueRef::Real(f) => Some(f.to_string().into_bytes()),
                ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
            });
        }
        out.push(values);
    }
    Ok(out)
}

/// Splits the tab-separated output of `mariadb --batch` or PostgreSQL's `COPY … TO STDOUT`,
/// undoing their escapes (`\t`, `\n`, `\\`, `\0`…); `null` is how the tool writes NULL.
pub(crate) fn split_rows(output: &[u8], null: &[u8]) -> Vec<Row> {
    let mut rows = Vec::new();
    for line in output.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let row = line
            .split(|b| *b == b'\t')
            .map(|field| (field != null).then(|| unescape(field)))
            .collect();
        rows.push(row);
    }
    rows
}

fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'0') => out.push(0),
            Some(b'b') => out.push(8),
            Some(b'f') => out.push(12),
            Some(b'v') => out.push(11),
            Some(&other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_output_is_split_and_unescaped() {
        let rows = split_rows(b"a\\tb\tNULL\tx\\\\y\nline\\nbreak\t\t\\N\n", b"NULL");
        assert_eq!(
            rows,
            vec![
                vec![Some(b"a\tb".to_vec()), None, Some(b"x\\y".to_vec())],
                vec![
                    Some(b"line\nbreak".to_vec()),
                    Some(Vec::new()),
                    Some(b"N".to_vec())
                ],
            ]
        );
        let copy = split_rows(b"\\N\tv\n", b"\\N");
        assert_eq!(copy, vec![vec![None, Some(b"v".to_vec())]]);
    }
}
