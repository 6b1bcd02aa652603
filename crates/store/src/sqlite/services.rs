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

#[cfg(test)]
mod tests {
    use model::{HttpService, NginxService, ReloadMethod, ServiceEvent, ServiceEventKind};

    use crate::{SERVICE_EVENTS_KEPT, SqliteStore, Store};

    fn server(s: &SqliteStore, name: &str, monitor: bool) -> i64 {
        let path = |p: &str| model::AbsPath::parse("p", p).unwrap();
        let server = model::Server {
            id: 0,
            name: model::Name::parse("n", name).unwrap(),
            http: HttpService::Nginx(NginxService {
                binary: path("/usr/sbin/nginx"),
                config: path("/etc/nginx/nginx.conf"),
                prefix: None,
                include_dir: path("/etc/nginx/conf.d"),
                listen: vec!["127.0.0.1:80".parse().unwrap()],
                https_listen: Vec::new(),
                reload: ReloadMethod::Signal,
                files_owner: None,
                web_group: None,
                restart: Default::default(),
            }),
            db: Vec::new(),
            php: Vec::new(),
            monitor,
            remote: None,
        };
        s.insert_server(&server, None).unwrap().0.id
    }

    fn event(server_id: i64, service: &str, event: ServiceEventKind, at: i64) -> ServiceEvent {
        ServiceEvent {
            server_id,
            service: service.into(),
            event,
            detail: format!("{event} at {at}"),
            at,
        }
    }

    #[test]
    fn events_set_a_daemons_state_and_count_its_restarts_and_only_the_newest_are_kept() {
        let s = SqliteStore::open_in_memory().unwrap();
        let (a, b) = (server(&s, "a", true), server(&s, "b", false));
        s.note_service_up(a, "mysql").unwrap();
        for (at, kind) in [
            ServiceEventKind::Down,
            ServiceEventKind::Restarted,
            ServiceEventKind::RestartFailed,
            ServiceEventKind::Restarted,
        ]
        .into_iter()
        .enumerate()
        {
            s.record_service_event(&event(a, "nginx", kind, at as i64))
                .unwrap();
        }
        s.record_service_event(&event(b, "nginx", ServiceEventKind::Down, 9))
            .unwrap();
        // A daemon already known keeps its state when noted up again.
        s.note_service_up(a, "nginx").unwrap();
        assert_eq!(
            s.service_states().unwrap(),
            [
                (a, "mysql".to_string(), true),
                (a, "nginx".to_string(), false),
                (b, "nginx".to_string(), false)
            ]
        );
        let metrics = s.metrics().unwrap().services;
        // Server b's monitor is off: its daemons are not reported.
        assert_eq!(metrics.len(), 2, "{metrics:?}");
        let nginx = metrics.iter().find(|d| d.service == "nginx").unwrap();
        assert_eq!(
            (nginx.server.as_str(), nginx.up, nginx.restarts),
            ("a", false, 2)
        );
        s.record_service_event(&event(a, "nginx", ServiceEventKind::Back, 4))
            .unwrap();
        let events = s.service_events(a, 2).unwrap();
        assert_eq!(
            events.iter().map(|e| e.event).collect::<Vec<_>>(),
            [ServiceEventKind::Back, ServiceEventKind::Restarted],
            "newest first"
        );
        assert!(s.metrics().unwrap().services.iter().all(|d| d.up));

        for at in 0..i64::from(SERVICE_EVENTS_KEPT) + 10 {
            s.record_service_event(&event(a, "mysql", ServiceEventKind::Down, 100 + at))
                .unwrap();
        }
        let kept = s.service_events(a, 1000).unwrap();
        assert_eq!(kept.len(), SERVICE_EVENTS_KEPT as usize);
        assert_eq!(kept[0].at, 100 + i64::from(SERVICE_EVENTS_KEPT) + 9);
        // Another server's events are its own to keep.
        assert_eq!(s.service_events(b, 1000).unwrap().len(), 1);
        // Restarts are counted apart from the events, which are trimmed.
        let nginx = s.metrics().unwrap().services;
        let nginx = nginx.iter().find(|d| d.service == "nginx").unwrap();
        assert_eq!(nginx.restarts, 2);
    }
}
