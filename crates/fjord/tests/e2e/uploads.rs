//! What a site's visitors and editors meet in its files: an upload is served from the moment
//! it is written and read by no other site, nginx and PHP agree on how large it may be, and
//! an editor's copies and the files that tell an application's version are never served.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::browser::{Browser, path_of};
use crate::databases::{Cleanup, token};
use crate::harness::Env;
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::{log_in, php_server, wordpress_platform};

/// A WordPress user with a role and a password, made by the admin through the REST API.
fn add_user(browser: &mut Browser, nonce: &str, name: &str, role: &str, password: &str) {
    let body = serde_json::json!({
        "username": name,
        "email": format!("{name}@example.com"),
        "password": password,
        "roles": [role],
    });
    let made = browser.post(
        "/index.php?rest_route=/wp/v2/users",
        &[("Content-Type", "application/json"), ("X-WP-Nonce", nonce)],
        body.to_string().as_bytes(),
    );
    assert_eq!(made.status, 201, "{}", made.body);
}

/// Logs in through WordPress's own login form; returns the REST nonce of the dashboard.
fn log_in_with_password(browser: &mut Browser, name: &str, password: &str) -> String {
    browser
        .cookies
        .insert("wordpress_test_cookie".into(), "WP%20Cookie%20check".into());
    let form = format!("log={name}&pwd={password}&wp-submit=Log+In&testcookie=1");
    let login = browser.post(
        "/wp-login.php",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(login.status, 302, "{}", login.body);
    // WordPress's own way to hand a logged-in user a REST nonce.
    let nonce = browser.get("/wp-admin/admin-ajax.php?action=rest-nonce");
    assert_eq!(nonce.status, 200, "{}", nonce.body);
    nonce.body.trim().to_string()
}

/// Uploads `content` as `file` to the media library; (status, body).
fn upload(
    browser: &mut Browser,
    nonce: &str,
    file: &str,
    kind: &str,
    content: &[u8],
) -> (u16, String) {
    let disposition = format!("attachment; filename=\"{file}\"");
    let response = browser.post(
        "/index.php?rest_route=/wp/v2/media",
        &[
            ("Content-Type", kind),
            ("Content-Disposition", &disposition),
            ("X-WP-Nonce", nonce),
        ],
        content,
    );
    (response.status, response.body)
}

/// The smallest PNG image: one transparent pixel.
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// Reads a path as a site's user would, with its own groups: whether it could.
fn readable_by(user: &str, path: &std::path::Path) -> bool {
    Command::new("setpriv")
        .args(["--reuid", user, "--regid", user, "--init-groups", "cat"])
        .arg(path)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn an_editors_upload_is_served_at_once_up_to_the_sites_limit_and_no_other_site_reads_it() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    wordpress_platform(&env, "wp");
    let (blog, other) = (format!("{t}-media.wp.test"), format!("{t}-other.wp.test"));
    for site in [&blog, &other] {
        env.ok(&["site", "add", site, "--platform", "wp", "--title", "Media"]);
    }
    env.dispatch_until_idle(&[]);
    let site = env.json(&["site", "show", &blog]);
    assert_eq!(site["status"], "installed", "{site}");
    assert_eq!(
        (&site["upload_limit"], &site["upload_limit_of"]),
        (&serde_json::json!("64M"), &serde_json::json!("default")),
        "{site}"
    );

    let mut admin = Browser::new(env.nginx.port, &blog);
    let admin_nonce = log_in(&env, &mut admin, &blog);
    add_user(
        &mut admin,
        &admin_nonce,
        "ed",
        "editor",
        "an-editors-long-password",
    );
    let mut editor = Browser::new(env.nginx.port, &blog);
    let nonce = log_in_with_password(&mut editor, "ed", "an-editors-long-password");

    // An image, then 8 MB: each taken, and served at once (no verify in between).
    let big: Vec<u8> = (0..8 << 20).map(|i| b"fjord uploads\n"[i % 14]).collect();
    let mut uploaded = Vec::new();
    for (file, kind, content) in [
        ("pixel.png", "image/png", PIXEL_PNG),
        ("big.txt", "text/plain", big.as_slice()),
    ] {
        let (status, body) = upload(&mut editor, &nonce, file, kind, content);
        assert!(matches!(status, 200 | 201), "{file}: {status} {body}");
        let media: serde_json::Value = serde_json::from_str(&body).unwrap();
        let url = media["source_url"].as_str().unwrap().to_string();
        let served = Browser::new(env.nginx.port, &blog).get(&path_of(&url));
        assert_eq!(served.status, 200, "{url} at once: {}", served.body);
        let length = content.len().to_string();
        assert_eq!(
            served.header("Content-Length"),
            Some(length.as_str()),
            "{url}"
        );
        uploaded.push(url);
    }

    let files = env.docroot("wp", &blog);
    let on_disk = files.join(path_of(&uploaded[1]).trim_start_matches("/site-content/"));
    assert!(on_disk.is_file(), "{}", on_disk.display());
    // An editor's copy beside an upload is not served (the site's files prefix too), nor a
    // copy of the code's config; the code's assets are.
    let copy = on_disk.with_file_name("big.txt.bak");
    std::fs::copy(&on_disk, &copy).unwrap();
    let copy_url = path_of(&uploaded[1]).replace("big.txt", "big.txt.bak");
    let platform_dir = std::path::PathBuf::from(env.platform_path("wp"));
    std::fs::write(platform_dir.join("wp-config.php~"), "<?php // DB_PASSWORD").unwrap();
    for (path, wanted) in [
        (copy_url.as_str(), 404),
        ("/wp-config.php~", 404),
        ("/wp-includes/css/buttons.min.css", 200),
    ] {
        assert_eq!(env.nginx.get(&blog, path).0, wanted, "{path}");
    }
    std::fs::remove_file(&copy).unwrap();
    std::fs::remove_file(platform_dir.join("wp-config.php~")).unwrap();

    // No other site reads it: not its PHP (through its pool), not its user.
    let platform = platform_dir;
    std::fs::write(
        platform.join("fjord-peek.php"),
        "<?php echo @file_get_contents($_GET['f']) === false ? 'denied' : 'read';",
    )
    .unwrap();
    let (status, _, body) = env
        .nginx
        .get(&other, &format!("/fjord-peek.php?f={}", on_disk.display()));
    assert_eq!((status, body.as_str()), (200, "denied"));
    let other_user = users_name(std::fs::metadata(env.docroot("wp", &other)).unwrap().uid());
    let blog_user = users_name(std::fs::metadata(&files).unwrap().uid());
    assert!(readable_by(&blog_user, &on_disk), "its own user reads it");
    assert!(
        !readable_by(&other_user, &on_disk),
        "{other_user} read the upload"
    );
    std::fs::remove_file(platform.join("fjord-peek.php")).unwrap();

    // Over the site's own limit: refused by nginx before PHP reads it.
    env.ok(&["site", "edit", &blog, "--upload-limit", "4M"]);
    env.dispatch_until_idle(&[]);
    let site = env.json(&["site", "show", &blog]);
    assert_eq!(site["upload_limit"], "4M", "{site}");
    let (status, body) = upload(
        &mut editor,
        &nonce,
        "over.txt",
        "text/plain",
        &big[..6 << 20],
    );
    assert_eq!(status, 413, "{body}");
    let (status, body) = upload(
        &mut editor,
        &nonce,
        "under.txt",
        "text/plain",
        &big[..3 << 20],
    );
    assert!(matches!(status, 200 | 201), "{status} {body}");

    // A restore ends with the same bits (an archive's directories come back without
    // setgid): what the site writes next is served at once too.
    env.ok(&["site", "backup", &blog]);
    env.dispatch_until_idle(&[]);
    env.ok(&["site", "restore", &blog]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.json(&["site", "show", &blog])["status"], "installed");
    let month = on_disk.parent().unwrap();
    assert_eq!(
        std::fs::metadata(month).unwrap().mode() & 0o7777,
        0o2750,
        "{}",
        month.display()
    );
    let mut editor = Browser::new(env.nginx.port, &blog);
    let nonce = log_in_with_password(&mut editor, "ed", "an-editors-long-password");
    let (status, body) = upload(
        &mut editor,
        &nonce,
        "after.txt",
        "text/plain",
        &big[..1 << 20],
    );
    assert!(matches!(status, 200 | 201), "{status} {body}");
    let media: serde_json::Value = serde_json::from_str(&body).unwrap();
    let url = media["source_url"].as_str().unwrap();
    let served = Browser::new(env.nginx.port, &blog).get(&path_of(url));
    assert_eq!(served.status, 200, "{url} after a restore");

    // A limit that is no size is refused, naming the value and the rule.
    let refused = env.fails(&["site", "edit", &blog, "--upload-limit", "5T"]);
    assert!(refused.contains("upload limit \"5T\""), "{refused}");

    // The platform's limit: taken by the site without one of its own, at once.
    let mut visitor = Browser::new(env.nginx.port, &other);
    let post = |visitor: &mut Browser, size: usize| {
        visitor
            .post(
                "/index.php",
                &[("Content-Type", "text/plain")],
                &big[..size],
            )
            .status
    };
    assert_ne!(post(&mut visitor, (3 << 20) + 4096), 413);
    // One platform verify rewrites every site's vhost and pool: no task per site.
    let newest = |env: &Env| env.json(&["task", "list", "--limit", "1"])[0]["id"].as_i64();
    let before = newest(&env).unwrap();
    let out = env.ok(&["platform", "edit", "wp", "--upload-limit", "2M"]);
    assert!(
        out.contains("its verify rewrites its sites' config"),
        "{out}"
    );
    let queued: Vec<serde_json::Value> = env
        .json(&["task", "list", "--limit", "20"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["id"].as_i64().unwrap() > before)
        .cloned()
        .collect();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(
        (&queued[0]["kind"], &queued[0]["target"]["name"]),
        (
            &serde_json::json!("platform-verify"),
            &serde_json::json!("wp")
        ),
        "{queued:?}"
    );
    env.dispatch_until_idle(&[]);
    let site = env.json(&["site", "show", &other]);
    assert_eq!(
        (&site["upload_limit"], &site["upload_limit_of"]),
        (&serde_json::json!("2M"), &serde_json::json!("platform")),
        "{site}"
    );
    assert_eq!(post(&mut visitor, (3 << 20) + 4096), 413);
    assert_eq!(env.json(&["site", "show", &blog])["upload_limit"], "4M");

    // An edit whose verify fails puts the platform's limit back: what its sites still take.
    env.ok(&["platform", "edit", "wp", "--upload-limit", "8M"]);
    let edit = newest(&env).unwrap();
    env.dispatch_until_idle(&["fail-after:platform-verify:1"]);
    assert_eq!(env.task(edit)["status"], "failed", "{}", env.log(edit));
    assert_eq!(env.json(&["platform", "show", "wp"])["upload_limit"], "2M");
    assert_eq!(post(&mut visitor, (3 << 20) + 4096), 413);

    env.ok(&["site", "delete", &blog, "--force"]);
    env.ok(&["site", "delete", &other, "--force"]);
    env.dispatch_until_idle(&[]);
}

fn users_name(uid: u32) -> String {
    let out = Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Names no site serves, whatever its kind, and an asset beside each that stays served.
const NEVER_SERVED: &[&str] = &[
    "settings.php~",
    "sites/default/settings.php~",
    "wp-config.php.bak",
    "index.php.orig",
    "settings.php.save",
    ".settings.php.swp",
    "settings.php.swp",
    "settings.php.swo",
    "config.old",
    "core/CHANGELOG.txt",
    "CHANGELOG.txt",
    "core/INSTALL.txt",
    "core/INSTALL.mysql.txt",
    "UPGRADE.txt",
    "core/UPDATE.txt",
    "core/MAINTAINERS.txt",
    "core/LICENSE.txt",
    "core/COPYRIGHT.txt",
    "modules/contrib/foo/README.md",
    "composer.json",
    "composer.lock",
    "%23settings.php%23",
];

const SERVED: &[&str] = &[
    "robots.txt",
    "core/misc/drupal.js",
    "themes/a/style.css",
    "wp-content/uploads/notes.txt",
    "index.html",
];

#[test]
fn editor_copies_and_version_files_are_never_served_and_assets_are() {
    let env = Env::new();
    env.ok(&["site", "add", "copies.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let docroot = env.docroot("p1", "copies.example");
    for name in NEVER_SERVED.iter().chain(SERVED) {
        let path = docroot.join(name.replace("%23", "#"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "Drupal 10.1.6, 2023-11-01\n").unwrap();
    }
    // Files written after the install: readable by nginx as the site's files are.
    env.ok(&["site", "verify", "copies.example"]);
    env.dispatch_until_idle(&[]);
    let mut wrong = Vec::new();
    for name in NEVER_SERVED {
        let (status, _, _) = env.nginx.get("copies.example", &format!("/{name}"));
        if !matches!(status, 403 | 404) {
            wrong.push(format!("/{name} answered {status}"));
        }
    }
    for name in SERVED {
        let (status, _, _) = env.nginx.get("copies.example", &format!("/{name}"));
        if status != 200 {
            wrong.push(format!("/{name} answered {status}, not 200"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
