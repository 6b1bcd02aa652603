//! The daemons of a test host: nginx, php-fpm and MariaDB set up as the local tests' private
//! ones are (`harness::PrivateNginx`, `php_fpm::PrivatePhpFpm`, `private_db::PrivateMariaDb`),
//! but started inside the host, listening on its address, with their files in its private
//! directories. They die with the host.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Namespaces, TestHost, is_running};
use crate::harness::{http_get_at, nginx_binary, nginx_conf, nginx_server_add_args};
use crate::php_fpm::{PHP_FPM, php_fpm_conf, php_fpm_service_arg, placeholder_pool};

/// An nginx inside a host; its prefix is a path of the host's.
pub struct HostNginx {
    ns: Namespaces,
    prefix: PathBuf,
    pub address: Ipv4Addr,
    pub port: u16,
}

/// A php-fpm master inside a host; its prefix is a path of the host's.
pub struct HostPhpFpm {
    ns: Namespaces,
    prefix: PathBuf,
}

/// A MariaDB inside a host: root through its socket (in the host's data dir) only, as Debian
/// sets one up; also listening on the host's address, port 3306, for other hosts' sites.
pub struct HostMariaDb {
    ns: Namespaces,
    dir: PathBuf,
    pub address: Ipv4Addr,
}

impl TestHost {
    /// Starts an nginx with its prefix in `prefix` (a directory of the host's, made if
    /// missing), listening on the host's address and `port`, 404 to any name no vhost claims.
    pub fn start_nginx(&self, prefix: &Path, port: u16) -> HostNginx {
        for sub in ["conf.d", "logs", "tmp"] {
            std::fs::create_dir_all(self.path(&prefix.join(sub))).unwrap();
        }
        let listen = format!("{}:{port}", self.address());
        let conf = prefix.join("nginx.conf");
        std::fs::write(self.path(&conf), nginx_conf(prefix, &listen)).unwrap();
        self.exec_ok(&[
            nginx_binary(),
            "-p",
            &format!("{}/", prefix.display()),
            "-c",
            &conf.display().to_string(),
            "-e",
            &prefix.join("logs/error.log").display().to_string(),
        ]);
        self.wait_for_port(port, "nginx");
        let nginx = HostNginx {
            ns: self.namespaces(),
            prefix: prefix.to_path_buf(),
            address: self.address(),
            port,
        };
        // It listens before its master runs: a reload signalled before the master has started
        // its workers is noticed only at the next signal.
        let deadline = Instant::now() + Duration::from_secs(10);
        while nginx.workers().is_empty() {
            assert!(
                Instant::now() < deadline,
                "nginx in host {} started no worker:\n{}",
                self.name(),
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        nginx
    }

    /// Starts a php-fpm master with its config, pools (`pool.d`), pid and log in `prefix` (a
    /// directory of the host's, made if missing), with a placeholder pool only.
    pub fn start_php_fpm(&self, prefix: &Path) -> HostPhpFpm {
        std::fs::create_dir_all(self.path(&prefix.join("pool.d"))).unwrap();
        let conf = prefix.join("php-fpm.conf");
        std::fs::write(self.path(&conf), php_fpm_conf(prefix)).unwrap();
        std::fs::write(
            self.path(&prefix.join("pool.d/placeholder.conf")),
            placeholder_pool(prefix),
        )
        .unwrap();
        self.exec_ok(&[PHP_FPM, "-y", &conf.display().to_string()]);
        let fpm = HostPhpFpm {
            ns: self.namespaces(),
            prefix: prefix.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while fpm.pid().is_none() {
            assert!(
                Instant::now() < deadline,
                "php-fpm in the host wrote no pid"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        fpm
    }

    /// Makes a MariaDB data dir in `dir/data` (a directory of the host's, made if missing) as
    /// Debian does and starts a server on it: socket, pid and error log in `dir/run`.
    pub fn start_mariadb(&self, dir: &Path) -> HostMariaDb {
        let data = dir.join("data");
        let run = dir.join("run");
        std::fs::create_dir_all(self.path(dir)).unwrap();
        self.exec_ok(&[
            "mariadb-install-db",
            "--user=mysql",
            &format!("--datadir={}", data.display()),
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ]);
        self.exec_ok(&["install", "-d", "-o", "mysql", &run.display().to_string()]);
        let mariadb = HostMariaDb {
            ns: self.namespaces(),
            dir: dir.to_path_buf(),
            address: self.address(),
        };
        let server = self
            .command("/usr/sbin/mariadbd")
            .args([
                "--no-defaults",
                "--user=mysql",
                &format!("--datadir={}", data.display()),
                &format!("--socket={}", mariadb.socket().display()),
                &format!("--pid-file={}", run.join("mysqld.pid").display()),
                &format!("--log-error={}", run.join("error.log").display()),
                &format!("--bind-address={}", self.address()),
                "--port=3306",
                // Grants name addresses; a reverse lookup would only wait on a DNS server the
                // host cannot reach.
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.adopt(server);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !mariadb.root(&["-e", "SELECT 1"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the MariaDB of host {} did not start: {}",
                self.name(),
                std::fs::read_to_string(self.path(&run.join("error.log"))).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.wait_for_port(3306, "MariaDB");
        mariadb
    }
}

impl HostNginx {
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    pub fn listen(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    /// `GET path` with a Host header from the root namespace: (status, Location, body).
    pub fn get(&self, host: &str, path: &str) -> (u16, Option<String>, String) {
        http_get_at(self.address.into(), self.port, host, path)
    }

    /// [`HostNginx::get`], asked again until an answer other than 404 or 502 (a vhost just
    /// added, a pool just started) or 10 s.
    pub fn get_when_served(&self, host: &str, path: &str) -> (u16, Option<String>, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = self.get(host, path);
            if ![404, 502].contains(&answer.0) || Instant::now() > deadline {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The arguments of `fjord server add NAME` for a server on this nginx (its paths the
    /// host's), then `extra`.
    pub fn server_add_args(&self, name: &str, extra: &[&str]) -> Vec<String> {
        nginx_server_add_args(&self.prefix, &self.listen(), name, extra)
    }

    /// Writes `conf` as `conf.d/<name>.conf` and reloads; returns once the workers that
    /// served the old config are gone (until then one may still take a new connection).
    pub fn add_vhost(&self, name: &str, conf: &str) {
        let reloads = self.reloads();
        let old_workers = self.workers();
        let file = self.prefix.join("conf.d").join(format!("{name}.conf"));
        std::fs::write(self.ns.path(&file), conf).unwrap();
        self.ns.exec_ok(&[
            nginx_binary(),
            "-p",
            &format!("{}/", self.prefix.display()),
            "-c",
            &self.prefix.join("nginx.conf").display().to_string(),
            "-s",
            "reload",
        ]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.reloads() == reloads || old_workers.iter().any(|pid| is_running(pid)) {
            assert!(
                Instant::now() < deadline,
                "nginx in the host did not reload"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The master's pid, from its pid file.
    pub fn pid(&self) -> Option<String> {
        let pid = std::fs::read_to_string(self.ns.path(&self.prefix.join("nginx.pid"))).ok()?;
        Some(pid.trim().to_string())
    }

    /// The master's children: its workers (the host shares the machine's process ids).
    fn workers(&self) -> Vec<String> {
        let Some(master) = self.pid() else {
            return Vec::new();
        };
        let children = format!("/proc/{master}/task/{master}/children");
        std::fs::read_to_string(children)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// How many times it has reloaded its config (from its own log).
    pub fn reloads(&self) -> usize {
        self.error_log().matches(": reconfiguring").count()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.ns.path(&self.prefix.join("logs/error.log")))
            .unwrap_or_default()
    }
}

impl HostPhpFpm {
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.ns.path(&self.prefix.join("php-fpm.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The `--php` argument of `fjord server add` for this master (its paths the host's).
    pub fn service_arg(&self) -> String {
        php_fpm_service_arg(&self.prefix)
    }

    /// Writes pool `name` (`pool.d/<name>.conf`) and reloads the master (SIGUSR2).
    pub fn add_pool(&self, name: &str, conf: &str) {
        let file = self.prefix.join("pool.d").join(format!("{name}.conf"));
        std::fs::write(self.ns.path(&file), conf).unwrap();
        let pid = self.pid().expect("php-fpm's pid").to_string();
        self.ns.exec_ok(&["kill", "-USR2", &pid]);
    }
}

impl HostMariaDb {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/mysqld.sock")
    }

    /// The `--db` argument of `fjord server add` for this server (its socket the host's).
    pub fn service_arg(&self) -> String {
        format!("mysql:socket={}", self.socket().display())
    }

    /// Runs SQL as root on the socket; returns the rows without headers, trimmed.
    #[track_caller]
    pub fn sql(&self, sql: &str) -> String {
        let out = self.root(&["-N", "-B", "-e", sql]);
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn root(&self, args: &[&str]) -> std::process::Output {
        let socket = format!("--socket={}", self.socket().display());
        let mut argv = vec!["mariadb", &socket, "-uroot"];
        argv.extend_from_slice(args);
        self.ns.exec(&argv)
    }
}
