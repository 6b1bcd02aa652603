//! `cargo bench -p fjord --bench https-bench`: a fleet of static sites switched to HTTPS with
//! certificates from a local test CA (Debian's pebble, private, on loopback), each figure
//! printed beside its target (issue 18), and written to `target/bench/https.json`:
//!
//! (1) the CA's own issuing time: the sites' certificates ordered straight from pebble with
//!     fjord's ACME client (`host::acme::order_many`, the same account, the same orders in
//!     flight) and nothing else: no state, no files written, no nginx change;
//! (2) the fleet switched: `fjord https issue --server t` run by a dispatcher of this process
//!     (its nginx reloads counted exactly, and from nginx's own log), against ≤ 2× (1) and
//!     ≤ 5 reloads, while readers check status and length of every answer of two sites over
//!     HTTP;
//! (3) `site add --https required` to its first HTTPS 200, one site after the other, with a
//!     dispatcher running as `fjord serve` runs it, less the CA's time for one order (the
//!     median of single orders timed like (1)): median ≤ 1.5 s.
//!
//! pebble runs with `PEBBLE_VA_NOSLEEP=1` (no random sleep before validating),
//! `PEBBLE_AUTHZREUSE=0` (every order validates afresh: (1) would otherwise leave valid
//! authorizations that (2) reuses) and `PEBBLE_WFE_NONCEREJECT=0` (no nonce refused at random).
//!
//! (4) many sites added at once with `--https required` and a running dispatcher: the time
//!     until every one answers over HTTPS 200 and the nginx reloads their installs and single
//!     certificate tasks made (gathered by the nginx committer).
//!
//! `FJORD_BENCH_HTTPS_SITES` (default 1,000) sets the fleet's size, `FJORD_BENCH_HTTPS_ADDS`
//! (default 20) how many sites (3) adds, `FJORD_BENCH_HTTPS_BURST` (default 100) how many (4)
//! adds at once.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/pebble.rs"]
#[allow(dead_code)]
mod pebble;
#[path = "../tests/e2e/readers.rs"]
#[allow(dead_code)]
mod readers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use engine::dispatch::{Dispatcher, DispatcherOptions};
use engine::model::TaskStatus;
use engine::ops::SiteInput;
use engine::{Fjord, TaskFilter};

/// Issue 18's targets.
const TARGET_RATIO_TO_CA: f64 = 2.0;
const TARGET_RELOADS: u64 = 5;
const TARGET_ADD_TO_HTTPS_ABOVE_CA_S: f64 = 1.5;

fn env_number(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn options(until_idle: bool) -> DispatcherOptions {
    DispatcherOptions {
        concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
        until_idle,
        background: false,
        log_rotation: Default::default(),
        disk: Default::default(),
        monitor_every: None,
    }
}

/// Runs a dispatcher of this process until nothing is left; its nginx reloads.
fn run_until_idle(fjord: &Arc<Fjord>) -> u64 {
    let dispatcher = Dispatcher::new(fjord.clone()).unwrap();
    dispatcher
        .run(&options(true), &AtomicBool::new(false))
        .unwrap();
    dispatcher.nginx_reloads()
}

/// The HTTPS status `curl` gets for `host` (trusting only pebble's issuing root).
fn https_status(root: &Path, host: &str, port: u16) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(root)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .arg(format!("https://{host}:{port}/"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() - 1) * p / 100]
}

