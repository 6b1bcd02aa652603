//! The monitor's probes of a server's daemons, and its restarts of one found down.
//!
//! A probe asks the daemon a real question, bounded in time (a hung daemon is down): nginx an
//! HTTP request on its first address, a php-fpm master its probe pool's ping over FastCGI, a
//! database server `SELECT 1` through its own client as its administrator.
//!
//! Traps met on the way, and why the restart is what it is:
//! - A SIGKILLed nginx or php-fpm master leaves its pid file naming a dead process. Neither
//!   refuses to start over it (each writes its pid afresh), but fjord's next reload signals
//!   the pid in the file: the restart must come before a reload needs it.
//! - A SIGKILLed nginx master leaves its workers, which keep serving on the inherited sockets:
//!   such an nginx answers the probe (and is served), and a new master could not bind while
//!   they live. A SIGKILLed php-fpm master leaves its children too, but a new master removes
//!   and binds each pool's socket again, so its pools serve.
//! - A restarted daemon must outlive the dispatcher that started it: it is started by
//!   [`crate::process::daemon_command`], in a session of its own, without the parent-death
//!   signal every other child gets.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::db::{DbCtl, DbKind};
use crate::php_fpm::{PhpFpmCtl, ping};
use crate::run_command;

/// How long a probe may take before its daemon counts as down.
pub const PROBE_BOUND: Duration = Duration::from_secs(5);
/// How long a start command may run before it counts as a daemon that stays in the
/// foreground (left running) rather than one that forks and exits.
const START_BOUND: Duration = Duration::from_secs(30);

/// Whether systemd runs this machine (its own test, `sd_booted`).
pub fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// nginx answers HTTP on `addr` (an unspecified address is asked on loopback): any status
/// line at all, within [`PROBE_BOUND`].
pub fn probe_http(addr: SocketAddr, host: &str) -> Result<(), String> {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_BOUND)
        .map_err(|e| format!("no connection to {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(PROBE_BOUND));
    let _ = stream.set_write_timeout(Some(PROBE_BOUND));
    stream
        .write_all(
            format!("HEAD / HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| format!("{addr} took no request: {e}"))?;
    let mut head = [0u8; 12];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(format!("{addr} gave no answer: {e}")),
        }
    }
    if head[..read].starts_with(b"HTTP/") {
        Ok(())
    } else {
        Err(format!("{addr} answered no HTTP"))
    }
}

/// A php-fpm master answers its probe pool's ping over FastCGI.
pub fn probe_php_fpm(ctl: &PhpFpmCtl) -> Result<(), String> {
    ping(&ctl.probe_socket).map(|_| ()).ok_or_else(|| {
        format!(
            "no answer to a ping on its probe pool's socket {}",
            ctl.probe_socket.display()
        )
    })
}

impl DbCtl {
    /// `SELECT 1` as the administrator, through the engine's own client, within `bound`.
    pub fn probe(&self, bound: Duration) -> Result<(), String> {
        let password = self.admin_password().map_err(|e| e.to_string())?;
        let mut cmd = match self.kind {
            DbKind::Mysql => {
                let mut c = self.command(
                    Self::mysql_client(),
                    &self.admin_user,
                    password.as_deref(),
                    None,
                );
                c.args([
                    "--batch",
                    "--skip-column-names",
                    &format!("--connect-timeout={}", bound.as_secs().max(1)),
                    "--execute=SELECT 1",
                ]);
                c
            }
            DbKind::Postgresql => {
                let mut c = self.command("psql", &self.admin_user, password.as_deref(), None);
                c.args(["-X", "-q", "-t", "-A", "-c", "SELECT 1"]);
                c
            }
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run the database client: {e}"))?;
        let deadline = Instant::now() + bound;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "no answer to SELECT 1 within {} s",
                        bound.as_secs()
                    ));
                }
                Err(e) => return Err(format!("the database client: {e}")),
            }
        };
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        if status.success() && out.trim() == "1" {
            Ok(())
        } else {
            Err(format!("SELECT 1 failed: {}", err.trim()))
        }
    }
}

/// How a daemon is started again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// `systemctl restart UNIT`.
    Unit(String),
    /// A command that starts it (and usually forks it into the background).
    Command(Vec<String>),
}

impl Restart {
    pub fn describe(&self) -> String {
        match self {
            Restart::Unit(unit) => format!("systemctl restart {unit}"),
            Restart::Command(argv) => argv.join(" "),
        }
    }
}

/// Starts a daemon again: `Err` says why it did not start. A start command's output goes to
/// `log` (appended), which a daemon left in the foreground keeps writing to.
pub fn restart(how: &Restart, log: &Path) -> Result<(), String> {
    match how {
        Restart::Unit(unit) => {
            let argv = ["systemctl", "restart", unit.as_str()].map(str::to_string);
            let out = run_command(&argv).map_err(|e| e.to_string())?;
            if out.success {
                Ok(())
            } else {
                Err(format!("{}: {}", how.describe(), out.output.trim()))
            }
        }
        Restart::Command(argv) => start_detached(&in_own_scope(argv, systemd_runs()), log),
    }
}

