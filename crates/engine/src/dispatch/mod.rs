//! The dispatcher: the only code that moves a task past `queued`.
//!
//! It claims runnable tasks (see `Store::claim_next` for the lock rules), runs each one's
//! script with journaled steps, and commits the task's status and effect, or rolls the
//! task's journal back and marks it failed. A dispatcher holds an exclusive lock on
//! `run/dispatcher-<id>.lock` for its whole life; a processing task whose owner's lock is free
//! belonged to a dead dispatcher and is rolled back ("interrupted; rolled back") by the next
//! dispatcher that looks, at its start and every few seconds after.
//!
//! New tasks start at once: whoever queues one sends a datagram to each dispatcher's socket
//! in `run/`; a slow poll is only the fallback.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use host::{Committers, FileLock, Journal, LiveSteps, Parking, Undo};
use model::TaskStatus;
use store::{JournalEntry, RunningTask, Store, TaskEffect};

use crate::scripts::{self, ScriptEnv};
use crate::{Fjord, Result};

mod disk_guard;
mod machines;
mod recovery;
mod task_logs;

use disk_guard::DiskGuard;
pub use disk_guard::{DiskThresholds, pause_notice};

use task_logs::TaskLogs;

const POLL: Duration = Duration::from_secs(2);
const RECOVERY_EVERY: Duration = Duration::from_secs(5);
const ROTATE_EVERY: Duration = Duration::from_secs(60);

/// Wakes every dispatcher whose socket is in `run_dir`.
pub fn notify(run_dir: &Path) {
    host::wake_all(run_dir);
}

pub struct DispatcherOptions {
    pub concurrency: usize,
    /// Stop once no task is queued or running (for `fjord dispatch --until-idle`).
    pub until_idle: bool,
    /// Run tasks (and what they run) at a lower CPU priority, yielding the cores to the
    /// panel's requests in the same process (`fjord serve`).
    pub background: bool,
    /// How sites' logs are rotated (checked every [`ROTATE_EVERY`], and once more before
    /// `until_idle` exits).
    pub log_rotation: crate::ops::LogRotation,
    /// When claims stop for a full disk, and when they resume (see `disk_guard`).
    pub disk: DiskThresholds,
    /// How often the self-healing monitor probes the servers' daemons (`None`: no monitor in
    /// this dispatcher; never with `until_idle`). See [`crate::monitor`].
    pub monitor_every: Option<Duration>,
}

/// Concurrency slots. A task waiting for an nginx commit gives its slot back, and takes one
/// again (ahead of new tasks) when the commit is done.
struct Slots {
    state: Mutex<(usize, usize)>, // (free, waiting to resume)
    changed: Condvar,
}

impl Slots {
    fn try_take_for_new(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 > s.1 {
            s.0 -= 1;
            true
        } else {
            false
        }
    }

    fn release(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 += 1;
        self.changed.notify_all();
    }

    fn take_for_resume(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 += 1;
        while s.0 == 0 {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.0 -= 1;
        s.1 -= 1;
    }
}

struct SlotParking {
    slots: Arc<Slots>,
    wake: mpsc::Sender<Event>,
}

impl Parking for SlotParking {
    fn park(&self) {
        self.slots.release();
        let _ = self.wake.send(Event::SlotFree);
    }

