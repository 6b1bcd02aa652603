//! Reloads cut nothing: readers check the status and the whole body of every response (a
//! ~52 KB PHP page sent in several flushes, and a static file of the same size) on several
//! sites, while fjord verifies sites whose config changed and sites whose config did not, a
//! site migrates, and nginx and php-fpm are reloaded by hand as well. A verify that changes
//! nothing reloads nothing: the nginx master's workers and php-fpm's children stay as they were.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::databases::{Cleanup, token};
use crate::harness::{Env, signal};
use crate::php_fpm::PrivatePhpFpm;
use crate::readers::{BodyCheckingReaders, Connections, Target, Whole};

/// The size of the page and of the static file every reader checks.
const BODY_LEN: usize = 52 * 1024;

/// 52 lines of 1 KiB, flushed every 8 lines with a pause: nginx passes the response on
/// while PHP still writes it, as a real page does.
const PAGE: &str = r#"<?php
header('Content-Type: text/plain');
$line = str_repeat('x', 1023) . "\n";
for ($i = 0; $i < 52; $i++) {
    echo $line;
    if ($i % 8 == 7) { flush(); usleep(15000); }
}
"#;

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> BTreeSet<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rfind(')')
                    .and_then(|i| stat[i + 2..].split(' ').nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// The pid a daemon's pid file names, once it names a live process (php-fpm daemonizes
/// again when it reloads: its master's pid changes, and the file is rewritten).
fn pid_in(file: &std::path::Path) -> u32 {
    for _ in 0..500 {
        let pid = std::fs::read_to_string(file)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} names no live process", file.display());
}

/// What tells whether nginx or php-fpm reloaded: their reload counts (from their logs) and
/// the pids of nginx's workers and php-fpm's children.
#[derive(Debug)]
struct Daemons {
    nginx_reloads: usize,
    php_fpm_reloads: usize,
    nginx_workers: BTreeSet<u32>,
    php_fpm_children: BTreeSet<u32>,
}

fn daemons(env: &Env, fpm: &PrivatePhpFpm) -> Daemons {
    let log = std::fs::read_to_string(fpm.prefix().join("error.log")).unwrap_or_default();
    let nginx_log =
        std::fs::read_to_string(env.nginx.prefix().join("logs/error.log")).unwrap_or_default();
    Daemons {
        // nginx says "reconfiguring" twice a reload, once with the signal.
        nginx_reloads: nginx_log.matches("(SIGHUP) received").count(),
        php_fpm_reloads: log.matches("Reloading in progress").count(),
        nginx_workers: children_of(pid_in(&env.nginx.prefix().join("nginx.pid"))),
        php_fpm_children: children_of(pid_in(&fpm.prefix().join("php-fpm.pid"))),
    }
}

fn site_installed(env: &Env, site: &str) {
    let shown = env.json(&["site", "show", site]);
    assert_eq!(shown["status"], "installed", "{site}: {shown}");
}

#[test]
fn reloads_during_verifies_and_a_migrate_cut_no_response_and_an_unchanged_verify_reloads_nothing() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    let php = fpm.service_arg();
    env.add_server_on(&env.nginx, "t", &["--php", &php, "--web-group", "nogroup"]);
    env.dispatch_until_idle(&[]);
    for platform in ["app", "app2"] {
        let code = env.platforms.path().join(platform);
        std::fs::create_dir(&code).unwrap();
        std::fs::write(code.join("page.php"), PAGE).unwrap();
        std::fs::write(code.join("index.php"), "<?php echo 'home';\n").unwrap();
        std::fs::write(code.join("static.txt"), "s".repeat(BODY_LEN)).unwrap();
        let path = code.display().to_string();
        env.ok(&[
            "platform", "add", platform, "--server", "t", "--path", &path, "--kind", "php",
        ]);
    }
    env.dispatch_until_idle(&[]);
    let sites: Vec<String> = (1..=3).map(|i| format!("{t}-r{i}.reload.test")).collect();
    for site in &sites {
        env.ok(&["site", "add", site, "--platform", "app"]);
    }
    env.dispatch_until_idle(&[]);
    let mut targets = Vec::new();
    for site in &sites {
        site_installed(&env, site);
        for path in ["/page.php", "/static.txt"] {
            targets.push(Target {
                host: site.clone(),
                path: path.to_string(),
                whole: Whole::Len(BODY_LEN),
            });
        }
    }
    let readers = BodyCheckingReaders::start(env.nginx.port, &targets, 2, Connections::KeepAlive);
    let mut problems = Vec::new();

    // Verifies that change nothing: no reload, the same workers and children.
    while readers.tally().whole.len() < targets.len() {
        std::thread::sleep(Duration::from_millis(20));
    }
    for round in 0..2 {
        let before = daemons(&env, &fpm);
        env.ok(&["site", "verify", &sites[0]]);
        env.ok(&["server", "verify", "t"]);
        env.dispatch_until_idle(&[]);
        site_installed(&env, &sites[0]);
        let after = daemons(&env, &fpm);
        // A pool starts children on demand while readers press on it; a reload would have
        // replaced every one of them.
        let kept = after.nginx_reloads == before.nginx_reloads
            && after.php_fpm_reloads == before.php_fpm_reloads
            && after.nginx_workers == before.nginx_workers
            && after.php_fpm_children.is_superset(&before.php_fpm_children);
        if !kept {
            problems.push(format!(
                "round {round}: unchanged verifies reloaded: before {before:?}, after {after:?}"
            ));
        }
    }

    // A verify that changes nothing and fails after any of its steps is rolled back without
    // a reload: its rollback puts no config file back.
    let mut step = 1;
    loop {
        let before = daemons(&env, &fpm);
        let id = env.queue(&["site", "verify", &sites[0]]);
        env.dispatch_until_idle(&[&format!("fail-after:site-verify:{step}")]);
        let after = daemons(&env, &fpm);
        if env.task(id)["status"] == "success" {
            break;
        }
        let log = env.log(id);
        assert!(
            log.contains("rollback complete") || log.contains("nothing to roll back"),
            "{log}"
        );
        if after.nginx_reloads != before.nginx_reloads
            || after.php_fpm_reloads != before.php_fpm_reloads
            || after.nginx_workers != before.nginx_workers
        {
            problems.push(format!(
                "an unchanged verify failing after step {step} reloaded: before {before:?}, after {after:?}"
            ));
        }
        step += 1;
        assert!(step < 60, "a verify of more than 60 steps?");
    }
    assert!(step > 3, "the verify failed after no step: {step}");

    // A verify that repairs a vhost and a pool changed on disk reloads both.
    let vhost = env
        .data
        .path()
        .join(format!("config/t/nginx/vhost.d/{}.conf", sites[1]));
    let pool = std::fs::read_dir(fpm.prefix().join("pool.d"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p).is_ok_and(|c| c.contains(&sites[1])))
        .expect("the site's pool");
    for file in [&vhost, &pool] {
        let mut text = std::fs::read_to_string(file).unwrap();
        text.push_str("# drifted\n");
        std::fs::write(file, text).unwrap();
    }
    // An unchanged verify's config steps journal nothing and wait for no batch: they say so.
    let unchanged = env.queue(&["site", "verify", &sites[0]]);
    env.dispatch_until_idle(&[]);
    let log = env.log(unchanged);
    for daemon in ["nginx", "php-fpm"] {
        assert!(
            log.contains(&format!("{daemon}: unchanged, already live")),
            "{daemon}: {log}"
        );
    }

    let before = daemons(&env, &fpm);
    let repair = env.queue(&["site", "verify", &sites[1]]);
    env.dispatch_until_idle(&[]);
    site_installed(&env, &sites[1]);
    let log = env.log(repair);
    assert!(!log.contains("unchanged, already live"), "{log}");
    let after = daemons(&env, &fpm);
    assert!(
        after.nginx_reloads > before.nginx_reloads
            && after.php_fpm_reloads > before.php_fpm_reloads,
        "a verify that changed files reloads: before {before:?}, after {after:?}"
    );
    assert!(!std::fs::read_to_string(&vhost).unwrap().contains("drifted"));

    // Reloads by hand, as an operator (or a package upgrade) makes them.
    for _ in 0..6 {
        signal(pid_in(&env.nginx.prefix().join("nginx.pid")), "HUP");
        signal(pid_in(&fpm.prefix().join("php-fpm.pid")), "USR2");
        std::thread::sleep(Duration::from_millis(400));
    }

    // A migrate reloads nginx and php-fpm several times while the site serves.
    let before = daemons(&env, &fpm);
    env.ok(&["site", "migrate", &sites[2], "--platform", "app2"]);
    env.dispatch_until_idle(&[]);
    let after = daemons(&env, &fpm);
    eprintln!(
        "a migrate reloaded nginx {} times, php-fpm {} times",
        after.nginx_reloads - before.nginx_reloads,
        after.php_fpm_reloads - before.php_fpm_reloads
    );
    assert_eq!(env.json(&["site", "show", &sites[2]])["platform"], "app2");
    // Readers go on until the last reload's old processes are gone.
    std::thread::sleep(Duration::from_millis(500));

    let tally = readers.finish();
    let end = daemons(&env, &fpm);
    eprintln!(
        "readers: {:?}; idle keep-alive connections closed (retried): {}; reloads: nginx {}, \
         php-fpm {}",
        tally.whole, tally.idle_closed, end.nginx_reloads, end.php_fpm_reloads
    );
    if !tally.failures.is_empty() {
        let mut counted: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &tally.failures {
            *counted.entry(f).or_default() += 1;
        }
        problems.push(format!(
            "{} responses cut or failed: {counted:#?}",
            tally.failures.len()
        ));
    }
    for target in &targets {
        let key = format!("{} {}", target.host, target.path);
        if tally.whole.get(&key).copied().unwrap_or(0) == 0 {
            problems.push(format!("{key}: no whole response at all"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
