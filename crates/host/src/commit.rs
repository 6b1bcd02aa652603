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
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::beneath::Staged;
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
    /// Writes the new content beside the file (nothing for a removal); see [`Self::place`].
    fn stage(&self, dirs: &mut fsops::Anchored) -> Result<Option<Staged>> {
        self.contents
            .as_ref()
            .map(|c| dirs.stage_atomic(&self.path, c, 0o644))
            .transpose()
    }

    /// Puts what [`Self::stage`] wrote in place, or removes the file.
    fn place(&self, staged: Option<Staged>) -> Result<()> {
        match staged {
            Some(staged) => staged.put_in_place(),
            None => fsops::remove_file(&self.path),
        }
    }

    /// Whether the file already is what this change makes it: the same bytes and mode, or
    /// absent when it is to be removed. Read under the committer's lock.
    fn already_on_disk(&self, dirs: &mut fsops::Anchored) -> bool {
        on_disk_in(dirs, &self.path, self.contents.as_deref())
    }

    fn revert(&self) -> Result<()> {
        match &self.old {
            Some((c, mode)) => fsops::write_atomic(&self.path, c, *mode),
            None => fsops::remove_file(&self.path),
        }
    }
}

/// Whether `path` holds `contents` with a committed file's mode (`None`: is absent).
fn on_disk(path: &std::path::Path, contents: Option<&[u8]>) -> bool {
    on_disk_in(&mut fsops::Anchored::default(), path, contents)
}

/// [`on_disk`], beneath directories opened once.
fn on_disk_in(dirs: &mut fsops::Anchored, path: &std::path::Path, contents: Option<&[u8]>) -> bool {
    match (dirs.read_existing(path), contents) {
        (Ok(Some((found, mode))), Some(wanted)) => found == wanted && mode & 0o7777 == 0o644,
        (Ok(None), None) => true,
        _ => false,
    }
}

struct Request {
    id: u64,
    changes: Vec<FileChange>,
}

/// What became of a request: live, with what its batch cost (see [`BatchTimes`]), or
/// refused, with why.
type Outcome = std::result::Result<String, String>;

/// Where a batch's time went, told to every task of the batch (its task log says it).
#[derive(Default)]
struct BatchTimes {
    requests: usize,
    files: usize,
    write: Duration,
    tests: u32,
    test: Duration,
    reload: Duration,
}

impl BatchTimes {
    fn summary(&self) -> String {
        format!(
            "batch of {} tasks' changes: {} files written in {:.2} s, {} config test(s) in \
             {:.2} s, reload confirmed in {:.2} s",
            self.requests,
            self.files,
            self.write.as_secs_f64(),
            self.tests,
            self.test.as_secs_f64(),
            self.reload.as_secs_f64()
        )
    }
}

#[derive(Default)]
struct State {
    pending: Vec<Request>,
    leader_active: bool,
    results: HashMap<u64, Outcome>,
    next_id: u64,
    /// How many requests the last batch took, and how long its commit took.
    last_batch: usize,
    last_commit: Duration,
}

/// A leader that gathers a batch waits for more changes while one came within this long...
/// (tasks reach their commit every few milliseconds, but a loaded machine pauses them for
/// tens: a gap of 50 ms ended batches of 10,000 verifies after a few hundred)
const ARRIVAL_GAP: Duration = Duration::from_millis(150);
/// ...for as long as the last commit took, times this...
const LINGER_PER_COMMIT: u32 = 2;
/// ...and never longer than this (nor than this when no commit has been measured yet: the
/// first batch of a stream took what came in 150 ms, and its commit, as long at 10,000
/// vhosts as one of them all, came on top of the commit of the rest).
const LINGER_MAX: Duration = Duration::from_secs(10);
/// A change that comes alone waits this long for another before it is committed alone:
/// the first task of a stream (10,000 site verifies) was committed by itself, a whole
/// `nginx -t` and reload for one vhost, while the next ones waited.
const LONE_GAP: Duration = Duration::from_millis(20);

