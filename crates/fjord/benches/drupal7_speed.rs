//! `cargo bench -p fjord --bench drupal7-speed-bench`: install, backup, restore, clone and
//! migrate of a Drupal 7 site through fjord, each beside the same step done by hand in this
//! run (Drupal's installer run by `php` directly, `mariadb-dump | zstd` and `tar`, a load by
//! `mariadb`, `cp -a`), with the ratios and the targets (Aegir's Provision on this kind of
//! machine: install 1.8 s, restore 1.7 s, clone 12.1 s, migrate 17.9 s).
//!
//! The code base is a real Drupal 7 given by `FJORD_BENCH_DRUPAL7=<dir>` (never part of the
//! project), and the release to migrate to by `FJORD_BENCH_DRUPAL7_NEXT=<dir>` (else a copy of
//! the first). Without it the bench runs on fjord's Drupal 7 fixture, which is Drupal's file
//! formats and not Drupal: there is no installer, so the site is one found in `sites/` with a
//! database of 73 InnoDB tables (a standard install's shape), imported instead of installed.
//! `FJORD_BENCH_LOG=1` prints each task's log (its timestamps say where the time goes).
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/php_fpm.rs"]
mod php_fpm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TABLES: usize = 73;

fn token() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("b{:05x}", (t ^ u128::from(std::process::id())) & 0xf_ffff)
}

fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn timed(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Drupal 7's installer run by `php` in `docroot` for `host`, as an operator would by hand
/// (the same call fjord's helper makes), its database already made.
fn install_by_hand(docroot: &Path, host: &str, db: &str) {
    let dir = docroot.join("sites").join(host);
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(
        dir.join("settings.php"),
        format!(
            "<?php\n$databases['default']['default'] = array('database' => '{db}', \
             'username' => '{db}', 'password' => 'hand', 'host' => 'localhost', \
             'driver' => 'mysql', 'prefix' => '');\n$drupal_hash_salt = 'by-hand-salt';\n"
        ),
    )
    .unwrap();
    let code = format!(
        "<?php
chdir({docroot});
$_SERVER['HTTP_HOST'] = {host};
$_SERVER['SERVER_NAME'] = {host};
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
$_SERVER['REQUEST_METHOD'] = 'GET';
$_SERVER['SCRIPT_NAME'] = '/index.php';
define('DRUPAL_ROOT', getcwd());
define('MAINTENANCE_MODE', 'install');
require_once DRUPAL_ROOT . '/includes/install.core.inc';
install_drupal(array(
  'interactive' => FALSE,
  'parameters' => array('profile' => 'standard', 'locale' => 'en'),
  'forms' => array('install_configure_form' => array(
    'site_name' => 'By hand', 'site_mail' => 'admin@example.com',
    'account' => array('name' => 'admin', 'mail' => 'admin@example.com',
      'pass' => array('pass1' => 'secret-pass', 'pass2' => 'secret-pass')),
    'update_status_module' => array(1 => NULL, 2 => NULL),
    'clean_url' => TRUE, 'site_default_country' => '', 'date_default_timezone' => 'UTC',
  )),
));
",
        docroot = quote(&docroot.display().to_string()),
        host = quote(host),
    );
    let script = docroot.join("install-by-hand.php");
    std::fs::write(&script, code).unwrap();
    sh(&format!(
        "php -d memory_limit=256M {} >/dev/null",
        quote(&script.display().to_string())
    ));
    std::fs::remove_file(script).unwrap();
}

fn make_db(db: &str) {
    harness::mysql(&format!(
        "CREATE DATABASE `{db}`; CREATE USER '{db}'@'localhost' IDENTIFIED BY 'hand'; \
         GRANT ALL ON `{db}`.* TO '{db}'@'localhost'"
    ));
}

/// A database shaped like a Drupal 7 standard install's (73 InnoDB tables, a few rows each)
/// and `sites/<host>/settings.php` naming it: the site the fixture run imports.
fn found_site(docroot: &Path, host: &str, db: &str) {
    make_db(db);
    let mut sql = format!(
        "USE `{db}`; CREATE TABLE system (filename VARCHAR(255) NOT NULL PRIMARY KEY, \
         name VARCHAR(255) NOT NULL, type VARCHAR(12) NOT NULL, owner VARCHAR(255) NOT NULL \
         DEFAULT '', status INT NOT NULL DEFAULT 0, bootstrap INT NOT NULL DEFAULT 0, \
         schema_version SMALLINT NOT NULL DEFAULT -1, weight INT NOT NULL DEFAULT 0, info BLOB) \
         ENGINE=InnoDB; INSERT INTO system VALUES ('modules/system/system.module', 'system', \
         'module', '', 1, 0, 7080, 0, NULL);"
    );
    for i in 1..TABLES {
        sql.push_str(&format!(
            "CREATE TABLE t{i} (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(128), \
             data LONGBLOB, changed INT, KEY changed (changed)) ENGINE=InnoDB; \
             INSERT INTO t{i} (name, data, changed) VALUES ('a', REPEAT('x', 2000), 1), \
             ('b', REPEAT('y', 2000), 2), ('c', NULL, 3);"
        ));
    }
    harness::mysql(&sql);
    let dir = docroot.join("sites").join(host);
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(
        dir.join("settings.php"),
        // As Drupal 7's installer writes it (fjord reads this shape).
        format!(
            "<?php\n$databases = array (\n  'default' => \n  array (\n    'default' => \n    \
             array (\n      'database' => '{db}',\n      'username' => '{db}',\n      \
             'password' => 'hand',\n      'host' => 'localhost',\n      'port' => '',\n      \
             'driver' => 'mysql',\n      'prefix' => '',\n    ),\n  ),\n);\n\
             $drupal_hash_salt = 'Yq3-7TtzmLJ8pW0Xc9bHkNdRfa2sVgEuQeLo1iZyMxA';\n"
        ),
    )
    .unwrap();
}

struct Row {
    step: &'static str,
    fjord: f64,
    by_hand: f64,
    by_hand_is: &'static str,
    target: String,
}

fn main() {
    let real = std::env::var_os("FJORD_BENCH_DRUPAL7").map(PathBuf::from);
    let next = std::env::var_os("FJORD_BENCH_DRUPAL7_NEXT").map(PathBuf::from);
    let show_logs = std::env::var_os("FJORD_BENCH_LOG").is_some();
    let t = token();
    let fpm = php_fpm::PrivatePhpFpm::start();
    let env = harness::Env::bare();
    let php = fpm.service_arg();
    env.add_server_on(
        &env.nginx,
        "t",
        &["--db", "mysql", "--php", &php, "--web-group", "nogroup"],
    );
    env.dispatch_until_idle(&[]);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/fixtures/drupal7");
    let place = |name: &str, from: &Path| -> PathBuf {
        let to = PathBuf::from(env.platform_path(name));
        sh(&format!(
            "cp -a {} {}",
            quote(&from.display().to_string()),
            quote(&to.display().to_string())
        ));
        let _ = std::fs::remove_dir_all(to.join("sites/example.com"));
        to
    };
    // The fixture is not Drupal: its copies get stand-ins for the calls fjord's update run
    // makes after a clone or migrate (no update is pending), so those steps run whole.
    let stand_in = |code: &Path| {
        if real.is_none() {
            let bootstrap = code.join("includes/bootstrap.inc");
            let mut text = std::fs::read_to_string(&bootstrap).unwrap();
            text.push_str(
                "\ndefine('DRUPAL_BOOTSTRAP_FULL', 7);\nfunction drupal_bootstrap($phase) {\n}\n",
            );
            std::fs::write(&bootstrap, text).unwrap();
            std::fs::write(
                code.join("includes/install.inc"),
                "<?php\nfunction drupal_load_updates() {\n}\n\
                 function update_get_update_list() {\n  return array();\n}\n\
                 function update_resolve_dependencies($start) {\n  return array();\n}\n\
                 function drupal_flush_all_caches() {\n}\n",
            )
            .unwrap();
            std::fs::write(code.join("includes/update.inc"), "<?php\n").unwrap();
        }
    };
    let code_a = place("d7a", real.as_deref().unwrap_or(&fixture));
    let code_b = place(
        "d7b",
        next.as_deref().or(real.as_deref()).unwrap_or(&fixture),
    );
    stand_in(&code_a);
    stand_in(&code_b);
    let by_hand_code = place("hand", real.as_deref().unwrap_or(&fixture));
    let by_hand_next = place(
        "hand-next",
        next.as_deref().or(real.as_deref()).unwrap_or(&fixture),
    );
    let host = format!("{t}-site.bench.test");
    let mut dbs = vec![];
    let mut rows = vec![];
    let log = |id: i64, step: &str| {
        if show_logs {
            println!("--- {step} (task {id}) ---\n{}", env.log(id));
        }
    };
    let task = |args: &[&str], step: &str| -> f64 {
        let start = Instant::now();
        let id = env.queue(args);
        env.dispatch_until_idle(&[]);
        let secs = start.elapsed().as_secs_f64();
        let task = env.task(id);
        assert_eq!(task["status"], "success", "{step}: {}", env.log(id));
        log(id, step);
        secs
    };

    // Install (a real Drupal) or import (the fixture).
    if real.is_some() {
        for (name, code) in [("d7a", &code_a), ("d7b", &code_b)] {
            env.ok(&[
                "platform",
                "add",
                name,
                "--server",
                "t",
                "--path",
                &code.display().to_string(),
                "--kind",
                "drupal",
            ]);
        }
        env.dispatch_until_idle(&[]);
        let fjord = task(
            &["site", "add", &host, "--platform", "d7a", "--db", "mysql"],
            "install",
        );
        let db = format!("{t}_hand");
        dbs.push(db.clone());
        let by_hand = timed(|| {
            make_db(&db);
            install_by_hand(&by_hand_code, "hand.bench.test", &db);
        });
        rows.push(Row {
            step: "install (standard profile)",
            fjord,
            by_hand,
            by_hand_is: "CREATE DATABASE + php install_drupal()",
            target: format!("<= {:.2} s (1.2x by hand)", by_hand * 1.2),
        });
    } else {
        let db = format!("{t}_found");
        dbs.push(db.clone());
        found_site(&code_a, &host, &db);
        let hand_db = format!("{t}_hand");
        dbs.push(hand_db.clone());
        found_site(&by_hand_code, "hand.bench.test", &hand_db);
        for (name, code) in [("d7a", &code_a), ("d7b", &code_b)] {
            env.ok(&[
                "platform",
                "add",
                name,
                "--server",
                "t",
                "--path",
                &code.display().to_string(),
                "--kind",
                "drupal",
            ]);
        }
        env.dispatch_until_idle(&[]);
        let sites = env.json(&["site", "list"]);
        assert_eq!(
            sites.as_array().unwrap().len(),
            1,
            "the site found is imported: {}\n{}",
            env.ok(&["task", "list"]),
            env.log(2)
        );
        println!("(fixture: no Drupal installer; the site is imported, not installed)");
    }
    let hand_db = format!("{t}_hand");
    let hand_site = by_hand_code.join("sites/hand.bench.test");
    let work = harness::world_readable_tempdir();
    let w = work.path().display().to_string();
    let tables = harness::mysql(&format!(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{hand_db}'"
    ));

    // Backup.
    let fjord = task(&["site", "backup", &host], "backup");
    let by_hand = timed(|| {
        sh(&format!(
            "mariadb-dump --single-transaction {hand_db} | zstd -q > {w}/db.sql.zst; \
             tar -C {} -cf - . | zstd -q > {w}/files.tar.zst",
            quote(&hand_site.display().to_string())
        ));
    });
    rows.push(Row {
        step: "backup",
        fjord,
        by_hand,
        by_hand_is: "mariadb-dump | zstd; tar | zstd",
        target: "-".into(),
    });

    // Restore (of the backup just taken).
    let fjord = task(&["site", "restore", &host], "restore");
    let restored = format!("{t}_hand_r");
    dbs.push(restored.clone());
    let by_hand = timed(|| {
        sh(&format!(
            "mariadb -e 'CREATE DATABASE `{restored}`'; zstd -dc {w}/db.sql.zst | mariadb {restored}; \
             mkdir {w}/files; zstd -dc {w}/files.tar.zst | tar -C {w}/files -xf -"
        ));
    });
    rows.push(Row {
        step: "restore",
        fjord,
        by_hand,
        by_hand_is: "zstd -dc | mariadb; zstd -dc | tar x",
        target: "<= 1.50 s".into(),
    });

    // Clone.
    let copy = format!("{t}-copy.bench.test");
    let fjord = task(&["site", "clone", &host, &copy], "clone");
    let cloned = format!("{t}_hand_c");
    dbs.push(cloned.clone());
    let by_hand = timed(|| {
        sh(&format!(
            "mariadb -e 'CREATE DATABASE `{cloned}`'; \
             mariadb-dump --single-transaction {hand_db} | mariadb {cloned}; \
             cp -a {} {}",
            quote(&hand_site.display().to_string()),
            quote(
                &by_hand_code
                    .join("sites/copy.bench.test")
                    .display()
                    .to_string()
            ),
        ));
    });
    rows.push(Row {
        step: "clone",
        fjord,
        by_hand,
        by_hand_is: "mariadb-dump | mariadb; cp -a",
        target: "<= 2.50 s".into(),
    });

    // Migrate to the other platform.
    let fjord = task(&["site", "migrate", &host, "--platform", "d7b"], "migrate");
    let by_hand = timed(|| {
        sh(&format!(
            "cp -a {} {}",
            quote(&hand_site.display().to_string()),
            quote(
                &by_hand_next
                    .join("sites/hand.bench.test")
                    .display()
                    .to_string()
            ),
        ));
    });
    rows.push(Row {
        step: "migrate",
        fjord,
        by_hand,
        by_hand_is: "cp -a (no database updates)",
        target: "<= 3.00 s".into(),
    });

    println!(
        "Drupal 7 ({}), {} tables",
        real.as_ref()
            .map_or("fjord's fixture".to_string(), |p| p.display().to_string()),
        tables.trim()
    );
    println!(
        "{:<28} {:>9} {:>9} {:>7}  {:<28} by hand is",
        "step", "fjord s", "hand s", "ratio", "target"
    );
    for r in &rows {
        println!(
            "{:<28} {:>9.2} {:>9.2} {:>6.1}x  {:<28} {}",
            r.step,
            r.fjord,
            r.by_hand,
            r.fjord / r.by_hand,
            r.target,
            r.by_hand_is
        );
    }
    println!("Aegir's Provision here: install 1.8 s, restore 1.7 s, clone 12.1 s, migrate 17.9 s");
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::json!({"step": r.step, "fjord_s": r.fjord, "by_hand_s": r.by_hand}))
        .collect();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("drupal7-speed.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();

    // fjord's sites go with their tasks; what was made by hand goes here.
    for name in [&copy, &host] {
        let _ = env.run(&["site", "delete", name, "--force"]);
    }
    env.dispatch_until_idle(&[]);
    for db in dbs {
        let _ = Command::new("mariadb")
            .args([
                "-e",
                &format!("DROP DATABASE IF EXISTS `{db}`; DROP USER IF EXISTS '{db}'@'localhost'"),
            ])
            .status();
    }
}
