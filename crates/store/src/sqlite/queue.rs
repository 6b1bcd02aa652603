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

pub(super) fn claim_next(c: &mut Connection, owner: &str) -> Result<Option<RunningTask>> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let platform_of: HashMap<i64, i64> = {
        let mut stmt = tx.prepare(
            "SELECT s.id, s.platform_id FROM sites s JOIN tasks t
             ON t.target_type = 'site' AND t.target_id = s.id
             WHERE t.status IN ('queued', 'processing')",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let server_of: HashMap<i64, i64> = {
        let mut stmt = tx.prepare("SELECT id, server_id FROM platforms")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let server_of = |platform: i64| server_of.get(&platform).copied();
    let locks_of = |t: &Task| match t.target {
        Target::Site(id) => t.locks(platform_of.get(&id).copied(), &server_of),
        _ => t.locks(None, &server_of),
    };
    let mut held: Vec<_> = query_tasks(
        &tx,
        &format!("SELECT {TASK_COLS} FROM tasks WHERE status = 'processing'"),
        [],
    )?
    .iter()
    .flat_map(locks_of)
    .collect();
    let queued = query_tasks(
        &tx,
        &format!("SELECT {TASK_COLS} FROM tasks WHERE status = 'queued' ORDER BY id LIMIT 1000"),
        [],
    )?;
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
