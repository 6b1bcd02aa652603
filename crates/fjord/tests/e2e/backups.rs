//! Backup and restore on every engine, refusal of bad archives, and failure at every step.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::databases::{Cleanup, env_with_databases, leftovers, site_sql, token};
use crate::harness::{Env, assert_same_state, signal};

fn write_page(env: &Env, site: &str, text: &str) {
    std::fs::write(env.docroot("p1", site).join("index.html"), text).unwrap();
}

fn backup_ids(env: &Env, site: &str) -> Vec<i64> {
    env.json(&["site", "backups", site])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn backup_then_restore_brings_back_files_and_rows_on_every_engine() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let env = env_with_databases();
    // MariaDB restores load the backup into a staging database (a database this small has
    // no tablespaces in its backup: its SQL dump loads faster than they import) and swap
    // tables in one rename; a database with a view can do neither and takes the
    // dump-drop-reload way. A PostgreSQL database is loaded beside the live one and switched
    // by renames.
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "mysql",
            "mysql",
            &["loaded the SQL dump of the backup", "swap the tables of"],
        ),
        (
            "mysql-view",
            "mysql",
            &[
                "not copied (it holds views",
                "replace the content of database",
            ],
        ),
        (
            "postgresql",
            "postgresql",
            &["into staging database", "switch database"],
        ),
        ("sqlite", "sqlite", &[]),
    ];
    for (label, engine, ways) in cases {
        let site = format!("{t}-{label}.example");
        env.ok(&["site", "add", &site, "--platform", "p1", "--db", engine]);
        env.dispatch_until_idle(&[]);
        write_page(&env, &site, "as backed up\n");
        site_sql(&env, &site, "CREATE TABLE kept (x INTEGER)").unwrap();
        site_sql(&env, &site, "INSERT INTO kept VALUES (42)").unwrap();
        if label == "mysql-view" {
            site_sql(&env, &site, "CREATE VIEW kept_view AS SELECT x FROM kept").unwrap();
        }
        env.ok(&["site", "backup", &site]);
        env.dispatch_until_idle(&[]);
        let backups = env.json(&["site", "backups", &site]);
        assert_eq!(backups.as_array().unwrap().len(), 1, "{backups}");
        let path = backups[0]["path"].as_str().unwrap().to_string();
        assert!(
            path.starts_with(&env.data.path().join("backups").display().to_string()),
            "outside every docroot: {path}"
        );
        assert!(path.ends_with(".tar.zst"));

        write_page(&env, &site, "changed since\n");
        site_sql(&env, &site, "UPDATE kept SET x = 43").unwrap();
        site_sql(&env, &site, "CREATE TABLE added_since (y INTEGER)").unwrap();
        let id = env.queue(&["site", "restore", &site]);
        env.dispatch_until_idle(&[]);
        for way in ways {
            assert!(env.log(id).contains(way), "{label}: {way}: {}", env.log(id));
        }
        assert_eq!(env.nginx.get(&site, "/").2, "as backed up\n", "{label}");
        if label == "mysql-view" {
            assert_eq!(
                site_sql(&env, &site, "SELECT x FROM kept_view").unwrap(),
                "42"
            );
        }
        assert_eq!(
            site_sql(&env, &site, "SELECT x FROM kept").unwrap(),
            "42",
            "{label}"
        );
        assert!(
            site_sql(&env, &site, "SELECT y FROM added_since").is_err(),
            "{label}: the restore replaced the database"
        );
        assert_eq!(
            backup_ids(&env, &site).len(),
            2,
            "{label}: the state before the restore was backed up"
        );
    }
    let set_aside: Vec<String> = leftovers(&t)
        .into_iter()
        .filter(|d| d.contains("_fjs") || d.contains("_fjh"))
        .collect();
    assert!(
        set_aside.is_empty(),
        "staging and holding databases are dropped: {set_aside:?}"
    );
}

