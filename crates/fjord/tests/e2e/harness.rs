//! Test harness: a private nginx (own prefix, config and a free port on 127.0.0.1) and a
//! fjord data dir, driven through the real `fjord` binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const FJORD: &str = env!("CARGO_BIN_EXE_fjord");

pub fn nginx_binary() -> &'static str {
    "/usr/sbin/nginx"
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temporary directory that the unprivileged nginx workers can read.
pub fn world_readable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("fjord-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The config of a test's own nginx in `prefix` (pid, logs, temp paths), answering 404 on
/// `listen` to any name no vhost in `prefix/conf.d` claims.
pub fn nginx_conf(prefix: &Path, listen: &str) -> String {
    format!(
        "worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/logs/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    server_names_hash_bucket_size 128;
    server_names_hash_max_size 8192;
    server {{
        listen {listen} default_server;
        return 404;
    }}
    include {p}/conf.d/*.conf;
}}
",
        p = prefix.display()
    )
}

/// The arguments of `fjord server add NAME` for a server on the nginx of [`nginx_conf`] in
/// `prefix`, then `extra` (a reload method, database services). Its monitor is off unless
/// `extra` says `--monitor on`: no test's dispatcher restarts a daemon a test stopped on
/// purpose or left behind, and no daemon outlives its test.
pub fn nginx_server_add_args(
    prefix: &Path,
    listen: &str,
    name: &str,
    extra: &[&str],
) -> Vec<String> {
    let prefix = prefix.display().to_string();
    let mut args: Vec<String> = ["server", "add", name, "--nginx-bin", nginx_binary()]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend([
        "--nginx-conf".to_string(),
        format!("{prefix}/nginx.conf"),
        "--nginx-prefix".to_string(),
        prefix.clone(),
        "--nginx-include-dir".to_string(),
        format!("{prefix}/conf.d"),
        "--listen".to_string(),
        listen.to_string(),
    ]);
    if !extra.contains(&"--monitor") {
        args.extend(["--monitor".to_string(), "off".to_string()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

pub struct PrivateNginx {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivateNginx {
    pub fn start() -> PrivateNginx {
        let dir = world_readable_tempdir();
        let p = dir.path();
        for sub in ["conf.d", "logs", "tmp"] {
            std::fs::create_dir(p.join(sub)).unwrap();
        }
        let port = free_port();
        let conf = nginx_conf(p, &format!("127.0.0.1:{port}"));
        std::fs::write(p.join("nginx.conf"), conf).unwrap();
        let out = Command::new(nginx_binary())
            .args(["-p", &format!("{}/", p.display()), "-c"])
            .arg(p.join("nginx.conf"))
            .args(["-e", &format!("{}/logs/error.log", p.display())])
            .output()
            .expect("nginx runs");
        assert!(
            out.status.success(),
            "nginx did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let nginx = PrivateNginx { dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(10));
        }
        nginx
    }

    pub fn prefix(&self) -> &Path {
        self.dir.path()
    }

    /// The arguments of `fjord server add NAME` for a server on this nginx: see
    /// [`nginx_server_add_args`].
    pub fn server_add_args(&self, name: &str, extra: &[&str]) -> Vec<String> {
        nginx_server_add_args(self.prefix(), &self.listen(), name, extra)
    }

    pub fn listen(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many times nginx has reloaded its config (from its own log).
    pub fn reloads(&self) -> usize {
        let log = std::fs::read_to_string(self.prefix().join("logs/error.log")).unwrap_or_default();
        // nginx logs each reload twice: "signal 1 (SIGHUP) received from N, reconfiguring",
        // then "N#N: reconfiguring"; the second alone is counted.
        log.matches(": reconfiguring").count()
    }

    /// `GET path` with a Host header: (status, Location header, body).
    pub fn get(&self, host: &str, path: &str) -> (u16, Option<String>, String) {
        http_get(self.port, host, path)
    }
}

impl Drop for PrivateNginx {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.prefix().join("nginx.pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = Command::new("kill")
                .arg("-QUIT")
                .arg(pid.to_string())
                .status();
        }
    }
}

/// The `Host` a browser sends to a site at `port`: the port named, as it is not HTTP's own.
pub fn host_header(host: &str, port: u16) -> String {
    if host.contains(':') || port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

pub fn http_get(port: u16, host: &str, path: &str) -> (u16, Option<String>, String) {
    http_get_at(std::net::Ipv4Addr::LOCALHOST.into(), port, host, path)
}

/// [`http_get`] from an nginx listening on `address`.
pub fn http_get_at(
    address: std::net::IpAddr,
    port: u16,
    host: &str,
    path: &str,
) -> (u16, Option<String>, String) {
    let mut stream = TcpStream::connect((address, port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host_header(host, port)
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").map(str::to_string));
    (status, location, body.to_string())
}

/// Runs SQL as MariaDB's root on its socket; returns the output without headers, trimmed.
pub fn mysql(sql: &str) -> String {
    let out = Command::new("mariadb")
        .args([
            "--protocol=SOCKET",
            "--socket=/run/mysqld/mysqld.sock",
            "-uroot",
            "-N",
            "-B",
            "-e",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mariadb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fjord installation in a temporary data dir, with one server on a private nginx and one
/// static platform.
pub struct Env {
    pub nginx: PrivateNginx,
    pub data: tempfile::TempDir,
    pub platforms: tempfile::TempDir,
    dispatchers: Vec<Child>,
    /// Environment given to every fjord this Env runs (see [`Env::set_env`]).
    extra_env: std::cell::RefCell<Vec<(String, String)>>,
}

impl Env {
    /// A data dir and a private nginx; nothing registered yet.
    pub fn bare() -> Env {
        Env {
            nginx: PrivateNginx::start(),
            data: world_readable_tempdir(),
            platforms: world_readable_tempdir(),
            dispatchers: Vec::new(),
            extra_env: Default::default(),
        }
    }

    /// Server `t` (verified) and static platform `p1` (verified).
    pub fn new() -> Env {
        let env = Env::bare();
        env.add_server("t");
        env.ok(&[
            "platform",
            "add",
            "p1",
            "--server",
            "t",
            "--path",
            &env.platform_path("p1"),
        ]);
        env.dispatch_until_idle(&[]);
        env
    }

    pub fn add_server(&self, name: &str) {
        let prefix = self.nginx.prefix().display().to_string();
        self.ok(&[
            "server",
            "add",
            name,
            "--nginx-bin",
            nginx_binary(),
            "--nginx-conf",
            &format!("{prefix}/nginx.conf"),
            "--nginx-prefix",
            &prefix,
            "--nginx-include-dir",
            &format!("{prefix}/conf.d"),
            "--listen",
            &self.nginx.listen(),
            "--monitor",
            "off",
        ]);
        self.dispatch_until_idle(&[]);
    }

    pub fn platform_path(&self, name: &str) -> String {
        self.platforms.path().join(name).display().to_string()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(FJORD);
        cmd.args(args)
            .env("FJORD_DATA_DIR", self.data.path())
            // Not the machine's /etc/fjord/fjord.toml: an empty file, every default.
            .env("FJORD_CONFIG", "/dev/null")
            .env_remove("FJORD_FAULTS")
            .stdin(Stdio::null());
        for (key, value) in self.extra_env.borrow().iter() {
            cmd.env(key, value);
        }
        cmd
    }

    /// Gives `key=value` to every fjord this Env runs from now on.
    pub fn set_env(&self, key: &str, value: &str) {
        self.extra_env
            .borrow_mut()
            .push((key.to_string(), value.to_string()));
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Adds static platform `name` on server `t` (under `platforms`) and runs its verify.
    #[track_caller]
    pub fn add_platform(&self, name: &str) {
        let path = self.platform_path(name);
        self.ok(&["platform", "add", name, "--server", "t", "--path", &path]);
        self.dispatch_until_idle(&[]);
    }

    /// Adds server `name` on `nginx` (with `extra` arguments), asserting success.
    #[track_caller]
    pub fn add_server_on(&self, nginx: &PrivateNginx, name: &str, extra: &[&str]) {
        let args = nginx.server_add_args(name, extra);
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Runs fjord and asserts success; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "fjord {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs fjord and asserts failure; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "fjord {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// Runs queued tasks until none is left, with `FJORD_FAULTS` set to `faults`.
    pub fn dispatch_until_idle(&self, faults: &[&str]) {
        let out = self
            .command(&["dispatch", "--until-idle"])
            .env("FJORD_FAULTS", faults.join(","))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dispatcher failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts a dispatcher in the background (stopped when the Env drops), without the
    /// monitor (see [`Env::start_dispatcher_with`]).
    pub fn start_dispatcher(&mut self, faults: &[&str]) -> u32 {
        self.start_dispatcher_with(faults, &["--monitor-interval", "0"])
    }

    /// Starts `fjord dispatch ARGS` in the background (stopped when the Env drops).
    pub fn start_dispatcher_with(&mut self, faults: &[&str], args: &[&str]) -> u32 {
        let mut all = vec!["dispatch"];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .env("FJORD_FAULTS", faults.join(","))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.dispatchers.push(child);
        pid
    }

    /// Waits (up to a minute) until task `id`'s log contains `text`.
    #[track_caller]
    pub fn wait_for_log(&self, id: i64, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log(id).contains(text) {
            assert!(
                Instant::now() < deadline,
                "task {id} never logged {text:?}: {}",
                self.log(id)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the dispatcher started as `pid` to exit.
    pub fn wait_dispatcher(&mut self, pid: u32) -> std::process::ExitStatus {
        let at = self
            .dispatchers
            .iter()
            .position(|c| c.id() == pid)
            .expect("a dispatcher of this test");
        self.dispatchers.remove(at).wait().unwrap()
    }

    pub fn kill_dispatchers(&mut self) {
        for mut child in self.dispatchers.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn task(&self, id: i64) -> serde_json::Value {
        self.json(&["task", "show", &id.to_string()])
    }

    /// Queues with `args` (a task command) and returns the new task's id.
    #[track_caller]
    pub fn queue(&self, args: &[&str]) -> i64 {
        let v = self.json(args);
        v["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no task id in {v}"))
    }

    pub fn wait_task(&self, id: i64, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.task(id);
            let status = t["status"].as_str().unwrap_or_default().to_string();
            if !["queued", "processing"].contains(&status.as_str()) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} still {status} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self, id: i64) -> String {
        self.ok(&["task", "log", &id.to_string()])
    }

    pub fn docroot(&self, platform: &str, site: &str) -> PathBuf {
        self.platforms
            .path()
            .join(platform)
            .join("sites")
            .join(site)
    }

    /// Everything fjord may change on the host: the platforms, fjord's config dir and the
    /// nginx include dir, each file with its mode and content; plus what nginx serves for
    /// `hosts`. The probe's generation file changes with every reload and is left out.
    pub fn host_state(&self, hosts: &[&str]) -> BTreeMap<String, String> {
        let mut state = BTreeMap::new();
        for root in [
            self.platforms.path().to_path_buf(),
            self.data.path().join("config"),
            self.nginx.prefix().join("conf.d"),
        ] {
            walk(&root, &mut state);
        }
        for host in hosts {
            let (status, location, body) = self.nginx.get(host, "/");
            state.insert(
                format!("GET http://{host}/"),
                format!("{status} {location:?} {body}"),
            );
        }
        state
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_dispatchers();
    }
}

pub fn walk(path: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let name = path.display().to_string();
    if name.ends_with("generation.conf") || name.ends_with("/.lock") {
        return;
    }
    let mode = meta.permissions().mode() & 0o7777;
    if meta.is_dir() {
        out.insert(name, format!("dir {mode:o}"));
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, out);
        }
    } else {
        let content = std::fs::read(path).unwrap_or_default();
        out.insert(
            name,
            format!("file {mode:o} {}", String::from_utf8_lossy(&content)),
        );
    }
}

/// Asserts two host states are equal, showing only the entries that differ.
#[track_caller]
pub fn assert_same_state(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    context: &str,
) {
    let mut diffs = Vec::new();
    for key in before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if before.get(key) != after.get(key) {
            diffs.push(format!(
                "  {key}:\n    before: {:?}\n    after:  {:?}",
                before.get(key),
                after.get(key)
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{context}: the host changed:\n{}",
        diffs.join("\n")
    );
}

/// Sends `signal` (`TERM`, `KILL`, …) to process `pid`.
#[track_caller]
pub fn signal(pid: u32, signal: &str) {
    assert!(
        Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Copies a directory tree (a fixture code base) into `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