    fn unpark(&self) {
        self.slots.take_for_resume();
    }
}

enum Event {
    Wake,
    SlotFree,
    /// A task's worker thread has ended (its outcome recorded, or not: see `reap`): the
    /// task and the number of the claim it ran under.
    Done(i64, i64),
}

fn warn(what: &str, e: &dyn std::fmt::Display) {
    tracing::warn!(error = %e, "{what}: {e}");
}

pub struct Dispatcher {
    fjord: Arc<Fjord>,
    owner: String,
    _lock: FileLock,
    lock_path: PathBuf,
    socket_path: PathBuf,
    committers: Arc<Committers>,
    logs: Arc<TaskLogs>,
    /// Failed tasks whose rollback waits for a remote server to be reachable again (task id
    /// and claim seq): they stay `processing`, their objects locked, and are tried again.
    owed: Mutex<Vec<(i64, i64)>>,
    /// Claims made, and the microseconds they took (for the benchmarks).
    claims: std::sync::atomic::AtomicU64,
    claim_us: std::sync::atomic::AtomicU64,
}

impl Dispatcher {
    pub fn new(fjord: Arc<Fjord>) -> Result<Dispatcher> {
        let owner = format!("{}-{}", std::process::id(), host::random_hex(6));
        let run = fjord.run_dir();
        let lock_path = run.join(format!("dispatcher-{owner}.lock"));
        let lock = FileLock::acquire(&lock_path)?;
        host::set_session_tag(&session_tag(&owner));
        Ok(Dispatcher {
            socket_path: run.join(format!("dispatcher-{owner}.sock")),
            fjord,
            owner,
            _lock: lock,
            lock_path,
            committers: Arc::new(Committers::default()),
            logs: Arc::default(),
            owed: Mutex::default(),
            claims: Default::default(),
            claim_us: Default::default(),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// nginx reloads made by this dispatcher so far.
    pub fn nginx_reloads(&self) -> u64 {
        self.committers.nginx.total_reloads()
    }

    /// Tasks claimed by this dispatcher so far, and the time the claims took (the state's
    /// transaction that picks a runnable task under the lock rules).
    pub fn claim_time(&self) -> (u64, Duration) {
        (
            self.claims.load(Ordering::Relaxed),
            Duration::from_micros(self.claim_us.load(Ordering::Relaxed)),
        )
    }

    /// `nginx -t` runs made by this dispatcher so far.
    pub fn nginx_tests(&self) -> u64 {
        self.committers.nginx.total_tests()
    }

    /// [`Dispatcher::run`] until SIGTERM or SIGINT: the first stops it claiming tasks and it
    /// exits once the running ones are done; a second exits at once (see
    /// [`host::stop_on_signals`]).
    pub fn run_until_signalled(&self, options: &DispatcherOptions) -> Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        host::stop_on_signals(stop.clone(), self.socket_path.clone())?;
        self.run(options, &stop)
    }

    /// Runs until `stop` is set (finishing the tasks already started) or, with `until_idle`,
    /// until there is nothing left to do.
    pub fn run(&self, options: &DispatcherOptions, stop: &AtomicBool) -> Result<()> {
        // Started before this thread's priority is lowered: the daemons the monitor starts
        // again inherit its priority, and must run at the machine's, not the tasks'.
        let _monitor = options
            .monitor_every
            .filter(|_| !options.until_idle)
            .map(|every| crate::monitor::MonitorThread::start(self.fjord.clone(), every));
        if options.background
            && let Err(e) = host::lower_this_thread_priority(10)
        {
            tracing::warn!(error = %e, "tasks run at the panel's priority: {e}");
        }
        let (tx, rx) = mpsc::channel();
        let socket = host::WakeSocket::bind(&self.socket_path)?;
        let listener_stop = Arc::new(AtomicBool::new(false));
        let listener = {
            let tx = tx.clone();
            let listener_stop = listener_stop.clone();
            std::thread::spawn(move || {
                while !listener_stop.load(Ordering::Relaxed) {
                    if socket.wait() && tx.send(Event::Wake).is_err() {
                        break;
                    }
                }
            })
        };
        // Site crons run beside the tasks, on a thread of their own (a slow cron never holds
        // a task back); `--until-idle` runs one round of what is due once the tasks are done.
        let cron = (!options.until_idle).then(|| {
            let (fjord, stop, parallel, owner) = (
                self.fjord.clone(),
                listener_stop.clone(),
                options.concurrency.max(1),
                self.owner.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = fjord.run_due_crons(&owner, store::now_ms(), parallel) {
                        warn("running site crons failed (tried again later)", &e);
                    }
                    for _ in 0..10 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        });
        let log_writer = self.logs.spawn_writer(self.fjord.clone());
        // Ready once its wake socket is bound, so a task queued from now on is heard; not after
        // rolling back what a dead dispatcher left (the main loop's first pass), which may
        // take longer than a service manager waits for a start.
        host::service_manager::notify_ready(&format!("dispatcher {} runs tasks", self.owner));
        let mut disk_guard = DiskGuard::new(options.disk, &self.owner);
        let result = self.main_loop(options, stop, &tx, &rx, &mut disk_guard);
        disk_guard.end(&self.fjord);
        if options.until_idle
            && result.is_ok()
            && let Err(e) =
                self.fjord
                    .run_due_crons(&self.owner, store::now_ms(), options.concurrency.max(1))
        {
            warn("running site crons failed", &e);
        }
        listener_stop.store(true, Ordering::Relaxed);
        if let Some(cron) = cron {
            let _ = cron.join();
        }
        host::wake(&self.socket_path);
        let _ = listener.join();
        self.logs.stop();
        let _ = log_writer.join();
        result
    }

    fn main_loop(
        &self,
        options: &DispatcherOptions,
        stop: &AtomicBool,
        tx: &mpsc::Sender<Event>,
        rx: &mpsc::Receiver<Event>,
        disk_guard: &mut DiskGuard,
    ) -> Result<()> {
        let slots = Arc::new(Slots {
            state: Mutex::new((options.concurrency.max(1), 0)),
            changed: Condvar::new(),
        });
        let mut running = 0usize;
        let mut told = Told::default();
        let mut last_recovery = Instant::now();
        let mut last_rotation = Instant::now();
        // No store error ends a dispatcher: a full disk or a locked database is waited out,
        // and what could not be done is done on a later pass.
        if let Err(e) = self.recover() {
            warn(
                "recovering interrupted tasks failed (tried again later)",
                &e,
            );
        }
        loop {
            if !stop.load(Ordering::Relaxed) && !disk_guard.holds_claims(&self.fjord) {
                while slots.try_take_for_new() {
                    let claiming = Instant::now();
                    let claimed = self.fjord.store().claim_next(&self.owner);
                    self.claims.fetch_add(1, Ordering::Relaxed);
                    self.claim_us
                        .fetch_add(claiming.elapsed().as_micros() as u64, Ordering::Relaxed);
                    match claimed {
                        Ok(Some(claimed)) => {
                            running += 1;
                            self.spawn(claimed, slots.clone(), tx.clone());
                        }
                        Ok(None) => {
                            slots.release();
                            break;
                        }
                        Err(e) => {
                            slots.release();
                            warn("claiming a task failed (tried again later)", &e);
                            break;
                        }
                    }
                }
            }
            told.status(running, stop.load(Ordering::Relaxed));
            if running == 0 {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if options.until_idle && self.nothing_left().unwrap_or(false) {
                    self.rotate_logs(options);
                    return Ok(());
                }
            }
            let mut ended = Vec::new();
            match rx.recv_timeout(POLL) {
                Ok(Event::Done(id, seq)) => ended.push((id, seq)),
                Ok(Event::Wake | Event::SlotFree) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
            // Drain what else arrived, so a burst of events costs one pass.
            while let Ok(event) = rx.try_recv() {
                if let Event::Done(id, seq) = event {
                    ended.push((id, seq));
                }
            }
            for (id, seq) in ended {
                running -= 1;
                self.reap(id, seq);
            }
            if last_recovery.elapsed() > RECOVERY_EVERY {
                self.retry_owed_rollbacks();
                if let Err(e) = self.recover() {
                    warn(
                        "recovering interrupted tasks failed (tried again later)",
                        &e,
                    );
                }
                if let Err(e) = self.fjord.queue_due_backups(store::now_ms()) {
                    warn("scheduling backups failed", &e);
                }
                if let Err(e) = self.fjord.queue_due_renewals(store::now_ms()) {
                    warn("queueing certificate renewals failed", &e);
                }
                last_recovery = Instant::now();
            }
            if last_rotation.elapsed() > ROTATE_EVERY {
                self.rotate_logs(options);
                last_rotation = Instant::now();
            }
        }
    }

    fn rotate_logs(&self, options: &DispatcherOptions) {
        if let Err(e) = self.fjord.rotate_site_logs(&options.log_rotation) {
            warn("rotating sites' logs failed (tried again later)", &e);
        }
    }

    /// A task's worker has ended: if the task is still `processing` under this dispatcher,
    /// its outcome was never recorded (the worker died), so it is rolled back and failed as
    /// a crashed dispatcher's task would be.
    fn reap(&self, task_id: i64, seq: i64) {
        let store = self.fjord.store();
        let claim = store::Claim {
            owner: self.owner.clone(),
            seq,
        };
        // Asked of this one task: a scan of every running task here made each task's end cost
        // as much as the tasks parked beside it (thousands, waiting for one nginx commit).
        let still_held =
            retry_transient(|| store.task_claim(task_id)).ok().flatten() == Some(claim.clone());
        if still_held && let Ok(task) = retry_transient(|| store.task(task_id)) {
            let running = RunningTask { task, claim };
            let journal = StoreJournal {
                store: self.fjord.store(),
                logs: &self.logs,
                task_id,
                machine: None,
                steps: None,
            };
            journal.log("the task's worker ended without recording its outcome; rolling back");
            let ended = finish_failed(
                &self.fjord,
                &self.committers,
                &self.logs,
                &running,
                "interrupted; rolled back",
            );
            if ended == Ended::RollbackOwed {
                self.owe_rollback(task_id, seq);
            }
        }
    }

    fn owe_rollback(&self, task_id: i64, seq: i64) {
        self.owed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((task_id, seq));
    }

    /// Tries again the rollbacks that waited for a remote server.
    fn retry_owed_rollbacks(&self) {
        let owed = std::mem::take(&mut *self.owed.lock().unwrap_or_else(|p| p.into_inner()));
        for (task_id, seq) in owed {
            self.reap(task_id, seq);
        }
    }

    fn nothing_left(&self) -> Result<bool> {
        let store = self.fjord.store();
        let queued = store.tasks(&store::TaskFilter {
            status: Some(TaskStatus::Queued),
            limit: Some(1),
            ..Default::default()
        })?;
        let running = store.running_tasks()?;
        Ok(queued.is_empty() && running.is_empty())
    }

    fn spawn(&self, claimed: RunningTask, slots: Arc<Slots>, tx: mpsc::Sender<Event>) {
        let fjord = self.fjord.clone();
        let committers = self.committers.clone();
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            let (task, seq) = (&claimed.task, claimed.claim.seq);
            let parking: Arc<dyn Parking> = Arc::new(SlotParking {
                slots: slots.clone(),
                wake: tx.clone(),
            });
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_task(&fjord, &committers, &logs, &claimed, parking)
            }));
            if let Ok(Some(trash)) = outcome {
                // The task is done: its slot goes to the next one while its old state is
                // purged (the dispatcher still waits for this before it exits).
                slots.release();
                let _ = tx.send(Event::SlotFree);
                let journal = StoreJournal {
                    store: fjord.store(),
                    logs: &logs,
                    task_id: task.id,
                    machine: None,
                    steps: None,
                };
                if fjord
                    .script_env()
                    .faults
                    .pause_before_purge(task.kind.as_str())
                {
                    journal.log("fault: paused before the purge");
                    std::thread::sleep(Duration::from_secs(60));
                }
                let journaled = trash.journaled();
                trash.purge(&journal);
                let remote = machines::purge_remote(&fjord, task.id, &journal);
                if journaled || remote {
                    let _ = fjord.store().journal_clear(task.id);
                }
                let _ = host::remove_dir_if_exists(&scratch_dir(&fjord, task.id));
                let _ = tx.send(Event::Done(task.id, seq));
                return;
            }
            if outcome.is_err() {
                // run_task handles every error; a panic is a bug, and the task must still end.
                let journal = StoreJournal {
                    store: fjord.store(),
                    logs: &logs,
                    task_id: task.id,
                    machine: None,
                    steps: None,
                };
                journal.log("internal error (panic) while running the task");
                finish_failed(
                    &fjord,
                    &committers,
                    &logs,
                    &claimed,
                    "internal error (panic)",
                );
            }
            slots.release();
            let _ = tx.send(Event::Done(task.id, seq));
        });
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        let _ = host::remove_file_if_exists(&self.lock_path);
    }
}

