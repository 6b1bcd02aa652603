//! A PHP site on MariaDB, read and written all through a restore (and a clone of it), with
//! pauses injected after every step to widen every window: readers check the status and the
//! whole body of every page; a writer posts notes through the site's PHP and inserts rows as
//! the site's database user. Every acknowledged write is found after the restore, in the live
//! database or in the backup the restore took first, or was refused with 503 and
//! `Retry-After`; no request gets any other error; ids handed out after the restore do not
//! collide with ones only the pre-restore backup holds.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::browser::Browser;
use crate::databases::{Cleanup, token};
use crate::harness::{Env, mysql};
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::php_server;
use crate::readers::{BodyCheckingReaders, Connections, Target, Whole, now};

/// Padding on every page: a page cut short is caught by its length.
const PAD: usize = 60_000;

const APP: &str = r#"<?php
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    // A slow write: taken before the site turns read-only, its database reached well after.
    usleep(((int) ($_POST['delay_ms'] ?? 0)) * 1000);
}
$settings = require getenv('FJORD_SITE_CONFIG');
$db = $settings['database'];
$pdo = new PDO("mysql:unix_socket={$db['socket']};dbname={$db['name']}", $db['user'], $db['password'],
    [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $pdo->prepare('INSERT INTO fjord_notes (body) VALUES (?)')->execute([$_POST['note']]);
    echo 'id=', $pdo->lastInsertId(), "\n";
    exit;
}
$count = $pdo->query('SELECT COUNT(*) FROM fjord_notes')->fetchColumn();
echo "notes=$count\n", str_repeat('x', 60000), "\nend\n";
"#;

/// The site's database name, user and password, from the config fjord wrote for it.
/// (A `php` site's settings array, or WordPress's `define`s.)
fn credentials(env: &Env, platform: &str, site: &str) -> (String, String, String) {
    let config = std::path::Path::new(&env.platform_path(platform))
        .join("private")
        .join(site)
        .join("settings.php");
    let text = std::fs::read_to_string(&config).unwrap();
    let value = |key: &str| {
        let define = format!("define('DB_{}', '", key.to_uppercase());
        text.lines()
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix(&format!("'{key}' => '"))
                    .and_then(|v| v.strip_suffix("',"))
                    .or_else(|| l.strip_prefix(&define).and_then(|v| v.strip_suffix("');")))
            })
            .unwrap_or_else(|| panic!("{key} in {text}"))
            .to_string()
    };
    (value("name"), value("user"), value("password"))
}

/// Whether a page is the whole page.
fn whole_page(body: &str) -> bool {
    let Some((first, rest)) = body.split_once('\n') else {
        return false;
    };
    first.starts_with("notes=")
        && rest.len() == PAD + "\nend\n".len()
        && rest.ends_with("\nend\n")
        && rest[..PAD].bytes().all(|b| b == b'x')
}

#[derive(Default, Debug)]
struct Seen {
    /// Notes acknowledged through HTTP, with the id the site gave each.
    posted: Vec<(String, u64)>,
    /// Rows the site's database user committed.
    inserted: Vec<String>,
    /// Writes refused with 503 and `Retry-After`.
    refused: u64,
    /// Anything else: a failure.
    errors: Vec<String>,
    pages: u64,
}

/// How the test reads and writes one application.
struct App {
    platform: &'static str,
    /// Whether a page is whole.
    page_ok: fn(&str) -> bool,
    /// Posts a note; the id it got when acknowledged, else `None`.
    post: fn(&mut Browser, &str) -> (crate::browser::Response, Option<u64>),
    /// The table and column a posted note is kept in.
    posted_to: (&'static str, &'static str),
    /// Posts a note that the site commits seconds after it took it, if the app can.
    slow_post: Option<PostNote>,
}

type PostNote = fn(&mut Browser, &str) -> (crate::browser::Response, Option<u64>);

/// Posts a note to the PHP app, which waits `delay_ms` before it commits it.
fn post_note(
    browser: &mut Browser,
    note: &str,
    delay_ms: u64,
) -> (crate::browser::Response, Option<u64>) {
    let response = browser.post(
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("note={note}&delay_ms={delay_ms}").as_bytes(),
    );
    let id = (response.status == 200)
        .then(|| response.body.strip_prefix("id=")?.trim().parse().ok())
        .flatten();
    (response, id)
}

const PHP_APP: App = App {
    platform: "app",
    page_ok: whole_page,
    post: |browser, note| post_note(browser, note, 0),
    posted_to: ("fjord_notes", "body"),
    // Longer than the pause after the step that turns the site read-only: without waiting
    // for it, the freeze that follows cut this write (500).
    slow_post: Some(|browser, note| post_note(browser, note, 2000)),
};

