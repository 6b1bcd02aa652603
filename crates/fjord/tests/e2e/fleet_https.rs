//! A fleet switched to HTTPS (`fjord https issue`, one `https-issue` task for a server): every
//! site that wants a certificate gets one in a single nginx reload; a site whose order fails
//! is named and keeps serving as before while the others are served (the task ends `warning`);
//! an error or a kill after any step leaves every site serving what it served before; readers
//! of other sites see no failed answer while certificates are issued and renewed.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use crate::acme::{https_reader, listen_https, register_account, run_task};
use crate::harness::{Env, assert_same_state};
use crate::pebble::Pebble;
use crate::readers::{BodyCheckingReaders, Connections, Target, Whole};

/// Adds a site on `p1` and runs its tasks. With an account, its certificate task (queued by
/// its install) fails after its order: the site is left without a certificate, as sites
/// added before the account are.
fn add_uncertified_site(env: &Env, name: &str) {
    env.ok(&["site", "add", name, "--platform", "p1"]);
    env.dispatch_until_idle(&["fail-after:site-https:1"]);
    assert!(
        env.json(&["site", "show", name])["certificate"].is_null(),
        "{name} has a certificate"
    );
}

/// What `curl` gets from `host` over HTTPS, trusting pebble's root: a status, or its exit
/// code (a name nginx has no certificate for).
fn https_answer(pebble: &Pebble, host: &str, port: u16) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-o", "/dev/null", "--cacert"])
        .arg(pebble.issuing_root())
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(["-w", "%{http_code}"])
        .arg(format!("https://{host}:{port}/"))
        .output()
        .unwrap();
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        format!("curl exit {:?}", out.status.code())
    }
}

