//! The promise, for PHP sites: a WordPress install or migrate that fails after any step, or
//! whose dispatcher is killed there, leaves every site serving its old state, with no orphan
//! user, pool, database, directory or vhost; a pool php-fpm rejects never reaches a reload.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::databases::{Cleanup, leftovers, token};
use crate::harness::{Env, assert_same_state, signal, walk};
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::{php_server, wordpress_platform};

/// Everything a PHP task may change: the sites' own dirs on each platform (not the code),
/// fjord's config, nginx's hook, the pools, the installation's users, the databases, and
/// what each host serves.
fn php_state(env: &Env, fpm: &PrivatePhpFpm, t: &str, hosts: &[&str]) -> BTreeMap<String, String> {
    let mut state = BTreeMap::new();
    for platform in std::fs::read_dir(env.platforms.path()).unwrap().flatten() {
        for sub in ["sites", "private"] {
            walk(&platform.path().join(sub), &mut state);
        }
    }
    walk(&env.data.path().join("config"), &mut state);
    walk(&env.nginx.prefix().join("conf.d"), &mut state);
    for pool in fpm.pool_files() {
        let text = std::fs::read_to_string(fpm.prefix().join("pool.d").join(&pool)).unwrap();
        state.insert(format!("pool {pool}"), text);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let installation = installation_id(env);
    for line in passwd
        .lines()
        .filter(|l| l.starts_with(&format!("fj{installation}-")))
    {
        state.insert(
            format!("user {}", line.split(':').next().unwrap()),
            line.to_string(),
        );
    }
    for item in leftovers(t) {
        state.insert(item, String::new());
    }
    for host in hosts {
        let (status, _, body) = env.nginx.get(host, "/");
        // The page itself carries nonces and times; its title says which site it is.
        let title = body
            .split_once("<title>")
            .and_then(|(_, r)| r.split_once("</title>"))
            .map(|(t, _)| t.to_string())
            .unwrap_or_default();
        state.insert(format!("GET http://{host}/"), format!("{status} {title}"));
    }
    state
}

fn installation_id(env: &Env) -> String {
    let out = Command::new("sqlite3")
        .arg(env.data.path().join("state.db"))
        .arg("SELECT value FROM settings WHERE key = 'installation_id'")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Setup {
    env: Env,
    fpm: PrivatePhpFpm,
    t: String,
    _cleanup: Cleanup,
}

fn setup() -> Setup {
    let t = token();
    let cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    wordpress_platform(&env, "wp1");
    wordpress_platform(&env, "wp2");
    Setup {
        env,
        fpm,
        t,
        _cleanup: cleanup,
    }
}

#[test]
fn a_wordpress_install_or_migrate_failing_after_any_step_is_rolled_back() {
    let s = setup();
    let (env, t) = (&s.env, &s.t);
    let (stay, new, moving, moved) = (
        format!("{t}-stay.wp.test"),
        format!("{t}-new.wp.test"),
        format!("{t}-moving.wp.test"),
        format!("{t}-moved.wp.test"),
    );
    env.ok(&[
        "site",
        "add",
        &stay,
        "--platform",
        "wp1",
        "--title",
        "Stays",
    ]);
    env.ok(&[
        "site",
        "add",
        &moving,
        "--platform",
        "wp1",
        "--title",
        "Moves",
    ]);
    env.dispatch_until_idle(&[]);
    let hosts = [stay.as_str(), new.as_str(), moving.as_str(), moved.as_str()];

    for (kind, args) in [
        (
            "site-install",
            vec!["site", "add", &new, "--platform", "wp1"],
        ),
        (
            "site-migrate",
            vec![
                "site",
                "migrate",
                &moving,
                "--platform",
                "wp2",
                "--rename",
                &moved,
            ],
        ),
    ] {
        let mut step = 1;
        loop {
            let before = php_state(env, &s.fpm, t, &hosts);
            let id = env.queue(&args);
            env.dispatch_until_idle(&[&format!("fail-after:{kind}:{step}")]);
            let task = env.task(id);
            if task["status"] == "success" {
                break;
            }
            assert_eq!(task["status"], "failed", "{kind} step {step}: {task}");
            assert_same_state(
                &before,
                &php_state(env, &s.fpm, t, &hosts),
                &format!("{kind} failing after step {step}"),
            );
            if kind == "site-install" {
                // A failed install leaves the site recorded as failed: gone for the next try.
                env.ok(&["site", "delete", &new, "--force"]);
                env.dispatch_until_idle(&[]);
            }
            step += 1;
            assert!(step < 60, "{kind} never succeeded");
        }
        assert!(step > 10, "{kind} has only {} steps", step - 1);
    }
    assert!(env.nginx.get(&moved, "/").2.contains("<title>Moves"));
    assert_eq!(env.nginx.get(&stay, "/").0, 200);
}

/// Kills the dispatcher while `kind` is paused after step 1, 2, … until a run finishes;
/// after every kill the next dispatcher rolls the task back and the host is as before.
/// `after_kill` runs after each rollback (a failed install's record is deleted).
fn kill_at_every_step(
    s: &mut Setup,
    kind: &str,
    args: &[&str],
    hosts: &[&str],
    after_kill: &dyn Fn(&Env),
) -> u32 {
    let t = s.t.clone();
    let mut step = 1;
    loop {
        let before = php_state(&s.env, &s.fpm, &t, hosts);
        let pid = s
            .env
            .start_dispatcher(&[&format!("pause-after:{kind}:{step}")]);
        let id = s.env.queue(args);
        let deadline = Instant::now() + Duration::from_secs(60);
        let finished = loop {
            if s.env.log(id).contains("fault: paused") {
                break false;
            }
            if s.env.task(id)["status"] == "success" {
                break true;
            }
            assert!(
                Instant::now() < deadline,
                "{kind} step {step}: {}",
                s.env.log(id)
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        if finished {
            s.env.kill_dispatchers();
            return step - 1;
        }
        signal(pid, "KILL");
        s.env.start_dispatcher(&[]);
        let task = s.env.wait_task(id, Duration::from_secs(60));
        assert_eq!(
            task["error"], "interrupted; rolled back",
            "{kind} step {step}"
        );
        s.env.kill_dispatchers();
        after_kill(&s.env);
        assert_same_state(
            &before,
            &php_state(&s.env, &s.fpm, &t, hosts),
            &format!("{kind} killed after step {step}"),
        );
        step += 1;
        assert!(step < 60, "{kind} never ran out of steps");
    }
}

#[test]
fn a_dispatcher_killed_after_any_step_of_a_wordpress_install_or_migrate_is_rolled_back() {
    let mut s = setup();
    let t = s.t.clone();
    let (new, site, moved) = (
        format!("{t}-born.wp.test"),
        format!("{t}-kill.wp.test"),
        format!("{t}-killed.wp.test"),
    );
    s.env.ok(&[
        "site",
        "add",
        &site,
        "--platform",
        "wp1",
        "--title",
        "Survives",
    ]);
    s.env.dispatch_until_idle(&[]);
    let hosts = [new.as_str(), site.as_str(), moved.as_str()];

    let steps = kill_at_every_step(
        &mut s,
        "site-install",
        &["site", "add", &new, "--platform", "wp1", "--title", "Born"],
        &hosts,
        // A rolled-back install leaves the site recorded as failed: gone for the next try.
        &|env| {
            env.ok(&["site", "delete", &new, "--force"]);
            env.dispatch_until_idle(&[]);
        },
    );
    assert!(steps > 10, "site-install has only {steps} steps");
    assert!(s.env.nginx.get(&new, "/").2.contains("<title>Born"));

    let steps = kill_at_every_step(
        &mut s,
        "site-migrate",
        &[
            "site",
            "migrate",
            &site,
            "--platform",
            "wp2",
            "--rename",
            &moved,
        ],
        &hosts,
        &|_| {},
    );
    assert!(steps > 10, "site-migrate has only {steps} steps");
    assert!(s.env.nginx.get(&moved, "/").2.contains("<title>Survives"));
}

#[test]
fn a_pool_php_fpm_rejects_never_reaches_a_reload_and_other_sites_keep_serving() {
    let mut s = setup();
    let t = s.t.clone();
    let (good, bad) = (format!("{t}-good.wp.test"), format!("{t}-bad.wp.test"));
    s.env
        .ok(&["site", "add", &good, "--platform", "wp1", "--title", "Good"]);
    s.env.dispatch_until_idle(&[]);
    let hosts = [good.as_str(), bad.as_str()];
    let before = php_state(&s.env, &s.fpm, &t, &hosts);
    s.env.start_dispatcher(&[&format!("corrupt-pool:{bad}")]);
    let id = s.env.queue(&["site", "add", &bad, "--platform", "wp1"]);
    let task = s.env.wait_task(id, Duration::from_secs(60));
    assert_eq!(task["status"], "failed", "{task}");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("php-fpm rejected")
            && error.contains("fjord_injected_fault_not_a_directive"),
        "php-fpm's own message is shown: {error}"
    );
    s.env.kill_dispatchers();
    let log = std::fs::read_to_string(s.fpm.prefix().join("error.log")).unwrap();
    assert!(
        !log.contains("fjord_injected_fault"),
        "the bad pool reached a reload:\n{log}"
    );
    assert!(s.env.nginx.get(&good, "/").2.contains("<title>Good"));
    assert_same_state(
        &before,
        &php_state(&s.env, &s.fpm, &t, &hosts),
        "rejected pool",
    );
}
