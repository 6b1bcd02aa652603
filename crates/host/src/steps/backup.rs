//! What backups, restores and deploys share: the request, the archive writer, and the
//! database dump beside it.

use std::path::{Path, PathBuf};

use super::*;

/// What [`Steps::extract_and_back_up`] made: where the backup's database dump was put, its
/// manifest, and the manifest of the backup of the current state (none in a dry run).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ExtractedAndBackedUp {
    pub dump: PathBuf,
    pub manifest: Option<Manifest>,
    pub backup: Option<Manifest>,
}

/// The task log's line on a tablespace snapshot.
pub(super) fn snapshot_line(name: &str, snapshot: &crate::Snapshot) -> String {
    match snapshot {
        crate::Snapshot::Taken {
            tables,
            writes_held,
            dump_in_snapshot,
        } => format!(
            "copied the InnoDB tablespaces of {tables} tables of {name}; writes waited {} ms{}",
            writes_held.as_millis(),
            if *dump_in_snapshot {
                ""
            } else {
                " (the SQL dump began after them, and may hold later writes)"
            }
        ),
        crate::Snapshot::Skipped(why) => format!(
            "InnoDB tablespaces of {name} not copied ({why}): the backup holds its SQL dump only"
        ),
    }
}

/// Writes a consistent copy of the database to `out` and, for a MariaDB database on this
/// machine, a copy of its InnoDB tablespaces beside it (a restore imports those many times
/// faster than it replays a dump).
/// `snapshot_done` is signalled (or dropped) once the tablespaces are copied or skipped.
pub(super) fn dump_database(
    db: Option<&BackupDb>,
    out: &Path,
    journal: &dyn Journal,
    snapshot_done: std::sync::mpsc::Sender<()>,
) -> Result<()> {
    match db {
        Some(BackupDb::Server { ctl, name }) => {
            use std::sync::atomic::{AtomicBool, Ordering};
            let finished = AtomicBool::new(false);
            std::thread::scope(|scope| {
                let mut dump = Some(|| {
                    let started = std::time::Instant::now();
                    let dumped = match ctl.kind {
                        crate::DbKind::Mysql => ctl.dump_compressed(name, out),
                        crate::DbKind::Postgresql => ctl.dump(name, out),
                    };
                    finished.store(true, Ordering::Release);
                    dumped.map(|_| started.elapsed())
                });
                // The dump starts while the tables are locked for the tablespace copy, and
                // runs beside it: both hold the same state, and neither waits for the other.
                let mut dumping = None;
                let snapshot = ctl.snapshot_tablespaces_that_pay_off(
                    name,
                    &crate::tablespace_dir(out),
                    Some(crate::tablespaces::DumpUnderLock {
                        start: &mut || dumping = dump.take().map(|d| scope.spawn(d)),
                        finished: &|| finished.load(Ordering::Acquire),
                    }),
                );
                // No lock was taken (no tablespaces to copy): the dump starts now.
                let dumping = dumping.or_else(|| dump.take().map(|d| scope.spawn(d)));
                let snapshot = snapshot.map(|s| journal.log(&snapshot_line(name, &s)));
                let _ = snapshot_done.send(());
                let dumped = dumping.map_or(Ok(std::time::Duration::ZERO), |handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(HostError::Refused("the dump thread panicked".into()))
                    })
                });
                snapshot?;
                let took = dumped?;
                journal.log(&format!(
                    "dumped {name} as SQL in {:.1} s",
                    took.as_secs_f64()
                ));
                Ok(())
            })
        }
        Some(BackupDb::Sqlite { path }) => {
            let quoted = out.display().to_string().replace('\'', "''");
            let argv = [
                "sqlite3".into(),
                path.display().to_string(),
                format!(".backup '{quoted}'"),
            ];
            let result = crate::run_command(&argv)?;
            if result.success {
                Ok(())
            } else {
                Err(HostError::Command {
                    program: "sqlite3".into(),
                    status: result.status,
                    output: result.output,
                })
            }
        }
        None => Ok(()),
    }
}

/// What a backup holds and where it goes.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct BackupRequest {
    pub out: PathBuf,
    pub manifest: Manifest,
    pub docroot: PathBuf,
    pub private: Option<PathBuf>,
    pub db: Option<BackupDb>,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub enum BackupDb {
    Server {
        ctl: DbCtl,
        name: String,
    },
    /// A SQLite file, copied with SQLite's online backup.
    Sqlite {
        path: PathBuf,
    },
}

impl BackupDb {
    pub fn member(&self) -> &'static str {
        match self {
            BackupDb::Server { ctl, .. } if ctl.kind == crate::DbKind::Postgresql => {
                "database.pgdump"
            }
            BackupDb::Server { .. } => "database.sql.zst",
            BackupDb::Sqlite { .. } => "database.sqlite",
        }
    }
}

