//! WordPress from Debian's package: install, log in, posts, backups and restores, clones and
//! renames, its cron, a migrate under comments, and sites found on a platform.

use crate::browser::{Browser, path_of};
use crate::databases::{Cleanup, token};
use crate::harness::{Env, mysql};
use crate::php_fpm::PrivatePhpFpm;

use super::{last_task_log, php_server, pool_users, user_exists};

#[test]
fn wordpress_from_debians_package_installs_and_serves_its_title() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    let blog = format!("{t}-blog.wp.test");
    wordpress_platform(&env, "wp");
    let path = env.platform_path("wp");
    let platform = env.json(&["platform", "show", "wp"]);
    assert_eq!(platform["kind"], "wordpress", "{platform}");
    assert_eq!(platform["version"], "6.1.9", "{platform}");
    let packages = platform["packages"].as_array().unwrap();
    assert!(
        packages.iter().any(|p| p["kind"] == "theme"
            && p["name"] == "twentytwentythree"
            && p["version"].is_string()),
        "{platform}"
    );
    env.ok(&[
        "site",
        "add",
        &blog,
        "--platform",
        "wp",
        "--title",
        "Fjord's Test Blog",
        "--admin-email",
        "owner@example.com",
    ]);
    env.dispatch_until_idle(&[]);
    let site = env.json(&["site", "show", &blog]);
    assert_eq!(site["status"], "installed", "{}", last_task_log(&env));
    let (status, _, body) = env.nginx.get(&blog, "/");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<title>Fjord&#039;s Test Blog</title>"),
        "{body}\nphp-fpm log: {}",
        std::fs::read_to_string(fpm.prefix().join("error.log")).unwrap_or_default()
    );
    // The admin password was generated and never logged.
    let tasks = env.json(&["task", "list"]);
    let install = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "site-install")
        .unwrap();
    let log = env.ok(&["task", "log", &install["id"].to_string()]);
    assert!(log.contains("installed; admin user admin"), "{log}");
    assert!(!log.to_lowercase().contains("password"), "{log}");

    // A theme of the site's own is listed as the site's.
    let theme = std::path::Path::new(&path)
        .join("sites")
        .join(&blog)
        .join("themes/own-theme");
    std::fs::create_dir_all(&theme).unwrap();
    std::fs::write(
        theme.join("style.css"),
        "/*\nTheme Name: Own Theme\nVersion: 2.1\n*/\n",
    )
    .unwrap();
    env.ok(&["site", "verify", &blog]);
    env.dispatch_until_idle(&[]);
    let packages = &env.json(&["site", "show", &blog])["packages"];
    assert_eq!(
        packages[0]["name"],
        "own-theme",
        "{packages} {}",
        last_task_log(&env)
    );
    assert_eq!(packages[0]["version"], "2.1", "{packages}");

    // Delete: user, pool, vhost, files and database gone.
    let (db, users) = (db_of(&env, &blog), pool_users(&fpm));
    env.ok(&["site", "delete", &blog, "--force"]);
    env.dispatch_until_idle(&[]);
    assert!(pool_users(&fpm).is_empty());
    for user in &users {
        assert!(!user_exists(user), "user {user} is left");
    }
    assert_eq!(mysql(&format!("SHOW DATABASES LIKE '{db}'")), "");
    let site_dirs = std::path::Path::new(&path);
    assert!(!site_dirs.join("sites").join(&blog).exists());
    assert!(!site_dirs.join("private").join(&blog).exists());
    assert_eq!(env.nginx.get(&blog, "/").0, 404);
}

