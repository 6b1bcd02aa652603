//! The task queue: claiming a task under the lock rules, recording its outcome, and taking
//! over a dead dispatcher's task. Each claim of a task is numbered (`tasks.claim`), and an
//! outcome is recorded only by the claim that still holds the task: a dispatcher that lost
//! it (recovered by another, retried and claimed again) changes nothing.

use std::collections::HashSet;

use super::*;

pub(super) fn claim_of(c: &Connection, id: i64) -> Result<Option<(String, i64)>> {
    Ok(c.query_row(
        "SELECT owner, claim FROM tasks WHERE id = ?1 AND status = 'processing'",
        [id],
        |r| {
            Ok((
                r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                r.get(1)?,
            ))
        },
    )
    .optional()?)
}

/// What the locks of running work are computed from: each platform's server, and the
/// platform of each site some work is on or waiting for, read when first asked (a claim
/// usually looks at one queued task, however many are queued).
struct LockMap {
    platform_of: HashMap<i64, Option<i64>>,
    server_of: HashMap<i64, i64>,
}

impl LockMap {
    fn load(tx: &Connection) -> Result<LockMap> {
        let server_of = {
            let mut stmt = tx.prepare("SELECT id, server_id FROM platforms")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        Ok(LockMap {
            platform_of: HashMap::new(),
            server_of,
        })
    }

    fn platform_of(&mut self, tx: &Connection, site: i64) -> Result<Option<i64>> {
        if let Some(platform) = self.platform_of.get(&site) {
            return Ok(*platform);
        }
        let platform = tx
            .prepare_cached("SELECT platform_id FROM sites WHERE id = ?1")?
            .query_row([site], |r| r.get(0))
            .optional()?;
        self.platform_of.insert(site, platform);
        Ok(platform)
    }

    fn server_of(&self, platform: i64) -> Option<i64> {
        self.server_of.get(&platform).copied()
    }

    fn of_task(&mut self, tx: &Connection, t: &Task) -> Result<Vec<(LockKey, bool)>> {
        let platform = match t.target {
            Target::Site(id) => self.platform_of(tx, id)?,
            _ => None,
        };
        Ok(t.locks(platform, &|p| self.server_of(p)))
    }

    fn of_site(&mut self, tx: &Connection, site: i64) -> Result<Vec<(LockKey, bool)>> {
        let platform = self.platform_of(tx, site)?;
        Ok(model::site_locks(site, platform, &|p| self.server_of(p)))
    }

    /// The locks held by processing tasks and by running crons. A processing task's locks
    /// are computed once per claim and kept in `cache`: its target and arguments never change,
    /// nor, while it holds its site, the site's platform. Reading and parsing every processing
    /// task on each claim made a claim cost as much as the tasks waiting beside it for one
    /// nginx commit (thousands, when a platform's sites are verified).
    fn held(&mut self, tx: &Connection, cache: &mut HeldLocks) -> Result<Vec<(LockKey, bool)>> {
        let running: HashSet<(i64, i64)> = {
            let mut stmt =
                tx.prepare_cached("SELECT id, claim FROM tasks WHERE status = 'processing'")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        cache.retain(|claim, _| running.contains(claim));
        let mut held = Vec::new();
        for claim in running {
            let locks = match cache.entry(claim) {
                std::collections::hash_map::Entry::Occupied(cached) => cached.into_mut(),
                std::collections::hash_map::Entry::Vacant(vacant) => {
                    let task = get_task(tx, claim.0)?;
                    vacant.insert(self.of_task(tx, &task)?)
                }
            };
            held.extend(locks.iter().cloned());
        }
        let sites: Vec<i64> = {
            let mut stmt = tx.prepare("SELECT site_id FROM cron_runs")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for site in sites {
            held.extend(self.of_site(tx, site)?);
        }
        Ok(held)
    }
}

/// The locks of processing tasks, by task id and claim number (see [`LockMap::held`]).
pub(super) type HeldLocks = HashMap<(i64, i64), Vec<(LockKey, bool)>>;

/// The oldest queued task whose locks conflict with none of `held` nor of an older queued
/// task's (whose locks are added to `held`, so that a younger task on the same object cannot
/// overtake it). Reads queued tasks one by one, and stops at the first one that may run.
fn first_runnable(
    tx: &Connection,
    map: &mut LockMap,
    held: &mut Vec<(LockKey, bool)>,
) -> Result<Option<Task>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {TASK_COLS} FROM tasks WHERE status = 'queued' ORDER BY id LIMIT 1000"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let task = task_from_row(row)??;
        let locks = map.of_task(tx, &task)?;
        if !locks_conflict(&locks, held) {
            return Ok(Some(task));
        }
        held.extend(locks);
    }
    Ok(None)
}

pub(super) fn claim_next(
    c: &mut Connection,
    cache: &mut HeldLocks,
    owner: &str,
) -> Result<Option<RunningTask>> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut map = LockMap::load(&tx)?;
    let mut held = map.held(&tx, cache)?;
    let Some(task) = first_runnable(&tx, &mut map, &mut held)? else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE tasks SET status = 'processing', started_at = ?2, owner = ?3,
         claim = claim + 1 WHERE id = ?1",
        params![task.id, now_ms(), owner],
    )?;
    let claimed = get_task(&tx, task.id)?;
    let seq = claim_of(&tx, task.id)?.map(|(_, seq)| seq).unwrap_or(0);
    tx.commit()?;
    Ok(Some(RunningTask {
        task: claimed,
        claim: Claim {
            owner: owner.to_string(),
            seq,
        },
    }))
}

