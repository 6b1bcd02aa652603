//! Remote servers over OpenSSH: a server on a test host (its own network and mount
//! namespaces, sshd and nginx), driven by the fjord of the test's data dir through `fjord
//! agent` there. What a task writes on the server exists only in the host's private dirs: a
//! step wrongly made on the local machine would find nothing, and fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::databases::token;
use crate::harness::{Env, walk, world_readable_tempdir};
use crate::test_hosts::TestHost;
use crate::test_hosts::daemons::{HostMariaDb, HostNginx, HostPhpFpm};

/// A remote web server: a test host with nginx, its platforms dir and fjord's dir there.
pub struct RemoteWeb {
    pub nginx: HostNginx,
    /// The host's private dirs (empty on this machine).
    pub platforms: tempfile::TempDir,
    pub fjord_dir: tempfile::TempDir,
    prefix: tempfile::TempDir,
    pub php: Option<HostPhpFpm>,
    pub db: Option<HostMariaDb>,
    // Dropped last: the daemons and the mounts go with it.
    pub host: TestHost,
}

impl RemoteWeb {
    pub fn start() -> RemoteWeb {
        let platforms = world_readable_tempdir();
        let fjord_dir = world_readable_tempdir();
        let prefix = world_readable_tempdir();
        let host = TestHost::start(&[platforms.path(), fjord_dir.path(), prefix.path()]);
        let nginx = host.start_nginx(&prefix.path().join("nginx"), 80);
        RemoteWeb {
            nginx,
            platforms,
            fjord_dir,
            prefix,
            php: None,
            db: None,
            host,
        }
    }

    /// [`RemoteWeb::start`] with a php-fpm and a MariaDB on the host too.
    pub fn start_with_php_and_db() -> RemoteWeb {
        let mut remote = RemoteWeb::start();
        let daemons = remote.prefix.path();
        remote.php = Some(remote.host.start_php_fpm(&daemons.join("php")));
        remote.db = Some(remote.host.start_mariadb(&daemons.join("mariadb")));
        remote
    }

    /// The `server add` arguments of the host's php-fpm and MariaDB.
    pub fn php_and_db_args(&self) -> Vec<String> {
        vec![
            "--php".into(),
            self.php.as_ref().expect("a php-fpm").service_arg(),
            "--db".into(),
            self.db.as_ref().expect("a MariaDB").service_arg(),
            "--web-group".into(),
            "nogroup".into(),
        ]
    }

