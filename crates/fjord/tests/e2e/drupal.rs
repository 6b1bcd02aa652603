//! The `drupal` kind on fixture code bases of fjord's own, laid out as a Drupal 7 and a
//! composer-built Drupal 10 in Drupal's file formats (Drupal itself cannot be had here): the
//! platform's packages, a site found in `sites/` imported with the credentials of its own
//! `settings.php`, its enabled packages and schema versions read from its database, what
//! nginx serves and refuses, and the migrate compatibility check refusing what would break
//! the site, with nothing changed.
//!
//! Each fixture's `index.php` is replaced by a small front controller of the test's that
//! finds its site as Drupal does (through `sites/sites.php`, then `sites/<dir>/settings.php`)
//! and reads the site's database through the settings fjord wrote.

use std::path::{Path, PathBuf};

use crate::databases::{Cleanup, token};
use crate::harness::{Env, copy_tree, mysql};
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::php_server;

const FRONT_CONTROLLER: &str = r#"<?php
$sites = [];
include __DIR__ . '/sites/sites.php';
$host = strtolower(preg_replace('/:\d+$/', '', $_SERVER['HTTP_HOST']));
$dir = isset($sites[$host]) ? $sites[$host] : $host;
$settings = [];
include __DIR__ . "/sites/$dir/settings.php";
$db = $databases['default']['default'];
$pdo = new PDO("mysql:unix_socket={$db['unix_socket']};dbname={$db['database']}", $db['username'], $db['password']);
echo 'site-dir=', $dir, "\n";
$salt = isset($drupal_hash_salt) ? $drupal_hash_salt : $settings['hash_salt'];
echo 'salt-length=', strlen($salt), "\n";
$tables = $pdo->query('SHOW TABLES')->fetchAll(PDO::FETCH_COLUMN);
echo 'tables=', implode(',', $tables), "\n";
// Drupal 7's drupal_settings_initialize(): links start at $base_url when settings.php sets
// it, else at the request's own Host.
$link_base = isset($base_url) ? $base_url : 'http://' . $_SERVER['HTTP_HOST'];
echo 'link=', $link_base, "/node/1\n";
"#;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/fixtures")
        .join(name)
}

/// A copy of a fixture code base at the env's platform path `name`, with the test's front
/// controller; returns its docroot.
fn code_base(env: &Env, name: &str, fixture_name: &str, docroot: &str) -> PathBuf {
    let code = PathBuf::from(env.platform_path(name));
    copy_tree(&fixture(fixture_name), &code);
    let docroot = code.join(docroot);
    std::fs::write(docroot.join("index.php"), FRONT_CONTROLLER).unwrap();
    // The fixture's own example site is not one of this test's.
    let _ = std::fs::remove_dir_all(docroot.join("sites/example.com"));
    docroot
}

fn add_platform(env: &Env, name: &str) {
    let path = env.platform_path(name);
    env.ok(&[
        "platform", "add", name, "--server", "t", "--path", &path, "--kind", "drupal",
    ]);
    env.dispatch_until_idle(&[]);
}

/// Drupal 7's `system` table, as Drupal lays it out, with these enabled modules.
fn seven_tables(db: &str, modules: &[(&str, i64)]) {
    let mut sql = format!(
        "USE `{db}`; CREATE TABLE system (filename VARCHAR(255) NOT NULL PRIMARY KEY, \
         name VARCHAR(255) NOT NULL, type VARCHAR(12) NOT NULL, owner VARCHAR(255) NOT NULL \
         DEFAULT '', status INT NOT NULL DEFAULT 0, bootstrap INT NOT NULL DEFAULT 0, \
         schema_version SMALLINT NOT NULL DEFAULT -1, weight INT NOT NULL DEFAULT 0, info BLOB);"
    );
    for (name, schema) in modules {
        sql.push_str(&format!(
            "INSERT INTO system VALUES ('modules/{name}/{name}.module', '{name}', 'module', '', \
             1, 0, {schema}, 0, 'a:1:{{s:4:\"name\";s:{}:\"{name}\";}}');",
            name.len()
        ));
    }
    sql.push_str(
        "INSERT INTO system VALUES ('themes/bartik/bartik.info', 'bartik', 'theme', '', 1, 0, \
         -1, 0, NULL);",
    );
    mysql(&sql);
}