pub(super) fn finish_task(
    c: &mut Connection,
    id: i64,
    claim: &Claim,
    status: TaskStatus,
    error: Option<&str>,
    effect: &TaskEffect,
) -> Result<bool> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let recorded = tx.execute(
        "UPDATE tasks SET status = ?2, finished_at = ?3, error = ?4
         WHERE id = ?1 AND status = 'processing' AND owner = ?5 AND claim = ?6",
        params![id, status.as_str(), now_ms(), error, claim.owner, claim.seq],
    )?;
    if recorded == 0 {
        // Not this claim's task any more: its outcome and effect are someone else's.
        return Ok(false);
    }
    apply_effect(&tx, effect)?;
    tx.commit()?;
    Ok(true)
}

pub(super) fn adopt_task(
    c: &mut Connection,
    id: i64,
    from: &Claim,
    owner: &str,
) -> Result<Option<Claim>> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken = tx.execute(
        "UPDATE tasks SET owner = ?4, claim = claim + 1
         WHERE id = ?1 AND status = 'processing' AND owner = ?2 AND claim = ?3",
        params![id, from.owner, from.seq, owner],
    )?;
    if taken == 0 {
        return Ok(None);
    }
    let seq = claim_of(&tx, id)?.map(|(_, seq)| seq).unwrap_or(0);
    tx.commit()?;
    Ok(Some(Claim {
        owner: owner.to_string(),
        seq,
    }))
}

pub(super) fn running_tasks(c: &mut Connection) -> Result<Vec<RunningTask>> {
    let tasks = query_tasks(
        c,
        &format!("SELECT {TASK_COLS} FROM tasks WHERE status = 'processing' ORDER BY id"),
        [],
    )?;
    let mut out = Vec::new();
    for task in tasks {
        // A task finished between the two reads is no longer running.
        if let Some((owner, seq)) = claim_of(c, task.id)? {
            out.push(RunningTask {
                task,
                claim: Claim { owner, seq },
            });
        }
    }
    Ok(out)
}

