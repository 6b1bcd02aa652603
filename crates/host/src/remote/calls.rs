//! What a dispatcher asks of a remote machine's agent: a task's step (each [`Steps`] method
//! as a value), a rollback or a purge of its journal's entries on that machine, and the reads
//! scripts make before they step. The agent makes each with the same code that makes it on
//! the dispatcher's own machine ([`Call::make`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::commit::Committers;
use crate::db::DbCtl;
use crate::fsops::Ownership;
use crate::journal::Journal;
use crate::logs::LogDir;
use crate::nginx::NginxCtl;
use crate::php_fpm::PhpFpmCtl;
use crate::php_run::PhpRun;
use crate::reads::{LocalReads, Reads};
use crate::steps::{BackupRequest, LiveSteps, Steps, Trash};

/// A journal's entries as the state keeps them: step, undo (JSON), saved content.
pub type Entries = Vec<(String, String, Option<Vec<u8>>)>;

#[derive(Serialize, Deserialize)]
pub enum Call {
    /// One step of a task; `scratch` is the task's directory on that machine for the dumps
    /// its undos may need.
    Step {
        scratch: PathBuf,
        step: Box<StepCall>,
    },
    /// Undo these entries of a failed task (oldest first), as [`crate::rollback`] does.
    Rollback { entries: Entries },
    /// Purge what a task that succeeded set aside on this machine (read from its entries).
    Purge { entries: Entries },
    /// Remove a task's scratch directory.
    RemoveScratch { scratch: PathBuf },
    /// Write the backup `request` asks for into the call's outgoing stream (to the machine
    /// that keeps the backups); its value is the manifest.
    BackupTo {
        scratch: PathBuf,
        request: Box<BackupRequest>,
    },
    /// Extract the archive the call's incoming stream carries into two new staging
    /// directories, as [`Steps::extract_backup`] does.
    ExtractFrom {
        scratch: PathBuf,
        archive: PathBuf,
        files: PathBuf,
        private: PathBuf,
    },
    /// A read that changes nothing.
    Query(Query),
}

/// Reads a script makes of a machine before it steps (see [`Reads`]).
#[derive(Serialize, Deserialize)]
pub enum Query {
    Exists(PathBuf),
    IsDir(PathBuf),
    /// Whether nginx's main config includes `file` (None: it cannot tell).
    NginxWouldInclude {
        ctl: NginxCtl,
        file: PathBuf,
    },
    /// What nginx's master may open and holds, for server verify's log.
    NginxOpenFiles {
        ctl: NginxCtl,
    },
    /// Which of these programs are missing or not executable.
    MissingPrograms(Vec<PathBuf>),
    ReadHead {
        path: PathBuf,
        max: u64,
    },
    ListSubdirs(PathBuf),
    ListFiles(PathBuf),
    UserExists(String),
    IsFile(PathBuf),
    FileSize(PathBuf),
    DatabaseExists {
        db: DbCtl,
        name: String,
    },
    SiteDbRows {
        db: crate::site_db::SiteDbSpec,
        sql: String,
    },
}

