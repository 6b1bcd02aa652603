use std::path::{Path, PathBuf};

use std::sync::Arc;
use uzers::os::unix::UserExt;

use crate::acme::{AcmeCa, ChallengeDir, Issued, NewAccount};
use crate::anchor;
use crate::archive::Manifest;
use crate::commit::Committers;
use crate::db::DbCtl;
use crate::fsops::{self, ModeEntry, Ownership};
use crate::journal::{Journal, Undo};
use crate::logs::LogDir;
use crate::nginx::NginxCtl;
use crate::php_fpm::PhpFpmCtl;
use crate::php_run::PhpRun;
use crate::users::SystemUser;
use crate::{HostError, Result};

/// How long a freeze waits for the requests nginx took before the reload that turned a site
/// read-only: longer than any page a site should take, short of holding a task for long.
pub const DRAIN_BOUND: std::time::Duration = std::time::Duration::from_secs(15);

mod backup;
mod config;
mod databases;
mod dry_run;
mod logs;
mod split;
mod targets;
mod trash;

use crate::remote::targets::{Copied, TargetAddress};
use backup::*;
pub use backup::{BackupDb, BackupRequest, ExtractedAndBackedUp};
pub use dry_run::DryRun;
pub use split::SplitSteps;
pub use targets::{TargetCopy, TargetFetch};
pub use trash::{Trash, trash_path};

