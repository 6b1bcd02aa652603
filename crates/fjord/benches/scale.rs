//! `cargo bench -p fjord --bench scale-bench`: verify of 10,000 static sites on one private
//! nginx (127.0.0.1), each figure printed beside its target, and written to
//! `target/bench/scale.json`.
//!
//! The sites are added as an operator adds them (`site add`, queued one after the other, run
//! by a dispatcher; timed on its own), then every vhost is changed twice and every site
//! verified once more, each timed against the target:
//! (a) `platform edit --upload-limit`, whose one platform verify rewrites every vhost;
//! (b) `server edit --listen` (a second HTTP port), which queues the server's verify and one
//!     site verify per site, each of which rewrites its vhost;
//! (c) a site verify of each site again, which changes nothing and must write and reload
//!     nothing.
//! The dispatcher runs in this process, as `fjord serve` runs its own, so that its nginx
//! tests and reloads are counted exactly; its run includes the log rotation it makes before
//! `--until-idle` exits (which reads every site's logs).
//!
//! `FJORD_BENCH_SITES` (default 10,000) sets the number of sites; `FJORD_BENCH_LOG=1` prints
//! where a verify's time goes, from the task logs' timestamps. nginx's master needs about four
//! open files a site at a reload: fjord raises its limit (and its own, which `nginx -t`
//! inherits) as it needs, and the bench reports both.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use engine::dispatch::{Dispatcher, DispatcherOptions};
use engine::model::{Target, TaskKind, TaskStatus};
use engine::ops::ServerEdit;
use engine::ops::SiteInput;
use engine::{Fjord, TaskFilter};

const TARGET_SECONDS: f64 = 15.0;

/// What one run of a dispatcher until idle did.
struct Phase {
    queue_secs: f64,
    run_secs: f64,
    /// From the last task's end to the dispatcher's: its log rotation (every site's logs
    /// read) and its exit.
    after_tasks_secs: f64,
    tasks: usize,
    reloads: u64,
    tests: u64,
    /// Claims made by the dispatcher (the last of them finding nothing), and their time.
    claims: u64,
    claim_secs: f64,
}

impl Phase {
    fn total(&self) -> f64 {
        self.queue_secs + self.run_secs
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what}: {:.2} s ({:.2} s queueing + {:.2} s running, of which {:.2} s after the last task: log rotation, {:.2} s in {} claims), {:.0} tasks/s, {} nginx -t, {} reloads",
            self.total(),
            self.queue_secs,
            self.run_secs,
            self.after_tasks_secs,
            self.claim_secs,
            self.claims,
            self.tasks as f64 / self.total(),
            self.tests,
            self.reloads
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "tasks": self.tasks, "seconds": self.total(), "queue_seconds": self.queue_secs,
            "run_seconds": self.run_secs, "after_last_task_seconds": self.after_tasks_secs,
            "nginx_tests": self.tests, "nginx_reloads": self.reloads,
            "claims": self.claims, "claim_seconds": self.claim_secs,
        })
    }
}

/// Queues tasks with `queue` (timed), then runs a dispatcher of this process until nothing is
/// left, and checks that every task it ran succeeded.
fn phase(fjord: &Arc<Fjord>, queue: impl FnOnce() -> Vec<i64>) -> (Phase, Vec<i64>) {
    let started = Instant::now();
    let ids = queue();
    let queue_secs = started.elapsed().as_secs_f64();
    let dispatcher = Dispatcher::new(fjord.clone()).unwrap();
    let started = Instant::now();
    dispatcher
        .run(
            &DispatcherOptions {
                concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
                until_idle: true,
                background: false,
                log_rotation: Default::default(),
                disk: Default::default(),
                monitor_every: None,
            },
            &AtomicBool::new(false),
        )
        .unwrap();
    let run_secs = started.elapsed().as_secs_f64();
    let ended_ms = store_now_ms();
    let mut last_finished = 0;
    for id in &ids {
        let task = fjord.task(*id).unwrap();
        assert_eq!(
            task.status,
            TaskStatus::Success,
            "task {id}: {:?}",
            task.error
        );
        last_finished = last_finished.max(task.finished_at.unwrap_or(0));
    }
    let (claims, claim_time) = dispatcher.claim_time();
    let phase = Phase {
        queue_secs,
        run_secs,
        after_tasks_secs: (ended_ms - last_finished).max(0) as f64 / 1000.0,
        tasks: ids.len(),
        reloads: dispatcher.nginx_reloads(),
        tests: dispatcher.nginx_tests(),
        claims,
        claim_secs: claim_time.as_secs_f64(),
    };
    (phase, ids)
}