/// The group-commit point of one daemon instance, shared by every task in this process.
/// Dispatchers in other processes serialize with it through a lock file.
pub struct Committer<S> {
    ctl: S,
    state: Mutex<State>,
    done: Condvar,
    arrived: Condvar,
    reloads: AtomicU64,
    tests: AtomicU64,
}

impl<S: Reloadable> Committer<S> {
    pub fn new(ctl: S) -> Committer<S> {
        Committer {
            ctl,
            state: Mutex::default(),
            done: Condvar::new(),
            arrived: Condvar::new(),
            reloads: AtomicU64::new(0),
            tests: AtomicU64::new(0),
        }
    }

    /// How many reloads this committer has made.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// How many config tests (`nginx -t`, `php-fpm -t`) this committer has run.
    pub fn tests(&self) -> u64 {
        self.tests.load(Ordering::Relaxed)
    }

    /// Whether `changes` are already live: each file holds what it would be written with (or
    /// is absent, to be removed) and no reload is owed. The files are read first and the
    /// marker after: a committer writes the marker before it changes a file and removes it
    /// only once a reload of it is live, so a file found changed with no marker left is
    /// live. Such changes need no journal, no batch, no test and no reload: a verify that
    /// changes nothing neither writes its undo nor waits for a batch (10,000 of them took
    /// as long as the batches they waited for). An empty list (a rollback's reload) never is.
    pub fn already_live(&self, changes: &[(PathBuf, Option<Vec<u8>>)]) -> bool {
        !changes.is_empty()
            && changes.iter().all(|(path, c)| on_disk(path, c.as_deref()))
            && !self.ctl.reload_pending_file().exists()
    }

