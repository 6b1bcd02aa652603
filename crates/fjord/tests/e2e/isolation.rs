//! Tenant isolation, tried as a hostile site would: what one site's database user, code and
//! files can reach of another's, of the database servers and of fjord itself.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::databases::{Cleanup, db_env, env_with_databases, site_sql, token};
use crate::harness::Env;

/// The database clients fjord runs, each replaced on the PATH by a script that records its
/// arguments and then runs the real one.
struct RecordedClients {
    dir: tempfile::TempDir,
    log: PathBuf,
}

const CLIENTS: [&str; 7] = [
    "mariadb",
    "mysql",
    "mariadb-dump",
    "mysqldump",
    "psql",
    "pg_dump",
    "pg_restore",
];

impl RecordedClients {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let log = dir.path().join("argv.log");
        std::fs::write(&log, "").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
        for client in CLIENTS {
            let Some(real) = which(client) else { continue };
            // Arguments separated by US, invocations by RS: SQL may hold newlines.
            let script = format!(
                "#!/bin/sh\nprintf '%s\\037' \"{client}\" \"$@\" >> '{}'\nprintf '\\036' >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                log.display(),
                real.display()
            );
            let path = dir.path().join(client);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        RecordedClients { dir, log }
    }

    fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Every recorded invocation: the program, then its arguments.
    fn invocations(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .split('\u{1e}')
            .filter(|call| !call.is_empty())
            .map(|call| {
                call.split('\u{1f}')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Runs SQL with `site`'s credentials in another database, `database`.
fn sql_in_other_database(
    env: &Env,
    site: &str,
    database: &str,
    sql: &str,
) -> Result<String, String> {
    let creds = db_env(env, site);
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
        _ => Command::new("psql")
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
    }
    .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Two clients' sites whose database names differ only where a `-` or `.` became `_` (which
/// MariaDB reads as a wildcard in a grant): each reaches only its own database, on both
/// servers, also after a grant made the old way is repaired by a verify. Through a whole life
/// cycle (install, verify with a repair, backup, restore, clone, migrate, delete), no
/// database client fjord starts has a password, or any statement that sets one, in its
/// arguments, where every local user (every site's PHP) could read it from `/proc`.
#[test]
fn look_alike_sites_reach_only_their_own_database_and_no_password_is_ever_in_a_command_line() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let clients = RecordedClients::new();
    let env = env_with_databases();
    env.set_env("PATH", &clients.path_env());
    env.ok(&[
        "platform",
        "add",
        "p2",
        "--server",
        "t",
        "--path",
        &env.platform_path("p2"),
    ]);
    env.dispatch_until_idle(&[]);
    let mut passwords = BTreeSet::new();
    for (engine, tag) in [("mysql", "my"), ("postgresql", "pg")] {
        let a = format!("{t}-{tag}-ad-b.example");
        let b = format!("{t}-{tag}-advb.example");
        for site in [&a, &b] {
            env.ok(&["site", "add", site, "--platform", "p1", "--db", engine]);
        }
        env.dispatch_until_idle(&[]);
        site_sql(&env, &b, "CREATE TABLE secrets (v VARCHAR(20))").unwrap();
        site_sql(&env, &b, "INSERT INTO secrets VALUES ('b-only')").unwrap();
        let b_db = db_env(&env, &b)["DB_NAME"].clone();
        let a_db = db_env(&env, &a)["DB_NAME"].clone();
        assert_eq!(
            a_db.replace('_', ""),
            b_db.replace('_', "").replacen("advb", "adb", 1),
            "the pair differs only where the wildcard stands"
        );
        let reaches_b = |why: &str| {
            for sql in [
                "SELECT v FROM secrets",
                "CREATE TABLE planted (x INT)",
                "DROP TABLE secrets",
            ] {
                let got = sql_in_other_database(&env, &a, &b_db, sql);
                assert!(got.is_err(), "{engine} {why}: {sql}: {got:?}");
            }
        };
        reaches_b("after install");

        if engine == "mysql" {
            let user = db_env(&env, &a)["DB_USER"].clone();
            // A grant as fjord used to make it: unescaped, so it matches the look-alike.
            crate::harness::mysql(&format!(
                "GRANT ALL PRIVILEGES ON `{a_db}`.* TO '{user}'@'localhost'"
            ));
            assert!(
                sql_in_other_database(&env, &a, &b_db, "SELECT v FROM secrets").is_ok(),
                "the old grant opened the look-alike"
            );
            let id = env.queue(&["site", "verify", &a]);
            env.dispatch_until_idle(&[]);
            assert!(env.log(id).contains("granted more than"), "{}", env.log(id));
            reaches_b("after verify repaired the old grant");
            // And a broken password is repaired (its statements carry the password).
            crate::harness::mysql(&format!(
                "ALTER USER '{user}'@'localhost' IDENTIFIED BY 'wrong'"
            ));
        } else {
            let user = db_env(&env, &a)["DB_USER"].clone();
            crate::databases::psql(&format!("ALTER ROLE \"{user}\" NOLOGIN"));
        }
        env.ok(&["site", "verify", &a]);
        env.dispatch_until_idle(&[]);
        site_sql(&env, &a, "CREATE TABLE kept (x INT)").unwrap();
        site_sql(&env, &a, "INSERT INTO kept VALUES (7)").unwrap();

        let clone = format!("{t}-{tag}-copy.example");
        for args in [
            vec!["site", "backup", a.as_str()],
            vec!["site", "restore", a.as_str()],
            vec![
                "site",
                "clone",
                a.as_str(),
                clone.as_str(),
                "--platform",
                "p1",
            ],
            vec!["site", "migrate", a.as_str(), "--platform", "p2"],
        ] {
            let id = env.queue(&args);
            env.dispatch_until_idle(&[]);
            assert_eq!(
                env.task(id)["status"],
                "success",
                "{args:?}: {}",
                env.log(id)
            );
        }
        assert_eq!(site_sql(&env, &a, "SELECT x FROM kept").unwrap(), "7");
        assert_eq!(site_sql(&env, &clone, "SELECT x FROM kept").unwrap(), "7");
        reaches_b("after the life cycle");
        assert_eq!(
            site_sql(&env, &b, "SELECT v FROM secrets").unwrap(),
            "b-only"
        );
        for site in [&a, &b, &clone] {
            passwords.insert(db_env(&env, site)["DB_PASSWORD"].clone());
            env.ok(&["site", "delete", site, "--force"]);
        }
        env.dispatch_until_idle(&[]);
    }
    assert_eq!(crate::databases::leftovers(&t), Vec::<String>::new());

    let invocations = clients.invocations();
    let programs: BTreeSet<&str> = invocations.iter().map(|c| c[0].as_str()).collect();
    for needed in ["psql", "pg_dump", "pg_restore"] {
        assert!(
            programs.contains(needed),
            "{needed} was recorded: {programs:?}"
        );
    }
    assert!(
        programs.contains("mariadb") || programs.contains("mysql"),
        "{programs:?}"
    );
    for call in &invocations {
        let line = call.join(" ");
        for password in &passwords {
            assert!(
                !line.contains(password.as_str()),
                "a password in argv: {line}"
            );
        }
        let upper = line.to_uppercase();
        assert!(
            !upper.contains("IDENTIFIED") && !upper.contains("PASSWORD"),
            "a statement that sets a password in argv: {line}"
        );
    }
}
