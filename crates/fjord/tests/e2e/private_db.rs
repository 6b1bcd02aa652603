//! Database servers of a test's own, set up as a production machine's are (the machine's own
//! let any local user in as their administrator): what the isolation tests run sites on.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::databases::token;

/// A PostgreSQL cluster of the test's own that asks every connection for its password
/// (scram-sha-256), as a production server does: the machine's own trusts 127.0.0.1, so on
/// it any local user, and any site's code, is its superuser whatever fjord does.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    password_file: PathBuf,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())
            .expect("PostgreSQL's server binaries");
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let cluster = dir.path().join("cluster");
        std::fs::create_dir(&cluster).unwrap();
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(&cluster, Some(uid), Some(gid)).unwrap();
        let password = format!("pw{}", token());
        let for_initdb = cluster.join("pwfile");
        std::fs::write(&for_initdb, &password).unwrap();
        std::os::unix::fs::chown(&for_initdb, Some(uid), Some(gid)).unwrap();
        let password_file = dir.path().join("admin-password");
        std::fs::write(&password_file, &password).unwrap();
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let data = cluster.join("data");
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                &format!("--pwfile={}", for_initdb.display()),
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let port = crate::harness::free_port();
        as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                &data.display().to_string(),
                "-o",
                &format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    cluster.display()
                ),
                "-l",
                &cluster.join("log").display().to_string(),
                "-w",
                "start",
            ],
        );
        PrivatePostgres {
            dir,
            port,
            bin,
            password_file,
        }
    }

    /// Runs SQL as postgres in `database`.
    pub fn sql(&self, database: &str, sql: &str) {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", database, "-XqAt", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env(
                "PGPASSWORD",
                std::fs::read_to_string(&self.password_file).unwrap().trim(),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The `--db` argument of `fjord server add` for this cluster.
    pub fn service_arg(&self) -> String {
        format!(
            "postgresql:host=127.0.0.1,port={},user=postgres,password-file={}",
            self.port,
            self.password_file.display()
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("cluster/data");
        as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &data.display().to_string(), "-m", "immediate", "stop"],
        );
    }
}

fn postgres_ids() -> (u32, u32) {
    let line = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("a postgres user")
        .to_string();
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

fn as_postgres(program: &Path, args: &[&str]) {
    let out = Command::new("setpriv")
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--",
        ])
        .arg(program)
        .args(args)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a MariaDB data dir in `data` as Debian's does (root through its socket only, no test
/// database) and `run`, where the server writes its socket and pid as mysql; returns `run`.
pub fn install_mariadb(data: &Path, run: &Path) -> PathBuf {
    let out = Command::new("mariadb-install-db")
        .args([
            "--user=mysql",
            &format!("--datadir={}", data.display()),
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::create_dir(run).unwrap();
    let mysql = Command::new("id").args(["-u", "mysql"]).output().unwrap();
    let uid: u32 = String::from_utf8_lossy(&mysql.stdout)
        .trim()
        .parse()
        .unwrap();
    std::os::unix::fs::chown(run, Some(uid), None).unwrap();
    run.to_path_buf()
}

/// A MariaDB server of the test's own, set up as Debian sets one up: root signs in through
/// its socket only when the connecting process is root (`unix_socket`). The machine's own
/// lets root in with an empty password, so on it any local user, and any site's code, is its
/// administrator whatever fjord does.
pub struct PrivateMariaDb {
    dir: tempfile::TempDir,
    server: std::process::Child,
}

impl PrivateMariaDb {
    pub fn start() -> PrivateMariaDb {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let run = install_mariadb(&data, &dir.path().join("run"));
        let socket = run.join("mysqld.sock");
        let server = Command::new("/usr/sbin/mariadbd")
            .args([
                "--no-defaults",
                "--user=mysql",
                &format!("--datadir={}", data.display()),
                &format!("--socket={}", socket.display()),
                &format!("--pid-file={}", run.join("mysqld.pid").display()),
                "--skip-networking",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mariadb = PrivateMariaDb { dir, server };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !Command::new("mariadb")
            .arg(format!("--socket={}", mariadb.socket().display()))
            .args(["-uroot", "-e", "SELECT 1"])
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the private MariaDB did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        mariadb
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/mysqld.sock")
    }

    /// The `--db` argument of `fjord server add` for this server.
    pub fn service_arg(&self) -> String {
        format!("mysql:socket={}", self.socket().display())
    }

    /// Runs SQL as root.
    pub fn sql(&self, sql: &str) {
        let out = Command::new("mariadb")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-e", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
