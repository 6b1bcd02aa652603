//! `cargo bench -p fjord --bench php-bench`: WordPress on a private nginx, a private php-fpm
//! and the machine's MariaDB. Every figure is printed next to its target and written to
//! `target/bench/php.json`; both sides of each comparison are measured in this one run.
//!
//! (a) `site add` to the first 200 of a new WordPress site, fjord against the same steps by
//!     hand (database, user, config, pool and php-fpm reload, `wp_install()`, vhost and nginx
//!     reload), alternating, the median of each;
//! (b) N WordPress sites (500 by default, `FJORD_BENCH_SITES`), each with its own pool and
//!     user, idle: php-fpm's total resident memory, and the first request to an idle site;
//! (c) one cron round over those sites: fjord's queue against running them one after
//!     another, as Aegir does.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/php_fpm.rs"]
mod php_fpm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use engine::Fjord;

const ROUNDS: usize = 5;

fn token() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("b{:05x}", (t ^ u128::from(std::process::id())) & 0xf_ffff)
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mysql(sql: &str) {
    run("mariadb", &["-uroot", "-e", sql]);
}

/// Waits until `host` answers 200 with its title.
fn wait_served(port: u16, host: &str, title: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, _, body) = harness::http_get(port, host, "/");
        if status == 200 && body.contains(&format!("<title>{title}")) {
            return;
        }
        assert!(Instant::now() < deadline, "{host} never served: {status}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The resident memory of a process and its children, in kB.
fn tree_rss_kb(root: u32) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        };
        if pid == root || field("PPid:") == Some(u64::from(root)) {
            total += field("VmRSS:").unwrap_or(0);
        }
    }
    total
}