    /// `server add NAME --ssh root@HOST` for this host (fjord's key authorized first), then
    /// `extra`; returns what `server add` said on stderr.
    pub fn add_to(&self, env: &Env, name: &str, extra: &[&str]) -> String {
        let mut extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        if self.php.is_some() {
            extra.extend(self.php_and_db_args());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        self.host.authorize(env.ok(&["ssh-key"]).trim());
        let ssh = format!("root@{}", self.host.address());
        let fjord_dir = self.fjord_dir.path().display().to_string();
        let mut args = self.nginx.server_add_args(name, &extra);
        args.extend(["--ssh".into(), ssh, "--remote-dir".into(), fjord_dir]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&args);
        assert!(
            out.status.success(),
            "server add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A path of the host's, as this machine reaches it.
    pub fn path(&self, path: &Path) -> PathBuf {
        self.host.path(path)
    }

    pub fn platform_path(&self, name: &str) -> String {
        self.platforms.path().join(name).display().to_string()
    }

    /// Every file and directory beneath the host's private dirs (fjord's agent binary and
    /// nginx's logs aside), with its content: what a rolled-back task must leave as it was.
    pub fn state(&self) -> BTreeMap<String, String> {
        let mut all = BTreeMap::new();
        for dir in [
            self.platforms.path(),
            self.fjord_dir.path(),
            self.prefix.path(),
        ] {
            walk(&self.path(dir), &mut all);
        }
        all.retain(|path, _| {
            !path.contains("/bin/fjord-")
                && !path.contains("/nginx/logs/")
                && !path.contains("/nginx/tmp/")
                && !path.ends_with("nginx.pid")
                // Written by every reload, rolled back or not.
                && !path.ends_with("generation.conf")
                && !path.ends_with("/.lock")
        });
        all
    }
}

/// Runs what is queued until nothing is left; returns the newest task (its id, and itself).
fn dispatched(env: &Env) -> (i64, serde_json::Value) {
    env.dispatch_until_idle(&[]);
    let id = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
    (id, env.task(id))
}

/// [`dispatched`], the newest task asserted a success (its log shown if not).
#[track_caller]
fn dispatched_ok(env: &Env) -> i64 {
    let (id, task) = dispatched(env);
    assert_eq!(task["status"], "success", "{}", env.log(id));
    id
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// A remote server and a static platform on it, verified.
fn remote_with_platform(env: &Env) -> RemoteWeb {
    let remote = RemoteWeb::start();
    remote.add_to(env, "r1", &[]);
    env.dispatch_until_idle(&[]);
    env.ok(&[
        "platform",
        "add",
        "p1",
        "--server",
        "r1",
        "--path",
        &remote.platform_path("p1"),
    ]);
    env.dispatch_until_idle(&[]);
    let last = env.json(&["task", "list"])[0].clone();
    assert_eq!(
        last["status"],
        "success",
        "{}",
        env.log(last["id"].as_i64().unwrap())
    );
    remote
}

#[test]
fn a_remote_server_is_verified_over_ssh_with_its_host_key_pinned_and_its_files_are_written_there() {
    let env = Env::bare();
    let remote = RemoteWeb::start();
    let said = remote.add_to(&env, "r1", &[]);
    let offered = remote.host.host_key_line();
    assert!(
        said.contains(&offered),
        "server add shows the key it pinned ({offered}): {said}"
    );
    env.dispatch_until_idle(&[]);
    let tasks = env.json(&["task", "list"]);
    assert_eq!(tasks[0]["status"], "success", "{}", env.log(1));
    let log = env.log(1);
    assert!(log.contains("on server r1 (root@"), "{log}");
    // fjord's hook is in the host's nginx, and nothing of it on this machine.
    let hook = remote.nginx.prefix().join("conf.d/fjord-r1.conf");
    assert!(remote.path(&hook).exists(), "{log}");
    assert!(!hook.exists());
    assert!(is_empty(remote.fjord_dir.path()));
    assert!(
        remote
            .path(&remote.fjord_dir.path().join("config/r1/nginx/server.conf"))
            .exists()
    );
    // The agent is this very fjord, checked by its digest.
    let agents = std::fs::read_dir(remote.path(&remote.fjord_dir.path().join("bin")))
        .unwrap()
        .count();
    assert_eq!(agents, 1);
    let show = env.json(&["server", "show", "r1"]);
    assert_eq!(
        show["remote"]["ssh"]["host"],
        remote.host.address().to_string(),
        "{show}"
    );

    // What a server lacks is named.
    env.ok(&[
        "server",
        "edit",
        "r1",
        "--add-php",
        "8.2:binary=/usr/sbin/php-fpm-missing",
    ]);
    let (_, task) = dispatched(&env);
    assert_eq!(task["status"], "failed");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("lacks what its services need: /usr/sbin/php-fpm-missing"),
        "{task}"
    );
}

#[test]
fn a_static_site_lives_its_whole_life_on_a_remote_server() {
    let env = Env::bare();
    let remote = remote_with_platform(&env);
    env.ok(&["site", "add", "s1.test", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let (status, _, body) = remote.nginx.get_when_served("s1.test", "/");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("s1.test"), "{body}");
    let docroot = remote.platforms.path().join("p1/sites/s1.test");
    assert!(remote.path(&docroot).is_dir());
    assert!(!docroot.exists(), "nothing of the site on this machine");
    std::fs::write(remote.path(&docroot.join("index.html")), "own content").unwrap();

    for (command, served) in [
        ("verify", "own content"),
        ("disable", "disabled"),
        ("enable", "own content"),
    ] {
        env.ok(&["site", command, "s1.test"]);
        env.dispatch_until_idle(&[]);
        let id = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
        assert_eq!(
            env.task(id)["status"],
            "success",
            "{command}: {}",
            env.log(id)
        );
        let (_, _, body) = remote.nginx.get("s1.test", "/");
        assert!(
            body.to_lowercase().contains(served),
            "after {command}: {body}"
        );
    }

    env.ok(&["site", "delete", "s1.test", "--force"]);
    dispatched_ok(&env);
    assert_eq!(remote.nginx.get("s1.test", "/").0, 404);
    assert!(!remote.path(&docroot).exists());
}

#[test]
fn a_changed_host_key_refuses_every_task_until_the_new_one_is_pinned() {
    let env = Env::bare();
    let remote = remote_with_platform(&env);
    let before = remote.state();
    remote.host.change_host_key();
    env.ok(&["site", "add", "s1.test", "--platform", "p1"]);
    let (_, task) = dispatched(&env);
    assert_eq!(task["status"], "failed");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("did not prove it holds the host key pinned for it")
            && error.contains("fjord server edit r1 --host-key"),
        "{error}"
    );
    assert_eq!(remote.state(), before, "nothing changed on the server");

    env.ok(&[
        "server",
        "edit",
        "r1",
        "--host-key",
        &remote.host.host_key_line(),
    ]);
    dispatched_ok(&env);
}

#[test]
fn a_remote_site_install_failing_after_any_step_leaves_the_server_as_it_was() {
    let env = Env::bare();
    let remote = remote_with_platform(&env);
    // The steps of one install, counted on a first run that succeeds.
    env.ok(&["site", "add", "count.test", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let id = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
    let steps = env.log(id).matches("step ").count();
    assert!(steps >= 8, "{}", env.log(id));
    let before = remote.state();
    for n in 1..=steps {
        let name = format!("f{n}.test");
        env.ok(&["site", "add", &name, "--platform", "p1"]);
        env.dispatch_until_idle(&[&format!("fail-after:site-install:{n}")]);
        let id = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
        let task = env.task(id);
        assert_eq!(task["status"], "failed", "step {n}: {}", env.log(id));
        assert_eq!(
            remote.state(),
            before,
            "after a failure at step {n}: {}",
            env.log(id)
        );
        assert_eq!(remote.nginx.get(&name, "/").0, 404);
        env.ok(&["site", "delete", &name, "--force"]);
        env.dispatch_until_idle(&[]);
    }
}

#[test]
fn a_rollback_that_cannot_reach_its_server_waits_for_it_and_then_finishes() {
    let mut env = Env::bare();
    let remote = remote_with_platform(&env);
    let before = remote.state();
    env.start_dispatcher(&["pause-after:site-install:5:3000"]);
    let id = env.queue(&["site", "add", "s1.test", "--platform", "p1"]);
    env.wait_for_log(id, "fault: paused");
    remote.host.link_down();
    env.wait_for_log(id, "the rollback is not finished");
    assert_eq!(env.task(id)["status"], "processing", "{}", env.log(id));
    remote.host.link_up();
    let task = env.wait_task(id, Duration::from_secs(120));
    assert_eq!(task["status"], "failed", "{}", env.log(id));
    assert!(env.log(id).contains("rollback complete"), "{}", env.log(id));
    assert_eq!(remote.state(), before, "{}", env.log(id));
}

#[test]
fn a_wordpress_site_lives_on_a_remote_server_with_its_database_and_its_user_there() {
    let env = Env::bare();
    let remote = RemoteWeb::start_with_php_and_db();
    remote.add_to(&env, "r1", &[]);
    env.dispatch_until_idle(&[]);
    let last = env.json(&["task", "list"])[0].clone();
    assert_eq!(
        last["status"],
        "success",
        "{}",
        env.log(last["id"].as_i64().unwrap())
    );
    env.ok(&[
        "platform",
        "add",
        "wp",
        "--server",
        "r1",
        "--kind",
        "wordpress",
        "--from",
        "/usr/share/wordpress",
        "--path",
        &remote.platform_path("wp"),
    ]);
    env.dispatch_until_idle(&[]);
    let platform = env.json(&["platform", "show", "wp"]);
    assert_eq!(platform["version"], "6.1.9", "{platform}");
    let blog = format!("{}-blog.wp.test", token());
    env.ok(&[
        "site",
        "add",
        &blog,
        "--platform",
        "wp",
        "--title",
        "A Remote Blog",
        "--admin-email",
        "owner@example.com",
    ]);
    env.dispatch_until_idle(&[]);
    let site = env.json(&["site", "show", &blog]);
    let install = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
    assert_eq!(site["status"], "installed", "{}", env.log(install));
    let (status, location, body) = remote.nginx.get_when_served(&blog, "/");
    assert_eq!(status, 200, "{location:?} {body}");
    assert!(body.contains("<title>A Remote Blog</title>"), "{body}");
    // Its database is on the host's MariaDB, its user in the host's /etc only.
    let db = site["database"]["name"].as_str().unwrap().to_string();
    let mariadb = remote.db.as_ref().unwrap();
    let tables: u32 = mariadb
        .sql(&format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{db}'"
        ))
        .parse()
        .unwrap();
    assert!(tables > 5, "{tables} tables in {db}");
    // The site's user: the one user fjord made in the host's own /etc.
    let passwd = remote.host.exec_ok(&["cat", "/etc/passwd"]);
    let made: Vec<&str> = passwd
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|u| u.starts_with("fj"))
        .collect();
    assert_eq!(made.len(), 1, "{passwd}");
    let user = made[0].to_string();
    assert!(
        !std::process::Command::new("id")
            .arg(&user)
            .output()
            .unwrap()
            .status
            .success()
    );

    for command in ["verify", "disable", "enable"] {
        env.ok(&["site", command, &blog]);
        env.dispatch_until_idle(&[]);
        let id = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
        assert_eq!(
            env.task(id)["status"],
            "success",
            "{command}: {}",
            env.log(id)
        );
    }
    let (status, _, body) = remote.nginx.get(&blog, "/");
    assert_eq!(status, 200, "{body}");

    // Backed up (its database dumped on the server, the archive streamed here), changed,
    // restored: its title is back.
    env.ok(&["site", "backup", &blog]);
    dispatched_ok(&env);
    mariadb.sql(&format!(
        "UPDATE `{db}`.wp_options SET option_value = 'Changed' WHERE option_name = 'blogname'"
    ));
    let (_, _, body) = remote.nginx.get(&blog, "/");
    assert!(body.contains("<title>Changed</title>"), "{body}");
    env.ok(&["site", "restore", &blog]);
    dispatched_ok(&env);
    let (_, _, body) = remote.nginx.get(&blog, "/");
    assert!(body.contains("<title>A Remote Blog</title>"), "{body}");

    env.ok(&["site", "delete", &blog, "--force"]);
    dispatched_ok(&env);
    assert_eq!(
        mariadb.sql(&format!(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{db}'"
        )),
        "0"
    );
    assert!(!remote.host.exec(&["id", &user]).status.success());
}

#[test]
fn a_remote_sites_backups_come_over_the_link_to_this_machine_and_restore_it_there() {
    let env = Env::bare();
    let remote = remote_with_platform(&env);
    env.ok(&["site", "add", "s1.test", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let docroot = remote.platforms.path().join("p1/sites/s1.test");
    std::fs::write(remote.path(&docroot.join("index.html")), "as backed up").unwrap();
    std::fs::create_dir(remote.path(&docroot.join("assets"))).unwrap();
    std::fs::write(
        remote.path(&docroot.join("assets/big.bin")),
        vec![7u8; 3 << 20],
    )
    .unwrap();
    env.ok(&["site", "backup", "s1.test"]);
    dispatched_ok(&env);
    // The archive is here, in fjord's data dir; nothing of it was kept on the server.
    let backups = env.json(&["site", "backups", "s1.test"]);
    let path = std::path::PathBuf::from(backups[0]["path"].as_str().unwrap());
    assert!(path.starts_with(env.data.path()), "{backups}");
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    let leftovers: Vec<_> =
        std::fs::read_dir(remote.path(&remote.fjord_dir.path().join("journal")))
            .unwrap()
            .collect();
    assert!(
        leftovers.is_empty(),
        "scratch left on the server: {leftovers:?}"
    );

    std::fs::write(remote.path(&docroot.join("index.html")), "changed since").unwrap();
    std::fs::remove_file(remote.path(&docroot.join("assets/big.bin"))).unwrap();
    env.ok(&["site", "restore", "s1.test"]);
    dispatched_ok(&env);
    let (status, _, body) = remote.nginx.get("s1.test", "/");
    assert_eq!((status, body.as_str()), (200, "as backed up"));
    assert_eq!(
        std::fs::read(remote.path(&docroot.join("assets/big.bin"))).unwrap(),
        vec![7u8; 3 << 20]
    );
    // The restore's own backup of the state it replaced came home too.
    assert_eq!(
        env.json(&["site", "backups", "s1.test"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_remote_sites_backup_copied_to_a_backup_target_brings_it_back_once_the_backups_here_are_lost() {
    let env = Env::bare();
    let remote = remote_with_platform(&env);
    let target = crate::backup_targets::TargetHost::start();
    target.add_to(&env, "off1");
    env.ok(&["backup-policy", "--copy-to", "off1"]);
    env.ok(&["site", "add", "s1.test", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let docroot = remote.platforms.path().join("p1/sites/s1.test");
    std::fs::write(remote.path(&docroot.join("index.html")), "as backed up").unwrap();
    env.ok(&["site", "backup", "s1.test"]);
    env.dispatch_until_idle(&[]);
    let id = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
    let log = env.log(id);
    assert_eq!(env.task(id)["status"], "success", "{log}");
    assert!(log.contains("to backup target off1"), "{log}");

    // Every backup kept here is lost; the site changes.
    std::fs::remove_dir_all(env.data.path().join("backups/s1.test")).unwrap();
    std::fs::write(remote.path(&docroot.join("index.html")), "changed since").unwrap();
    env.ok(&["site", "restore", "s1.test", "--from-target", "off1"]);
    dispatched_ok(&env);
    let (status, _, body) = remote.nginx.get("s1.test", "/");
    assert_eq!((status, body.as_str()), (200, "as backed up"));
}

#[test]
fn a_wordpress_site_on_one_remote_server_keeps_its_database_on_another_granted_to_the_first_only() {
    let env = Env::bare();
    let mut web = RemoteWeb::start();
    web.php = Some(web.host.start_php_fpm(&web.prefix.path().join("php")));
    let mut data = RemoteWeb::start();
    data.db = Some(data.host.start_mariadb(&data.prefix.path().join("mariadb")));
    let php = web.php.as_ref().unwrap().service_arg();
    let mysql = data.db.as_ref().unwrap().service_arg();
    // Each server with its own service only (`add_to` would give both).
    let (php_web, db_data) = (web.php.take(), data.db.take());
    web.add_to(&env, "web1", &["--php", &php, "--web-group", "nogroup"]);
    data.add_to(&env, "db1", &["--db", &mysql]);
    web.php = php_web;
    data.db = db_data;
    env.dispatch_until_idle(&[]);
    for task in env.json(&["task", "list"]).as_array().unwrap() {
        assert_eq!(
            task["status"],
            "success",
            "{}",
            env.log(task["id"].as_i64().unwrap())
        );
    }
    env.ok(&[
        "platform",
        "add",
        "wp",
        "--server",
        "web1",
        "--kind",
        "wordpress",
        "--from",
        "/usr/share/wordpress",
        "--path",
        &web.platform_path("wp"),
    ]);
    env.dispatch_until_idle(&[]);
    let blog = format!("{}-split.wp.test", token());
    env.ok(&[
        "site",
        "add",
        &blog,
        "--platform",
        "wp",
        "--db",
        "mysql",
        "--db-server",
        "db1",
        "--title",
        "Two Servers",
    ]);
    env.dispatch_until_idle(&[]);
    let install = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
    let log = env.log(install);
    assert_eq!(env.task(install)["status"], "success", "{log}");
    assert!(log.contains("the database's steps on server db1"), "{log}");
    let (status, _, body) = web.nginx.get_when_served(&blog, "/");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<title>Two Servers</title>"), "{body}");

    // The database is on db1's MariaDB, its user granted from web1's address only.
    let site = env.json(&["site", "show", &blog]);
    let (db, user) = (
        site["database"]["name"].as_str().unwrap().to_string(),
        site["database"]["user"].as_str().unwrap().to_string(),
    );
    let mariadb = data.db.as_ref().unwrap();
    assert_eq!(
        mariadb.sql(&format!(
            "SELECT Host FROM mysql.user WHERE User = '{user}'"
        )),
        web.host.address().to_string()
    );
    let tables: u32 = mariadb
        .sql(&format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{db}'"
        ))
        .parse()
        .unwrap();
    assert!(tables > 5, "{tables} tables in {db}");

    env.ok(&["site", "verify", &blog]);
    dispatched_ok(&env);

    // What needs the database's dump carried between the two servers (a backup, and a
    // disable, which backs the site up first) is refused, saying so, and changes nothing.
    for command in ["backup", "disable"] {
        env.ok(&["site", command, &blog]);
        env.dispatch_until_idle(&[]);
        let id = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
        let task = env.task(id);
        assert_eq!(task["status"], "failed", "{command}: {}", env.log(id));
        assert!(
            task["error"]
                .as_str()
                .unwrap()
                .contains("whose database is on another server than its files is not made yet"),
            "{task}"
        );
    }
    let (status, _, body) = web.nginx.get(&blog, "/");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<title>Two Servers</title>"), "{body}");
}