/// Logs in through a one-time login link; returns the REST nonce of the logged-in admin.
pub fn log_in(env: &Env, browser: &mut Browser, site: &str) -> String {
    let link = env
        .ok(&["site", "login-link", site, "--no-wait"])
        .trim()
        .to_string();
    assert!(
        link.starts_with(&format!("http://{site}:{}/?fjord-login=", env.nginx.port)),
        "{link}"
    );
    env.dispatch_until_idle(&[]);
    let login = browser.get(&path_of(&link));
    assert_eq!(login.status, 302, "{}", login.body);
    assert!(
        login
            .header("Location")
            .unwrap_or_default()
            .contains("/wp-admin/")
    );
    let admin = browser.get("/wp-admin/");
    assert_eq!(
        admin.status, 200,
        "the session cookie reaches /wp-admin/: {}",
        admin.body
    );
    assert!(admin.body.contains("Dashboard"), "{}", admin.body);
    // A used link is refused, as is a link that was never handed out.
    let mut stranger = Browser::new(browser.port, site);
    assert_eq!(stranger.get(&path_of(&link)).status, 403);
    assert_eq!(stranger.get("/?fjord-login=0123456789abcdef").status, 403);
    let nonce_at = admin
        .body
        .find("\"nonce\":\"")
        .expect("the REST nonce on the dashboard");
    let rest = &admin.body[nonce_at + 9..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Creates or updates a post through WordPress's REST API; returns its id.
fn save_post(browser: &mut Browser, nonce: &str, id: Option<i64>, title: &str) -> i64 {
    let path = match id {
        Some(id) => format!("/index.php?rest_route=/wp/v2/posts/{id}"),
        None => "/index.php?rest_route=/wp/v2/posts".to_string(),
    };
    let body = serde_json::json!({ "title": title, "content": format!("<p>{title}</p>"), "status": "publish" });
    let response = browser.post(
        &path,
        &[("Content-Type", "application/json"), ("X-WP-Nonce", nonce)],
        body.to_string().as_bytes(),
    );
    assert!(
        matches!(response.status, 200 | 201),
        "{}: {}",
        response.status,
        response.body
    );
    let saved: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    saved["id"].as_i64().unwrap()
}

#[test]
fn wordpress_login_link_post_backup_and_restore() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    let blog = format!("{t}-news.wp.test");
    wordpress_platform(&env, "wp");
    env.ok(&["site", "add", &blog, "--platform", "wp", "--title", "News"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.json(&["site", "show", &blog])["status"],
        "installed",
        "{}",
        last_task_log(&env)
    );

    let mut browser = Browser::new(env.nginx.port, &blog);
    let nonce = log_in(&env, &mut browser, &blog);
    let post = save_post(&mut browser, &nonce, None, "First words");
    let page = browser.get(&format!("/?p={post}"));
    assert!(page.body.contains("First words"), "{}", page.body);

    env.ok(&["site", "backup", &blog]);
    env.dispatch_until_idle(&[]);
    save_post(&mut browser, &nonce, Some(post), "Second thoughts");
    assert!(
        browser
            .get(&format!("/?p={post}"))
            .body
            .contains("Second thoughts")
    );

    env.ok(&["site", "restore", &blog]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.json(&["site", "show", &blog])["status"],
        "installed",
        "{}",
        last_task_log(&env)
    );
    let page = Browser::new(env.nginx.port, &blog).get(&format!("/?p={post}"));
    assert!(
        page.body.contains("First words"),
        "the post as at backup: {}",
        page.body
    );
    assert!(!page.body.contains("Second thoughts"));

    env.ok(&["site", "delete", &blog, "--force"]);
    env.dispatch_until_idle(&[]);
}

/// Adds WordPress platform `name` on server `t`, copied from Debian's package.
pub fn wordpress_platform(env: &Env, name: &str) {
    let path = env.platform_path(name);
    env.ok(&[
        "platform",
        "add",
        name,
        "--server",
        "t",
        "--path",
        &path,
        "--kind",
        "wordpress",
        "--from",
        "/usr/share/wordpress",
    ]);
    env.dispatch_until_idle(&[]);
}

fn db_of(env: &Env, site: &str) -> String {
    env.json(&["site", "show", site])["database"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn wordpress_clone_and_rename_rewrite_every_link() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    wordpress_platform(&env, "wp1");
    wordpress_platform(&env, "wp2");
    let (src, copy, renamed) = (
        format!("{t}-src.wp.test"),
        format!("{t}-copy.wp.test"),
        format!("{t}-renamed.wp.test"),
    );
    env.ok(&[
        "site",
        "add",
        &src,
        "--platform",
        "wp1",
        "--title",
        "Source",
    ]);
    env.dispatch_until_idle(&[]);
    let mut browser = Browser::new(env.nginx.port, &src);
    let nonce = log_in(&env, &mut browser, &src);
    let post = save_post(
        &mut browser,
        &nonce,
        None,
        &format!("See http://{src}/about"),
    );
    // A URL inside a PHP-serialized option: its length changes with the URL.
    let src_db = db_of(&env, &src);
    let serialized = |host: &str| {
        let url = format!("http://{host}/x");
        format!("a:1:{{s:3:\"url\";s:{}:\"{url}\";}}", url.len())
    };
    mysql(&format!(
        "INSERT INTO `{src_db}`.wp_options (option_name, option_value, autoload) VALUES ('fjord_test', '{}', 'no')",
        serialized(&src).replace('"', "\\\"")
    ));

    env.ok(&["site", "clone", &src, &copy, "--platform", "wp2"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.json(&["site", "show", &copy])["status"],
        "installed",
        "{}",
        last_task_log(&env)
    );
    let source_page = env.nginx.get(&src, &format!("/?p={post}")).2;
    assert!(
        source_page.contains(&format!("http://{src}/about")),
        "{source_page}"
    );
    let (status, _, copy_page) = env.nginx.get(&copy, &format!("/?p={post}"));
    assert!(
        copy_page.contains(&format!("http://{copy}/about")),
        "{status} {copy_page}\n{}\n{}",
        last_task_log(&env),
        std::fs::read_to_string(fpm.prefix().join("error.log")).unwrap_or_default()
    );
    assert!(
        !copy_page.contains(&src),
        "the clone links back to its source:\n{copy_page}"
    );
    let copy_db = db_of(&env, &copy);
    assert_eq!(
        mysql(&format!(
            "SELECT option_value FROM `{copy_db}`.wp_options WHERE option_name = 'fjord_test'"
        )),
        serialized(&copy)
    );
    assert_eq!(
        mysql(&format!(
            "SELECT option_value FROM `{src_db}`.wp_options WHERE option_name = 'fjord_test'"
        )),
        serialized(&src),
        "the source is only read"
    );

    env.ok(&[
        "site",
        "migrate",
        &src,
        "--platform",
        "wp2",
        "--rename",
        &renamed,
    ]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.json(&["site", "show", &renamed])["status"],
        "installed",
        "{}",
        last_task_log(&env)
    );
    let page = env.nginx.get(&renamed, &format!("/?p={post}")).2;
    assert!(page.contains(&format!("http://{renamed}/about")), "{page}");
    assert!(!page.contains(&src), "{page}");
    assert_eq!(env.nginx.get(&src, "/").0, 404);
    // The old place's pool is gone: one pool per site.
    assert_eq!(fpm.pool_files().len(), 2, "{:?}", fpm.pool_files());

    for site in [&renamed, &copy] {
        env.ok(&["site", "delete", site, "--force"]);
    }
    env.dispatch_until_idle(&[]);
    assert!(fpm.pool_files().is_empty(), "{:?}", fpm.pool_files());
}

/// A must-use plugin of the test's own in the site's content dir: on a page view it schedules
/// an event (visitors never run cron: fjord does), whose hook records that it ran.
const EVENT_PLUGIN: &str = r#"<?php
add_action('fjord_test_event', function () {
    update_option('fjord_test_event_ran', 'yes');
});
add_action('init', function () {
    if (!get_option('fjord_test_event_ran') && !wp_next_scheduled('fjord_test_event')) {
        wp_schedule_single_event(time() - 60, 'fjord_test_event');
    }
});
"#;

#[test]
fn wordpress_cron_runs_a_scheduled_event_from_the_queue() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    wordpress_platform(&env, "wp");
    let blog = format!("{t}-cron.wp.test");
    env.ok(&["site", "add", &blog, "--platform", "wp"]);
    env.dispatch_until_idle(&[]);
    let plugin = std::path::Path::new(&env.platform_path("wp"))
        .join("sites")
        .join(&blog)
        .join("mu-plugins/test-event.php");
    std::fs::write(&plugin, EVENT_PLUGIN).unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let db = db_of(&env, &blog);
    let ran = || {
        mysql(&format!(
            "SELECT option_value FROM `{db}`.wp_options WHERE option_name = 'fjord_test_event_ran'"
        ))
    };
    // A page view schedules the event; visitors never run it (DISABLE_WP_CRON).
    assert_eq!(env.nginx.get(&blog, "/").0, 200);
    assert_eq!(ran(), "");

    env.ok(&["site", "cron", &blog, "--no-wait"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(ran(), "yes", "{}", env.ok(&["site", "show", &blog]));
    let cron = &env.json(&["site", "show", &blog])["cron"];
    assert_eq!(cron["last_ok"], true, "{cron}");
    assert_eq!(cron["every"], "1h", "{cron}");
    assert!(cron["next_run_ms"].as_i64().unwrap() > cron["last_run_ms"].as_i64().unwrap());
    // The run is recorded on the site, not as a task.
    let tasks = env.json(&["task", "list"]);
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["kind"].as_str().unwrap().contains("cron")),
        "{tasks}"
    );
    // A cron that fails is visible on the site.
    std::fs::write(&plugin, "<?php\nadd_action('init', function () { if (defined('DOING_CRON')) { throw new Exception('broken on purpose'); } });\n").unwrap();
    env.ok(&["site", "cron", &blog, "--every", "15m"]);
    env.ok(&["site", "cron", &blog, "--no-wait"]);
    env.dispatch_until_idle(&[]);
    let cron = &env.json(&["site", "show", &blog])["cron"];
    assert_eq!(cron["last_ok"], false, "{cron}");
    assert!(
        cron["last_message"]
            .as_str()
            .unwrap()
            .contains("broken on purpose"),
        "{cron}"
    );
    assert_eq!(cron["every"], "15m", "{cron}");

    let err = env.fails(&["site", "cron", &blog, "--every", "5"]);
    assert!(
        err.contains("cron interval") && err.contains("\"5\""),
        "{err}"
    );
    env.ok(&["site", "delete", &blog, "--force"]);
    env.dispatch_until_idle(&[]);
}

#[test]
fn comments_posted_all_through_a_wordpress_migrate_are_all_kept() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    wordpress_platform(&env, "wp1");
    wordpress_platform(&env, "wp2");
    let blog = format!("{t}-busy.wp.test");
    env.ok(&["site", "add", &blog, "--platform", "wp1", "--title", "Busy"]);
    env.dispatch_until_idle(&[]);
    // Everyone comments from 127.0.0.1 here: WordPress's flood control would refuse all but
    // the first comment every 15 s.
    let plugin = std::path::Path::new(&env.platform_path("wp1"))
        .join("sites")
        .join(&blog)
        .join("mu-plugins/no-flood.php");
    std::fs::write(
        &plugin,
        "<?php\nadd_filter('wp_is_comment_flood', '__return_false', 99);\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let db = db_of(&env, &blog);
    let post_id = mysql(&format!(
        "SELECT ID FROM `{db}`.wp_posts WHERE post_type = 'post' AND post_status = 'publish' ORDER BY ID LIMIT 1"
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicBool::new(false));
    // Comments taken at the new place so far: the writer goes on until there are a few,
    // however fast the move was.
    let taken_after_move = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let port = env.nginx.port;
    let writer = {
        let (stop, moved, blog, post_id, taken_after_move) = (
            stop.clone(),
            moved.clone(),
            blog.clone(),
            post_id.clone(),
            taken_after_move.clone(),
        );
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut acked_after_move = 0;
            let mut refused = 0;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = format!(
                    "comment_post_ID={post_id}&author=Writer&email=writer%40example.com&url=&comment=note-{n}-of-the-writer"
                );
                let response = Browser::new(port, &blog).post(
                    "/wp-comments-post.php",
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    body.as_bytes(),
                );
                match response.status {
                    302 => {
                        acked.push(format!("note-{n}-of-the-writer"));
                        if moved.load(Ordering::Relaxed) {
                            acked_after_move += 1;
                            taken_after_move.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    503 => refused += 1,
                    other => panic!("comment {n}: {other} {}", response.body),
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            (acked, acked_after_move, refused)
        })
    };
    let reader = {
        let (stop, blog) = (stop.clone(), blog.clone());
        std::thread::spawn(move || {
            let mut pages = 0;
            while !stop.load(Ordering::Relaxed) {
                let page = Browser::new(port, &blog).get("/");
                assert!(
                    page.status == 200 && page.error.is_none() && page.body.contains("<title>Busy"),
                    "{} a page failed during the move: {} {:?} {:?} ({} bytes) {}",
                    crate::readers::now(),
                    page.status,
                    page.error,
                    page.headers,
                    page.body.len(),
                    page.body
                );
                pages += 1;
            }
            pages
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    env.ok(&["site", "migrate", &blog, "--platform", "wp2"]);
    env.dispatch_until_idle(&[]);
    moved.store(true, Ordering::Relaxed);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while taken_after_move.load(Ordering::Relaxed) < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let (acked, acked_after_move, refused) = writer.join().unwrap();
    let pages = reader.join().unwrap();
    assert_eq!(
        env.json(&["site", "show", &blog])["platform"],
        "wp2",
        "{}",
        last_task_log(&env)
    );
    assert!(acked.len() >= 5, "{} comments acknowledged", acked.len());
    assert!(acked_after_move > 0, "the new place took no comment");
    let stored = mysql(&format!("SELECT comment_content FROM `{db}`.wp_comments"));
    let lost: Vec<&String> = acked
        .iter()
        .filter(|c| !stored.lines().any(|l| l == *c))
        .collect();
    assert!(lost.is_empty(), "acknowledged comments lost: {lost:?}");
    eprintln!(
        "{} comments acknowledged, {refused} refused while read-only, {pages} pages served",
        acked.len()
    );

    // While both places served, each rewrote WordPress's cached theme directories (absolute
    // paths, in the database they share); the old place may have written last. Its
    // platform is still there: the new place serves whole pages all the same.
    let theme = mysql(&format!(
        "SELECT option_value FROM `{db}`.wp_options WHERE option_name = 'stylesheet'"
    ));
    let old_themes = format!("{}/wp-content/themes", env.platform_path("wp1"));
    let roots = format!(
        "a:1:{{s:{}:\"{theme}\";s:{}:\"{old_themes}\";}}",
        theme.len(),
        old_themes.len()
    );
    for (name, value) in [
        ("_site_transient_theme_roots", roots.as_str()),
        ("_site_transient_timeout_theme_roots", "9999999999"),
        ("template_root", old_themes.as_str()),
    ] {
        mysql(&format!(
            "INSERT INTO `{db}`.wp_options (option_name, option_value, autoload) \
             VALUES ('{name}', '{value}', 'no') \
             ON DUPLICATE KEY UPDATE option_value = VALUES(option_value)"
        ));
    }
    // As WordPress leaves it: the active theme's root read from the transient.
    mysql(&format!(
        "DELETE FROM `{db}`.wp_options WHERE option_name = 'stylesheet_root'"
    ));
    let page = Browser::new(port, &blog).get("/");
    assert!(
        page.status == 200 && page.error.is_none() && page.body.contains("<title>Busy"),
        "with the old place's theme directories cached: {} {:?} ({} bytes)",
        page.status,
        page.error,
        page.body.len()
    );
    env.ok(&["site", "delete", &blog, "--force"]);
    env.dispatch_until_idle(&[]);
}

#[test]
fn wordpress_sites_found_on_a_platform_are_imported_with_their_database() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    // Installation A makes a site; installation B finds it in the same code base, as when a
    // platform is brought over from another machine.
    let (fpm_a, fpm_b) = (PrivatePhpFpm::start(), PrivatePhpFpm::start());
    let (a, b) = (Env::bare(), Env::bare());
    php_server(&a, &fpm_a);
    php_server(&b, &fpm_b);
    wordpress_platform(&a, "wp");
    let blog = format!("{t}-found.wp.test");
    a.ok(&["site", "add", &blog, "--platform", "wp", "--title", "Found"]);
    a.dispatch_until_idle(&[]);
    let db = db_of(&a, &blog);
    let path = a.platform_path("wp");
    // A directory that is not a site in fjord's layout is left alone.
    std::fs::create_dir(
        std::path::Path::new(&path)
            .join("sites")
            .join(format!("{t}-stray.wp.test")),
    )
    .unwrap();

    b.ok(&[
        "platform",
        "add",
        "wp",
        "--server",
        "t",
        "--path",
        &path,
        "--kind",
        "wordpress",
    ]);
    b.dispatch_until_idle(&[]);
    let site = b.json(&["site", "show", &blog]);
    assert_eq!(site["status"], "installed", "{}", last_task_log(&b));
    assert_eq!(site["database"]["name"], db.as_str(), "{site}");
    let (status, _, page) = b.nginx.get(&blog, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<title>Found"), "{page}");
    let sites = b.json(&["site", "list"]);
    assert_eq!(sites.as_array().unwrap().len(), 1, "{sites}");
    let tasks = b.json(&["task", "list"]);
    let verify = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "platform-verify")
        .unwrap();
    let log = b.ok(&["task", "log", &verify["id"].to_string()]);
    assert!(
        log.contains(&format!("skipped sites/{t}-stray.wp.test")),
        "{log}"
    );
    assert!(
        log.contains("wordpress 6.1"),
        "the platform's version: {log}"
    );

    b.ok(&["site", "delete", &blog, "--force"]);
    b.dispatch_until_idle(&[]);
    assert_eq!(mysql(&format!("SHOW DATABASES LIKE '{db}'")), "");
}