/// What a batch may change for `names`: their files and vhosts, their certificate files, each
/// one's certificate in the state and what it answers.
fn served_state(env: &Env, pebble: &Pebble, names: &[&str], port: u16) -> BTreeMap<String, String> {
    let mut state = env.host_state(names);
    // The vhosts of `names`, not the other sites'.
    state.retain(|path, _| {
        !path.contains("/vhost.d/") || names.iter().any(|n| path.ends_with(&format!("/{n}.conf")))
    });
    // fjord's certificate files, but those of the other sites' certificates.
    let others: Vec<String> = env
        .json(&["site", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .filter(|s| !names.contains(&s.as_str()))
        .filter_map(|s| {
            let chain = env.json(&["site", "show", &s])["certificate"]["chain_file"].clone();
            let chain = std::path::PathBuf::from(chain.as_str()?);
            Some(chain.parent()?.parent()?.display().to_string())
        })
        .collect();
    let mut files = BTreeMap::new();
    crate::harness::walk(&env.data.path().join("tls"), &mut files);
    state.extend(files.into_iter().filter(|(path, _)| {
        !others
            .iter()
            .any(|dir| path == dir || path.starts_with(&format!("{dir}/")))
    }));
    for name in names {
        let certificate = env.json(&["site", "show", name])["certificate"].clone();
        // A site without a certificate has no HTTPS server block of its own: what the HTTPS
        // port answers for its name depends on the other sites', so its HTTP answer is kept.
        let answer = if certificate.is_null() {
            format!("HTTP {}", env.nginx.get(name, "/").0)
        } else {
            format!("HTTPS {}", https_answer(pebble, name, port))
        };
        state.insert(format!("{name} certificate"), certificate.to_string());
        state.insert(format!("{name} answer"), answer);
    }
    state
}

fn issue(env: &Env) -> serde_json::Value {
    run_task(env, &["https", "issue", "--server", "t"])
}

#[test]
fn a_fleet_gets_its_certificates_in_one_reload_and_a_failed_order_fails_no_other_site() {
    let env = Env::new();
    let https_port = listen_https(&env);
    let pebble = Pebble::start(env.nginx.port);
    // Without an account there is nothing to order with.
    let refused = env.fails(&["https", "issue", "--server", "t"]);
    assert!(refused.contains("https account"), "{refused}");
    let names = ["a.fleet.example", "b.fleet.example", "c.fleet.example"];
    for name in names {
        env.ok(&["site", "add", name, "--platform", "p1"]);
    }
    env.ok(&[
        "site",
        "add",
        "off.fleet.example",
        "--platform",
        "p1",
        "--https",
        "off",
    ]);
    env.dispatch_until_idle(&[]);
    let account = register_account(&env, &pebble, "ops@fleet.example");
    assert_eq!(account["status"], "success", "{account}");

    // c's name points elsewhere: its order fails, a and b are served.
    pebble.answer_wrongly("c.fleet.example", "127.0.0.2");
    let c_before = served_state(&env, &pebble, &["c.fleet.example"], https_port);
    let reloads = env.nginx.reloads();
    let task = issue(&env);
    assert_eq!(task["status"], "warning", "{task}");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("1 of 3 orders failed") && error.contains("c.fleet.example"),
        "{error}"
    );
    assert_eq!(env.nginx.reloads() - reloads, 1, "one reload for the batch");
    for name in &names[..2] {
        assert_eq!(https_answer(&pebble, name, https_port), "200", "{name}");
        let shown = env.json(&["site", "show", name]);
        assert_eq!(shown["certificate"]["names"], serde_json::json!([name]));
    }
    assert_same_state(
        &c_before,
        &served_state(&env, &pebble, &["c.fleet.example"], https_port),
        "the site whose order failed",
    );
    let log = env.log(task["id"].as_i64().unwrap());
    assert!(
        log.contains("site c.fleet.example: no certificate") && log.contains("3 of the 4 sites"),
        "{log}"
    );
    assert!(
        env.json(&["site", "show", "off.fleet.example"])["certificate"].is_null(),
        "a site with HTTPS off is not ordered for"
    );

    // Once its name is right, the next batch orders for c alone; then there is nothing to do.
    pebble.answer_rightly("c.fleet.example");
    let task = issue(&env);
    assert_eq!(task["status"], "success", "{task}");
    assert!(
        env.log(task["id"].as_i64().unwrap())
            .contains("1 of the 4 sites")
    );
    assert_eq!(https_answer(&pebble, "c.fleet.example", https_port), "200");
    let reloads = env.nginx.reloads();
    let task = issue(&env);
    assert_eq!(task["status"], "success", "{task}");
    assert!(
        env.log(task["id"].as_i64().unwrap())
            .contains("0 of the 4 sites")
    );
    assert_eq!(
        env.nginx.reloads(),
        reloads,
        "nothing ordered, nothing reloaded"
    );

    // Every order refused: the task fails and changes nothing.
    add_uncertified_site(&env, "d.fleet.example");
    pebble.answer_wrongly("d.fleet.example", "127.0.0.2");
    let before = served_state(&env, &pebble, &["d.fleet.example"], https_port);
    let task = issue(&env);
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("no certificate was issued"),
        "{task}"
    );
    assert_same_state(
        &before,
        &served_state(&env, &pebble, &["d.fleet.example"], https_port),
        "a batch whose every order failed",
    );
}