/// A task's journal and log, in the state database (its log lines a batch at a time: see
/// [`TaskLogs`]).
#[derive(Clone)]
struct StoreJournal<'a> {
    store: &'a dyn Store,
    logs: &'a TaskLogs,
    task_id: i64,
    /// The remote server whose machine the entries' undos are made on (None: this one).
    machine: Option<i64>,
    /// Numbers a running task's steps and fires its injected faults (None: a rollback's or
    /// a recovery's journal, which makes no steps).
    steps: Option<&'a host::StepCounter<'a>>,
}

impl StoreJournal<'_> {
    /// A log line that must not be lost (a task's outcome): written with every line before
    /// it, retried while the store's error is transient (a full disk), as the outcome itself
    /// is.
    fn log_durably(&self, line: &str) {
        self.logs.push_only(self.task_id, line);
        self.logs.flush_durably(self.store);
    }

    /// Writes the lines logged so far before what follows (the task's outcome) is recorded.
    fn written(&self) {
        self.logs.flush_durably(self.store);
    }
}

impl Journal for StoreJournal<'_> {
    fn record(&self, seq: i64, step: &str, undo: &Undo, saved: Option<&[u8]>) -> host::Result<()> {
        let undo =
            serde_json::to_string(undo).map_err(|e| host::HostError::Journal(e.to_string()))?;
        self.store
            .journal_append(&JournalEntry {
                task_id: self.task_id,
                seq: self.steps.map_or(seq, |c| c.next_entry()),
                step: step.to_string(),
                undo,
                saved: saved.map(<[u8]>::to_vec),
                machine: self.machine,
            })
            .map_err(|e| host::HostError::Journal(e.to_string()))
    }

    fn record_all(&self, entries: &[host::JournalRecord<'_>]) -> host::Result<()> {
        let entries = entries
            .iter()
            .map(|e| {
                Ok(JournalEntry {
                    task_id: self.task_id,
                    seq: self.steps.map_or(e.seq, |c| c.next_entry()),
                    step: e.step.clone(),
                    undo: serde_json::to_string(e.undo)
                        .map_err(|e| host::HostError::Journal(e.to_string()))?,
                    saved: e.saved.map(<[u8]>::to_vec),
                    machine: self.machine,
                })
            })
            .collect::<host::Result<Vec<_>>>()?;
        self.store
            .journal_append_all(&entries)
            .map_err(|e| host::HostError::Journal(e.to_string()))
    }

    fn log(&self, line: &str) {
        // A log line that cannot be written must not fail the task it describes.
        self.logs.push(self.store, self.task_id, line);
    }

    fn wants_verdicts(&self) -> bool {
        self.steps.is_some_and(|c| c.may_fault())
    }

    fn step_made(&self, what: &str) -> host::Result<()> {
        match self.steps {
            Some(counter) => counter.step_made(what, &|line| self.log(line)),
            None => {
                self.log(what);
                Ok(())
            }
        }
    }
}

