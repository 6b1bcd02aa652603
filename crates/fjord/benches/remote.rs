//! `cargo bench -p fjord --bench remote-bench`: the same tasks on a remote server (a test host
//! in a network namespace of this machine, reached over SSH through `fjord agent`) and on the
//! machine fjord runs on, side by side in one run, each with a dispatcher that keeps running
//! (as `fjord serve` does): the verify and the backup of a site of about 100 MB, and 100
//! verifies of remote sites queued at once against the same 100 one after another.
//! Figures go to `target/bench/remote.json`.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../tests/e2e/php_fpm.rs"]
mod php_fpm;
// Its own tests are compiled here too (the benchmark is built with `cfg(test)` by clippy's
// `--all-targets`), and run only in the end-to-end tests.
#[allow(unused_imports)]
#[path = "../tests/e2e/test_hosts.rs"]
mod test_hosts;

use std::path::Path;
use std::time::Duration;

use harness::{Env, world_readable_tempdir};
use test_hosts::TestHost;

/// Files of the big site: 90 of 1 MiB and 1,000 of 10 KiB.
const LARGE: usize = 90;
const SMALL: usize = 1_000;
const RUNS: usize = 7;
const FLEET: usize = 100;

/// Deterministic pseudo-random bytes (xorshift): they do not compress, as media files do not.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fill(docroot: &Path) {
    std::fs::create_dir_all(docroot.join("media")).unwrap();
    std::fs::create_dir_all(docroot.join("pages")).unwrap();
    for i in 0..LARGE {
        std::fs::write(
            docroot.join(format!("media/{i}.bin")),
            noise(i as u64 + 1, 1 << 20),
        )
        .unwrap();
    }
    for i in 0..SMALL {
        std::fs::write(
            docroot.join(format!("pages/{i}.html")),
            noise(i as u64 + 10_000, 10 << 10),
        )
        .unwrap();
    }
}

/// Queues `args` (a task command), waits for the running dispatcher to end the task, and
/// returns how long it took from its queueing to its end, as the state records them (the
/// command line's start and the harness's polling left out).
fn run(env: &Env, args: &[&str]) -> f64 {
    let id = env.queue(args);
    let task = env.wait_task(id, Duration::from_secs(600));
    assert_eq!(task["status"], "success", "{args:?}: {}", env.log(id));
    span(&[task])
}