/// Starts a site's cron run for `owner`, as a holder of the site's locks, if it is due from
/// `due` (None: never run), no task holds or waits for what it would lock, and no run of it
/// is under way; moves its due time on to `next`. All in one transaction with the task
/// claims, so a task and a cron never run on one site at once.
pub(super) fn take_due_cron(
    c: &mut Connection,
    cache: &mut HeldLocks,
    site_id: i64,
    due: Option<i64>,
    next: i64,
    owner: &str,
) -> Result<bool> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let running: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM cron_runs WHERE site_id = ?1)",
        [site_id],
        |r| r.get(0),
    )?;
    if running {
        return Ok(false);
    }
    let mut map = LockMap::load(&tx)?;
    let locks = map.of_site(&tx, site_id)?;
    let mut busy = map.held(&tx, cache)?;
    // A task waiting for the site (or its platform, or server) goes first.
    for task in query_tasks(
        &tx,
        &format!("SELECT {TASK_COLS} FROM tasks WHERE status = 'queued' ORDER BY id LIMIT 1000"),
        [],
    )? {
        busy.extend(map.of_task(&tx, &task)?);
    }
    if locks_conflict(&locks, &busy) {
        return Ok(false);
    }
    let moved = tx.execute(
        "UPDATE sites SET cron_next_at = ?3 WHERE id = ?1 AND cron_next_at IS ?2",
        params![site_id, due, next],
    )?;
    if moved != 1 {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO cron_runs (site_id, owner, started_at) VALUES (?1, ?2, ?3)",
        params![site_id, owner, now_ms()],
    )?;
    tx.commit()?;
    Ok(true)
}

/// Records how a site's cron run went and ends `owner`'s hold of the site, in one
/// transaction.
pub(super) fn record_cron(
    c: &mut Connection,
    site_id: i64,
    owner: &str,
    at: i64,
    ok: bool,
    message: &str,
) -> Result<()> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "UPDATE sites SET cron_last_at = ?2, cron_last_ok = ?3, cron_last_message = ?4 WHERE id = ?1",
        params![site_id, at, ok, message],
    )?;
    let ended = tx.execute(
        "DELETE FROM cron_runs WHERE site_id = ?1 AND owner = ?2",
        params![site_id, owner],
    )?;
    // Counted once per run that was this owner's to end: a run another dispatcher took over
    // is counted by the one that ends it.
    if ended > 0 {
        super::metrics::count(&tx, "cron_runs")?;
        if !ok {
            super::metrics::count(&tx, "cron_failures")?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn cron_runs(c: &mut Connection) -> Result<Vec<CronRun>> {
    let mut stmt =
        c.prepare("SELECT site_id, owner, started_at FROM cron_runs ORDER BY site_id")?;
    let rows = stmt.query_map([], |r| {
        Ok(CronRun {
            site_id: r.get(0)?,
            owner: r.get(1)?,
            started_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Where queued task `id` stands: the queued tasks before it, and the running (else the
/// oldest older queued) task on one of its objects that it must wait for. Read in one
/// transaction, for `--wait`'s status line.
pub(super) fn queue_place(c: &mut Connection, id: i64) -> Result<crate::QueuePlace> {
    let tx = c.transaction()?;
    let task = get_task(&tx, id)?;
    let ahead: i64 = tx.query_row(
        "SELECT count(*) FROM tasks WHERE status = 'queued' AND id < ?1",
        [id],
        |r| r.get(0),
    )?;
    let mut map = LockMap::load(&tx)?;
    let locks = map.of_task(&tx, &task)?;
    let mut waits_for = None;
    for sql in [
        format!("SELECT {TASK_COLS} FROM tasks WHERE status = 'processing' ORDER BY id"),
        format!(
            "SELECT {TASK_COLS} FROM tasks WHERE status = 'queued' AND id < ?1 ORDER BY id \
             LIMIT 1000"
        ),
    ] {
        let mut stmt = tx.prepare(&sql)?;
        let mut rows = if sql.contains("?1") {
            stmt.query([id])?
        } else {
            stmt.query([])?
        };
        while let Some(row) = rows.next()? {
            let other = task_from_row(row)??;
            if other.id != id && locks_conflict(&locks, &map.of_task(&tx, &other)?) {
                waits_for = Some(other.id);
                break;
            }
        }
        if waits_for.is_some() {
            break;
        }
    }
    Ok(crate::QueuePlace {
        ahead: ahead as usize,
        waits_for,
    })
}