fn run_task(
    fjord: &Fjord,
    committers: &Committers,
    logs: &TaskLogs,
    claimed: &RunningTask,
    parking: Arc<dyn Parking>,
) -> Option<host::Trash> {
    let (task, claim) = (&claimed.task, &claimed.claim);
    let owner = &claim.owner;
    let store = fjord.store();
    let mut env: ScriptEnv = fjord.script_env();
    let steps = host::StepCounter::new(&env.faults, task.kind.as_str());
    let journal = StoreJournal {
        store,
        logs,
        task_id: task.id,
        machine: None,
        steps: Some(&steps),
    };
    journal.log(&format!(
        "{} of {} {} started by dispatcher {owner}",
        task.kind.as_str(),
        task.target.type_str(),
        task.target_name
    ));
    let started = std::time::Instant::now();
    tracing::info!(
        task = task.id,
        kind = task.kind.as_str(),
        target = %task.target_name,
        dispatcher = %owner,
        "task {} ({} {}) claimed",
        task.id,
        task.kind.as_str(),
        task.target_name
    );
    let ended = |status: &str, error: Option<&str>| {
        let duration_ms = started.elapsed().as_millis() as u64;
        match error {
            None => tracing::info!(
                task = task.id,
                kind = task.kind.as_str(),
                status,
                duration_ms,
                "task {} ({}) {status}",
                task.id,
                task.kind.as_str()
            ),
            Some(error) => tracing::warn!(
                task = task.id,
                kind = task.kind.as_str(),
                status,
                duration_ms,
                error,
                "task {} ({}) {status}: {error}",
                task.id,
                task.kind.as_str()
            ),
        }
    };
    let objects = fjord.objects(task.kind, task.target, &task.args);
    if let Ok(objects) = &objects {
        env.mail_to = objects
            .site
            .as_ref()
            .and_then(|site| fjord.site_recipient(site))
            .map(|(_, to)| to);
    }
    // A task on a remote server makes its steps there, through the server's link, and
    // journals them here with the server as their machine; a site whose database server is
    // another machine has its database's steps made there.
    let machines = objects
        .as_ref()
        .ok()
        .map(|o| machines::machines_of(fjord, o))
        .transpose();
    if let Ok(Some((web, _))) = &machines
        && let Some((reads, dir)) = web.reads()
    {
        env.reads = reads;
        env.remote_dir = Some(dir);
    }
    let result = objects.and_then(|mut objects| {
        let (web, db) = machines?.expect("the machines of the objects read");
        if let Some(db) = &db {
            objects.reach_db_over(machines::db_reach(&web, db)?)?;
        }
        // A task on a remote server mostly waits for the link: it gives up its slot for its
        // whole run, so that many run side by side (each link bounds its calls in flight).
        let remote = matches!(web, machines::Machine::Remote { .. });
        let mut steps = LiveSteps::new(
            &journal,
            committers,
            (!remote).then(|| parking.clone()),
            scratch_dir(fjord, task.id),
        );
        let mut spare = LiveSteps::new(&journal, committers, None, scratch_dir(fjord, task.id));
        if remote {
            parking.park();
        }
        let effect = machines::run_script(
            &env, task, &objects, &journal, &mut steps, &mut spare, web, db,
        );
        if remote {
            parking.unpark();
        }
        Ok((effect?, steps))
    });
    if env.faults.abandon(task.kind.as_str()) {
        journal.log("fault: the worker ends without recording the outcome");
        return None;
    }
    match result {
        Ok((effect, mut steps)) => {
            // The work is done and its undo still journaled: the success is recorded, however
            // long the store takes to accept it (a full disk), never rolled back for that.
            journal.written();
            // A task that warns (a batch some of whose orders failed) is done, and says what
            // to read.
            let warning = effect.warning();
            let status = match warning {
                Some(_) => TaskStatus::Warning,
                None => TaskStatus::Success,
            };
            match retry_transient(|| {
                store.finish_task(task.id, claim, status, warning.as_deref(), &effect)
            }) {
                Ok(false) => {
                    // Only a dispatcher that found this one dead takes a task over, and it
                    // rolled the task back: nothing of this run is recorded or purged.
                    journal.log_durably(LOST_CLAIM);
                    None
                }
                Ok(true) => {
                    journal.log_durably(status.as_str());
                    ended(status.as_str(), warning.as_deref());
                    let outbox =
                        std::mem::take(&mut *env.outbox.lock().unwrap_or_else(|p| p.into_inner()));
                    if let (false, Ok(Some(settings))) = (outbox.is_empty(), fjord.mail_settings())
                    {
                        for mail in &outbox {
                            fjord.send(&settings, mail, &|line| journal.log(line));
                        }
                    }
                    Some(steps.take_trash())
                }
                Err(e) => {
                    journal.log(&format!("could not record success: {e}"));
                    ended("failed", Some(&e.to_string()));
                    finish_failed(fjord, committers, logs, claimed, &e.to_string());
                    None
                }
            }
        }
        Err(e) => {
            journal.log_durably(&format!("failed: {e}"));
            ended("failed", Some(&e.to_string()));
            finish_failed(fjord, committers, logs, claimed, &e.to_string());
            None
        }
    }
}

