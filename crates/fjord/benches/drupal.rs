//! `cargo bench -p fjord --bench drupal-bench`: verify of a Drupal 7 platform of 200 contrib
//! modules (beside core's) and of 100 sites on it, each site's enabled packages and schema
//! versions read from its own MariaDB database, on a private nginx and php-fpm. The code base
//! is fjord's Drupal 7 fixture (Drupal's file formats, not Drupal) with 200 generated
//! modules; the sites are found in `sites/` and imported. Figures are printed beside the
//! measure to beat (Aegir: 0.51 s per site verify, one after another) and written to
//! `target/bench/drupal.json`.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/e2e/harness.rs"]
mod harness;
#[path = "../tests/e2e/php_fpm.rs"]
mod php_fpm;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const MODULES: usize = 200;
const AEGIR_SITE_VERIFY_S: f64 = 0.51;

fn token() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("b{:05x}", (t ^ u128::from(std::process::id())) & 0xf_ffff)
}

fn mysql(sql: &str) {
    let out = Command::new("mariadb")
        .args(["-uroot", "-e", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 200 modules as drupal.org packages them, each with an `.install` of a few updates.
fn generate_modules(code: &Path) {
    for i in 0..MODULES {
        let name = format!("contrib{i:03}");
        let dir = code.join("sites/all/modules").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{name}.info")),
            format!(
                "name = Contrib {i}\ndescription = A generated module of fjord's benchmark.\n\
                 core = 7.x\nfiles[] = {name}.module\ndependencies[] = system\n\n\
                 ; Information added by Drupal.org packaging script on 2024-01-01\n\
                 version = \"7.x-1.{i}\"\ncore = \"7.x\"\nproject = \"{name}\"\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{name}.module")), "<?php\n").unwrap();
        let mut install = String::from("<?php\n");
        for n in 7001..=7000 + (i % 8) + 1 {
            install.push_str(&format!("function {name}_update_{n}() {{\n}}\n"));
        }
        std::fs::write(dir.join(format!("{name}.install")), install).unwrap();
    }
}

/// A site of someone else's in `sites/<host>/`, with a database in which 60 modules are
/// enabled (Drupal 7's `system` table).
fn found_site(code: &Path, host: &str, db: &str) {
    let mut sql = format!(
        "CREATE DATABASE `{db}`; CREATE USER '{db}'@'localhost' IDENTIFIED BY 'theirs'; \
         GRANT ALL ON `{db}`.* TO '{db}'@'localhost'; USE `{db}`; \
         CREATE TABLE system (filename VARCHAR(255) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, \
         type VARCHAR(12) NOT NULL, owner VARCHAR(255) NOT NULL DEFAULT '', status INT NOT NULL DEFAULT 0, \
         bootstrap INT NOT NULL DEFAULT 0, schema_version SMALLINT NOT NULL DEFAULT -1, \
         weight INT NOT NULL DEFAULT 0, info BLOB);"
    );
    sql.push_str("INSERT INTO system VALUES ('modules/node/node.module','node','module','',1,0,7016,0,NULL),('modules/system/system.module','system','module','',1,0,7085,0,NULL)");
    for i in 0..58 {
        sql.push_str(&format!(
            ",('sites/all/modules/contrib{i:03}/contrib{i:03}.module','contrib{i:03}','module','',1,0,7001,0,NULL)"
        ));
    }
    sql.push(';');
    mysql(&sql);
    let dir = code.join("sites").join(host);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("settings.php"),
        format!(
            "<?php\n$databases['default']['default'] = array(\n  'database' => '{db}',\n  \
             'username' => '{db}',\n  'password' => 'theirs',\n  'host' => 'localhost',\n  \
             'driver' => 'mysql',\n);\n"
        ),
    )
    .unwrap();
}

