//! The disk guard, for real: a platform on a small tmpfs filled over the stop line while a
//! dispatcher runs. A task already running completes; tasks queued meanwhile stay queued,
//! the pause shows in `task list`, `--wait`, `doctor`, the panel, the API and `/metrics`;
//! once the tmpfs is emptied below the resume line every task runs once and succeeds.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::disk_full::Tmpfs;
use crate::harness::{Env, signal};
use crate::panel::{Panel, add_user, api, api_token, sign_in};
use crate::smtp::SmtpSink;

const PASSWORD: &str = "a long password for the disk guard";
const NOTICE: &str = "tasks are not being claimed: ";

/// What `task list` says on stderr.
fn list_warning(env: &Env) -> String {
    let out = env.run(&["task", "list"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits (up to a minute) until `task list` warns as `paused` says.
#[track_caller]
fn wait_for_warning(env: &Env, paused: bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let said = list_warning(env);
        if said.contains(NOTICE) == paused {
            return said;
        }
        assert!(
            Instant::now() < deadline,
            "task list never {} warned: {said:?}",
            if paused { "" } else { "stopped" }
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_disk_guard_stops_and_resumes_claims_on_a_tmpfs_filled_and_emptied_losing_no_task() {
    let env = Env::new();
    add_user(&env, "admin", "administrator", None, PASSWORD);
    let sink = SmtpSink::for_administrator(&env, "ops@guard.example");
    let fs = Tmpfs::mount(&env.platforms.path().join("small"), "8m");
    let code = fs.0.join("code");
    std::fs::create_dir(&code).unwrap();
    let code = code.display().to_string();
    env.ok(&["platform", "add", "pfull", "--server", "t", "--path", &code]);
    let sites = ["g0.example", "g1.example", "g2.example"];
    for site in sites {
        env.ok(&["site", "add", site, "--platform", "p1"]);
    }
    env.dispatch_until_idle(&[]);
    assert!(!list_warning(&env).contains(NOTICE));

    // A dispatcher whose backups pause after their first step: one runs while the disk fills.
    let log_path = env.data.path().join("dispatcher.log");
    let mut dispatcher = env
        .command(&["dispatch"])
        .env("FJORD_FAULTS", "pause-after:site-backup:1:15000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let running = env.queue(&["site", "backup", sites[0]]);
    env.wait_for_log(running, "fault: paused");

    // Over 90 %: about 95 % of the tmpfs.
    let ballast = fs.0.join("ballast");
    std::fs::write(&ballast, vec![1u8; 8 * 1024 * 1024 * 95 / 100]).unwrap();
    let said = wait_for_warning(&env, true);
    assert!(
        said.contains(&format!("{code} is 9")) && said.contains("(resumes below 85 %)"),
        "{said}"
    );

    // The administrators are told once.
    let mail = sink.wait_for("tasks are not being claimed (disk nearly full)");
    assert!(
        mail.contains("ops@guard.example") && mail.contains(&code),
        "{mail}"
    );
    let mails = sink.count();

    // Queued while claims are held back: they stay queued.
    let mut queued: Vec<i64> = sites
        .iter()
        .map(|site| env.queue(&["site", "verify", site]))
        .collect();
    queued.push(env.queue(&["platform", "verify", "pfull"]));
    let mut waiting = env
        .command(&["site", "verify", sites[1], "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The task that was running when the disk filled completes as ever.
    let done = env.wait_task(running, Duration::from_secs(120));
    assert_eq!(done["status"], "success", "{done}");

    // Told everywhere: the state (through the CLI), doctor, the API, /metrics, the panel.
    let shown = env.run(&["task", "show", &queued[0].to_string()]);
    assert!(
        String::from_utf8_lossy(&shown.stderr).contains(NOTICE),
        "{shown:?}"
    );
    let out = env.run(&["doctor", "--json"]);
    let doctor: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let claims = doctor
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "claims")
        .unwrap_or_else(|| panic!("no claims finding: {doctor:#}"));
    assert_eq!(claims["verdict"], "problem", "{claims}");
    assert!(claims["said"].as_str().unwrap().contains(&code), "{claims}");
    {
        let panel = Panel::start_with(&env, &[], &["--no-dispatcher"]);
        let mut admin = sign_in(&panel, "admin", PASSWORD);
        for page in ["/", "/tasks", &format!("/tasks/{}", queued[0])] {
            let r = admin.get(page);
            assert_eq!(r.status, 200, "{page}");
            assert!(
                r.body.contains("id=\"claims-paused\"") && r.body.contains(NOTICE),
                "no banner on {page}: {}",
                r.body
            );
        }
        let token = api_token(&mut admin);
        let claims = api(&panel, &token, "GET", "/api/v1/claims", None);
        assert_eq!(claims.status, 200, "{}", claims.body);
        let claims: serde_json::Value = serde_json::from_str(&claims.body).unwrap();
        assert_eq!(claims["paused"], true, "{claims}");
        let fs_paused = &claims["file_systems"][0];
        assert_eq!(fs_paused["path"], code.as_str(), "{claims}");
        assert!(
            fs_paused["used_percent"].as_f64().unwrap() > 90.0,
            "{claims}"
        );
        assert_eq!(fs_paused["stop_percent"], 90);
        assert_eq!(fs_paused["resume_percent"], 85);
        let metrics = api(&panel, &token, "GET", "/metrics", None).body;
        assert!(
            metrics.lines().any(|l| l == "fjord_claims_paused 1"),
            "{metrics}"
        );
        let ratio: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("fjord_filesystem_used_ratio{of=\"platform:pfull\"} "))
            .unwrap_or_else(|| panic!("no used ratio of pfull: {metrics}"))
            .parse()
            .unwrap();
        assert!(ratio > 0.9, "{ratio}");
    }
    for id in &queued {
        assert_eq!(env.task(*id)["status"], "queued", "task {id} was claimed");
    }

    // Below 85 %: claims resume and every task runs, once.
    std::fs::remove_file(&ballast).unwrap();
    for id in &queued {
        let t = env.wait_task(*id, Duration::from_secs(180));
        assert_eq!(t["status"], "success", "{t}");
        let log = env.log(*id);
        assert_eq!(log.matches("started by dispatcher").count(), 1, "{log}");
    }
    let status = waiting.wait().unwrap();
    let mut err = String::new();
    waiting
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    // Warned while it waited; through a pipe no status line is drawn.
    assert!(err.contains(&format!("warning: {NOTICE}")), "{err}");
    assert!(!err.contains('\r'), "{err:?}");
    wait_for_warning(&env, false);
    assert_eq!(sink.count(), mails, "a pause is mailed once");

    signal(dispatcher.id(), "TERM");
    assert!(dispatcher.wait().unwrap().success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains(&format!("disk guard: {NOTICE}")) && log.contains("claiming tasks"),
        "{log}"
    );
    let _ = fs;
}

#[test]
fn disk_thresholds_the_guard_cannot_keep_are_refused_before_a_dispatcher_starts() {
    let env = Env::new();
    let run_dir = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(env.data.path().join("run"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = run_dir();
    let said = env.fails(&[
        "dispatch",
        "--until-idle",
        "--disk-stop-percent",
        "80",
        "--disk-resume-percent",
        "85",
    ]);
    assert!(
        said.contains("disk resume percent") && said.contains("below the disk stop percent (80)"),
        "{said}"
    );
    let said = env.fails(&["dispatch", "--disk-stop-percent", "101"]);
    assert!(said.contains("at most 100"), "{said}");
    assert_eq!(run_dir(), before, "a refused dispatcher left its files");
}