/// The name of a dispatcher's database sessions.
fn session_tag(owner: &str) -> String {
    format!("fjord-{owner}")
}

/// A task's own directory, for dumps its undos may need; removed when the task ends.
fn scratch_dir(fjord: &Fjord, task_id: i64) -> PathBuf {
    fjord
        .data_dir()
        .join("journal")
        .join(format!("task-{task_id}"))
}

/// What a dispatcher logs when the task it ran was taken over (its claim is gone): its
/// outcome is not recorded, and nothing it would do after (purge, rollback, mail) is done.
const LOST_CLAIM: &str = "this dispatcher no longer holds the task (another dispatcher took it \
     over, or it was retried and claimed again): its outcome is not recorded";

/// Rolls the task's journal back, then records the failure, if the claim still holds the
/// task.
/// How [`finish_failed`] left a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Rolled back and recorded as failed (or left to whoever holds it now).
    Recorded,
    /// A remote server it stepped on cannot be reached: the task stays `processing`, its
    /// journal kept, until the rollback can be finished there.
    RollbackOwed,
}

fn finish_failed(
    fjord: &Fjord,
    committers: &Committers,
    logs: &TaskLogs,
    claimed: &RunningTask,
    error: &str,
) -> Ended {
    let (task, claim) = (&claimed.task, &claimed.claim);
    let store = fjord.store();
    let journal = StoreJournal {
        store,
        logs,
        task_id: task.id,
        machine: None,
        steps: None,
    };
    // The journal is the claim's only while the claim holds the task: after a take-over and
    // a retry it holds another run's steps, which this rollback must never undo.
    match retry_transient(|| store.task_claim(task.id)) {
        Ok(held) if held.as_ref() != Some(claim) => {
            journal.log_durably(LOST_CLAIM);
            return Ended::Recorded;
        }
        Ok(_) => {}
        Err(e) => {
            journal.log(&format!(
                "cannot read the running tasks: {e}; the task stays processing for a later recovery"
            ));
            return Ended::Recorded;
        }
    }
    let entries = match retry_transient(|| store.journal(task.id)) {
        Ok(entries) => entries,
        Err(e) => {
            journal.log(&format!(
                "cannot read the journal: {e}; the task stays processing for a later recovery"
            ));
            return Ended::Recorded;
        }
    };
    let mut message = error.to_string();
    let mut data_lost = false;
    if entries.is_empty() {
        journal.log("nothing to roll back");
    } else {
        journal.log(&format!(
            "rolling back {} journaled change(s)",
            entries.len()
        ));
        match machines::rollback_everywhere(fjord, committers, &entries, &journal) {
            Ok(()) => journal.log("rollback complete"),
            Err(host::HostError::Unreachable(why)) => {
                // Never dropped: what is undone stays undone (every undo is idempotent), and
                // the rest is made once the server answers.
                journal.log_durably(&format!(
                    "the rollback is not finished: {why}; the task stays processing, its \
                     site locked, and the rollback is tried again until the server answers"
                ));
                return Ended::RollbackOwed;
            }
            Err(e) => {
                data_lost = matches!(e, host::HostError::UndoDataLost(_));
                journal.log(&e.to_string());
                message = format!("{message}; {e}");
            }
        }
    }
    let effect = scripts::failure_effect(task, data_lost);
    journal.written();
    let recorded = retry_transient(|| {
        store.finish_task(task.id, claim, TaskStatus::Failed, Some(&message), &effect)
    })
    .or_else(|e| {
        // The failure's effect itself is refused: the failure is recorded without it.
        journal.log(&format!("could not record the failure's effect: {e}"));
        retry_transient(|| {
            store.finish_task(
                task.id,
                claim,
                TaskStatus::Failed,
                Some(&message),
                &TaskEffect::None,
            )
        })
    });
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            journal.log_durably(LOST_CLAIM);
            return Ended::Recorded;
        }
        Err(e) => {
            journal.log(&format!("could not record the failure: {e}"));
            return Ended::Recorded;
        }
    }
    let _ = store.journal_clear(task.id);
    if !data_lost {
        // What an operator must look at after a lost undo stays.
        let _ = host::remove_dir_if_exists(&scratch_dir(fjord, task.id));
    }
    fjord.notify_failure(task, &message, &|line| journal.log(line));
    fjord.notify_renewal_failure(task, &message, &|line| journal.log(line));
    Ended::Recorded
}

