use host::LocalReads;
use std::path::PathBuf;

use super::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Compares `actual` with `snapshots/<name>`; `UPDATE_SNAPSHOTS=1` rewrites the file instead.
#[track_caller]
#[allow(clippy::disallowed_methods)]
fn check_snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}: run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "snapshot {name} differs; UPDATE_SNAPSHOTS=1 rewrites it"
    );
}

fn table(packages: &[Package]) -> String {
    let mut out = String::new();
    for p in packages {
        out.push_str(&format!(
            "{:<8} {:<12} {:<12} {:<10} {:<22} {:<6} {}\n",
            p.kind,
            p.name,
            p.version.as_deref().unwrap_or("-"),
            p.project.as_deref().unwrap_or("-"),
            p.core.as_deref().unwrap_or("-"),
            p.schema.map_or("-".to_string(), |s| s.to_string()),
            p.path.as_deref().unwrap_or("-"),
        ));
    }
    out
}

#[test]
fn drupal_7_is_found_at_the_root_and_its_packages_read() {
    let code = fixture("drupal7");
    let found = layout(&LocalReads, &code).unwrap();
    assert_eq!(
        found,
        Layout {
            major: 7,
            version: "7.98".into(),
            web_root: None,
            drush: None,
        }
    );
    let described = Drupal.describe(&LocalReads, &code).unwrap();
    assert_eq!(described.version.as_deref(), Some("7.98"));
    let names: Vec<&str> = described.packages.iter().map(|p| p.name.as_str()).collect();
    // Test modules (in tests/) and sites' own packages are not the platform's.
    assert!(
        !names.contains(&"common_test") && !names.contains(&"mysite"),
        "{names:?}"
    );
    check_snapshot("drupal7_packages.txt", &table(&described.packages));
}

#[test]
fn a_composer_built_drupal_10_is_found_in_web_and_its_packages_read() {
    let code = fixture("drupal10");
    let found = layout(&LocalReads, &code).unwrap();
    assert_eq!(
        (found.major, found.web_root),
        (10, Some(model::WebRoot::Web))
    );
    assert_eq!(found.version, "10.2.3");
    let described = Drupal.describe(&LocalReads, &code).unwrap();
    assert_eq!(described.web_root, Some(model::WebRoot::Web));
    let names: Vec<&str> = described.packages.iter().map(|p| p.name.as_str()).collect();
    assert!(
        !names.contains(&"node_test") && !names.contains(&"mysite"),
        "{names:?}"
    );
    check_snapshot("drupal10_packages.txt", &table(&described.packages));
}

#[test]
fn a_configured_drush_drives_a_code_base_without_its_own() {
    let code = fixture("drupal7");
    let mut platform = Platform {
        id: 1,
        name: model::Name::parse("n", "d7").unwrap(),
        server_id: 1,
        path: model::AbsPath::parse("p", code.to_str().unwrap()).unwrap(),
        kind: model::PlatformKind::Drupal,
        locked: false,
        php_version: None,
        web_root: None,
        drush: None,
        allow_exec: false,
        upload_limit: None,
        upstream: None,
    };
    assert_eq!(platform_layout(&LocalReads, &platform).unwrap().drush, None);
    platform.drush = Some(model::AbsPath::parse("p", "/usr/local/bin/drush8").unwrap());
    assert_eq!(
        platform_layout(&LocalReads, &platform)
            .unwrap()
            .drush
            .as_deref(),
        Some(Path::new("/usr/local/bin/drush8"))
    );
    assert_eq!(
        Drupal.site_tool(&LocalReads, &platform).as_deref(),
        Some("/usr/local/bin/drush8")
    );
}

/// A composer-built Drupal 10 platform (served from `web/`) whose code is at `code`.
fn drupal10_platform(code: &Path) -> Platform {
    Platform {
        id: 3,
        name: model::Name::parse("n", "d10").unwrap(),
        server_id: 1,
        path: model::AbsPath::parse("p", code.to_str().unwrap()).unwrap(),
        kind: model::PlatformKind::Drupal,
        locked: false,
        php_version: None,
        web_root: Some(model::WebRoot::Web),
        drush: None,
        allow_exec: false,
        upload_limit: None,
        upstream: None,
    }
}

