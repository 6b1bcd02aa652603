//! Config commits: the nginx and php-fpm steps journal each config file's old content and
//! the reload, then hand the changes to the daemon's committer.

use std::path::PathBuf;

use super::LiveSteps;
use crate::Result;
use crate::commit::{Committer, FileChange, Reloadable};
use crate::fsops;
use crate::journal::{JournalRecord, Undo};

impl LiveSteps<'_> {
    /// Journals each config file's old content, then the reload, then hands the changes to
    /// the daemon's committer and waits (its concurrency slot given back) until they are live.
    /// Changes that are already live are a step that journals and waits for nothing.
    pub(super) fn commit_config<S: Reloadable>(
        &mut self,
        daemon: &str,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
        reload_undo: Undo,
        committer: &Committer<S>,
    ) -> Result<()> {
        if committer.already_live(&changes) {
            return self.after_step(&unchanged(daemon, &changes));
        }
        let (what, file_changes) = self.journal_config(daemon, changes, reload_undo)?;
        if let Some(p) = &self.parking {
            p.park();
        }
        let result = committer.submit(file_changes);
        if let Some(p) = &self.parking {
            p.unpark();
        }
        let times = result?;
        self.after_step(&what)?;
        if !times.is_empty() {
            self.journal.log(&format!("{daemon}: {times}"));
        }
        Ok(())
    }

    /// [`LiveSteps::commit_config`] made on another thread while `beside` runs its steps on
    /// this one; returns once both are done, with the first failure. The reload waits for
    /// the daemon; `beside` (an installer run from the command line) needs nothing it
    /// changes, so neither waits for the other.
    pub(super) fn commit_config_beside<S: Reloadable>(
        &mut self,
        daemon: &str,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
        reload_undo: Undo,
        committer: &Committer<S>,
        beside: &mut dyn FnMut(&mut dyn super::Steps) -> Result<()>,
    ) -> Result<()> {
        if committer.already_live(&changes) {
            beside(self)?;
            return self.after_step(&unchanged(daemon, &changes));
        }
        let (what, file_changes) = self.journal_config(daemon, changes, reload_undo)?;
        let (committed, done_beside) = std::thread::scope(|scope| {
            let commit = scope.spawn(|| committer.submit(file_changes));
            let done_beside = beside(self);
            // A rollback starts only once the commit is over: it puts the same files back.
            let committed = commit.join().unwrap_or_else(|_| {
                Err(crate::HostError::Refused(format!(
                    "the {daemon} commit thread panicked"
                )))
            });
            (committed, done_beside)
        });
        done_beside?;
        let times = committed?;
        self.after_step(&what)?;
        if !times.is_empty() {
            self.journal.log(&format!("{daemon}: {times}"));
        }
        Ok(())
    }

    /// Journals each config file's old content and then the reload, before anything changes.
    /// (The step's name is [`step_name`]'s.)
    fn journal_config(
        &mut self,
        daemon: &str,
        changes: Vec<(PathBuf, Option<Vec<u8>>)>,
        reload_undo: Undo,
    ) -> Result<(String, Vec<FileChange>)> {
        let what = step_name(daemon, &changes);
        let mut file_changes = Vec::new();
        let mut undos = Vec::new();
        let mut dirs = fsops::Anchored::default();
        for (path, contents) in changes {
            let old = dirs.read_existing(&path)?;
            let beneath = dirs.open(&path)?.2.to_path_buf();
            undos.push((
                format!("{daemon} config {}", path.display()),
                Undo::RestoreFile {
                    path: path.clone(),
                    existed: old.is_some(),
                    mode: old.as_ref().map_or(0, |(_, m)| *m),
                    beneath: Some(beneath),
                },
            ));
            file_changes.push(FileChange {
                path,
                contents,
                old,
            });
        }
        undos.push((format!("{daemon} reload"), reload_undo));
        let first = self.seq + 1;
        let records: Vec<JournalRecord> = undos
            .iter()
            .enumerate()
            .map(|(i, (step, undo))| JournalRecord {
                seq: first + i as i64,
                step: step.clone(),
                undo,
                saved: file_changes
                    .get(i)
                    .and_then(|c| c.old.as_ref())
                    .map(|(c, _)| c.as_slice()),
            })
            .collect();
        self.record_all(&records)?;
        Ok((what, file_changes))
    }
}

/// A config commit's step, as its log names it.
fn step_name(daemon: &str, changes: &[(PathBuf, Option<Vec<u8>>)]) -> String {
    format!(
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
    )
}

/// The same step when its changes are already live (counted as a step all the same, so
/// that a fault injected after step N meets the same step whether or not it changed).
fn unchanged(daemon: &str, changes: &[(PathBuf, Option<Vec<u8>>)]) -> String {
    let files: Vec<String> = changes
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    format!("{daemon}: unchanged, already live: {}", files.join(", "))
}
