//! The Debian package on this machine: built as `cargo xtask deb` builds it, installed with
//! `dpkg -i`, its files and modes checked, its unit verified by systemd, the unit's ExecStart
//! run by hand (readiness, the panel, tasks), an upgrade with queued tasks that loses none,
//! and removal and purge that keep the state.
//!
//! dpkg is the machine's, so everything is one test. It needs root and dpkg, and it refuses
//! to run (and says so) where fjord is installed or /var/lib/fjord or /etc/fjord exist: it
//! removes what it installs, and must never clobber a real installation.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Env, FJORD, free_port, http_get, signal};

const STATE: &str = "/var/lib/fjord";
const CONFIG_DIR: &str = "/etc/fjord";

#[test]
fn the_package_installs_serves_upgrades_with_queued_tasks_and_keeps_the_state() {
    if let Some(why) = cannot_run_here() {
        eprintln!("package test skipped: {why}");
        return;
    }
    let _cleanup = Purge;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().unwrap();
    let current = xtask::deb::workspace_version(&root).unwrap();
    // The same binary under a lower version: what an upgrade does to the files, the unit, the
    // conffile and the running tasks does not depend on the binary's code; the schema check
    // between versions has tests of its own (store, and `package::a_state_written_by_a_newer_fjord_is_refused`).
    let previous = "0~prev1";
    let build = |version: &str| {
        xtask::deb::build(&xtask::deb::Options {
            binary: FJORD.into(),
            version: version.into(),
            out: out.path().into(),
            root: root.clone(),
            fast: true,
        })
        .unwrap()
    };
    let (old_deb, new_deb) = (build(previous), build(&current));

    let installed = dpkg(&["-i", path(&old_deb)]);
    if !Path::new("/run/systemd/system").exists() {
        assert!(
            stdout(&installed).contains("systemd is not running here"),
            "no hint without systemd: {}",
            stdout(&installed)
        );
    }
    files_are_in_place(&root);
    let version = Command::new("fjord").arg("--version").output().unwrap();
    assert!(version.status.success(), "fjord from PATH");
    assert!(
        stdout(&version).starts_with("fjord "),
        "{}",
        stdout(&version)
    );
    let verify = Command::new("systemd-analyze")
        .args(["verify", "/lib/systemd/system/fjord.service"])
        .output()
        .expect("systemd-analyze (scripts/setup-host --test installs systemd)");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && !complaints.contains("fjord"),
        "systemd-analyze verify: {complaints}"
    );

    // The unit's ExecStart, run by hand: ready, the panel, a task.
    let env = Env::bare();
    let mut service = Service::start(&env, &[]);
    let (status, _, body) = http_get(service.port, "127.0.0.1", "/healthz");
    assert_eq!(status, 200, "/healthz: {body}");
    let (status, _, body) = http_get(service.port, "127.0.0.1", "/login");
    assert_eq!(status, 200, "/login: {body}");
    assert!(body.contains("<form"), "a login form: {body}");
    env.add_server_on(&env.nginx, "t", &[]);
    let server_verify = last_task(&env);
    assert_eq!(
        env.wait_task(server_verify, Duration::from_secs(120))["status"],
        "success"
    );
    let platform = env.queue(&[
        "platform",
        "add",
        "p1",
        "--server",
        "t",
        "--path",
        &env.platform_path("p1"),
    ]);
    assert_eq!(
        env.wait_task(platform, Duration::from_secs(120))["status"],
        "success"
    );
    service.stop();

    // An upgrade with a task running and tasks queued behind it: the platform's verify waits
    // for the install on it, and the next installs for the verify, queued before them.
    let mut service = Service::start(&env, &["pause-after:site-install:3:3000"]);
    let install = env.queue(&["site", "add", "kept.example", "--platform", "p1"]);
    let mut queued = vec![env.queue(&["platform", "verify", "p1"])];
    for site in ["second.example", "third.example"] {
        queued.push(env.queue(&["site", "add", site, "--platform", "p1"]));
    }
    env.wait_for_log(install, "fault: paused");
    std::fs::write(
        format!("{CONFIG_DIR}/fjord.toml"),
        std::fs::read_to_string(format!("{CONFIG_DIR}/fjord.toml")).unwrap()
            + "# changed by the administrator\n",
    )
    .unwrap();
    // What systemd's restart sends: the running install finishes, nothing else starts.
    service.stop_telling(&["STATUS=stopping: waiting for 1 running task"]);
    assert_eq!(env.task(install)["status"], "success");
    for id in &queued {
        assert_eq!(
            env.task(*id)["status"],
            "queued",
            "task {id} after the stop"
        );
    }
    dpkg(&["-i", path(&new_deb)]);
    let shown = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "fjord"])
        .output()
        .unwrap();
    assert_eq!(stdout(&shown), current);
    assert!(
        std::fs::read_to_string(format!("{CONFIG_DIR}/fjord.toml"))
            .unwrap()
            .ends_with("# changed by the administrator\n"),
        "the conffile's change is kept"
    );
    files_are_in_place(&root);
    let mut service = Service::start(&env, &[]);
    for id in &queued {
        assert_eq!(
            env.wait_task(*id, Duration::from_secs(120))["status"],
            "success",
            "task {id}"
        );
    }
    service.stop();
    let tasks = env.json(&["task", "list"]);
    let tasks = tasks.as_array().expect("a list of tasks");
    let mut ids: Vec<i64> = tasks.iter().filter_map(|t| t["id"].as_i64()).collect();
    ids.sort();
    let mut expected = vec![server_verify, platform, install];
    expected.extend(&queued);
    expected.sort();
    assert_eq!(ids, expected, "every task once, none lost or added");
    for id in [install].iter().chain(&queued) {
        let log = env.log(*id);
        assert!(
            !log.contains("rolled back") && !log.contains("rolling back"),
            "task {id} ran once, to its end: {log}"
        );
    }
    assert_eq!(env.log(install).matches("fault: paused").count(), 1);
    for site in ["kept.example", "second.example", "third.example"] {
        assert_eq!(env.nginx.get(site, "/").0, 200, "{site} is served");
    }

    // Removal keeps the state; a purge removes the config and still keeps the state.
    std::fs::write(format!("{STATE}/kept"), "the state\n").unwrap();
    dpkg(&["-r", "fjord"]);
    assert!(!Path::new("/usr/bin/fjord").exists());
    assert!(!Path::new("/lib/systemd/system/fjord.service").exists());
    assert_eq!(
        std::fs::read_to_string(format!("{STATE}/kept")).unwrap(),
        "the state\n"
    );
    let purged = dpkg(&["--purge", "fjord"]);
    assert!(
        !Path::new(CONFIG_DIR).exists(),
        "purge removes {CONFIG_DIR}"
    );
    assert!(Path::new(&format!("{STATE}/kept")).exists());
    assert!(
        stdout(&purged).contains("the state in /var/lib/fjord is kept"),
        "{}",
        stdout(&purged)
    );
}

