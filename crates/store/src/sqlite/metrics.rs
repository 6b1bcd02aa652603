//! What `/metrics` reads from the state, and the counters kept for it.

use model::SiteStatus;
use rusqlite::{Connection, Transaction, params};

use crate::{Result, ServiceState, StateMetrics, TASK_DURATION_BUCKETS_S, TaskDurations};

/// Adds one to counter `name`, in the caller's transaction.
pub(super) fn count(tx: &Transaction, name: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO counters (name, value) VALUES (?1, 1)
         ON CONFLICT (name) DO UPDATE SET value = value + 1",
        params![name],
    )?;
    Ok(())
}

pub(super) fn read(c: &mut Connection, sites: Vec<(SiteStatus, u64)>) -> Result<StateMetrics> {
    // One read transaction: the figures of one scrape describe one moment.
    let tx = c.transaction()?;
    let mut metrics = StateMetrics {
        sites,
        ..StateMetrics::default()
    };
    {
        let mut stmt = tx.prepare(
            "SELECT kind, status, count(*) FROM tasks GROUP BY kind, status ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        metrics.tasks = rows.collect::<rusqlite::Result<_>>()?;
    }
    {
        let buckets: Vec<String> = TASK_DURATION_BUCKETS_S
            .iter()
            .map(|s| format!("sum(d <= {})", (s * 1000.0) as i64))
            .collect();
        let mut stmt = tx.prepare(&format!(
            "SELECT kind, sum(d), count(*), {} FROM
               (SELECT kind, finished_at - started_at AS d FROM tasks
                WHERE finished_at IS NOT NULL AND started_at IS NOT NULL)
             GROUP BY kind ORDER BY kind",
            buckets.join(", ")
        ))?;
        let rows = stmt.query_map([], |r| {
            let mut at_most = Vec::with_capacity(TASK_DURATION_BUCKETS_S.len());
            for i in 0..TASK_DURATION_BUCKETS_S.len() {
                at_most.push(r.get::<_, u64>(3 + i)?);
            }
            Ok(TaskDurations {
                kind: r.get(0)?,
                sum_seconds: r.get::<_, i64>(1)? as f64 / 1000.0,
                count: r.get(2)?,
                at_most,
            })
        })?;
        metrics.durations = rows.collect::<rusqlite::Result<_>>()?;
    }
    metrics.oldest_queued_at = tx.query_row(
        "SELECT min(created_at) FROM tasks WHERE status = 'queued'",
        [],
        |r| r.get(0),
    )?;
    {
        let mut stmt = tx.prepare(
            "SELECT s.name, (SELECT max(b.created_at) FROM backups b WHERE b.site_id = s.id)
             FROM sites s WHERE s.status IN ('installed', 'disabled') ORDER BY s.name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        metrics.newest_backups = rows.collect::<rusqlite::Result<_>>()?;
    }
    {
        let mut stmt = tx.prepare("SELECT name, value FROM counters ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        metrics.counters = rows.collect::<rusqlite::Result<_>>()?;
    }
    {
        // Only servers the monitor watches: a daemon of one it no longer watches is not known.
        let mut stmt = tx.prepare(
            "SELECT s.name, d.service, d.up, d.restarts FROM service_states d
             JOIN servers s ON s.id = d.server_id WHERE s.monitor ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ServiceState {
                server: r.get(0)?,
                service: r.get(1)?,
                up: r.get(2)?,
                restarts: r.get(3)?,
            })
        })?;
        metrics.services = rows.collect::<rusqlite::Result<_>>()?;
    }
    Ok(metrics)
}
