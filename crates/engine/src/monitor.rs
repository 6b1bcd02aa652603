//! The self-healing monitor: a dispatcher's thread that probes every monitored server's nginx,
//! php-fpm masters and database servers every few seconds (`host::probe`), restarts one found
//! down, records what it saw (`service_events`) and mails the administrators.
//!
//! It does not flap: a daemon is down only after two failed probes in a row at least
//! [`CONFIRM`] apart; a daemon fjord is reloading (its committer holds the config lock) is
//! not probed, since a reload is not a death; after a restart the daemon has time to come up
//! before it may be restarted again, and once restarts keep failing they are tried ever less
//! often. The administrators are mailed once a restart (the first three of an outage) and
//! once when a restart fails (the first failure of an outage). One monitor acts per
//! installation, however many dispatchers run: the one holding `run/monitor.lock`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use host::{DbCtl, FileLock, PhpFpmCtl, RestartHow};
use model::{DbEngine, HttpService, Server, ServiceEvent, ServiceEventKind};

use crate::Fjord;
use crate::scripts::{ScriptEnv, db_ctl};

/// The least time between the first and the second failed probe that make a daemon down.
pub const CONFIRM: Duration = Duration::from_secs(2);
/// Restarts in a row after which the monitor waits longer between them, and has told the
/// administrators that it cannot bring the daemon back.
const RESTARTS_BEFORE_BACKOFF: u32 = 3;
/// The longest wait between restarts that keep failing.
const LONGEST_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// One daemon of a server, as the monitor probes and restarts it.
struct Daemon {
    /// `nginx`, `php-fpm-8.2`, `mysql`, `postgresql`.
    service: String,
    probe: Probe,
    /// How to start it again; `Err` says why there is no way.
    restart: Result<RestartHow, String>,
    /// The lock its committer holds while it changes and reloads the daemon's config.
    reload_lock: Option<PathBuf>,
}

enum Probe {
    Http(std::net::SocketAddr),
    PhpFpm(Box<PhpFpmCtl>),
    Db(Box<DbCtl>),
}

impl Probe {
    fn run(&self) -> Result<(), String> {
        match self {
            Probe::Http(addr) => host::probe_http(*addr, render::PROBE_HOST),
            Probe::PhpFpm(ctl) => host::probe_php_fpm(ctl),
            Probe::Db(ctl) => ctl.probe(host::PROBE_BOUND),
        }
    }
}

/// What the monitor remembers of one daemon between rounds.
#[derive(Default)]
struct Watch {
    /// Failed probes in a row, and when the first of them failed.
    failures: u32,
    first_failure: Option<Instant>,
    /// Recorded as down (and not back since).
    down: bool,
    /// Restarts tried since it went down.
    attempts: u32,
    /// No restart before this.
    next_restart: Option<Instant>,
    /// The administrators were told that it cannot be restarted (once an outage).
    told_failure: bool,
}

/// The daemons of `server`, each with its probe and its way back.
fn daemons(env: &ScriptEnv, server: &Server) -> Vec<Daemon> {
    let systemd = host::systemd_runs();
    let standard = server.beyond_standard_profile();
    let HttpService::Nginx(nginx) = &server.http;
    let nginx_ctl = env.nginx_ctl(server);
    let mut daemons = vec![Daemon {
        service: "nginx".into(),
        probe: Probe::Http(nginx_ctl.listen),
        restart: way_back(
            &nginx.restart,
            (systemd && !standard.iter().any(|o| o.starts_with("nginx")))
                .then_some("nginx.service"),
            Some(nginx_ctl.start_argv()),
        ),
        reload_lock: Some(nginx_ctl.config_dir.join(".lock")),
    }];
    for php in &server.php {
        let ctl = env.php_ctl(server, php);
        let is_standard = model::PhpFpmService::standard(php.version.clone()).as_ref() == Ok(php);
        let unit = format!("php{}-fpm.service", php.version);
        daemons.push(Daemon {
            service: format!("php-fpm-{}", php.version),
            restart: way_back(
                &php.restart,
                (systemd && is_standard).then_some(unit.as_str()),
                Some(vec![
                    php.binary.to_string(),
                    "--fpm-config".into(),
                    php.config.to_string(),
                ]),
            ),
            reload_lock: Some(ctl.config_dir.join(".lock")),
            probe: Probe::PhpFpm(Box::new(ctl)),
        });
    }
    for db in &server.db {
        let Some(ctl) = db_ctl(db) else {
            continue;
        };
        let is_standard = *db == model::DbService::standard(db.engine);
        let unit = match db.engine {
            DbEngine::Postgresql => "postgresql.service",
            _ => "mariadb.service",
        };
        daemons.push(Daemon {
            service: db.engine.as_str().into(),
            probe: Probe::Db(Box::new(ctl)),
            restart: way_back(&db.restart, (systemd && is_standard).then_some(unit), None).map_err(
                |_| {
                    format!(
                        "no way to start it is known: give its service start=COMMAND (or \
                         unit=UNIT), for example fjord server edit {name} --remove-db {engine} \
                         --add-db {engine}:…,start=/path/to/start",
                        name = server.name,
                        engine = db.engine
                    )
                },
            ),
            reload_lock: None,
        });
    }
    daemons
}