/// Why this machine must not run the test, if so.
fn cannot_run_here() -> Option<String> {
    if Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .map(|o| stdout(&o))
        != Some("0".into())
    {
        return Some("dpkg -i needs root".into());
    }
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        return Some("no dpkg-deb here".into());
    }
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", "fjord"])
        .output()
        .ok()?;
    if stdout(&status) != "not-installed" && status.status.success() {
        return Some(format!(
            "fjord is installed here ({}): the test would replace it",
            stdout(&status)
        ));
    }
    for dir in [STATE, CONFIG_DIR] {
        if Path::new(dir).exists() {
            return Some(format!("{dir} exists: the test would remove it"));
        }
    }
    None
}

/// Purges the package and removes the state it made, even when the test failed.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "fjord"])
            .stdin(Stdio::null())
            .output();
        let _ = std::fs::remove_dir_all(STATE);
        let _ = std::fs::remove_dir_all(CONFIG_DIR);
    }
}

#[track_caller]
fn dpkg(args: &[&str]) -> Output {
    let out = Command::new("dpkg")
        .args(["--force-confdef", "--force-confold"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg {args:?}: {}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file of the package where it belongs, root's, with its mode; the state 0700.
#[track_caller]
fn files_are_in_place(root: &Path) {
    let owned = |path: &Path, mode: u32| {
        let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            (meta.permissions().mode() & 0o7777, meta.uid(), meta.gid()),
            (mode, 0, 0),
            "{}: mode {:o}",
            path.display(),
            meta.permissions().mode()
        );
    };
    for (file, mode) in xtask::deb::FILES {
        owned(&Path::new("/").join(file), *mode);
    }
    let man = Path::new("/").join(xtask::deb::MAN_DIR);
    for page in ["fjord.1.gz", "fjord-serve.1.gz", "fjord-site-add.1.gz"] {
        owned(&man.join(page), 0o644);
    }
    owned(Path::new(STATE), 0o700);
    assert_eq!(
        std::fs::read("/usr/bin/fjord").unwrap(),
        std::fs::read(FJORD).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(root.join("packaging/debian/fjord.service")).unwrap(),
        std::fs::read_to_string(Path::new("/").join(xtask::deb::UNIT_PATH)).unwrap()
    );
    let conffiles = Command::new("dpkg-query")
        .args(["-W", "-f=${Conffiles}", "fjord"])
        .output()
        .unwrap();
    assert!(
        stdout(&conffiles).contains("/etc/fjord/fjord.toml"),
        "{}",
        stdout(&conffiles)
    );
}

/// The unit's ExecStart as systemd would run it, with the test's data dir, panel address and
/// notify socket.
struct Service {
    child: Child,
    port: u16,
    notify: UnixDatagram,
    _notify_dir: tempfile::TempDir,
}

impl Service {
    fn start(env: &Env, faults: &[&str]) -> Service {
        let unit = std::fs::read_to_string("/lib/systemd/system/fjord.service").unwrap();
        let exec: Vec<&str> = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("the unit has an ExecStart")
            .split_whitespace()
            .collect();
        assert_eq!(exec[0], "/usr/bin/fjord", "{exec:?}");
        Service::spawn(env, exec[0], &exec[1..], faults)
    }

    /// `program args` with the test's data dir, a free panel port and a notify socket; returns
    /// once it said READY=1.
    fn spawn(env: &Env, program: &str, args: &[&str], faults: &[&str]) -> Service {
        let notify_dir = tempfile::tempdir().unwrap();
        let socket: PathBuf = notify_dir.path().join("notify");
        let notify = UnixDatagram::bind(&socket).unwrap();
        let port = free_port();
        let child = Command::new(program)
            .args(args)
            .env("FJORD_DATA_DIR", env.data.path())
            .env("FJORD_PANEL_LISTEN", format!("127.0.0.1:{port}"))
            .env("NOTIFY_SOCKET", &socket)
            .env("FJORD_FAULTS", faults.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let service = Service {
            child,
            port,
            notify,
            _notify_dir: notify_dir,
        };
        service.told(&["READY=1"]);
        service
    }

    /// Waits (up to two minutes) until messages to the notify socket have held every line of
    /// `lines`, in any order.
    #[track_caller]
    fn told(&self, lines: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut heard: Vec<String> = Vec::new();
        let mut buf = [0u8; 4096];
        let all_heard = |heard: &[String]| {
            lines
                .iter()
                .all(|l| heard.iter().any(|m| m.lines().any(|h| h == *l)))
        };
        while Instant::now() < deadline {
            self.notify
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            if let Ok(n) = self.notify.recv(&mut buf) {
                heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                if all_heard(&heard) {
                    return;
                }
            }
        }
        panic!("never told {lines:?}; heard {heard:?}");
    }

    /// SIGTERM, as systemd stops or restarts it: STOPPING=1, then a clean exit once the
    /// running tasks are done.
    #[track_caller]
    fn stop(&mut self) {
        self.stop_telling(&[]);
    }

    /// [`Service::stop`], the service manager told `lines` as well on the way.
    #[track_caller]
    fn stop_telling(&mut self, lines: &[&str]) {
        signal(self.child.id(), "TERM");
        self.told(&[&["STOPPING=1"], lines].concat());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "a stop is not a failure: {status}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The newest task's id.
fn last_task(env: &Env) -> i64 {
    let tasks = env.json(&["task", "list"]);
    tasks
        .as_array()
        .and_then(|t| t.iter().filter_map(|t| t["id"].as_i64()).max())
        .expect("a task")
}

/// A panel with no dispatcher is ready once it listens, and stops on SIGTERM, telling its
/// service manager both.
#[test]
fn a_panel_without_a_dispatcher_tells_when_it_is_ready_and_stopping() {
    let env = Env::bare();
    let mut service = Service::spawn(&env, FJORD, &["serve", "--no-dispatcher"], &[]);
    let (status, _, body) = http_get(service.port, "127.0.0.1", "/login");
    assert_eq!(status, 200, "/login: {body}");
    service.stop();
}

/// A state whose schema a newer fjord wrote is refused, named, and left as it is: fjord never
/// downgrades a state.
#[test]
fn a_state_written_by_a_newer_fjord_is_refused() {
    let env = Env::bare();
    env.ok(&["task", "list"]);
    let db = env.data.path().join("state.db");
    let known: i64 = sqlite(&db, "PRAGMA user_version;").parse().unwrap();
    let newer = known + 6;
    sqlite(&db, &format!("PRAGMA user_version = {newer};"));
    for command in [&["task", "list"][..], &["serve"]] {
        let err = env.fails(command);
        assert!(
            err.contains(&format!(
                "the state in {} was written by a newer fjord (schema {newer}; this fjord knows \
                 {known}): install that release or newer; fjord never downgrades a state",
                env.data.path().display()
            )),
            "fjord {command:?}: {err}"
        );
    }
    assert_eq!(sqlite(&db, "PRAGMA user_version;"), newer.to_string());
}

fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}