/// The same steps as fjord's install, by hand, with the same renderers; returns the time to
/// the first 200.
#[allow(clippy::too_many_arguments)]
fn by_hand(
    env: &harness::Env,
    fpm: &php_fpm::PrivatePhpFpm,
    code: &Path,
    site: &str,
    title: &str,
    user: &str,
) -> Duration {
    let started = Instant::now();
    let db = site.replace(['.', '-'], "_");
    let password = format!("{:032x}", rand_u128());
    mysql(&format!(
        "CREATE DATABASE `{db}`; CREATE USER '{db}'@'localhost' IDENTIFIED BY '{password}'; \
         GRANT ALL ON `{db}`.* TO '{db}'@'localhost'"
    ));
    run(
        "useradd",
        &[
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ],
    );
    let (files, private) = (
        code.join("hand").join(site),
        code.join("hand-private").join(site),
    );
    for dir in [
        files.join("mu-plugins"),
        files.join("themes"),
        private.join("tmp"),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let secret = format!("{:064x}", rand_u128());
    let salts = [secret.as_str(); 8];
    let database = model::SiteDatabase {
        server_id: 1,
        engine: model::DbEngine::Mysql,
        name: db.clone(),
        user: db.clone(),
        password: password.clone(),
    };
    let service = model::DbService::parse("mysql").unwrap();
    let config = private.join("settings.php");
    std::fs::write(
        &config,
        render::wordpress_site_config(&render::WordpressSite {
            url: format!("http://{site}:{}", env.nginx.port),
            code: code.to_path_buf(),
            content_dir: files.clone(),
            db: &database,
            db_service: &service,
            table_prefix: "wp_",
            salts,
        }),
    )
    .unwrap();
    std::fs::write(
        files.join("mu-plugins/fjord.php"),
        render::wordpress_mu_plugin(),
    )
    .unwrap();
    for dir in [&files, &private] {
        run(
            "chown",
            &["-R", &format!("{user}:{user}"), &dir.display().to_string()],
        );
    }
    let socket = fpm.prefix().join(format!("{user}.sock"));
    let pool = render::PhpPool {
        name: user.to_string(),
        user: user.to_string(),
        site: site.to_string(),
        socket: socket.clone(),
        web_group: "nogroup".into(),
        open_basedir: vec![code.to_path_buf(), files.clone(), private.clone()],
        tmp_dir: private.join("tmp"),
        site_config: config.clone(),
        max_children: 5,
        allow_exec: false,
        upload_limit: engine::model::UploadLimit::DEFAULT,
        putenv: false,
        error_log: None,
    };
    std::fs::write(
        fpm.prefix().join(format!("pool.d/hand-{user}.conf")),
        render::php_fpm_pool(&pool),
    )
    .unwrap();
    let conf = fpm.prefix().join("php-fpm.conf").display().to_string();
    run(php_fpm::PHP_FPM, &["-t", "-y", &conf]);
    let pid = std::fs::read_to_string(fpm.prefix().join("php-fpm.pid")).unwrap();
    run("kill", &["-USR2", pid.trim()]);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        std::thread::sleep(Duration::from_millis(2));
    }
    let install = format!(
        "<?php
$_SERVER['HTTP_HOST'] = '{site}'; $_SERVER['SERVER_NAME'] = '{site}'; $_SERVER['REQUEST_URI'] = '/';
define('WP_INSTALLING', true);
function wp_new_blog_notification() {{}}
require '{code}/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
wp_install('{title}', 'admin', 'admin@example.com', 1, '', wp_slash('{password}'));
update_option('siteurl', 'http://{site}:{port}');
update_option('home', 'http://{site}:{port}');
",
        code = code.display(),
        port = env.nginx.port
    );
    let uid = String::from_utf8(
        Command::new("id")
            .args(["-u", user])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut php = Command::new("setpriv")
        .args([
            &format!("--reuid={}", uid.trim()),
            &format!("--regid={}", uid.trim()),
            "--clear-groups",
            "php8.2",
        ])
        .env("FJORD_SITE_CONFIG", &config)
        .current_dir(code)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    php.stdin
        .take()
        .unwrap()
        .write_all(install.as_bytes())
        .unwrap();
    assert!(php.wait().unwrap().success());
    let HttpVhost { path, text } = hand_vhost(env, site, code, &socket);
    std::fs::write(&path, text).unwrap();
    let prefix = format!("{}/", env.nginx.prefix().display());
    let nginx_conf = env.nginx.prefix().join("nginx.conf").display().to_string();
    run(
        harness::nginx_binary(),
        &["-p", &prefix, "-c", &nginx_conf, "-t", "-q"],
    );
    run(
        harness::nginx_binary(),
        &["-p", &prefix, "-c", &nginx_conf, "-s", "reload"],
    );
    wait_served(env.nginx.port, site, title);
    started.elapsed()
}

struct HttpVhost {
    path: PathBuf,
    text: String,
}

fn hand_vhost(env: &harness::Env, site: &str, code: &Path, socket: &Path) -> HttpVhost {
    let fjord = Fjord::open(env.data.path()).unwrap();
    let server = fjord.server("t").unwrap();
    let platform = fjord.platform("wp").unwrap();
    let engine::model::HttpService::Nginx(nginx) = &server.http;
    let site_record = model::Site {
        id: 0,
        name: model::Hostname::parse("site", site).unwrap(),
        platform_id: platform.id,
        aliases: Vec::new(),
        redirect_aliases: false,
        status: model::SiteStatus::Installed,
        client_id: None,
        database: None,
        app_secret: String::new(),
        upload_limit: None,
        https: Default::default(),
    };
    let web = render::WebApp {
        docroot: code.to_path_buf(),
        php_socket: Some(socket.to_path_buf()),
        front_controller: true,
        hidden: vec!["/hand/".into(), "/hand-private/".into()],
        files: Vec::new(),
        denied_files: None,
        php_scripts: None,
        proxy: None,
        headers: &[],
    };
    let config_dir = env.data.path().join("config/t/nginx");
    HttpVhost {
        path: env.nginx.prefix().join(format!("conf.d/hand-{site}.conf")),
        text: render::nginx_vhost(&engine::scripts::vhost_spec(
            nginx,
            &platform,
            &site_record,
            web,
            &config_dir,
            None,
            None,
            render::VhostState::Serving,
        )),
    }
}

fn write_json(json: &serde_json::Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("php.json"),
        serde_json::to_string_pretty(json).unwrap(),
    )
    .unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    u128::from_le_bytes(bytes)
}