#[test]
#[allow(clippy::disallowed_methods)]
fn the_drush_shown_is_the_one_used_the_code_bases_own_first() {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("d10");
    copy_tree(&fixture("drupal10"), &code);
    let mut platform = drupal10_platform(&code);
    assert_eq!(
        Drupal.site_tool(&LocalReads, &platform).as_deref(),
        Some("none: fjord's own PHP drives its sites")
    );
    let own = code.join("vendor/bin/drush");
    std::fs::create_dir_all(own.parent().unwrap()).unwrap();
    std::fs::write(&own, "#!/usr/bin/env php\n").unwrap();
    platform.drush = Some(model::AbsPath::parse("p", "/usr/local/bin/drush8").unwrap());
    assert_eq!(
        Drupal.site_tool(&LocalReads, &platform),
        Some(own.display().to_string())
    );
    assert_eq!(
        crate::kinds::of(model::PlatformKind::Static).site_tool(&LocalReads, &platform),
        None
    );
}

#[test]
fn what_is_not_drupal_is_refused_naming_what_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let err = Drupal
        .describe(&LocalReads, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("includes/bootstrap.inc") && err.contains("core/lib/Drupal.php"),
        "{err}"
    );
    assert!(layout(&LocalReads, &fixture("drupal7").join("modules")).is_none());
}

#[test]
fn schema_versions_are_read_from_the_install_file_not_its_comments() {
    let dir = fixture("drupal7").join("modules/node");
    assert_eq!(schema_in_code(&LocalReads, &dir, "node"), Some(7016));
    assert_eq!(schema_in_code(&LocalReads, &dir, "missing"), None);
    let values = info_values(
        "name : 'Pathauto'\nversion: '8.x-1.12' # a comment\n  - nested\n",
        10,
    );
    assert_eq!(
        values,
        [
            ("name".to_string(), "Pathauto".to_string()),
            ("version".to_string(), "8.x-1.12".to_string())
        ]
    );
}

#[test]
fn settings_of_other_hands_are_read_for_an_import() {
    let seven = "<?php\n$databases = array (\n  'default' =>\n  array (\n    'default' =>\n    array (\n      'database' => 'shop_db',\n      'username' => 'shop_user',\n      'password' => 'x',\n      'host' => 'localhost',\n      'driver' => 'mysql',\n      'prefix' => '',\n    ),\n  ),\n);\n$drupal_hash_salt = 'Yq3-7TtzmLJ8pW0Xc9bHkNdRfa2sVgEuQeLo1iZyMxA';\n";
    let found = found_in(seven, None).unwrap();
    assert_eq!(found.database, Some(("shop_db".into(), "shop_user".into())));
    assert_eq!(found.engine, Some(DbEngine::Mysql));
    assert_eq!(
        found.app_secret.as_deref(),
        Some("Yq3-7TtzmLJ8pW0Xc9bHkNdRfa2sVgEuQeLo1iZyMxA")
    );
    let ten = "<?php\n$databases['default']['default'] = [\n  \"database\" => \"blog\",\n  \"username\" => \"blog\",\n  \"driver\" => \"pgsql\",\n];\n$settings['hash_salt'] = 'short';\n";
    let found = found_in(ten, None).unwrap();
    assert_eq!(found.engine, Some(DbEngine::Postgresql));
    assert_eq!(found.database, Some(("blog".into(), "blog".into())));
    assert_eq!(
        found.app_secret, None,
        "a salt too short to be one is replaced"
    );
    // fjord's own settings.php reads the credentials file.
    let ours = "<?php\n$fjord = require '/srv/d7/private/a.example/settings.php';\n";
    let credentials = "<?php\nreturn [\n  'hash_salt' => 'abcdefabcdefabcdef',\n  'database' => [\n    'driver' => 'mysql',\n    'database' => 'a_example',\n    'username' => 'a_example',\n  ],\n];\n";
    let found = found_in(ours, Some(credentials)).unwrap();
    assert_eq!(
        found.database,
        Some(("a_example".into(), "a_example".into()))
    );
    assert_eq!(found.app_secret.as_deref(), Some("abcdefabcdefabcdef"));
    assert!(found_in(ours, None).is_none());
}

