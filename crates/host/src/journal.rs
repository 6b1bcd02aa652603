use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::anchor;
use crate::beneath::Root;
use crate::commit::{Committers, Reloadable};
use crate::db::DbCtl;
use crate::fsops::ModeEntry;
use crate::nginx::NginxCtl;
use crate::php_fpm::PhpFpmCtl;
use crate::{HostError, Result};

/// How to undo one step. Every undo is idempotent: recovery after a crash cannot know whether
/// the step it undoes was made, half made or not made at all, so each undo brings the host to
/// the recorded old state from any of those.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "kebab-case")]
pub enum Undo {
    /// Put the saved content (in the entry's `saved`) back, or remove the file if it did not
    /// exist.
    RestoreFile {
        path: PathBuf,
        existed: bool,
        mode: u32,
        /// The directory the step found `path` under that no site's user could change
        /// (see `anchor`): the undo reaches `path` beneath it, through no link. Absent in
        /// entries an older fjord wrote: they are reached from `/` through no link at all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beneath: Option<PathBuf>,
    },
    /// Remove a directory the step created, if it is empty.
    RemoveDir {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beneath: Option<PathBuf>,
    },
    /// Move a directory set aside by a removal back into place.
    MoveBack {
        from: PathBuf,
        to: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beneath: Option<PathBuf>,
    },
    RestoreModes {
        entries: Vec<ModeEntry>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beneath: Option<PathBuf>,
    },
    /// Test and reload nginx after every other undo of the task has been made.
    ReloadNginx { ctl: NginxCtl },
    /// Remove a user (and its group) the step created.
    RemoveUser { name: String },
    /// Make a removed user again, with the ids it had.
    RecreateUser {
        user: crate::users::SystemUser,
        home: PathBuf,
    },
    /// Test and reload php-fpm after every other undo of the task has been made.
    ReloadPhpFpm { ctl: PhpFpmCtl },
    /// Drop a database and user the step created.
    DropDatabase {
        db: DbCtl,
        name: String,
        user: String,
    },
    /// Recreate a dropped database from the dump taken just before the drop.
    RestoreDatabase {
        db: DbCtl,
        name: String,
        user: String,
        password: String,
        dump: PathBuf,
    },
    /// Remove a directory tree the step created whole (a staging directory).
    RemoveTree {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beneath: Option<PathBuf>,
    },
    /// Put back the directory that a swap set aside (or, if there was none, take the
    /// replacement away again).
    SwapBack {
        target: PathBuf,
        replacement: PathBuf,
        aside: PathBuf,
        target_existed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beneath: Option<PathBuf>,
    },
    /// Exchange a tree and its replacement back (one atomic exchange), if the exchange was
    /// made: the target then is the replacement's tree, known by its device and inode.
    ExchangeBack {
        target: PathBuf,
        replacement: PathBuf,
        staged: (u64, u64),
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beneath: Option<PathBuf>,
    },
    /// Put a replaced database back from the dump taken before it was replaced.
    ReplaceDatabaseBack {
        db: DbCtl,
        name: String,
        user: String,
        password: String,
        dump: PathBuf,
    },
    /// Drop a staging database the step created (it never held anything the site served).
    DropStagingDatabase { db: DbCtl, name: String },
    /// Put the site's old tables back from the holding database, if the swap was made.
    SwapTablesBack {
        db: DbCtl,
        live: String,
        hold: String,
        stage: String,
    },
    /// Put the site's old database back in its place from `hold`, if the rename was made,
    /// and let connections in again (PostgreSQL).
    SwapDatabasesBack {
        db: DbCtl,
        live: String,
        hold: String,
        stage: String,
    },
    /// Give the site's database user its writes back.
    ThawDatabaseWrites {
        db: DbCtl,
        name: String,
        user: String,
    },
    /// Remove a backup's copy from a backup target, over SSH with fjord's key in `keys`: made
    /// from the machine fjord runs on, whichever machine the backup was taken on.
    RemoveTargetCopy {
        target: crate::remote::targets::TargetAddress,
        keys: PathBuf,
        path: String,
    },
    /// The step needs no undo (it only repairs towards the recorded state).
    Nothing,
}

