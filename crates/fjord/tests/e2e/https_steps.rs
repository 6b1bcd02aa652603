//! A site's first certificate, and changes of how a site with one is served, each failing
//! (an error) and then killed (SIGKILL) after every one of their steps, against Debian's
//! pebble on loopback: every time, the site answers over HTTP and HTTPS exactly as it did
//! before the task, and its vhost and TLS files are as they were. (A re-issue over a served
//! certificate is `acme::a_certificate_task_failing_or_killed_after_any_step…`.)

use std::collections::BTreeMap;
use std::time::Duration;

use crate::acme::{listen_https, register_account};
use crate::harness::{Env, assert_same_state, signal, walk};
use crate::pebble::Pebble;

/// What a site answers over HTTPS: status and protocol, or curl's exit code when there is no
/// answer (no certificate for it yet).
fn https_answer(pebble: &Pebble, host: &str, port: u16) -> String {
    let out = crate::acme::curl_status(pebble, host, port, "/");
    match out.status.code() {
        Some(0) => String::from_utf8_lossy(&out.stdout).into_owned(),
        code => format!("no answer (curl {code:?})"),
    }
}

/// The site's files, vhosts, TLS files and answers over HTTP and HTTPS.
fn served(env: &Env, pebble: &Pebble, name: &str, port: u16) -> BTreeMap<String, String> {
    let mut state = env.host_state(&[name]);
    walk(&env.data.path().join("tls"), &mut state);
    state.insert("HTTPS".into(), https_answer(pebble, name, port));
    state
}

/// Adds a site that requires HTTPS and whose first order failed: served over HTTP only.
fn add_site_without_certificate(env: &Env, name: &str) {
    env.ok(&[
        "site",
        "add",
        name,
        "--platform",
        "p1",
        "--https",
        "required",
    ]);
    env.dispatch_until_idle(&["fail-after:site-https:1"]);
    assert!(
        env.json(&["site", "show", name])["certificate"].is_null(),
        "{name} has a certificate"
    );
}

/// Runs `args` (a task) failing after step 1, 2, … until it succeeds, checking after each
/// failure that `name` is served as before; returns the number of steps.
fn fail_after_each_step(
    env: &Env,
    pebble: &Pebble,
    port: u16,
    name: &str,
    args: &[&str],
    kind: &str,
) -> usize {
    let mut step = 1;
    loop {
        let before = served(env, pebble, name, port);
        let id = env.queue(args);
        env.dispatch_until_idle(&[&format!("fail-after:{kind}:{step}")]);
        let task = env.task(id);
        if task["status"] == "success" {
            return step - 1;
        }
        assert_eq!(task["status"], "failed", "{kind} step {step}: {task}");
        assert_same_state(
            &before,
            &served(env, pebble, name, port),
            &format!("{args:?} failing after step {step}"),
        );
        step += 1;
        assert!(step < 30, "{kind} never succeeded");
    }
}

/// Queues `args` under a dispatcher paused after `step`, kills it, and checks that the next
/// dispatcher rolls the task back to what `name` served before.
fn kill_after(env: &mut Env, pebble: &Pebble, port: u16, name: &str, args: &[&str], pause: &str) {
    let before = served(env, pebble, name, port);
    let pid = env.start_dispatcher(&[pause]);
    let id = env.queue(args);
    env.wait_for_log(id, "fault: paused");
    signal(pid, "KILL");
    env.start_dispatcher(&[]);
    let task = env.wait_task(id, Duration::from_secs(60));
    assert_eq!(task["error"], "interrupted; rolled back", "{pause}: {task}");
    env.kill_dispatchers();
    assert_same_state(
        &before,
        &served(env, pebble, name, port),
        &format!("{args:?} killed at {pause}"),
    );
}

#[test]
fn a_first_certificate_failing_or_killed_after_any_step_leaves_the_site_on_http() {
    let mut env = Env::new();
    let port = listen_https(&env);
    let pebble = Pebble::start(env.nginx.port);
    let account = register_account(&env, &pebble, "ops@first.example");
    assert_eq!(account["status"], "success", "{account}");

    let name = "first.example";
    add_site_without_certificate(&env, name);
    assert_eq!(env.nginx.get(name, "/").0, 200);
    let steps = fail_after_each_step(
        &env,
        &pebble,
        port,
        name,
        &["site", "https", name],
        "site-https",
    );
    assert!(steps >= 5, "site-https has {steps} steps");
    assert!(https_answer(&pebble, name, port).starts_with("200 2"));
    assert_eq!(env.nginx.get(name, "/").0, 301);

    // Killed after each step, each time on a site that has never had a certificate.
    for step in 1..=steps {
        let name = format!("first-{step}.example");
        add_site_without_certificate(&env, &name);
        kill_after(
            &mut env,
            &pebble,
            port,
            &name,
            &["site", "https", &name],
            &format!("pause-after:site-https:{step}"),
        );
        assert_eq!(env.nginx.get(&name, "/").0, 200, "{name}");
    }
}

#[test]
fn changing_how_a_site_is_served_failing_or_killed_after_any_step_changes_nothing_it_serves() {
    let mut env = Env::new();
    let port = listen_https(&env);
    let pebble = Pebble::start(env.nginx.port);
    let account = register_account(&env, &pebble, "ops@modes.example");
    assert_eq!(account["status"], "success", "{account}");
    let name = "modes.example";
    crate::acme::add_required_site(&env, name);
    assert_eq!(env.nginx.get(name, "/").0, 301);

    // required → on (HTTP answers 200 again), HSTS on, HTTPS off: each change is applied by
    // one task, which fails after each of its steps before it is let through.
    let changes: [&[&str]; 3] = [
        &["site", "edit", name, "--https", "on"],
        &["site", "edit", name, "--hsts"],
        &["site", "edit", name, "--https", "off"],
    ];
    for change in changes {
        let kind = queued_kind(&env, change);
        let steps = fail_after_each_step(&env, &pebble, port, name, change, &kind);
        assert!(steps >= 1, "{change:?}: {kind} has no step");
        for step in 1..=steps {
            kill_after(
                &mut env,
                &pebble,
                port,
                name,
                change,
                &format!("pause-after:{kind}:{step}"),
            );
        }
    }
    // The last change let through turned HTTPS off: plain HTTP, no redirect.
    assert_eq!(env.nginx.get(name, "/").0, 200);
    assert!(https_answer(&pebble, name, port).starts_with("no answer"));
}

/// The kind of the task `args` queues (queued once, run, to learn it).
fn queued_kind(env: &Env, args: &[&str]) -> String {
    let id = env.queue(args);
    env.dispatch_until_idle(&["fail-after:site-verify:1", "fail-after:site-https:1"]);
    env.task(id)["kind"].as_str().unwrap().to_string()
}