/// Serialized as Drupal 8+ stores `core.extension`.
const CORE_EXTENSION: &str = r#"a:3:{s:6:"module";a:5:{s:4:"node";i:0;s:6:"system";i:0;s:4:"text";i:0;s:5:"token";i:0;s:8:"standard";i:1000;}s:5:"theme";a:1:{s:7:"olivero";i:0;}s:7:"profile";s:8:"standard";}"#;

fn expected_modern() -> Vec<schema::Enabled> {
    let e = |kind: &str, name: &str, schema: Option<i64>| schema::Enabled {
        kind: kind.into(),
        name: name.into(),
        schema,
    };
    vec![
        e("module", "node", Some(10101)),
        e("theme", "olivero", None),
        e("profile", "standard", Some(8000)),
        e("module", "system", Some(10201)),
        e("module", "text", Some(8000)),
        e("module", "token", Some(8002)),
    ]
}

fn expected_seven() -> Vec<schema::Enabled> {
    let e = |kind: &str, name: &str, schema: Option<i64>| schema::Enabled {
        kind: kind.into(),
        name: name.into(),
        schema,
    };
    vec![
        e("theme", "bartik", None),
        e("module", "node", Some(7016)),
        e("module", "standard", Some(0)),
        e("module", "system", Some(7085)),
        e("module", "views", Some(7301)),
    ]
}

/// Drupal 7's `system` table and Drupal 10's `config` and `key_value`, as Drupal lays them
/// out (their values PHP-serialized), in `sql` for one engine.
fn drupal_tables_sql(blob: &str) -> String {
    let info = r#"a:2:{s:4:"name";s:4:"Node";s:7:"version";s:4:"7.98";}"#;
    let mut sql = format!(
        "CREATE TABLE system (filename VARCHAR(255) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, type VARCHAR(12) NOT NULL, owner VARCHAR(255) NOT NULL DEFAULT '', status INT NOT NULL DEFAULT 0, bootstrap INT NOT NULL DEFAULT 0, schema_version SMALLINT NOT NULL DEFAULT -1, weight INT NOT NULL DEFAULT 0, info {blob});
INSERT INTO system VALUES ('modules/node/node.module', 'node', 'module', '', 1, 0, 7016, 0, '{info}');
INSERT INTO system VALUES ('modules/system/system.module', 'system', 'module', '', 1, 0, 7085, 0, '{info}');
INSERT INTO system VALUES ('modules/php/php.module', 'php', 'module', '', 0, 0, 7000, 0, '{info}');
INSERT INTO system VALUES ('sites/all/modules/views/views.module', 'views', 'module', '', 1, 0, 7301, 0, '{info}');
INSERT INTO system VALUES ('profiles/standard/standard.profile', 'standard', 'module', '', 1, 0, 0, 1000, '{info}');
INSERT INTO system VALUES ('themes/bartik/bartik.info', 'bartik', 'theme', 'themes/engines/phptemplate/phptemplate.engine', 1, 0, -1, 0, '{info}');
INSERT INTO system VALUES ('themes/garland/garland.info', 'garland', 'theme', '', 0, 0, -1, 0, '{info}');
CREATE TABLE config (collection VARCHAR(255) NOT NULL DEFAULT '', name VARCHAR(255) NOT NULL, data {blob}, PRIMARY KEY (collection, name));
INSERT INTO config VALUES ('', 'core.extension', '{CORE_EXTENSION}');
INSERT INTO config VALUES ('language.fr', 'core.extension', 'a:0:{{}}');
CREATE TABLE key_value (collection VARCHAR(128) NOT NULL DEFAULT '', name VARCHAR(128) NOT NULL, value {blob} NOT NULL, PRIMARY KEY (collection, name));
"
    );
    for (name, version) in [
        ("node", 10101),
        ("system", 10201),
        ("text", 8000),
        ("token", 8002),
        ("standard", 8000),
    ] {
        sql.push_str(&format!(
            "INSERT INTO key_value VALUES ('system.schema', '{name}', 'i:{version};');\n"
        ));
    }
    sql.push_str("INSERT INTO key_value VALUES ('state', 'system.cron_last', 'i:1700000000;');\n");
    sql
}

