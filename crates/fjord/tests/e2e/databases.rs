//! Site databases on the machine's real MariaDB and PostgreSQL, and on SQLite. Every name
//! carries a random token, and a guard drops whatever a test made, pass or fail.

use std::process::Command;

use crate::harness::{Env, assert_same_state, mysql};

pub(crate) fn token() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t{:06x}", (t ^ u128::from(std::process::id())) & 0xff_ffff)
}

pub(crate) fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-XtAq",
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Databases and users (on both servers) whose names start with `prefix`.
pub(crate) fn leftovers(prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in mysql(&format!(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '{prefix}%'"
    ))
    .lines()
    {
        found.push(format!("mysql database {line}"));
    }
    for line in mysql(&format!(
        "SELECT user FROM mysql.user WHERE user LIKE '{prefix}%'"
    ))
    .lines()
    {
        found.push(format!("mysql user {line}"));
    }
    for line in psql(&format!(
        "SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'"
    ))
    .lines()
    {
        found.push(format!("postgresql database {line}"));
    }
    for line in psql(&format!(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE '{prefix}%'"
    ))
    .lines()
    {
        found.push(format!("postgresql role {line}"));
    }
    found
}

/// Drops everything of this test's token, whatever happened.
pub(crate) struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for item in leftovers(&self.0) {
            let name = item.rsplit(' ').next().unwrap();
            let _ = match item.split(' ').next().unwrap() {
                "mysql" if item.contains("database") => Command::new("mariadb")
                    .args(["-uroot", "-e", &format!("DROP DATABASE IF EXISTS `{name}`")])
                    .status(),
                "mysql" => Command::new("mariadb")
                    .args([
                        "-uroot",
                        "-e",
                        &format!("DROP USER IF EXISTS '{name}'@'localhost', '{name}'@'127.0.0.1'"),
                    ])
                    .status(),
                _ if item.contains("database") => Command::new("psql")
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-c",
                        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                    ])
                    .status(),
                _ => Command::new("psql")
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-c",
                        &format!("DROP ROLE IF EXISTS \"{name}\""),
                    ])
                    .status(),
            };
        }
    }
}

pub(crate) fn env_with_databases() -> Env {
    let env = Env::bare();
    let prefix = env.nginx.prefix().display().to_string();
    env.ok(&[
        "server",
        "add",
        "t",
        "--monitor",
        "off",
        "--nginx-conf",
        &format!("{prefix}/nginx.conf"),
        "--nginx-prefix",
        &prefix,
        "--nginx-include-dir",
        &format!("{prefix}/conf.d"),
        "--listen",
        &env.nginx.listen(),
        "--db",
        "mysql",
        "--db",
        "postgresql",
        "--db",
        "sqlite",
    ]);
    env.ok(&[
        "platform",
        "add",
        "p1",
        "--server",
        "t",
        "--path",
        &env.platform_path("p1"),
    ]);
    env.dispatch_until_idle(&[]);
    let log = env.log(1);
    assert!(
        log.contains("Mysql administrator can create and drop databases"),
        "{log}"
    );
    assert!(
        log.contains("Postgresql administrator can create and drop databases"),
        "{log}"
    );
    env
}

