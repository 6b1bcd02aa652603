//! A task's journal across machines: each entry names the machine its undo is made on (the
//! machine fjord runs on, or a remote server), and a rollback or a purge of the entries goes
//! to each machine with that machine's entries, through its link.

use std::path::PathBuf;
use std::sync::Arc;

use host::remote::{Call, Endpoint, Link, RemoteSteps};
use host::{Committers, Journal, LiveSteps, SplitSteps, Steps};
use model::Server;
use store::JournalEntry;
use store::TaskEffect;

use super::StoreJournal;
use crate::Fjord;
use crate::scripts::{self, DbReach, ScriptEnv, TaskObjects};

/// Entries as `host::rollback` takes them: step, undo (JSON), saved content.
type Entries = Vec<(String, String, Option<Vec<u8>>)>;

/// The task's entries split by machine, in the order their last entries were made (so the
/// machine stepped on last is undone first).
fn by_machine(entries: &[JournalEntry]) -> Vec<(Option<i64>, Entries)> {
    let mut order: Vec<Option<i64>> = Vec::new();
    for e in entries.iter().rev() {
        if !order.contains(&e.machine) {
            order.push(e.machine);
        }
    }
    order
        .into_iter()
        .map(|machine| {
            let mine = entries
                .iter()
                .filter(|e| e.machine == machine)
                .map(|e| (e.step.clone(), e.undo.clone(), e.saved.clone()))
                .collect();
            (machine, mine)
        })
        .collect()
}

/// The endpoint of the remote server `id`, as the state has it now.
fn endpoint_of(fjord: &Fjord, id: i64) -> host::Result<Endpoint> {
    let server = fjord.store().server(id).map_err(|e| {
        host::HostError::Refused(format!(
            "the server whose machine holds these journal entries (id {id}) is not in the \
             state: {e}"
        ))
    })?;
    crate::remote::endpoint(&server).ok_or_else(|| {
        host::HostError::Refused(format!(
            "server {} is no longer remote, but the journal names it as the machine of an undo",
            server.name
        ))
    })
}