/// An administrator's start command first, then their unit (when systemd runs), then the
/// standard daemon's unit under systemd, then the command its record names.
fn way_back(
    chosen: &model::Restart,
    standard_unit: Option<&str>,
    from_record: Option<Vec<String>>,
) -> Result<RestartHow, String> {
    if let Some(start) = &chosen.start {
        return Ok(RestartHow::Command(start.clone()));
    }
    if let Some(unit) = chosen.unit.as_ref().filter(|_| host::systemd_runs()) {
        return Ok(RestartHow::Unit(unit.clone()));
    }
    if let Some(unit) = standard_unit {
        return Ok(RestartHow::Unit(unit.to_string()));
    }
    from_record
        .map(RestartHow::Command)
        .ok_or_else(|| "no start command".to_string())
}

pub struct Monitor {
    fjord: Arc<Fjord>,
    every: Duration,
    watches: HashMap<(i64, String), Watch>,
    /// Each daemon's state as the state last recorded it (`None`: never probed).
    known: HashMap<(i64, String), bool>,
    lock: Option<FileLock>,
}

impl Monitor {
    pub fn new(fjord: Arc<Fjord>, every: Duration) -> Monitor {
        Monitor {
            fjord,
            every,
            watches: HashMap::new(),
            known: HashMap::new(),
            lock: None,
        }
    }

    /// Probes every `every` until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            self.round();
            while started.elapsed() < self.every && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// One look at every monitored server's daemons, if this is the monitor that acts.
    pub fn round(&mut self) {
        if self.lock.is_none() {
            match FileLock::try_acquire(&self.fjord.run_dir().join("monitor.lock")) {
                Ok(Some(lock)) => {
                    self.lock = Some(lock);
                    // Another monitor may have recorded meanwhile: start from the state.
                    self.known = match self.fjord.store().service_states() {
                        Ok(states) => states.into_iter().map(|(s, d, up)| ((s, d), up)).collect(),
                        Err(e) => return warn("reading the daemons' states", &e),
                    };
                    self.watches.clear();
                }
                Ok(None) => return,
                Err(e) => return warn("taking the monitor's lock", &e),
            }
        }
        let servers = match self.fjord.store().servers() {
            Ok(servers) => servers,
            Err(e) => return warn("reading the servers", &e),
        };
        let env = self.fjord.script_env();
        // The monitor probes daemons from the machine fjord runs on: a remote server's are
        // not watched yet (their verify checks them).
        for server in servers.iter().filter(|s| s.monitor && !s.is_remote()) {
            for daemon in daemons(&env, server) {
                self.check(server, &daemon);
            }
        }
    }

    fn check(&mut self, server: &Server, daemon: &Daemon) {
        let key = (server.id, daemon.service.clone());
        let reloading = || {
            daemon
                .reload_lock
                .as_ref()
                .is_some_and(|lock| FileLock::is_held(lock).unwrap_or(false))
        };
        if reloading() {
            // A reload is not a death: judge it once fjord is done with it.
            let watch = self.watches.entry(key).or_default();
            watch.failures = 0;
            watch.first_failure = None;
            return;
        }
        let probed = daemon.probe.run();
        let known = self.known.get(&key).copied();
        let watch = self.watches.entry(key.clone()).or_default();
        let why = match probed {
            Ok(()) => {
                let was_down = watch.down || known == Some(false);
                *watch = Watch::default();
                if was_down {
                    self.record(server, daemon, ServiceEventKind::Back, "answers again");
                } else if known.is_none() {
                    match self
                        .fjord
                        .store()
                        .note_service_up(server.id, &daemon.service)
                    {
                        Ok(()) => {
                            self.known.insert(key, true);
                        }
                        Err(e) => warn("recording a daemon's state", &e),
                    }
                }
                return;
            }
            Err(why) => why,
        };
        watch.failures += 1;
        let first = *watch.first_failure.get_or_insert_with(Instant::now);
        if watch.failures < 2 || first.elapsed() < CONFIRM {
            return;
        }
        let newly_down = !watch.down;
        watch.down = true;
        let due = watch.next_restart.is_none_or(|at| Instant::now() >= at);
        if newly_down {
            self.record(server, daemon, ServiceEventKind::Down, &why);
        }
        if !due || reloading() {
            return;
        }
        self.restart(server, daemon, &key);
    }