pub(crate) fn db_env(env: &Env, site: &str) -> std::collections::HashMap<String, String> {
    // The site may be on any platform: find its private dir.
    let path = std::fs::read_dir(env.platforms.path())
        .unwrap()
        .flatten()
        .map(|p| p.path().join("private").join(site).join("db.env"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no db.env for {site}"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o640, "credentials are not world-readable");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs SQL as the site's own user, with the credentials fjord wrote.
pub(crate) fn site_sql(env: &Env, site: &str, sql: &str) -> Result<String, String> {
    site_sql_in(env, site, None, sql)
}

/// Runs SQL as the site's own user, in `database` (another site's, say) or else its own.
pub(crate) fn site_sql_in(
    env: &Env,
    site: &str,
    database: Option<&str>,
    sql: &str,
) -> Result<String, String> {
    let creds = db_env(env, site);
    // SQLite's credentials name a file, not a database.
    let database = database
        .or(creds.get("DB_NAME").map(String::as_str))
        .unwrap_or_default()
        .to_string();
    let database = database.as_str();
    let out = match creds["DB_ENGINE"].as_str() {
        "mysql" => Command::new("mariadb")
            .args([
                "--protocol=SOCKET",
                &format!("--socket={}", creds["DB_SOCKET"]),
                &format!("--user={}", creds["DB_USER"]),
                "-N",
                "-B",
                database,
                "-e",
                sql,
            ])
            .env("MYSQL_PWD", &creds["DB_PASSWORD"])
            .output(),
        "postgresql" => Command::new("psql")
            .args([
                "-h",
                &creds["DB_HOST"],
                "-U",
                &creds["DB_USER"],
                "-d",
                database,
                "-XtAq",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", &creds["DB_PASSWORD"])
            .output(),
        _ => Command::new("sqlite3")
            .args([&creds["DB_PATH"], sql])
            .output(),
    }
    .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn site_databases_live_and_die_with_their_sites() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let env = env_with_databases();
    for engine in ["mysql", "postgresql", "sqlite"] {
        let site = format!("{t}-{engine}.example");
        env.ok(&["site", "add", &site, "--platform", "p1", "--db", engine]);
        env.dispatch_until_idle(&[]);
        assert_eq!(env.json(&["site", "show", &site])["status"], "installed");
        let creds = db_env(&env, &site);
        if engine != "sqlite" {
            assert!(
                creds["DB_PASSWORD"].len() >= 24,
                "a generated password of at least 24 characters"
            );
            let shown = env.ok(&["site", "show", &site, "--json"]);
            assert!(
                !shown.contains(&creds["DB_PASSWORD"]),
                "the password is never printed"
            );
        }
        site_sql(&env, &site, "CREATE TABLE kept (x INTEGER)").unwrap();
        site_sql(&env, &site, "INSERT INTO kept VALUES (42)").unwrap();

        // Verify repairs credentials changed behind fjord's back.
        match engine {
            "mysql" => drop(mysql(&format!(
                "ALTER USER '{}'@'localhost' IDENTIFIED BY 'wrong'",
                creds["DB_USER"]
            ))),
            "postgresql" => drop(psql(&format!(
                "ALTER ROLE \"{}\" NOLOGIN",
                creds["DB_USER"]
            ))),
            _ => {}
        }
        if engine != "sqlite" {
            assert!(
                site_sql(&env, &site, "SELECT 1").is_err(),
                "{engine}: the break took"
            );
        }
        env.ok(&["site", "verify", &site]);
        env.dispatch_until_idle(&[]);
        assert_eq!(
            site_sql(&env, &site, "SELECT x FROM kept").unwrap(),
            "42",
            "{engine}: verify repaired access"
        );
    }
    // A site's user reaches only its own database.
    let mysql_site = format!("{t}-mysql.example");
    assert!(
        site_sql(
            &env,
            &mysql_site,
            &format!("SELECT 1 FROM `{t}_postgresql_example`.kept")
        )
        .is_err()
    );

    // Delete fails after each of its steps in turn: the database and its row survive each time.
    let site = format!("{t}-mysql.example");
    env.ok(&["site", "disable", &site]);
    env.dispatch_until_idle(&[]);
    let mut step = 1;
    loop {
        let before = env.host_state(&[site.as_str()]);
        let id = env.queue(&["site", "delete", &site]);
        env.dispatch_until_idle(&[&format!("fail-after:site-delete:{step}")]);
        if env.task(id)["status"] == "success" {
            break;
        }
        assert_same_state(
            &before,
            &env.host_state(&[site.as_str()]),
            &format!("delete failing after step {step}"),
        );
        assert_eq!(
            site_sql(&env, &site, "SELECT x FROM kept").unwrap(),
            "42",
            "delete failing after step {step}"
        );
        step += 1;
        assert!(step < 20);
    }
    assert!(
        step >= 4,
        "delete with a database has at least 4 steps, got {}",
        step - 1
    );
    for engine in ["postgresql", "sqlite"] {
        let site = format!("{t}-{engine}.example");
        env.ok(&["site", "delete", &site, "--force"]);
    }
    env.dispatch_until_idle(&[]);
    assert_eq!(
        leftovers(&t),
        Vec::<String>::new(),
        "no orphan database or user"
    );
    assert!(
        !env.platforms
            .path()
            .join("p1/private")
            .join(format!("{t}-sqlite.example"))
            .exists()
    );
}

#[test]
fn a_failed_install_leaves_no_orphan_database() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let env = env_with_databases();
    for engine in ["mysql", "postgresql"] {
        let site = format!("{t}-{engine}.example");
        let install = env.queue(&["site", "add", &site, "--platform", "p1", "--db", engine]);
        let mut step = 1;
        loop {
            let before = env.host_state(&[site.as_str()]);
            env.dispatch_until_idle(&[&format!("fail-after:site-install:{step}")]);
            if env.task(install)["status"] == "success" {
                break;
            }
            assert_same_state(
                &before,
                &env.host_state(&[site.as_str()]),
                &format!("{engine} install failing after step {step}"),
            );
            assert_eq!(
                leftovers(&t).iter().filter(|l| l.contains(engine)).count(),
                0,
                "{engine} step {step}: {:?}",
                leftovers(&t)
            );
            env.ok(&["task", "retry", &install.to_string()]);
            step += 1;
            assert!(step < 20);
        }
        assert!(step >= 7, "{engine} install has {} steps", step - 1);
        // A database fjord did not make is never adopted.
        let other = format!("{t}-other-{engine}.example");
        let name = format!("{t}_other_{engine}_example");
        if engine == "mysql" {
            mysql(&format!("CREATE DATABASE `{name}`"));
        } else {
            psql(&format!("CREATE DATABASE \"{name}\""));
        }
        let id = env.queue(&["site", "add", &other, "--platform", "p1", "--db", engine]);
        env.dispatch_until_idle(&[]);
        let task = env.task(id);
        assert_eq!(task["status"], "failed");
        assert!(
            task["error"]
                .as_str()
                .unwrap()
                .contains("will not touch it"),
            "{task}"
        );
    }
}