#[test]
#[allow(clippy::disallowed_methods)]
fn enabled_packages_and_schema_versions_are_read_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.sqlite");
    let mut sqlite = std::process::Command::new("sqlite3")
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3 runs (setup-host installs it)");
    use std::io::Write;
    sqlite
        .stdin
        .take()
        .unwrap()
        .write_all(drupal_tables_sql("BLOB").as_bytes())
        .unwrap();
    assert!(sqlite.wait().unwrap().success());
    let db = host::SiteDb::Sqlite(&path);
    assert!(db.has_table("system").unwrap() && !db.has_table("users").unwrap());
    assert_eq!(
        schema::enabled(&LocalReads, &db, 7).unwrap(),
        expected_seven()
    );
    assert_eq!(
        schema::enabled(&LocalReads, &db, 10).unwrap(),
        expected_modern()
    );
}

/// The machine's MariaDB (root on its socket) or PostgreSQL (postgres on 127.0.0.1).
fn admin_ctl(kind: host::DbKind) -> host::DbCtl {
    let mysql = kind == host::DbKind::Mysql;
    host::DbCtl {
        kind,
        socket: None,
        host: (!mysql).then(|| "127.0.0.1".into()),
        port: (!mysql).then_some(5432),
        admin_user: if mysql { "root" } else { "postgres" }.into(),
        password_file: None,
        password_env: None,
        client_host: None,
    }
}

/// A site's database and user, as fjord makes them, with `sql` run in it as the site's user;
/// dropped when the test ends, however it ends.
struct TenantDb {
    ctl: host::DbCtl,
    name: String,
    user: String,
    password: String,
}

impl TenantDb {
    fn new(kind: host::DbKind, sql: &str) -> Self {
        let tag = host::random_secret(3).unwrap();
        let tenant = TenantDb {
            ctl: admin_ctl(kind),
            name: format!("t{tag}_drupal"),
            user: format!("t{tag}_user"),
            password: host::random_secret(12).unwrap(),
        };
        tenant
            .ctl
            .create(&tenant.name, &tenant.user, &tenant.password)
            .unwrap();
        tenant.run_as_tenant(sql);
        tenant
    }

    #[allow(clippy::disallowed_methods)]
    fn run_as_tenant(&self, sql: &str) {
        use std::io::Write;
        let mut cmd = if self.ctl.kind == host::DbKind::Mysql {
            let mut c = std::process::Command::new("mariadb");
            c.args(["-u", &self.user, "-D", &self.name]);
            c
        } else {
            let mut c = std::process::Command::new("psql");
            c.args([
                "-h",
                "127.0.0.1",
                "-U",
                &self.user,
                "-d",
                &self.name,
                "-XqAt",
            ])
            .args(["-v", "ON_ERROR_STOP=1"]);
            c
        };
        let mut child = cmd
            .env("MYSQL_PWD", &self.password)
            .env("PGPASSWORD", &self.password)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the database client runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn reader(&self) -> host::SiteDb<'_> {
        host::SiteDb::Server {
            ctl: &self.ctl,
            database: &self.name,
            user: &self.user,
            password: &self.password,
        }
    }
}

impl Drop for TenantDb {
    fn drop(&mut self) {
        let _ = self.ctl.drop(&self.name, &self.user);
    }
}

#[test]
fn enabled_packages_and_schema_versions_are_read_from_mariadb() {
    let tenant = TenantDb::new(host::DbKind::Mysql, &drupal_tables_sql("LONGBLOB"));
    let db = tenant.reader();
    assert!(db.has_table("key_value").unwrap());
    assert_eq!(
        schema::enabled(&LocalReads, &db, 7).unwrap(),
        expected_seven()
    );
    assert_eq!(
        schema::enabled(&LocalReads, &db, 10).unwrap(),
        expected_modern()
    );
}