/// Each [`Steps`] method, its arguments owned.
#[derive(Serialize, Deserialize)]
pub enum StepCall {
    MakeDir(PathBuf),
    MakeOwnDir(PathBuf),
    WriteFile {
        path: PathBuf,
        contents: Vec<u8>,
        mode: u32,
    },
    RemoveTree(PathBuf),
    FixPermissions {
        root: PathBuf,
        ownership: Ownership,
    },
    SiteLogs(LogDir),
    CreateUser {
        name: String,
        home: PathBuf,
    },
    RemoveUser(String),
    RunPhp(PhpRun),
    CopyIn {
        from: PathBuf,
        to: PathBuf,
        owned: Vec<String>,
    },
    Nginx {
        ctl: NginxCtl,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
    },
    LetRequestsInFlightFinish(NginxCtl),
    PhpFpm {
        ctl: PhpFpmCtl,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
    },
    CreateDatabase(DbUser),
    RepairDatabase(DbUser),
    DropDatabase(DbUser),
    CheckDbAdmin(DbCtl),
    SwapTree {
        target: PathBuf,
        replacement: PathBuf,
    },
    CreateDatabaseFrom {
        user: DbUser,
        dump: PathBuf,
    },
    FreezeDatabaseWrites {
        db: DbCtl,
        name: String,
        user: String,
    },
    ThawDatabaseWrites {
        db: DbCtl,
        name: String,
        user: String,
    },
    CopyDatabase {
        from: DbCtl,
        from_name: String,
        to: DbUser,
    },
    SyncTree {
        from: PathBuf,
        to: PathBuf,
        since_s: i64,
        remove_gone: bool,
    },
    ReplaceDatabase {
        user: DbUser,
        dump: PathBuf,
    },
    SnapshotDatabase(DbUser),
}

/// A site's database on a server, and its user.
#[derive(Serialize, Deserialize)]
pub struct DbUser {
    pub db: DbCtl,
    pub name: String,
    pub user: String,
    pub password: String,
}

impl StepCall {
    /// Makes the step with `x`; its value as JSON.
    pub(crate) fn make(self, x: &mut dyn Steps) -> Result<serde_json::Value> {
        let v = match self {
            StepCall::MakeDir(path) => json(x.make_dir(&path)?),
            StepCall::MakeOwnDir(path) => json(x.make_own_dir(&path)?),
            StepCall::WriteFile {
                path,
                contents,
                mode,
            } => json(x.write_file(&path, &contents, mode)?),
            StepCall::RemoveTree(path) => json(x.remove_tree(&path)?),
            StepCall::FixPermissions { root, ownership } => {
                json(x.fix_permissions(&root, &ownership)?)
            }
            StepCall::SiteLogs(logs) => json(x.site_logs(&logs)?),
            StepCall::CreateUser { name, home } => json(x.create_user(&name, &home)?),
            StepCall::RemoveUser(name) => json(x.remove_user(&name)?),
            StepCall::RunPhp(run) => json(x.run_php(&run)?),
            StepCall::CopyIn { from, to, owned } => {
                let owned: Vec<&str> = owned.iter().map(String::as_str).collect();
                json(x.copy_in(&from, &to, &owned)?)
            }
            StepCall::Nginx { ctl, changes } => json(x.nginx(&ctl, changes)?),
            StepCall::LetRequestsInFlightFinish(ctl) => {
                json(x.let_requests_in_flight_finish(&ctl)?)
            }
            StepCall::PhpFpm { ctl, changes } => json(x.php_fpm(&ctl, changes)?),
            StepCall::CreateDatabase(u) => {
                json(x.create_database(&u.db, &u.name, &u.user, &u.password)?)
            }
            StepCall::RepairDatabase(u) => {
                json(x.repair_database(&u.db, &u.name, &u.user, &u.password)?)
            }
            StepCall::DropDatabase(u) => {
                json(x.drop_database(&u.db, &u.name, &u.user, &u.password)?)
            }
            StepCall::CheckDbAdmin(db) => json(x.check_db_admin(&db)?),
            StepCall::SwapTree {
                target,
                replacement,
            } => json(x.swap_tree(&target, &replacement)?),
            StepCall::CreateDatabaseFrom { user: u, dump } => {
                json(x.create_database_from(&u.db, &u.name, &u.user, &u.password, &dump)?)
            }
            StepCall::FreezeDatabaseWrites { db, name, user } => {
                json(x.freeze_database_writes(&db, &name, &user)?)
            }
            StepCall::ThawDatabaseWrites { db, name, user } => {
                json(x.thaw_database_writes(&db, &name, &user)?)
            }
            StepCall::CopyDatabase {
                from,
                from_name,
                to,
            } => json(x.copy_database(
                &from,
                &from_name,
                &to.db,
                &to.name,
                &to.user,
                &to.password,
            )?),
            StepCall::SyncTree {
                from,
                to,
                since_s,
                remove_gone,
            } => json(x.sync_tree(&from, &to, since_s, remove_gone)?),
            StepCall::ReplaceDatabase { user: u, dump } => {
                json(x.replace_database(&u.db, &u.name, &u.user, &u.password, &dump)?)
            }
            StepCall::SnapshotDatabase(u) => {
                json(x.snapshot_database(&u.db, &u.name, &u.user, &u.password)?)
            }
        };
        Ok(v)
    }
}

