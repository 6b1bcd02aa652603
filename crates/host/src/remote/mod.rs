//! Remote machines, reached over OpenSSH: the transport beneath every step fjord makes on a
//! server that is not the machine it runs on.
//!
//! A dispatcher keeps one [`Link`] to each remote machine it works on: an SSH session to
//! `fjord agent` there (the dispatcher's own binary, copied over and checked by its SHA-256 as
//! it arrives).
//! A task's steps on that machine go through [`RemoteSteps`], which implements [`Steps`] by
//! sending each step to the agent, where a [`crate::LiveSteps`] makes it with the very code that
//! makes it locally. Before the agent makes a step it sends the step's undo back, and the
//! dispatcher journals it in its state (naming the machine) and answers: the journal lives
//! with the state, never on the machine it describes. A rollback of those entries is sent to
//! the same machine ([`Link::call`] with [`Call::Rollback`]); when the machine cannot be
//! reached, the error says so ([`HostError::Unreachable`]) and the caller keeps the task for a
//! later try.

mod agent;
mod calls;
mod link;
mod ssh;
pub mod targets;
mod wire;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use agent::serve as serve_agent;
pub use calls::{Call, Entries, Query};
pub use link::Link;
pub use ssh::{SshKeys, scan_host_key};

use crate::acme::{AcmeCa, Issued, NewAccount};
use crate::archive::Manifest;
use crate::db::DbCtl;
use crate::fsops::Ownership;
use crate::journal::Journal;
use crate::logs::LogDir;
use crate::nginx::NginxCtl;
use crate::php_fpm::PhpFpmCtl;
use crate::php_run::PhpRun;
use crate::reads::Reads;
use crate::steps::{BackupRequest, ExtractedAndBackedUp, Steps};
use crate::{HostError, Result};
use calls::{DbUser, StepCall};
use wire::value_of;

/// A remote machine as fjord reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The server's name in fjord's state: in messages, and the name of its known-hosts file.
    pub name: String,
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The pinned host key: `TYPE BASE64`.
    pub host_key: String,
    /// fjord's directory on the machine (its agent, its config, the tasks' scratch dirs).
    pub dir: PathBuf,
}

impl Endpoint {
    /// `USER@HOST[:PORT]`, for messages.
    pub fn target(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            22 => format!("{}@{host}", self.user),
            port => format!("{}@{host}:{port}", self.user),
        }
    }

    /// fjord's dir on the machine as its shell reads it: only plain path characters are
    /// taken, so nothing needs quoting.
    fn shell_dir(&self) -> Result<String> {
        let dir = self.dir.to_str().unwrap_or_default();
        if dir.starts_with('/')
            && dir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        {
            Ok(dir.trim_end_matches('/').to_string())
        } else {
            Err(HostError::Refused(format!(
                "server {}: fjord's dir on it, {:?}, must be an absolute path of letters, \
                 digits, /, ., _ and -",
                self.name, self.dir
            )))
        }
    }
}

/// A dispatcher's links to remote machines, opened when a task first needs one and kept while
/// they run; a link that ended (or whose endpoint changed: a new host key) is opened again.
pub struct Machines {
    keys: SshKeys,
    links: Mutex<std::collections::HashMap<String, Arc<Link>>>,
}

impl Machines {
    pub fn new(keys: SshKeys) -> Machines {
        Machines {
            keys,
            links: Default::default(),
        }
    }

    /// The link to `endpoint`, opened if there is none that runs.
    pub fn link(&self, endpoint: &Endpoint) -> Result<Arc<Link>> {
        {
            let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(link) = links.get(&endpoint.name)
                && link.is_up()
                && link.endpoint() == endpoint
            {
                return Ok(link.clone());
            }
        }
        // Opened outside the lock: a machine that does not answer holds up no other.
        let link = Arc::new(Link::open(endpoint, &self.keys)?);
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(endpoint.name.clone(), link.clone());
        Ok(link)
    }

    /// Makes `call` on `endpoint`'s machine.
    pub fn call(
        &self,
        endpoint: &Endpoint,
        call: Call,
        journal: &dyn Journal,
    ) -> Result<serde_json::Value> {
        self.link(endpoint)?.call(call, journal)
    }
}

/// A task's steps on a remote machine (see the module's note).
pub struct RemoteSteps<'a> {
    link: Arc<Link>,
    reads: Arc<RemoteReads>,
    journal: &'a dyn Journal,
    /// The task's journal for steps made on the machine fjord runs on (the backup archives
    /// it keeps).
    here: &'a dyn Journal,
    /// The task's steps on the machine fjord runs on: a backup's copy to a backup target,
    /// and its fetch back, are made from there.
    here_steps: &'a mut dyn Steps,
    /// The task's scratch dir on the machine.
    scratch: PathBuf,
}