#[test]
fn enabled_packages_and_schema_versions_are_read_from_postgresql() {
    // Drupal on PostgreSQL keeps these values in bytea columns.
    let tenant = TenantDb::new(host::DbKind::Postgresql, &drupal_tables_sql("BYTEA"));
    let db = tenant.reader();
    assert!(db.is_postgresql() && db.has_table("system").unwrap());
    assert_eq!(
        schema::enabled(&LocalReads, &db, 7).unwrap(),
        expected_seven()
    );
    assert_eq!(
        schema::enabled(&LocalReads, &db, 10).unwrap(),
        expected_modern()
    );
}

/// A site owns its schema: a view named like Drupal's `system` table, behind a function that
/// runs with the rights of whoever reads it, reads nothing the site could not read itself.
#[test]
fn a_sites_view_over_its_own_function_runs_with_the_sites_rights_on_both_servers() {
    let mariadb_trap = "CREATE FUNCTION leak() RETURNS TEXT SQL SECURITY INVOKER \
          RETURN (SELECT GROUP_CONCAT(CONCAT(user, '@', host)) FROM mysql.user);
        CREATE SQL SECURITY INVOKER VIEW system AS \
          SELECT leak() AS name, 'module' AS type, 1 AS schema_version, 1 AS status;";
    let postgresql_trap = "CREATE FUNCTION leak() RETURNS text LANGUAGE sql \
          AS $$ SELECT string_agg(rolname || ':' || coalesce(rolpassword, ''), ',') FROM pg_authid $$;
        CREATE FUNCTION run() RETURNS text LANGUAGE plpgsql AS $$ BEGIN \
          EXECUTE 'COPY (SELECT 1) TO PROGRAM ''true'''; RETURN 'ran'; END $$;
        CREATE VIEW system AS \
          SELECT leak() AS name, 'module' AS type, 1 AS schema_version, 1 AS status \
          UNION ALL SELECT run(), 'module', 1, 1;";
    for (kind, trap) in [
        (host::DbKind::Mysql, mariadb_trap),
        (host::DbKind::Postgresql, postgresql_trap),
    ] {
        let tenant = TenantDb::new(kind, trap);
        let read = schema::enabled(&LocalReads, &tenant.reader(), 7);
        let shown = format!("{read:?}");
        for secret in ["root@", "postgres:", "ran"] {
            assert!(!shown.contains(secret), "{kind:?}: {shown}");
        }
        // The server ends the function's read: the site may not read those tables.
        match read {
            Err(e) => assert!(
                e.contains("denied") || e.contains("permission") || e.contains("lack rights"),
                "{kind:?}: {e}"
            ),
            Ok(enabled) => panic!("{kind:?}: the trap was read: {enabled:?}"),
        }
    }
}

/// What a site's database answers is hostile: a name that is not a package name, or a kind
/// fjord does not know, is dropped; a real one is kept.
#[test]
fn names_read_from_a_sites_database_that_are_not_package_names_are_dropped() {
    let tenant = TenantDb::new(
        host::DbKind::Mysql,
        "CREATE VIEW system AS SELECT 'evil name; DROP' AS name, 'module' AS type, \
           1 AS schema_version, 1 AS status \
         UNION ALL SELECT 'node', 'module', 7016, 1 \
         UNION ALL SELECT 'views', 'weird kind', 1, 1 \
         UNION ALL SELECT REPEAT('a', 200), 'module', 1, 1;",
    );
    let enabled = schema::enabled(&LocalReads, &tenant.reader(), 7).unwrap();
    assert_eq!(
        enabled,
        vec![schema::Enabled {
            kind: "module".into(),
            name: "node".into(),
            schema: Some(7016),
        }]
    );
}

#[test]
fn a_database_without_drupal_tables_is_an_error_not_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.sqlite");
    let db = host::SiteDb::Sqlite(&path);
    assert!(schema::enabled(&LocalReads, &db, 7).is_err());
    assert!(schema::from_config_rows(&[], &[]).is_err());
}

/// Copies a fixture tree into `to`.
#[allow(clippy::disallowed_methods)]
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A recording stand-in for the PHP command line (not PHP): it writes the arguments it was
/// given, its environment and its standard input to a file, and prints a line about a
/// password, as drush's site:install does.
const RECORDING_PHP_STAND_IN: &str = "#!/bin/sh
record=\"$(dirname \"$0\")/record\"
: > \"$record\"
for arg in \"$@\"; do printf 'arg %s\\n' \"$arg\" >> \"$record\"; done
env | LC_ALL=C sort | sed 's/^/env /' >> \"$record\"
echo '--- stdin' >> \"$record\"
cat >> \"$record\"
echo 'Installation complete.  User name: admin  User password: sEcReT'
echo 'done'
";

