//! A private php-fpm master for tests: its own config, pool dir, pid file, sockets and log in
//! a temp dir. The machine's php-fpm is never touched.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::world_readable_tempdir;

pub const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";

/// The config of a test's own php-fpm master in `prefix` (pid, log, pools in `pool.d`).
pub fn php_fpm_conf(prefix: &Path) -> String {
    format!(
        "[global]
pid = {p}/php-fpm.pid
error_log = {p}/error.log
daemonize = yes
; Nothing more than Debian's php-fpm.conf sets: fjord's own global settings (a reload lets
; running requests finish) come with the probe pool server verify writes.
include = {p}/pool.d/*.conf
",
        p = prefix.display()
    )
}

/// A pool for a master that has no other yet: php-fpm refuses to start without one.
pub fn placeholder_pool(prefix: &Path) -> String {
    format!(
        "[placeholder]\nuser = nobody\nlisten = {}/placeholder.sock\npm = ondemand\npm.max_children = 1\n",
        prefix.display()
    )
}

/// The `--php` argument of `fjord server add` for the master of [`php_fpm_conf`] in `prefix`.
pub fn php_fpm_service_arg(prefix: &Path) -> String {
    let p = prefix.display();
    format!("8.2:binary={PHP_FPM},config={p}/php-fpm.conf,pool-dir={p}/pool.d,pid={p}/php-fpm.pid")
}

pub struct PrivatePhpFpm {
    pub dir: tempfile::TempDir,
}

impl PrivatePhpFpm {
    /// Starts a master with fjord's probe pool only (php-fpm refuses to start without a
    /// pool); fjord's server verify rewrites it.
    pub fn start() -> PrivatePhpFpm {
        let dir = world_readable_tempdir();
        let p = dir.path();
        std::fs::create_dir(p.join("pool.d")).unwrap();
        std::fs::write(p.join("php-fpm.conf"), php_fpm_conf(p)).unwrap();
        std::fs::write(p.join("pool.d/placeholder.conf"), placeholder_pool(p)).unwrap();
        let out = Command::new(PHP_FPM)
            .arg("-y")
            .arg(p.join("php-fpm.conf"))
            .output()
            .expect("php-fpm runs");
        assert!(
            out.status.success(),
            "php-fpm did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fpm = PrivatePhpFpm { dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fpm.dir.path().join("php-fpm.pid").exists() {
            assert!(Instant::now() < deadline, "php-fpm wrote no pid file");
            std::thread::sleep(Duration::from_millis(10));
        }
        fpm
    }

    pub fn prefix(&self) -> &Path {
        self.dir.path()
    }

    /// The `--php` argument of `fjord server add` for this master.
    pub fn service_arg(&self) -> String {
        php_fpm_service_arg(self.prefix())
    }

    /// The users of the sites' pools (a pool is `fjord-<user>-<platform>-<hash>.conf`, its
    /// user `fj<installation>-<site id>`), without repeats.
    pub fn pool_users(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .pool_files()
            .iter()
            .map(|f| {
                let pool = f.trim_start_matches("fjord-");
                pool.splitn(3, '-').take(2).collect::<Vec<_>>().join("-")
            })
            .collect();
        users.dedup();
        users
    }

    pub fn pool_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.prefix().join("pool.d"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("fjord-") && n != "fjord-probe.conf")
            .collect();
        names.sort();
        names
    }
}

impl Drop for PrivatePhpFpm {
    fn drop(&mut self) {
        let users = self.pool_users();
        let pid = std::fs::read_to_string(self.prefix().join("php-fpm.pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = Command::new("kill")
                .arg("-QUIT")
                .arg(pid.to_string())
                .status();
            // Its workers run as the sites' users: those can be removed once they are gone.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Users of sites a test left behind (each pool names its user).
        for user in users {
            let quiet = |program: &str| {
                Command::new(program)
                    .arg(&user)
                    .stderr(std::process::Stdio::null())
                    .status()
            };
            let _ = quiet("userdel");
            // userdel removes the user's own group too, where the system says so.
            let _ = quiet("groupdel");
        }
    }
}