fn main() {
    let sites: usize = std::env::var("FJORD_BENCH_SITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let t = token();
    let fpm = php_fpm::PrivatePhpFpm::start();
    let mut env = harness::Env::bare();
    let php = fpm.service_arg();
    env.add_server_on(
        &env.nginx,
        "t",
        &["--db", "mysql", "--php", &php, "--web-group", "nogroup"],
    );
    env.dispatch_until_idle(&[]);
    let code = env.platform_path("wp");
    env.ok(&[
        "platform",
        "add",
        "wp",
        "--server",
        "t",
        "--path",
        &code,
        "--kind",
        "wordpress",
        "--from",
        "/usr/share/wordpress",
    ]);
    env.dispatch_until_idle(&[]);
    env.start_dispatcher(&[]);
    let code = PathBuf::from(code);
    let mut hand_users = Vec::new();

    // (a) site add → first 200, alternating fjord and by hand.
    let (mut fjord_s, mut hand_s) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let site = format!("{t}-f{round}.bench.test");
        let started = Instant::now();
        env.ok(&["site", "add", &site, "--platform", "wp", "--title", "Bench"]);
        wait_served(env.nginx.port, &site, "Bench");
        fjord_s.push(started.elapsed().as_secs_f64());
        let site = format!("{t}-h{round}.bench.test");
        let user = format!("{t}h{round}");
        hand_users.push((user.clone(), site.replace(['.', '-'], "_")));
        hand_s.push(by_hand(&env, &fpm, &code, &site, "Bench", &user).as_secs_f64());
    }
    let (fjord_a, hand_a) = (median(&mut fjord_s), median(&mut hand_s));
    let ratio_a = fjord_a / hand_a;
    println!(
        "(a) site add → first 200: fjord {fjord_a:.2} s, by hand {hand_a:.2} s: {ratio_a:.2}× of by hand (target ≤ 1.2×)"
    );
    let mut json = serde_json::json!({
        "site_add_to_first_200": { "fjord_s": fjord_a, "by_hand_s": hand_a, "ratio": ratio_a, "target_ratio_max": 1.2, "rounds": ROUNDS },
    });
    write_json(&json);

    // (b) N sites, each with its own pool and user.
    eprintln!("bench: installing {sites} WordPress sites");
    let names: Vec<String> = (0..sites).map(|i| format!("{t}-s{i}.bench.test")).collect();
    for chunk in names.chunks(50) {
        for name in chunk {
            env.ok(&["site", "add", name, "--platform", "wp", "--title", "Bench"]);
        }
        let last = chunk.last().unwrap();
        wait_served(env.nginx.port, last, "Bench");
    }
    for name in &names {
        wait_served(env.nginx.port, name, "Bench");
    }
    // Idle: every ondemand worker ends after 10 s without a request.
    std::thread::sleep(Duration::from_secs(15));
    let master: u32 = std::fs::read_to_string(fpm.prefix().join("php-fpm.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let idle_rss_mb = tree_rss_kb(master) as f64 / 1024.0;
    println!(
        "(b) {sites} sites with a pool and a user each, idle: php-fpm resident {idle_rss_mb:.1} MB (target < 64 MB)"
    );
    let mut first = Vec::new();
    for name in names.iter().step_by((sites / 100).max(1)) {
        let started = Instant::now();
        let (status, _, _) = harness::http_get(env.nginx.port, name, "/");
        assert_eq!(status, 200);
        first.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    first.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (p50, p99) = (percentile(&first, 0.5), percentile(&first, 0.99));
    println!(
        "    first request to an idle site ({} sites): p50 {p50:.0} ms, p99 {p99:.0} ms (target p99 < 300 ms)",
        first.len()
    );
    json["idle_sites"] = serde_json::json!({ "sites": sites, "php_fpm_rss_mb": idle_rss_mb, "target_mb": 64, "first_request_p50_ms": p50, "first_request_p99_ms": p99, "target_p99_ms": 300 });
    write_json(&json);

    // (c) One cron round: fjord's queue against one site after another, over all the sites
    // or the first FJORD_BENCH_CRON_SITES.
    let cron_count: usize = std::env::var("FJORD_BENCH_CRON_SITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(sites)
        .min(sites);
    let cron_sites = &names[..cron_count];
    env.kill_dispatchers();
    let fjord = Fjord::open(env.data.path()).unwrap();
    // Each site has had its first cron run already (right after its install); this round is
    // what every later one costs.
    for name in cron_sites {
        fjord.run_cron_now(name).unwrap();
    }
    // Marked due, each runs once: after its run it is next due an interval later.
    let started = Instant::now();
    let ran = fjord.run_due_crons("bench", now_ms(), 2).unwrap();
    let queue_s = started.elapsed().as_secs_f64();
    assert_eq!(ran, cron_sites.len());
    let started = Instant::now();
    for name in cron_sites {
        fjord.run_cron_now(name).unwrap();
        assert_eq!(fjord.run_due_crons("bench", now_ms(), 1).unwrap(), 1);
    }
    let serial_s = started.elapsed().as_secs_f64();
    let ratio_c = serial_s / queue_s;
    println!(
        "(c) one cron round over {} sites: fjord's queue {queue_s:.1} s, one after another {serial_s:.1} s: {ratio_c:.2}× faster",
        cron_sites.len()
    );

    json["cron_round"] = serde_json::json!({ "sites": cron_sites.len(), "queue_s": queue_s, "one_after_another_s": serial_s, "ratio": ratio_c });
    write_json(&json);
    println!("written to target/bench/php.json");

    // Clean up: fjord's sites (their databases and users), then the hand-made ones. The
    // deletes run to their end: a dispatcher killed under them would roll them back and
    // leave the sites.
    for name in fjord.sites(None).unwrap() {
        env.ok(&["site", "delete", name.name.as_str(), "--force"]);
    }
    env.dispatch_until_idle(&[]);
    for (user, db) in hand_users {
        let _ = Command::new("userdel").arg(&user).status();
        mysql(&format!(
            "DROP DATABASE IF EXISTS `{db}`; DROP USER IF EXISTS '{db}'@'localhost'"
        ));
    }
}
