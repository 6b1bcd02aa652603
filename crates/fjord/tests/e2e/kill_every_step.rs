//! SIGKILL of the dispatcher after every step of backup, restore, clone, migrate and delete:
//! the next dispatcher rolls the task back, and each site serves its old state with its
//! database intact, with no orphan database, user, directory or vhost.

use std::time::{Duration, Instant};

use crate::databases::{Cleanup, env_with_databases, leftovers, site_sql, token};
use crate::harness::{Env, assert_same_state, signal};

/// Kills the dispatcher while `kind` is paused after step 1, 2, … until a run finishes
/// without pausing; returns the number of steps.
fn kill_at_every_step(
    env: &mut Env,
    t: &str,
    hosts: &[&str],
    kind: &str,
    queue: &dyn Fn(&Env) -> i64,
    row_of: &str,
) -> u32 {
    let mut step = 1;
    let mut pauses_seen = std::collections::HashMap::new();
    loop {
        let before = env.host_state(hosts);
        let databases_before = leftovers(t);
        let pid = env.start_dispatcher(&[&format!("pause-after:{kind}:{step}")]);
        let id = queue(env);
        // A retried task keeps its log: look for a pause beyond those it already had.
        let paused_before = *pauses_seen.entry(id).or_insert(0);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if env.log(id).matches("fault: paused").count() > paused_before {
                break;
            }
            if env.task(id)["status"] == "success" {
                // Killed before it purged what the task set aside, maybe: the next
                // dispatcher purges it.
                env.kill_dispatchers();
                env.dispatch_until_idle(&[]);
                return step - 1;
            }
            assert!(
                Instant::now() < deadline,
                "{kind} step {step}: {}",
                env.log(id)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        signal(pid, "KILL");
        *pauses_seen.get_mut(&id).unwrap() += 1;
        env.start_dispatcher(&[]);
        let task = env.wait_task(id, Duration::from_secs(60));
        assert_eq!(
            task["error"], "interrupted; rolled back",
            "{kind} step {step}"
        );
        env.kill_dispatchers();
        assert_same_state(
            &before,
            &env.host_state(hosts),
            &format!("{kind} killed after step {step}"),
        );
        assert_eq!(
            leftovers(t),
            databases_before,
            "{kind} killed after step {step}: orphans"
        );
        assert_eq!(
            site_sql(env, row_of, "SELECT x FROM kept").unwrap(),
            "42",
            "{kind} killed after step {step}"
        );
        step += 1;
        assert!(step < 40, "{kind} never ran out of steps");
    }
}

#[test]
fn sigkill_after_every_step_of_the_data_tasks() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let mut env = env_with_databases();
    env.ok(&[
        "platform",
        "add",
        "p2",
        "--server",
        "t",
        "--path",
        &env.platform_path("p2"),
    ]);
    let site = format!("{t}-k.example");
    let copy = format!("{t}-kcopy.example");
    env.ok(&["site", "add", &site, "--platform", "p1", "--db", "mysql"]);
    env.dispatch_until_idle(&[]);
    std::fs::write(env.docroot("p1", &site).join("index.html"), "kept\n").unwrap();
    site_sql(&env, &site, "CREATE TABLE kept (x INTEGER)").unwrap();
    site_sql(&env, &site, "INSERT INTO kept VALUES (42)").unwrap();
    env.ok(&["site", "backup", &site]);
    env.dispatch_until_idle(&[]);
    let first_backup = env.json(&["site", "backups", &site])[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let hosts = [site.as_str(), copy.as_str()];

    let backup = kill_at_every_step(
        &mut env,
        &t,
        &hosts,
        "site-backup",
        &|e| e.queue(&["site", "backup", &site]),
        &site,
    );
    let restore = kill_at_every_step(
        &mut env,
        &t,
        &hosts,
        "site-restore",
        &|e| e.queue(&["site", "restore", &site, "--backup", &first_backup]),
        &site,
    );
    let clone_id = std::cell::Cell::new(None::<i64>);
    let clone = kill_at_every_step(
        &mut env,
        &t,
        &hosts,
        "site-clone",
        &|e| match clone_id.get() {
            None => {
                let id = e.queue(&["site", "clone", &site, &copy, "--platform", "p2"]);
                clone_id.set(Some(id));
                id
            }
            Some(id) => {
                e.ok(&["task", "retry", &id.to_string()]);
                id
            }
        },
        &site,
    );
    let migrate = kill_at_every_step(
        &mut env,
        &t,
        &hosts,
        "site-migrate",
        &|e| e.queue(&["site", "migrate", &site, "--platform", "p2"]),
        &site,
    );
    eprintln!(
        "SIGKILL after every step: backup {backup}, restore {restore}, clone {clone}, migrate {migrate} steps"
    );
    assert!(backup >= 1 && restore >= 6 && clone >= 8 && migrate >= 10);

    // Delete: of the clone (a site with its own database), disabled first.
    env.ok(&["site", "disable", &copy]);
    env.dispatch_until_idle(&[]);
    let delete = kill_at_every_step(
        &mut env,
        &t,
        &hosts,
        "site-delete",
        &|e| e.queue(&["site", "delete", &copy]),
        &copy,
    );
    assert!(delete >= 5, "delete has {delete} steps");
    assert_eq!(site_sql(&env, &site, "SELECT x FROM kept").unwrap(), "42");
}
