//! The promise: a task that fails at any step leaves the host exactly as it was.

use std::cell::Cell;
use std::time::Duration;

use crate::harness::{Env, assert_same_state};

const HOSTS: &[&str] = &[
    "victim.example",
    "www.victim.example",
    "new.victim.example",
    "bystander.example",
];

/// Fails `kind` after each of its steps in turn (1, 2, …) until it runs out of steps and
/// succeeds; after every failure the host must be exactly as before the task.
fn fail_at_every_step(env: &Env, kind: &str, queue: &dyn Fn() -> i64) -> u32 {
    let mut step = 1;
    loop {
        let before = env.host_state(HOSTS);
        let id = queue();
        env.dispatch_until_idle(&[&format!("fail-after:{kind}:{step}")]);
        let task = env.task(id);
        if task["status"] == "success" {
            return step - 1;
        }
        assert_eq!(task["status"], "failed", "{kind} step {step}: {task}");
        let log = env.log(id);
        assert!(
            log.contains("rollback complete") || log.contains("nothing to roll back"),
            "{kind} step {step}: {log}"
        );
        assert_same_state(
            &before,
            &env.host_state(HOSTS),
            &format!("{kind} failing after step {step}"),
        );
        step += 1;
        assert!(step < 50, "{kind} never succeeded");
    }
}

#[test]
fn every_step_of_every_site_task_rolls_back() {
    let env = Env::new();
    env.ok(&["site", "add", "bystander.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);

    // install: each failure leaves the site "failed"; the same task is retried.
    let install = env.queue(&[
        "site",
        "add",
        "victim.example",
        "--platform",
        "p1",
        "--alias",
        "www.victim.example",
    ]);
    let first = Cell::new(true);
    let steps = fail_at_every_step(&env, "site-install", &|| {
        if !first.replace(false) {
            env.ok(&["task", "retry", &install.to_string()]);
        }
        install
    });
    assert!(steps >= 4, "install has {steps} steps");

    // verify, with drift to repair: a file with the wrong mode, and a new alias.
    let docroot = env.docroot("p1", "victim.example");
    std::fs::write(docroot.join("page.html"), "page").unwrap();
    std::fs::set_permissions(
        docroot.join("page.html"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let edited = Cell::new(false);
    let steps = fail_at_every_step(&env, "site-verify", &|| {
        if !edited.replace(true) {
            env.queue(&[
                "site",
                "edit",
                "victim.example",
                "--add-alias",
                "new.victim.example",
            ])
        } else {
            env.queue(&["site", "verify", "victim.example"])
        }
    });
    assert!(steps >= 3, "verify has {steps} steps");

    let steps = fail_at_every_step(&env, "site-disable", &|| {
        env.queue(&["site", "disable", "victim.example"])
    });
    assert!(steps >= 1);
    let steps = fail_at_every_step(&env, "site-enable", &|| {
        env.queue(&["site", "enable", "victim.example"])
    });
    assert!(steps >= 1);
    env.ok(&["site", "disable", "victim.example"]);
    env.dispatch_until_idle(&[]);
    let steps = fail_at_every_step(&env, "site-delete", &|| {
        env.queue(&["site", "delete", "victim.example"])
    });
    assert!(steps >= 2, "delete has {steps} steps");
    assert!(!env.docroot("p1", "victim.example").exists());
    assert_eq!(env.nginx.get("bystander.example", "/").0, 200);
}

#[test]
fn a_vhost_nginx_rejects_is_never_loaded_and_other_sites_keep_serving() {
    let mut env = Env::new();
    env.ok(&["site", "add", "good.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let before = env.host_state(&["good.example", "bad.example"]);
    let reloads_before = env.nginx.reloads();

    env.start_dispatcher(&["corrupt-vhost:bad.example"]);
    let id = env.queue(&["site", "add", "bad.example", "--platform", "p1"]);
    // A good site queued at the same time is committed in the same batch and must survive
    // its neighbour's rejection.
    let good2 = env.queue(&["site", "add", "good2.example", "--platform", "p1"]);
    let task = env.wait_task(id, Duration::from_secs(60));
    assert_eq!(task["status"], "failed");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("fjord_injected_fault_not_a_directive"),
        "nginx's own message is shown: {error}"
    );
    assert_eq!(
        env.wait_task(good2, Duration::from_secs(60))["status"],
        "success"
    );

    assert_eq!(env.nginx.get("good.example", "/").0, 200);
    assert_eq!(env.nginx.get("good2.example", "/").0, 200);
    assert_eq!(env.nginx.get("bad.example", "/").0, 404);
    let nginx_log = std::fs::read_to_string(env.nginx.prefix().join("logs/error.log")).unwrap();
    assert!(
        !nginx_log.contains("fjord_injected_fault"),
        "the bad vhost reached a reload:\n{nginx_log}"
    );
    assert!(env.nginx.reloads() > reloads_before, "good2 was reloaded");
    env.kill_dispatchers();
    let mut after = env.host_state(&["good.example", "bad.example"]);
    // good2.example is a new, successful site: leave its own files out of the comparison.
    after.retain(|k, _| !k.contains("good2.example"));
    assert_same_state(&before, &after, "rejected vhost");
}
