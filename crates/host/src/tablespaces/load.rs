//! Which way a backup's MariaDB database is loaded back ([`LoadWay`]), and the load itself:
//! its tablespaces imported when they pay off and import here, else its SQL dump.

use std::path::Path;
use std::time::Instant;

use super::tablespace_dir;
use crate::Result;
use crate::db::{DbCtl, DbKind};

impl DbCtl {
    /// Loads a backup's database into `name`, a database this task has just created and
    /// nothing serves yet, the faster way for its shape ([`LoadWay::for_backup`]): from its
    /// tablespaces when the backup has them, they pay off and they import here, else from
    /// its SQL dump. Returns a line for the task's log.
    pub fn load_backup(
        &self,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<String> {
        let way = LoadWay::for_backup(&tablespace_dir(dump));
        self.load_backup_by(name, user, password, dump, way)
    }

    /// [`DbCtl::load_backup`] the given way (the tablespaces are still only tried).
    pub(crate) fn load_backup_by(
        &self,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
        way: LoadWay,
    ) -> Result<String> {
        let tablespaces = tablespace_dir(dump);
        let mut note = String::new();
        if self.kind == DbKind::Mysql && way == LoadWay::Tablespaces {
            let started = Instant::now();
            match self.import_tablespaces(name, user, password, &tablespaces) {
                Ok(()) => {
                    return Ok(format!(
                        "imported the InnoDB tablespaces of the backup into {name} in {:.1} s",
                        started.elapsed().as_secs_f64()
                    ));
                }
                Err(e) => {
                    note = format!(
                        "could not import the backup's InnoDB tablespaces ({e}); loading its SQL dump instead; "
                    );
                    // `name` is new and unserved: emptying it loses nothing.
                    self.drop_database_only(name)?;
                    self.create_database_only(name)?;
                }
            }
        } else if let LoadWay::Dump {
            tables: Some((tables, bytes)),
        } = way
        {
            note = format!(
                "the backup's {tables} tablespaces ({} KiB) load faster from its SQL dump; ",
                bytes >> 10
            );
        }
        let started = Instant::now();
        self.load(name, user, password, dump)?;
        Ok(format!(
            "{note}loaded the SQL dump of the backup into {name} in {:.1} s",
            started.elapsed().as_secs_f64()
        ))
    }
}

/// How a backup's MariaDB database is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadWay {
    /// Its tablespaces imported (falling back to the dump when they do not import).
    Tablespaces,
    /// Its SQL dump; the tablespaces passed over (their number and bytes), if any.
    Dump { tables: Option<(usize, u64)> },
}

impl LoadWay {
    /// Importing tablespaces costs a DISCARD and an IMPORT per table, one after another
    /// (about 60 ms a table on a machine that syncs slowly), while a dump loads its tables
    /// side by side and costs by its bytes: for a small database (Drupal 7's 73 tables of a
    /// few KiB each) the dump is several times faster, for a large one the files are.
    /// The tablespaces are taken when they hold at least 1 MiB a table and 32 MiB in all.
    pub fn for_backup(tablespaces: &Path) -> LoadWay {
        let Ok(entries) = std::fs::read_dir(tablespaces) else {
            return LoadWay::Dump { tables: None };
        };
        let (mut tables, mut bytes) = (0usize, 0u64);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".ibd") || name.ends_with(".ibd.zst") {
                tables += 1;
                bytes += entry.metadata().map_or(0, |m| m.len());
            }
        }
        LoadWay::by_shape(tables, bytes)
    }

    pub fn by_shape(tables: usize, bytes: u64) -> LoadWay {
        if tables > 0 && bytes >= 32 << 20 && bytes >= (tables as u64) << 20 {
            LoadWay::Tablespaces
        } else {
            LoadWay::Dump {
                tables: (tables > 0).then_some((tables, bytes)),
            }
        }
    }
}
