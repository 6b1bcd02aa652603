//! Writes during a move: a writer commits rows as the site's database user and writes files
//! into its docroot all along, recording each write that was acknowledged, while the site is
//! migrated (to another platform, with a rename, to another database server) and
//! batch-migrated, with pauses injected to widen every window. Every recorded write must be
//! found on the new side.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::databases::{Cleanup, env_with_databases, token};
use crate::harness::{Env, FJORD, PrivateNginx};

/// Where the site is now, as fjord's state says: (docroot, credentials).
fn locate(
    data: &std::path::Path,
    platforms: &std::path::Path,
    names: &[String],
) -> Option<(PathBuf, BTreeMap<String, String>)> {
    for name in names {
        let out = Command::new(FJORD)
            .args(["site", "show", name, "--json"])
            .env("FJORD_DATA_DIR", data)
            .output()
            .ok()?;
        if !out.status.success() {
            continue;
        }
        let site: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let platform = platforms.join(site["platform"].as_str()?);
        let name = site["name"].as_str()?;
        let env =
            std::fs::read_to_string(platform.join("private").join(name).join("db.env")).ok()?;
        let creds = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        return Some((platform.join("sites").join(name), creds));
    }
    None
}

/// Runs SQL with the site's own credentials (socket or TCP, as its db.env says).
fn sql_as_site(creds: &BTreeMap<String, String>, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new("mariadb");
    match creds.get("DB_SOCKET") {
        Some(socket) => cmd.args(["--protocol=SOCKET", &format!("--socket={socket}")]),
        None => cmd.args([
            "--protocol=TCP",
            &format!("--host={}", creds["DB_HOST"]),
            &format!(
                "--port={}",
                creds.get("DB_PORT").map_or("3306", |p| p.as_str())
            ),
        ]),
    };
    let out = cmd
        .args([
            &format!("--user={}", creds["DB_USER"]),
            "-N",
            "-B",
            &creds["DB_NAME"],
            "-e",
            sql,
        ])
        .env("MYSQL_PWD", &creds["DB_PASSWORD"])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Every write the writer saw acknowledged: row ids and file names.
#[derive(Default, Debug)]
struct Acknowledged {
    rows: Vec<u64>,
    files: Vec<String>,
    refused: u64,
    /// The last refusal of each kind, for the failure message.
    last_refusals: BTreeMap<&'static str, String>,
}

static NEXT_WRITE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

struct Writer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Acknowledged>,
}