impl LiveSteps<'_> {
    /// Journals a backup about to be written; returns where its dump goes.
    pub(super) fn begin_backup(&mut self, request: &BackupRequest) -> Result<PathBuf> {
        crate::ensure_dir(&self.scratch)?;
        if let Some(parent) = request.out.parent() {
            crate::ensure_dir(parent)?;
        }
        let undo = Undo::RestoreFile {
            path: request.out.clone(),
            existed: false,
            mode: 0,
            beneath: Some(crate::anchor::anchor_of(&request.out)),
        };
        self.record(
            &format!("write backup {}", request.out.display()),
            &undo,
            None,
        )?;
        Ok(self
            .scratch
            .join(format!("backup-{}", crate::random_hex(4))))
    }

    /// Journals the staging directories of an extraction; returns where its dump goes.
    pub(super) fn begin_extract(&mut self, files: &Path, private: &Path) -> Result<PathBuf> {
        crate::ensure_dir(&self.scratch)?;
        for dir in [files, private] {
            self.record(
                &format!("stage {}", dir.display()),
                &Undo::RemoveTree {
                    path: dir.to_path_buf(),
                    beneath: Some(crate::anchor::anchor_of(dir)),
                },
                None,
            )?;
        }
        Ok(self
            .scratch
            .join(format!("restore-{}", crate::random_hex(4))))
    }
}

/// Writes the archive a [`BackupRequest`] asks for; the database is dumped on its own thread
/// while the files are archived.
pub(super) fn write_backup(
    journal: &dyn Journal,
    request: &BackupRequest,
    dump: &Path,
) -> Result<Manifest> {
    let written = archive_site(journal, request, dump, |source, tablespaces, db, log| {
        crate::archive::write_backup(
            &request.out,
            request.manifest.clone(),
            source,
            tablespaces,
            db,
            log,
        )
    })?;
    let size = std::fs::metadata(&request.out)
        .map(|m| m.len())
        .unwrap_or(0);
    journal.log(&format!(
        "backup of {} files, {size} bytes compressed",
        written.members.len()
    ));
    Ok(written)
}

/// [`write_backup`] into `stream`, for the machine that keeps the backups when it is not
/// this one: nothing of the archive is written here.
pub(crate) fn write_backup_stream<W: std::io::Write + Send>(
    journal: &dyn Journal,
    request: &BackupRequest,
    dump: &Path,
    stream: W,
) -> Result<(Manifest, W)> {
    let written = archive_site(journal, request, dump, |source, tablespaces, db, log| {
        crate::archive::write_backup_to(
            &request.out,
            stream,
            request.manifest.clone(),
            source,
            tablespaces,
            db,
            log,
        )
    })?;
    journal.log(&format!("backup of {} files", written.0.members.len()));
    Ok(written)
}

/// Archives the site a request names with `write`, the database dumped on its own thread
/// meanwhile (into `dump`, removed afterwards).
fn archive_site<R>(
    journal: &dyn Journal,
    request: &BackupRequest,
    dump: &Path,
    write: impl FnOnce(
        &crate::archive::BackupSource,
        &mut dyn FnMut(),
        &mut dyn FnMut() -> Result<()>,
        &dyn Fn(&str),
    ) -> Result<R>,
) -> Result<R> {
    let skip = match &request.db {
        Some(BackupDb::Sqlite { path }) => Some(path.as_path()),
        _ => None,
    };
    let source = crate::archive::BackupSource {
        docroot: &request.docroot,
        private: request.private.as_deref(),
        skip_in_private: skip,
        db: request.db.as_ref().map(|d| (dump, d.member())),
        db_tablespaces: crate::tablespace_dir(dump),
    };
    let written = std::thread::scope(|scope| {
        let (snapshot_done, snapshot_waited) = std::sync::mpsc::channel::<()>();
        let dumping =
            scope.spawn(|| dump_database(request.db.as_ref(), dump, journal, snapshot_done));
        // The tablespaces go in as soon as the files are in; the SQL dump, taken after
        // them, has that long again to finish.
        let mut tablespaces_ready = || {
            let _ = snapshot_waited.recv();
        };
        let mut dumping = Some(dumping);
        let mut db_ready = || match dumping.take() {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(HostError::Refused("the dump thread panicked".into()))),
            None => Ok(()),
        };
        let written = write(&source, &mut tablespaces_ready, &mut db_ready, &|line| {
            journal.log(line)
        });
        // Whatever became of the archive, the dump is finished before the scope ends.
        let dumped = db_ready();
        written.and_then(|w| dumped.map(|_| w))
    });
    let _ = crate::remove_file_if_exists(dump);
    let _ = crate::remove_dir_if_exists(&crate::tablespace_dir(dump));
    written
}
