//! Tenant isolation, tried as a hostile site would: what one site's database user, code and
//! files can reach of another's, of the database servers and of fjord itself.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::databases::{Cleanup, db_env, env_with_databases, site_sql, site_sql_in, token};
use crate::harness::Env;
use crate::private_db::{PrivateMariaDb, PrivatePostgres};

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
    // The machine's own servers: fjord's verify says whether any local user can sign in as
    // their administrator, as a stranger finds by trying.
    let open_to_nobody = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .args(["mariadb", "--no-defaults", "-uroot", "-e", "SELECT 1"])
        .current_dir("/")
        .output()
        .unwrap()
        .status
        .success();
    assert_eq!(
        env.log(1)
            .contains("any local user can sign in to this Mysql server as root"),
        open_to_nobody,
        "{}",
        env.log(1)
    );
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
                let got = site_sql_in(&env, &a, Some(&b_db), sql);
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
                site_sql_in(&env, &a, Some(&b_db), "SELECT v FROM secrets").is_ok(),
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

/// Site code that tries what it is given and says, per attempt, whether it got through.
const PROBE: &str = r#"<?php
if (!isset($_GET['a'])) {
    return;
}
header('Content-Type: text/plain');
$attempts = json_decode(base64_decode(strtr($_GET['a'], '-_', '+/')), true);
$own = ['user' => '', 'password' => ''];
if (defined('DB_USER')) {
    $own = ['user' => DB_USER, 'password' => DB_PASSWORD];
} elseif (is_array($config = @include getenv('FJORD_SITE_CONFIG')) && isset($config['database'])) {
    $d = $config['database'];
    $own = ['user' => $d['user'] ?? $d['username'] ?? '', 'password' => $d['password'] ?? ''];
}
foreach ($attempts as $t) {
    $got = false;
    $why = '';
    error_clear_last();
    try {
        $user = ($t['user'] ?? '') === '@own' ? $own['user'] : ($t['user'] ?? '');
        $password = ($t['user'] ?? '') === '@own' ? $own['password'] : '';
        switch ($t['op']) {
            case 'read': $got = @file_get_contents($t['path']) !== false; break;
            case 'list': $got = @scandir($t['path']) !== false; break;
            case 'write': $got = @file_put_contents($t['path'], '<?php echo "planted";') !== false; break;
            case 'mysql':
                $pdo = new PDO("mysql:unix_socket={$t['socket']};dbname={$t['db']}", $user, $password, [PDO::ATTR_TIMEOUT => 3, PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
                $pdo->query('SELECT COUNT(*) FROM information_schema.tables')->fetchAll();
                $got = true;
                break;
            case 'pgsql':
                $pdo = new PDO("pgsql:host={$t['host']};port={$t['port']};dbname={$t['db']};connect_timeout=3", $user, $password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
                $pdo->query('SELECT 1')->fetchAll();
                $got = true;
                break;
            case 'socket': $got = @stream_socket_client('unix://' . $t['path'], $no, $text, 2) !== false; break;
            case 'signal': $got = function_exists('posix_kill') && @posix_kill((int) $t['pid'], 0); break;
            case 'shell':
                foreach (['shell_exec', 'exec', 'system', 'passthru', 'popen', 'proc_open'] as $f) {
                    if (!function_exists($f)) { continue; }
                    $out = match ($f) {
                        'shell_exec' => @shell_exec($t['cmd']),
                        'exec' => @exec($t['cmd']),
                        'system' => (function ($c) { ob_start(); @system($c); return ob_get_clean(); })($t['cmd']),
                        'passthru' => (function ($c) { ob_start(); @passthru($c); return ob_get_clean(); })($t['cmd']),
                        'popen' => (($h = @popen($t['cmd'], 'r')) ? stream_get_contents($h) : false),
                        'proc_open' => (($p = @proc_open($t['cmd'], [1 => ['pipe', 'w']], $pipes)) ? stream_get_contents($pipes[1]) : false),
                    };
                    if (is_string($out) && trim($out) !== '') { $got = true; $why = "$f: " . trim($out); break; }
                }
                break;
        }
    } catch (Throwable $e) {
        $why = $e->getMessage();
    }
    if ($why === '' && ($e = error_get_last())) { $why = $e['message']; }
    echo $t['name'], "\t", $got ? 'REACHED' : 'refused', "\t", str_replace(["\n", "\t"], ' ', substr($why, 0, 200)), "\n";
}
exit;
"#;

/// What one site is, as another's code would aim at it.
struct Target {
    host: String,
    platform_path: PathBuf,
    db: std::collections::HashMap<String, String>,
    pool_socket: String,
    pool_user: String,
    pool_file: String,
}

fn attempts_against(
    env: &Env,
    fpm_prefix: &Path,
    pg_port: u16,
    victim: &Target,
) -> Vec<serde_json::Value> {
    use serde_json::json;
    let private = victim.platform_path.join("private").join(&victim.host);
    let files = victim.platform_path.join("sites").join(&victim.host);
    let data = env.data.path();
    let logs = engine::ops::site_log_dir(data, &victim.pool_user);
    let mut list = vec![
        json!({"op": "read", "path": private.join("settings.php"), "name": "read its private settings"}),
        json!({"op": "read", "path": private.join("db.env"), "name": "read its database credentials"}),
        json!({"op": "list", "path": private, "name": "list its private dir"}),
        json!({"op": "list", "path": files, "name": "list its files"}),
        json!({"op": "write", "path": files.join("planted.php"), "name": "write into its files"}),
        json!({"op": "read", "path": fpm_prefix.join("pool.d").join(format!("{}.conf", victim.pool_file)), "name": "read its pool's config"}),
        json!({"op": "list", "path": fpm_prefix.join("pool.d"), "name": "list the pools"}),
        json!({"op": "socket", "path": victim.pool_socket, "name": "connect to its pool's socket"}),
        json!({"op": "list", "path": data, "name": "list fjord's data dir"}),
        json!({"op": "read", "path": data.join("state.db"), "name": "read fjord's state"}),
        json!({"op": "list", "path": env.nginx.prefix().join("conf.d"), "name": "list the vhosts"}),
        json!({"op": "list", "path": logs, "name": "list its log dir"}),
        json!({"op": "read", "path": logs.join(render::ACCESS_LOG), "name": "read its access log"}),
        json!({"op": "read", "path": logs.join(render::ERROR_LOG), "name": "read its error log"}),
        json!({"op": "read", "path": logs.join(render::PHP_ERROR_LOG), "name": "read its PHP error log"}),
        json!({"op": "write", "path": logs.join(render::ACCESS_LOG), "name": "write into its access log"}),
        json!({"op": "list", "path": data.join("logs"), "name": "list every site's log dir"}),
        json!({"op": "shell", "cmd": "echo started", "name": "start a process"}),
        json!({"op": "shell", "cmd": format!("cat {}/settings.php; ls {}", private.display(), data.display()), "name": "read its settings and fjord's data dir through a shell"}),
    ];
    for pid in pids_of(&victim.pool_user) {
        list.push(json!({"op": "signal", "pid": pid, "name": format!("signal its worker {pid}")}));
        list.push(json!({"op": "read", "path": format!("/proc/{pid}/environ"), "name": format!("read its worker {pid}'s environment")}));
    }
    let (db, user) = (&victim.db["DB_NAME"], &victim.db["DB_USER"]);
    match victim.db["DB_ENGINE"].as_str() {
        "mysql" => {
            let socket = &victim.db["DB_SOCKET"];
            list.extend([
                json!({"op": "mysql", "socket": socket, "db": db, "user": "@own", "name": "open its MariaDB database with my own credentials"}),
                json!({"op": "mysql", "socket": socket, "db": db, "user": user, "name": "open its MariaDB database as its user, no password"}),
                json!({"op": "mysql", "socket": socket, "db": db, "user": "root", "name": "open its MariaDB database as root, no password"}),
            ]);
        }
        _ => list.extend([
            json!({"op": "pgsql", "host": "127.0.0.1", "port": pg_port, "db": db, "user": "@own", "name": "open its PostgreSQL database with my own credentials"}),
            json!({"op": "pgsql", "host": "127.0.0.1", "port": pg_port, "db": db, "user": user, "name": "open its PostgreSQL database as its role, no password"}),
            json!({"op": "pgsql", "host": "127.0.0.1", "port": pg_port, "db": db, "user": "postgres", "name": "open its PostgreSQL database as postgres, no password"}),
        ]),
    }
    list
}

/// Processes running as `user`, from /proc.
fn pids_of(user: &str) -> Vec<u32> {
    let Some(uid) = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{user}:")))
        .and_then(|l| l.split(':').nth(2).map(str::to_string))
    else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .is_some_and(|l| l.split_whitespace().nth(1) == Some(uid.as_str()))
            })
        })
        .collect()
}