/// Runs a store operation until it succeeds or fails for a reason that trying again cannot
/// change, waiting longer between tries (up to 5 s): an outcome that is not recorded would
/// leave its task `processing` for good.
pub(crate) fn retry_transient<T>(mut op: impl FnMut() -> store::Result<T>) -> store::Result<T> {
    let mut wait = Duration::from_millis(50);
    let mut warned = false;
    loop {
        match op() {
            Ok(value) => return Ok(value),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "the state database refused a write ({e}); retrying");
                    warned = true;
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

impl Fjord {
    /// Runs a dispatcher in this thread until there is nothing left to do.
    pub fn dispatch_until_idle(self: &Arc<Self>, concurrency: usize) -> Result<()> {
        let dispatcher = Dispatcher::new(self.clone())?;
        let stop = AtomicBool::new(false);
        dispatcher.run(
            &DispatcherOptions {
                background: false,
                concurrency,
                until_idle: true,
                log_rotation: Default::default(),
                disk: DiskThresholds::default(),
                monitor_every: None,
            },
            &stop,
        )
    }
}

/// What the service manager was last told of the running tasks, so it is told only changes.
#[derive(Default)]
struct Told(Option<(usize, bool)>);

impl Told {
    fn status(&mut self, running: usize, stopping: bool) {
        if self.0 == Some((running, stopping)) {
            return;
        }
        self.0 = Some((running, stopping));
        let tasks = match running {
            1 => "1 running task".to_string(),
            n => format!("{n} running tasks"),
        };
        host::service_manager::notify_status(&if stopping {
            format!("stopping: waiting for {tasks}")
        } else {
            tasks
        });
    }
}
