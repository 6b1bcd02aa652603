//! Tasks' log lines, written to the state a batch at a time.
//!
//! A task logs a line per step and more (a static site's verify logs about eight); written
//! one transaction each, 10,000 verifies running side by side queued on the state's write
//! lock behind each other's lines. Lines are gathered here and written by one thread every
//! [`FLUSH_EVERY`], all tasks' lines in one transaction, in the order they were logged (each
//! with the time it was logged). What must be in the state before something else is (the
//! lines before a task's outcome, a line that must survive a full disk) is written at once
//! with whatever waits: [`TaskLogs::flush_durably`].
//!
//! A dispatcher killed outright loses at most the last [`FLUSH_EVERY`] of lines, as it loses
//! whatever its tasks were doing: the next dispatcher logs the rollback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use store::{PendingLogLine, Store};

use super::retry_transient;
use crate::Fjord;

/// How long a line waits at most before it is written (and seen by `task log --follow`).
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Lines kept for a later try when the state refuses a write: beyond this, the oldest go
/// (a task's log must never fail or stall the task it describes).
const KEEP_AT_MOST: usize = 100_000;

#[derive(Default)]
pub(super) struct TaskLogs {
    pending: Mutex<Vec<PendingLogLine>>,
    /// Held while lines are taken and written, so that two writers never swap the order of
    /// one task's lines.
    writing: Mutex<()>,
    arrived: Condvar,
    stop: AtomicBool,
    /// Whether a writer thread runs: without one (a dispatcher asked to recover outside its
    /// run), every line is written at once.
    writer_running: AtomicBool,
}

impl TaskLogs {
    /// Keeps a line of `task_id`'s log, stamped now, for the next write.
    pub(super) fn push_only(&self, task_id: i64, line: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.push(PendingLogLine {
            task_id,
            at: store::now_ms(),
            line: line.to_string(),
        });
        if pending.len() == 1 {
            self.arrived.notify_one();
        }
    }

    /// Keeps a line of `task_id`'s log, stamped now, for the next write (made at once when
    /// no writer thread runs).
    pub(super) fn push(&self, store: &dyn Store, task_id: i64, line: &str) {
        self.push_only(task_id, line);
        if !self.writer_running.load(Ordering::Relaxed) {
            self.flush(store);
        }
    }

    /// Writes every line kept so far, once; lines the state refuses are kept for the next
    /// write.
    pub(super) fn flush(&self, store: &dyn Store) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let lines = self.take();
        if lines.is_empty() {
            return;
        }
        if store.append_logs(&lines).is_err() {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let newer = std::mem::replace(&mut *pending, lines);
            pending.extend(newer);
            let over = pending.len().saturating_sub(KEEP_AT_MOST);
            pending.drain(..over);
        }
    }

    /// Writes every line kept so far, retrying while the state's error is transient (a full
    /// disk): what comes next (a task's outcome) must find them written.
    pub(super) fn flush_durably(&self, store: &dyn Store) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let lines = self.take();
        if !lines.is_empty() {
            let _ = retry_transient(|| store.append_logs(&lines));
        }
    }

    fn take(&self) -> Vec<PendingLogLine> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Writes lines as they come, every [`FLUSH_EVERY`], until [`TaskLogs::stop`]; then
    /// writes what is left.
    pub(super) fn spawn_writer(self: &Arc<Self>, fjord: Arc<Fjord>) -> std::thread::JoinHandle<()> {
        let logs = self.clone();
        self.stop.store(false, Ordering::Relaxed);
        self.writer_running.store(true, Ordering::Relaxed);
        std::thread::spawn(move || {
            while !logs.stop.load(Ordering::Relaxed) {
                {
                    let pending = logs.pending.lock().unwrap_or_else(|p| p.into_inner());
                    if pending.is_empty() {
                        let _ = logs
                            .arrived
                            .wait_timeout(pending, FLUSH_EVERY)
                            .unwrap_or_else(|p| p.into_inner());
                    }
                }
                // Lines logged together (a burst of tasks' steps) go in one write.
                std::thread::sleep(FLUSH_EVERY);
                logs.flush(fjord.store());
            }
            logs.writer_running.store(false, Ordering::Relaxed);
            logs.flush_durably(fjord.store());
        })
    }

    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.arrived.notify_all();
    }
}
