//! `fjord doctor` on a machine set up with each problem it looks for, and on a clean one.
//! The problems are real: nginx without fjord's include, a php-fpm file that sets
//! `process_control_timeout` back to 0, the machine's MariaDB (root without a password) and
//! PostgreSQL (`trust` on 127.0.0.1) as this test machine has them, a platform on a full
//! tmpfs, the panel at a plain-HTTP address. The clock's state is what the machine's time
//! service says: `timedatectl`, planted on `PATH` here, since a test cannot unsync the clock.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::disk_full::Tmpfs;
use crate::harness::{Env, world_readable_tempdir};
use crate::php_fpm::PrivatePhpFpm;

/// A `timedatectl` that says whether NTP keeps the clock in sync, first on `PATH`.
fn plant_timedatectl(env: &Env, dir: &Path, synchronised: bool) {
    let answer = if synchronised { "yes" } else { "no" };
    let program = dir.join("timedatectl");
    std::fs::write(&program, format!("#!/bin/sh\necho {answer}\n")).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set_env(
        "PATH",
        &format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
    );
}

/// The findings, as `doctor --json` gives them, with its exit code.
fn doctor(env: &Env) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = env.run(&["doctor", "--json"]);
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), findings.as_array().unwrap().clone())
}

fn problems(findings: &[serde_json::Value]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f["verdict"] == "problem")
        .map(|f| format!("{} {}: {}", f["check"], f["subject"], f["said"]))
        .collect()
}

fn find<'a>(
    findings: &'a [serde_json::Value],
    check: &str,
    subject: &str,
) -> &'a serde_json::Value {
    findings
        .iter()
        .find(|f| f["check"] == check && f["subject"].as_str().unwrap().contains(subject))
        .unwrap_or_else(|| panic!("no {check} finding for {subject}: {findings:#?}"))
}

#[test]
fn doctor_finds_nothing_on_a_clean_machine() {
    let env = Env::bare();
    let fpm = PrivatePhpFpm::start();
    env.add_server_on(&env.nginx, "t", &["--php", &fpm.service_arg()]);
    env.add_platform("p1");
    let bin = world_readable_tempdir();
    plant_timedatectl(&env, bin.path(), true);

    let (code, findings) = doctor(&env);
    assert_eq!(problems(&findings), Vec::<String>::new(), "{findings:#?}");
    assert_eq!(code, Some(0));
    for check in [
        "nginx-include",
        "php-fpm-reload",
        "disk",
        "claims",
        "clock",
        "panel-url",
    ] {
        assert!(
            findings.iter().any(|f| f["check"] == check),
            "{check} not checked: {findings:#?}"
        );
    }
    assert!(
        find(&findings, "php-fpm-reload", "php-fpm")["said"]
            .as_str()
            .unwrap()
            .contains("process_control_timeout is 10s")
    );
    // The text form says the same, for people.
    let text = env.ok(&["doctor"]);
    assert!(text.contains("0 problems"), "{text}");
}

#[test]
fn doctor_finds_each_problem_it_looks_for_and_says_what_to_fix() {
    let env = Env::bare();
    let fpm = PrivatePhpFpm::start();
    env.add_server_on(
        &env.nginx,
        "t",
        &[
            "--php",
            &fpm.service_arg(),
            "--db",
            "mysql",
            "--db",
            "postgresql",
        ],
    );
    env.dispatch_until_idle(&[]);
    env.add_platform("p1");
    let full = Tmpfs::mount(&env.platforms.path().join("full"), "4m");
    let code = full.0.join("code");
    std::fs::create_dir(&code).unwrap();
    env.ok(&[
        "platform",
        "add",
        "pfull",
        "--server",
        "t",
        "--path",
        &code.display().to_string(),
    ]);
    env.dispatch_until_idle(&[]);
    std::fs::write(full.0.join("ballast"), vec![0u8; 3900 * 1024]).unwrap();
    let bin = world_readable_tempdir();
    plant_timedatectl(&env, bin.path(), false);
    // Another package's php-fpm file, read after fjord's, sets the timeout back to 0.
    std::fs::write(
        fpm.prefix().join("pool.d/zz-other-package.conf"),
        "[global]\nprocess_control_timeout = 0\n",
    )
    .unwrap();
    // nginx's main config loses its include of fjord's dir.
    let conf = env.nginx.prefix().join("nginx.conf");
    let original = std::fs::read_to_string(&conf).unwrap();
    let include = original
        .lines()
        .find(|l| l.trim_start().starts_with("include") && l.contains("conf.d"))
        .unwrap()
        .to_string();
    std::fs::write(&conf, original.replace(&include, "")).unwrap();
    // The panel was last served at a plain-HTTP address others reach.
    {
        let _panel = crate::panel::Panel::start_with(
            &env,
            &[],
            &["--url", "http://panel.example", "--panel-server", "none"],
        );
    }

    let (exit, findings) = doctor(&env);
    assert_eq!(exit, Some(1), "{findings:#?}");
    let said = |check: &str, subject: &str| {
        let f = find(&findings, check, subject);
        assert_eq!(f["verdict"], "problem", "{f:#}");
        assert!(f["fix"].as_str().is_some_and(|s| !s.is_empty()), "{f:#}");
        f["said"].as_str().unwrap().to_string()
    };
    assert!(said("nginx-include", "nginx").contains("does not include"));
    assert!(said("php-fpm-reload", "php-fpm").contains("process_control_timeout is 0s"));
    // This test machine's MariaDB lets root in without a password, over TCP too, and its
    // PostgreSQL trusts 127.0.0.1 (the tests need both): exactly what doctor must find.
    let mysql = said("database-admin", "mysql");
    assert!(mysql.contains("TCP on 127.0.0.1:"), "{mysql}");
    let postgresql = said("database-admin", "postgresql");
    assert!(
        postgresql.contains("pg_hba.conf line") && postgresql.contains("trust"),
        "{postgresql}"
    );
    assert!(said("disk", "platform pfull").contains("tasks stop being claimed"));
    assert!(said("clock", "clock").contains("not synchronised"));
    assert!(said("panel-url", "panel").contains("unencrypted"));
    assert_eq!(find(&findings, "disk", "platform p1")["verdict"], "ok");

    // Each fixed, its finding turns ok.
    std::fs::write(&conf, &original).unwrap();
    std::fs::remove_file(fpm.prefix().join("pool.d/zz-other-package.conf")).unwrap();
    std::fs::remove_file(full.0.join("ballast")).unwrap();
    plant_timedatectl(&env, bin.path(), true);
    let (_, findings) = doctor(&env);
    for (check, subject) in [
        ("nginx-include", "nginx"),
        ("php-fpm-reload", "php-fpm"),
        ("disk", "platform pfull"),
        ("clock", "clock"),
    ] {
        assert_eq!(find(&findings, check, subject)["verdict"], "ok", "{check}");
    }
}
