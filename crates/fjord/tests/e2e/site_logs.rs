//! Each site's own logs: nginx's access and error logs and its PHP's, in a log dir of the
//! site's, read by the site's group and no other site, rotated by the dispatcher, and with no
//! login token in any line.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::browser::{Browser, path_of};
use crate::databases::{Cleanup, token};
use crate::harness::{Env, walk};
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::{php_server, wordpress_platform};

const APP: &str = r#"<?php
echo "hello from ", getenv('FJORD_SITE_DIR'), "\n";
"#;

const WARN: &str = r#"<?php
trigger_error('fjord-test-warning from ' . getenv('FJORD_SITE_DIR'), E_USER_WARNING);
echo "warned\n";
"#;

/// Reads a file from the site's own PHP: whether it could.
const READ: &str = r#"<?php
echo 'read=', @file_get_contents($_GET['f']) === false ? 'no' : 'yes', "\n";
"#;

/// Reads a path as a site's user would, with its own groups: whether it could.
fn readable_by(user: &str, path: &Path) -> bool {
    Command::new("setpriv")
        .args(["--reuid", user, "--regid", user, "--init-groups", "cat"])
        .arg(path)
        .output()
        .unwrap()
        .status
        .success()
}

/// A site's log dir: the only `logs/<user>` whose access log holds `marker`, found after a
/// request carrying it.
fn log_dir_of(env: &Env, site: &str) -> PathBuf {
    let marker = format!("find-{}", token());
    let (status, _, _) = env.nginx.get(site, &format!("/?{marker}"));
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<PathBuf> = std::fs::read_dir(env.data.path().join("logs"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|d| {
                std::fs::read_to_string(d.join("access.log")).is_ok_and(|log| log.contains(&marker))
            })
            .collect();
        if found.len() == 1 {
            return found[0].clone();
        }
        assert!(
            found.len() < 2,
            "{marker} in several sites' logs: {found:?}"
        );
        assert!(Instant::now() < deadline, "no access log holds {marker}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `file` holds `text`.
fn wait_for(file: &Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(file).unwrap_or_default();
        if log.contains(text) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held {text}:\n{log}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file under `dirs`, as text.
fn every_log(dirs: &[&Path]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in dirs {
        let mut files = std::collections::BTreeMap::new();
        walk(dir, &mut files);
        for path in files.keys() {
            let path = PathBuf::from(path);
            if path.is_file() {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                out.push((path.display().to_string(), text));
            }
        }
    }
    out
}

#[test]
fn each_site_logs_to_its_own_files_read_by_no_other_site_rotated_and_without_tokens() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    let code = env.platforms.path().join("app");
    std::fs::create_dir(&code).unwrap();
    for (file, text) in [("index.php", APP), ("warn.php", WARN), ("read.php", READ)] {
        std::fs::write(code.join(file), text).unwrap();
    }
    let code_path = code.display().to_string();
    env.ok(&[
        "platform", "add", "app", "--server", "t", "--path", &code_path, "--kind", "php",
    ]);
    wordpress_platform(&env, "wp");
    let (a, b, blog) = (
        format!("{t}-a.logs.test"),
        format!("{t}-b.logs.test"),
        format!("{t}-blog.logs.test"),
    );
    for site in [&a, &b] {
        env.ok(&["site", "add", site, "--platform", "app"]);
    }
    env.ok(&["site", "add", &blog, "--platform", "wp", "--title", "Logs"]);
    env.dispatch_until_idle(&[]);
    let (dir_a, dir_b) = (log_dir_of(&env, &a), log_dir_of(&env, &b));
    let user_of = |dir: &Path| dir.file_name().unwrap().to_string_lossy().into_owned();
    let (user_a, user_b) = (user_of(&dir_a), user_of(&dir_b));

    // Requests land in their own site's access log, and in no other's.
    for (site, marker) in [(&a, "only-for-a"), (&b, "only-for-b")] {
        assert_eq!(env.nginx.get(site, &format!("/?{marker}")).0, 200);
    }
    let log_a = wait_for(&dir_a.join("access.log"), "only-for-a");
    let log_b = wait_for(&dir_b.join("access.log"), "only-for-b");
    assert!(!log_a.contains("only-for-b"), "{log_a}");
    assert!(!log_b.contains("only-for-a"), "{log_b}");

    // A PHP warning lands in its site's PHP log.
    let (status, _, body) = env.nginx.get(&a, "/warn.php");
    assert_eq!(status, 200, "{body}");
    let php_a = wait_for(&dir_a.join("php-error.log"), "fjord-test-warning");
    assert!(php_a.contains(&a), "{php_a}");
    assert!(
        !std::fs::read_to_string(dir_b.join("php-error.log"))
            .unwrap()
            .contains("fjord-test-warning")
    );

    // The site's group reads its logs; no other site does, by its user or from its PHP.
    for (dir, user) in [(&dir_a, &user_a), (&dir_b, &user_b)] {
        let meta = std::fs::metadata(dir).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o751,
            "{}",
            dir.display()
        );
        assert_eq!(meta.uid(), 0);
        for file in ["access.log", "error.log", "php-error.log"] {
            let meta = std::fs::metadata(dir.join(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "{file}");
            assert!(
                readable_by(user, &dir.join(file)),
                "{user} reads its {file}"
            );
        }
    }
    for file in ["access.log", "error.log", "php-error.log"] {
        assert!(
            !readable_by(&user_b, &dir_a.join(file)),
            "B reads A's {file}"
        );
        assert!(
            !readable_by(&user_a, &dir_b.join(file)),
            "A reads B's {file}"
        );
    }
    assert!(!readable_by(&user_b, &dir_a), "B lists A's log dir");
    let peek = |site: &str, file: &Path| {
        env.nginx
            .get(site, &format!("/read.php?f={}", file.display()))
            .2
    };
    assert!(
        peek(&b, &dir_a.join("access.log")).contains("read=no"),
        "B's PHP reads A's access log"
    );

    // A login link's token is in no log: used, used again, and on a path that is missing.
    let link = env
        .ok(&["site", "login-link", &blog, "--no-wait"])
        .trim()
        .to_string();
    let secret = link.rsplit('=').next().unwrap().to_string();
    assert!(secret.len() >= 32, "{link}");
    env.dispatch_until_idle(&[]);
    let mut browser = Browser::new(env.nginx.port, &blog);
    let login = browser.get(&path_of(&link));
    assert_eq!(login.status, 302, "{}", login.body);
    browser.get("/wp-admin/");
    let mut stranger = Browser::new(env.nginx.port, &blog);
    assert_eq!(stranger.get(&path_of(&link)).status, 403);
    let drupal_like = "/user/reset/1/1700000000/DrupalHashSecret77/login";
    for path in [
        format!("/missing.png?fjord-login={secret}"),
        format!("/wp-content/missing.css?x=1&FJORD-LOGIN={secret}"),
        drupal_like.to_string(),
        format!("/?q=user/reset/1/1700000000/DrupalHashSecret77&pass-reset-token={secret}"),
    ] {
        stranger.get(&path);
    }
    let dir_blog = log_dir_of(&env, &blog);
    wait_for(&dir_blog.join("access.log"), "[secret]");
    let logs = every_log(&[
        &env.data.path().join("logs"),
        &env.nginx.prefix().join("logs"),
        fpm.prefix(),
    ]);
    assert!(logs.iter().any(|(_, text)| text.contains("/?[secret]")));
    for (file, text) in &logs {
        assert!(
            !text.contains(&secret),
            "the login token is in {file}:\n{text}"
        );
        assert!(
            !text.contains("DrupalHashSecret77"),
            "a reset hash is in {file}:\n{text}"
        );
    }

    // `site logs`: the last lines, the PHP log, the error log.
    let shown = env.ok(&["site", "logs", &a, "--lines", "3"]);
    assert!(shown.lines().count() <= 3, "{shown}");
    assert!(shown.contains("/warn.php"), "{shown}");
    let shown = env.ok(&["site", "logs", &a, "--php"]);
    assert!(shown.contains("fjord-test-warning"), "{shown}");
    env.ok(&["site", "logs", &a, "--error"]);
    assert!(
        env.fails(&["site", "logs", &format!("{t}-none.logs.test")])
            .contains("not found")
    );

    // Rotation keeps the configured count, and nginx writes to the new file after it.
    for round in 0..4 {
        let marker = format!("round-{round}");
        assert_eq!(env.nginx.get(&a, &format!("/?{marker}")).0, 200);
        wait_for(&dir_a.join("access.log"), &marker);
        env.ok(&[
            "dispatch",
            "--until-idle",
            "--log-keep",
            "2",
            "--log-rotate-bytes",
            "1",
        ]);
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir_a)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("access.log"))
        .collect();
    names.sort();
    assert_eq!(names, ["access.log", "access.log.1", "access.log.2"]);
    let after = "after-rotation";
    assert_eq!(env.nginx.get(&a, &format!("/?{after}")).0, 200);
    wait_for(&dir_a.join("access.log"), after);
    assert!(
        std::fs::read_to_string(dir_a.join("access.log.1"))
            .unwrap()
            .contains("round-3")
    );
    let meta = std::fs::metadata(dir_a.join("access.log")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert!(readable_by(&user_a, &dir_a.join("access.log")));
    assert!(!readable_by(&user_b, &dir_a.join("access.log")));
    // PHP logs on into its new file.
    env.nginx.get(&a, "/warn.php");
    wait_for(&dir_a.join("php-error.log"), "fjord-test-warning");

    // A site's logs go with it.
    for site in [&a, &b, &blog] {
        env.ok(&["site", "delete", site, "--force"]);
    }
    env.dispatch_until_idle(&[]);
    for dir in [&dir_a, &dir_b, &dir_blog] {
        assert!(!dir.exists(), "{} outlives its site", dir.display());
    }
}

/// A site made before fjord kept logs has no log dir until its next verify (here: removed,
/// as on an upgrade). Each task that writes its vhost without a verify first makes the dir
/// before the vhost names it: nginx's test fails on a log in a missing dir.
#[test]
fn a_site_without_a_log_dir_gets_one_before_a_vhost_names_it() {
    let env = Env::new();
    let site = format!("{}-old.logs.test", token());
    env.ok(&["site", "add", &site, "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let dir = log_dir_of(&env, &site);
    env.ok(&["site", "backup", &site]);
    env.dispatch_until_idle(&[]);
    for (what, args) in [
        (
            "platform edit",
            vec!["platform", "edit", "p1", "--upload-limit", "2M"],
        ),
        ("restore", vec!["site", "restore", &site]),
        ("disable", vec!["site", "disable", &site]),
        ("enable", vec!["site", "enable", &site]),
    ] {
        std::fs::remove_dir_all(&dir).unwrap();
        env.ok(&args);
        env.dispatch_until_idle(&[]);
        // The task just run (a platform edit queues its platform's verify).
        let task = env.json(&["task", "list", "--limit", "1"])[0].clone();
        let id = task["id"].as_i64().unwrap();
        assert_eq!(task["status"], "success", "{what}: {task}\n{}", env.log(id));
        let meta = std::fs::metadata(&dir).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o7777, 0o751, "{what}");
        let marker = format!("after-{}", what.replace(' ', "-"));
        env.nginx.get(&site, &format!("/?{marker}"));
        wait_for(&dir.join("access.log"), &marker);
    }
    env.ok(&["site", "delete", &site, "--force"]);
    env.dispatch_until_idle(&[]);
    assert!(!dir.exists(), "{} outlives its site", dir.display());
}

/// The open-files limit of a process, soft and hard.
fn open_files_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(3)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    (fields[0], fields[1])
}

/// nginx's master holds each site's two log files and opens them again at a reload: a master
/// started with a soft limit too low (64 here, as a systemd unit's 1,024 with a few hundred
/// sites) failed every reload past a few dozen sites and kept its old config. fjord
/// gives it what the reload needs first, and server verify says what the limit allows.
#[test]
fn an_nginx_short_of_open_files_is_given_them_before_its_reload() {
    let env = Env::new();
    let pid_file = env.nginx.prefix().join("nginx.pid");
    let master: u32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The soft limit, as systemd gives a service (raising a hard limit takes a capability
    // a container may not have).
    let (_, hard) = open_files_limits(master);
    let lowered = Command::new("prlimit")
        .args(["--pid", &master.to_string(), &format!("--nofile=64:{hard}")])
        .status()
        .unwrap();
    assert!(lowered.success());
    let sites: Vec<String> = (0..30)
        .map(|i| format!("{}-{i}.open-files.test", token()))
        .collect();
    for site in &sites {
        env.ok(&["site", "add", site, "--platform", "p1"]);
    }
    env.dispatch_until_idle(&[]);
    for site in &sites {
        let (status, _, body) = env.nginx.get(site, "/");
        assert_eq!(status, 200, "{site}: {body}");
    }
    let (soft, hard) = open_files_limits(master);
    assert!(
        soft >= 60 * 2 && hard >= soft,
        "the master's limit is {soft} (hard {hard})"
    );
    let held = std::fs::read_dir(format!("/proc/{master}/fd"))
        .unwrap()
        .count();
    assert!(held >= 60, "the master holds {held} files for 30 sites");
    let id = env.queue(&["server", "verify", "t"]);
    env.dispatch_until_idle(&[]);
    let log = env.log(id);
    assert!(
        log.contains(&format!("may open {soft} files")) && log.contains("30 sites"),
        "{log}"
    );
}