#[test]
fn corrupt_truncated_and_foreign_archives_are_refused_and_change_nothing() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let env = env_with_databases();
    let site = format!("{t}-mysql.example");
    let other = format!("{t}-other.example");
    env.ok(&["site", "add", &site, "--platform", "p1", "--db", "mysql"]);
    env.ok(&["site", "add", &other, "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    site_sql(&env, &site, "CREATE TABLE kept (x INTEGER)").unwrap();
    site_sql(&env, &site, "INSERT INTO kept VALUES (42)").unwrap();
    env.ok(&["site", "backup", &site]);
    env.ok(&["site", "backup", &other]);
    env.dispatch_until_idle(&[]);
    let good = env.json(&["site", "backups", &site])[0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let foreign = env.json(&["site", "backups", &other])[0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let foreign_id = env.json(&["site", "backups", &other])[0]["id"]
        .as_i64()
        .unwrap();

    let bytes = std::fs::read(&good).unwrap();
    let scratch = crate::harness::world_readable_tempdir();
    let truncated = scratch.path().join("truncated.tar.zst");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let flipped = scratch.path().join("flipped.tar.zst");
    let mut corrupt = bytes.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    std::fs::write(&flipped, &corrupt).unwrap();
    let garbage = scratch.path().join("garbage.tar.zst");
    std::fs::write(&garbage, b"this is not an archive").unwrap();

    site_sql(&env, &site, "UPDATE kept SET x = 43").unwrap();
    let before = env.host_state(&[site.as_str()]);
    for file in [
        truncated.display().to_string(),
        flipped.display().to_string(),
        garbage.display().to_string(),
        foreign.clone(),
    ] {
        let id = env.queue(&["site", "restore", &site, "--file", &file]);
        env.dispatch_until_idle(&[]);
        let task = env.task(id);
        assert_eq!(task["status"], "failed", "{file}");
        let error = task["error"].as_str().unwrap();
        assert!(
            error.contains("corrupt") || error.contains("is a backup of site"),
            "{file}: {error}"
        );
        assert_same_state(
            &before,
            &env.host_state(&[site.as_str()]),
            &format!("restore from {file}"),
        );
        assert_eq!(
            site_sql(&env, &site, "SELECT x FROM kept").unwrap(),
            "43",
            "{file}"
        );
    }
    let err = env.fails(&[
        "site",
        "restore",
        &site,
        "--backup",
        &foreign_id.to_string(),
    ]);
    // Another site's backup answers as a missing one.
    assert!(
        err.contains(&format!("backup {foreign_id} of site {site}")),
        "{err}"
    );
    assert_eq!(
        backup_ids(&env, &site).len(),
        1,
        "no backup was added by a refused restore"
    );
}

/// Fails `kind` after each of its steps in turn; after each failure the site serves its old
/// files, its database holds its old row, and nothing is left behind.
fn fail_at_every_step(env: &Env, t: &str, site: &str, kind: &str, queue: &dyn Fn() -> i64) -> u32 {
    let mut step = 1;
    loop {
        let before = env.host_state(&[site]);
        let backups_before = backup_ids(env, site);
        let leftovers_before = leftovers(t);
        let id = queue();
        env.dispatch_until_idle(&[&format!("fail-after:{kind}:{step}")]);
        if env.task(id)["status"] == "success" {
            return step - 1;
        }
        assert_same_state(
            &before,
            &env.host_state(&[site]),
            &format!("{kind} failing after step {step}"),
        );
        assert_eq!(
            site_sql(env, site, "SELECT x FROM kept").unwrap(),
            "43",
            "{kind} step {step}"
        );
        assert_eq!(backup_ids(env, site), backups_before, "{kind} step {step}");
        assert_eq!(
            leftovers(t),
            leftovers_before,
            "{kind} step {step}: no orphan database or user"
        );
        let backup_dir = env.data.path().join("backups").join(site);
        let files = std::fs::read_dir(&backup_dir)
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(
            files,
            backups_before.len(),
            "{kind} step {step}: no stray archive"
        );
        step += 1;
        assert!(step < 30);
    }
}

#[test]
fn backup_and_restore_roll_back_at_every_step_and_after_a_kill() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let mut env = env_with_databases();
    let site = format!("{t}-pg.example");
    env.ok(&[
        "site",
        "add",
        &site,
        "--platform",
        "p1",
        "--db",
        "postgresql",
    ]);
    env.dispatch_until_idle(&[]);
    write_page(&env, &site, "v1\n");
    site_sql(&env, &site, "CREATE TABLE kept (x INTEGER)").unwrap();
    site_sql(&env, &site, "INSERT INTO kept VALUES (42)").unwrap();
    env.ok(&["site", "backup", &site]);
    env.dispatch_until_idle(&[]);
    write_page(&env, &site, "v2\n");
    site_sql(&env, &site, "UPDATE kept SET x = 43").unwrap();

    let steps = fail_at_every_step(&env, &t, &site, "site-backup", &|| {
        env.queue(&["site", "backup", &site])
    });
    assert_eq!(steps, 1, "a backup is one step");
    // Undo the successful backup's extra entry for the restore runs: restore from the first.
    let first = *backup_ids(&env, &site).last().unwrap();
    let steps = fail_at_every_step(&env, &t, &site, "site-restore", &|| {
        env.queue(&["site", "restore", &site, "--backup", &first.to_string()])
    });
    assert!(steps >= 6, "restore has {steps} steps");
    assert_eq!(env.nginx.get(&site, "/").2, "v1\n");
    assert_eq!(site_sql(&env, &site, "SELECT x FROM kept").unwrap(), "42");

    // The same on MariaDB, whose restore stages the dump and swaps the tables.
    let my = format!("{t}-my.example");
    env.ok(&["site", "add", &my, "--platform", "p1", "--db", "mysql"]);
    env.dispatch_until_idle(&[]);
    write_page(&env, &my, "v1\n");
    site_sql(&env, &my, "CREATE TABLE kept (x INTEGER)").unwrap();
    site_sql(&env, &my, "INSERT INTO kept VALUES (42)").unwrap();
    env.ok(&["site", "backup", &my]);
    env.dispatch_until_idle(&[]);
    write_page(&env, &my, "v2\n");
    site_sql(&env, &my, "UPDATE kept SET x = 43").unwrap();
    let my_first = backup_ids(&env, &my)[0];
    let my_steps = fail_at_every_step(&env, &t, &my, "site-restore", &|| {
        env.queue(&["site", "restore", &my, "--backup", &my_first.to_string()])
    });
    assert!(my_steps >= 7, "MariaDB restore has {my_steps} steps");
    assert_eq!(env.nginx.get(&my, "/").2, "v1\n");
    assert_eq!(site_sql(&env, &my, "SELECT x FROM kept").unwrap(), "42");

    // Killed in the middle of a restore, after the files were swapped and before the database
    // was: the next dispatcher puts both back.
    write_page(&env, &site, "v3\n");
    site_sql(&env, &site, "UPDATE kept SET x = 44").unwrap();
    let before = env.host_state(&[site.as_str()]);
    // Steps: read-only vhost, writes frozen, private dir, extract, backup, the staged
    // trees' owners (two), the files swapped (8), the private dir (9), then the database.
    let pid = env.start_dispatcher(&["pause-after:site-restore:9"]);
    let id = env.queue(&["site", "restore", &site, "--backup", &first.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !env.log(id).contains("fault: paused") {
        assert!(Instant::now() < deadline, "{}", env.log(id));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        env.nginx.get(&site, "/").2,
        "v1\n",
        "the files were swapped when it died"
    );
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    env.start_dispatcher(&[]);
    let task = env.wait_task(id, Duration::from_secs(60));
    assert_eq!(task["error"], "interrupted; rolled back");
    env.kill_dispatchers();
    assert_same_state(
        &before,
        &env.host_state(&[site.as_str()]),
        "restore killed mid-way",
    );
    assert_eq!(site_sql(&env, &site, "SELECT x FROM kept").unwrap(), "44");
}

#[test]
fn retention_deletion_and_a_scheduled_backup() {
    let mut env = Env::new();
    let site = "kept.example";
    env.ok(&["site", "add", site, "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let out = env.ok(&["site", "backup-policy", site, "--retention", "last=2"]);
    assert!(out.contains("retention: last=2"), "{out}");
    for _ in 0..4 {
        env.ok(&["site", "backup", site]);
        env.dispatch_until_idle(&[]);
    }
    let backups = env.json(&["site", "backups", site]);
    assert_eq!(
        backups.as_array().unwrap().len(),
        2,
        "retention keeps the last 2: {backups}"
    );
    let dir = env.data.path().join("backups").join(site);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "pruned files are gone from disk"
    );

    let oldest = backups[1]["id"].as_i64().unwrap();
    let oldest_path = backups[1]["path"].as_str().unwrap().to_string();
    env.ok(&["site", "backup-delete", site, &oldest.to_string()]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.json(&["site", "backups", site])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(!std::path::Path::new(&oldest_path).exists());
    let err = env.fails(&["site", "backup-policy", site, "--schedule", "every day"]);
    assert!(err.contains("5 fields"), "{err}");

    // A schedule that fires every minute: a running dispatcher queues the backup itself.
    env.ok(&["site", "backup-policy", site, "--schedule", "* * * * *"]);
    env.start_dispatcher(&[]);
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let tasks = env.json(&["task", "list", "--limit", "20"]);
        let scheduled = tasks
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == "site-backup" && t["args"]["scheduled"] == true);
        if let Some(t) = scheduled {
            assert_eq!(
                env.wait_task(t["id"].as_i64().unwrap(), Duration::from_secs(60))["status"],
                "success"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled backup was queued");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        env.json(&["site", "backups", site])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn what_a_killed_dispatcher_did_not_purge_the_next_one_purges() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let mut env = env_with_databases();
    let site = format!("{t}-purge.example");
    env.ok(&["site", "add", &site, "--platform", "p1", "--db", "mysql"]);
    env.dispatch_until_idle(&[]);
    site_sql(&env, &site, "CREATE TABLE kept (x INTEGER)").unwrap();
    site_sql(&env, &site, "INSERT INTO kept VALUES (42)").unwrap();
    env.ok(&["site", "backup", &site]);
    env.dispatch_until_idle(&[]);

    let pid = env.start_dispatcher(&["pause-before-purge:site-restore"]);
    let id = env.queue(&["site", "restore", &site]);
    env.wait_for_log(id, "fault: paused before the purge");
    signal(pid, "KILL");
    env.kill_dispatchers();
    let platform = env
        .docroot("p1", &site)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let set_aside = || {
        let databases = leftovers(&t)
            .into_iter()
            .filter(|d| d.contains("_fjh") || d.contains("_fjs"))
            .count();
        let dirs: usize = ["sites", "private"]
            .iter()
            .map(|d| {
                std::fs::read_dir(platform.join(d))
                    .unwrap()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(".fjord-trash"))
                    .count()
            })
            .sum();
        (databases, dirs)
    };
    assert_eq!(env.task(id)["status"], "success");
    let (databases, dirs) = set_aside();
    assert!(databases >= 1 && dirs >= 1, "{databases} {dirs}");

    env.dispatch_until_idle(&[]);
    assert_eq!(set_aside(), (0, 0), "{}", env.log(id));
    assert!(env.log(id).contains("purging it"), "{}", env.log(id));
    assert_eq!(site_sql(&env, &site, "SELECT x FROM kept").unwrap(), "42");
}
