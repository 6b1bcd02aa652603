//! PHP sites on a private nginx and a private php-fpm, with the machine's MariaDB: the `php`
//! kind (a site's PHP writes and reads a row through the credentials fjord gave it, as its own
//! user, confined to its own files) and WordPress from Debian's package.

use std::process::Command;

use crate::browser::{Browser, path_of};
use crate::databases::{Cleanup, token};
use crate::harness::{Env, mysql};
use crate::php_fpm::PrivatePhpFpm;

/// Server `t` on the env's nginx with MariaDB and the private php-fpm.
pub fn php_server(env: &Env, fpm: &PrivatePhpFpm) {
    let php = fpm.service_arg();
    env.add_server_on(
        &env.nginx,
        "t",
        &["--db", "mysql", "--php", &php, "--web-group", "nogroup"],
    );
    env.dispatch_until_idle(&[]);
}

fn user_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["passwd", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// The users of a site's pools, from the pool files fjord wrote (`fjord-<user>.conf`).
fn pool_users(fpm: &PrivatePhpFpm) -> Vec<String> {
    fpm.pool_users()
}

const APP: &str = r#"<?php
$settings = require getenv('FJORD_SITE_CONFIG');
$db = $settings['database'];
$pdo = new PDO("mysql:unix_socket={$db['socket']};dbname={$db['name']}", $db['user'], $db['password']);
$pdo->exec('CREATE TABLE IF NOT EXISTS notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT)');
if (isset($_GET['write'])) {
    $pdo->prepare('INSERT INTO notes (body) VALUES (?)')->execute([$_GET['write']]);
}
echo 'user=', posix_getpwuid(posix_geteuid())['name'], "\n";
foreach ($pdo->query('SELECT body FROM notes ORDER BY id') as $row) {
    echo 'note=', $row['body'], "\n";
}
"#;

/// Tries to reach outside its own site: another site's settings and files, the platform's
/// code. Prints what it could do.
const PEEK: &str = r#"<?php
$other = $_GET['other'];
echo 'read-other-config=', @file_get_contents($other . '/settings.php') === false ? 'no' : 'yes', "\n";
echo 'list-other-files=', @scandir($_GET['other_files']) === false ? 'no' : 'yes', "\n";
echo 'write-platform=', @file_put_contents(__DIR__ . '/planted.php', 'x') === false ? 'no' : 'yes', "\n";
echo 'read-passwd=', @file_get_contents('/etc/passwd') === false ? 'no' : 'yes', "\n";
"#;

#[test]
fn a_php_site_runs_as_its_own_user_with_its_own_database_and_nothing_else() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    let (a, b) = (format!("{t}-a.php.test"), format!("{t}-b.php.test"));
    let code = env.platforms.path().join("app");
    std::fs::create_dir(&code).unwrap();
    std::fs::write(code.join("index.php"), APP).unwrap();
    std::fs::write(code.join("peek.php"), PEEK).unwrap();
    let code_path = code.display().to_string();
    env.ok(&[
        "platform", "add", "app", "--server", "t", "--path", &code_path, "--kind", "php",
    ]);
    env.dispatch_until_idle(&[]);
    for site in [&a, &b] {
        env.ok(&["site", "add", site, "--platform", "app", "--db", "mysql"]);
    }
    env.dispatch_until_idle(&[]);
    let users = pool_users(&fpm);
    assert_eq!(users.len(), 2, "one pool per site: {users:?}");

    let (status, _, body) = env.nginx.get(&a, "/?write=hello");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("note=hello"), "{body}");
    // Each site runs as its own user, and sees only its own database.
    let user_a = body
        .lines()
        .find_map(|l| l.strip_prefix("user="))
        .unwrap()
        .to_string();
    assert!(users.contains(&user_a), "{user_a} not in {users:?}");
    let (_, _, body_b) = env.nginx.get(&b, "/");
    let user_b = body_b
        .lines()
        .find_map(|l| l.strip_prefix("user="))
        .unwrap()
        .to_string();
    assert_ne!(user_a, user_b);
    assert!(!body_b.contains("note=hello"), "{body_b}");

    // Site A's PHP cannot read B's config or list its files, nor write the platform's code.
    let other = code.join("private").join(&b).display().to_string();
    let other_files = code.join("sites").join(&b).display().to_string();
    let (_, _, peek) = env.nginx.get(
        &a,
        &format!("/peek.php?other={other}&other_files={other_files}"),
    );
    for line in [
        "read-other-config=no",
        "list-other-files=no",
        "write-platform=no",
        "read-passwd=no",
    ] {
        assert!(peek.contains(line), "{line} expected in:\n{peek}");
    }
    assert!(!code.join("planted.php").exists());
    // fjord's own directories are never served.
    let (status, _, _) = env.nginx.get(&a, &format!("/private/{a}/settings.php"));
    assert_eq!(status, 404);
    // The config and credentials are the site's user's only.
    let settings = code.join("private").join(&a).join("settings.php");
    let meta = std::fs::metadata(&settings).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(users_name(meta.uid()), user_a);

    // Delete: user, pool, vhost, files and database gone.
    let db_name = mysql(&format!(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{t}_a%'"
    ));
    assert!(!db_name.is_empty());
    for site in [&a, &b] {
        env.ok(&["site", "delete", site, "--force"]);
    }
    env.dispatch_until_idle(&[]);
    assert!(pool_users(&fpm).is_empty(), "{:?}", fpm.pool_files());
    for user in &users {
        assert!(!user_exists(user), "user {user} is left");
    }
    assert!(!code.join("sites").join(&a).exists());
    assert!(!code.join("private").join(&a).exists());
    assert_eq!(mysql(&format!("SHOW DATABASES LIKE '{db_name}'")), "");
    let (status, _, _) = env.nginx.get(&a, "/");
    assert_eq!(status, 404);
}

