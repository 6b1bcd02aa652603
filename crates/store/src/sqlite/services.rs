//! The monitor's record of servers' daemons: their events, and each one's state and restarts
//! for `/metrics`. The `Store` impl forwards to these.

use model::{ServiceEvent, ServiceEventKind};

use super::*;
use crate::SERVICE_EVENTS_KEPT;

impl SqliteStore {
    pub(super) fn record_service_event(&self, event: &ServiceEvent) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO service_events (server_id, service, event, detail, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    event.server_id,
                    event.service,
                    event.event.as_str(),
                    event.detail,
                    event.at
                ],
            )?;
            let (up, restarts) = match event.event {
                ServiceEventKind::Down | ServiceEventKind::RestartFailed => (false, 0),
                ServiceEventKind::Restarted => (false, 1),
                ServiceEventKind::Back => (true, 0),
            };
            tx.execute(
                "INSERT INTO service_states (server_id, service, up, restarts) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (server_id, service) \
                 DO UPDATE SET up = excluded.up, restarts = restarts + excluded.restarts",
                params![event.server_id, event.service, up, restarts],
            )?;
            tx.execute(
                "DELETE FROM service_events WHERE server_id = ?1 AND id <= \
                 (SELECT id FROM service_events WHERE server_id = ?1 \
                  ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![event.server_id, SERVICE_EVENTS_KEPT],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    pub(super) fn service_events(&self, server_id: i64, limit: u32) -> Result<Vec<ServiceEvent>> {
        self.with(|c| {
            collect(
                c,
                "SELECT server_id, service, event, detail, at FROM service_events \
                 WHERE server_id = ?1 ORDER BY id DESC LIMIT ?2",
                params![server_id, limit],
                |r| {
                    let event: String = r.get(2)?;
                    Ok((|| {
                        Ok(ServiceEvent {
                            server_id: r.get(0)?,
                            service: r.get(1)?,
                            event: ServiceEventKind::parse(&event)
                                .ok_or_else(|| corrupt(format!("service event {event:?}")))?,
                            detail: r.get(3)?,
                            at: r.get(4)?,
                        })
                    })())
                },
            )
        })
    }

    pub(super) fn service_states(&self) -> Result<Vec<(i64, String, bool)>> {
        self.with(|c| {
            collect(
                c,
                "SELECT server_id, service, up FROM service_states ORDER BY 1, 2",
                [],
                |r| Ok(Ok((r.get(0)?, r.get(1)?, r.get(2)?))),
            )
        })
    }

    pub(super) fn note_service_up(&self, server_id: i64, service: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO service_states (server_id, service, up) VALUES (?1, ?2, 1) \
                 ON CONFLICT (server_id, service) DO NOTHING",
                params![server_id, service],
            )?;
            Ok(())
        })
    }
}