/// Now, as the state records times (Unix milliseconds).
fn store_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Each file's modification time and length, to tell whether a phase wrote any.
fn files_written(dir: &Path) -> BTreeMap<PathBuf, (SystemTime, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (e.path(), (meta.modified().unwrap(), meta.len()))
        })
        .collect()
}

/// Where a verify's time goes, from its log: claim to the config handed to the committer,
/// waiting for the commit, and the commit's end to the task's end (median and 99th
/// percentile over the tasks, in ms).
fn profile(fjord: &Fjord, ids: &[i64]) {
    let mut before = Vec::new();
    let mut commit = Vec::new();
    let mut after = Vec::new();
    for id in ids.iter().step_by((ids.len() / 500).max(1)) {
        let task = fjord.task(*id).unwrap();
        let log = fjord.task_log(*id, 0).unwrap();
        let started = task.started_at.unwrap();
        // The commit's step is logged once the commit is live; the line before it, when the
        // task handed its config over.
        let Some(at) = log.iter().position(|l| l.line.contains(": nginx: ")) else {
            continue;
        };
        let committed = log[at].at;
        let prior = at.checked_sub(1).map_or(started, |i| log[i].at);
        before.push(prior - started);
        commit.push(committed - prior);
        after.push(task.finished_at.unwrap() - committed);
    }
    let show = |what: &str, v: &mut Vec<i64>| {
        v.sort();
        if v.is_empty() {
            return;
        }
        eprintln!(
            "    {what}: median {} ms, p99 {} ms",
            v[v.len() / 2],
            v[(v.len() - 1) * 99 / 100]
        );
    };
    show("claim to the commit", &mut before);
    show("waiting for the commit", &mut commit);
    show("commit to finish", &mut after);
}

/// A task's log (its first and last 30 lines, each cut at 160 characters: a platform's
/// commit step names every vhost), each line with the milliseconds since the task started.
fn print_log(fjord: &Fjord, id: i64) {
    let started = fjord.task(id).unwrap().started_at.unwrap();
    let log = fjord.task_log(id, 0).unwrap();
    for (i, line) in log.iter().enumerate() {
        if i < 30 || i + 30 >= log.len() {
            let text: String = line.line.chars().take(160).collect();
            eprintln!("    +{} ms {text}", line.at - started);
        } else if i == 30 {
            eprintln!("    ...");
        }
    }
}

/// A process's open-files limits (soft, hard) and how many it holds.
fn open_files(pid: u32) -> (u64, u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut fields = line.split_whitespace().skip(3).map(|f| f.parse().unwrap());
    let held = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    (fields.next().unwrap(), fields.next().unwrap(), held)
}