/// Where a task's journal and log go: the state database, in practice.
pub trait Journal: Send + Sync {
    fn record(&self, seq: i64, step: &str, undo: &Undo, saved: Option<&[u8]>) -> Result<()>;
    /// Records several entries, all or none (a config commit's files and its reload: one
    /// write of the state, not one per entry).
    fn record_all(&self, entries: &[JournalRecord<'_>]) -> Result<()> {
        for e in entries {
            self.record(e.seq, &e.step, e.undo, e.saved)?;
        }
        Ok(())
    }
    fn log(&self, line: &str);
    /// Called after each step is made, wherever it was made: the task's steps are numbered
    /// in its log, and a fault injected after this one fires here (an `Err` fails the task as
    /// the step's own failure would).
    fn step_made(&self, what: &str) -> Result<()> {
        self.log(what);
        Ok(())
    }
    /// Whether a step made on another machine must wait for [`Journal::step_made`]'s
    /// verdict (a fault may fire after it); else it is told in passing, saving the link a
    /// round trip a step.
    fn wants_verdicts(&self) -> bool {
        true
    }
}

/// Numbers a task's steps and journal entries, and fires the faults injected after its steps
/// (`FJORD_FAULTS`): one per task, whichever machines its steps are made on.
pub struct StepCounter<'a> {
    faults: &'a crate::Faults,
    task_kind: &'a str,
    made: std::sync::atomic::AtomicU32,
    entries: std::sync::atomic::AtomicI64,
}

impl<'a> StepCounter<'a> {
    pub fn new(faults: &'a crate::Faults, task_kind: &'a str) -> StepCounter<'a> {
        StepCounter {
            faults,
            task_kind,
            made: Default::default(),
            entries: Default::default(),
        }
    }

    /// Whether a fault may fire after one of the task's steps.
    pub fn may_fault(&self) -> bool {
        self.faults.acts_after_steps_of(self.task_kind)
    }

    /// The number of the task's next journal entry, from 1.
    pub fn next_entry(&self) -> i64 {
        self.entries
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    /// Counts a step made, logs it through `log`, and fails or pauses where a fault says.
    pub fn step_made(&self, what: &str, log: &dyn Fn(&str)) -> Result<()> {
        let n = self.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        log(&format!("step {n}: {what}"));
        if self.faults.fail_after(self.task_kind, n) {
            return Err(HostError::Injected(format!(
                "{} after step {n}",
                self.task_kind
            )));
        }
        if let Some(pause) = self.faults.pause_after(self.task_kind, n) {
            log("fault: paused");
            std::thread::sleep(pause);
        }
        Ok(())
    }
}

/// One entry of [`Journal::record_all`].
pub struct JournalRecord<'a> {
    pub seq: i64,
    pub step: String,
    pub undo: &'a Undo,
    pub saved: Option<&'a [u8]>,
}

/// Undoes journal entries (given oldest first) in reverse order, then reloads each nginx whose
/// config was touched, once. Continues past a failing undo so that as much as possible is put
/// back, and reports every failure.
pub fn rollback(
    entries: &[(String, String, Option<Vec<u8>>)],
    committers: &Committers,
    log: &dyn Fn(&str),
) -> Result<()> {
    let mut reloads: BTreeMap<PathBuf, NginxCtl> = BTreeMap::new();
    let mut php_reloads: BTreeMap<PathBuf, PhpFpmCtl> = BTreeMap::new();
    let mut failures = Vec::new();
    // Once an undo finds its data gone, nothing more is destroyed: the undos that only put
    // things back still run, those that remove something are skipped and listed.
    let mut lost: Option<String> = None;
    let mut kept = Vec::new();
    // A daemon serves what it read at its last reload: when the rollback puts no file back
    // (the task's commit changed nothing, or put its own changes back when the daemon refused
    // them), reloading would only cut idle connections and restart every pool's children.
    let mut config_put_back = false;
    for (step, undo_json, saved) in entries.iter().rev() {
        let undo: Undo = match serde_json::from_str(undo_json) {
            Ok(u) => u,
            Err(e) => {
                failures.push(format!("unreadable undo of {step:?}: {e}"));
                continue;
            }
        };
        if lost.is_some() && undo.removes_anything() {
            log(&format!("kept as it is (not undone): {step}"));
            kept.push(step.clone());
            continue;
        }
        let result = match undo {
            Undo::ReloadNginx { ctl } => {
                reloads.insert(ctl.config_dir.clone(), ctl);
                Ok(())
            }
            Undo::ReloadPhpFpm { ctl } => {
                php_reloads.insert(ctl.config_dir.clone(), ctl);
                Ok(())
            }
            other => {
                log(&format!("undo: {step}"));
                config_put_back |= puts_a_file_back(&other, saved.as_deref());
                apply(&other, saved.as_deref())
            }
        };
        match result {
            Err(HostError::UndoDataLost(why)) => {
                log(&format!(
                    "undo of {step:?} impossible: {why}; nothing more is removed"
                ));
                lost.get_or_insert(format!("{step}: {why}"));
            }
            Err(e) => {
                log(&format!("undo of {step:?} failed: {e}"));
                failures.push(format!("{step}: {e}"));
            }
            Ok(()) => {}
        }
    }
    let owed = |pending: PathBuf| config_put_back || pending.exists();
    reloads.retain(|_, ctl| owed(ctl.reload_pending_file()));
    php_reloads.retain(|_, ctl| owed(ctl.reload_pending_file()));
    for ctl in reloads.into_values() {
        log(&format!(
            "undo: reload nginx ({})",
            ctl.config_dir.display()
        ));
        if let Err(e) = committers.nginx.committer(&ctl).submit(Vec::new()) {
            log(&format!("reload after rollback failed: {e}"));
            failures.push(format!("nginx reload: {e}"));
        }
    }
    for ctl in php_reloads.into_values() {
        log(&format!("undo: reload php-fpm ({})", ctl.key().display()));
        if let Err(e) = committers.php_fpm.committer(&ctl).submit(Vec::new()) {
            log(&format!("php-fpm reload after rollback failed: {e}"));
            failures.push(format!("php-fpm reload: {e}"));
        }
    }
    if let Some(lost) = lost {
        let mut message = format!(
            "needs attention: the rollback could not undo {lost}; it stopped removing anything"
        );
        if !kept.is_empty() {
            message.push_str(&format!(" and kept: {}", kept.join("; ")));
        }
        if !failures.is_empty() {
            message.push_str(&format!("; other undos failed: {}", failures.join("; ")));
        }
        return Err(HostError::UndoDataLost(message));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(HostError::Journal(format!(
            "rollback incomplete: {}",
            failures.join("; ")
        )))
    }
}