struct Traffic {
    stop: Arc<AtomicBool>,
    readers: BodyCheckingReaders,
    threads: Vec<JoinHandle<Seen>>,
}

impl Traffic {
    /// Two readers, an HTTP writer and a writer as the site's database user.
    fn start(env: &Env, app: &'static App, site: &str, tag: &str) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let port = env.nginx.port;
        let readers = BodyCheckingReaders::start(
            port,
            &[Target {
                host: site.to_string(),
                path: "/".to_string(),
                whole: Whole::Page(app.page_ok),
            }],
            2,
            Connections::OnePerRequest,
        );
        let mut threads = Vec::new();
        let writers = [("http", Some(app.post)), ("slow", app.slow_post)];
        for (kind, post) in writers {
            let Some(post) = post else { continue };
            let (stop, site, tag) = (stop.clone(), site.to_string(), tag.to_string());
            threads.push(std::thread::spawn(move || {
                let mut seen = Seen::default();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let note = format!("{tag}-{kind}-{n}");
                    let (response, id) = post(&mut Browser::new(port, &site), &note);
                    match (response.status, id) {
                        (_, Some(id)) => seen.posted.push((note, id)),
                        (503, _) if response.header("Retry-After").is_some() => seen.refused += 1,
                        (other, _) => seen.errors.push(format!(
                            "{} POST {note}: {other} {}",
                            now(),
                            response.body.chars().take(200).collect::<String>()
                        )),
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                seen
            }));
        }
        {
            let (name, user, password) = credentials(env, app.platform, site);
            let (stop, tag) = (stop.clone(), tag.to_string());
            threads.push(std::thread::spawn(move || {
                let mut seen = Seen::default();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let row = format!("{tag}-db-{n}");
                    let out = Command::new("mariadb")
                        .args([&format!("--user={user}"), &name, "-e"])
                        .arg(format!("INSERT INTO fjord_notes (body) VALUES ('{row}')"))
                        .env("MYSQL_PWD", &password)
                        .output()
                        .unwrap();
                    if out.status.success() {
                        seen.inserted.push(row);
                    } else {
                        // Held to reads, or its session ended: refused, not acknowledged.
                        seen.refused += 1;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                seen
            }));
        }
        Traffic {
            stop,
            readers,
            threads,
        }
    }

    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let read = self.readers.finish();
        let mut all = Seen {
            pages: read.responses(),
            errors: read.failures,
            ..Seen::default()
        };
        for thread in self.threads {
            let seen = thread.join().unwrap();
            all.posted.extend(seen.posted);
            all.inserted.extend(seen.inserted);
            all.refused += seen.refused;
            all.errors.extend(seen.errors);
            all.pages += seen.pages;
        }
        all
    }
}

/// Pauses after each step of `kind`.
fn pauses(kind: &str) -> Vec<String> {
    (1..=30)
        .map(|step| format!("pause-after:{kind}:{step}:250"))
        .collect()
}

fn backup_paths(env: &Env, site: &str) -> BTreeSet<String> {
    env.json(&["site", "backups", site])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["path"].as_str().unwrap().to_string())
        .collect()
}

/// The SQL dump inside a backup archive.
fn dump_in(archive: &str) -> String {
    let tar = Command::new("tar")
        .args(["--zstd", "-xOf", archive, "database.sql.zst"])
        .output()
        .unwrap();
    assert!(tar.status.success(), "{archive}: {tar:?}");
    let mut zstd = Command::new("zstd")
        .args(["-dc"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = zstd.stdin.take().unwrap();
    let feeding = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&tar.stdout);
    });
    let out = zstd.wait_with_output().unwrap();
    feeding.join().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn php_site(env: &Env, fpm: &PrivatePhpFpm, site: &str) -> String {
    php_server(env, fpm);
    let code = env.platforms.path().join("app");
    std::fs::create_dir(&code).unwrap();
    std::fs::write(code.join("index.php"), APP).unwrap();
    let code_path = code.display().to_string();
    env.ok(&[
        "platform", "add", "app", "--server", "t", "--path", &code_path, "--kind", "php",
    ]);
    env.dispatch_until_idle(&[]);
    env.ok(&["site", "add", site, "--platform", "app", "--db", "mysql"]);
    env.dispatch_until_idle(&[]);
    notes_table(env, "app", site)
}