fn main() {
    let sites = env_number("FJORD_BENCH_HTTPS_SITES", 1_000);
    let adds = env_number("FJORD_BENCH_HTTPS_ADDS", 20);
    let burst = env_number("FJORD_BENCH_HTTPS_BURST", 100);
    let in_flight = engine::scripts::ORDERS_IN_FLIGHT;
    let env = harness::Env::new();
    let fjord = Arc::new(Fjord::open(env.data.path()).unwrap());
    let pebble = pebble::Pebble::start_with(env.nginx.port, &[("PEBBLE_AUTHZREUSE", "0")]);
    let https_port = harness::free_port();
    env.ok(&[
        "server",
        "edit",
        "t",
        "--https-listen",
        &format!("127.0.0.1:{https_port}"),
    ]);
    env.dispatch_until_idle(&[]);

    eprintln!("bench: adding {sites} static sites (no ACME account yet: no certificate)");
    let names: Vec<String> = (0..sites)
        .map(|i| format!("site{i}.fleet.example"))
        .collect();
    for name in &names {
        let input = SiteInput {
            name: name.clone(),
            platform: "p1".into(),
            ..Default::default()
        };
        fjord.add_site(&input, false).unwrap();
    }
    run_until_idle(&fjord);
    let ca_root = pebble.listener_root().display().to_string();
    env.ok(&[
        "https",
        "account",
        "--email",
        "ops@fleet.example",
        "--directory",
        &pebble.directory(),
        "--ca-root",
        &ca_root,
        "--server",
        "t",
    ]);
    env.dispatch_until_idle(&[]);

    // (1) The CA alone: the same orders, in flight as fjord keeps them, nothing else done.
    let ca = host::acme::AcmeCa {
        directory: pebble.directory(),
        ca_root: Some(pebble.listener_root()),
    };
    let credentials = env.data.path().join("tls/acme-account.json");
    let challenges = host::acme::ChallengeDir::open(&render::acme_challenge_dir(
        &env.data.path().join("config/t/nginx"),
    ))
    .unwrap();
    let orders: Vec<Vec<String>> = names.iter().map(|n| vec![n.clone()]).collect();
    eprintln!("bench: (1) the CA issuing {sites} certificates, {in_flight} orders in flight");
    let started = Instant::now();
    let issued = host::acme::order_many(&ca, &credentials, &orders, &challenges, in_flight)
        .expect("the account loads");
    let ca_secs = started.elapsed().as_secs_f64();
    let failed = issued.iter().filter(|r| r.is_err()).count();
    assert_eq!(failed, 0, "the CA alone: {failed} orders failed");
    // One order at a time, as a single site's certificate task places it.
    let mut single: Vec<f64> = (0..adds.clamp(5, 20))
        .map(|i| {
            let started = Instant::now();
            host::acme::order(&ca, &credentials, &orders[i % sites], &challenges).unwrap();
            started.elapsed().as_secs_f64()
        })
        .collect();
    single.sort_by(f64::total_cmp);
    let ca_one = percentile(&single, 50);

    // (2) The fleet switched, read meanwhile.
    eprintln!("bench: (2) fjord https issue --server t");
    let watched: Vec<readers::Target> = names
        .iter()
        .take(2)
        .map(|host| {
            let (status, _, body) = env.nginx.get(host, "/");
            assert_eq!(status, 200, "{host}: {body}");
            readers::Target {
                host: host.clone(),
                path: "/".into(),
                whole: readers::Whole::Len(body.len()),
            }
        })
        .collect();
    let watch = readers::BodyCheckingReaders::start(
        env.nginx.port,
        &watched,
        1,
        readers::Connections::KeepAlive,
    );
    let nginx_reloads_before = env.nginx.reloads();
    let started = Instant::now();
    let queued = fjord.https_issue("t", false).unwrap().task.unwrap();
    let fleet_reloads = run_until_idle(&fjord);
    let wall_secs = started.elapsed().as_secs_f64();
    let nginx_reloads = env.nginx.reloads() - nginx_reloads_before;
    let tally = watch.finish();
    let task = fjord.task(queued.id).unwrap();
    assert_eq!(task.status, TaskStatus::Success, "{:?}", task.error);
    // From the command to the task's outcome, as `--wait` sees it (the dispatcher's run also
    // rotates logs before it exits, which is no part of the switch).
    let fleet_secs = (task.finished_at.unwrap() - task.created_at) as f64 / 1000.0;
    let task_secs = (task.finished_at.unwrap() - task.started_at.unwrap()) as f64 / 1000.0;
    assert!(tally.failures.is_empty(), "{:?}", tally.failures);
    let root = pebble.issuing_root();
    for name in names
        .iter()
        .step_by((sites / 20).max(1))
        .chain(names.last())
    {
        assert_eq!(https_status(&root, name, https_port), "200", "{name}");
    }
    let ratio = fleet_secs / ca_secs;

    // (3) One site after the other, with a dispatcher running as `fjord serve` runs it.
    eprintln!("bench: (3) {adds} sites added with --https required, each to its first HTTPS 200");
    let stop = Arc::new(AtomicBool::new(false));
    let dispatcher = {
        let (fjord, stop) = (fjord.clone(), stop.clone());
        std::thread::spawn(move || {
            let dispatcher = Dispatcher::new(fjord).unwrap();
            dispatcher.run(&options(false), &stop).unwrap();
        })
    };
    let mut to_https: Vec<f64> = Vec::new();
    for i in 0..adds {
        let name = format!("new{i}.fleet.example");
        let started = Instant::now();
        fjord.add_site(&required_site(&name), false).unwrap();
        let deadline = started + Duration::from_secs(120);
        while https_status(&root, &name, https_port) != "200" {
            assert!(
                Instant::now() < deadline,
                "{name} never answered over HTTPS"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        to_https.push(started.elapsed().as_secs_f64());
    }
    // (4) Many sites added at once: their installs' and certificate tasks' vhosts gather in
    // the nginx committer.
    eprintln!("bench: (4) {burst} sites added at once with --https required");
    let reloads_before = env.nginx.reloads();
    let started = Instant::now();
    let burst_names: Vec<String> = (0..burst)
        .map(|i| format!("burst{i}.fleet.example"))
        .collect();
    for name in &burst_names {
        fjord.add_site(&required_site(name), false).unwrap();
    }
    let deadline = started + Duration::from_secs(600);
    for name in &burst_names {
        while https_status(&root, name, https_port) != "200" {
            assert!(
                Instant::now() < deadline,
                "{name} never answered over HTTPS"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let burst_secs = started.elapsed().as_secs_f64();
    let burst_reloads = env.nginx.reloads() - reloads_before;
    stop.store(true, Ordering::SeqCst);
    dispatcher.join().unwrap();
    let failed_tasks = fjord
        .tasks(&TaskFilter {
            status: Some(TaskStatus::Failed),
            ..Default::default()
        })
        .unwrap();
    assert!(failed_tasks.is_empty(), "{failed_tasks:?}");
    to_https.sort_by(f64::total_cmp);
    let above: Vec<f64> = to_https.iter().map(|t| t - ca_one).collect();
    let median_above = percentile(&above, 50);

    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "fjord HTTPS benchmark: {sites} static sites, private nginx and pebble on 127.0.0.1, \
         {cores} cores, {in_flight} orders in flight"
    );
    println!(
        "    (1) the CA alone, {sites} certificates: {ca_secs:.2} s ({:.0} certificates/s); \
         one order alone: median {ca_one:.3} s",
        sites as f64 / ca_secs
    );
    println!(
        "    (2) fleet switched (https issue), queued to done: {fleet_secs:.2} s = {ratio:.2}x \
         the CA's time   target <= {TARGET_RATIO_TO_CA}x: {}",
        verdict(ratio <= TARGET_RATIO_TO_CA)
    );
    println!(
        "        the task itself {task_secs:.2} s; the dispatcher's whole run {wall_secs:.2} s \
         (with its start and the log rotation it makes before it exits)"
    );
    println!(
        "        nginx reloads: {fleet_reloads} (dispatcher), {nginx_reloads} (nginx's log)   \
         target <= {TARGET_RELOADS}: {}",
        verdict(fleet_reloads.max(nginx_reloads as u64) <= TARGET_RELOADS)
    );
    println!(
        "        readers over HTTP on 2 of the sites: {} whole answers, {} failed, {} idle \
         keep-alive connections closed and retried",
        tally.whole.values().sum::<u64>(),
        tally.failures.len(),
        tally.idle_closed
    );
    println!(
        "    (3) site add --https required to the first HTTPS 200, {adds} sites: median {:.3} s, \
         p90 {:.3} s, max {:.3} s; less the CA's {ca_one:.3} s: median {median_above:.3} s   \
         target <= {TARGET_ADD_TO_HTTPS_ABOVE_CA_S} s: {}",
        percentile(&to_https, 50),
        percentile(&to_https, 90),
        percentile(&to_https, 100),
        verdict(median_above <= TARGET_ADD_TO_HTTPS_ABOVE_CA_S)
    );
    println!(
        "    (4) {burst} sites added at once with --https required: all served over HTTPS in \
         {burst_secs:.2} s, {burst_reloads} nginx reloads for their installs and certificates \
         (the CA alone: {:.2} s for as many)",
        ca_secs * burst as f64 / sites as f64
    );

    let json = serde_json::json!({
        "sites": sites,
        "orders_in_flight": in_flight,
        "pebble": {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0", "PEBBLE_WFE_NONCEREJECT": "0"},
        "ca_alone_seconds": ca_secs,
        "ca_one_order_median_seconds": ca_one,
        "fleet_seconds": fleet_secs,
        "fleet_task_seconds": task_secs,
        "fleet_dispatcher_run_seconds": wall_secs,
        "fleet_ratio_to_ca": ratio,
        "fleet_reloads_dispatcher": fleet_reloads,
        "fleet_reloads_nginx_log": nginx_reloads,
        "readers_whole": tally.whole.values().sum::<u64>(),
        "readers_failed": tally.failures.len(),
        "add_to_https_seconds": to_https,
        "add_to_https_above_ca_median_seconds": median_above,
        "burst_sites": burst,
        "burst_seconds": burst_secs,
        "burst_nginx_reloads": burst_reloads,
        "targets": {"ratio_le": TARGET_RATIO_TO_CA, "reloads_le": TARGET_RELOADS,
                    "add_to_https_above_ca_median_le": TARGET_ADD_TO_HTTPS_ABOVE_CA_S},
    });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("https.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("written to target/bench/https.json");
}

/// A site on `p1` that requires HTTPS.
fn required_site(name: &str) -> SiteInput {
    SiteInput {
        name: name.to_string(),
        platform: "p1".into(),
        https: Some("required".into()),
        ..Default::default()
    }
}
