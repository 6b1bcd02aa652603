//! 200 tasks queued at once over 50 sites.

use std::collections::HashMap;
use std::time::Duration;

use crate::harness::Env;

#[test]
fn two_hundred_tasks_over_fifty_sites() {
    let mut env = Env::new();
    let sites: Vec<String> = (0..50).map(|i| format!("s{i}.example")).collect();
    for site in &sites {
        env.ok(&["site", "add", site, "--platform", "p1"]);
    }
    env.dispatch_until_idle(&[]);
    let reloads_before = env.nginx.reloads();

    // Queue all 200 with no dispatcher running, so they really are queued at once.
    let mut ids = Vec::new();
    for (i, site) in sites.iter().enumerate() {
        let alias = format!("alias{i}.example");
        ids.push(env.queue(&["site", "edit", site, "--add-alias", &alias]));
        ids.push(env.queue(&["site", "verify", site]));
        ids.push(env.queue(&["site", "edit", site, "--redirect", "true"]));
        ids.push(env.queue(&["site", "verify", site]));
    }
    assert_eq!(ids.len(), 200);
    env.start_dispatcher(&[]);
    for id in &ids {
        assert_eq!(
            env.wait_task(*id, Duration::from_secs(300))["status"],
            "success",
            "task {id}: {}",
            env.log(*id)
        );
    }

    // No two tasks on one site overlapped, and each site's tasks ran in the order queued.
    let tasks = env.json(&["task", "list", "--limit", "1000"]);
    let mut by_site: HashMap<String, Vec<(i64, i64, i64)>> = HashMap::new();
    for t in tasks.as_array().unwrap() {
        let id = t["id"].as_i64().unwrap();
        if ids.contains(&id) {
            let span = (
                id,
                t["started_at_ms"].as_i64().unwrap(),
                t["finished_at_ms"].as_i64().unwrap(),
            );
            by_site
                .entry(t["target"]["name"].as_str().unwrap().to_string())
                .or_default()
                .push(span);
        }
    }
    assert_eq!(by_site.len(), 50);
    let mut overlapping_sites = 0;
    for (site, mut spans) in by_site {
        spans.sort();
        assert_eq!(spans.len(), 4, "{site}");
        for pair in spans.windows(2) {
            assert!(
                pair[1].1 >= pair[0].2,
                "{site}: task {} started before task {} finished",
                pair[1].0,
                pair[0].0
            );
        }
        overlapping_sites += 1;
    }
    assert_eq!(overlapping_sites, 50);

    let reloads = env.nginx.reloads() - reloads_before;
    assert!(reloads < 200, "{reloads} reloads for 200 tasks");
    eprintln!("200 tasks over 50 sites: {reloads} nginx reloads");
    for (i, site) in sites.iter().enumerate() {
        let (status, location, _) = env.nginx.get(&format!("alias{i}.example"), "/");
        assert_eq!(
            (status, location),
            (301, Some(format!("http://{site}:{}/", env.nginx.port)))
        );
    }
}
