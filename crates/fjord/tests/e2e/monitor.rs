//! The self-healing monitor: a running dispatcher finds a private nginx, php-fpm master or
//! MariaDB killed with SIGKILL, starts it again, records what happened and mails the
//! administrators; the sites serve again within 15 s.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Env, host_header, signal};
use crate::panel::{Panel, add_user, api, api_token, sign_in};
use crate::php_fpm::PrivatePhpFpm;
use crate::smtp::SmtpSink;

const PASSWORD: &str = "a long password for the monitor";

/// What the issue asks: a killed daemon serves again within this.
const BACK_WITHIN: Duration = Duration::from_secs(15);

/// `GET /` with a Host header: the status, or `None` while nothing answers.
fn status_of(port: u16, host: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET / HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host_header(host, port)
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    raw.split(' ').nth(1)?.parse().ok()
}

/// Waits until `ok` holds, at most [`BACK_WITHIN`] from `since`; how long it took.
#[track_caller]
fn back_within(since: Instant, what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    while !ok() {
        assert!(
            since.elapsed() < BACK_WITHIN,
            "{what} is not back {BACK_WITHIN:?} after it was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    since.elapsed()
}

fn pid_in(file: &Path) -> u32 {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...: the command may hold spaces, so read after its ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            children.push(child);
        }
    }
    children
}

/// SIGKILL to a master and every process it started.
fn kill_master_and_children(master: u32) {
    let children = children_of(master);
    signal(master, "KILL");
    for child in children {
        let _ = Command::new("kill")
            .args(["-KILL", &child.to_string()])
            .status();
    }
}