/// Whether undoing this puts a file back that differs from what is there now (a config file a
/// daemon must reload to serve). Unsure counts as yes.
fn puts_a_file_back(undo: &Undo, saved: Option<&[u8]>) -> bool {
    let Undo::RestoreFile {
        path,
        existed,
        mode,
        ..
    } = undo
    else {
        return false;
    };
    match (crate::fsops::read_existing(path), existed) {
        (Ok(Some((content, found_mode))), true) => {
            Some(content.as_slice()) != saved || found_mode != *mode
        }
        (Ok(None), false) => false,
        _ => true,
    }
}

impl Undo {
    /// Whether undoing removes something (a file, a tree, a database) rather than only
    /// putting something back.
    fn removes_anything(&self) -> bool {
        match self {
            Undo::RestoreFile { existed, .. } => !existed,
            Undo::RemoveDir { .. }
            | Undo::RemoveTree { .. }
            | Undo::DropDatabase { .. }
            | Undo::DropStagingDatabase { .. }
            | Undo::RemoveUser { .. }
            | Undo::ReplaceDatabaseBack { .. }
            | Undo::SwapBack { .. }
            | Undo::RemoveTargetCopy { .. } => true,
            Undo::MoveBack { .. }
            | Undo::RestoreModes { .. }
            | Undo::ReloadNginx { .. }
            | Undo::ReloadPhpFpm { .. }
            | Undo::RecreateUser { .. }
            | Undo::RestoreDatabase { .. }
            | Undo::SwapTablesBack { .. }
            | Undo::SwapDatabasesBack { .. }
            | Undo::ExchangeBack { .. }
            | Undo::ThawDatabaseWrites { .. }
            | Undo::Nothing => false,
        }
    }
}

fn saved_data(path: &std::path::Path, what: &str) -> Result<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(HostError::UndoDataLost(format!(
            "{} ({what}) is gone",
            path.display()
        )))
    }
}

/// The most of a file an undo puts back or a step saves for its undo: config files, far
/// smaller.
pub(crate) const SAVED_FILE_MAX: u64 = 16 << 20;

/// Opens the directory an undo's paths were recorded under (`/` for an entry recorded
/// without one) and gives the paths relative to it.
fn beneath(recorded: &Option<PathBuf>, paths: &[&Path]) -> Result<(Root, Vec<PathBuf>)> {
    anchor::open_all(recorded.as_deref().unwrap_or(&anchor::strict()), paths)
}

