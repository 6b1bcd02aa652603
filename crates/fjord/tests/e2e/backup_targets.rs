//! Backup targets: a test host (its own network and mount namespaces and sshd, nothing of
//! fjord's) keeps a copy of each backup by policy. A site's backups survive the loss of its
//! web server's data: with the local backups wiped, the site comes back from the target; a
//! target that cannot be reached, or offers another host key, fails the backup and leaves
//! nothing behind; bad input is refused with its value and rule, changing nothing.

use std::path::{Path, PathBuf};

use crate::harness::{Env, world_readable_tempdir};
use crate::test_hosts::TestHost;

/// A backup target on a test host: its private dir, where the copies go.
pub(crate) struct TargetHost {
    dir: tempfile::TempDir,
    // Dropped last: its sshd and mounts go with it.
    host: TestHost,
}

impl TargetHost {
    pub(crate) fn start() -> TargetHost {
        let dir = world_readable_tempdir();
        let host = TestHost::start(&[dir.path()]);
        TargetHost { dir, host }
    }

    /// `USER@HOST:/path` of its copies dir.
    fn ssh(&self) -> String {
        format!(
            "root@{}:{}/copies",
            self.host.address(),
            self.dir.path().display()
        )
    }

    /// Adds it to `env` as `name` (fjord's key authorized first); returns what was said on
    /// stderr.
    pub(crate) fn add_to(&self, env: &Env, name: &str) -> String {
        self.host.authorize(env.ok(&["ssh-key"]).trim());
        let out = env.run(&["backup-target", "add", name, "--ssh", &self.ssh()]);
        assert!(
            out.status.success(),
            "backup-target add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A path on the host, as this machine reaches it.
    fn path(&self, path: &str) -> PathBuf {
        self.host.path(Path::new(path))
    }

    /// Every file below its copies dir, by path on the host.
    fn files(&self) -> Vec<String> {
        let mut all = std::collections::BTreeMap::new();
        crate::harness::walk(&self.host.path(self.dir.path()), &mut all);
        all.into_iter()
            .filter(|(_, what)| what.starts_with("file "))
            .map(|(path, _)| path)
            .collect()
    }
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn write_page(env: &Env, site: &str, text: &str) {
    std::fs::write(env.docroot("p1", site).join("index.html"), text).unwrap();
}

fn served(env: &Env, site: &str) -> String {
    let (status, _, body) = env.nginx.get(site, "/");
    assert_eq!(status, 200, "{body}");
    body
}

fn last_task(env: &Env) -> serde_json::Value {
    env.json(&["task", "list"])[0].clone()
}

/// Runs the queued tasks; returns the newest, which must have succeeded.
#[track_caller]
fn run_ok(env: &Env) -> serde_json::Value {
    env.dispatch_until_idle(&[]);
    let task = last_task(env);
    let id = task["id"].as_i64().unwrap();
    assert_eq!(task["status"], "success", "{}", env.log(id));
    task
}

#[test]
fn a_sites_backups_copied_to_a_backup_target_bring_it_back_after_its_local_backups_are_lost() {
    let env = Env::new();
    let target = TargetHost::start();
    let said = target.add_to(&env, "off1");
    let offered = target.host.host_key_line();
    assert!(said.contains(&offered), "the pinned key is shown: {said}");
    let listed = env.json(&["backup-target", "list"]);
    assert_eq!(listed[0]["name"], "off1", "{listed}");
    assert_eq!(listed[0]["host_key"], offered, "{listed}");

    env.ok(&["site", "add", "s1.test", "--platform", "p1"]);
    run_ok(&env);
    write_page(&env, "s1.test", "as backed up\n");
    let policy = env.ok(&["backup-policy", "--copy-to", "off1"]);
    assert!(policy.contains("default backup copy to: off1"), "{policy}");

    env.ok(&["site", "backup", "s1.test"]);
    let task = run_ok(&env);
    let log = env.log(task["id"].as_i64().unwrap());
    assert!(log.contains("copy backup"), "{log}");
    assert!(log.contains("checked there"), "{log}");
    let backups = env.json(&["site", "backups", "s1.test"]);
    let backup = &backups[0];
    let local = PathBuf::from(backup["path"].as_str().unwrap());
    let copy = &backup["copies"][0];
    assert_eq!(copy["target"], "off1", "{backups}");
    let on_target = target.path(copy["path"].as_str().unwrap());
    let bytes = std::fs::read(&local).unwrap();
    assert_eq!(
        std::fs::read(&on_target).unwrap(),
        bytes,
        "the copy is the backup"
    );
    assert_eq!(copy["sha256"], sha256_hex(&local), "{backups}");
    assert_eq!(copy["size"], bytes.len() as u64, "{backups}");
    assert!(
        env.ok(&["site", "backups", "s1.test"]).contains("off1"),
        "the table names the targets holding a copy"
    );
    assert!(
        !Path::new(copy["path"].as_str().unwrap()).exists(),
        "nothing of the target on this machine"
    );

    // The web server's backups are lost and the site changed: the copy brings it back.
    std::fs::remove_dir_all(env.data.path().join("backups/s1.test")).unwrap();
    write_page(&env, "s1.test", "changed since\n");
    assert_eq!(served(&env, "s1.test"), "changed since\n");
    // A restore failing once the copy is fetched (its first step) takes the fetched copy away.
    env.ok(&["site", "restore", "s1.test", "--from-target", "off1"]);
    env.dispatch_until_idle(&["fail-after:site-restore:1"]);
    let failed = last_task(&env);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        !local.exists(),
        "{}",
        env.log(failed["id"].as_i64().unwrap())
    );
    assert_eq!(served(&env, "s1.test"), "changed since\n");
    let id = env.queue(&["site", "restore", "s1.test", "--from-target", "off1"]);
    env.dispatch_until_idle(&[]);
    let restore = env.task(id);
    assert_eq!(restore["status"], "success", "{}", env.log(id));
    let log = env.log(id);
    assert!(log.contains("from backup target off1"), "{log}");
    assert!(log.contains("SHA-256"), "{log}");
    assert_eq!(served(&env, "s1.test"), "as backed up\n");
    assert_eq!(
        std::fs::read(&local).unwrap(),
        bytes,
        "the fetched copy is the local backup again"
    );

    // Retention removes an old backup's copy from the target with it.
    env.ok(&["backup-policy", "--retention", "last=1"]);
    env.ok(&["site", "backup", "s1.test"]);
    run_ok(&env);
    assert!(!on_target.exists(), "the pruned backup's copy is gone");
    let backups = env.json(&["site", "backups", "s1.test"]);
    let kept: Vec<_> = backups
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| !b["copies"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(kept.len(), 1, "{backups}");
    assert!(
        target
            .path(kept[0]["copies"][0]["path"].as_str().unwrap())
            .is_file()
    );
}

#[test]
fn an_unreachable_or_rekeyed_backup_target_fails_the_backup_and_bad_input_changes_nothing() {
    let mut env = Env::new();
    env.ok(&["site", "add", "s1.test", "--platform", "p1"]);
    run_ok(&env);

    // Bad input: refused with its value and the rule, nothing recorded.
    for (args, said) in [
        (
            vec!["backup-target", "add", "off1", "--ssh", "root@10.9.9.9"],
            "invalid ssh \"root@10.9.9.9\": must be USER@HOST:/path",
        ),
        (
            vec![
                "backup-target",
                "add",
                "off1",
                "--ssh",
                "root@10.9.9.9:srv/copies",
            ],
            "invalid ssh \"root@10.9.9.9:srv/copies\"",
        ),
        (
            vec![
                "backup-target",
                "add",
                "off1",
                "--ssh",
                "root@10.9.9.9:/srv/a;b",
            ],
            "the path may hold only letters, digits",
        ),
        (
            vec![
                "backup-target",
                "add",
                "Off!",
                "--ssh",
                "root@10.9.9.9:/srv",
            ],
            "invalid backup target name \"Off!\"",
        ),
        (
            vec!["backup-policy", "--copy-to", "nowhere"],
            "backup target \"nowhere\"",
        ),
        (
            vec!["site", "backup-policy", "s1.test", "--copy-to", "nowhere"],
            "backup target \"nowhere\"",
        ),
        (
            vec!["site", "restore", "s1.test", "--from-target", "nowhere"],
            "backup target \"nowhere\"",
        ),
    ] {
        let err = env.fails(&args);
        assert!(err.contains(said), "{args:?}: {err}");
    }
    assert_eq!(env.json(&["backup-target", "list"]), serde_json::json!([]));
    let policy = env.ok(&["backup-policy"]);
    assert!(policy.contains("default backup copy to: none"), "{policy}");
    let tasks = env.json(&["task", "list"]).as_array().unwrap().len();

    let target = TargetHost::start();
    target.add_to(&env, "off1");
    let policy = env.ok(&["site", "backup-policy", "s1.test", "--copy-to", "off1"]);
    assert!(
        policy.contains("site s1.test backup copy to: off1"),
        "{policy}"
    );
    assert_eq!(env.json(&["task", "list"]).as_array().unwrap().len(), tasks);
    let err = env.fails(&["backup-target", "remove", "off1"]);
    assert!(err.contains("s1.test"), "a policy names it: {err}");

    let backups_dir = env.data.path().join("backups/s1.test");
    let local_files = || -> Vec<PathBuf> {
        std::fs::read_dir(&backups_dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };

    // The link is cut: the backup fails naming the target, and leaves nothing behind.
    target.host.link_down();
    env.ok(&["site", "backup", "s1.test"]);
    env.dispatch_until_idle(&[]);
    target.host.link_up();
    let task = last_task(&env);
    let error = task["error"].as_str().unwrap_or_default();
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        error.contains("backup target off1") && error.contains("cannot be reached"),
        "{error}"
    );
    assert!(local_files().is_empty(), "{:?}", local_files());
    assert_eq!(
        env.json(&["site", "backups", "s1.test"]),
        serde_json::json!([])
    );
    assert!(target.files().is_empty(), "{:?}", target.files());

    // Back again: copied.
    env.ok(&["site", "backup", "s1.test"]);
    run_ok(&env);
    assert_eq!(target.files().len(), 1, "{:?}", target.files());
    let before = target.files();
    let local_before = local_files();

    // Failed after the copy was made (step 2, after the archive), or killed there: the
    // rollback removes the copy on the target and the archive here.
    env.ok(&["site", "backup", "s1.test"]);
    env.dispatch_until_idle(&["fail-after:site-backup:2"]);
    let task = last_task(&env);
    let log = env.log(task["id"].as_i64().unwrap());
    assert_eq!(task["status"], "failed", "{log}");
    assert!(log.contains("undo: copy backup"), "{log}");
    assert_eq!(target.files(), before, "{log}");
    assert_eq!(local_files(), local_before, "{log}");
    let pid = env.start_dispatcher(&["pause-after:site-backup:2"]);
    let id = env.queue(&["site", "backup", "s1.test"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !env.log(id).contains("fault: paused") {
        assert!(std::time::Instant::now() < deadline, "{}", env.log(id));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(target.files().len(), 2, "the copy was made when it died");
    crate::harness::signal(pid, "KILL");
    env.start_dispatcher(&[]);
    let task = env.wait_task(id, std::time::Duration::from_secs(60));
    env.kill_dispatchers();
    assert_eq!(task["error"], "interrupted; rolled back", "{}", env.log(id));
    assert_eq!(target.files(), before, "{}", env.log(id));
    assert_eq!(local_files(), local_before, "{}", env.log(id));

    // Re-keyed: refused as such, nothing copied, nothing left here.
    target.host.change_host_key();
    env.ok(&["site", "backup", "s1.test"]);
    env.dispatch_until_idle(&[]);
    let task = last_task(&env);
    let error = task["error"].as_str().unwrap_or_default();
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        error.contains("backup target off1") && error.contains("host key pinned"),
        "{error}"
    );
    assert_eq!(local_files().len(), 1, "{:?}", local_files());
    assert_eq!(target.files(), before);

    // No policy names it: it goes, and its copies stay on it.
    env.ok(&["backup-policy", "--copy-to", "off1"]);
    env.ok(&["site", "backup-policy", "s1.test", "--copy-to", "default"]);
    let err = env.fails(&["backup-target", "remove", "off1"]);
    assert!(err.contains("the installation's default"), "{err}");
    env.ok(&["backup-policy", "--copy-to", "none"]);
    env.ok(&["backup-target", "remove", "off1"]);
    assert_eq!(env.json(&["backup-target", "list"]), serde_json::json!([]));
    assert_eq!(target.files(), before);
    let backups = env.json(&["site", "backups", "s1.test"]);
    assert_eq!(backups[0]["copies"], serde_json::json!([]), "{backups}");
}
