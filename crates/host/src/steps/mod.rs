use std::path::{Path, PathBuf};

use std::sync::Arc;
use uzers::os::unix::UserExt;

use crate::anchor;
use crate::archive::Manifest;
use crate::commit::{Committers, FileChange};
use crate::db::DbCtl;
use crate::fsops::{self, ModeEntry, Ownership};
use crate::journal::{Journal, Undo};
use crate::nginx::NginxCtl;
use crate::php_fpm::PhpFpmCtl;
use crate::php_run::PhpRun;
use crate::users::SystemUser;
use crate::{Faults, HostError, Result};

mod backup;
mod dry_run;

use backup::*;
pub use backup::{BackupDb, BackupRequest, ExtractedAndBackedUp};
pub use dry_run::DryRun;

/// What a task script may do to a host. Each method is one step: in [`LiveSteps`] it is
/// journaled with its undo before it is made; in [`DryRun`] it is printed and not made.
pub trait Steps {
    fn log(&mut self, line: &str);
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
    /// Writes (or, with `None`, removes) php-fpm pool files, then a tested reload, group
    /// committed like nginx's.
    fn php_fpm(&mut self, ctl: &PhpFpmCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()>;
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
    faults: &'a Faults,
    task_kind: &'a str,
    parking: Option<Arc<dyn Parking>>,
    seq: i64,
    steps: u32,
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
        faults: &'a Faults,
        task_kind: &'a str,
        parking: Option<Arc<dyn Parking>>,
        scratch: PathBuf,
    ) -> LiveSteps<'a> {
        LiveSteps {
            journal,
            committers,
            faults,
            task_kind,
            parking,
            seq: 0,
            steps: 0,
            trash: Vec::new(),
            trash_databases: Vec::new(),
            scratch,
        }
    }

    fn record(&mut self, step: &str, undo: &Undo, saved: Option<&[u8]>) -> Result<()> {
        self.seq += 1;
        self.journal.record(self.seq, step, undo, saved)
    }

    /// Called after each step is made: injected faults fire here.
    fn after_step(&mut self, what: &str) -> Result<()> {
        self.steps += 1;
        self.journal.log(&format!("step {}: {what}", self.steps));
        if self.faults.fail_after(self.task_kind, self.steps) {
            return Err(HostError::Injected(format!(
                "{} after step {}",
                self.task_kind, self.steps
            )));
        }
        if let Some(pause) = self.faults.pause_after(self.task_kind, self.steps) {
            self.journal.log("fault: paused");
            std::thread::sleep(pause);
        }
        Ok(())
    }

    /// Dumps a database into the task's scratch dir, for an undo that may need it.
    fn dump_to_scratch(&self, db: &DbCtl, name: &str, suffix: &str) -> Result<PathBuf> {
        crate::ensure_dir(&self.scratch)?;
        let dump = self.scratch.join(format!("{name}.{suffix}"));
        db.dump(name, &dump)?;
        // The undo of a drop: it must outlive a power cut right after the drop.
        crate::fsops::sync_file_and_dir(&dump)?;
        Ok(dump)
    }

    /// Makes a database that must not exist yet: fjord never adopts one it did not create.
    fn new_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        what: &str,
        make: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if db.database_exists(name)? || db.user_exists(user)? {
            return Err(HostError::Refused(format!(
                "database or user {name} already exists on the server and is not this site's: fjord will not touch it"
            )));
        }
        let undo = Undo::DropDatabase {
            db: db.clone(),
            name: name.into(),
            user: user.into(),
        };
        self.record(what, &undo, None)?;
        make()?;
        self.after_step(what)
    }

    /// Hands over what the task set aside, to be purged once the task is recorded as a
    /// success (see [`Trash::purge`]).
    pub fn take_trash(&mut self) -> Trash {
        Trash {
            dirs: std::mem::take(&mut self.trash),
            databases: std::mem::take(&mut self.trash_databases),
        }
    }
}

/// Directories and databases a task set aside: the old state it replaced. Kept until the
/// task has succeeded, so a crash before then leaves a full state to roll back to, and a
/// crash in the purge leaves only trash, never a half-removed site.
#[derive(Default)]
pub struct Trash {
    /// Each with the directory above it that no site's user can change.
    dirs: Vec<(PathBuf, PathBuf)>,
    databases: Vec<(DbCtl, String)>,
}

