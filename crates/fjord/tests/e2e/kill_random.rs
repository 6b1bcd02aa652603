//! Kill -9 at random moments: a mixed stream of tasks on MariaDB, PostgreSQL and SQLite
//! sites, with the dispatcher killed after a random delay, round after round (the seed is
//! printed; `FJORD_TEST_SEED` replays one). Afterwards, once a dispatcher has recovered and
//! run what is left: no orphan database, role or user, no directory or vhost of no site, no
//! scratch dir, and every site serves.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::databases::{Cleanup, env_with_databases, leftovers, site_sql, token};
use crate::harness::{Env, signal};

/// xorshift64*: enough randomness for choosing moments, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn names_in(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill_9_at_random_moments_leaves_nothing_orphaned() {
    let seed = std::env::var("FJORD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f10d_u64);
    eprintln!("kill -9 at random moments: seed {seed} (FJORD_TEST_SEED={seed} replays it)");
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let mut env = env_with_databases();
    env.add_platform("p2");
    let engines = ["mysql", "postgresql", "sqlite"];
    let sites: Vec<String> = engines.iter().map(|e| format!("{t}-{e}.example")).collect();
    for (site, engine) in sites.iter().zip(engines) {
        env.ok(&["site", "add", site, "--platform", "p1", "--db", engine]);
    }
    env.dispatch_until_idle(&[]);
    for site in &sites {
        site_sql(&env, site, "CREATE TABLE kept (x INTEGER)").unwrap();
        site_sql(&env, site, "INSERT INTO kept VALUES (42)").unwrap();
    }

    let rounds = 10;
    for round in 0..rounds {
        // A mixed batch: each site gets one task, chosen at random.
        for (i, site) in sites.iter().enumerate() {
            let platform = env.json(&["site", "show", site])["platform"]
                .as_str()
                .unwrap()
                .to_string();
            let other = if platform == "p1" { "p2" } else { "p1" };
            let clone = format!("{t}-c{round}x{i}.example");
            let args: Vec<String> = match rng.below(5) {
                0 => vec!["site".into(), "backup".into(), site.clone()],
                1 => vec![
                    "site".into(),
                    "migrate".into(),
                    site.clone(),
                    "--platform".into(),
                    other.into(),
                ],
                2 => vec![
                    "site".into(),
                    "clone".into(),
                    site.clone(),
                    clone,
                    "--platform".into(),
                    other.into(),
                ],
                3 if !env
                    .json(&["site", "backups", site])
                    .as_array()
                    .unwrap()
                    .is_empty() =>
                {
                    vec!["site".into(), "restore".into(), site.clone()]
                }
                _ => vec!["site".into(), "verify".into(), site.clone()],
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = env.run(&args);
        }
        let pid = env.start_dispatcher(&[]);
        let delay = rng.below(1500);
        std::thread::sleep(Duration::from_millis(delay));
        signal(pid, "KILL");
        env.wait_dispatcher(pid);
        eprintln!("round {round}: killed after {delay} ms");
    }
    // A live dispatcher rolls back what the killed ones were doing and runs what is left.
    env.dispatch_until_idle(&[]);
    env.dispatch_until_idle(&[]);

    let tasks = env.json(&["task", "list", "--limit", "1000"]);
    let interrupted = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["error"] == "interrupted; rolled back")
        .count();
    eprintln!(
        "{} tasks, {interrupted} interrupted by a kill and rolled back",
        tasks.as_array().unwrap().len()
    );
    assert!(
        interrupted > 0,
        "no kill landed in the middle of a task (seed {seed})"
    );
    for task in tasks.as_array().unwrap() {
        assert!(
            !["queued", "processing"].contains(&task["status"].as_str().unwrap()),
            "{task}"
        );
    }
    let site_list = env.json(&["site", "list"]);
    let known: Vec<serde_json::Value> = site_list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().unwrap().starts_with(&t))
        // A clone whose install was rolled back is a record only.
        .filter(|s| ["installed", "disabled"].contains(&s["status"].as_str().unwrap()))
        .cloned()
        .collect();
    // Databases and users on the servers: exactly those of the sites fjord knows.
    let mut expected = BTreeSet::new();
    for site in &known {
        let name = site["name"].as_str().unwrap();
        let shown = env.json(&["site", "show", name]);
        if let Some(db) = shown["database"]["name"].as_str()
            && shown["database"]["engine"] != "sqlite"
        {
            expected.insert(db.to_string());
        }
    }
    let found: BTreeSet<String> = leftovers(&t)
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        found, expected,
        "databases and users on the servers vs the sites' (seed {seed})"
    );
    // Directories and vhosts: exactly those of the sites, nothing set aside, no scratch.
    for platform in ["p1", "p2"] {
        let on_it: BTreeSet<String> = known
            .iter()
            .filter(|s| s["platform"] == platform)
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        let root = std::path::Path::new(&env.platform_path(platform)).to_path_buf();
        assert_eq!(
            names_in(&root.join("sites")),
            on_it,
            "{platform}/sites (seed {seed})"
        );
        let private: BTreeSet<String> = names_in(&root.join("private"));
        assert!(
            private.is_subset(&on_it),
            "{platform}/private: {private:?} (seed {seed})"
        );
    }
    let vhosts: BTreeSet<String> = names_in(&env.data.path().join("config/t/nginx/vhost.d"));
    let wanted: BTreeSet<String> = known
        .iter()
        .map(|s| format!("{}.conf", s["name"].as_str().unwrap()))
        .collect();
    assert_eq!(vhosts, wanted, "vhosts (seed {seed})");
    assert!(
        names_in(&env.data.path().join("journal")).is_empty(),
        "scratch dirs (seed {seed})"
    );
    for site in &known {
        let name = site["name"].as_str().unwrap();
        if site["status"] == "installed" {
            assert_eq!(env.nginx.get(name, "/").0, 200, "{name} (seed {seed})");
            assert_eq!(
                site_sql(&env, name, "SELECT x FROM kept").unwrap(),
                "42",
                "{name}"
            );
        }
    }
    for site in &sites {
        assert_eq!(
            env.json(&["site", "show", site])["status"],
            "installed",
            "{site}"
        );
    }
    kill_leftover_dispatchers(&mut env);
}

fn kill_leftover_dispatchers(env: &mut Env) {
    env.kill_dispatchers();
}