/// What a task script may do to a host. Each method is one step: in [`LiveSteps`] it is
/// journaled with its undo before it is made; in [`DryRun`] it is printed and not made.
pub trait Steps {
    fn log(&mut self, line: &str);
    /// Reads of the machine the steps are made on (a handle of its own: held while steps
    /// are made).
    fn reads(&self) -> Arc<dyn crate::Reads>;
    /// Registers an account at an ACME CA. Nothing on this host changes: its credentials are
    /// returned for the script to write (none in a dry run).
    fn acme_account(&mut self, ca: &AcmeCa, email: &str) -> Result<Option<NewAccount>>;
    /// Orders a certificate for `names` with the account whose credentials are in
    /// `credentials`, answering HTTP-01 beneath `challenges`; the answers are removed before
    /// it returns. The chain and key are returned for the script to write (none in a dry run).
    fn acme_order(
        &mut self,
        ca: &AcmeCa,
        credentials: &Path,
        names: &[String],
        challenges: &Path,
    ) -> Result<Option<Issued>>;
    /// Orders a certificate for each list of names in `orders`, at most `in_flight` at once,
    /// as [`Steps::acme_order`] does one: one step, each order's outcome its own, in the order
    /// of `orders` (none in a dry run). Fails as a whole only when the account cannot be
    /// loaded or the challenge dir opened.
    fn acme_orders(
        &mut self,
        ca: &AcmeCa,
        credentials: &Path,
        orders: &[Vec<String>],
        challenges: &Path,
        in_flight: usize,
    ) -> Result<Option<Vec<Result<Issued>>>>;
    /// Creates a directory (its parent must exist); nothing if it exists.
    fn make_dir(&mut self, path: &Path) -> Result<()>;
    /// Makes a directory that is one site's alone (its files, its private dir), whose
    /// application may write into it during the task: the undo removes it with whatever was
    /// put in it since. Nothing if it exists.
    fn make_own_dir(&mut self, path: &Path) -> Result<()>;
    /// Writes a file atomically; nothing if it already has this content and mode.
    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<()>;
    /// Sets a directory tree aside so that it can be put back; it is purged once the task
    /// has succeeded. Returns where it was set aside (none if it was not there, or in a dry
    /// run).
    fn remove_tree(&mut self, path: &Path) -> Result<Option<PathBuf>>;
    /// Gives every entry under `root` the modes and owner of `ownership` (never through a
    /// link).
    fn fix_permissions(&mut self, root: &Path, ownership: &Ownership) -> Result<()>;
    /// Makes a site's log dir and its files, each with its owner and mode, or puts them
    /// right (undo: the dir removed if this made it, files made removed, modes given back).
    fn site_logs(&mut self, logs: &LogDir) -> Result<()>;
    /// Creates a system user with a group of its own (a site's PHP runs as it).
    fn create_user(&mut self, name: &str, home: &Path) -> Result<()>;
    /// Removes a user and its group (undo: made again with the same ids).
    fn remove_user(&mut self, name: &str) -> Result<()>;
    /// Runs a PHP script as a site's user; returns its output, which is also logged.
    fn run_php(&mut self, run: &PhpRun) -> Result<String>;
    /// Copies a code base in from a directory to `to`, which must not exist (undo: removed).
    /// `owned`: paths below the code base's root that its kind writes itself (MediaWiki's
    /// `LocalSettings.php`), left out of the copy whatever they are (a dangling link too).
    fn copy_in(&mut self, from: &Path, to: &Path, owned: &[&str]) -> Result<()>;
    /// Changes files of an nginx config, then tests and reloads it (group-committed with
    /// other tasks' changes). Fails, with the changes put back, if nginx rejects them.
    fn nginx(&mut self, ctl: &NginxCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()>;
    /// Waits (at most [`DRAIN_BOUND`]) until the requests nginx took before its last reload
    /// are answered: a write that reached a site before its vhost turned read-only is then
    /// acknowledged or failed before its database is frozen, never cut by the freeze.
    /// Changes nothing; logged.
    fn let_requests_in_flight_finish(&mut self, ctl: &NginxCtl) -> Result<()>;
    /// Writes (or, with `None`, removes) php-fpm pool files, then a tested reload, group
    /// committed like nginx's.
    fn php_fpm(&mut self, ctl: &PhpFpmCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()>;
    /// [`Steps::php_fpm`], its test and reload made while `beside` runs steps that need no
    /// pool (an installer run from the command line); fails, once both are done, if either
    /// did.
    fn php_fpm_beside(
        &mut self,
        ctl: &PhpFpmCtl,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
        beside: &mut dyn FnMut(&mut dyn Steps) -> Result<()>,
    ) -> Result<()>;
    /// Creates a database and a user granted only on it. Refuses a name that already exists
    /// on the server: fjord never adopts a database it did not make.
    fn create_database(&mut self, db: &DbCtl, name: &str, user: &str, password: &str)
    -> Result<()>;
    /// Checks the site's credentials open its database, and repairs user and grants if not.
    fn repair_database(&mut self, db: &DbCtl, name: &str, user: &str, password: &str)
    -> Result<()>;
    /// Dumps the database (the undo reloads that dump), then drops it and its user.
    fn drop_database(&mut self, db: &DbCtl, name: &str, user: &str, password: &str) -> Result<()>;
    /// Checks that the administrator can create and drop a database; changes nothing.
    fn check_db_admin(&mut self, db: &DbCtl) -> Result<()>;
    /// Writes a backup archive (files, private files, a consistent database dump).
    fn create_backup(&mut self, request: &BackupRequest) -> Result<Option<Manifest>>;
    /// Extracts a backup into two new staging directories (a SQLite database into the private
    /// one), checking every member against the manifest on the way; returns where the
    /// database dump, if any, was put, and the manifest (none in a dry run).
    fn extract_backup(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
    ) -> Result<(PathBuf, Option<Manifest>)>;
    /// `extract_backup` and `create_backup` at once, on two threads: a restore needs both
    /// before it changes anything, and they touch different places.
    fn extract_and_back_up(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
        backup: &BackupRequest,
    ) -> Result<ExtractedAndBackedUp>;
    /// Puts `replacement` in the place of `target` (which is set aside, and purged once the
    /// task succeeds).
    fn swap_tree(&mut self, target: &Path, replacement: &Path) -> Result<()>;
    /// Creates a new database and user and loads a dump into it.
    fn create_database_from(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<()>;
    /// Holds a site's database user to reads and ends its sessions: from here until the
    /// undo, nothing it writes is acknowledged (the write freeze of a move).
    fn freeze_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()>;
    /// Gives a frozen database user its writes back (the end of a restore's write freeze).
    fn thaw_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()>;
    /// Makes database `name` for `user` on `to` from a dump of `from_name` on `from` taken now.
    #[allow(clippy::too_many_arguments)]
    fn copy_database(
        &mut self,
        from: &DbCtl,
        from_name: &str,
        to: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()>;
    /// Brings `to`, a tree this task made (its undo removes it whole), in line with `from`:
    /// what changed at or after `since_s` (Unix seconds) or is missing is copied and, with
    /// `remove_gone`, what `from` no longer has is removed; links are never followed.
    fn sync_tree(&mut self, from: &Path, to: &Path, since_s: i64, remove_gone: bool) -> Result<()>;
    /// Replaces a database's content with a dump. On MariaDB the dump is loaded into a
    /// staging database while the site keeps its tables, then the tables are swapped in one
    /// atomic rename (the old ones are kept until the task succeeds); where a swap cannot move
    /// everything (views, triggers, routines, events) and on PostgreSQL, the old content is
    /// dumped for undo and the database dropped and reloaded.
    fn replace_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<()>;
    /// Dumps a database that later steps change in place (an application's upgrade, a URL
    /// rewrite); its undo puts the dump back.
    fn snapshot_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()>;
    /// Copies a backup archive to a backup target (`targets.rs`); its undo removes the copy.
    fn copy_to_backup_target(&mut self, copy: &TargetCopy) -> Result<Option<Copied>>;
    /// Fetches a copy from a backup target, checked by its SHA-256; returns where it is.
    fn fetch_from_backup_target(&mut self, fetch: &TargetFetch) -> Result<PathBuf>;
    /// Removes a copy from a backup target: not undoable, so best effort, a failure logged.
    fn remove_from_backup_target(&mut self, target: &TargetAddress, keys: &Path, path: &str);
}

/// Lets a task give up its concurrency slot while it only waits (for an nginx commit), so
/// that waiting tasks do not keep working ones from starting.
pub trait Parking: Send + Sync {
    fn park(&self);
    fn unpark(&self);
}

pub struct LiveSteps<'a> {
    journal: &'a dyn Journal,
    committers: &'a Committers,
    parking: Option<Arc<dyn Parking>>,
    seq: i64,
    /// Directories set aside by `remove_tree` (with their anchors), purged after success.
    trash: Vec<(PathBuf, PathBuf)>,
    /// Staging and holding databases, dropped after success.
    trash_databases: Vec<(DbCtl, String)>,
    /// The task's own directory for dumps its undos may need.
    scratch: PathBuf,
}

impl<'a> LiveSteps<'a> {
    pub fn new(
        journal: &'a dyn Journal,
        committers: &'a Committers,
        parking: Option<Arc<dyn Parking>>,
        scratch: PathBuf,
    ) -> LiveSteps<'a> {
        LiveSteps {
            journal,
            committers,
            parking,
            seq: 0,
            trash: Vec::new(),
            trash_databases: Vec::new(),
            scratch,
        }
    }

    fn record(&mut self, step: &str, undo: &Undo, saved: Option<&[u8]>) -> Result<()> {
        self.seq += 1;
        self.journal.record(self.seq, step, undo, saved)
    }

    /// Records entries numbered from the next one on, in one write.
    fn record_all(&mut self, entries: &[crate::journal::JournalRecord<'_>]) -> Result<()> {
        self.journal.record_all(entries)?;
        self.seq += entries.len() as i64;
        Ok(())
    }

    /// Called after each step is made: the journal numbers it (across every machine the
    /// task touches) and fires injected faults.
    fn after_step(&mut self, what: &str) -> Result<()> {
        self.journal.step_made(what)
    }

    /// A backup written into `stream` for another machine to keep: only its dump is made
    /// here (in the scratch dir, removed afterwards); the machine that keeps the archive
    /// journals it.
    pub(crate) fn create_backup_into(
        &mut self,
        request: &BackupRequest,
        stream: impl std::io::Write + Send,
    ) -> Result<Manifest> {
        crate::ensure_dir(&self.scratch)?;
        let dump = self
            .scratch
            .join(format!("backup-{}", crate::random_hex(4)));
        let (manifest, mut stream) = write_backup_stream(self.journal, request, &dump, stream)?;
        stream.flush().map_err(|e| HostError::io(&request.out, e))?;
        drop(stream);
        // The dump is gone; a scratch dir made for it alone goes too (one that holds an
        // undo's dump stays: it is not empty).
        let _ = std::fs::remove_dir(&self.scratch);
        self.after_step(&format!("write backup {}", request.out.display()))?;
        Ok(manifest)
    }

    /// [`Steps::extract_backup`] of an archive read from the stream `open` opens (once the
    /// staging directories are journaled): the archive is kept on another machine.
    pub(crate) fn extract_backup_from<'s>(
        &mut self,
        archive: &Path,
        open: &mut dyn FnMut() -> Result<Box<dyn std::io::Read + Send + 's>>,
        files: &Path,
        private: &Path,
    ) -> Result<(PathBuf, Option<Manifest>)> {
        let db_dump = self.begin_extract(files, private)?;
        let stream = open()?;
        let manifest =
            crate::archive::extract_backup_from(archive, stream, files, private, &db_dump)?;
        self.after_step(&format!("extract {}", archive.display()))?;
        Ok((db_dump, Some(manifest)))
    }

    /// Hands over what the task set aside, to be purged once the task is recorded as a
    /// success (see [`Trash::purge`]).
    pub fn take_trash(&mut self) -> Trash {
        Trash {
            dirs: std::mem::take(&mut self.trash),
            databases: std::mem::take(&mut self.trash_databases),
            journaled: self.seq > 0,
        }
    }
}

// The database steps are made in `databases.rs`, the config commits in `config.rs` and the
// backups in `backup.rs`; the methods here that only forward keep the trait in one place.
impl Steps for LiveSteps<'_> {
    fn copy_to_backup_target(&mut self, copy: &TargetCopy) -> Result<Option<Copied>> {
        self.copy_to_target(copy).map(Some)
    }

    fn fetch_from_backup_target(&mut self, fetch: &TargetFetch) -> Result<PathBuf> {
        self.fetch_from_target(fetch)
    }

    fn remove_from_backup_target(&mut self, target: &TargetAddress, keys: &Path, path: &str) {
        self.remove_from_target(target, keys, path);
    }

    fn create_backup(&mut self, request: &BackupRequest) -> Result<Option<Manifest>> {
        let dump = self.begin_backup(request)?;
        let written = write_backup(self.journal, request, &dump)?;
        self.after_step(&format!("write backup {}", request.out.display()))?;
        Ok(Some(written))
    }

    fn extract_backup(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
    ) -> Result<(PathBuf, Option<Manifest>)> {
        let db_dump = self.begin_extract(files, private)?;
        let manifest = crate::archive::extract_backup(archive, files, private, &db_dump)?;
        self.after_step(&format!("extract {}", archive.display()))?;
        Ok((db_dump, Some(manifest)))
    }

    fn extract_and_back_up(
        &mut self,
        archive: &Path,
        files: &Path,
        private: &Path,
        backup: &BackupRequest,
    ) -> Result<ExtractedAndBackedUp> {
        let db_dump = self.begin_extract(files, private)?;
        let dump = self.begin_backup(backup)?;
        let journal = self.journal;
        let (extracted, written) = std::thread::scope(|scope| {
            let extracting =
                scope.spawn(|| crate::archive::extract_backup(archive, files, private, &db_dump));
            let written = write_backup(journal, backup, &dump);
            let extracted = extracting.join().unwrap_or_else(|_| {
                Err(HostError::Refused("the extracting thread panicked".into()))
            });
            (extracted, written)
        });
        let manifest = extracted?;
        self.after_step(&format!("extract {}", archive.display()))?;
        let written = written?;
        self.after_step(&format!("write backup {}", backup.out.display()))?;
        Ok(ExtractedAndBackedUp {
            dump: db_dump,
            manifest: Some(manifest),
            backup: Some(written),
        })
    }

    fn swap_tree(&mut self, target: &Path, replacement: &Path) -> Result<()> {
        let what = format!("replace {}", target.display());
        let aside = trash_path(target, &crate::random_hex(4));
        // Renamed beneath the directory that holds them, which no site's user can change.
        let anchor = anchor::anchor_of_all(&[target, replacement, &aside]);
        let (root, rel) = anchor::open_all(&anchor, &[target, replacement, &aside])?;
        let target_existed = root.stat(&rel[0])?.is_some();
        let undo = Undo::SwapBack {
            target: target.to_path_buf(),
            replacement: replacement.to_path_buf(),
            aside: aside.clone(),
            target_existed,
            beneath: Some(anchor.clone()),
        };
        if target_existed {
            // One atomic exchange: the target is never missing, so a site is served its
            // old tree or its new one, never neither. Afterwards `replacement` names the
            // old tree, purged with the trash once the task has succeeded.
            let staged = root
                .stat(&rel[1])?
                .ok_or_else(|| HostError::Refused(format!("{} is gone", replacement.display())))?;
            let undo = Undo::ExchangeBack {
                target: target.to_path_buf(),
                replacement: replacement.to_path_buf(),
                staged: crate::beneath::identity(&staged),
                beneath: Some(anchor.clone()),
            };
            self.record(&what, &undo, None)?;
            root.exchange(&rel[0], &rel[1])?;
            self.trash.push((anchor, replacement.to_path_buf()));
            return self.after_step(&what);
        }
        self.record(&what, &undo, None)?;
        root.rename(&rel[1], &rel[0])?;
        self.after_step(&what)
    }

    fn freeze_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()> {
        LiveSteps::freeze_database_writes(self, db, name, user)
    }

    fn thaw_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()> {
        LiveSteps::thaw_database_writes(self, db, name, user)
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
        LiveSteps::copy_database(self, from, from_name, to, name, user, password)
    }

    fn sync_tree(&mut self, from: &Path, to: &Path, since_s: i64, remove_gone: bool) -> Result<()> {
        // `to` is this task's own new tree: the undo that made it takes it away whole.
        let what = format!("bring {} in line with {}", to.display(), from.display());
        self.record(&what, &Undo::Nothing, None)?;
        let done = crate::sync::sync_tree(from, to, since_s, remove_gone)?;
        self.journal.log(&format!(
            "synced {}: {} entries copied ({} bytes), {} removed",
            to.display(),
            done.copied,
            done.bytes,
            done.removed
        ));
        self.after_step(&what)
    }

    fn create_database_from(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<()> {
        LiveSteps::create_database_from(self, db, name, user, password, dump)
    }

    fn replace_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
        dump: &Path,
    ) -> Result<()> {
        LiveSteps::replace_database(self, db, name, user, password, dump)
    }

    fn create_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        LiveSteps::create_database(self, db, name, user, password)
    }