impl Trash {
    /// What a task that succeeded had set aside, read back from its journal (its
    /// dispatcher stopped before the purge): the old state its undos would have put back.
    pub fn from_journal(entries: &[(String, String, Option<Vec<u8>>)]) -> Trash {
        let mut trash = Trash::default();
        for (_, undo, _) in entries {
            match serde_json::from_str(undo) {
                Ok(Undo::SwapBack {
                    aside,
                    target_existed: true,
                    beneath,
                    ..
                }) => trash
                    .dirs
                    .push((beneath.unwrap_or_else(anchor::strict), aside)),
                Ok(Undo::ExchangeBack {
                    replacement,
                    beneath,
                    ..
                }) => trash
                    .dirs
                    .push((beneath.unwrap_or_else(anchor::strict), replacement)),
                Ok(Undo::MoveBack { from, beneath, .. }) => trash
                    .dirs
                    .push((beneath.unwrap_or_else(anchor::strict), from)),
                Ok(Undo::DropStagingDatabase { db, name }) => trash.databases.push((db, name)),
                Ok(Undo::SwapTablesBack { db, hold, .. }) => trash.databases.push((db, hold)),
                _ => {}
            }
        }
        // Only what fjord named as set aside is ever purged from a journal's say-so.
        trash.dirs.retain(|(_, d)| {
            d.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".fjord-trash."))
        });
        trash
    }

    pub fn purge(self, journal: &dyn Journal) {
        if self.dirs.is_empty() && self.databases.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        for (db, name) in &self.databases {
            if let Err(e) = db.drop_set_aside(name) {
                journal.log(&format!(
                    "could not drop the set-aside database {name}: {e}"
                ));
            }
        }
        for (anchor, dir) in &self.dirs {
            // Removed beneath its anchor, through no link: what a site left in its old
            // tree is removed, never what it points to.
            let removed = anchor::open(anchor, dir).and_then(|(root, rel)| root.remove(&rel));
            if let Err(e) = removed {
                journal.log(&format!("could not purge {}: {e}", dir.display()));
            }
        }
        journal.log(&format!(
            "purged {} set-aside directories and {} set-aside databases in {:.1} s",
            self.dirs.len(),
            self.databases.len(),
            started.elapsed().as_secs_f64()
        ));
    }
}

pub fn trash_path(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".fjord-trash.{tag}.{name}"))
}

