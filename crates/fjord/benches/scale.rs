//! `cargo bench -p fjord --bench scale-bench`: verify of 10,000 static sites on one private
//! nginx (127.0.0.1), each figure printed beside its target, and written to
//! `target/bench/scale.json`.
//!
//! The sites are added as an operator adds them (`site add`, queued one after the other, run
//! by a dispatcher; timed on its own), then verified twice the way an operator verifies every
//! site of a platform: (a) `platform edit --upload-limit`, which changes every vhost and queues
//! each site's verify, and (b) a verify of each site again, which changes nothing and must
//! write and reload nothing. The dispatcher runs in this process, as `fjord serve` runs its
//! own, so that its nginx tests and reloads are counted exactly.
//!
//! `FJORD_BENCH_SITES` (default 10,000) sets the number of sites; `FJORD_BENCH_LOG=1` prints
//! where a verify's time goes, from the task logs' timestamps.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use engine::Fjord;
use engine::dispatch::{Dispatcher, DispatcherOptions};
use engine::model::{Target, TaskKind, TaskStatus};
use engine::ops::SiteInput;

const TARGET_SECONDS: f64 = 15.0;

/// What one run of a dispatcher until idle did.
struct Phase {
    queue_secs: f64,
    run_secs: f64,
    tasks: usize,
    reloads: u64,
    tests: u64,
}

impl Phase {
    fn total(&self) -> f64 {
        self.queue_secs + self.run_secs
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what}: {:.2} s ({:.2} s queueing + {:.2} s running), {:.0} tasks/s, {} nginx -t, {} reloads",
            self.total(),
            self.queue_secs,
            self.run_secs,
            self.tasks as f64 / self.total(),
            self.tests,
            self.reloads
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "tasks": self.tasks, "seconds": self.total(), "queue_seconds": self.queue_secs,
            "run_seconds": self.run_secs, "nginx_tests": self.tests, "nginx_reloads": self.reloads,
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
            },
            &AtomicBool::new(false),
        )
        .unwrap();
    let run_secs = started.elapsed().as_secs_f64();
    for id in &ids {
        let task = fjord.task(*id).unwrap();
        assert_eq!(
            task.status,
            TaskStatus::Success,
            "task {id}: {:?}",
            task.error
        );
    }
    let phase = Phase {
        queue_secs,
        run_secs,
        tasks: ids.len(),
        reloads: dispatcher.nginx_reloads(),
        tests: dispatcher.nginx_tests(),
    };
    (phase, ids)
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

fn main() {
    let sites: usize = std::env::var("FJORD_BENCH_SITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let show_log = std::env::var_os("FJORD_BENCH_LOG").is_some();
    let env = harness::Env::new();
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

    eprintln!("bench: (a) platform edit --upload-limit: every site's vhost changes");
    let (changed, changed_ids) = phase(&fjord, || {
        fjord
            .set_platform_upload_limit("p1", "128M")
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect()
    });
    assert_eq!(changed.tasks, sites);
    eprintln!("bench: {}", changed.line("(a)"));
    if show_log {
        profile(&fjord, &changed_ids);
    }

    eprintln!("bench: (b) every site verified again: nothing changes");
    let vhosts = env.data.path().join("config/t/nginx/vhost.d");
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
    eprintln!("bench: {}", unchanged.line("(b)"));
    if show_log {
        profile(&fjord, &unchanged_ids);
    }
    let rewritten = files_written(&vhosts)
        .iter()
        .filter(|(path, found)| before.get(*path) != Some(found))
        .count();
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
        changed.line("(a) verify, every vhost changed"),
        verdict(changed.total() <= TARGET_SECONDS)
    );
    println!(
        "    {}   target <= {TARGET_SECONDS} s, 0 nginx -t, 0 reloads, 0 files written: {}",
        unchanged.line("(b) verify, nothing changed"),
        verdict(
            unchanged.total() <= TARGET_SECONDS
                && unchanged.tests == 0
                && unchanged.reloads == 0
                && rewritten == 0
        )
    );
    println!("        vhost files written by (b): {rewritten}");

    let json = serde_json::json!({
        "sites": sites,
        "target_seconds_le": TARGET_SECONDS,
        "add": add.json(),
        "verify_changed": changed.json(),
        "verify_unchanged": unchanged.json(),
        "verify_unchanged_vhosts_written": rewritten,
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
