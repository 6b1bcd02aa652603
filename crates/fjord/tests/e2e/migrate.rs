//! Clone, migrate and batch migrate, on real databases, with failure at every step.

use std::time::Duration;

use crate::databases::{Cleanup, env_with_databases, leftovers, site_sql, token};
use crate::harness::{Env, assert_same_state, signal};

fn seeded_site(env: &Env, site: &str, engine: &str) {
    env.ok(&["site", "add", site, "--platform", "p1", "--db", engine]);
    env.dispatch_until_idle(&[]);
    std::fs::write(
        env.docroot("p1", site).join("index.html"),
        format!("{site} content\n"),
    )
    .unwrap();
    site_sql(env, site, "CREATE TABLE kept (x INTEGER)").unwrap();
    site_sql(env, site, "INSERT INTO kept VALUES (42)").unwrap();
}

fn db_name(env: &Env, site: &str) -> String {
    env.json(&["site", "show", site])["database"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn clone_and_migrate_on_every_engine() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let env = env_with_databases();
    env.add_platform("p2");
    for engine in ["mysql", "postgresql", "sqlite"] {
        let site = format!("{t}-{engine}.example");
        let copy = format!("{t}-copy-{engine}.example");
        seeded_site(&env, &site, engine);

        env.ok(&["site", "clone", &site, &copy, "--platform", "p2"]);
        env.dispatch_until_idle(&[]);
        assert_eq!(
            env.json(&["site", "show", &copy])["status"],
            "installed",
            "{}",
            env.log(env.json(&["task", "list"])[0]["id"].as_i64().unwrap())
        );
        assert_eq!(
            env.nginx.get(&copy, "/").2,
            format!("{site} content\n"),
            "{engine}: the copy serves the files"
        );
        assert_eq!(
            env.nginx.get(&site, "/").2,
            format!("{site} content\n"),
            "{engine}: the source still serves"
        );
        assert_eq!(site_sql(&env, &copy, "SELECT x FROM kept").unwrap(), "42");
        site_sql(&env, &copy, "UPDATE kept SET x = 7").unwrap();
        assert_eq!(
            site_sql(&env, &site, "SELECT x FROM kept").unwrap(),
            "42",
            "{engine}: separate databases"
        );
        if engine != "sqlite" {
            assert_ne!(db_name(&env, &site), db_name(&env, &copy));
        }

        let old_db = (engine != "sqlite").then(|| db_name(&env, &site));
        env.ok(&["site", "migrate", &site, "--platform", "p2"]);
        env.dispatch_until_idle(&[]);
        let shown = env.json(&["site", "show", &site]);
        assert_eq!(shown["platform"], "p2", "{engine}: {shown}");
        assert_eq!(
            env.nginx.get(&site, "/").2,
            format!("{site} content\n"),
            "{engine}: served after migrate"
        );
        assert!(env.docroot("p2", &site).exists());
        assert!(
            !env.docroot("p1", &site).exists(),
            "{engine}: the old dir is gone"
        );
        assert!(!env.platforms.path().join("p1/private").join(&site).exists());
        assert_eq!(
            site_sql(&env, &site, "SELECT x FROM kept").unwrap(),
            "42",
            "{engine}: the data came along"
        );
        if let Some(old) = old_db {
            // A database that stays on its server is not copied: the site goes on writing
            // to it through the move.
            assert_eq!(db_name(&env, &site), old, "{engine}");
        }
    }
    // Rename: the new name serves, the old one no longer does.
    let site = format!("{t}-mysql.example");
    let renamed = format!("{t}-renamed.example");
    env.ok(&["site", "migrate", &site, "--rename", &renamed]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.nginx.get(&renamed, "/").2, format!("{site} content\n"));
    assert_eq!(env.nginx.get(&site, "/").0, 404);
    assert_eq!(
        site_sql(&env, &renamed, "SELECT x FROM kept").unwrap(),
        "42"
    );
}

#[test]
fn batch_migrate_twenty_sites() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let mut env = env_with_databases();
    env.add_platform("p2");
    let sites: Vec<String> = (0..20).map(|i| format!("{t}-b{i}.example")).collect();
    for (i, site) in sites.iter().enumerate() {
        let mut args = vec!["site", "add", site.as_str(), "--platform", "p1"];
        if i % 5 == 0 {
            args.extend(["--db", "mysql"]);
        }
        env.ok(&args);
    }
    env.dispatch_until_idle(&[]);
    env.start_dispatcher(&[]);
    let out = env.ok(&["platform", "migrate-all", "p1", "--to", "p2", "--wait"]);
    assert!(out.contains("success"), "{out}");
    let summary = env.json(&["task", "list", "--limit", "1"])[0].clone();
    assert_eq!(summary["kind"], "platform-migrate-all");
    let log = env.log(summary["id"].as_i64().unwrap());
    assert_eq!(log.matches("site-migrate").count(), 20, "{log}");
    assert!(log.contains("all 20 sites migrated"), "{log}");
    for site in &sites {
        assert_eq!(env.json(&["site", "show", site])["platform"], "p2");
        assert_eq!(env.nginx.get(site, "/").0, 200, "{site}");
    }
    assert!(
        env.json(&["site", "list", "--platform", "p1"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// Fails `kind` after each step in turn; the source must serve as before, its row intact,
/// and nothing of the attempt may remain.
fn fail_at_every_step(
    env: &Env,
    t: &str,
    hosts: &[&str],
    kind: &str,
    queue: &dyn Fn() -> i64,
    source: &str,
) -> u32 {
    let mut step = 1;
    loop {
        let before = env.host_state(hosts);
        let leftovers_before = leftovers(t);
        let id = queue();
        env.dispatch_until_idle(&[&format!("fail-after:{kind}:{step}")]);
        if env.task(id)["status"] == "success" {
            return step - 1;
        }
        assert_same_state(
            &before,
            &env.host_state(hosts),
            &format!("{kind} failing after step {step}"),
        );
        assert_eq!(
            site_sql(env, source, "SELECT x FROM kept").unwrap(),
            "42",
            "{kind} step {step}"
        );
        assert_eq!(
            leftovers(t),
            leftovers_before,
            "{kind} step {step}: orphan database or user"
        );
        step += 1;
        assert!(step < 40);
    }
}

#[test]
fn clone_and_migrate_roll_back_at_every_step_and_after_a_kill() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let mut env = env_with_databases();
    env.add_platform("p2");
    let site = format!("{t}-src.example");
    let copy = format!("{t}-copy.example");
    seeded_site(&env, &site, "mysql");
    let hosts = [site.as_str(), copy.as_str()];

    let clone = env.queue(&["site", "clone", &site, &copy, "--platform", "p2"]);
    let first = std::cell::Cell::new(true);
    let steps = fail_at_every_step(
        &env,
        &t,
        &hosts,
        "site-clone",
        &|| {
            if !first.replace(false) {
                env.ok(&["task", "retry", &clone.to_string()]);
            }
            clone
        },
        &site,
    );
    assert!(steps >= 8, "clone has {steps} steps");
    env.ok(&["site", "delete", &copy, "--force"]);
    env.dispatch_until_idle(&[]);

    let steps = fail_at_every_step(
        &env,
        &t,
        &hosts,
        "site-migrate",
        &|| env.queue(&["site", "migrate", &site, "--platform", "p2"]),
        &site,
    );
    assert!(steps >= 10, "migrate has {steps} steps");
    assert_eq!(env.json(&["site", "show", &site])["platform"], "p2");

    // Killed after the vhost switch to p1, before the copy on p2 is removed: the site is back
    // on p2, serving, with its database.
    let before = env.host_state(&hosts);
    let dbs_before = leftovers(&t);
    let pid = env.start_dispatcher(&["pause-after:site-migrate:9"]);
    let id = env.queue(&["site", "migrate", &site, "--platform", "p1"]);
    env.wait_for_log(id, "fault: paused");
    signal(pid, "KILL");
    env.start_dispatcher(&[]);
    assert_eq!(
        env.wait_task(id, Duration::from_secs(60))["error"],
        "interrupted; rolled back"
    );
    env.kill_dispatchers();
    assert_same_state(&before, &env.host_state(&hosts), "migrate killed mid-way");
    assert_eq!(leftovers(&t), dbs_before);
    assert_eq!(site_sql(&env, &site, "SELECT x FROM kept").unwrap(), "42");
    assert_eq!(env.json(&["site", "show", &site])["platform"], "p2");
}
