//! `cargo bench -p fjord --bench panel-bench`: the panel and the API with 10,000 sites in the
//! state (FJORD_BENCH_PANEL_SITES), under 32 concurrent clients while the dispatcher installs
//! sites: p50 and p99 of each page, and the resident memory of `fjord serve`. Figures are
//! printed next to their targets and written to `target/bench/panel.json`.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::Fjord;
use engine::acting::{ClientInput, UserInput};
use engine::model::{Actor, TaskStatus};
use engine::ops::SiteInput;

const CLIENTS: usize = 32;
const REQUESTS_PER_CLIENT: usize = 60;
const TARGET_P99_MS: f64 = 50.0;
const TARGET_RSS_MB: f64 = 64.0;

/// One HTTP/1.0 request on a new connection; returns the status.
fn request(port: u16, path: &str, headers: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn sign_in(port: u16, name: &str, password: &str) -> String {
    let body = format!("name={name}&password={}", password.replace(' ', "+"));
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /login HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let cookie = raw
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie");
    cookie.split(';').next().unwrap().to_string()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One request on a kept-alive HTTP/1.1 connection, as a browser sends them; returns the
/// status once the whole body (its Content-Length) is read.
fn request_on(
    stream: &mut std::io::BufReader<TcpStream>,
    port: u16,
    path: &str,
    headers: &str,
) -> u16 {
    use std::io::BufRead;
    write!(
        stream.get_mut(),
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n"
    )
    .unwrap();
    let mut status_line = String::new();
    stream.read_line(&mut status_line).unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    status
}

/// `CLIENTS` clients, each on its own kept-alive connection, request `path`
/// `REQUESTS_PER_CLIENT` times; latencies in ms.
fn load(port: u16, path: &str, headers: &str) -> Vec<f64> {
    let path = Arc::new(path.to_string());
    let headers = Arc::new(headers.to_string());
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (path, headers) = (path.clone(), headers.clone());
            std::thread::spawn(move || {
                let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
                tcp.set_nodelay(true).unwrap();
                let mut stream = std::io::BufReader::new(tcp);
                (0..REQUESTS_PER_CLIENT)
                    .map(|_| {
                        let started = Instant::now();
                        let status = request_on(&mut stream, port, &path, &headers);
                        assert_eq!(status, 200, "GET {path}");
                        started.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect::<Vec<f64>>()
            })
        })
        .collect();
    let mut all: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_by(f64::total_cmp);
    all
}

/// Each page alone, then under `CLIENTS` clients; prints and returns the figures.
fn measure(
    port: u16,
    scenarios: &[(&str, String, &String)],
    worst_p99: &mut f64,
) -> Vec<serde_json::Value> {
    let mut results = Vec::new();
    for (what, path, headers) in scenarios {
        // One request at a time first: what a page costs, without waiting for others.
        let mut alone: Vec<f64> = (0..30)
            .map(|_| {
                let started = Instant::now();
                request(port, path, headers);
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        alone.sort_by(f64::total_cmp);
        let alone_p50 = percentile(&alone, 0.5);
        let lat = load(port, path, headers);
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        *worst_p99 = worst_p99.max(p99);
        println!(
            "  {what:<28} alone {alone_p50:5.1} ms   p50 {p50:6.1} ms   p99 {p99:6.1} ms   (target p99 < {TARGET_P99_MS} ms) {}",
            if p99 < TARGET_P99_MS { "ok" } else { "MISSED" }
        );
        results.push(serde_json::json!({
            "page": what, "path": path, "requests": lat.len(),
            "alone_p50_ms": alone_p50, "p50_ms": p50, "p99_ms": p99, "max_ms": lat.last(),
        }));
    }
    results
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let sites: usize = std::env::var("FJORD_BENCH_PANEL_SITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let env = harness::Env::new();
    let fjord = Fjord::open(env.data.path()).unwrap();
    let op = fjord.acting(Actor::operator());
    for c in 0..100 {
        op.save_client(
            &ClientInput {
                name: format!("client{c}"),
                platforms: vec!["p1".into()],
                ..Default::default()
            },
            false,
        )
        .unwrap();
    }
    let password = "the panel bench's password";
    for (name, role, client) in [
        ("admin", "administrator", None),
        ("ann", "client", Some("client7")),
    ] {
        op.add_user(&UserInput {
            name: name.into(),
            email: None,
            role: role.into(),
            client: client.map(Into::into),
            password: Some(password.into()),
        })
        .unwrap();
    }
    eprintln!("bench: adding {sites} sites to the state");
    let started = Instant::now();
    for i in 0..sites {
        let name = format!("s{i:05}.bench.example");
        fjord
            .add_site(
                &SiteInput {
                    name: name.clone(),
                    platform: "p1".into(),
                    aliases: vec![format!("www.{name}")],
                    client: Some(format!("client{}", i % 100)),
                    ..Default::default()
                },
                false,
            )
            .unwrap();
    }
    let add_s = started.elapsed().as_secs_f64();
    eprintln!("bench: {sites} sites added in {add_s:.1} s; their installs are queued");

    // The panel with its dispatcher: the installs run while the pages are measured.
    let port = harness::free_port();
    let log = PathBuf::from(env.data.path()).join("serve.log");
    // FJORD_BENCH_PANEL_QUIET=1 measures the panel alone, with no dispatcher beside it.
    let quiet = std::env::var_os("FJORD_BENCH_PANEL_QUIET").is_some();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["serve", "--listen", &listen];
    if quiet {
        args.push("--no-dispatcher");
    }
    let serve = Serve(
        env.command(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let pid = serve.0.id();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let admin = format!("Cookie: {}\r\n", sign_in(port, "admin", password));
    let client = format!("Cookie: {}\r\n", sign_in(port, "ann", password));
    let far_page = sites.div_ceil(50).max(1) * 9 / 10;
    let scenarios = [
        ("site list, first page", "/sites".to_string(), &admin),
        ("site list, a search", "/sites?q=s0424".into(), &admin),
        (
            "site list, a far page",
            format!("/sites?page={far_page}"),
            &admin,
        ),
        (
            "site page",
            format!("/sites/s{:05}.bench.example", sites / 2),
            &admin,
        ),
        ("dashboard", "/".into(), &admin),
        ("site list of a client user", "/sites".into(), &client),
    ];
    for (_, path, headers) in &scenarios {
        assert_eq!(request(port, path, headers), 200, "{path}");
    }
    println!(
        "{sites} sites, {CLIENTS} clients, {REQUESTS_PER_CLIENT} requests each per page{}:",
        if quiet {
            ", no dispatcher"
        } else {
            ", while the dispatcher installs the sites"
        }
    );
    let finished = |fjord: &Fjord| {
        fjord
            .tasks(&engine::TaskFilter {
                status: Some(TaskStatus::Success),
                limit: Some(1_000_000),
                ..Default::default()
            })
            .unwrap()
            .len()
    };
    let mut phases = Vec::new();
    let mut worst_p99: f64 = 0.0;

    // Phase 1: while the dispatcher installs the sites as fast as it can (an nginx reload
    // every few installs): the worst a panel meets.
    let before = finished(&fjord);
    let started = Instant::now();
    let results = measure(port, &scenarios, &mut worst_p99);
    let storm = finished(&fjord) - before;
    let storm_s = started.elapsed().as_secs_f64();
    println!("  tasks finished meanwhile: {storm} installs in {storm_s:.1} s\n");
    phases.push(serde_json::json!({
        "tasks": if quiet { "none" } else { "the sites' installs, as fast as the dispatcher goes" },
        "tasks_finished": storm, "seconds": storm_s, "pages": results,
    }));

    // Phase 2: the installs left are cancelled, and the installed sites are backed up one
    // after another, two at a time, as a nightly round does.
    if !quiet {
        let queued = fjord
            .tasks(&engine::TaskFilter {
                status: Some(TaskStatus::Queued),
                limit: Some(1_000_000),
                ..Default::default()
            })
            .unwrap();
        for task in queued {
            let _ = fjord.cancel_task(task.id);
        }
        let installed: Vec<String> = fjord
            .sites(None)
            .unwrap()
            .into_iter()
            .filter(|s| s.status == engine::model::SiteStatus::Installed)
            .map(|s| s.name.to_string())
            .collect();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let backups = {
            let stop = stop.clone();
            let data = env.data.path().to_path_buf();
            std::thread::spawn(move || {
                let fjord = Fjord::open(&data).unwrap();
                let mut done = 0;
                let mut next = installed.iter().cycle();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let in_flight = fjord
                        .tasks(&engine::TaskFilter {
                            status: Some(TaskStatus::Queued),
                            limit: Some(10),
                            ..Default::default()
                        })
                        .unwrap()
                        .len();
                    if in_flight < 2 {
                        let site = next.next().unwrap();
                        fjord
                            .site_task(site, engine::model::TaskKind::SiteBackup, false, false)
                            .unwrap();
                        done += 1;
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                done
            })
        };
        std::thread::sleep(Duration::from_secs(2));
        let before = finished(&fjord);
        let started = Instant::now();
        println!("while sites are backed up, two at a time:");
        let results = measure(port, &scenarios, &mut worst_p99);
        let backed_up = finished(&fjord) - before;
        let seconds = started.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        backups.join().unwrap();
        println!("  tasks finished meanwhile: {backed_up} backups in {seconds:.1} s\n");
        phases.push(serde_json::json!({
            "tasks": "backups of installed sites, two at a time",
            "tasks_finished": backed_up, "seconds": seconds, "pages": results,
        }));
    }

    let rss_mb = rss_kb(pid, "VmRSS:") as f64 / 1024.0;
    let peak_mb = rss_kb(pid, "VmHWM:") as f64 / 1024.0;
    println!(
        "fjord serve resident memory: {rss_mb:.1} MB now, {peak_mb:.1} MB at its peak (target < {TARGET_RSS_MB} MB) {}",
        if peak_mb < TARGET_RSS_MB {
            "ok"
        } else {
            "MISSED"
        }
    );
    let json = serde_json::json!({
        "sites": sites,
        "concurrent_clients": CLIENTS,
        "requests_per_client": REQUESTS_PER_CLIENT,
        "sites_added_s": add_s,
        "phases": phases,
        "worst_p99_ms": worst_p99,
        "target_p99_ms": TARGET_P99_MS,
        "rss_mb": rss_mb,
        "peak_rss_mb": peak_mb,
        "target_rss_mb": TARGET_RSS_MB,
    });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("panel.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    drop(serve);
}