/// Undoes the task's entries on every machine they were made on. Goes on past a machine that
/// fails, so that as much as can be put back is, and returns the first failure: a machine that
/// cannot be reached fails with [`host::HostError::Unreachable`], and its entries are still
/// owed.
pub(super) fn rollback_everywhere(
    fjord: &Fjord,
    committers: &Committers,
    entries: &[JournalEntry],
    journal: &StoreJournal,
) -> host::Result<()> {
    let mut first_failure = None;
    for (machine, mine) in by_machine(entries) {
        let result = match machine {
            None => host::rollback(&mine, committers, &|line| journal.log(line)),
            Some(id) => endpoint_of(fjord, id).and_then(|endpoint| {
                journal.log(&format!("rolling back on server {}", endpoint.name));
                let machines = fjord.machines();
                machines.call(&endpoint, Call::Rollback { entries: mine }, journal)?;
                // Its dumps served the undos just made.
                let task_id = entries.first().map_or(0, |e| e.task_id);
                let scratch = remote_scratch(&endpoint, task_id);
                machines
                    .call(&endpoint, Call::RemoveScratch { scratch }, journal)
                    .map(|_| ())
            }),
        };
        if let Err(e) = result {
            journal.log(&e.to_string());
            match (&first_failure, &e) {
                // A machine out of reach owes its undos: the task is kept for them, whatever
                // else failed (the rest is undone again then, each undo being idempotent, and
                // says again what it says now).
                (Some(host::HostError::Unreachable(_)), _) => {}
                (_, host::HostError::Unreachable(_)) => first_failure = Some(e),
                // Else a lost undo's data is what the caller must know of first.
                (None, _) | (Some(_), host::HostError::UndoDataLost(_)) => first_failure = Some(e),
                _ => {}
            }
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// Purges what a task that succeeded set aside on remote servers, and its scratch dirs there
/// (what it set aside here is purged from its [`host::Trash`]). Returns whether the task had
/// remote entries; a machine that cannot be reached keeps its trash, logged.
pub(super) fn purge_remote(fjord: &Fjord, task_id: i64, journal: &StoreJournal) -> bool {
    let Ok(entries) = fjord.store().journal(task_id) else {
        return false;
    };
    let mut any = false;
    for (machine, mine) in by_machine(&entries) {
        let Some(id) = machine else { continue };
        any = true;
        let purged = endpoint_of(fjord, id).and_then(|endpoint| {
            let machines = fjord.machines();
            machines.call(&endpoint, Call::Purge { entries: mine }, journal)?;
            machines.call(
                &endpoint,
                Call::RemoveScratch {
                    scratch: remote_scratch(&endpoint, task_id),
                },
                journal,
            )
        });
        if let Err(e) = purged {
            journal.log(&format!(
                "could not purge what the task set aside on a remote server: {e}"
            ));
        }
    }
    any
}

/// A machine a task steps on: the one fjord runs on, or a remote server through its link.
pub(super) enum Machine {
    Here,
    Remote {
        server_id: i64,
        endpoint: Endpoint,
        link: Arc<Link>,
    },
}

impl Machine {
    /// `server`'s machine, its link opened if it is remote.
    pub(super) fn of(fjord: &Fjord, server: &Server) -> host::Result<Machine> {
        Ok(match crate::remote::endpoint(server) {
            None => Machine::Here,
            Some(endpoint) => Machine::Remote {
                server_id: server.id,
                link: fjord.machines().link(&endpoint)?,
                endpoint,
            },
        })
    }

    fn same(&self, other: &Machine) -> bool {
        match (self, other) {
            (Machine::Here, Machine::Here) => true,
            (Machine::Remote { server_id: a, .. }, Machine::Remote { server_id: b, .. }) => a == b,
            _ => false,
        }
    }

    /// This machine's address as `other` sees it: a remote server's own address, or the
    /// address the other machine saw fjord's own connection come from.
    fn seen_from(&self, other: &Machine) -> Option<String> {
        match (self, other) {
            (Machine::Remote { endpoint, .. }, _) => Some(endpoint.host.clone()),
            (Machine::Here, Machine::Remote { link, .. }) => link.peer.clone(),
            (Machine::Here, Machine::Here) => None,
        }
    }

    /// Reads of this machine.
    pub(super) fn reads(&self) -> Option<(Arc<dyn host::Reads>, PathBuf)> {
        match self {
            Machine::Here => None,
            Machine::Remote { link, endpoint, .. } => Some((
                Arc::new(host::remote::RemoteReads::new(link.clone())),
                endpoint.dir.clone(),
            )),
        }
    }
}

/// The machines of a task: its server's, and its site's database server's when that is
/// another machine.
pub(super) fn machines_of(
    fjord: &Fjord,
    objects: &TaskObjects,
) -> host::Result<(Machine, Option<Machine>)> {
    let web = Machine::of(fjord, &objects.server)?;
    let db = match &objects.db_server {
        Some(server) => Some(Machine::of(fjord, server)?).filter(|db| !db.same(&web)),
        None => None,
    };
    Ok((web, db))
}

/// How the two machines of a site reach each other.
pub(super) fn db_reach(web: &Machine, db: &Machine) -> host::Result<DbReach> {
    let unknown = || {
        host::HostError::Refused(
            "the address by which the web server and the database server reach each other \
             is not known"
                .into(),
        )
    };
    Ok(DbReach {
        client_host: web.seen_from(db).ok_or_else(unknown)?,
        server_host: db.seen_from(web).ok_or_else(unknown)?,
    })
}

/// Runs the task's script with its steps made on their machines: each step on the machine it
/// changes, journaled here with that machine. `here` is the task's steps on the machine
/// fjord runs on (whose trash the caller purges); `spare` another, for a second remote
/// machine's few steps of this one (none of which sets anything aside).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_script(
    env: &ScriptEnv,
    task: &model::Task,
    objects: &TaskObjects,
    journal: &StoreJournal,
    here: &mut LiveSteps,
    spare: &mut LiveSteps,
    web: Machine,
    db: Option<Machine>,
) -> crate::Result<TaskEffect> {
    let run = |x: &mut dyn Steps| scripts::run(env, task.kind, objects, &task.args, x);
    let journal_of = |server_id: i64| StoreJournal {
        machine: Some(server_id),
        ..journal.clone()
    };
    let on = |endpoint: &Endpoint, link: &Link, role: &str| {
        journal.log(&format!(
            "{role} on server {} ({}, {})",
            endpoint.name,
            endpoint.target(),
            link.hostname
        ));
    };
    match (web, db) {
        (Machine::Here, None | Some(Machine::Here)) => run(here),
        (
            Machine::Remote {
                server_id,
                endpoint,
                link,
            },
            None,
        ) => {
            on(&endpoint, &link, "steps");
            let remote_journal = journal_of(server_id);
            let scratch = remote_scratch(&endpoint, task.id);
            run(&mut RemoteSteps::new(
                link,
                &remote_journal,
                journal,
                here,
                scratch,
            ))
        }
        (
            Machine::Here,
            Some(Machine::Remote {
                server_id,
                endpoint,
                link,
            }),
        ) => {
            on(&endpoint, &link, "the database's steps");
            let db_journal = journal_of(server_id);
            let scratch = remote_scratch(&endpoint, task.id);
            let mut db = RemoteSteps::new(link, &db_journal, journal, spare, scratch);
            run(&mut SplitSteps {
                web: here,
                db: &mut db,
            })
        }
        (
            Machine::Remote {
                server_id,
                endpoint,
                link,
            },
            Some(db),
        ) => {
            on(&endpoint, &link, "steps");
            let web_journal = journal_of(server_id);
            let web_scratch = remote_scratch(&endpoint, task.id);
            match db {
                Machine::Here => {
                    let mut web = RemoteSteps::new(link, &web_journal, journal, spare, web_scratch);
                    run(&mut SplitSteps {
                        web: &mut web,
                        db: here,
                    })
                }
                Machine::Remote {
                    server_id: db_id,
                    endpoint: db_endpoint,
                    link: db_link,
                } => {
                    on(&db_endpoint, &db_link, "the database's steps");
                    let db_journal = journal_of(db_id);
                    let db_scratch = remote_scratch(&db_endpoint, task.id);
                    let mut web = RemoteSteps::new(link, &web_journal, journal, here, web_scratch);
                    let mut db = RemoteSteps::new(db_link, &db_journal, journal, spare, db_scratch);
                    run(&mut SplitSteps {
                        web: &mut web,
                        db: &mut db,
                    })
                }
            }
        }
    }
}

/// A task's scratch dir on a remote server.
pub(super) fn remote_scratch(endpoint: &Endpoint, task_id: i64) -> PathBuf {
    endpoint.dir.join("journal").join(format!("task-{task_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, machine: Option<i64>) -> JournalEntry {
        JournalEntry {
            task_id: 1,
            seq,
            step: format!("step {seq}"),
            undo: "{}".into(),
            saved: None,
            machine,
        }
    }

    #[test]
    fn the_machine_stepped_on_last_is_undone_first_each_with_its_own_entries() {
        let entries = [
            entry(1, None),
            entry(2, Some(7)),
            entry(3, None),
            entry(4, Some(7)),
        ];
        let split = by_machine(&entries);
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].0, Some(7));
        assert_eq!(
            split[0].1.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            ["step 2", "step 4"]
        );
        assert_eq!(split[1].0, None);
        assert_eq!(split[1].1.len(), 2);
    }
}
