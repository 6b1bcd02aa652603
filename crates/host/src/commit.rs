//! Group commit of config changes to a daemon that is tested and reloaded as a whole (nginx,
//! php-fpm): while one batch is being tested and reloaded, new changes queue up, and the next
//! batch takes them all. A thousand tasks finishing together cost a handful of reloads, not a
//! thousand. A change the daemon's config test names is put back and its task fails with the
//! daemon's message; only a config that passes is reloaded, and a reload counts only once it
//! is live.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::fsops;
use crate::{FileLock, HostError, Result};

/// A daemon whose whole config can be tested, then reloaded.
pub trait Reloadable: Clone + Send + Sync + 'static {
    /// Tests the whole config: `Err` carries the daemon's own message, which names the file
    /// at fault.
    fn test(&self) -> Result<()>;
    /// Reloads, and returns once the new config is live.
    fn reload_and_confirm(&self) -> Result<()>;
    /// Serializes committers of several processes.
    fn lock_file(&self) -> PathBuf;
    /// Tells instances apart.
    fn key(&self) -> PathBuf;
    /// The directories whose files only committers (holding the lock) write: a temporary
    /// file a killed writer left there is removed by the next commit.
    fn committed_dirs(&self) -> Vec<PathBuf>;
}

/// One change to a file of a daemon's config: `contents: None` removes it. `old` is the content
/// found before, so a rejected change can be put back.
#[derive(Debug, Clone)]
pub struct FileChange {
    pub path: PathBuf,
    pub contents: Option<Vec<u8>>,
    pub old: Option<(Vec<u8>, u32)>,
}

impl FileChange {
    fn apply(&self) -> Result<()> {
        match &self.contents {
            Some(c) => fsops::write_atomic(&self.path, c, 0o644),
            None => fsops::remove_file(&self.path),
        }
    }

    fn revert(&self) -> Result<()> {
        match &self.old {
            Some((c, mode)) => fsops::write_atomic(&self.path, c, *mode),
            None => fsops::remove_file(&self.path),
        }
    }
}

struct Request {
    id: u64,
    changes: Vec<FileChange>,
}

#[derive(Default)]
struct State {
    pending: Vec<Request>,
    leader_active: bool,
    results: HashMap<u64, std::result::Result<(), String>>,
    next_id: u64,
}

/// The group-commit point of one daemon instance, shared by every task in this process.
/// Dispatchers in other processes serialize with it through a lock file.
pub struct Committer<S> {
    ctl: S,
    state: Mutex<State>,
    done: Condvar,
    reloads: AtomicU64,
}

impl<S: Reloadable> Committer<S> {
    pub fn new(ctl: S) -> Committer<S> {
        Committer {
            ctl,
            state: Mutex::default(),
            done: Condvar::new(),
            reloads: AtomicU64::new(0),
        }
    }

    /// How many reloads this committer has made.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Applies `changes`, tests, reloads and confirms; returns once the changes are live, or
    /// with the reason they were refused (in which case they have been put back). An empty
    /// list asks for a tested reload only.
    pub fn submit(&self, changes: Vec<FileChange>) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let id = state.next_id;
        state.next_id += 1;
        state.pending.push(Request { id, changes });
        loop {
            if let Some(result) = state.results.remove(&id) {
                return result.map_err(HostError::Commit);
            }
            if !state.leader_active {
                state.leader_active = true;
                let batch = std::mem::take(&mut state.pending);
                drop(state);
                let results = self.commit_batch(batch);
                state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.results.extend(results);
                state.leader_active = false;
                self.done.notify_all();
                continue;
            }
            state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn commit_batch(&self, batch: Vec<Request>) -> Vec<(u64, std::result::Result<(), String>)> {
        let mut results = Vec::new();
        let _lock = match FileLock::acquire(&self.ctl.lock_file()) {
            Ok(l) => l,
            Err(e) => return batch.iter().map(|r| (r.id, Err(e.to_string()))).collect(),
        };
        // Holding the lock, no live writer has a temporary file here: any is a dead one's.
        for dir in self.ctl.committed_dirs() {
            fsops::remove_stale_temporaries(&dir);
        }
        let mut live = Vec::new();
        for req in batch {
            match req.changes.iter().try_for_each(FileChange::apply) {
                Ok(()) => live.push(req),
                Err(e) => {
                    revert_all(&req);
                    results.push((req.id, Err(e.to_string())));
                }
            }
        }
        // Test the whole config; put back every change the daemon names in its error, and test
        // again, until the config passes or nothing of this batch is left.
        loop {
            if live.is_empty() {
                return results;
            }
            let message = match self.ctl.test() {
                Ok(()) => break,
                Err(e) => e.to_string(),
            };
            let (culprits, innocent): (Vec<_>, Vec<_>) = live.into_iter().partition(|req| {
                req.changes
                    .iter()
                    .any(|c| message.contains(&*c.path.to_string_lossy()))
            });
            if culprits.is_empty() {
                // The error is in a file none of these changes touched: the config was broken
                // before this batch. Nothing is reloaded until an operator fixes it.
                for req in &innocent {
                    revert_all(req);
                }
                let msg = format!("{message} (the error is outside the files this task changed)");
                results.extend(innocent.iter().map(|r| (r.id, Err(msg.clone()))));
                return results;
            }
            for req in &culprits {
                revert_all(req);
            }
            results.extend(culprits.iter().map(|r| (r.id, Err(message.clone()))));
            live = innocent;
        }
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let outcome = self.ctl.reload_and_confirm().map_err(|e| e.to_string());
        results.extend(live.iter().map(|r| (r.id, outcome.clone())));
        results
    }
}

fn revert_all(req: &Request) {
    for change in req.changes.iter().rev() {
        // A failed revert leaves the file as the task's journal undo will find it, and that
        // undo runs again when the task fails.
        let _ = change.revert();
    }
}

/// The committers of this process, one per daemon instance.
pub struct Registry<S> {
    map: Mutex<HashMap<PathBuf, Arc<Committer<S>>>>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Registry {
            map: Mutex::default(),
        }
    }
}

impl<S: Reloadable> Registry<S> {
    pub fn committer(&self, ctl: &S) -> Arc<Committer<S>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(ctl.key())
            .or_insert_with(|| Arc::new(Committer::new(ctl.clone())))
            .clone()
    }

    pub fn total_reloads(&self) -> u64 {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|c| c.reloads())
            .sum()
    }
}

/// The committers of every daemon a dispatcher drives.
#[derive(Default)]
pub struct Committers {
    pub nginx: Registry<crate::NginxCtl>,
    pub php_fpm: Registry<crate::PhpFpmCtl>,
}
