//! Group commit of config changes to a daemon that is tested and reloaded as a whole (nginx,
//! php-fpm): while one batch is being tested and reloaded, new changes queue up, and the next
//! batch takes them all. A thousand tasks finishing together cost a handful of reloads, not a
//! thousand. A change the daemon's config test names is put back and its task fails with the
//! daemon's message; only a config that passes is reloaded, and a reload counts only once it
//! is live.
//!
//! A batch that changes nothing on disk (every file already holds what it would be written
//! with, and nothing it removes exists) is neither tested nor reloaded: a reload is never
//! free (it ends every idle keepalive connection, and php-fpm waits on every running request
//! before it serves again). What is on disk is what is live all the same: a marker file is
//! written before a batch changes a file and removed only once a reload of it is live, so a
//! batch that finds it (a committer died or a reload failed between the write and the reload)
//! reloads whatever it brings.

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
    /// Present while files on disk may differ from the live config (see the module's note).
    fn reload_pending_file(&self) -> PathBuf {
        self.lock_file().with_file_name(".reload-pending")
    }
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

    /// Whether the file already is what this change makes it: the same bytes and mode, or
    /// absent when it is to be removed. Read under the committer's lock.
    fn already_on_disk(&self) -> bool {
        match (fsops::read_existing(&self.path), &self.contents) {
            (Ok(Some((found, mode))), Some(wanted)) => found == *wanted && mode & 0o7777 == 0o644,
            (Ok(None), None) => true,
            _ => false,
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
    /// with the reason they were refused (in which case they have been put back). Changes
    /// that leave every file as it is return at once, unless an earlier commit's reload is
    /// still owed. An empty list asks for a tested reload (a rollback's, after it put files
    /// back itself).
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
        let forced = batch.iter().any(|r| r.changes.is_empty());
        // What is already on disk is not written again (its old content is what it is).
        let batch: Vec<Request> = batch
            .into_iter()
            .map(|r| Request {
                id: r.id,
                changes: r
                    .changes
                    .into_iter()
                    .filter(|c| !c.already_on_disk())
                    .collect(),
            })
            .collect();
        let pending = self.ctl.reload_pending_file();
        if batch.iter().any(|r| !r.changes.is_empty()) {
            // Before the first file changes: from here until a reload is live, disk and
            // daemon may differ.
            if let Err(e) = fsops::write_atomic(&pending, b"", 0o644) {
                return batch.iter().map(|r| (r.id, Err(e.to_string()))).collect();
            }
        } else if !forced && !pending.exists() {
            return batch.iter().map(|r| (r.id, Ok(()))).collect();
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
        if outcome.is_ok() {
            // A failed removal only costs the next batch a reload.
            let _ = fsops::remove_file(&pending);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A daemon that counts its tests and reloads; a reload fails while `fail_reload` is set.
    #[derive(Clone)]
    struct Counting {
        dir: PathBuf,
        tests: Arc<AtomicU64>,
        reloads: Arc<AtomicU64>,
        fail_reload: Arc<AtomicBool>,
    }

    impl Counting {
        fn new(dir: &std::path::Path) -> Counting {
            Counting {
                dir: dir.to_path_buf(),
                tests: Arc::default(),
                reloads: Arc::default(),
                fail_reload: Arc::default(),
            }
        }

        fn counts(&self) -> (u64, u64) {
            (
                self.tests.load(Ordering::SeqCst),
                self.reloads.load(Ordering::SeqCst),
            )
        }
    }

    impl Reloadable for Counting {
        fn test(&self) -> Result<()> {
            self.tests.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn reload_and_confirm(&self) -> Result<()> {
            self.reloads.fetch_add(1, Ordering::SeqCst);
            if self.fail_reload.load(Ordering::SeqCst) {
                return Err(HostError::Nginx("reload failed".into()));
            }
            Ok(())
        }
        fn lock_file(&self) -> PathBuf {
            self.dir.join(".lock")
        }
        fn key(&self) -> PathBuf {
            self.dir.clone()
        }
        fn committed_dirs(&self) -> Vec<PathBuf> {
            vec![self.dir.clone()]
        }
    }

    /// A change as a task submits it: the old content read just before.
    fn change(path: &std::path::Path, contents: Option<&str>) -> FileChange {
        FileChange {
            path: path.to_path_buf(),
            contents: contents.map(|c| c.as_bytes().to_vec()),
            old: fsops::read_existing(path).unwrap(),
        }
    }

    #[test]
    fn a_batch_that_leaves_every_file_as_it_is_is_neither_tested_nor_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Counting::new(dir.path());
        let committer = Committer::new(daemon.clone());
        let vhost = dir.path().join("site.conf");
        committer
            .submit(vec![change(&vhost, Some("server {}\n"))])
            .unwrap();
        assert_eq!(daemon.counts(), (1, 1));
        // A verify that renders the same file, and removes one that is not there.
        let gone = dir.path().join("gone.conf");
        for _ in 0..4 {
            committer
                .submit(vec![
                    change(&vhost, Some("server {}\n")),
                    change(&gone, None),
                ])
                .unwrap();
        }
        assert_eq!(daemon.counts(), (1, 1), "unchanged batches were reloaded");
        assert_eq!(committer.reloads(), 1);
        // A real change is tested and reloaded.
        committer
            .submit(vec![change(&vhost, Some("server { }\n"))])
            .unwrap();
        assert_eq!(daemon.counts(), (2, 2));
        // So is a removal of a file that exists, and a change of mode only.
        committer.submit(vec![change(&vhost, None)]).unwrap();
        assert_eq!(daemon.counts(), (3, 3));
        std::fs::write(&vhost, "server {}\n").unwrap();
        std::fs::set_permissions(&vhost, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        committer
            .submit(vec![change(&vhost, Some("server {}\n"))])
            .unwrap();
        assert_eq!(daemon.counts(), (4, 4));
    }

    #[test]
    fn an_empty_list_still_asks_for_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Counting::new(dir.path());
        let committer = Committer::new(daemon.clone());
        // A rollback puts files back itself, then asks for the reload.
        committer.submit(Vec::new()).unwrap();
        assert_eq!(daemon.counts(), (1, 1));
    }

    #[test]
    fn a_reload_owed_by_a_failed_or_killed_commit_is_made_by_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Counting::new(dir.path());
        let committer = Committer::new(daemon.clone());
        let vhost = dir.path().join("site.conf");
        // The reload fails: the file stays written (the task's undo would put it back), and
        // the next batch, though it writes the same bytes, reloads.
        daemon.fail_reload.store(true, Ordering::SeqCst);
        assert!(committer.submit(vec![change(&vhost, Some("a\n"))]).is_err());
        daemon.fail_reload.store(false, Ordering::SeqCst);
        committer.submit(vec![change(&vhost, Some("a\n"))]).unwrap();
        assert_eq!(daemon.counts(), (2, 2));
        // Once that reload is live, the same batch again costs nothing.
        committer.submit(vec![change(&vhost, Some("a\n"))]).unwrap();
        assert_eq!(daemon.counts(), (2, 2));

        // A committer of another process was killed between its write and its reload: its
        // marker is left, with the file it wrote.
        let other = Committer::new(daemon.clone());
        std::fs::write(daemon.reload_pending_file(), "").unwrap();
        std::fs::write(&vhost, "b\n").unwrap();
        other.submit(vec![change(&vhost, Some("b\n"))]).unwrap();
        assert_eq!(
            daemon.counts(),
            (3, 3),
            "what was on disk was never made live"
        );
        assert!(!daemon.reload_pending_file().exists());
    }
}
