//! The task queue: claiming a task under the lock rules, recording its outcome, and taking
//! over a dead dispatcher's task. Each claim of a task is numbered (`tasks.claim`), and an
//! outcome is recorded only by the claim that still holds the task: a dispatcher that lost
//! it (recovered by another, retried and claimed again) changes nothing.

use super::*;

fn claim_of(c: &Connection, id: i64) -> Result<Option<(String, i64)>> {
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

/// What the locks of running work are computed from: the platform of each site some work is
/// on or waiting for, and each platform's server.
struct LockMap {
    platform_of: HashMap<i64, i64>,
    server_of: HashMap<i64, i64>,
}

impl LockMap {
    fn load(tx: &Connection) -> Result<LockMap> {
        let platform_of = {
            let mut stmt = tx.prepare(
                "SELECT s.id, s.platform_id FROM sites s JOIN tasks t
                 ON t.target_type = 'site' AND t.target_id = s.id
                 WHERE t.status IN ('queued', 'processing')
                 UNION SELECT s.id, s.platform_id FROM sites s JOIN cron_runs r ON r.site_id = s.id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let server_of = {
            let mut stmt = tx.prepare("SELECT id, server_id FROM platforms")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        Ok(LockMap {
            platform_of,
            server_of,
        })
    }

    fn server_of(&self, platform: i64) -> Option<i64> {
        self.server_of.get(&platform).copied()
    }

    fn of_task(&self, t: &Task) -> Vec<(LockKey, bool)> {
        let server_of = |p| self.server_of(p);
        match t.target {
            Target::Site(id) => t.locks(self.platform_of.get(&id).copied(), &server_of),
            _ => t.locks(None, &server_of),
        }
    }

    fn of_site(&self, site: i64, platform: Option<i64>) -> Vec<(LockKey, bool)> {
        model::site_locks(site, platform, &|p| self.server_of(p))
    }

    /// The locks held by processing tasks and by running crons.
    fn held(&self, tx: &Connection) -> Result<Vec<(LockKey, bool)>> {
        let mut held: Vec<_> = query_tasks(
            tx,
            &format!("SELECT {TASK_COLS} FROM tasks WHERE status = 'processing'"),
            [],
        )?
        .iter()
        .flat_map(|t| self.of_task(t))
        .collect();
        let mut stmt = tx.prepare("SELECT site_id FROM cron_runs")?;
        let crons = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        for site in crons {
            let site = site?;
            held.extend(self.of_site(site, self.platform_of.get(&site).copied()));
        }
        Ok(held)
    }
}

fn queued_tasks(tx: &Connection) -> Result<Vec<Task>> {
    query_tasks(
        tx,
        &format!("SELECT {TASK_COLS} FROM tasks WHERE status = 'queued' ORDER BY id LIMIT 1000"),
        [],
    )
}

pub(super) fn claim_next(c: &mut Connection, owner: &str) -> Result<Option<RunningTask>> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let map = LockMap::load(&tx)?;
    let locks_of = |t: &Task| map.of_task(t);
    let mut held = map.held(&tx)?;
    let queued = queued_tasks(&tx)?;
    for task in queued {
        let locks = locks_of(&task);
        if locks_conflict(&locks, &held) {
            // Reserve its locks so that a younger task on the same object cannot
            // overtake it.
            held.extend(locks);
            continue;
        }
        tx.execute(
            "UPDATE tasks SET status = 'processing', started_at = ?2, owner = ?3,
             claim = claim + 1 WHERE id = ?1",
            params![task.id, now_ms(), owner],
        )?;
        let claimed = get_task(&tx, task.id)?;
        let seq = claim_of(&tx, task.id)?.map(|(_, seq)| seq).unwrap_or(0);
        tx.commit()?;
        return Ok(Some(RunningTask {
            task: claimed,
            claim: Claim {
                owner: owner.to_string(),
                seq,
            },
        }));
    }
    Ok(None)
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
    let platform: Option<i64> = tx
        .query_row(
            "SELECT platform_id FROM sites WHERE id = ?1",
            [site_id],
            |r| r.get(0),
        )
        .optional()?;
    let map = LockMap::load(&tx)?;
    let locks = map.of_site(site_id, platform);
    let mut busy = map.held(&tx)?;
    // A task waiting for the site (or its platform, or server) goes first.
    busy.extend(queued_tasks(&tx)?.iter().flat_map(|t| map.of_task(t)));
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
    tx.execute(
        "DELETE FROM cron_runs WHERE site_id = ?1 AND owner = ?2",
        params![site_id, owner],
    )?;
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