impl Steps for LiveSteps<'_> {
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
        let what = format!("hold database user {user} to reads of {name}");
        let undo = Undo::ThawDatabaseWrites {
            db: db.clone(),
            name: name.into(),
            user: user.into(),
        };
        self.record(&what, &undo, None)?;
        let started = std::time::Instant::now();
        db.freeze_writes(name, user)?;
        self.journal.log(&format!(
            "database writes of {user} frozen and its sessions ended in {} ms",
            started.elapsed().as_millis()
        ));
        self.after_step(&what)
    }

    fn thaw_database_writes(&mut self, db: &DbCtl, name: &str, user: &str) -> Result<()> {
        let what = format!("give database user {user} its writes to {name} back");
        // Undone by nothing of its own: the undo of the freeze that came before thaws again,
        // and a rollback from here on puts back the state the freeze began with.
        self.record(&what, &Undo::Nothing, None)?;
        db.thaw_writes(name, user)?;
        self.after_step(&what)
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
        let dump = self.dump_to_scratch(from, from_name, "move")?;
        self.create_database_from(to, name, user, password, &dump)
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
        let what = format!("create database {name} from {}", dump.display());
        let journal = self.journal;
        self.new_database(db, name, user, &what, || {
            journal.log(&db.restore(name, user, password, dump)?);
            Ok(())
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
        if !db.database_exists(name)? {
            // Lost (a rollback that could not bring it back): the backup brings it back.
            let what = format!("recreate the missing database {name} from the backup");
            let undo = Undo::DropDatabase {
                db: db.clone(),
                name: name.into(),
                user: user.into(),
            };
            self.record(&what, &undo, None)?;
            // A user left without its database goes first.
            db.drop(name, user)?;
            db.restore(name, user, password, dump)?;
            return self.after_step(&what);
        }
        if db.swappable_tables(name)?.is_some() {
            let tag = crate::random_hex(4);
            let (stage, hold) = (format!("{name}_fjs{tag}"), format!("{name}_fjh{tag}"));
            let what = format!("load {} into staging database {stage}", dump.display());
            self.record(
                &what,
                &Undo::DropStagingDatabase {
                    db: db.clone(),
                    name: stage.clone(),
                },
                None,
            )?;
            self.trash_databases.push((db.clone(), stage.clone()));
            db.create_database_only(&stage)?;
            // The site's writes are frozen: the ids it handed out so far are all in the
            // backup taken before the restore, and none handed out after it may collide.
            let before = db.id_counters(name, user, password)?;
            let (note, raised) = db.with_grant_on(&stage, user, || {
                let note = db.load_backup(&stage, user, password, dump)?;
                Ok((note, db.raise_id_counters(&stage, user, password, &before)?))
            })?;
            self.journal.log(&note);
            for line in raised {
                self.journal.log(&line);
            }
            self.after_step(&what)?;
            // An empty or unswappable restore goes the slow way; the staging database is
            // dropped with the task's trash.
            if db.swappable_tables(&stage)?.is_some_and(|t| !t.is_empty()) {
                let what = format!("swap the tables of {name} for those of {stage}");
                let undo = Undo::SwapTablesBack {
                    db: db.clone(),
                    live: name.into(),
                    hold: hold.clone(),
                    stage: stage.clone(),
                };
                self.record(&what, &undo, None)?;
                self.trash_databases.push((db.clone(), hold.clone()));
                db.swap_tables(name, &hold, &stage)?;
                return self.after_step(&what);
            }
        }
        let what = format!("replace the content of database {name}");
        let before = db.id_counters(name, user, password)?;
        let old = self.dump_to_scratch(db, name, "before-restore")?;
        let undo = Undo::ReplaceDatabaseBack {
            db: db.clone(),
            name: name.into(),
            user: user.into(),
            password: password.into(),
            dump: old,
        };
        self.record(&what, &undo, None)?;
        db.drop(name, user)?;
        db.restore(name, user, password, dump)?;
        for line in db.raise_id_counters(name, user, password, &before)? {
            self.journal.log(&line);
        }
        self.after_step(&what)
    }

    fn create_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        let what = format!("create database {name} and user {user}");
        self.new_database(db, name, user, &what, || db.create(name, user, password))
    }

    fn repair_database(
        &mut self,
        db: &DbCtl,
        name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        let what = format!("check database {name}");
        if !db.database_exists(name)? {
            return Err(HostError::Refused(format!(
                "database {name} is missing on the server: restore the site from a backup"
            )));
        }
        let opens = db.can_login(name, user, password);
        if !opens || !db.grants_are_exact(name, user)? {
            self.journal.log(&if opens {
                format!(
                    "user {user} is granted more than {name}: setting its grants to {name} alone"
                )
            } else {
                format!("user {user} cannot open {name}: repairing its password and grants")
            });
            self.record(&format!("repair user {user}"), &Undo::Nothing, None)?;
            db.repair(name, user, password)?;
        }
        self.after_step(&what)
    }

    fn drop_database(&mut self, db: &DbCtl, name: &str, user: &str, password: &str) -> Result<()> {
        let what = format!("drop database {name} and user {user}");
        if db.database_exists(name)? {
            let dump = self.dump_to_scratch(db, name, "dump")?;
            let undo = Undo::RestoreDatabase {
                db: db.clone(),
                name: name.into(),
                user: user.into(),
                password: password.into(),
                dump,
            };
            self.record(&what, &undo, None)?;
        }
        db.drop(name, user)?;
        self.after_step(&what)
    }

    fn check_db_admin(&mut self, db: &DbCtl) -> Result<()> {
        db.check_admin()?;
        self.journal.log(&format!(
            "{:?} administrator can create and drop databases",
            db.kind
        ));
        if db.open_to_every_local_user()? {
            self.journal.log(&format!(
                "warning: any local user can sign in to this {:?} server as {} without a password, \
                 so any site's code can read and change every site's database: give the \
                 administrator a password or socket-only authentication",
                db.kind, db.admin_user
            ));
        }
        Ok(())
    }

    fn log(&mut self, line: &str) {
        self.journal.log(line);
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
        let what = format!("snapshot database {name} before it is changed in place");
        let dump = self.dump_to_scratch(db, name, "before-change.dump")?;
        let undo = Undo::ReplaceDatabaseBack {
            db: db.clone(),
            name: name.into(),
            user: user.into(),
            password: password.into(),
            dump,
        };
        self.record(&what, &undo, None)?;
        self.after_step(&what)
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
        self.commit_config("nginx", changes, undo, &|c| committer.submit(c))
    }

    fn php_fpm(&mut self, ctl: &PhpFpmCtl, changes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<()> {
        let undo = Undo::ReloadPhpFpm { ctl: ctl.clone() };
        let committer = self.committers.php_fpm.committer(ctl);
        self.commit_config("php-fpm", changes, undo, &|c| committer.submit(c))
    }
}

impl LiveSteps<'_> {
    /// Journals each config file's old content, then the reload, then hands the changes to
    /// the daemon's committer and waits (its concurrency slot given back) until they are live.
    fn commit_config(
        &mut self,
        daemon: &str,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
        reload_undo: Undo,
        submit: &dyn Fn(Vec<FileChange>) -> Result<()>,
    ) -> Result<()> {
        let what = format!(
            "{daemon}: {} and reload",
            changes
                .iter()
                .map(|(p, c)| format!(
                    "{} {}",
                    if c.is_some() { "write" } else { "remove" },
                    p.display()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut file_changes = Vec::new();
        for (path, contents) in changes {
            let old = fsops::read_existing(&path)?;
            let undo = Undo::RestoreFile {
                path: path.clone(),
                existed: old.is_some(),
                mode: old.as_ref().map_or(0, |(_, m)| *m),
                beneath: Some(anchor::anchor_of(&path)),
            };
            self.record(
                &format!("{daemon} config {}", path.display()),
                &undo,
                old.as_ref().map(|(c, _)| c.as_slice()),
            )?;
            file_changes.push(FileChange {
                path,
                contents,
                old,
            });
        }
        self.record(&format!("{daemon} reload"), &reload_undo, None)?;
        if let Some(p) = &self.parking {
            p.park();
        }
        let result = submit(file_changes);
        if let Some(p) = &self.parking {
            p.unpark();
        }
        result?;
        self.after_step(&what)
    }
}