/// The table the writer inserts into as the site's database user; the site's database.
fn notes_table(env: &Env, platform: &str, site: &str) -> String {
    let (db, _, _) = credentials(env, platform, site);
    mysql(&format!(
        "CREATE TABLE `{db}`.fjord_notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(100))"
    ));
    db
}

/// Restores the site's newest backup with the traffic running and pauses after every step,
/// and checks what the module's comment promises.
fn restore_under_traffic(
    env: &Env,
    app: &'static App,
    site: &str,
    db: &str,
    tag: &str,
    backed_up: &BTreeSet<String>,
) {
    let (table, column) = app.posted_to;
    let traffic = Traffic::start(env, app, site, tag);
    std::thread::sleep(Duration::from_millis(500));
    let id = env.queue(&["site", "restore", site]);
    let faults = pauses("site-restore");
    let faults: Vec<&str> = faults.iter().map(String::as_str).collect();
    env.dispatch_until_idle(&faults);
    std::thread::sleep(Duration::from_millis(500));
    let seen = traffic.finish();
    let log = env.log(id);
    assert_eq!(env.task(id)["status"], "success", "{log}");

    let pre_restore: Vec<String> = backup_paths(env, site)
        .difference(backed_up)
        .cloned()
        .collect();
    assert_eq!(pre_restore.len(), 1, "the restore backs the site up first");
    let kept = dump_in(&pre_restore[0]);
    let live: BTreeSet<String> = mysql(&format!("SELECT body FROM `{db}`.fjord_notes"))
        .lines()
        .chain(mysql(&format!("SELECT {column} FROM `{db}`.{table}")).lines())
        .map(str::to_string)
        .collect();
    let is_kept = |note: &str| live.contains(note) || kept.contains(&format!("'{note}'"));
    let lost: Vec<&str> = seen
        .posted
        .iter()
        .map(|(note, _)| note.as_str())
        .chain(seen.inserted.iter().map(String::as_str))
        .filter(|note| !is_kept(note))
        .collect();
    eprintln!(
        "restore: {} pages read, {} notes posted, {} rows inserted, {} writes refused, {} lost, {} errors",
        seen.pages,
        seen.posted.len(),
        seen.inserted.len(),
        seen.refused,
        lost.len(),
        seen.errors.len()
    );
    assert!(
        seen.errors.is_empty(),
        "requests failed during the restore: {:?}\n{log}",
        &seen.errors[..seen.errors.len().min(40)]
    );
    assert!(
        lost.is_empty(),
        "acknowledged writes in neither the restored database nor the pre-restore backup: {lost:?}\n{log}"
    );
    assert!(
        !seen.posted.is_empty() && !seen.inserted.is_empty(),
        "the writers wrote nothing: {seen:?}"
    );
    assert!(seen.refused > 0, "no write was refused while frozen");
    // The first slow note was taken before the restore began and reaches the database after
    // the site turned read-only: the restore lets it finish before it freezes the database.
    if app.slow_post.is_some() {
        assert!(
            seen.posted
                .iter()
                .any(|(note, _)| note.ends_with("-slow-1")),
            "the write in flight when the restore began was not acknowledged: {:?}\n{log}",
            seen.errors
        );
    }

    // Ids handed out after the restore are new ones: none only the pre-restore backup holds.
    let highest = seen.posted.iter().map(|(_, id)| *id).max().unwrap();
    let (response, after) = (app.post)(
        &mut Browser::new(env.nginx.port, site),
        &format!("{tag}-after"),
    );
    let after = after.unwrap_or_else(|| panic!("{} {}", response.status, response.body));
    assert!(
        after > highest,
        "id {after} after the restore; ids up to {highest} are in the pre-restore backup\n{log}"
    );
    assert!(
        log.contains(&format!("raised the next id of {table}")),
        "{log}"
    );
}

