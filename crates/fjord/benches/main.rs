//! `cargo bench -p fjord --bench fjord-bench`: the core's figures, each printed next to its
//! target, and written to `target/bench/core.json`. Everything runs against a private nginx
//! on 127.0.0.1; both sides of each comparison are measured in this one run.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use engine::Fjord;
use engine::model::{HttpService, TaskStatus};
use engine::ops::SiteInput;

const LATENCY_TASKS: usize = 1000;
const SITES: usize = 1000;

fn wait_finished(fjord: &Fjord, id: i64) -> engine::model::Task {
    loop {
        let task = fjord.task(id).unwrap();
        if task.status.is_finished() {
            return task;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let mut env = harness::Env::new();
    env.start_dispatcher(&[]);
    let fjord = Fjord::open(env.data.path()).unwrap();

    // (a) Dispatch latency: one task at a time, on an idle dispatcher in another process.
    let mut latencies = Vec::new();
    for _ in 0..LATENCY_TASKS {
        let task = fjord.verify_platform("p1", false).unwrap().task.unwrap();
        let done = wait_finished(&fjord, task.id);
        assert_eq!(done.status, TaskStatus::Success);
        latencies.push(done.started_at.unwrap() - done.created_at);
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));

    // (b) Verify of 1,000 static sites.
    eprintln!("bench: installing {SITES} sites");
    let names: Vec<String> = (0..SITES)
        .map(|i| format!("site{i}.bench.example"))
        .collect();
    let mut installs = Vec::new();
    for name in &names {
        let input = SiteInput {
            name: name.clone(),
            platform: "p1".into(),
            aliases: vec![format!("www.{name}")],
            ..Default::default()
        };
        installs.push(fjord.add_site(&input, false).unwrap().task.unwrap().id);
    }
    for id in installs {
        assert_eq!(wait_finished(&fjord, id).status, TaskStatus::Success);
    }

    eprintln!("bench: fjord verifies {SITES} sites");
    let reloads_before = env.nginx.reloads();
    let started = Instant::now();
    let verifies: Vec<i64> = names
        .iter()
        .map(|n| {
            fjord
                .site_task(n, engine::model::TaskKind::SiteVerify, false, false)
                .unwrap()
                .task
                .unwrap()
                .id
        })
        .collect();
    for id in verifies {
        assert_eq!(wait_finished(&fjord, id).status, TaskStatus::Success);
    }
    let fjord_secs = started.elapsed().as_secs_f64();
    let fjord_reloads = env.nginx.reloads() - reloads_before;
    env.kill_dispatchers();

    eprintln!("bench: the per-site way verifies {SITES} sites");
    let server = fjord.server("t").unwrap();
    let HttpService::Nginx(nginx) = &server.http;
    let platform = fjord.platform("p1").unwrap();
    let config_dir = env.data.path().join("config/t/nginx");
    let prefix = format!("{}/", env.nginx.prefix().display());
    let conf = env.nginx.prefix().join("nginx.conf");
    let nginx_cmd = |extra: &[&str]| {
        let out = Command::new(harness::nginx_binary())
            .args(["-p", &prefix, "-c"])
            .arg(&conf)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let reloads_before = env.nginx.reloads();
    let started = Instant::now();
    for name in &names {
        let site = fjord.site(name).unwrap();
        let web = render::WebApp {
            docroot: render::site_files_dir(&platform, &site),
            php_socket: None,
            front_controller: false,
            hidden: Vec::new(),
            files: Vec::new(),
            denied_files: None,
            php_scripts: None,
            proxy: None,
            headers: &[],
        };
        let spec = engine::scripts::vhost_spec(
            nginx,
            &platform,
            &site,
            web,
            &config_dir,
            None,
            // The same vhost fjord wrote, logs included: only the way it is committed differs.
            Some(fjord.site_log_dir(&site)),
            render::VhostState::Serving,
        );
        let vhost = render::nginx_vhost(&spec);
        std::fs::write(
            config_dir.join("vhost.d").join(format!("{name}.conf")),
            vhost,
        )
        .unwrap();
        nginx_cmd(&["-t", "-q"]);
        nginx_cmd(&["-s", "reload"]);
    }
    let naive_secs = started.elapsed().as_secs_f64();
    // The per-site way's reloads are asynchronous: let nginx log them before counting.
    std::thread::sleep(Duration::from_secs(2));
    let naive_reloads = env.nginx.reloads() - reloads_before;
    let ratio = naive_secs / fjord_secs;

    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    println!(
        "fjord core benchmark (private nginx on 127.0.0.1, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "(a) dispatch latency, queued -> started, {LATENCY_TASKS} tasks: p50 {p50} ms, p99 {p99} ms, max {} ms   target p99 < 50 ms: {}",
        latencies[latencies.len() - 1],
        verdict(p99 < 50)
    );
    println!(
        "(b) verify {SITES} static sites: fjord {fjord_secs:.2} s ({fjord_reloads} reloads), per-site way {naive_secs:.2} s ({naive_reloads} reloads)"
    );
    println!(
        "    ratio {ratio:.1}x   target >= 20x: {}",
        verdict(ratio >= 20.0)
    );

    let json = serde_json::json!({
        "dispatch_latency_ms": { "tasks": LATENCY_TASKS, "p50": p50, "p99": p99, "max": latencies[latencies.len() - 1], "target_p99_lt": 50 },
        "verify_sites": {
            "sites": SITES,
            "fjord_seconds": fjord_secs, "fjord_reloads": fjord_reloads,
            "per_site_seconds": naive_secs, "per_site_reloads": naive_reloads,
            "ratio": ratio, "target_ratio_ge": 20,
        },
    });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("core.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("written to target/bench/core.json");
}