    /// Applies `changes`, tests, reloads and confirms; returns once the changes are live
    /// (with where the batch's time went, empty when nothing had to be done), or with the
    /// reason they were refused (in which case they have been put back). Changes that leave
    /// every file as it is return at once, unless an earlier commit's reload is still owed.
    /// An empty list asks for a tested reload (a rollback's, after it put files back itself).
    pub fn submit(&self, changes: Vec<FileChange>) -> Result<String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let id = state.next_id;
        state.next_id += 1;
        state.pending.push(Request { id, changes });
        self.arrived.notify_all();
        loop {
            if let Some(result) = state.results.remove(&id) {
                return result.map_err(HostError::Commit);
            }
            if !state.leader_active {
                state.leader_active = true;
                state = self.gather(state);
                let batch = std::mem::take(&mut state.pending);
                let size = batch.len();
                drop(state);
                let started = Instant::now();
                let results = self.commit_batch(batch);
                let took = started.elapsed();
                state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.results.extend(results);
                state.leader_active = false;
                state.last_batch = size;
                state.last_commit = took;
                self.done.notify_all();
                continue;
            }
            state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits, before a batch is taken, while more changes keep coming. A commit tests and
    /// reloads the whole config, which costs as much for one change as for thousands (`nginx
    /// -t` takes a second at 10,000 vhosts, and the reload as long again): when changes come
    /// in a stream (a platform's sites verified), a leader that took only what was there made
    /// a commit per few hundred tasks, and the commits, not the tasks, took the time. A lone
    /// change (the last batch held one, and no other comes within [`LONE_GAP`]) is committed
    /// alone; with no commit measured yet, a stream is gathered for up to [`LINGER_MAX`].
    fn gather<'a>(&self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        if state.pending.len() < 2 && state.last_batch < 2 {
            let waited = Instant::now();
            while state.pending.len() < 2 && waited.elapsed() < LONE_GAP {
                let left = LONE_GAP.saturating_sub(waited.elapsed());
                state = self
                    .arrived
                    .wait_timeout(state, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if state.pending.len() < 2 {
                return state;
            }
        }
        let limit = match state.last_commit {
            Duration::ZERO => LINGER_MAX,
            took => (took * LINGER_PER_COMMIT).clamp(ARRIVAL_GAP, LINGER_MAX),
        };
        let started = Instant::now();
        loop {
            let before = state.pending.len();
            let waited = Instant::now();
            // Wakes on every arrival; waits out the gap unless one comes.
            while state.pending.len() == before && waited.elapsed() < ARRIVAL_GAP {
                let left = ARRIVAL_GAP.saturating_sub(waited.elapsed());
                state = self
                    .arrived
                    .wait_timeout(state, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if state.pending.len() == before || started.elapsed() >= limit {
                return state;
            }
        }
    }

    fn commit_batch(&self, batch: Vec<Request>) -> Vec<(u64, Outcome)> {
        let mut results = Vec::new();
        let mut times = BatchTimes {
            requests: batch.len(),
            ..BatchTimes::default()
        };
        let _lock = match FileLock::acquire(&self.ctl.lock_file()) {
            Ok(l) => l,
            Err(e) => return batch.iter().map(|r| (r.id, Err(e.to_string()))).collect(),
        };
        // Holding the lock, no live writer has a temporary file here: any is a dead one's.
        for dir in self.ctl.committed_dirs() {
            fsops::remove_stale_temporaries(&dir);
        }
        let forced = batch.iter().any(|r| r.changes.is_empty());
        // The batch's directories, each reached beneath its anchor once.
        let mut dirs = fsops::Anchored::default();
        // What is already on disk is not written again (its old content is what it is).
        let batch: Vec<Request> = batch
            .into_iter()
            .map(|r| Request {
                id: r.id,
                changes: r
                    .changes
                    .into_iter()
                    .filter(|c| !c.already_on_disk(&mut dirs))
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
            return batch.iter().map(|r| (r.id, Ok(String::new()))).collect();
        }
        let writing = Instant::now();
        times.files = batch.iter().map(|r| r.changes.len()).sum();
        // Every new file is written beside the one it replaces, then all are synced at once,
        // then put in place: a sync per file (each a journal commit of the file system) made a
        // commit of 10,000 vhosts take minutes.
        let mut staged = Vec::new();
        for req in batch {
            match req.changes.iter().map(|c| c.stage(&mut dirs)).collect() {
                Ok(files) => staged.push((req, files)),
                // Nothing of it is in place: dropping what was staged removes it.
                Err(e) => results.push((req.id, Err(e.to_string()))),
            }
        }
        let first = staged.iter().flat_map(|(_, files)| files).flatten().next();
        if let Some(Err(e)) = first.map(Staged::sync_filesystem) {
            results.extend(staged.iter().map(|(r, _)| (r.id, Err(e.to_string()))));
            return results;
        }
        let mut live = Vec::new();
        for (req, files) in staged {
            let placed: Vec<Option<Staged>> = files;
            match req
                .changes
                .iter()
                .zip(placed)
                .try_for_each(|(change, file)| change.place(file))
            {
                Ok(()) => live.push(req),
                Err(e) => {
                    revert_all(&req);
                    results.push((req.id, Err(e.to_string())));
                }
            }
        }
        times.write = writing.elapsed();
        // Test the whole config; put back every change the daemon names in its error, and test
        // again, until the config passes or nothing of this batch is left.
        loop {
            if live.is_empty() {
                return results;
            }
            self.tests.fetch_add(1, Ordering::Relaxed);
            let testing = Instant::now();
            let tested = self.ctl.test();
            times.tests += 1;
            times.test += testing.elapsed();
            let message = match tested {
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
        let reloading = Instant::now();
        let outcome = self.ctl.reload_and_confirm().map_err(|e| e.to_string());
        times.reload = reloading.elapsed();
        if outcome.is_ok() {
            // A failed removal only costs the next batch a reload.
            let _ = fsops::remove_file(&pending);
        }
        let outcome = outcome.map(|()| times.summary());
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
        self.sum(Committer::reloads)
    }

    pub fn total_tests(&self) -> u64 {
        self.sum(Committer::tests)
    }

    fn sum(&self, count: impl Fn(&Committer<S>) -> u64) -> u64 {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|c| count(c))
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

    /// A daemon that counts its tests and reloads; a reload fails while `fail_reload` is set,
    /// the test fails naming any file that holds `bad`, and each reload takes `reload_takes`.
    #[derive(Clone)]
    struct Counting {
        dir: PathBuf,
        tests: Arc<AtomicU64>,
        reloads: Arc<AtomicU64>,
        fail_reload: Arc<AtomicBool>,
        reload_takes: Duration,
    }

    impl Counting {
        fn new(dir: &std::path::Path) -> Counting {
            Counting {
                dir: dir.to_path_buf(),
                tests: Arc::default(),
                reloads: Arc::default(),
                fail_reload: Arc::default(),
                reload_takes: Duration::ZERO,
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
            for entry in std::fs::read_dir(&self.dir).unwrap() {
                let path = entry.unwrap().path();
                if std::fs::read(&path).is_ok_and(|c| c == b"bad") {
                    return Err(HostError::NginxRejected(format!(
                        "unknown directive in {}",
                        path.display()
                    )));
                }
            }
            Ok(())
        }
        fn reload_and_confirm(&self) -> Result<()> {
            std::thread::sleep(self.reload_takes);
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
    fn changes_are_already_live_only_when_every_file_is_as_they_make_it_and_no_reload_is_owed() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Counting::new(dir.path());
        let committer = Committer::new(daemon.clone());
        let vhost = dir.path().join("site.conf");
        let gone = dir.path().join("gone.conf");
        let same = |c: &str| {
            vec![
                (vhost.clone(), Some(c.as_bytes().to_vec())),
                (gone.clone(), None),
            ]
        };
        assert!(
            !committer.already_live(&same("server {}\n")),
            "a missing file"
        );
        committer
            .submit(vec![change(&vhost, Some("server {}\n"))])
            .unwrap();
        assert!(committer.already_live(&same("server {}\n")));
        assert!(
            !committer.already_live(&same("server { }\n")),
            "other bytes"
        );
        assert!(
            !committer.already_live(&[(vhost.clone(), None)]),
            "a removal of a file that exists"
        );
        assert!(!committer.already_live(&[]), "a rollback's reload");
        // A reload that failed is owed: the file on disk is not what nginx serves.
        daemon.fail_reload.store(true, Ordering::SeqCst);
        assert!(committer.submit(vec![change(&vhost, Some("a\n"))]).is_err());
        daemon.fail_reload.store(false, Ordering::SeqCst);
        let a = vec![(vhost.clone(), Some(b"a\n".to_vec()))];
        assert!(!committer.already_live(&a), "a reload is owed");
        committer.submit(vec![change(&vhost, Some("a\n"))]).unwrap();
        assert!(committer.already_live(&a));
        assert_eq!(
            daemon.counts(),
            (3, 3),
            "already_live tests and reloads nothing"
        );
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

    #[test]
    fn changes_that_keep_coming_while_a_commit_runs_are_committed_together_and_a_bad_one_fails_alone()
     {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = Counting::new(dir.path());
        daemon.reload_takes = Duration::from_millis(100);
        let committer = Arc::new(Committer::new(daemon.clone()));
        // Tasks reach their commit one after another, every 4 ms for 400 ms (as a platform's
        // site verifies do), the first while nothing else is being committed.
        let sites = 100;
        let handles: Vec<_> = (0..sites)
            .map(|i| {
                let committer = committer.clone();
                let vhost = dir.path().join(format!("site{i}.conf"));
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(4 * i as u64));
                    let contents = if i == 17 { "bad" } else { "server {}" };
                    let result = committer.submit(vec![change(&vhost, Some(contents))]);
                    (i, result.is_ok(), vhost.exists())
                })
            })
            .collect();
        for handle in handles {
            let (i, ok, written) = handle.join().unwrap();
            assert_eq!(ok, i != 17, "site {i}");
            assert_eq!(written, i != 17, "site {i}'s file");
        }
        // The first waits for company, and with no commit measured yet the batch takes the
        // whole stream (while changes keep coming, up to 10 s): one reload, where the first
        // alone, then what came for twice as long as that commit took, then the rest made
        // three, and a batch of whatever waited when the last commit ended made one per
        // 100 ms of the stream (five). (Two allow for a pause of a loaded machine.)
        let (tests, reloads) = daemon.counts();
        assert!(
            reloads <= 2,
            "{reloads} reloads, {tests} tests for {sites} changes"
        );
        assert!(tests <= reloads + 1, "{tests} tests for {reloads} reloads");
    }
}
