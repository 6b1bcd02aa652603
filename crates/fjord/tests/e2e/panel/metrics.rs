//! `/metrics` and `/healthz` of a real `fjord serve`, scraped while its dispatcher runs a
//! stream of tasks, and read back by the Prometheus text-format parser of the reference
//! client library (`prometheus_client.parser`, Debian's python3-prometheus-client).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Env;

use super::{Panel, add_user, api, api_token, sign_in};

const PASSWORD: &str = "a long password for metrics";

/// One sample: its name, labels and value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses `text` with the reference parser: each family's type and samples, by family name.
fn parse(text: &str) -> BTreeMap<String, (String, Vec<Sample>)> {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   out[f.name] = [f.type, [[s.name, s.labels, s.value] for s in f.samples]]\n\
        json.dump(out, sys.stdout)\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` with `labels` (every one given must match).
fn value(
    families: &BTreeMap<String, (String, Vec<Sample>)>,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    families
        .values()
        .flat_map(|(_, s)| s)
        .find_map(|(n, l, v)| {
            (n == name
                && labels
                    .iter()
                    .all(|(k, want)| l.get(*k).map(String::as_str) == Some(want)))
            .then_some(*v)
        })
}

/// Checks what must hold of every scrape, and returns the number of tasks it counts.
fn check_scrape(families: &BTreeMap<String, (String, Vec<Sample>)>) -> f64 {
    for (family, kind) in [
        ("fjord_tasks", "gauge"),
        ("fjord_task_duration_seconds", "histogram"),
        ("fjord_queue_depth", "gauge"),
        ("fjord_queue_oldest_age_seconds", "gauge"),
        ("fjord_sites", "gauge"),
        ("fjord_site_backup_age_seconds", "gauge"),
        ("fjord_sites_without_backup", "gauge"),
        ("fjord_filesystem_free_bytes", "gauge"),
        ("fjord_filesystem_size_bytes", "gauge"),
        ("fjord_filesystem_used_ratio", "gauge"),
        ("fjord_claims_paused", "gauge"),
        ("fjord_dispatcher_up", "gauge"),
        // The parser names a counter's family without its `_total`.
        ("fjord_cron_runs", "counter"),
        ("fjord_cron_failures", "counter"),
    ] {
        let (found, _) = families
            .get(family)
            .unwrap_or_else(|| panic!("no family {family}: {families:?}"));
        assert_eq!(found, kind, "{family}");
    }
    for (_, samples) in families.values() {
        for (name, labels, v) in samples {
            assert!(v.is_finite() && *v >= 0.0, "{name}{labels:?} = {v}");
        }
    }
    let free = value(
        families,
        "fjord_filesystem_free_bytes",
        &[("of", "data-dir")],
    )
    .unwrap();
    let size = value(
        families,
        "fjord_filesystem_size_bytes",
        &[("of", "data-dir")],
    )
    .unwrap();
    assert!(free > 0.0 && free <= size, "free {free} of {size}");
    assert!(
        value(
            families,
            "fjord_filesystem_free_bytes",
            &[("of", "platform:p1")]
        )
        .is_some()
    );
    // Each kind's histogram: buckets never fall as the bound grows, and +Inf is the count.
    let (_, samples) = &families["fjord_task_duration_seconds"];
    let mut kinds: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (name, labels, v) in samples {
        if name == "fjord_task_duration_seconds_bucket" {
            kinds.entry(labels["kind"].as_str()).or_default().push(*v);
        }
    }
    for (kind, buckets) in &kinds {
        assert!(
            buckets.windows(2).all(|w| w[0] <= w[1]),
            "{kind}: {buckets:?}"
        );
        let count = value(
            families,
            "fjord_task_duration_seconds_count",
            &[("kind", kind)],
        );
        assert_eq!(Some(*buckets.last().unwrap()), count, "{kind}");
    }
    let queued: f64 = families["fjord_tasks"]
        .1
        .iter()
        .filter(|(_, l, _)| l["status"] == "queued")
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(value(families, "fjord_queue_depth", &[]), Some(queued));
    families["fjord_tasks"].1.iter().map(|(_, _, v)| v).sum()
}

#[test]
fn metrics_are_scraped_and_parsed_while_tasks_run_and_only_staff_read_them() {
    let mut env = Env::new();
    add_user(&env, "admin", "administrator", None, PASSWORD);
    env.ok(&["client", "add", "acme", "--platform", "p1"]);
    add_user(&env, "ann", "client", Some("acme"), PASSWORD);
    // The panel alone first: tasks queue up and wait for a dispatcher.
    let panel = Panel::start_with(&env, &[], &["--no-dispatcher"]);
    let admin = api_token(&mut sign_in(&panel, "admin", PASSWORD));
    let client = api_token(&mut sign_in(&panel, "ann", PASSWORD));
    // The figures name every site: no token, or a client's, reads none of them.
    assert_eq!(panel.browser().get("/metrics").status, 401);
    let refused = api(&panel, &client, "GET", "/metrics", None);
    assert_eq!(refused.status, 403, "{}", refused.body);

    let health = panel.browser().get("/healthz");
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(
        health.body.contains("\"dispatcher\":\"down\""),
        "{}",
        health.body
    );
    let sites: Vec<String> = (0..6).map(|i| format!("m{i}.example")).collect();
    for site in &sites {
        env.ok(&["site", "add", site, "--platform", "p1"]);
    }
    std::thread::sleep(Duration::from_millis(1100));
    let waiting = parse(&api(&panel, &admin, "GET", "/metrics", None).body);
    check_scrape(&waiting);
    assert_eq!(value(&waiting, "fjord_dispatcher_up", &[]), Some(0.0));
    assert_eq!(value(&waiting, "fjord_queue_depth", &[]), Some(6.0));
    let age = value(&waiting, "fjord_queue_oldest_age_seconds", &[]).unwrap();
    assert!(age >= 1.0, "the oldest queued task waited {age} s");

    // A dispatcher runs the stream: six sites installed and backed up, while /metrics is
    // scraped.
    env.start_dispatcher(&[]);
    // Up once the new dispatcher holds its lock.
    let up = Instant::now();
    loop {
        let health = panel.browser().get("/healthz");
        if health.status == 200 {
            assert!(
                health.body.contains("\"dispatcher\":\"up\""),
                "{}",
                health.body
            );
            break;
        }
        assert!(up.elapsed() < Duration::from_secs(20), "{}", health.body);
        std::thread::sleep(Duration::from_millis(20));
    }
    // Each site's backup is queued once its install is done, while the others' still run.
    let mut backups_queued = std::collections::BTreeSet::new();
    let started = Instant::now();
    let (mut scrapes, mut last_total) = (0, 0.0);
    loop {
        let r = api(&panel, &admin, "GET", "/metrics", None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("text/plain; version=0.0.4"),
            "{:?}",
            r.header("content-type")
        );
        let families = parse(&r.body);
        let total = check_scrape(&families);
        assert!(
            total >= last_total,
            "tasks counted {total} after {last_total}"
        );
        last_total = total;
        scrapes += 1;
        for site in &sites {
            if !backups_queued.contains(site) && env.run(&["site", "backup", site]).status.success()
            {
                backups_queued.insert(site.clone());
            }
        }
        assert_eq!(value(&families, "fjord_dispatcher_up", &[]), Some(1.0));
        let depth = value(&families, "fjord_queue_depth", &[]).unwrap();
        let installed = value(&families, "fjord_sites", &[("status", "installed")]);
        let backed_up = sites
            .iter()
            .filter(|s| value(&families, "fjord_site_backup_age_seconds", &[("site", s)]).is_some())
            .count();
        if depth == 0.0 && installed == Some(6.0) && backed_up == 6 {
            assert_eq!(
                value(&families, "fjord_sites_without_backup", &[]),
                Some(0.0)
            );
            assert_eq!(
                value(&families, "fjord_queue_oldest_age_seconds", &[]),
                Some(0.0)
            );
            for kind in ["site-install", "site-backup"] {
                assert_eq!(
                    value(
                        &families,
                        "fjord_tasks",
                        &[("kind", kind), ("status", "success")]
                    ),
                    Some(6.0),
                    "{kind}"
                );
                assert_eq!(
                    value(
                        &families,
                        "fjord_task_duration_seconds_count",
                        &[("kind", kind)]
                    ),
                    Some(6.0),
                    "{kind}"
                );
            }
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the stream did not finish: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(scrapes >= 1);
}