    fn repair_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        LiveSteps::repair_database(self, db, name, user, password)
    }

    fn drop_database(&mut self, db: &DbCtl, name: &str, user: &str, password: &str) -> Result<()> {
        LiveSteps::drop_database(self, db, name, user, password)
    }

    fn check_db_admin(&mut self, db: &DbCtl) -> Result<()> {
        LiveSteps::check_db_admin(self, db)
    }

    fn reads(&self) -> Arc<dyn crate::Reads> {
        Arc::new(crate::LocalReads)
    }

    fn log(&mut self, line: &str) {
        self.journal.log(line);
    }

    fn acme_account(&mut self, ca: &AcmeCa, email: &str) -> Result<Option<NewAccount>> {
        let what = format!("register an account for {email} at {}", ca.directory);
        let account = crate::acme::create_account(ca, email)?;
        self.after_step(&what)?;
        Ok(Some(account))
    }

    fn acme_order(
        &mut self,
        ca: &AcmeCa,
        credentials: &Path,
        names: &[String],
        challenges: &Path,
    ) -> Result<Option<Issued>> {
        let what = format!(
            "order a certificate for {} from {}",
            names.join(", "),
            ca.directory
        );
        let issued = crate::acme::order(ca, credentials, names, &ChallengeDir::open(challenges)?)?;
        self.after_step(&what)?;
        Ok(Some(issued))
    }

    fn acme_orders(
        &mut self,
        ca: &AcmeCa,
        credentials: &Path,
        orders: &[Vec<String>],
        challenges: &Path,
        in_flight: usize,
    ) -> Result<Option<Vec<Result<Issued>>>> {
        let issued = crate::acme::order_many(
            ca,
            credentials,
            orders,
            &ChallengeDir::open(challenges)?,
            in_flight,
        )?;
        let failed = issued.iter().filter(|r| r.is_err()).count();
        let what = format!(
            "order {} certificates from {} ({} in flight): {} issued, {failed} failed",
            orders.len(),
            ca.directory,
            in_flight,
            orders.len() - failed
        );
        self.after_step(&what)?;
        Ok(Some(issued))
    }

    fn make_dir(&mut self, path: &Path) -> Result<()> {
        let what = format!("make directory {}", path.display());
        fsops::refuse_link(path)?;
        let (root, rel, anchor) = anchor::open_now(path)?;
        if !root.is_dir(&rel)? {
            self.record(
                &what,
                &Undo::RemoveDir {
                    path: path.to_path_buf(),
                    beneath: Some(anchor),
                },
                None,
            )?;
            match root.create_dir(&rel, 0o755) {
                // Another task made it meanwhile (sites of one platform run side by side);
                // the undo only removes it while it is empty.
                Err(HostError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    root.set_dir_mode(&rel, 0o755)?
                }
                other => other?,
            }
        }
        self.after_step(&what)
    }

    fn make_own_dir(&mut self, path: &Path) -> Result<()> {
        let what = format!("make directory {} (the site's own)", path.display());
        fsops::refuse_link(path)?;
        let (root, rel, anchor) = anchor::open_now(path)?;
        if !root.is_dir(&rel)? {
            self.record(
                &what,
                &Undo::RemoveTree {
                    path: path.to_path_buf(),
                    beneath: Some(anchor),
                },
                None,
            )?;
            root.create_dir(&rel, 0o755)?;
        }
        self.after_step(&what)
    }

    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        let what = format!("write {}", path.display());
        // Read and written beneath the directory above it that no site's user can change:
        // a link planted on the way (or at the end) makes the step fail.
        let (root, rel, anchor) = anchor::open_now(path)?;
        let old = fsops::read_beneath(&root, &rel)?;
        if old.as_ref().map(|(c, m)| (c.as_slice(), *m)) != Some((contents, mode)) {
            let undo = Undo::RestoreFile {
                path: path.to_path_buf(),
                existed: old.is_some(),
                mode: old.as_ref().map_or(0, |(_, m)| *m),
                beneath: Some(anchor),
            };
            self.record(&what, &undo, old.as_ref().map(|(c, _)| c.as_slice()))?;
            root.replace_file_as(&rel, mode, None, &mut &contents[..])?;
        }
        self.after_step(&what)
    }

    fn remove_tree(&mut self, path: &Path) -> Result<Option<PathBuf>> {
        let what = format!("remove {}", path.display());
        let mut set_aside = None;
        let (root, rel, anchor) = anchor::open_now(path)?;
        if root.stat(&rel)?.is_some() {
            let aside = trash_path(path, &crate::random_hex(4));
            let undo = Undo::MoveBack {
                from: aside.clone(),
                to: path.to_path_buf(),
                beneath: Some(anchor.clone()),
            };
            self.record(&what, &undo, None)?;
            let aside_rel = rel.with_file_name(aside.file_name().unwrap_or_default());
            root.rename(&rel, &aside_rel)?;
            self.trash.push((anchor, aside.clone()));
            set_aside = Some(aside);
        }
        self.after_step(&what)?;
        Ok(set_aside)
    }

    fn site_logs(&mut self, logs: &LogDir) -> Result<()> {
        self.make_site_logs(logs)
    }

    fn fix_permissions(&mut self, root: &Path, ownership: &Ownership) -> Result<()> {
        let what = format!(
            "fix permissions under {} ({})",
            root.display(),
            ownership.describe()
        );
        let ids = ownership.ids()?;
        // Walked and changed beneath the directory above the tree that no site's user can
        // change, through no link: the site's owner may swap a directory for a link while
        // this runs.
        let (base, rel, anchor) = anchor::open_now(root)?;
        let (changes, shared) = fsops::mode_changes(&base, &rel, ids, ownership)?;
        for path in &shared {
            self.journal.log(&format!(
                "left as it is: {} has other names, which may lie outside the site",
                path.display()
            ));
        }
        if !changes.is_empty() {
            let entries: Vec<ModeEntry> = changes.iter().map(|(e, _)| e.clone()).collect();
            self.record(
                &what,
                &Undo::RestoreModes {
                    entries,
                    beneath: Some(anchor),
                },
                None,
            )?;
            for (entry, mode) in &changes {
                let rel = entry
                    .path
                    .strip_prefix(base.path())
                    .unwrap_or(Path::new(""));
                base.set_mode_owner_of(rel, *mode, ids, entry.inode)?;
            }
            self.journal
                .log(&format!("fixed mode or owner of {} entries", changes.len()));
        }
        self.after_step(&what)
    }

    fn snapshot_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        LiveSteps::snapshot_database(self, db, name, user, password)
    }

    fn create_user(&mut self, name: &str, home: &Path) -> Result<()> {
        let what = format!("create user and group {name}");
        self.record(
            &what,
            &Undo::RemoveUser {
                name: name.to_string(),
            },
            None,
        )?;
        crate::users::create(name, home, None)?;
        self.after_step(&what)
    }

    fn remove_user(&mut self, name: &str) -> Result<()> {
        let what = format!("remove user and group {name}");
        if let Some((uid, gid)) = crate::users::lookup(name) {
            let user = SystemUser {
                name: name.to_string(),
                uid,
                gid,
            };
            let home = uzers::get_user_by_name(name)
                .map(|u| u.home_dir().to_path_buf())
                .unwrap_or_default();
            self.record(&what, &Undo::RecreateUser { user, home }, None)?;
            crate::users::remove(name)?;
        }
        self.after_step(&what)
    }

    fn copy_in(&mut self, from: &Path, to: &Path, owned: &[&str]) -> Result<()> {
        let what = format!("copy the code base {} to {}", from.display(), to.display());
        if to.exists() {
            return Err(HostError::Refused(format!(
                "{} already exists: fjord copies a code base only to a new directory",
                to.display()
            )));
        }
        // Copied beside its place, then renamed: the platform's path holds a whole copy or
        // nothing.
        let staging = trash_path(to, &format!("copy-{}", crate::random_hex(4)));
        self.record(
            &what,
            &Undo::RemoveTree {
                path: to.to_path_buf(),
                beneath: Some(anchor::anchor_of(to)),
            },
            None,
        )?;
        self.record(
            &what,
            &Undo::RemoveTree {
                path: staging.clone(),
                beneath: Some(anchor::anchor_of(&staging)),
            },
            None,
        )?;
        let copied = if from.is_file() {
            // A release archive: unpacked beside the platform's place, then copied in by the
            // rules of a directory; the unpacked tree goes with the task's trash.
            let unpacked = trash_path(to, &format!("unpack-{}", crate::random_hex(4)));
            self.record(
                &what,
                &Undo::RemoveTree {
                    path: unpacked.clone(),
                    beneath: Some(anchor::anchor_of(&unpacked)),
                },
                None,
            )?;
            crate::ensure_private_dir(&unpacked)?;
            let root = crate::copy_in::unpack(from, &unpacked)?;
            let copied =
                crate::copy_in::copy_tree(&root, &staging, crate::copy_in::LinksOut::Refuse, owned);
            self.trash.push((anchor::anchor_of(&unpacked), unpacked));
            copied?
        } else {
            crate::copy_in::copy_tree(from, &staging, crate::copy_in::LinksOut::Follow, owned)?
        };
        std::fs::rename(&staging, to).map_err(|e| HostError::io(to, e))?;
        self.journal.log(&format!(
            "copied {} files ({} bytes)",
            copied.files, copied.bytes
        ));
        for followed in &copied.followed {
            self.journal
                .log(&format!("copied through a link: {followed}"));
        }
        self.after_step(&what)
    }

    fn run_php(&mut self, run: &PhpRun) -> Result<String> {
        let what = format!("run {} as {}", run.describe, run.user);
        self.record(&what, &Undo::Nothing, None)?;
        let output = run.run()?;
        for line in output.lines().filter(|l| !l.trim().is_empty()).take(200) {
            self.journal.log(&format!("  {line}"));
        }
        self.after_step(&what)?;
        Ok(output)
    }

    fn nginx(&mut self, ctl: &NginxCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()> {
        let undo = Undo::ReloadNginx { ctl: ctl.clone() };
        let committer = self.committers.nginx.committer(ctl);
        self.commit_config("nginx", changes, undo, &committer)
    }

    fn let_requests_in_flight_finish(&mut self, ctl: &NginxCtl) -> Result<()> {
        let began = std::time::Instant::now();
        let still = ctl.wait_until_drained(DRAIN_BOUND);
        let waited = began.elapsed().as_millis();
        self.journal.log(&if still == 0 {
            format!("requests nginx took before its reload answered ({waited} ms)")
        } else {
            format!(
                "{still} nginx workers still serve requests taken before the reload after \
                 {waited} ms; going on (a write among them may fail)"
            )
        });
        Ok(())
    }

    fn php_fpm(&mut self, ctl: &PhpFpmCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()> {
        let undo = Undo::ReloadPhpFpm { ctl: ctl.clone() };
        let committer = self.committers.php_fpm.committer(ctl);
        self.commit_config("php-fpm", changes, undo, &committer)
    }

    fn php_fpm_beside(
        &mut self,
        ctl: &PhpFpmCtl,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
        beside: &mut dyn FnMut(&mut dyn Steps) -> Result<()>,
    ) -> Result<()> {
        let undo = Undo::ReloadPhpFpm { ctl: ctl.clone() };
        let committer = self.committers.php_fpm.committer(ctl);
        self.commit_config_beside("php-fpm", changes, undo, &committer, beside)
    }
}
