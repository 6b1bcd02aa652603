//! Recovery: what dead dispatchers left behind. Their tasks are rolled back and failed,
//! their cron runs ended, what their succeeded tasks set aside purged, and the scratch dirs
//! of ended tasks removed.

use host::{FileLock, Journal};
use model::TaskStatus;
use store::RunningTask;

use super::{Dispatcher, Ended, StoreJournal, finish_failed, scratch_dir, session_tag};
use crate::{Result, scripts};

impl Dispatcher {
    /// Rolls back and fails every processing task whose dispatcher is dead.
    pub fn recover(&self) -> Result<()> {
        for running in self.fjord.store().running_tasks()? {
            let dead = &running.claim.owner;
            if *dead == self.owner {
                continue;
            }
            let lock_path = self.fjord.run_dir().join(format!("dispatcher-{dead}.lock"));
            let Some(_held) = FileLock::try_acquire(&lock_path)? else {
                continue;
            };
            // Another dispatcher may have seen the same death and taken the task first (and
            // it may have been retried and claimed again since): only the one that takes
            // the dead claim over rolls the task back and records it.
            let Some(claim) =
                self.fjord
                    .store()
                    .adopt_task(running.task.id, &running.claim, &self.owner)?
            else {
                continue;
            };
            let journal = StoreJournal {
                store: self.fjord.store(),
                logs: &self.logs,
                task_id: running.task.id,
                machine: None,
                steps: None,
            };
            journal.log(&format!(
                "dispatcher {dead} died while running this task; rolling back"
            ));
            self.end_sessions_of(dead, &journal);
            let seq = claim.seq;
            let ended = finish_failed(
                &self.fjord,
                &self.committers,
                &self.logs,
                &RunningTask {
                    task: running.task.clone(),
                    claim,
                },
                "interrupted; rolled back",
            );
            if ended == Ended::RollbackOwed {
                self.owe_rollback(running.task.id, seq);
            }
            let _ = host::remove_file_if_exists(&lock_path.with_extension("sock"));
            let _ = host::remove_file_if_exists(&lock_path);
        }
        self.end_dead_crons()?;
        self.purge_left_behind()?;
        self.sweep_scratch_dirs()
    }

    /// Ends the cron runs of dead dispatchers (their PHP died with them: see
    /// `host::process::child_command`), so that the sites they held are free again.
    fn end_dead_crons(&self) -> Result<()> {
        let store = self.fjord.store();
        for run in store.cron_runs()? {
            if run.owner == self.owner {
                continue;
            }
            let lock_path = self
                .fjord
                .run_dir()
                .join(format!("dispatcher-{}.lock", run.owner));
            let Some(_held) = FileLock::try_acquire(&lock_path)? else {
                continue;
            };
            store.record_cron(
                run.site_id,
                &run.owner,
                run.started_at,
                false,
                &format!("interrupted: dispatcher {} died during the run", run.owner),
            )?;
        }
        Ok(())
    }

    /// Removes the scratch dirs (`journal/task-N`, dumps for undos) of tasks that have ended
    /// and whose set-aside state is purged: a dispatcher that died between recording a task
    /// and removing its dir left it. A rollback that lost data keeps its dir for an operator.
    fn sweep_scratch_dirs(&self) -> Result<()> {
        let store = self.fjord.store();
        let journal_dir = self.fjord.data_dir().join("journal");
        let unpurged: Vec<i64> = store
            .unpurged_tasks()?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        for dir in host::list_subdirs(&journal_dir)? {
            let Some(id) = dir
                .strip_prefix("task-")
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            let ended = match store.task(id) {
                Ok(task) => {
                    !matches!(task.status, TaskStatus::Queued | TaskStatus::Processing)
                        && !task
                            .error
                            .as_deref()
                            .is_some_and(|e| e.contains("needs attention:"))
                }
                Err(store::StoreError::NotFound(_)) => true,
                Err(e) => return Err(e.into()),
            };
            if ended && !unpurged.contains(&id) {
                host::remove_dir_if_exists(&journal_dir.join(&dir))?;
            }
        }
        Ok(())
    }

    /// Ends what a dead dispatcher's database sessions are still doing on every database
    /// server, so that its task's rollback does not race them.
    fn end_sessions_of(&self, owner: &str, journal: &StoreJournal) {
        let Ok(servers) = self.fjord.store().servers() else {
            return;
        };
        // A remote server's sessions were the dead dispatcher's agent's, which ended with its
        // SSH session.
        for service in servers
            .iter()
            .filter(|s| !s.is_remote())
            .flat_map(|s| s.db.iter())
        {
            if let Some(ctl) = scripts::db_ctl(service)
                && let Err(e) = ctl.end_sessions_tagged(&session_tag(owner))
            {
                journal.log(&format!(
                    "could not end the dead dispatcher's sessions: {e}"
                ));
            }
        }
    }

    /// Purges what succeeded tasks of dead dispatchers set aside and never purged.
    fn purge_left_behind(&self) -> Result<()> {
        let store = self.fjord.store();
        for (task_id, owner) in store.unpurged_tasks()? {
            if owner == self.owner {
                continue;
            }
            let lock_path = self
                .fjord
                .run_dir()
                .join(format!("dispatcher-{owner}.lock"));
            let Some(_held) = FileLock::try_acquire(&lock_path)? else {
                continue;
            };
            // What it set aside here; what it set aside on remote servers is purged there.
            let entries: Vec<_> = store
                .journal(task_id)?
                .into_iter()
                .filter(|e| e.machine.is_none())
                .map(|e| (e.step, e.undo, e.saved))
                .collect();
            let journal = StoreJournal {
                store,
                logs: &self.logs,
                task_id,
                machine: None,
                steps: None,
            };
            journal.log(&format!(
                "dispatcher {owner} stopped before purging what this task set aside; purging it"
            ));
            host::Trash::from_journal(&entries).purge(&journal);
            super::machines::purge_remote(&self.fjord, task_id, &journal);
            store.journal_clear(task_id)?;
            let _ = host::remove_dir_if_exists(&scratch_dir(&self.fjord, task_id));
            let _ = host::remove_file_if_exists(&lock_path.with_extension("sock"));
            let _ = host::remove_file_if_exists(&lock_path);
        }
        Ok(())
    }
}