fn apply(undo: &Undo, saved: Option<&[u8]>) -> Result<()> {
    match undo {
        Undo::RestoreFile {
            path,
            existed: true,
            mode,
            beneath: anchored,
        } => {
            let content =
                saved.ok_or_else(|| HostError::Journal("saved content missing".into()))?;
            let (root, rel) = beneath(anchored, &[path])?;
            let rel = &rel[0];
            if root
                .read_file(rel, SAVED_FILE_MAX)?
                .as_ref()
                .map(|(c, m)| (c.as_slice(), *m))
                != Some((content, *mode))
            {
                root.replace_file_as(rel, *mode, None, &mut &content[..])?;
            }
            Ok(())
        }
        Undo::RestoreFile {
            path,
            existed: false,
            beneath: anchored,
            ..
        } => {
            let (root, rel) = beneath(anchored, &[path])?;
            root.remove_file(&rel[0])
        }
        Undo::RemoveDir {
            path,
            beneath: anchored,
        } => {
            let (root, rel) = beneath(anchored, &[path])?;
            root.remove_empty_dir(&rel[0])
        }
        Undo::MoveBack {
            from,
            to,
            beneath: anchored,
        } => {
            let (root, rel) = beneath(anchored, &[from, to])?;
            if root.stat(&rel[1])?.is_none() {
                if root.stat(&rel[0])?.is_none() {
                    saved_data(from, "what the step set aside")?;
                }
                root.rename(&rel[0], &rel[1])?;
            }
            Ok(())
        }
        Undo::RestoreModes {
            entries,
            beneath: anchored,
        } => {
            let paths: Vec<&Path> = entries.iter().map(|e| e.path.as_path()).collect();
            let (root, rels) = beneath(anchored, &paths)?;
            for (e, rel) in entries.iter().zip(&rels) {
                root.set_mode_owner_of(rel, e.mode, Some((e.uid, e.gid)), e.inode)?;
            }
            Ok(())
        }
        Undo::DropDatabase { db, name, user } => db.drop(name, user),
        Undo::RestoreDatabase {
            db,
            name,
            user,
            password,
            dump,
        } => {
            if db.database_exists(name)? {
                return Ok(());
            }
            // Without its dump, a database would come back empty: nothing is made up.
            saved_data(dump, "the dump taken before the database was dropped")?;
            // A user left without its database (a crash between the two drops) goes first.
            db.drop(name, user)?;
            db.restore(name, user, password, dump).map(|_| ())
        }
        Undo::RemoveTree {
            path,
            beneath: anchored,
        } => {
            let (root, rel) = beneath(anchored, &[path])?;
            root.remove(&rel[0])
        }
        Undo::SwapBack {
            target,
            replacement,
            aside,
            target_existed,
            beneath: anchored,
        } => {
            let (root, rel) = beneath(anchored, &[target, replacement, aside])?;
            let (target, replacement, aside) = (&rel[0], &rel[1], &rel[2]);
            if *target_existed && root.stat(aside)?.is_none() {
                // The swap never began: the target is still the original.
                return Ok(());
            }
            if root.stat(target)?.is_some() {
                if root.stat(replacement)?.is_some() {
                    root.remove(target)?;
                } else {
                    root.rename(target, replacement)?;
                }
            }
            if *target_existed {
                root.rename(aside, target)?;
            }
            Ok(())
        }
        Undo::ExchangeBack {
            target,
            replacement,
            staged,
            beneath: anchored,
        } => {
            let (root, rel) = beneath(anchored, &[target, replacement])?;
            // Exchanged only if the target is the staged tree: undoing twice, or undoing an
            // exchange that was never made, changes nothing.
            match root.stat(&rel[0])? {
                Some(now) if crate::beneath::identity(&now) == *staged => {
                    root.exchange(&rel[0], &rel[1])
                }
                _ => Ok(()),
            }
        }
        Undo::ReplaceDatabaseBack {
            db,
            name,
            user,
            password,
            dump,
        } => {
            saved_data(dump, "the dump taken before the database was replaced")?;
            db.drop(name, user)?;
            db.restore(name, user, password, dump).map(|_| ())
        }
        Undo::DropStagingDatabase { db, name } => db.drop_database_only(name),
        Undo::SwapTablesBack {
            db,
            live,
            hold,
            stage,
        } => db.swap_tables_back(live, hold, stage),
        Undo::SwapDatabasesBack {
            db,
            live,
            hold,
            stage,
        } => db.swap_databases_back(live, hold, stage),
        Undo::ThawDatabaseWrites { db, name, user } => db.thaw_writes(name, user),
        Undo::RemoveUser { name } => crate::users::remove(name),
        Undo::RecreateUser { user, home } => {
            if crate::users::lookup(&user.name).is_some() {
                return Ok(());
            }
            crate::users::create(&user.name, home, Some((user.uid, user.gid))).map(|_| ())
        }
        Undo::RemoveTargetCopy { target, keys, path } => crate::remote::targets::remove_copy(
            &crate::remote::SshKeys::new(keys.clone()),
            target,
            path,
        ),
        Undo::ReloadNginx { .. } | Undo::ReloadPhpFpm { .. } | Undo::Nothing => Ok(()),
    }
}