/// One `nginx -t` of the whole config, timed (as the committer runs it).
fn time_nginx_test(prefix: &Path) -> f64 {
    let started = Instant::now();
    let out = std::process::Command::new(harness::nginx_binary())
        .args(["-p", &format!("{}/", prefix.display()), "-c"])
        .arg(prefix.join("nginx.conf"))
        .args(["-t", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_secs_f64()
}

fn main() {
    let sites: usize = std::env::var("FJORD_BENCH_SITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let show_log = std::env::var_os("FJORD_BENCH_LOG").is_some();
    let env = harness::Env::new();
    let master: u32 = std::fs::read_to_string(env.nginx.prefix().join("nginx.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (limit_before, _, held_before) = open_files(master);
    let fjord = Arc::new(Fjord::open(env.data.path()).unwrap());
    let names: Vec<String> = (0..sites)
        .map(|i| format!("site{i}.scale.example"))
        .collect();

    eprintln!("bench: adding {sites} sites");
    let (add, _) = phase(&fjord, || {
        names
            .iter()
            .map(|name| {
                let input = SiteInput {
                    name: name.clone(),
                    platform: "p1".into(),
                    aliases: vec![format!("www.{name}")],
                    ..Default::default()
                };
                fjord.add_site(&input, false).unwrap().task.unwrap().id
            })
            .collect()
    });
    eprintln!("bench: {}", add.line("add"));
    let (status, _, body) = env.nginx.get(&names[sites - 1], "/");
    assert_eq!(status, 200, "{body}");
    let (limit_after, _, held) = open_files(master);
    let per_site = (held - held_before) as f64 / sites as f64;
    let nginx_test_secs = time_nginx_test(env.nginx.prefix());
    eprintln!(
        "bench: nginx's master holds {held} open files ({per_site:.2} a site), may open \
         {limit_after} (started with {limit_before}); nginx -t {nginx_test_secs:.2} s"
    );

    let vhosts = env.data.path().join("config/t/nginx/vhost.d");
    let rewritten_by = |before: &BTreeMap<PathBuf, (SystemTime, u64)>| {
        files_written(&vhosts)
            .iter()
            .filter(|(path, found)| before.get(*path) != Some(found))
            .count()
    };

    eprintln!("bench: (a) platform edit --upload-limit: one platform verify changes every vhost");
    let before = files_written(&vhosts);
    let (platform, platform_ids) = phase(&fjord, || {
        fjord
            .set_platform_upload_limit("p1", "128M")
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect()
    });
    assert_eq!(platform.tasks, 1);
    let platform_rewrote = rewritten_by(&before);
    assert_eq!(platform_rewrote, sites, "(a) rewrote every vhost");
    eprintln!("bench: {}", platform.line("(a)"));
    if show_log {
        print_log(&fjord, platform_ids[0]);
    }

    eprintln!("bench: (b) server edit --listen: {sites} site verifies, each changes its vhost");
    let before = files_written(&vhosts);
    let second_port = harness::free_port();
    let (changed, changed_ids) = phase(&fjord, || {
        let edit = ServerEdit {
            name: "t".into(),
            add_db: Vec::new(),
            remove_db: Vec::new(),
            add_php: Vec::new(),
            remove_php: Vec::new(),
            listen: vec![env.nginx.listen(), format!("127.0.0.1:{second_port}")],
            https_listen: Vec::new(),
            monitor: None,
            host_key: None,
        };
        fjord.edit_server(&edit, false).unwrap();
        let queued = fjord
            .tasks(&TaskFilter {
                status: Some(TaskStatus::Queued),
                ..Default::default()
            })
            .unwrap();
        queued
            .iter()
            .filter(|t| t.kind == TaskKind::SiteVerify)
            .map(|t| t.id)
            .collect()
    });
    assert_eq!(changed.tasks, sites);
    let site_rewrote = rewritten_by(&before);
    assert_eq!(site_rewrote, sites, "(b) rewrote every vhost");
    let (status, _, body) = harness::http_get(second_port, &names[sites - 1], "/");
    assert_eq!(status, 200, "the second port serves: {body}");
    eprintln!("bench: {}", changed.line("(b)"));
    if show_log {
        profile(&fjord, &changed_ids);
    }

    eprintln!("bench: (c) every site verified again: nothing changes");
    let before = files_written(&vhosts);
    let (unchanged, unchanged_ids) = phase(&fjord, || {
        names
            .iter()
            .map(|n| {
                fjord
                    .site_task(n, TaskKind::SiteVerify, false, false)
                    .unwrap()
                    .task
                    .unwrap()
                    .id
            })
            .collect()
    });
    eprintln!("bench: {}", unchanged.line("(c)"));
    if show_log {
        profile(&fjord, &unchanged_ids);
    }
    let rewritten = rewritten_by(&before);
    let site = fjord.site(&names[0]).unwrap();
    assert!(matches!(
        fjord.task(unchanged_ids[0]).unwrap().target,
        Target::Site(id) if id == site.id
    ));

    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    println!(
        "fjord scale benchmark: {sites} static sites, private nginx on 127.0.0.1, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("    {}", add.line("add (site add, each)"));
    println!(
        "    {}   target <= {TARGET_SECONDS} s: {}",
        platform.line("(a) platform verify (upload limit), every vhost changed"),
        verdict(platform.total() <= TARGET_SECONDS)
    );
    println!(
        "    {}   target <= {TARGET_SECONDS} s: {}",
        changed.line("(b) site verifies (listen addresses), every vhost changed"),
        verdict(changed.total() <= TARGET_SECONDS)
    );
    println!(
        "    {}   target <= {TARGET_SECONDS} s, 0 nginx -t, 0 reloads, 0 files written: {}",
        unchanged.line("(c) site verifies, nothing changed"),
        verdict(
            unchanged.total() <= TARGET_SECONDS
                && unchanged.tests == 0
                && unchanged.reloads == 0
                && rewritten == 0
        )
    );
    println!("        vhost files written by (c): {rewritten}");
    println!(
        "    nginx's master: {held} open files for {sites} sites ({per_site:.2} a site; about \
         twice that during a reload), open-files limit {limit_before} at its start, {limit_after} \
         as fjord raised it; one nginx -t of the whole config: {nginx_test_secs:.2} s"
    );

    let json = serde_json::json!({
        "sites": sites,
        "target_seconds_le": TARGET_SECONDS,
        "add": add.json(),
        "platform_verify_changed": platform.json(),
        "verify_changed": changed.json(),
        "verify_unchanged": unchanged.json(),
        "verify_unchanged_vhosts_written": rewritten,
        "nginx_master_open_files": held,
        "nginx_open_files_per_site": per_site,
        "nginx_master_limit_at_start": limit_before,
        "nginx_master_limit_raised_to": limit_after,
        "nginx_test_seconds": nginx_test_secs,
    });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("scale.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("written to target/bench/scale.json");
}