fn json<T: Serialize>(value: T) -> serde_json::Value {
    serde_json::to_value(value).expect("a step's value is plain data")
}

impl Query {
    pub(crate) fn answer(self) -> Result<serde_json::Value> {
        let here = LocalReads;
        Ok(match self {
            Query::Exists(path) => json(here.exists(&path)?),
            Query::IsDir(path) => json(here.is_dir(&path)?),
            Query::NginxWouldInclude { ctl, file } => json(here.nginx_would_include(&ctl, &file)?),
            Query::NginxOpenFiles { ctl } => json(here.nginx_open_files(&ctl)?),
            Query::MissingPrograms(programs) => json(here.missing_programs(&programs)?),
            Query::ReadHead { path, max } => json(here.read_head(&path, max)),
            Query::ListSubdirs(dir) => json(here.list_subdirs(&dir)?),
            Query::ListFiles(dir) => json(here.list_files(&dir)),
            Query::UserExists(name) => json(here.user_exists(&name)?),
            Query::IsFile(path) => json(here.is_file(&path)),
            Query::FileSize(path) => json(here.file_size(&path)),
            Query::DatabaseExists { db, name } => json(here.database_exists(&db, &name)?),
            Query::SiteDbRows { db, sql } => json(here.site_db_rows(&db.site_db(), &sql)?),
        })
    }
}

/// A call's streams of bytes to and from the dispatcher.
pub(crate) trait Streams {
    /// The incoming stream, asked for now.
    fn input(&self) -> Result<Box<dyn std::io::Read + Send + '_>>;
    fn output(&self) -> Box<dyn std::io::Write + Send + '_>;
}

impl Call {
    /// Makes the call on this machine: steps through a [`LiveSteps`] that journals through
    /// `journal` (the dispatcher's, over the wire), rollbacks and purges with this machine's
    /// `committers`.
    pub(crate) fn make(
        self,
        journal: &dyn Journal,
        streams: &dyn Streams,
        committers: &Committers,
    ) -> Result<serde_json::Value> {
        match self {
            Call::BackupTo { scratch, request } => {
                let mut x = LiveSteps::new(journal, committers, None, scratch);
                Ok(json(x.create_backup_into(&request, streams.output())?))
            }
            Call::ExtractFrom {
                scratch,
                archive,
                files,
                private,
            } => {
                let mut x = LiveSteps::new(journal, committers, None, scratch);
                Ok(json(x.extract_backup_from(
                    &archive,
                    &mut || streams.input(),
                    &files,
                    &private,
                )?))
            }
            Call::Step { scratch, step } => {
                let mut x = LiveSteps::new(journal, committers, None, scratch);
                (*step).make(&mut x)
                // What the step set aside is purged from the journal's entries once the task
                // has succeeded (`Call::Purge`), as after a dispatcher's restart.
            }
            Call::Rollback { entries } => {
                crate::rollback(&entries, committers, &|line| journal.log(line))?;
                Ok(serde_json::Value::Null)
            }
            Call::Purge { entries } => {
                Trash::from_journal(&entries).purge(journal);
                Ok(serde_json::Value::Null)
            }
            Call::RemoveScratch { scratch } => {
                crate::remove_dir_if_exists(&scratch)?;
                Ok(serde_json::Value::Null)
            }
            Call::Query(query) => query.answer(),
        }
    }
}