#[test]
fn a_fleet_task_failing_or_killed_after_any_step_leaves_every_site_serving_as_before() {
    let mut env = Env::new();
    let https_port = listen_https(&env);
    let pebble = Pebble::start(env.nginx.port);
    let account = register_account(&env, &pebble, "ops@steps.example");
    assert_eq!(account["status"], "success", "{account}");
    // One site already served over HTTPS, two without a certificate.
    let served = "served.steps.example";
    env.ok(&["site", "add", served, "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let names = [served, "one.steps.example", "two.steps.example"];
    for name in &names[1..] {
        add_uncertified_site(&env, name);
    }

    // The batch fails after each of its steps in turn.
    let mut step = 1;
    loop {
        let before = served_state(&env, &pebble, &names, https_port);
        let id = env.queue(&["https", "issue", "--server", "t"]);
        env.dispatch_until_idle(&[&format!("fail-after:https-issue:{step}")]);
        let task = env.task(id);
        if task["status"] == "success" {
            break;
        }
        assert_eq!(task["status"], "failed", "step {step}: {task}");
        assert_same_state(
            &before,
            &served_state(&env, &pebble, &names, https_port),
            &format!("https-issue failing after step {step}"),
        );
        step += 1;
        assert!(step < 40, "https-issue never succeeded");
    }
    let steps = step - 1;
    // The orders, two dirs and two files a site, one nginx commit.
    assert_eq!(steps, 10, "https-issue of two sites has {steps} steps");
    for name in names {
        assert_eq!(https_answer(&pebble, name, https_port), "200", "{name}");
    }

    // Two more sites without a certificate, and a dispatcher killed after each step.
    let names = [served, "three.steps.example", "four.steps.example"];
    for name in &names[1..] {
        add_uncertified_site(&env, name);
    }
    for step in 1..=steps {
        let before = served_state(&env, &pebble, &names, https_port);
        let pid = env.start_dispatcher(&[&format!("pause-after:https-issue:{step}")]);
        let id = env.queue(&["https", "issue", "--server", "t"]);
        env.wait_for_log(id, "fault: paused");
        crate::harness::signal(pid, "KILL");
        env.start_dispatcher(&[]);
        let task = env.wait_task(id, Duration::from_secs(60));
        assert_eq!(
            task["error"], "interrupted; rolled back",
            "https-issue killed after step {step}: {task}"
        );
        env.kill_dispatchers();
        assert_same_state(
            &before,
            &served_state(&env, &pebble, &names, https_port),
            &format!("https-issue killed after step {step}"),
        );
    }
    let task = issue(&env);
    assert_eq!(task["status"], "success", "{task}");
    for name in names {
        assert_eq!(https_answer(&pebble, name, https_port), "200", "{name}");
    }
}

#[test]
fn readers_of_other_sites_see_no_failed_answer_while_a_fleet_is_issued_and_renewed() {
    let env = Env::new();
    let https_port = listen_https(&env);
    let pebble = Pebble::start(env.nginx.port);
    let readers_of = ["a.read.example", "b.read.example"];
    let issued = ["c.read.example", "d.read.example"];
    for name in readers_of.iter().chain(&issued) {
        env.ok(&["site", "add", name, "--platform", "p1"]);
    }
    env.dispatch_until_idle(&[]);
    let account = register_account(&env, &pebble, "ops@read.example");
    assert_eq!(account["status"], "success", "{account}");
    let page = "<p>read through a fleet's certificates</p>\n".repeat(2_000);
    for name in readers_of {
        std::fs::write(env.docroot("p1", name).join("page.html"), &page).unwrap();
        let task = run_task(&env, &["site", "https", name]);
        assert_eq!(task["status"], "success", "{task}");
    }

    // Readers of a and b: over HTTP (status and whole body of every answer, keep-alive and a
    // new connection each) and over HTTPS.
    let targets: Vec<Target> = readers_of
        .iter()
        .map(|host| Target {
            host: host.to_string(),
            path: "/page.html".into(),
            whole: Whole::Len(page.len()),
        })
        .collect();
    let http_kept = BodyCheckingReaders::start(env.nginx.port, &targets, 1, Connections::KeepAlive);
    let http_new =
        BodyCheckingReaders::start(env.nginx.port, &targets, 1, Connections::OnePerRequest);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let https_readers: Vec<_> = readers_of
        .iter()
        .map(|host| {
            https_reader(
                pebble.issuing_root(),
                host,
                https_port,
                format!("200 {}", page.len()),
                stop.clone(),
            )
        })
        .collect();

    // c and d get their certificates in one batch, then each is renewed twice.
    let task = issue(&env);
    assert_eq!(task["status"], "success", "{task}");
    for name in issued {
        assert_eq!(https_answer(&pebble, name, https_port), "200", "{name}");
    }
    for _ in 0..2 {
        for name in issued {
            let renewed = run_task(&env, &["site", "https", name]);
            assert_eq!(renewed["status"], "success", "{renewed}");
        }
    }

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut retried_total = 0;
    for reader in https_readers {
        let (answers, retried) = reader.join().expect("every HTTPS answer was whole");
        assert!(answers >= 5, "only {answers} HTTPS answers");
        retried_total += retried;
    }
    for (what, readers) in [("keep-alive", http_kept), ("new connections", http_new)] {
        let tally = readers.finish();
        assert!(
            tally.failures.is_empty(),
            "{what}: {} failed: {:?}",
            tally.failures.len(),
            tally.failures
        );
        for name in readers_of {
            let whole = tally.whole.get(&format!("{name} /page.html")).copied();
            assert!(
                whole.unwrap_or(0) >= 5,
                "{what}: {name}: {whole:?} {tally:?}"
            );
        }
    }
    assert!(
        retried_total <= 5,
        "{retried_total} HTTPS requests told GOAWAY unprocessed"
    );
}