/// From the first task's queueing to the last one's end, in seconds.
fn span(tasks: &[serde_json::Value]) -> f64 {
    let created = tasks
        .iter()
        .map(|t| t["created_at_ms"].as_i64().unwrap())
        .min()
        .unwrap();
    let finished = tasks
        .iter()
        .map(|t| t["finished_at_ms"].as_i64().unwrap())
        .max()
        .unwrap();
    (finished - created) as f64 / 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn last_ids(env: &Env, n: usize) -> Vec<i64> {
    env.json(&["task", "list", "--limit", &n.to_string()])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

fn wait_all(env: &Env, ids: &[i64]) -> Vec<serde_json::Value> {
    ids.iter()
        .map(|id| {
            let task = env.wait_task(*id, Duration::from_secs(1800));
            assert_eq!(task["status"], "success", "{}", env.log(*id));
            task
        })
        .collect()
}

fn main() {
    let mut env = Env::bare();
    env.add_server("here");
    env.ok(&[
        "platform",
        "add",
        "pl",
        "--server",
        "here",
        "--path",
        &env.platform_path("pl"),
    ]);

    // The remote server: its own sshd and nginx, its dirs private to it.
    let platforms = world_readable_tempdir();
    let fjord_dir = world_readable_tempdir();
    let prefix = world_readable_tempdir();
    let host = TestHost::start(&[platforms.path(), fjord_dir.path(), prefix.path()]);
    let nginx = host.start_nginx(&prefix.path().join("nginx"), 80);
    host.authorize(env.ok(&["ssh-key"]).trim());
    let mut add: Vec<String> = nginx.server_add_args("r1", &[]);
    add.extend([
        "--ssh".into(),
        format!("root@{}", host.address()),
        "--remote-dir".into(),
        fjord_dir.path().display().to_string(),
    ]);
    env.ok(&add.iter().map(String::as_str).collect::<Vec<_>>());
    let remote_platform = platforms.path().join("pr");
    env.ok(&[
        "platform",
        "add",
        "pr",
        "--server",
        "r1",
        "--path",
        &remote_platform.display().to_string(),
    ]);
    env.ok(&["site", "add", "big-l.test", "--platform", "pl"]);
    env.ok(&["site", "add", "big-r.test", "--platform", "pr"]);
    env.dispatch_until_idle(&[]);
    fill(&Path::new(&env.platform_path("pl")).join("sites/big-l.test"));
    fill(&host.path(&remote_platform.join("sites/big-r.test")));
    eprintln!("sites of {LARGE} MiB and {SMALL} × 10 KiB made, here and on r1");

    env.start_dispatcher_with(&[], &["--monitor-interval", "0"]);
    // The link is opened by the first task on r1; what is measured is the work of one that
    // finds it open, as every task but a dispatcher's first does.
    run(&env, &["site", "verify", "big-r.test"]);

    let mut verify = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        verify.0.push(run(&env, &["site", "verify", "big-l.test"]));
        verify.1.push(run(&env, &["site", "verify", "big-r.test"]));
    }
    let (verify_here, verify_remote) = (median(verify.0), median(verify.1));
    eprintln!("verify: here {verify_here:.3} s, remote {verify_remote:.3} s");

    let mut backup = (Vec::new(), Vec::new());
    for _ in 0..3 {
        backup.0.push(run(&env, &["site", "backup", "big-l.test"]));
        backup.1.push(run(&env, &["site", "backup", "big-r.test"]));
    }
    let (backup_here, backup_remote) = (median(backup.0), median(backup.1));
    eprintln!("backup: here {backup_here:.2} s, remote {backup_remote:.2} s");

    // A fleet of small remote sites.
    for i in 0..FLEET {
        env.ok(&[
            "site",
            "add",
            &format!("s{i}.fleet.test"),
            "--platform",
            "pr",
        ]);
    }
    wait_all(&env, &last_ids(&env, FLEET));
    // One after another: each queued once the one before it has ended, their times summed.
    let serial: f64 = (0..FLEET)
        .map(|i| run(&env, &["site", "verify", &format!("s{i}.fleet.test")]))
        .sum();
    // At once: all queued while the dispatcher is stopped, then from the first one's
    // queueing to the last one's end once it runs again.
    env.kill_dispatchers();
    for i in 0..FLEET {
        env.ok(&["site", "verify", &format!("s{i}.fleet.test")]);
    }
    env.start_dispatcher_with(&[], &["--monitor-interval", "0"]);
    let tasks = wait_all(&env, &last_ids(&env, FLEET));
    let finished = tasks
        .iter()
        .map(|t| t["finished_at_ms"].as_i64().unwrap())
        .max()
        .unwrap();
    let started = tasks
        .iter()
        .filter_map(|t| t["started_at_ms"].as_i64())
        .min()
        .unwrap();
    // From the first claim: the queueing through the command line is not the dispatcher's.
    let at_once = (finished - started) as f64 / 1000.0;
    eprintln!(
        "{FLEET} remote verifies: one after another {serial:.1} s, queued at once {at_once:.1} s"
    );

    let figures = serde_json::json!({
        "site_mib": LARGE + SMALL * 10 / 1024,
        "verify_here_s": verify_here,
        "verify_remote_s": verify_remote,
        "verify_ratio": verify_remote / verify_here,
        "backup_here_s": backup_here,
        "backup_remote_s": backup_remote,
        "backup_ratio": backup_remote / backup_here,
        "fleet": FLEET,
        "fleet_serial_s": serial,
        "fleet_at_once_s": at_once,
        "fleet_speedup": serial / at_once,
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
    println!(
        "verify of a {} MiB site: remote {:.2}× here (target ≤ 1.3×); backup: remote {:.2}× \
         here (target ≤ 1.3×); {FLEET} remote verifies queued at once: {:.1}× faster than one \
         after another (target ≥ 10×)",
        LARGE + SMALL * 10 / 1024,
        verify_remote / verify_here,
        backup_remote / backup_here,
        serial / at_once
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("remote.json"),
        serde_json::to_string_pretty(&figures).unwrap(),
    );
    env.kill_dispatchers();
}
