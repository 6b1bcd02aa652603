//! PHP sites on a private nginx and a private php-fpm, with the machine's MariaDB: the `php`
//! kind (a site's PHP writes and reads a row through the credentials fjord gave it, as its own
//! user, confined to its own files) and WordPress from Debian's package.

use std::process::Command;

use crate::browser::{Browser, path_of};
use crate::databases::{Cleanup, token};
use crate::harness::{Env, mysql};
use crate::php_fpm::PrivatePhpFpm;

mod wordpress;
pub use wordpress::{log_in, wordpress_platform};

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
