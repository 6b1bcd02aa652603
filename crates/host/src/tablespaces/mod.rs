//! InnoDB transportable tablespaces: the tables of a MariaDB database on this machine copied
//! as their files, and loaded back with `IMPORT TABLESPACE`. Replaying a SQL dump makes the
//! server insert every row again; an import only checks and adopts pages, many times
//! faster. A backup keeps the SQL dump as well: a restore falls back to it when the
//! tablespaces cannot be imported (another server, another MariaDB version), and it is what
//! moves a database to another server.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::db::{DbCtl, DbKind};
use crate::{HostError, Result};

mod load;
pub use load::LoadWay;

/// The schema of the copied tables, as `mariadb-dump --no-data` writes it.
const SCHEMA: &str = "schema.sql";
/// How long a snapshot waits for the site's running writes before it gives up (and the
/// backup goes on with the SQL dump alone).
const LOCK_WAIT_SECONDS: u32 = 10;

/// How long a snapshot keeps the tables locked, at most, for the SQL dump to begin.
const DUMP_START_WAIT: Duration = Duration::from_secs(2);

/// A SQL dump to run beside a tablespace copy (see [`DbCtl::snapshot_tablespaces`]).
pub struct DumpUnderLock<'a> {
    /// Starts the dump on another thread.
    pub start: &'a mut dyn FnMut(),
    /// Whether the dump has finished (a small database is dumped in a moment).
    pub finished: &'a dyn Fn() -> bool,
}

/// Where the tablespaces of a dump are kept: beside it.
pub fn tablespace_dir(dump: &Path) -> PathBuf {
    let mut path = dump.as_os_str().to_owned();
    path.push(".innodb");
    PathBuf::from(path)
}

/// What became of an attempt to copy a database's tablespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snapshot {
    /// Copied; writes to the tables waited this long; the SQL dump started while they did.
    Taken {
        tables: usize,
        writes_held: Duration,
        dump_in_snapshot: bool,
    },
    /// Not copied, for this reason; the SQL dump stands alone.
    Skipped(String),
}