impl<'a> RemoteSteps<'a> {
    pub fn new(
        link: Arc<Link>,
        journal: &'a dyn Journal,
        here: &'a dyn Journal,
        here_steps: &'a mut dyn Steps,
        scratch: PathBuf,
    ) -> RemoteSteps<'a> {
        RemoteSteps {
            reads: Arc::new(RemoteReads { link: link.clone() }),
            link,
            journal,
            here,
            here_steps,
            scratch,
        }
    }

    /// Writes the backup `request` asks for into `request.out`, on the machine fjord runs on,
    /// from the stream the agent writes it into: nothing of the archive is kept on the
    /// server. The file is journaled here first (its undo removes it).
    fn backup_here(&mut self, request: &BackupRequest) -> Result<Manifest> {
        let out = &request.out;
        if let Some(parent) = out.parent() {
            crate::ensure_private_dir(parent)?;
        }
        let undo = crate::Undo::RestoreFile {
            path: out.clone(),
            existed: false,
            mode: 0,
            beneath: Some(crate::anchor::anchor_of(out)),
        };
        self.here
            .record(0, &format!("write backup {}", out.display()), &undo, None)?;
        let mut file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(out)
            .map_err(|e| HostError::io(out, e))?;
        let manifest = self.link.call_streaming(
            Call::BackupTo {
                scratch: self.scratch.clone(),
                request: Box::new(request.clone()),
            },
            self.journal,
            None,
            Some(&mut file),
        )?;
        // A backup not on disk is no backup.
        file.sync_all().map_err(|e| HostError::io(out, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.here.log(&format!(
            "the archive came over the link: {size} bytes compressed"
        ));
        value_of(manifest)
    }

    /// Extracts an archive kept on the machine fjord runs on into staging directories on the
    /// server, streamed over the link.
    fn extract_here(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
    ) -> Result<(PathBuf, Option<Manifest>)> {
        let mut file = crate::archive::open_archive(archive)?;
        let value = self.link.call_streaming(
            Call::ExtractFrom {
                scratch: self.scratch.clone(),
                archive: archive.to_path_buf(),
                files: files.to_path_buf(),
                private: private.to_path_buf(),
            },
            self.journal,
            Some(&mut file),
            None,
        )?;
        value_of(value)
    }

    fn step<T: for<'de> serde::Deserialize<'de>>(&mut self, step: StepCall) -> Result<T> {
        let value = self.link.call(
            Call::Step {
                scratch: self.scratch.clone(),
                step: Box::new(step),
            },
            self.journal,
        )?;
        value_of(value)
    }

    fn no_acme(&self) -> HostError {
        HostError::Refused(format!(
            "server {}: certificates from an ACME CA are issued on the machine fjord runs on \
             only, not yet on a remote server",
            self.link.endpoint().name
        ))
    }
}

/// Reads of a remote machine, through its link.
pub struct RemoteReads {
    link: Arc<Link>,
}

impl RemoteReads {
    pub fn new(link: Arc<Link>) -> RemoteReads {
        RemoteReads { link }
    }

    fn query<T: for<'de> serde::Deserialize<'de>>(&self, query: Query) -> Result<T> {
        value_of(self.link.call(Call::Query(query), &NoJournal)?)
    }
}

/// A read journals nothing and logs nothing.
struct NoJournal;

impl Journal for NoJournal {
    fn record(
        &self,
        _seq: i64,
        step: &str,
        _undo: &crate::Undo,
        _saved: Option<&[u8]>,
    ) -> Result<()> {
        Err(HostError::Journal(format!(
            "a read may not journal a step ({step})"
        )))
    }

    fn log(&self, _line: &str) {}
}

fn db_user(db: &DbCtl, name: &str, user: &str, password: &str) -> DbUser {
    DbUser {
        db: db.clone(),
        name: name.to_string(),
        user: user.to_string(),
        password: password.to_string(),
    }
}

impl Reads for RemoteReads {
    fn exists(&self, path: &Path) -> Result<bool> {
        self.query(Query::Exists(path.to_path_buf()))
    }

    fn is_dir(&self, path: &Path) -> Result<bool> {
        self.query(Query::IsDir(path.to_path_buf()))
    }

    fn nginx_would_include(&self, ctl: &NginxCtl, file: &Path) -> Result<Option<bool>> {
        self.query(Query::NginxWouldInclude {
            ctl: ctl.clone(),
            file: file.to_path_buf(),
        })
    }

    fn nginx_open_files(&self, ctl: &NginxCtl) -> Result<Option<String>> {
        self.query(Query::NginxOpenFiles { ctl: ctl.clone() })
    }

    fn missing_programs(&self, programs: &[PathBuf]) -> Result<Vec<PathBuf>> {
        self.query(Query::MissingPrograms(programs.to_vec()))
    }

    fn read_head(&self, path: &Path, max: u64) -> Option<String> {
        // A machine out of reach reads as a file that cannot be read; the step that follows
        // fails on the same link, naming it.
        self.query(Query::ReadHead {
            path: path.to_path_buf(),
            max,
        })
        .ok()
        .flatten()
    }

    fn list_subdirs(&self, dir: &Path) -> Result<Vec<String>> {
        self.query(Query::ListSubdirs(dir.to_path_buf()))
    }

    fn list_files(&self, dir: &Path) -> Vec<String> {
        self.query(Query::ListFiles(dir.to_path_buf()))
            .unwrap_or_default()
    }

    fn user_exists(&self, name: &str) -> Result<bool> {
        self.query(Query::UserExists(name.to_string()))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.query(Query::IsFile(path.to_path_buf()))
            .unwrap_or(false)
    }

    fn database_exists(&self, db: &DbCtl, name: &str) -> Result<bool> {
        self.query(Query::DatabaseExists {
            db: db.clone(),
            name: name.to_string(),
        })
    }

    fn site_db_rows(&self, db: &crate::SiteDb, sql: &str) -> Result<Vec<crate::SiteDbRow>> {
        self.query(Query::SiteDbRows {
            db: db.spec(),
            sql: sql.to_string(),
        })
    }

    fn file_size(&self, path: &Path) -> Option<u64> {
        self.query(Query::FileSize(path.to_path_buf()))
            .ok()
            .flatten()
    }
}

impl Steps for RemoteSteps<'_> {
    fn reads(&self) -> Arc<dyn Reads> {
        self.reads.clone()
    }

    // Backups are kept on the machine fjord runs on: their copies to a backup target are
    // made, fetched and removed from there.
    fn copy_to_backup_target(
        &mut self,
        copy: &crate::steps::TargetCopy,
    ) -> Result<Option<targets::Copied>> {
        self.here_steps.copy_to_backup_target(copy)
    }

    fn fetch_from_backup_target(&mut self, fetch: &crate::steps::TargetFetch) -> Result<PathBuf> {
        self.here_steps.fetch_from_backup_target(fetch)
    }

    fn remove_from_backup_target(
        &mut self,
        target: &targets::TargetAddress,
        keys: &Path,
        path: &str,
    ) {
        self.here_steps
            .remove_from_backup_target(target, keys, path)
    }

    fn log(&mut self, line: &str) {
        self.journal.log(line);
    }

    fn acme_account(&mut self, _ca: &AcmeCa, _email: &str) -> Result<Option<NewAccount>> {
        Err(self.no_acme())
    }

    fn acme_order(
        &mut self,
        _ca: &AcmeCa,
        _credentials: &Path,
        _names: &[String],
        _challenges: &Path,
    ) -> Result<Option<Issued>> {
        Err(self.no_acme())
    }

    fn acme_orders(
        &mut self,
        _ca: &AcmeCa,
        _credentials: &Path,
        _orders: &[Vec<String>],
        _challenges: &Path,
        _in_flight: usize,
    ) -> Result<Option<Vec<Result<Issued>>>> {
        Err(self.no_acme())
    }

    fn make_dir(&mut self, path: &Path) -> Result<()> {
        self.step(StepCall::MakeDir(path.to_path_buf()))
    }

    fn make_own_dir(&mut self, path: &Path) -> Result<()> {
        self.step(StepCall::MakeOwnDir(path.to_path_buf()))
    }

    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        self.step(StepCall::WriteFile {
            path: path.to_path_buf(),
            contents: contents.to_vec(),
            mode,
        })
    }

    fn remove_tree(&mut self, path: &Path) -> Result<Option<PathBuf>> {
        self.step(StepCall::RemoveTree(path.to_path_buf()))
    }

    fn fix_permissions(&mut self, root: &Path, ownership: &Ownership) -> Result<()> {
        self.step(StepCall::FixPermissions {
            root: root.to_path_buf(),
            ownership: ownership.clone(),
        })
    }

    fn site_logs(&mut self, logs: &LogDir) -> Result<()> {
        self.step(StepCall::SiteLogs(logs.clone()))
    }

    fn create_user(&mut self, name: &str, home: &Path) -> Result<()> {
        self.step(StepCall::CreateUser {
            name: name.to_string(),
            home: home.to_path_buf(),
        })
    }

    fn remove_user(&mut self, name: &str) -> Result<()> {
        self.step(StepCall::RemoveUser(name.to_string()))
    }

    fn run_php(&mut self, run: &PhpRun) -> Result<String> {
        self.step(StepCall::RunPhp(run.clone()))
    }

    fn copy_in(&mut self, from: &Path, to: &Path, owned: &[&str]) -> Result<()> {
        self.step(StepCall::CopyIn {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            owned: owned.iter().map(|o| o.to_string()).collect(),
        })
    }

    fn nginx(&mut self, ctl: &NginxCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()> {
        self.step(StepCall::Nginx {
            ctl: ctl.clone(),
            changes,
        })
    }

    fn let_requests_in_flight_finish(&mut self, ctl: &NginxCtl) -> Result<()> {
        self.step(StepCall::LetRequestsInFlightFinish(ctl.clone()))
    }

    fn php_fpm(&mut self, ctl: &PhpFpmCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()> {
        self.step(StepCall::PhpFpm {
            ctl: ctl.clone(),
            changes,
        })
    }

    fn php_fpm_beside(
        &mut self,
        ctl: &PhpFpmCtl,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
        beside: &mut dyn FnMut(&mut dyn Steps) -> Result<()>,
    ) -> Result<()> {
        // One after the other: side by side, the two would be two calls on the link, which
        // saves the reload's wait locally but not the link's round trips.
        self.php_fpm(ctl, changes)?;
        beside(self)
    }

    fn create_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        self.step(StepCall::CreateDatabase(db_user(db, name, user, password)))
    }

    fn repair_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        self.step(StepCall::RepairDatabase(db_user(db, name, user, password)))
    }

    fn drop_database(&mut self, db: &DbCtl, name: &str, user: &str, password: &str) -> Result<()> {
        self.step(StepCall::DropDatabase(db_user(db, name, user, password)))
    }

    fn check_db_admin(&mut self, db: &DbCtl) -> Result<()> {
        self.step(StepCall::CheckDbAdmin(db.clone()))
    }

    fn create_backup(&mut self, request: &BackupRequest) -> Result<Option<Manifest>> {
        self.backup_here(request).map(Some)
    }

    fn extract_backup(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
    ) -> Result<(PathBuf, Option<Manifest>)> {
        self.extract_here(archive, files, private)
    }

    fn extract_and_back_up(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
        backup: &BackupRequest,
    ) -> Result<ExtractedAndBackedUp> {
        // One after the other over the link (locally they run side by side): both are made
        // before anything of the site changes.
        let (dump, manifest) = self.extract_here(archive, files, private)?;
        let written = self.backup_here(backup)?;
        Ok(ExtractedAndBackedUp {
            dump,
            manifest,
            backup: Some(written),
        })
    }

    fn swap_tree(&mut self, target: &Path, replacement: &Path) -> Result<()> {
        self.step(StepCall::SwapTree {
            target: target.to_path_buf(),
            replacement: replacement.to_path_buf(),
        })
    }

    fn create_database_from(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<()> {
        self.step(StepCall::CreateDatabaseFrom {
            user: db_user(db, name, user, password),
            dump: dump.to_path_buf(),
        })
    }

    fn freeze_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()> {
        self.step(StepCall::FreezeDatabaseWrites {
            db: db.clone(),
            name: name.to_string(),
            user: user.to_string(),
        })
    }

    fn thaw_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()> {
        self.step(StepCall::ThawDatabaseWrites {
            db: db.clone(),
            name: name.to_string(),
            user: user.to_string(),
        })
    }

    fn copy_database(
        &mut self,
        from: &DbCtl,
        from_name: &str,
        to: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        self.step(StepCall::CopyDatabase {
            from: from.clone(),
            from_name: from_name.to_string(),
            to: db_user(to, name, user, password),
        })
    }

    fn sync_tree(&mut self, from: &Path, to: &Path, since_s: i64, remove_gone: bool) -> Result<()> {
        self.step(StepCall::SyncTree {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            since_s,
            remove_gone,
        })
    }

    fn replace_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<()> {
        self.step(StepCall::ReplaceDatabase {
            user: db_user(db, name, user, password),
            dump: dump.to_path_buf(),
        })
    }

    fn snapshot_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        self.step(StepCall::SnapshotDatabase(db_user(
            db, name, user, password,
        )))
    }
}