fn main() {
    let sites: usize = std::env::var("FJORD_BENCH_DRUPAL_SITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
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
    let code = std::path::PathBuf::from(env.platform_path("d7"));
    harness::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/fixtures/drupal7"),
        &code,
    );
    let _ = std::fs::remove_dir_all(code.join("sites/example.com"));
    generate_modules(&code);
    let names: Vec<String> = (0..sites).map(|i| format!("{t}-s{i}.bench.test")).collect();
    for (i, name) in names.iter().enumerate() {
        found_site(&code, name, &format!("{t}_s{i}"));
    }
    let path = code.display().to_string();

    // The platform's first verify: discovery of its packages, and the import queued for
    // each site found (run after it).
    env.ok(&[
        "platform", "add", "d7", "--server", "t", "--path", &path, "--kind", "drupal",
    ]);
    let started = Instant::now();
    env.dispatch_until_idle(&[]);
    let import_s = started.elapsed().as_secs_f64();
    let packages = env.json(&["platform", "packages", "d7"]);
    let found = packages.as_array().unwrap().len();
    let listed = env.json(&["site", "list"]).as_array().unwrap().len();
    assert_eq!(listed, sites, "every site found is imported");

    // Platform verify alone, with its sites in place.
    let mut platform_runs = Vec::new();
    for _ in 0..5 {
        env.ok(&["platform", "verify", "d7"]);
        let started = Instant::now();
        env.dispatch_until_idle(&[]);
        platform_runs.push(started.elapsed().as_secs_f64());
    }
    platform_runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let platform_s = platform_runs[platform_runs.len() / 2];

    // Every site verified: one after another (concurrency 1, as Aegir's queue runs them),
    // then side by side (the default).
    let verify_all = |concurrency: Option<&str>| {
        for name in &names {
            env.ok(&["site", "verify", name]);
        }
        let mut args = vec!["dispatch", "--until-idle"];
        if let Some(n) = concurrency {
            args.extend(["--concurrency", n]);
        }
        let started = Instant::now();
        let out = env.command(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed().as_secs_f64()
    };
    let serial_s = verify_all(Some("1"));
    let parallel_s = verify_all(None);
    let per_site = serial_s / sites as f64;
    let failed = env
        .json(&["task", "list", "--status", "failed"])
        .as_array()
        .map_or(0, |a| a.len());
    assert_eq!(failed, 0, "no verify failed");
    let enabled = env.json(&["site", "packages", &names[0]]);

    println!(
        "platform of {found} packages ({MODULES} contrib): verify {:.2} s (median of 5)",
        platform_s
    );
    println!(
        "first verify and import of {sites} sites found in sites/: {import_s:.1} s ({:.2} s per site)",
        import_s / sites as f64
    );
    println!(
        "site verify, with each site's {} enabled packages and schema versions read from its database:",
        enabled.as_array().map_or(0, |a| a.len())
    );
    println!(
        "    one after another: {serial_s:.1} s for {sites}, {per_site:.3} s per site \
         (Aegir: {AEGIR_SITE_VERIFY_S} s per site, {:.1}× faster)",
        AEGIR_SITE_VERIFY_S / per_site
    );
    println!(
        "    side by side (default concurrency): {parallel_s:.1} s for {sites}, {:.3} s per site",
        parallel_s / sites as f64
    );
    let json = serde_json::json!({
        "packages": found,
        "contrib_modules": MODULES,
        "platform_verify_s": platform_s,
        "sites": sites,
        "import_s": import_s,
        "site_verify_serial_s": serial_s,
        "site_verify_serial_per_site_s": per_site,
        "site_verify_parallel_s": parallel_s,
        "aegir_site_verify_s": AEGIR_SITE_VERIFY_S,
        "ratio_vs_aegir": AEGIR_SITE_VERIFY_S / per_site,
    });
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("drupal.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("written to target/bench/drupal.json");

    for name in &names {
        env.ok(&["site", "delete", name, "--force"]);
    }
    env.dispatch_until_idle(&[]);
    for i in 0..sites {
        mysql(&format!(
            "DROP DATABASE IF EXISTS `{t}_s{i}`; DROP USER IF EXISTS '{t}_s{i}'@'localhost'"
        ));
    }
}