/// The monitor's events of server `t`, as `(service, event)`, oldest first.
fn events(env: &Env) -> Vec<(String, String)> {
    let server = env.json(&["server", "show", "t"]);
    let mut events: Vec<(String, String)> = server["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["service"].as_str().unwrap().to_string(),
                e["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    events.reverse();
    events
}

#[track_caller]
fn wait_for_events(env: &Env, service: &str, wanted: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen: Vec<String> = events(env)
            .into_iter()
            .filter(|(s, _)| s == service)
            .map(|(_, e)| e)
            .collect();
        if seen == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{service}'s events are {seen:?}, not {wanted:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_nginx_and_php_fpm_master_are_restarted_and_their_sites_serve_again() {
    let fpm = PrivatePhpFpm::start();
    let mut env = Env::bare();
    let sink = SmtpSink::for_administrator(&env, "ops@monitor.example");
    let php = fpm.service_arg();
    env.add_server_on(
        &env.nginx,
        "t",
        &["--php", &php, "--web-group", "nogroup", "--monitor", "on"],
    );
    let code = env.platforms.path().join("app");
    std::fs::create_dir(&code).unwrap();
    std::fs::write(code.join("index.php"), "<?php echo 'php-', 6 * 7;\n").unwrap();
    let code = code.display().to_string();
    let static_path = env.platform_path("static");
    env.ok(&[
        "platform", "add", "app", "--server", "t", "--path", &code, "--kind", "php",
    ]);
    env.ok(&[
        "platform",
        "add",
        "static",
        "--server",
        "t",
        "--path",
        &static_path,
    ]);
    env.ok(&["site", "add", "php.monitor.test", "--platform", "app"]);
    env.ok(&["site", "add", "static.monitor.test", "--platform", "static"]);
    env.dispatch_until_idle(&[]);
    let port = env.nginx.port;
    assert_eq!(status_of(port, "static.monitor.test"), Some(200));
    let (status, _, body) = env.nginx.get("php.monitor.test", "/");
    assert_eq!((status, body.as_str()), (200, "php-42"));

    // `serve`'s dispatcher monitors, and its panel, API and /metrics show what it saw.
    let panel = Panel::start_with(&env, &[], &["--monitor-interval", "1"]);
    // A second dispatcher monitors too: one monitor acts at a time, so each outage is
    // recorded, restarted and told once.
    env.start_dispatcher_with(&[], &["--monitor-interval", "1"]);
    // The monitor has looked once (it records a daemon it finds up) before anything dies.
    std::thread::sleep(Duration::from_secs(2));

    // nginx: its master and workers, so that nothing but a new nginx can answer.
    let nginx_pid = env.nginx.prefix().join("nginx.pid");
    let master = pid_in(&nginx_pid);
    let killed = Instant::now();
    kill_master_and_children(master);
    let took = back_within(killed, "the static site", || {
        status_of(port, "static.monitor.test") == Some(200)
    });
    eprintln!("nginx served again {took:?} after SIGKILL");
    assert_ne!(pid_in(&nginx_pid), master, "a new nginx master runs");
    assert_eq!(status_of(port, "php.monitor.test"), Some(200));
    wait_for_events(&env, "nginx", &["down", "restarted", "back"]);
    let mail = sink.wait_for("nginx of t was down and is restarted");
    assert!(mail.contains("started again by"), "{mail}");
    assert_eq!(sink.count(), 1, "one mail for one restart");

    // php-fpm: its master and its children, so that only a new master serves PHP.
    let fpm_pid = fpm.prefix().join("php-fpm.pid");
    let master = pid_in(&fpm_pid);
    let killed = Instant::now();
    kill_master_and_children(master);
    let took = back_within(killed, "the PHP site", || {
        status_of(port, "php.monitor.test") == Some(200)
    });
    eprintln!("php-fpm served again {took:?} after SIGKILL");
    let (status, _, body) = env.nginx.get("php.monitor.test", "/");
    assert_eq!((status, body.as_str()), (200, "php-42"));
    assert_ne!(pid_in(&fpm_pid), master, "a new php-fpm master runs");
    wait_for_events(&env, "php-fpm-8.2", &["down", "restarted", "back"]);
    sink.wait_for("php-fpm-8.2 of t was down and is restarted");
    let shown = env.ok(&["server", "show", "t"]);
    assert!(shown.contains("the monitor's last events"), "{shown}");
    assert!(
        shown.contains("restarted") && shown.contains("php-fpm-8.2"),
        "{shown}"
    );
    // nginx's outage was told once, and nothing happened to it since.
    wait_for_events(&env, "nginx", &["down", "restarted", "back"]);

    add_user(&env, "ada", "administrator", None, PASSWORD);
    let mut ada = sign_in(&panel, "ada", PASSWORD);
    let page = ada.get("/servers/t");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"service-events\""), "{}", page.body);
    assert!(page.body.contains("started again by"), "{}", page.body);
    let token = api_token(&mut ada);
    let r = api(&panel, &token, "GET", "/api/v1/servers/t/events", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let listed: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let restarted: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "restarted")
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert_eq!(restarted, ["php-fpm-8.2", "nginx"], "{listed}");
    let metrics = api(&panel, &token, "GET", "/metrics", None).body;
    for line in [
        "fjord_service_up{server=\"t\",service=\"nginx\"} 1",
        "fjord_service_up{server=\"t\",service=\"php-fpm-8.2\"} 1",
        "fjord_service_restarts_total{server=\"t\",service=\"nginx\"} 1",
        "fjord_service_restarts_total{server=\"t\",service=\"php-fpm-8.2\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line} in\n{metrics}");
    }

    // A server whose monitor is off is left alone: a killed nginx stays down.
    env.ok(&["server", "edit", "t", "--monitor", "off"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.json(&["server", "show", "t"])["monitor"], false);
    let master = pid_in(&nginx_pid);
    kill_master_and_children(master);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(status_of(port, "static.monitor.test"), None);
    drop(panel);
    env.kill_dispatchers();
    // The Env's nginx is gone: start it again for its own clean-up to stop.
    let out = Command::new(crate::harness::nginx_binary())
        .args(["-p", &format!("{}/", env.nginx.prefix().display()), "-c"])
        .arg(env.nginx.prefix().join("nginx.conf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A MariaDB server of the test's own started by a script (the `start=` a service names),
/// stopped with the test whichever process runs it then.
struct ScriptedMariaDb {
    dir: tempfile::TempDir,
}

impl ScriptedMariaDb {
    fn start() -> ScriptedMariaDb {
        let dir = tempfile::Builder::new()
            .prefix("fjord-monitor-db-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = ScriptedMariaDb { dir };
        crate::private_db::install_mariadb(&db.data(), &db.dir.path().join("run"));
        std::fs::write(
            db.script(),
            format!(
                "#!/bin/sh\n\
                 /usr/sbin/mariadbd --no-defaults --user=mysql --datadir={data} \
                 --socket={socket} --pid-file={pid} --skip-networking \
                 --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
                 --innodb-flush-log-at-trx-commit=0 >{log} 2>&1 </dev/null &\n",
                data = db.data().display(),
                socket = db.socket().display(),
                pid = db.pid_file().display(),
                log = db.dir.path().join("mariadbd.log").display(),
            ),
        )
        .unwrap();
        std::fs::set_permissions(db.script(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Command::new(db.script()).status().unwrap().success());
        back_within(Instant::now(), "the private MariaDB", || db.answers());
        db
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/mysqld.sock")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("run/mysqld.pid")
    }

    fn script(&self) -> PathBuf {
        self.dir.path().join("start-mariadb")
    }

    fn answers(&self) -> bool {
        Command::new("mariadb")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-N", "-B", "-e", "SELECT 1"])
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "1")
    }
}

impl Drop for ScriptedMariaDb {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.pid_file()) {
            let pid = pid.trim().to_string();
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn a_killed_mariadb_is_started_again_by_its_start_command_and_answers_again() {
    let db = ScriptedMariaDb::start();
    let mut env = Env::bare();
    let sink = SmtpSink::for_administrator(&env, "ops@monitor.example");
    let service = format!(
        "mysql:socket={},start={}",
        db.socket().display(),
        db.script().display()
    );
    env.add_server_on(&env.nginx, "t", &["--db", &service, "--monitor", "on"]);
    env.dispatch_until_idle(&[]);
    env.start_dispatcher_with(&[], &["--monitor-interval", "1"]);
    std::thread::sleep(Duration::from_secs(2));

    let mysqld = pid_in(&db.pid_file());
    let killed = Instant::now();
    signal(mysqld, "KILL");
    let took = back_within(killed, "the private MariaDB", || db.answers());
    eprintln!("MariaDB answered again {took:?} after SIGKILL");
    assert_ne!(pid_in(&db.pid_file()), mysqld, "a new mariadbd runs");
    wait_for_events(&env, "mysql", &["down", "restarted", "back"]);
    let mail = sink.wait_for("mysql of t was down and is restarted");
    assert!(mail.contains(&db.script().display().to_string()), "{mail}");
    // The server's nginx was never found down.
    assert!(events(&env).iter().all(|(s, _)| s == "mysql"));

    // A start command that fails: the failure is recorded and told once, and the server is
    // found back when it answers again, whoever started it.
    let failing = format!("mysql:socket={},start=/bin/false", db.socket().display());
    env.ok(&[
        "server",
        "edit",
        "t",
        "--remove-db",
        "mysql",
        "--add-db",
        &failing,
    ]);
    env.dispatch_until_idle(&[]);
    signal(pid_in(&db.pid_file()), "KILL");
    wait_for_events(
        &env,
        "mysql",
        &["down", "restarted", "back", "down", "restart failed"],
    );
    let mail = sink.wait_for("mysql of t is down and cannot be restarted");
    assert!(mail.contains("/bin/false"), "{mail}");
    assert!(Command::new(db.script()).status().unwrap().success());
    back_within(Instant::now(), "the private MariaDB", || db.answers());
    let deadline = Instant::now() + Duration::from_secs(30);
    while events(&env).last().map(|(_, e)| e.as_str()) != Some("back") {
        assert!(Instant::now() < deadline, "{:?}", events(&env));
        std::thread::sleep(Duration::from_millis(100));
    }
    let told = sink.count();
    assert_eq!(told, 2, "one mail for the restart, one for the failure");
}