impl Writer {
    /// Writes a row and a file, again and again, to wherever the state says the site is.
    fn start(env: &Env, names: &[&str]) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let (data, platforms) = (
            env.data.path().to_path_buf(),
            env.platforms.path().to_path_buf(),
        );
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut done = Acknowledged::default();
            while !flag.load(Ordering::Relaxed) {
                // Unique across writers and rounds: a site keeps its rows from move to move.
                let n = NEXT_WRITE.fetch_add(1, Ordering::Relaxed);
                let Some((docroot, creds)) = locate(&data, &platforms, &names) else {
                    done.refused += 1;
                    continue;
                };
                match sql_as_site(&creds, &format!("INSERT INTO writes VALUES ({n})")) {
                    Ok(_) => done.rows.push(n),
                    Err(e) => {
                        done.refused += 1;
                        done.last_refusals.insert("row", e);
                    }
                }
                let file = format!("w-{n}.txt");
                match std::fs::write(docroot.join(&file), n.to_string()) {
                    Ok(()) => done.files.push(file),
                    Err(e) => {
                        done.refused += 1;
                        done.last_refusals.insert("file", e.to_string());
                    }
                }
            }
            done
        });
        Writer { stop, handle }
    }

    fn finish(self) -> Acknowledged {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// Every acknowledged write is where the site now is.
#[track_caller]
fn all_found(env: &Env, site: &str, acked: &Acknowledged, what: &str) {
    let (docroot, creds) =
        locate(env.data.path(), env.platforms.path(), &[site.to_string()]).unwrap();
    let rows: std::collections::BTreeSet<u64> = sql_as_site(&creds, "SELECT id FROM writes")
        .unwrap()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    let lost_rows: Vec<_> = acked.rows.iter().filter(|r| !rows.contains(r)).collect();
    let lost_files: Vec<_> = acked
        .files
        .iter()
        .filter(|f| !docroot.join(f).is_file())
        .collect();
    assert!(
        !acked.rows.is_empty() && !acked.files.is_empty(),
        "{what}: the writer wrote nothing: {} rows, {} files, refusals {:?}",
        acked.rows.len(),
        acked.files.len(),
        acked.last_refusals
    );
    assert!(
        lost_rows.is_empty() && lost_files.is_empty(),
        "{what}: acknowledged writes lost: rows {lost_rows:?}, files {lost_files:?} (of {} rows, {} files)",
        acked.rows.len(),
        acked.files.len()
    );
}

fn seeded(env: &Env, site: &str, platform: &str) {
    env.ok(&["site", "add", site, "--platform", platform, "--db", "mysql"]);
    env.dispatch_until_idle(&[]);
    let (_, creds) = locate(env.data.path(), env.platforms.path(), &[site.to_string()]).unwrap();
    sql_as_site(&creds, "CREATE TABLE writes (id BIGINT PRIMARY KEY)").unwrap();
}

/// Pauses after each of the first steps of `kind`, to widen every window a write could slip
/// through.
fn pauses(kind: &str) -> Vec<String> {
    (1..=14)
        .map(|step| format!("pause-after:{kind}:{step}:150"))
        .collect()
}

fn migrate_with_writer(env: &Env, site: &str, to_name: &str, args: &[&str], what: &str) {
    let writer = Writer::start(env, &[site, to_name]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let id = env.queue(args);
    let faults = pauses("site-migrate");
    let faults: Vec<&str> = faults.iter().map(String::as_str).collect();
    env.dispatch_until_idle(&faults);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let acked = writer.finish();
    assert_eq!(env.task(id)["status"], "success", "{what}: {}", env.log(id));
    all_found(env, to_name, &acked, what);
}

#[test]
fn nothing_written_during_a_migrate_is_lost() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let env = env_with_databases();
    for p in ["p2", "p3"] {
        env.add_platform(p);
    }
    let site = format!("{t}-moving.example");
    seeded(&env, &site, "p1");

    migrate_with_writer(
        &env,
        &site,
        &site,
        &["site", "migrate", &site, "--platform", "p2"],
        "to another platform",
    );

    let renamed = format!("{t}-renamed.example");
    migrate_with_writer(
        &env,
        &site,
        &renamed,
        &["site", "migrate", &site, "--rename", &renamed],
        "with a rename",
    );

    // Another database server: the same MariaDB reached over TCP, with its own nginx.
    let other = PrivateNginx::start();
    env.add_server_on(&other, "t2", &["--db", "mysql:host=127.0.0.1,port=3306"]);
    env.dispatch_until_idle(&[]);
    migrate_with_writer(
        &env,
        &renamed,
        &renamed,
        &["site", "migrate", &renamed, "--db-server", "t2"],
        "to another database server",
    );

    // Batch migrate: three sites written to at once.
    let sites: Vec<String> = (0..3).map(|i| format!("{t}-batch{i}.example")).collect();
    for s in &sites {
        seeded(&env, s, "p2");
    }
    let writers: Vec<Writer> = sites
        .iter()
        .map(|s| Writer::start(&env, &[s.as_str()]))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    env.ok(&["platform", "migrate-all", "p2", "--to", "p3"]);
    let faults = pauses("site-migrate");
    let faults: Vec<&str> = faults.iter().map(String::as_str).collect();
    env.dispatch_until_idle(&faults);
    for (s, writer) in sites.iter().zip(writers) {
        let acked = writer.finish();
        assert_eq!(env.json(&["site", "show", s])["platform"], "p3");
        all_found(&env, s, &acked, &format!("batch migrate of {s}"));
    }
}