struct Recorded {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: String,
}

#[allow(clippy::disallowed_methods)]
fn recorded(dir: &Path) -> Recorded {
    let text = std::fs::read_to_string(dir.join("record")).unwrap();
    let (head, stdin) = text.split_once("--- stdin\n").unwrap();
    let mut args = Vec::new();
    let mut env = Vec::new();
    for line in head.lines() {
        if let Some(arg) = line.strip_prefix("arg ") {
            args.push(arg.to_string());
        } else if let Some((k, v)) = line.strip_prefix("env ").and_then(|l| l.split_once('=')) {
            env.push((k.to_string(), v.to_string()));
        }
    }
    Recorded {
        args,
        env,
        stdin: stdin.to_string(),
    }
}

#[test]
#[allow(clippy::disallowed_methods)]
fn drush_and_the_helper_are_called_with_exact_arguments_and_environment() {
    use std::os::unix::fs::PermissionsExt;
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !is_root {
        eprintln!("skipped: runs PHP as a site's user, which needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("d10");
    copy_tree(&fixture("drupal10"), &code);
    let stand_in = dir.path().join("recording-php-stand-in");
    std::fs::write(&stand_in, RECORDING_PHP_STAND_IN).unwrap();
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let platform = drupal10_platform(&code);
    let site = Site {
        id: 7,
        name: Hostname::parse("n", "example.com").unwrap(),
        platform_id: 3,
        aliases: Vec::new(),
        redirect_aliases: false,
        status: model::SiteStatus::Installed,
        client_id: None,
        database: None,
        app_secret: "ab".repeat(32),
        upload_limit: None,
        https: Default::default(),
    };
    let private_dir = code.join("private/example.com");
    let app = SiteApp {
        reads: std::sync::Arc::new(LocalReads),
        platform: &platform,
        site: &site,
        files_dir: code.join("web/sites/example.com"),
        private_dir: private_dir.clone(),
        php: Some(SitePhp {
            user: "root".into(),
            pool: "pool".into(),
            cli: stand_in.clone(),
            socket: "/run/x.sock".into(),
            tmp_dir: private_dir.join("tmp"),
            site_config: private_dir.join("settings.php"),
            open_basedir: vec![code.clone()],
        }),
        db: None,
        sqlite: private_dir.join("database.sqlite"),
        url: "http://example.com".into(),
    };
    let input = InstallInput {
        title: Some("My shop".into()),
        admin_user: Some("boss".into()),
        admin_email: Some("boss@example.com".into()),
        profile: Some("minimal".into()),
    };
    let ini = |r: &Recorded| -> Vec<String> {
        r.args
            .iter()
            .take_while(|a| *a == "-d" || a.contains('=') && !a.starts_with("--"))
            .cloned()
            .collect()
    };
    let expected_env = |extra: &[(&str, String)]| {
        let mut env: Vec<(String, String)> = vec![
            (
                "FJORD_SITE_CONFIG".into(),
                private_dir.join("settings.php").display().to_string(),
            ),
            ("FJORD_SITE_DIR".into(), "example.com".into()),
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            (
                "TMPDIR".into(),
                private_dir.join("tmp").display().to_string(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env.sort();
        env
    };
    let drush_path = code.join("vendor/bin/drush");
    let drush_args = |command: &[&str]| -> Vec<String> {
        let mut args = vec![
            drush_path.display().to_string(),
            format!("--root={}", code.join("web").display()),
            "--uri=http://example.com".to_string(),
            "--yes".to_string(),
            "--no-interaction".to_string(),
        ];
        args.extend(command.iter().map(|s| s.to_string()));
        args
    };
    let home = ("HOME", private_dir.display().to_string());
    let strip_env = |r: &Recorded| -> Vec<(String, String)> {
        // The shell adds these itself.
        r.env
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "PWD" | "SHLVL" | "_" | "OLDPWD"))
            .cloned()
            .collect()
    };

    // With the platform's drush.
    std::fs::create_dir_all(code.join("vendor/bin")).unwrap();
    std::fs::write(
        &drush_path,
        "#!/usr/bin/env php\n<?php // stand-in: never run\n",
    )
    .unwrap();
    let layout = layout(&LocalReads, &code).unwrap();
    assert_eq!(layout.drush.as_deref(), Some(drush_path.as_path()));
    let output = helper::install(&app, &layout, &input)
        .unwrap()
        .run()
        .unwrap();
    assert!(
        !output.contains("sEcReT") && output.contains("done"),
        "{output}"
    );
    let r = recorded(dir.path());
    assert_eq!(
        r.args[ini(&r).len()..],
        drush_args(&[
            "site:install",
            "minimal",
            "--site-name=My shop",
            "--site-mail=boss@example.com",
            "--account-name=boss",
            "--account-mail=boss@example.com",
            "--locale=en",
            "--sites-subdir=example.com",
        ])[..]
    );
    // drush refuses to run under open_basedir; the pool's other limits hold.
    assert!(
        !ini(&r).iter().any(|a| a.starts_with("open_basedir=")),
        "{:?}",
        ini(&r)
    );
    assert!(ini(&r).iter().any(|a| a.starts_with("memory_limit=")));
    assert!(ini(&r).iter().any(|a| a.starts_with("ffi.enable=")));
    assert_eq!(strip_env(&r), expected_env(std::slice::from_ref(&home)));
    assert_eq!(r.stdin, "");
    for (run, command) in [
        (helper::update(&app, &layout), vec!["updatedb"]),
        (helper::cron(&app, &layout), vec!["cron"]),
        (helper::cache_clear(&app, &layout), vec!["cache:rebuild"]),
    ] {
        run.unwrap().run().unwrap();
        let r = recorded(dir.path());
        assert_eq!(r.args[ini(&r).len()..], drush_args(&command)[..]);
        assert_eq!(strip_env(&r), expected_env(std::slice::from_ref(&home)));
    }

    // Without one: fjord's helper, its code on stdin, the password in the environment only.
    std::fs::remove_file(&drush_path).unwrap();
    let layout = super::layout(&LocalReads, &code).unwrap();
    assert_eq!(layout.drush, None);
    helper::install(&app, &layout, &input)
        .unwrap()
        .run()
        .unwrap();
    let r = recorded(dir.path());
    // fjord's own PHP keeps the pool's open_basedir.
    assert!(ini(&r).iter().any(|a| a.starts_with("open_basedir=")));
    assert_eq!(
        r.args.len(),
        ini(&r).len(),
        "no argument but the ini settings: {:?}",
        r.args
    );
    let password = r
        .env
        .iter()
        .find(|(k, _)| k == "FJORD_ADMIN_PASSWORD")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(password.len(), 24);
    assert!(!r.stdin.contains(&password) && !r.args.iter().any(|a| a.contains(&password)));
    assert_eq!(
        strip_env(&r),
        expected_env(&[
            ("FJORD_ADMIN_EMAIL", "boss@example.com".into()),
            ("FJORD_ADMIN_PASSWORD", password.clone()),
            ("FJORD_ADMIN_USER", "boss".into()),
            ("FJORD_PROFILE", "minimal".into()),
            ("FJORD_TITLE", "My shop".into()),
        ])
    );
    assert!(
        r.stdin.contains("install_drupal($class_loader, ["),
        "{}",
        r.stdin
    );
    assert!(
        r.stdin
            .contains(&format!("chdir('{}');", code.join("web").display()))
    );
    for (run, calls) in [
        (helper::update(&app, &layout), "update_do_one("),
        (
            helper::cron(&app, &layout),
            "\\Drupal::service('cron')->run()",
        ),
        (
            helper::cache_clear(&app, &layout),
            "drupal_flush_all_caches();",
        ),
    ] {
        run.unwrap().run().unwrap();
        let r = recorded(dir.path());
        assert!(r.stdin.contains(calls), "{calls} in {}", r.stdin);
        assert!(r.stdin.contains("DrupalKernel::createFromRequest"));
        assert_eq!(strip_env(&r), expected_env(&[]));
    }
}