/// Under systemd, a start command runs in a transient scope of its own: started from
/// fjord.service's cgroup, the daemon would be killed with fjord at its next stop or upgrade
/// (KillMode=mixed ends what is left in the cgroup). The scope takes the process as it is (its
/// environment, and the unit's sandbox), and the daemon it forks stays in the scope.
fn in_own_scope(argv: &[String], systemd: bool) -> Vec<String> {
    if !systemd {
        return argv.to_vec();
    }
    ["systemd-run", "--scope", "--quiet", "--collect", "--"]
        .into_iter()
        .map(str::to_string)
        .chain(argv.iter().cloned())
        .collect()
}

fn start_detached(argv: &[String], log: &Path) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("an empty start command")?;
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))
    };
    let mut child = crate::process::daemon_command(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?)
        .current_dir("/")
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let deadline = Instant::now() + START_BOUND;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(format!(
                    "{} ended with {status}: {}",
                    argv.join(" "),
                    log_tail(log)
                ));
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                // A daemon that stays in the foreground: it runs on in its own session; a
                // thread reaps it whenever it ends.
                std::thread::spawn(move || child.wait());
                return Ok(());
            }
            Err(e) => return Err(format!("{program}: {e}")),
        }
    }
}

/// The last lines of a start command's log, for a failure's message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// Where the monitor keeps a server daemon's start log, in fjord's run dir.
pub fn start_log(run_dir: &Path, server: &str, service: &str) -> PathBuf {
    run_dir.join(format!("monitor-{server}-{service}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_systemd_a_start_command_runs_in_a_scope_of_its_own() {
        let argv = ["/usr/sbin/nginx", "-c", "/etc/nginx/nginx.conf"].map(str::to_string);
        assert_eq!(in_own_scope(&argv, false), argv);
        assert_eq!(
            in_own_scope(&argv, true).join(" "),
            "systemd-run --scope --quiet --collect -- /usr/sbin/nginx -c /etc/nginx/nginx.conf"
        );
    }

    #[test]
    fn a_closed_port_is_down_and_any_http_answer_is_up() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(probe_http(addr, "x").is_err());

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 256];
            let _ = conn.read(&mut buf);
            conn.write_all(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap();
        });
        assert_eq!(probe_http(addr, "x"), Ok(()));
        server.join().unwrap();
    }

    /// The machine's MariaDB and PostgreSQL (the tests' own set-up) answer; a server that is
    /// not there is down, within the bound.
    #[test]
    fn a_database_server_answers_select_1_and_one_that_is_not_there_is_down() {
        let ctl = |kind, socket: Option<&str>, port| DbCtl {
            kind,
            socket: socket.map(PathBuf::from),
            host: socket.is_none().then(|| "127.0.0.1".to_string()),
            port,
            admin_user: match kind {
                DbKind::Mysql => "root".into(),
                DbKind::Postgresql => "postgres".into(),
            },
            password_file: None,
            password_env: None,
            client_host: None,
        };
        let mariadb = ctl(DbKind::Mysql, Some("/run/mysqld/mysqld.sock"), None);
        assert_eq!(mariadb.probe(PROBE_BOUND), Ok(()));
        let postgres = ctl(DbKind::Postgresql, None, Some(5432));
        assert_eq!(postgres.probe(PROBE_BOUND), Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone.sock").display().to_string();
        assert!(
            ctl(DbKind::Mysql, Some(&gone), None)
                .probe(PROBE_BOUND)
                .is_err()
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(
            ctl(DbKind::Postgresql, None, Some(port))
                .probe(PROBE_BOUND)
                .is_err()
        );
    }

    #[test]
    fn a_start_command_that_fails_says_so_with_its_output_and_one_that_forks_is_started() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("start.log");
        let failing = Restart::Command(
            ["/bin/ls", "/nonexistent-monitor-path"]
                .map(str::to_string)
                .to_vec(),
        );
        let err = restart(&failing, &log).unwrap_err();
        assert!(err.contains("nonexistent-monitor-path"), "{err}");
        let done = dir.path().join("done");
        let forking =
            Restart::Command(["/usr/bin/touch".to_string(), done.display().to_string()].to_vec());
        restart(&forking, &log).unwrap();
        assert!(done.exists());
        // A daemon gets a clean environment: nothing of the dispatcher's (cargo's here).
        let env_log = dir.path().join("env.log");
        restart(&Restart::Command(vec!["/usr/bin/env".into()]), &env_log).unwrap();
        let seen = std::fs::read_to_string(&env_log).unwrap();
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        assert!(seen.contains("PATH=") && !seen.contains("CARGO"), "{seen}");
    }
}
