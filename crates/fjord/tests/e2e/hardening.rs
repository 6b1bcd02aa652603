//! Regression tests of defects a review and an adversarial round found in tasks: stuck and
//! lost outcomes, vanished files, names and backups across renames, child processes, a
//! fresh server's first commit, closed pipes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use crate::harness::Env;

/// Queues a task and runs it to success.
#[track_caller]
pub(crate) fn done(env: &Env, args: &[&str]) {
    let id = env.queue(args);
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    assert_eq!(task["status"], "success", "{args:?}: {}", env.log(id));
}

pub(crate) fn site(env: &Env, name: &str) {
    env.ok(&["site", "add", name, "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
}

/// `fjord task list | head -1`: a reader that goes away ends the command quietly.
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let env = Env::new();
    for args in [
        &["task", "list"][..],
        &["task", "list", "--json"],
        &["site", "list"],
    ] {
        let mut child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // A dispatcher whose stdout is closed still runs its tasks.
    env.ok(&["site", "add", "pipe.example", "--platform", "p1"]);
    let mut child = env
        .command(&["dispatch", "--until-idle"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(
        env.json(&["site", "show", "pipe.example"])["status"],
        "installed"
    );
}

/// Verify never makes up a site or a platform whose files are gone: it fails, saying to
/// restore, and the site's vhost is left alone.
#[test]
fn verify_of_vanished_files_fails_and_says_to_restore() {
    let env = Env::new();
    site(&env, "vanished.example");
    std::fs::remove_dir_all(env.docroot("p1", "vanished.example")).unwrap();
    let id = env.queue(&["site", "verify", "vanished.example"]);
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    assert_eq!(task["status"], "failed");
    assert!(
        task["error"].as_str().unwrap().contains("restore"),
        "{task}"
    );
    assert!(!env.docroot("p1", "vanished.example").exists());

    std::fs::remove_dir_all(env.platform_path("p1")).unwrap();
    let id = env.queue(&["platform", "verify", "p1"]);
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    assert_eq!(task["status"], "failed");
    assert!(
        task["error"].as_str().unwrap().contains("is gone"),
        "{task}"
    );
    assert!(!Path::new(&env.platform_path("p1")).exists());
}

/// A site whose install failed can be deleted, and its name used again.
#[test]
fn a_site_whose_install_failed_can_be_deleted() {
    let env = Env::new();
    env.ok(&["site", "add", "failed.example", "--platform", "p1"]);
    env.dispatch_until_idle(&["fail-after:site-install:2"]);
    assert_eq!(
        env.json(&["site", "show", "failed.example"])["status"],
        "failed"
    );
    done(&env, &["site", "delete", "failed.example", "--force"]);
    assert!(env.run(&["site", "show", "failed.example"]).status.code() != Some(0));
    site(&env, "failed.example");
    assert_eq!(
        env.json(&["site", "show", "failed.example"])["status"],
        "installed"
    );
}

/// A directory in `sites/` named like another platform's site or an alias is skipped with a
/// log line, not imported (the verify used to fail on a UNIQUE constraint).
#[test]
fn platform_verify_skips_directories_named_like_other_sites() {
    let env = Env::new();
    env.add_platform("p2");
    env.ok(&[
        "site",
        "add",
        "taken.example",
        "--platform",
        "p1",
        "--alias",
        "www.taken.example",
    ]);
    env.dispatch_until_idle(&[]);
    for dir in ["taken.example", "www.taken.example", "new.example"] {
        std::fs::create_dir_all(env.docroot("p2", dir)).unwrap();
    }
    let id = env.queue(&["platform", "verify", "p2"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.task(id)["status"], "success", "{}", env.log(id));
    let log = env.log(id);
    assert!(log.contains("skipped sites/taken.example"), "{log}");
    assert!(log.contains("skipped sites/www.taken.example"), "{log}");
    assert_eq!(
        env.json(&["site", "show", "new.example"])["status"],
        "installed"
    );
    assert_eq!(
        env.json(&["site", "show", "taken.example"])["platform"],
        "p1"
    );
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// A child that a dispatcher runs dies with it when the dispatcher is killed.
#[test]
fn children_die_with_a_killed_dispatcher() {
    let mut env = Env::bare();
    // A reload command that takes long: the dispatcher is killed while it runs.
    let seconds = format!(
        "{}.{:03}",
        500 + std::process::id() % 400,
        std::process::id() % 1000
    );
    env.add_server_on(
        &env.nginx,
        "t",
        &["--reload", &format!("/usr/bin/sleep {seconds}")],
    );
    let needle = format!("sleep {seconds}");
    let pid = env.start_dispatcher(&[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while processes_with(&needle).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the reload never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    crate::harness::signal(pid, "KILL");
    env.wait_dispatcher(pid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !processes_with(&needle).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{needle} outlived its dispatcher: {:?}",
            processes_with(&needle)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `password-env=NAME` is parsed and read by the dispatcher: a verify without the variable
/// fails naming it, and with it set, succeeds.
#[test]
fn a_database_admin_password_from_the_environment() {
    let env = Env::new();
    let var = format!("FJORD_TEST_PG_{}", std::process::id());
    env.add_server_on(
        &env.nginx,
        "pg",
        &["--db", &format!("postgresql:password-env={var}")],
    );
    env.dispatch_until_idle(&[]);
    let failed = env.json(&["task", "list", "--limit", "1"])[0].clone();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains(&var), "{failed}");
    let id = env.queue(&["server", "verify", "pg"]);
    let out = env
        .command(&["dispatch", "--until-idle"])
        .env(&var, "trusted-anyway")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(env.task(id)["status"], "success", "{}", env.log(id));
}

/// A server, a platform and several sites queued at once on a fresh nginx, as a script
/// does: site tasks wait for the server's first verify (the lock rules), so no commit waits
/// for a probe that is not there yet. Twenty rounds, each on a new nginx.
#[test]
fn a_fresh_server_with_everything_queued_at_once_never_trips() {
    for round in 0..20 {
        let env = Env::bare();
        env.add_server_on(&env.nginx, "t", &[]);
        env.ok(&[
            "platform",
            "add",
            "p1",
            "--server",
            "t",
            "--path",
            &env.platform_path("p1"),
        ]);
        let sites: Vec<String> = (0..4).map(|i| format!("s{i}.fresh.example")).collect();
        for site in &sites {
            env.ok(&["site", "add", site, "--platform", "p1"]);
        }
        let started = std::time::Instant::now();
        let out = env
            .command(&["dispatch", "--until-idle", "--concurrency", "4"])
            .output()
            .unwrap();
        assert!(out.status.success(), "round {round}");
        let tasks = env.json(&["task", "list"]);
        let logs = || {
            tasks
                .as_array()
                .unwrap()
                .iter()
                .map(|t| env.log(t["id"].as_i64().unwrap()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        for task in tasks.as_array().unwrap() {
            assert_eq!(task["status"], "success", "round {round}: {}", logs());
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "round {round} took {:?}: a commit waited out a timeout",
            started.elapsed()
        );
        for site in &sites {
            assert_eq!(env.nginx.get(site, "/").0, 200, "round {round}: {site}");
        }
    }
}

/// A rollback whose saved data is gone (the task's scratch dir, with the dump it would
/// reload) stops removing anything: no database made up empty, the backup the task took
/// kept, the site marked as needing attention, and a restore from that backup brings it
/// all back.
#[test]
fn a_rollback_that_lost_its_data_keeps_what_exists_and_says_so() {
    use crate::databases::{Cleanup, env_with_databases, leftovers, site_sql, token};
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let mut env = env_with_databases();
    let site = format!("{t}-lost.example");
    env.ok(&["site", "add", &site, "--platform", "p1", "--db", "mysql"]);
    env.dispatch_until_idle(&[]);
    site_sql(&env, &site, "CREATE TABLE kept (x INTEGER)").unwrap();
    site_sql(&env, &site, "INSERT INTO kept VALUES (42)").unwrap();
    let id = env.queue(&["site", "delete", &site, "--force"]);
    // Find the step that drops the database, and pause there.
    let mut step = 1;
    let pid = loop {
        let pid = env.start_dispatcher(&[&format!("pause-after:site-delete:{step}")]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while env.log(id).matches("fault: paused").count() < step {
            assert!(std::time::Instant::now() < deadline, "{}", env.log(id));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let log = env.log(id);
        let last = log
            .lines()
            .rfind(|l| l.contains("step "))
            .unwrap()
            .to_string();
        if last.contains("drop database") {
            break pid;
        }
        crate::harness::signal(pid, "KILL");
        env.wait_dispatcher(pid);
        // The next dispatcher rolls it back; run it again.
        env.dispatch_until_idle(&[]);
        assert_eq!(env.task(id)["status"], "failed", "{log}");
        env.ok(&["task", "retry", &id.to_string()]);
        step += 1;
        assert!(step < 10, "no step dropped the database: {log}");
    };
    let scratch = env.data.path().join("journal").join(format!("task-{id}"));
    assert!(
        scratch.is_dir(),
        "the drop's undo dump is in {}",
        scratch.display()
    );
    let dump_backup: Vec<_> = std::fs::read_dir(env.data.path().join("backups").join(&site))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    crate::harness::signal(pid, "KILL");
    env.wait_dispatcher(pid);
    std::fs::remove_dir_all(&scratch).unwrap();
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    assert_eq!(task["status"], "failed");
    let error = task["error"].as_str().unwrap();
    assert!(error.contains("needs attention"), "{error}");
    assert_eq!(
        env.json(&["site", "show", &site])["status"],
        "needs-attention"
    );
    assert!(
        leftovers(&t).iter().all(|l| !l.contains("database")),
        "no empty database made up"
    );
    let newest = dump_backup.iter().max().unwrap();
    assert!(newest.is_file(), "the backup the delete took is kept");
    let restore = env.queue(&["site", "restore", &site, "--file", newest.to_str().unwrap()]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.task(restore)["status"],
        "success",
        "{}",
        env.log(restore)
    );
    assert_eq!(site_sql(&env, &site, "SELECT x FROM kept").unwrap(), "42");
    assert_eq!(env.json(&["site", "show", &site])["status"], "installed");
    // Every interrupted and failed task's scratch dir is gone.
    let left: Vec<_> = std::fs::read_dir(env.data.path().join("journal"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "scratch dirs left: {left:?}");
}

/// Backups belong to their site, whatever it was called: after a rename the earlier ones
/// are listed, restored and deleted under the new name.
#[test]
fn backups_follow_their_site_through_a_rename() {
    let env = Env::new();
    site(&env, "old.example");
    std::fs::write(env.docroot("p1", "old.example").join("index.html"), "v1").unwrap();
    done(&env, &["site", "backup", "old.example"]);
    let first = env.json(&["site", "backups", "old.example"])[0]["id"]
        .as_i64()
        .unwrap();
    done(
        &env,
        &["site", "migrate", "old.example", "--rename", "new.example"],
    );
    let listed: Vec<i64> = env
        .json(&["site", "backups", "new.example"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert!(listed.contains(&first), "{listed:?}");
    std::fs::write(env.docroot("p1", "new.example").join("index.html"), "v2").unwrap();
    done(
        &env,
        &[
            "site",
            "restore",
            "new.example",
            "--backup",
            &first.to_string(),
        ],
    );
    assert_eq!(env.nginx.get("new.example", "/").2, "v1");
    done(
        &env,
        &["site", "backup-delete", "new.example", &first.to_string()],
    );
    let listed = env.json(&["site", "backups", "new.example"]);
    assert!(
        listed.as_array().unwrap().iter().all(|b| b["id"] != first),
        "{listed}"
    );
}

/// A `site edit` whose verify fails puts the names back: the state says what nginx serves.
#[test]
fn a_failed_site_edit_puts_the_names_back() {
    let env = Env::new();
    env.ok(&[
        "site",
        "add",
        "edit.example",
        "--platform",
        "p1",
        "--alias",
        "a.edit.example",
    ]);
    env.dispatch_until_idle(&[]);
    let id = env.queue(&[
        "site",
        "edit",
        "edit.example",
        "--add-alias",
        "b.edit.example",
        "--redirect",
        "true",
    ]);
    env.dispatch_until_idle(&["fail-after:site-verify:1"]);
    assert_eq!(env.task(id)["status"], "failed");
    let shown = env.json(&["site", "show", "edit.example"]);
    assert_eq!(
        shown["aliases"],
        serde_json::json!(["a.edit.example"]),
        "{shown}"
    );
    assert_eq!(shown["redirect_aliases"], false, "{shown}");
    assert_eq!(env.nginx.get("a.edit.example", "/").0, 200);
    assert_eq!(env.nginx.get("b.edit.example", "/").0, 404);
    // The name it did not get is free for another site.
    site(&env, "b.edit.example");
}

/// A SQLite database comes back from restore and clone as private as install made it.
#[test]
fn sqlite_databases_stay_private_after_restore_and_clone() {
    let env = Env::new();
    env.add_platform("p2");
    // The server of `Env::new` offers no database: add one that offers SQLite.
    env.add_server_on(&env.nginx, "sq", &["--db", "sqlite"]);
    env.ok(&[
        "platform",
        "add",
        "p3",
        "--server",
        "sq",
        "--path",
        &env.platform_path("p3"),
    ]);
    env.dispatch_until_idle(&[]);
    done(
        &env,
        &[
            "site",
            "add",
            "lite.example",
            "--platform",
            "p3",
            "--db",
            "sqlite",
        ],
    );
    let db = Path::new(&env.platform_path("p3")).join("private/lite.example/database.sqlite");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&db), 0o640);
    done(&env, &["site", "backup", "lite.example"]);
    done(&env, &["site", "restore", "lite.example"]);
    assert_eq!(mode(&db), 0o640, "after restore");
    done(
        &env,
        &[
            "site",
            "clone",
            "lite.example",
            "lite2.example",
            "--platform",
            "p3",
        ],
    );
    let copy = Path::new(&env.platform_path("p3")).join("private/lite2.example/database.sqlite");
    assert_eq!(mode(&copy), 0o640, "after clone");
}

/// A worker that ends without recording its task's outcome: the dispatcher notices, rolls
/// the task back and fails it as it would a crashed dispatcher's, and the queue behind it
/// runs on.
#[test]
fn a_task_whose_worker_is_gone_is_rolled_back_not_left_processing() {
    let env = Env::new();
    let id = env.queue(&["site", "add", "lost.example", "--platform", "p1"]);
    // Without the dispatcher noticing, the task would stay processing and this would wait
    // for ever: a minute is the limit.
    let mut dispatcher = env
        .command(&["dispatch", "--until-idle"])
        .env("FJORD_FAULTS", "abandon:site-install")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while dispatcher.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = dispatcher.kill();
            panic!("the abandoned task was left processing: {}", env.log(id));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let task = env.task(id);
    assert_eq!(task["error"], "interrupted; rolled back", "{}", env.log(id));
    assert!(!env.docroot("p1", "lost.example").exists());
    assert_eq!(env.nginx.get("lost.example", "/").0, 404);
    env.ok(&["task", "retry", &id.to_string()]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.json(&["site", "show", "lost.example"])["status"],
        "installed"
    );
    assert_eq!(env.nginx.get("lost.example", "/").0, 200);
}