    fn restart(&mut self, server: &Server, daemon: &Daemon, key: &(i64, String)) {
        let log = host::start_log(&self.fjord.run_dir(), server.name.as_str(), &daemon.service);
        let outcome = daemon
            .restart
            .as_ref()
            .map_err(String::clone)
            .and_then(|how| host::restart_daemon(how, &log).map(|()| how.describe()));
        let every = self.every;
        let watch = self.watches.entry(key.clone()).or_default();
        watch.attempts += 1;
        // Time to come up before the next restart; longer and longer once they keep failing.
        let wait = if watch.attempts < RESTARTS_BEFORE_BACKOFF {
            (every * 2).max(CONFIRM * 2)
        } else {
            let doublings = (watch.attempts - RESTARTS_BEFORE_BACKOFF).min(10);
            (Duration::from_secs(60) * 2u32.pow(doublings)).min(LONGEST_BACKOFF)
        };
        watch.next_restart = Some(Instant::now() + wait);
        // The probes after a restart judge it afresh.
        watch.failures = 0;
        watch.first_failure = None;
        let attempts = watch.attempts;
        match outcome {
            Ok(how) => {
                let detail = format!("started again by {how}");
                self.record(server, daemon, ServiceEventKind::Restarted, &detail);
                if attempts <= RESTARTS_BEFORE_BACKOFF {
                    self.tell(
                        server,
                        daemon,
                        &format!("fjord: {} of {} was down and is restarted", daemon.service, server.name),
                        &format!(
                            "The monitor found {} of server {} down and {detail} (restart {attempts} \
                             of this outage).\n\nIts events: fjord server show {}\n",
                            daemon.service, server.name, server.name
                        ),
                    );
                }
            }
            Err(why) => {
                self.record(server, daemon, ServiceEventKind::RestartFailed, &why);
                let watch = self.watches.entry(key.clone()).or_default();
                if !watch.told_failure {
                    watch.told_failure = true;
                    self.tell(
                        server,
                        daemon,
                        &format!(
                            "fjord: {} of {} is down and cannot be restarted",
                            daemon.service, server.name
                        ),
                        &format!(
                            "The monitor found {} of server {} down and could not start it \
                             again:\n\n{why}\n\nIt tries again, after {RESTARTS_BEFORE_BACKOFF} \
                             failures ever less often (at most every {} minutes), until it \
                             answers; this is the only mail of this outage.\n",
                            daemon.service,
                            server.name,
                            LONGEST_BACKOFF.as_secs() / 60
                        ),
                    );
                }
            }
        }
    }

    fn record(&mut self, server: &Server, daemon: &Daemon, event: ServiceEventKind, detail: &str) {
        eprintln!(
            "fjord: monitor: {} of server {}: {event}: {detail}",
            daemon.service, server.name
        );
        let recorded = self.fjord.store().record_service_event(&ServiceEvent {
            server_id: server.id,
            service: daemon.service.clone(),
            event,
            detail: detail.to_string(),
            at: store::now_ms(),
        });
        match recorded {
            Ok(()) => {
                self.known.insert(
                    (server.id, daemon.service.clone()),
                    event == ServiceEventKind::Back,
                );
            }
            Err(e) => warn("recording a daemon's event", &e),
        }
    }

    fn tell(&self, server: &Server, daemon: &Daemon, subject: &str, body: &str) {
        let (name, service) = (server.name.as_str(), daemon.service.as_str());
        self.fjord.mail_administrators(subject, body, &|line| {
            eprintln!("fjord: monitor: {service} of server {name}: {line}")
        });
    }
}

/// A monitor on a thread of its own, stopped (and waited for) when dropped.
pub struct MonitorThread {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MonitorThread {
    pub fn start(fjord: Arc<Fjord>, every: Duration) -> MonitorThread {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || Monitor::new(fjord, every).run(&stopped));
        MonitorThread {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for MonitorThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn warn(what: &str, e: &dyn std::fmt::Display) {
    eprintln!("fjord: monitor: {what} failed (tried again later): {e}");
}

impl Fjord {
    /// A server's newest daemon events, newest first.
    pub fn service_events(&self, server: &Server, limit: u32) -> crate::Result<Vec<ServiceEvent>> {
        Ok(self.store().service_events(server.id, limit)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_administrators_start_command_wins_then_the_standard_unit_then_the_record() {
        let record = || Some(vec!["/usr/sbin/nginx".to_string(), "-c".into(), "x".into()]);
        let chosen = model::Restart {
            start: Some(vec!["/usr/local/bin/start".into()]),
            unit: Some("custom.service".into()),
        };
        assert_eq!(
            way_back(&chosen, Some("nginx.service"), record()),
            Ok(RestartHow::Command(vec!["/usr/local/bin/start".into()]))
        );
        let none = model::Restart::default();
        assert_eq!(
            way_back(&none, Some("nginx.service"), record()),
            Ok(RestartHow::Unit("nginx.service".into()))
        );
        assert_eq!(
            way_back(&none, None, record()),
            Ok(RestartHow::Command(record().unwrap()))
        );
        // A database server outside systemd, with no start command: no way back.
        assert!(way_back(&none, None, None).is_err());
    }
}