/// A site of someone else's in `sites/<host>/`: its database and user, and a `settings.php`
/// as Drupal 7's installer writes one.
fn foreign_site(docroot: &Path, host: &str, db: &str) {
    mysql(&format!(
        "CREATE DATABASE `{db}`; CREATE USER '{db}'@'localhost' IDENTIFIED BY 'theirs'; \
         GRANT ALL ON `{db}`.* TO '{db}'@'localhost'"
    ));
    let dir = docroot.join("sites").join(host);
    std::fs::create_dir_all(dir.join("modules/mysite")).unwrap();
    std::fs::write(
        dir.join("settings.php"),
        format!(
            "<?php\n$databases = array (\n  'default' => \n  array (\n    'default' => \n    \
             array (\n      'database' => '{db}',\n      'username' => '{db}',\n      \
             'password' => 'theirs',\n      'host' => 'localhost',\n      'port' => '',\n      \
             'driver' => 'mysql',\n      'prefix' => '',\n    ),\n  ),\n);\n\
             $drupal_hash_salt = 'Yq3-7TtzmLJ8pW0Xc9bHkNdRfa2sVgEuQeLo1iZyMxA';\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("modules/mysite/mysite.info"),
        "name = My site\ncore = 7.x\nversion = 7.x-1.0\n",
    )
    .unwrap();
    std::fs::write(dir.join("modules/mysite/mysite.module"), "<?php\n").unwrap();
}

fn verdicts(report: &serde_json::Value) -> Vec<(String, String)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_drupal_7_site_is_imported_checked_before_a_move_and_refused_what_would_break_it() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    let docroot = code_base(&env, "d7a", "drupal7", ".");
    let host = format!("{t}-shop.d7.test");
    let db = format!("{t}_shop");
    foreign_site(&docroot, &host, &db);
    seven_tables(
        &db,
        &[
            ("node", 7016),
            ("system", 7085),
            ("views", 7301),
            ("mysite", 7001),
            ("standard", 0),
        ],
    );
    add_platform(&env, "d7a");

    // The platform: its version and packages, Drupal's shared directories never a site.
    let platform = env.json(&["platform", "show", "d7a"]);
    assert_eq!(platform["version"], "7.98", "{platform}");
    assert_eq!(platform["web_root"], serde_json::Value::Null);
    let packages = env.json(&["platform", "packages", "d7a"]);
    let views = packages
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "views")
        .unwrap();
    assert_eq!(views["version"], "7.x-3.29", "{views}");
    assert_eq!(views["project"], "views");
    assert_eq!(views["schema"], 7301);
    let table = env.ok(&["platform", "packages", "d7a"]);
    assert!(
        table.contains("bartik") && table.contains("standard"),
        "{table}"
    );

    // The site found in sites/ is imported with the database its settings.php named.
    let site = env.json(&["site", "show", &host]);
    assert_eq!(site["status"], "installed", "{site}");
    assert_eq!(site["database"]["name"], db.as_str());
    let enabled = env.json(&["site", "packages", &host]);
    let schema_of = |name: &str| {
        enabled
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {enabled}"))
            .clone()
    };
    assert_eq!(schema_of("node")["schema"], 7016);
    assert_eq!(schema_of("node")["version"], "7.98");
    assert_eq!(schema_of("mysite")["site_local"], true);
    assert_eq!(schema_of("bartik")["kind"], "theme");

    // Served through fjord's settings.php, whose credentials are fjord's now.
    let (status, _, page) = env.nginx.get(&host, "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("site-dir={host}")), "{page}");
    assert!(
        page.contains("salt-length=43"),
        "the site's own salt is kept: {page}"
    );
    assert!(page.contains("tables=system"), "{page}");
    let settings =
        std::fs::read_to_string(docroot.join("sites").join(&host).join("settings.php")).unwrap();
    assert!(
        !settings.contains("theirs") && settings.contains("Managed by fjord"),
        "{settings}"
    );
    // An alias reaches the same site through sites.php and its pool.
    let alias = format!("{t}-alias.d7.test");
    env.ok(&["site", "edit", &host, "--add-alias", &alias]);
    env.dispatch_until_idle(&[]);
    let (status, _, page) = env.nginx.get(&alias, "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("site-dir={host}")), "{page}");
    // Drupal's source files, fjord's private dir and PHP files but index.php are not served.
    for path in [
        "/modules/node/node.info".to_string(),
        "/modules/node/node.install".to_string(),
        "/modules/node/node.module".to_string(),
        format!("/sites/{host}/settings.php"),
        format!("/private/{host}/settings.php"),
        "/includes/bootstrap.inc".to_string(),
    ] {
        let (status, _, body) = env.nginx.get(&host, &path);
        assert_eq!(status, 404, "{path}: {body}");
    }

    // A newer platform that lacks views and holds older system code than the site is at.
    let newer = code_base(&env, "d7b", "drupal7", ".");
    let bootstrap = newer.join("includes/bootstrap.inc");
    let text = std::fs::read_to_string(&bootstrap).unwrap();
    std::fs::write(&bootstrap, text.replace("'7.98'", "'7.103'")).unwrap();
    std::fs::remove_dir_all(newer.join("sites/all/modules/views")).unwrap();
    std::fs::write(
        newer.join("modules/system/system.install"),
        "<?php\nfunction system_update_7080() {\n}\n",
    )
    .unwrap();
    add_platform(&env, "d7b");
    let before = env.host_state(&[&host]);
    let check = env
        .command(&[
            "site",
            "migrate-check",
            &host,
            "--platform",
            "d7b",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let verdicts = verdicts(&report);
    for (name, verdict) in [
        ("node", "upgrade"),
        ("system", "downgrade"),
        ("views", "missing"),
        ("mysite", "travels-with-site"),
        ("bartik", "upgrade"),
    ] {
        assert!(
            verdicts.contains(&(name.to_string(), verdict.to_string())),
            "{name} {verdict} in {verdicts:?}"
        );
    }
    let table = env
        .command(&["site", "migrate-check", &host, "--platform", "d7b"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("downgrade") && table.contains("refused:"),
        "{table}"
    );
    let refused = env.fails(&["site", "migrate", &host, "--platform", "d7b"]);
    assert!(
        refused.contains("system") && refused.contains("views"),
        "{refused}"
    );
    // --force lets a missing package go, never older code.
    let refused = env.fails(&["site", "migrate", &host, "--platform", "d7b", "--force"]);
    assert!(
        refused.contains("older code") && !refused.contains("lacks"),
        "{refused}"
    );
    let clone = format!("{t}-copy.d7.test");
    env.fails(&[
        "site",
        "clone",
        &host,
        &clone,
        "--platform",
        "d7b",
        "--force",
    ]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.host_state(&[&host]),
        before,
        "a refused move changes nothing"
    );

    // With the system code fixed, a forced migrate goes on to the database updates, which
    // fail here (the fixture is not Drupal): the site is back on its old platform, serving,
    // its database as it was.
    std::fs::write(
        newer.join("modules/system/system.install"),
        "<?php\nfunction system_update_7085() {\n}\nfunction system_update_7086() {\n}\n",
    )
    .unwrap();
    env.ok(&["platform", "verify", "d7b"]);
    env.dispatch_until_idle(&[]);
    let id = env.queue(&["site", "migrate", &host, "--platform", "d7b", "--force"]);
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    assert_eq!(task["status"], "failed", "{}", env.log(id));
    let log = env.log(id);
    assert!(
        log.contains("views") && log.contains("missing"),
        "the table is in the log: {log}"
    );
    assert!(log.contains("database updates"), "{log}");
    let site = env.json(&["site", "show", &host]);
    assert_eq!(site["platform"], "d7a", "{site}");
    let (status, _, page) = env.nginx.get(&host, "/");
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        mysql(&format!(
            "SELECT schema_version FROM `{db}`.system WHERE name = 'system'"
        ))
        .trim(),
        "7085"
    );

    env.ok(&["site", "delete", &host, "--force"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(mysql(&format!("SHOW DATABASES LIKE '{db}'")), "");
    assert!(!docroot.join("sites").join(&host).exists());
}

#[test]
fn a_composer_built_drupal_10_serves_from_web_and_reads_its_config_tables() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    let docroot = code_base(&env, "d10", "drupal10", "web");
    let host = format!("{t}-news.d10.test");
    let db = format!("{t}_news");
    mysql(&format!(
        "CREATE DATABASE `{db}`; CREATE USER '{db}'@'localhost' IDENTIFIED BY 'theirs'; \
         GRANT ALL ON `{db}`.* TO '{db}'@'localhost'; USE `{db}`; \
         CREATE TABLE config (collection VARCHAR(255) NOT NULL DEFAULT '', name VARCHAR(255) NOT NULL, data LONGBLOB, PRIMARY KEY (collection, name)); \
         CREATE TABLE key_value (collection VARCHAR(128) NOT NULL DEFAULT '', name VARCHAR(128) NOT NULL, value LONGBLOB NOT NULL, PRIMARY KEY (collection, name)); \
         INSERT INTO config VALUES ('', 'core.extension', 'a:3:{{s:6:\"module\";a:3:{{s:4:\"node\";i:0;s:5:\"token\";i:0;s:8:\"standard\";i:1000;}}s:5:\"theme\";a:1:{{s:7:\"olivero\";i:0;}}s:7:\"profile\";s:8:\"standard\";}}'); \
         INSERT INTO key_value VALUES ('system.schema', 'node', 'i:10101;'), ('system.schema', 'token', 'i:8002;'), ('system.schema', 'standard', 'i:8000;');"
    ));
    let dir = docroot.join("sites").join(&host);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("settings.php"),
        format!(
            "<?php\n$databases['default']['default'] = [\n  'database' => '{db}',\n  \
             'username' => '{db}',\n  'password' => 'theirs',\n  'host' => 'localhost',\n  \
             'driver' => 'mysql',\n];\n$settings['hash_salt'] = 'dGhpcyBpcyBhIGhhc2ggc2FsdCBvZiB0aGVpcnM';\n"
        ),
    )
    .unwrap();
    add_platform(&env, "d10");
    let platform = env.json(&["platform", "show", "d10"]);
    assert_eq!(platform["version"], "10.2.3", "{platform}");
    assert_eq!(platform["web_root"], "web");
    assert!(
        docroot.join("sites/sites.php").is_file(),
        "sites.php, in web/sites"
    );
    let site = env.json(&["site", "show", &host]);
    assert_eq!(site["status"], "installed", "{site}");
    let enabled = env.json(&["site", "packages", &host]);
    let names: Vec<(String, i64)> = enabled
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["schema"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("node".to_string(), 10101),
            ("olivero".to_string(), -1),
            ("standard".to_string(), 8000),
            ("token".to_string(), 8002)
        ]
    );
    let (status, _, page) = env.nginx.get(&host, "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("site-dir={host}")), "{page}");
    assert!(page.contains("tables=config,key_value"), "{page}");
    // The code beside web/ is out of the web's reach; core's config files are never served.
    for path in [
        "/composer.json",
        "/core/modules/node/node.info.yml",
        "/vendor/autoload.php",
    ] {
        let (status, _, body) = env.nginx.get(&host, path);
        assert_eq!(status, 404, "{path}: {body}");
    }
    let settings = std::fs::read_to_string(dir.join("settings.php")).unwrap();
    assert!(
        settings.contains(&format!("'^{}$'", host.replace('.', "\\\\."))),
        "{settings}"
    );

    env.ok(&["site", "delete", &host, "--force"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(mysql(&format!("SHOW DATABASES LIKE '{db}'")), "");
}

/// A request for `/` on `host` whose `Host` header says `forged` (the request line names the
/// site, so nginx serves it; PHP sees the forged header): the body.
fn get_with_forged_host(port: u16, host: &str, forged: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET http://{host}:{port}/ HTTP/1.1\r\nHost: {forged}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    raw
}

#[test]
fn a_drupal_7_sites_links_follow_its_canonical_address_not_a_forged_host() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    let docroot = code_base(&env, "d7url", "drupal7", ".");
    let host = format!("{t}-url.d7.test");
    let db = format!("{t}_url");
    foreign_site(&docroot, &host, &db);
    seven_tables(&db, &[("system", 7085), ("user", 7018)]);
    add_platform(&env, "d7url");
    assert_eq!(env.json(&["site", "show", &host])["status"], "installed");
    let port = env.nginx.port;
    let canonical = format!("link=http://{host}:{port}/node/1");

    let (status, _, page) = env.nginx.get(&host, "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&canonical), "{page}");
    for forged in ["evil.example", &format!("{host}:6666"), "evil.example:80"] {
        let page = get_with_forged_host(port, &host, forged);
        assert!(page.contains("site-dir="), "served by the site: {page}");
        assert!(
            page.contains(&canonical) && !page.contains("evil") && !page.contains("6666"),
            "Host {forged}: {page}"
        );
    }

    // The login link fjord prints names the port of the server's vhosts.
    let link = env.ok(&["site", "login-link", &host, "--no-wait"]);
    assert!(
        link.trim()
            .starts_with(&format!("http://{host}:{port}/?fjord-login=")),
        "{link}"
    );
}
