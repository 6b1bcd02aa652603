//! What a task set aside ([`Trash`]), purged once the task has succeeded.

use std::path::{Path, PathBuf};

use crate::anchor;
use crate::db::DbCtl;
use crate::journal::{Journal, Undo};

/// Directories and databases a task set aside: the old state it replaced. Kept until the
/// task has succeeded, so a crash before then leaves a full state to roll back to, and a
/// crash in the purge leaves only trash, never a half-removed site.
#[derive(Default)]
pub struct Trash {
    /// Each with the directory above it that no site's user can change.
    pub(super) dirs: Vec<(PathBuf, PathBuf)>,
    pub(super) databases: Vec<(DbCtl, String)>,
    /// Whether the task journaled any step (else its journal is empty and needs no clearing).
    pub(super) journaled: bool,
}

impl Trash {
    /// Whether the task journaled any step, so that its journal has entries to clear.
    pub fn journaled(&self) -> bool {
        self.journaled
    }

    /// What a task that succeeded had set aside, read back from its journal (its
    /// dispatcher stopped before the purge): the old state its undos would have put back.
    pub fn from_journal(entries: &[(String, String, Option<Vec<u8>>)]) -> Trash {
        let mut trash = Trash {
            journaled: !entries.is_empty(),
            ..Trash::default()
        };
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
                Ok(Undo::SwapTablesBack { db, hold, .. })
                | Ok(Undo::SwapDatabasesBack { db, hold, .. }) => trash.databases.push((db, hold)),
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