/// File names of tables are their names only for plain ASCII names (MariaDB encodes the
/// rest); fjord copies only those.
fn plain_table_name(name: &str) -> bool {
    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl DbCtl {
    /// The directory holding the database's files, if the server keeps it on this machine.
    fn local_database_dir(&self, name: &str) -> Result<Option<PathBuf>> {
        let datadir = self.admin(&["SELECT @@datadir".to_string()])?;
        let dir = Path::new(datadir.trim()).join(name);
        Ok(dir.is_dir().then_some(dir))
    }

    /// The tables of `name` if all of them can travel as tablespaces: InnoDB, one file per
    /// table, not partitioned, no full-text index, and nothing besides tables.
    fn exportable_tables(&self, name: &str) -> Result<std::result::Result<Vec<String>, String>> {
        let Some(tables) = self.swappable_tables(name)? else {
            return Ok(Err(
                "it holds views, triggers, routines or events".to_string()
            ));
        };
        if tables.is_empty() {
            return Ok(Err("it has no tables".to_string()));
        }
        if let Some(odd) = tables.iter().find(|t| !plain_table_name(t)) {
            return Ok(Err(format!("table name {odd:?} is not plain ASCII")));
        }
        let sql = format!(
            "SELECT @@innodb_file_per_table, \
             (SELECT COUNT(*) FROM information_schema.tables \
               WHERE table_schema = '{name}' AND engine <> 'InnoDB') \
             + (SELECT COUNT(*) FROM information_schema.statistics \
               WHERE table_schema = '{name}' AND index_type = 'FULLTEXT') \
             + (SELECT COUNT(*) FROM information_schema.partitions \
               WHERE table_schema = '{name}' AND partition_name IS NOT NULL)"
        );
        let out = self.admin(&[sql])?;
        Ok(match out.split_whitespace().collect::<Vec<_>>()[..] {
            ["1", "0"] => Ok(tables),
            ["1", _] => Err(
                "it has tables that are not InnoDB, partitioned or with full-text indexes"
                    .to_string(),
            ),
            _ => Err("the server does not keep one file per table".to_string()),
        })
    }

    /// [`DbCtl::snapshot_tablespaces`] when a restore would import them ([`LoadWay`] by the
    /// size of the tables' files now); a small database is skipped: its dump loads faster,
    /// and its writes need not wait for a copy.
    pub fn snapshot_tablespaces_that_pay_off(
        &self,
        name: &str,
        out: &Path,
        dump: Option<DumpUnderLock<'_>>,
    ) -> Result<Snapshot> {
        if self.kind == DbKind::Mysql
            && let (Ok(tables), Some(dir)) = (
                self.exportable_tables(name)?,
                self.local_database_dir(name)?,
            )
        {
            let bytes: u64 = tables
                .iter()
                .filter_map(|t| std::fs::metadata(dir.join(format!("{t}.ibd"))).ok())
                .map(|m| m.len())
                .sum();
            if LoadWay::by_shape(tables.len(), bytes) != LoadWay::Tablespaces {
                return Ok(Snapshot::Skipped(format!(
                    "its {} tables hold {} KiB: its SQL dump loads faster than they import",
                    tables.len(),
                    bytes >> 10
                )));
            }
        }
        self.snapshot_tablespaces(name, out, dump)
    }

    /// Copies the tables of `name` into the new directory `out` as tablespaces, with their
    /// schema. Writes to the tables wait while the files are copied (reads go on): at disk
    /// speed, a fraction of a second for a few hundred MB.
    ///
    /// A backup passes `dump` to start its SQL dump once the tables are locked, before the
    /// copy: the dump runs beside the copy and, since no write gets in until the tables are
    /// unlocked, its transaction sees the state the files hold. The tables stay locked until
    /// another transaction of the admin user on `name` is open or the dump has finished (at
    /// most [`DUMP_START_WAIT`]); [`Snapshot::Taken`] says whether it was so.
    pub fn snapshot_tablespaces(
        &self,
        name: &str,
        out: &Path,
        mut dump: Option<DumpUnderLock<'_>>,
    ) -> Result<Snapshot> {
        if self.kind != DbKind::Mysql {
            return Ok(Snapshot::Skipped("not a MariaDB database".into()));
        }
        let tables = match self.exportable_tables(name)? {
            Ok(tables) => tables,
            Err(why) => return Ok(Snapshot::Skipped(why)),
        };
        let Some(dir) = self.local_database_dir(name)? else {
            return Ok(Snapshot::Skipped(
                "the server's data directory is not on this machine".into(),
            ));
        };
        std::fs::create_dir(out).map_err(|e| HostError::io(out, e))?;
        let password = self.admin_password()?;
        let mut client = self
            .command(
                Self::mysql_client(),
                &self.admin_user,
                password.as_deref(),
                Some(name),
            )
            .args(["--batch", "--skip-column-names", "--unbuffered"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HostError::io(Path::new(Self::mysql_client()), e))?;
        let (Some(mut stdin), Some(stdout)) = (client.stdin.take(), client.stdout.take()) else {
            return Err(HostError::Refused("the mariadb client has no pipes".into()));
        };
        let list: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
        let lock = format!(
            "SET SESSION lock_wait_timeout = {LOCK_WAIT_SECONDS};\n\
             FLUSH TABLES {} FOR EXPORT;\nSELECT 'fjord-locked';\n",
            list.join(", ")
        );
        let mut answers = BufReader::new(stdout);
        let mut ask = |sql: &str| -> Option<String> {
            let mut answer = String::new();
            stdin
                .write_all(sql.as_bytes())
                .and_then(|_| stdin.flush())
                .and_then(|_| answers.read_line(&mut answer))
                .ok()
                .map(|_| answer.trim().to_string())
        };
        let locked = ask(&lock).is_some_and(|a| a == "fjord-locked");
        let started = Instant::now();
        let mut dump_in_snapshot = false;
        let copied = if locked {
            if let Some(dump) = dump.as_mut() {
                (dump.start)();
            }
            let copied = self.copy_locked_tables(name, &dir, &tables, out);
            if let Some(dump) = &dump {
                // Another transaction of this user on this database: the dump's (a task
                // holds its site alone, and the site's own user is another).
                let probe = "SELECT COUNT(*) FROM information_schema.innodb_trx t \
                     JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
                     WHERE p.id <> CONNECTION_ID() AND p.db = DATABASE() \
                     AND p.user = SUBSTRING_INDEX(USER(), '@', 1);\n";
                while started.elapsed() < DUMP_START_WAIT {
                    if (dump.finished)() {
                        dump_in_snapshot = true;
                        break;
                    }
                    match ask(probe) {
                        Some(n) if n != "0" => {
                            dump_in_snapshot = true;
                            break;
                        }
                        Some(_) => std::thread::sleep(Duration::from_millis(5)),
                        None => break,
                    }
                }
            }
            copied
        } else {
            Ok(())
        };
        let writes_held = started.elapsed();
        // Closing the session unlocks the tables even if the UNLOCK never arrives.
        let _ = stdin.write_all(b"UNLOCK TABLES;\n");
        drop(stdin);
        let output = client
            .wait_with_output()
            .map_err(|e| HostError::io(Path::new(Self::mysql_client()), e))?;
        let skipped = |why: String| {
            crate::remove_dir_if_exists(out)?;
            Ok(Snapshot::Skipped(why))
        };
        if !locked {
            let error = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return skipped(format!("the tables could not be locked: {error}"));
        }
        match copied {
            Ok(()) => Ok(Snapshot::Taken {
                tables: tables.len(),
                writes_held,
                dump_in_snapshot,
            }),
            Err(HostError::Refused(why)) => skipped(why),
            Err(e) => {
                crate::remove_dir_if_exists(out)?;
                Err(e)
            }
        }
    }

    fn copy_locked_tables(
        &self,
        name: &str,
        dir: &Path,
        tables: &[String],
        out: &Path,
    ) -> Result<()> {
        // FLUSH … FOR EXPORT writes a .cfg beside each table: if fjord does not see them,
        // the directory it found is not this server's.
        if let Some(t) = tables
            .iter()
            .find(|t| !dir.join(format!("{t}.cfg")).is_file())
        {
            return Err(HostError::Refused(format!(
                "{} has no export file for table {t}: the server's files are not on this machine",
                dir.display()
            )));
        }
        self.dump_schema(name, &out.join(SCHEMA))?;
        for t in tables {
            let cfg = dir.join(format!("{t}.cfg"));
            std::fs::copy(&cfg, out.join(format!("{t}.cfg")))
                .map_err(|e| HostError::io(&cfg, e))?;
            // Compressed as it is read: no uncompressed copy is written and read back, and
            // the writes wait no longer than for a plain copy (zstd's fastest levels outrun
            // the disk).
            let ibd = dir.join(format!("{t}.ibd"));
            let packed = out.join(format!("{t}.ibd.zst"));
            let input = File::open(&ibd).map_err(|e| HostError::io(&ibd, e))?;
            let mut output = std::io::BufWriter::with_capacity(
                1 << 20,
                File::create(&packed).map_err(|e| HostError::io(&packed, e))?,
            );
            zstd::stream::copy_encode(input, &mut output, crate::archive::DB_ZSTD_LEVEL)
                .and_then(|_| output.flush())
                .map_err(|e| HostError::io(&packed, e))?;
        }
        Ok(())
    }

    /// The tables' definitions (no data, no triggers: there are none).
    fn dump_schema(&self, name: &str, out: &Path) -> Result<()> {
        let password = self.admin_password()?;
        let file = File::create(out).map_err(|e| HostError::io(out, e))?;
        let output = self
            .command(
                Self::mysql_dump(),
                &self.admin_user,
                password.as_deref(),
                None,
            )
            .args([
                "--no-data",
                "--skip-triggers",
                "--single-transaction",
                "--skip-lock-tables",
                name,
            ])
            .stdout(file)
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| HostError::io(out, e))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(HostError::Command {
                program: Self::mysql_dump().into(),
                status: output.status.to_string(),
                output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }

    /// Loads tablespaces copied by [`DbCtl::snapshot_tablespaces`] into the empty database
    /// `name` on this machine's server: creates the tables from the schema, discards their
    /// empty tablespaces, moves the copied files in and imports them. The files are moved,
    /// not copied, when they are on the same file system.
    pub fn import_tablespaces(
        &self,
        name: &str,
        user: &str,
        password: &str,
        from: &Path,
    ) -> Result<()> {
        let Some(dir) = self.local_database_dir(name)? else {
            return Err(HostError::Refused(format!(
                "the files of database {name} are not on this machine"
            )));
        };
        // The schema comes from the archive: it is loaded with the site's rights, as a dump is.
        self.load(name, user, password, &from.join(SCHEMA))?;
        let tables = match self.exportable_tables(name)? {
            Ok(tables) => tables,
            Err(why) => {
                return Err(HostError::Refused(format!(
                    "the tables of the backup cannot be imported: {why}"
                )));
            }
        };
        let packed = |t: &str| from.join(format!("{t}.ibd.zst"));
        if let Some(t) = tables
            .iter()
            .find(|t| !from.join(format!("{t}.ibd")).is_file() && !packed(t).is_file())
        {
            return Err(HostError::Refused(format!(
                "the backup has no tablespace for table {t}"
            )));
        }
        let alter = |action: &str| {
            let mut statements = vec!["SET SESSION foreign_key_checks = 0".to_string()];
            statements.extend(
                tables
                    .iter()
                    .map(|t| format!("ALTER TABLE `{name}`.`{t}` {action} TABLESPACE")),
            );
            self.admin(&statements)
        };
        alter("DISCARD")?;
        let owner = std::fs::metadata(&dir).map_err(|e| HostError::io(&dir, e))?;
        for t in &tables {
            for ext in ["ibd", "cfg"] {
                let (src, dst) = (
                    from.join(format!("{t}.{ext}")),
                    dir.join(format!("{t}.{ext}")),
                );
                if ext == "ibd" && !src.exists() {
                    // As a snapshot leaves it (extracting a backup unpacks it on the way).
                    let input = File::open(packed(t)).map_err(|e| HostError::io(&packed(t), e))?;
                    let mut output = std::io::BufWriter::with_capacity(
                        1 << 20,
                        File::create(&dst).map_err(|e| HostError::io(&dst, e))?,
                    );
                    zstd::stream::copy_decode(input, &mut output)
                        .and_then(|_| output.flush())
                        .map_err(|e| HostError::io(&packed(t), e))?;
                } else if std::fs::rename(&src, &dst).is_err() {
                    std::fs::copy(&src, &dst).map_err(|e| HostError::io(&src, e))?;
                }
                crate::fsops::set_mode_owner(&dst, 0o660, Some((owner.uid(), owner.gid())))?;
            }
        }
        alter("IMPORT")?;
        for t in &tables {
            let _ = std::fs::remove_file(dir.join(format!("{t}.cfg")));
        }
        Ok(())
    }
}

/// Against the machine's own MariaDB (root on its socket), as the project's tests are.
#[cfg(test)]
mod tests;