fn last_task_log(env: &Env) -> String {
    let tasks = env.json(&["task", "list"]);
    let last = &tasks.as_array().unwrap()[0];
    format!(
        "{last}\n{}",
        env.ok(&["task", "log", &last["id"].to_string()])
    )
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
                assert_eq!(
                    page.status, 200,
                    "a page failed during the move: {}",
                    page.body
                );
                assert!(page.body.contains("<title>Busy"), "{}", page.body);
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
    env.ok(&["site", "delete", &blog, "--force"]);
    env.dispatch_until_idle(&[]);
}

#[test]
fn the_client_gets_the_login_link_of_a_new_site_and_failure_notices_by_mail() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    let sink = crate::smtp::SmtpSink::start();
    php_server(&env, &fpm);
    wordpress_platform(&env, "wp");
    env.ok(&["mail", "smtp", &sink.relay(), "--from", "fjord@example.com"]);
    env.ok(&["client", "email", "acme", "owner@example.com"]);
    let blog = format!("{t}-mail.wp.test");
    env.ok(&["site", "add", &blog, "--platform", "wp", "--client", "acme"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.json(&["site", "show", &blog])["status"],
        "installed",
        "{}",
        last_task_log(&env)
    );

    let welcome = sink.wait_for(&format!("Your new site {blog} is ready"));
    assert!(welcome.contains("To: owner@example.com"), "{welcome}");
    assert!(welcome.contains("From: fjord@example.com"), "{welcome}");
    let link = welcome
        .lines()
        .find(|l| l.contains("fjord-login="))
        .expect("the link is in the mail")
        .trim()
        .to_string();
    // The link is only in the mail: not in the task's log.
    let token = link.rsplit('=').next().unwrap();
    assert!(
        !last_task_log(&env).contains(token),
        "{token} in {}\n{welcome}",
        last_task_log(&env)
    );
    let mut browser = Browser::new(env.nginx.port, &blog);
    assert_eq!(browser.get(&path_of(&link)).status, 302);
    assert_eq!(browser.get("/wp-admin/").status, 200);

    // A task that fails on the site: its client is told.
    env.ok(&["site", "backup", &blog]);
    env.dispatch_until_idle(&["fail-after:site-backup:1"]);
    let notice = sink.wait_for(&format!("site-backup of {blog} failed"));
    assert!(notice.contains("rolled back"), "{notice}");

    // Without an address, or with mail off, nothing is sent.
    let before = sink.count();
    env.ok(&["mail", "off"]);
    env.ok(&["site", "backup", &blog]);
    env.dispatch_until_idle(&["fail-after:site-backup:1"]);
    assert_eq!(sink.count(), before);
    let err = env.fails(&["client", "email", "acme", "owner@localhost"]);
    assert!(err.contains("owner@localhost"), "{err}");
    let err = env.fails(&["mail", "smtp", "127.0.0.1", "--from", "fjord@example.com"]);
    assert!(err.contains("127.0.0.1"), "{err}");

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

#[test]
fn a_platform_comes_from_a_release_archive_and_a_hostile_one_writes_nothing_outside() {
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    let work = crate::harness::world_readable_tempdir();
    // A release archive as WordPress publishes one: a single top directory, `wordpress/`.
    let release = work.path().join("wordpress-6.1.9.tar.gz");
    let tar = |args: &[&str]| {
        let out = Command::new("tar").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A release archive holds files, not links into this machine's other packages (Debian's
    // tree links 24 files elsewhere): made with the links followed.
    tar(&[
        "-czhf",
        &release.display().to_string(),
        "-C",
        "/usr/share",
        "wordpress",
    ]);
    let path = env.platform_path("wp");
    env.ok(&[
        "platform",
        "add",
        "wp",
        "--server",
        "t",
        "--path",
        &path,
        "--kind",
        "wordpress",
        "--from",
        &release.display().to_string(),
    ]);
    env.dispatch_until_idle(&[]);
    let platform = env.json(&["platform", "show", "wp"]);
    assert_eq!(
        platform["version"],
        "6.1.9",
        "{platform} {}",
        last_task_log(&env)
    );
    assert!(
        std::path::Path::new(&path)
            .join("wp-includes/version.php")
            .exists()
    );

    // A hostile archive: a link out of the tree, and a member written through it.
    let hostile_src = work.path().join("hostile");
    std::fs::create_dir_all(hostile_src.join("app")).unwrap();
    std::fs::write(hostile_src.join("app/index.php"), "<?php echo 'hi';").unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, hostile_src.join("app/out")).unwrap();
    let hostile = work.path().join("hostile.tar.gz");
    tar(&[
        "-czf",
        &hostile.display().to_string(),
        "-C",
        &hostile_src.display().to_string(),
        "app",
    ]);
    // A second archive whose member goes through the link the first one made.
    std::fs::remove_file(hostile_src.join("app/out")).unwrap();
    std::fs::create_dir(hostile_src.join("app/out")).unwrap();
    std::fs::write(hostile_src.join("app/out/planted.php"), "<?php // planted").unwrap();
    let combined = work.path().join("combined.tar");
    let gz = hostile.display().to_string();
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {src} && gzip -dc {gz} > {tar} && tar -rf {tar} app/out/planted.php && gzip -c {tar} > {gz}",
            src = hostile_src.display(),
            tar = combined.display(),
        ))
        .status()
        .unwrap();
    let app = env.platform_path("app");
    env.ok(&[
        "platform", "add", "app", "--server", "t", "--path", &app, "--kind", "php", "--from", &gz,
    ]);
    env.dispatch_until_idle(&[]);
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "the archive wrote outside its tree"
    );
    let app = std::path::Path::new(&app);
    assert!(
        !app.join("out").is_symlink(),
        "a link out of the code base was copied in"
    );
    // Refused whole, the link named: nothing of it is a platform.
    assert!(!app.exists(), "a platform was made of the hostile archive");
    let log = last_task_log(&env);
    assert!(
        log.contains("app/out") || log.contains("out in") && log.contains("release archive"),
        "{log}"
    );
}