#[test]
fn a_restore_keeps_every_acknowledged_write_and_answers_every_request() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    let site = format!("{t}-restored.php.test");
    let db = php_site(&env, &fpm, &site);
    for n in 0..3 {
        mysql(&format!(
            "INSERT INTO `{db}`.fjord_notes (body) VALUES ('backed-up-{n}')"
        ));
    }
    env.ok(&["site", "backup", &site]);
    env.dispatch_until_idle(&[]);
    let backed_up = backup_paths(&env, &site);
    // Written after the backup: the restore takes them away, and its own backup keeps them.
    for n in 0..5 {
        mysql(&format!(
            "INSERT INTO `{db}`.fjord_notes (body) VALUES ('since-{n}')"
        ));
    }

    restore_under_traffic(&env, &PHP_APP, &site, &db, &t, &backed_up);
    let live: BTreeSet<String> = mysql(&format!("SELECT body FROM `{db}`.fjord_notes"))
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        live.contains("backed-up-0") && !live.contains("since-0"),
        "the backup was restored: {live:?}"
    );

    // A clone of the site, read and written all through: the source serves throughout, and
    // keeps every write it acknowledged.
    let copy = format!("{t}-copy.php.test");
    let traffic = Traffic::start(&env, &PHP_APP, &site, &format!("{t}c"));
    std::thread::sleep(Duration::from_millis(500));
    let id = env.queue(&["site", "clone", &site, &copy]);
    let faults = pauses("site-clone");
    let faults: Vec<&str> = faults.iter().map(String::as_str).collect();
    env.dispatch_until_idle(&faults);
    std::thread::sleep(Duration::from_millis(500));
    let seen = traffic.finish();
    assert_eq!(env.task(id)["status"], "success", "{}", env.log(id));
    let live: BTreeSet<String> = mysql(&format!("SELECT body FROM `{db}`.fjord_notes"))
        .lines()
        .map(str::to_string)
        .collect();
    let lost: Vec<&str> = seen
        .posted
        .iter()
        .map(|(note, _)| note.as_str())
        .chain(seen.inserted.iter().map(String::as_str))
        .filter(|note| !live.contains(*note))
        .collect();
    eprintln!(
        "clone: {} pages read, {} notes posted, {} rows inserted, {} refused",
        seen.pages,
        seen.posted.len(),
        seen.inserted.len(),
        seen.refused
    );
    assert!(
        seen.errors.is_empty(),
        "during the clone: {:?}",
        seen.errors
    );
    assert!(lost.is_empty(), "lost during the clone: {lost:?}");
    assert!(!seen.posted.is_empty() && !seen.inserted.is_empty());
    let (status, _, body) = env.nginx.get(&copy, "/");
    assert!(status == 200 && whole_page(&body), "{status} {body}");

    for s in [&site, &copy] {
        env.ok(&["site", "delete", s, "--force"]);
    }
    env.dispatch_until_idle(&[]);
}

/// WordPress from Debian's package: a comment on the first post is the HTTP write.
const WORDPRESS: App = App {
    platform: "wp",
    page_ok: |body| body.contains("<title>") && body.trim_end().ends_with("</html>"),
    post: |browser, note| {
        let response = browser.post(
            "/wp-comments-post.php",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            format!(
                "comment_post_ID=1&author=Writer&email=writer%40example.com&url=&comment={note}"
            )
            .as_bytes(),
        );
        // Acknowledged: a redirect to the comment, `#comment-<id>`.
        let id = (response.status == 302)
            .then(|| {
                let location = response.header("Location")?;
                location.rsplit_once("#comment-")?.1.parse().ok()
            })
            .flatten();
        (response, id)
    },
    posted_to: ("wp_comments", "comment_content"),
    slow_post: None,
};

#[test]
fn a_wordpress_restore_keeps_every_acknowledged_comment_and_answers_every_request() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    crate::php_sites::wordpress_platform(&env, "wp");
    let blog = format!("{t}-restored.wp.test");
    env.ok(&["site", "add", &blog, "--platform", "wp", "--title", "Busy"]);
    env.dispatch_until_idle(&[]);
    // Everyone comments from 127.0.0.1 here: WordPress's flood control would refuse all but
    // the first comment every 15 s.
    let plugin = std::path::Path::new(&env.platform_path("wp"))
        .join("sites")
        .join(&blog)
        .join("mu-plugins/no-flood.php");
    std::fs::write(
        &plugin,
        "<?php\nadd_filter('wp_is_comment_flood', '__return_false', 99);\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let db = notes_table(&env, "wp", &blog);
    // A site in use is warm: its first request, compiling WordPress, takes seconds on a busy
    // machine, and a write that reaches PHP before the read-only vhost and the database only
    // after the freeze fails (500, not acknowledged: that window is left open).
    let mut browser = Browser::new(env.nginx.port, &blog);
    assert_eq!(browser.get("/").status, 200);
    assert!(
        (WORDPRESS.post)(&mut browser, &format!("{t}-warm"))
            .1
            .is_some()
    );
    env.ok(&["site", "backup", &blog]);
    env.dispatch_until_idle(&[]);
    let backed_up = backup_paths(&env, &blog);
    restore_under_traffic(&env, &WORDPRESS, &blog, &db, &t, &backed_up);
    env.ok(&["site", "delete", &blog, "--force"]);
    env.dispatch_until_idle(&[]);
}