/// Two clients, each with PHP sites on MariaDB and on PostgreSQL, on one platform and across
/// two: from every site's code (run by its own pool), attempts against every other site's
/// files, config, database (with its own credentials and with none), pool socket and
/// processes, and against fjord's data dir. Every attempt fails; the list of what was tried
/// is written to `target/tmp/isolation-attempts.txt`.
#[test]
fn no_sites_code_reaches_another_clients_site_its_database_its_pool_or_fjord() {
    use crate::php_fpm::PrivatePhpFpm;
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let pg = PrivatePostgres::start();
    let mariadb = PrivateMariaDb::start();
    let env = Env::bare();
    env.add_server_on(
        &env.nginx,
        "t",
        &[
            "--db",
            &mariadb.service_arg(),
            "--db",
            &pg.service_arg(),
            "--php",
            &fpm.service_arg(),
            "--web-group",
            "nogroup",
        ],
    );
    env.dispatch_until_idle(&[]);
    let verify = env.log(1);
    assert!(
        verify.contains("administrator can create and drop databases")
            && !verify.contains("any local user"),
        "{verify}"
    );
    for platform in ["app1", "app2"] {
        let code = env.platforms.path().join(platform);
        std::fs::create_dir(&code).unwrap();
        std::fs::write(code.join("index.php"), PROBE).unwrap();
        let path = code.display().to_string();
        env.ok(&[
            "platform", "add", platform, "--server", "t", "--path", &path, "--kind", "php",
        ]);
    }
    crate::php_sites::wordpress_platform(&env, "wp");
    // Drupal's fixture, whose front controller is the probe once the site's settings are read.
    let drupal = env.platforms.path().join("d7");
    crate::harness::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/fixtures/drupal7"),
        &drupal,
    );
    let _ = std::fs::remove_dir_all(drupal.join("sites/example.com"));
    std::fs::write(
        drupal.join("index.php"),
        PROBE.replacen(
            "<?php",
            "<?php\n$sites = [];\ninclude __DIR__ . '/sites/sites.php';\n\
             $host = strtolower(preg_replace('/:\\d+$/', '', $_SERVER['HTTP_HOST']));\n\
             include __DIR__ . '/sites/' . ($sites[$host] ?? $host) . '/settings.php';\n",
            1,
        ),
    )
    .unwrap();
    // Drupal sites are found in sites/ and imported (the fixture cannot install one).
    let mut sites = Vec::new();
    for (client, engine) in [("c1", "mysql"), ("c2", "mysql"), ("c2", "postgresql")] {
        let host = format!("{t}-{client}-d7-{engine}.example");
        let db = format!("{t}_{client}_d7_{}", &engine[..2]);
        let password = format!("pw{}", token());
        let system_table = "CREATE TABLE system (filename VARCHAR(255) PRIMARY KEY, \
             name VARCHAR(255), type VARCHAR(12), owner VARCHAR(255) DEFAULT '', status INT, \
             bootstrap INT DEFAULT 0, schema_version SMALLINT, weight INT DEFAULT 0, info TEXT); \
             INSERT INTO system VALUES ('modules/node/node.module', 'node', 'module', '', 1, 0, \
             7016, 0, NULL)";
        if engine == "postgresql" {
            pg.sql(
                "postgres",
                &format!("CREATE ROLE {db} LOGIN PASSWORD '{password}'"),
            );
            pg.sql("postgres", &format!("CREATE DATABASE {db} OWNER {db}"));
            pg.sql(&db, &format!("SET ROLE {db}; {system_table}"));
        } else {
            mariadb.sql(&format!(
            "CREATE DATABASE `{db}`; CREATE USER '{db}'@'localhost' IDENTIFIED BY '{password}'; \
             GRANT ALL ON `{db}`.* TO '{db}'@'localhost'; \
             CREATE TABLE `{db}`.system (filename VARCHAR(255) PRIMARY KEY, name VARCHAR(255), \
             type VARCHAR(12), owner VARCHAR(255) DEFAULT '', status INT, bootstrap INT DEFAULT 0, \
             schema_version SMALLINT, weight INT DEFAULT 0, info BLOB); \
             INSERT INTO `{db}`.system VALUES ('modules/node/node.module', 'node', 'module', '', 1, 0, 7016, 0, NULL)"
            ));
        }
        let (driver, db_host, port) = match engine {
            "postgresql" => ("pgsql", "127.0.0.1", pg.port.to_string()),
            _ => ("mysql", "localhost", String::new()),
        };
        let dir = drupal.join("sites").join(&host);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("settings.php"),
            format!(
                "<?php\n$databases = array (\n  'default' => \n  array (\n    'default' => \n    \
                 array (\n      'database' => '{db}',\n      'username' => '{db}',\n      \
                 'password' => '{password}',\n      'host' => '{db_host}',\n      'port' => '{port}',\n      \
                 'driver' => '{driver}',\n      'prefix' => '',\n    ),\n  ),\n);\n\
                 $drupal_hash_salt = 'Yq3-7TtzmLJ8pW0Xc9bHkNdRfa2sVgEuQeLo1iZyMxA';\n"
            ),
        )
        .unwrap();
        sites.push((client, "d7", host));
    }
    let path = drupal.display().to_string();
    env.ok(&[
        "platform", "add", "d7", "--server", "t", "--path", &path, "--kind", "drupal",
    ]);
    env.dispatch_until_idle(&[]);
    for client in ["c1", "c2"] {
        for (platform, engine) in [
            ("app1", "mysql"),
            ("app1", "postgresql"),
            ("app2", "mysql"),
            ("wp", "mysql"),
        ] {
            let host = format!("{t}-{client}-{platform}-{engine}.example");
            env.ok(&[
                "site",
                "add",
                &host,
                "--platform",
                platform,
                "--db",
                engine,
                "--client",
                client,
            ]);
            sites.push((client, platform, host));
        }
    }
    env.dispatch_until_idle(&[]);
    let tasks = env.ok(&["task", "list"]);
    for (_, platform, host) in &sites {
        let shown = env.run(&["site", "show", host]);
        assert!(
            shown.status.success(),
            "{host} is not there: {tasks}\n{}",
            env.ok(&["task", "log", "5"])
        );
        assert_eq!(
            env.json(&["site", "show", host])["status"],
            "installed",
            "{host}"
        );
        if *platform == "wp" {
            // The site's own code: a must-use plugin, run on every request by its pool.
            let plugins = env
                .platforms
                .path()
                .join("wp/sites")
                .join(host)
                .join("mu-plugins");
            std::fs::write(plugins.join("probe.php"), PROBE).unwrap();
            std::fs::set_permissions(
                plugins.join("probe.php"),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
    }
    let pools: Vec<(String, String)> = fpm
        .pool_files()
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(fpm.prefix().join("pool.d").join(file)).unwrap();
            (file.trim_end_matches(".conf").to_string(), text)
        })
        .collect();
    let targets: Vec<Target> = sites
        .iter()
        .map(|(_, platform, host)| {
            let (pool_user, pool) = pools
                .iter()
                .find(|(_, text)| text.contains(&format!("env[FJORD_SITE_DIR] = {host}\n")))
                .unwrap_or_else(|| panic!("no pool for {host}"));
            let field = |key: &str| {
                pool.lines()
                    .find_map(|l| l.strip_prefix(&format!("{key} = ")))
                    .unwrap()
                    .to_string()
            };
            let database = &env.json(&["site", "show", host])["database"];
            let text = |key: &str| database[key].as_str().unwrap_or_default().to_string();
            let db = [
                ("DB_NAME", text("name")),
                ("DB_USER", text("user")),
                ("DB_ENGINE", text("engine")),
                ("DB_SOCKET", mariadb.socket().display().to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            Target {
                host: host.clone(),
                platform_path: env.platforms.path().join(platform),
                db,
                pool_socket: field("listen"),
                pool_user: field("user"),
                pool_file: pool_user.clone(),
            }
        })
        .collect();
    // Every pool has a worker running, so that its processes are there to aim at.
    for target in &targets {
        let (status, _, body) = env.nginx.get(&target.host, "/?a=W10=");
        assert_eq!(status, 200, "{}: {body}", target.host);
    }

    let mut report = String::new();
    let mut reached = Vec::new();
    for (i, attacker) in sites.iter().enumerate() {
        for (j, victim) in targets.iter().enumerate() {
            if i == j {
                continue;
            }
            let attempts = attempts_against(&env, fpm.prefix(), pg.port, victim);
            let encoded = base64_url(&serde_json::to_vec(&attempts).unwrap());
            let (status, _, body) = env.nginx.get(&attacker.2, &format!("/?a={encoded}"));
            assert_eq!(status, 200, "{}: {body}", attacker.2);
            assert_eq!(body.lines().count(), attempts.len(), "{body}");
            for line in body.lines() {
                let mut fields = line.splitn(3, '\t');
                let (name, outcome, why) = (
                    fields.next().unwrap(),
                    fields.next().unwrap_or(""),
                    fields.next().unwrap_or(""),
                );
                report.push_str(&format!(
                    "{} ({}) -> {} ({}): {name}: {outcome} {why}\n",
                    attacker.2, attacker.0, victim.host, sites[j].0
                ));
                if outcome != "refused" {
                    reached.push(format!("{} -> {}: {name}: {why}", attacker.2, victim.host));
                }
            }
        }
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("isolation-attempts.txt");
    std::fs::write(&out, &report).unwrap();
    eprintln!(
        "{} attempts, listed in {}",
        report.lines().count(),
        out.display()
    );
    assert!(
        reached.is_empty(),
        "{} attempts got through:\n{}",
        reached.len(),
        reached.join("\n")
    );
    for target in &targets {
        assert!(
            !target
                .platform_path
                .join("sites")
                .join(&target.host)
                .join("planted.php")
                .exists()
        );
    }
    for (_, _, host) in &sites {
        env.ok(&["site", "delete", host, "--force"]);
    }
    env.dispatch_until_idle(&[]);
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for k in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}
