//! A site's cron run holds the site as a task does: a restore queued while a slow cron runs
//! is claimed only once the cron has ended, and a cron that falls due while a restore runs
//! starts only once the restore has ended. The cron is real PHP (a must-use plugin that
//! sleeps inside WordPress's cron and notes when it started and ended, and what it may do).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::databases::{Cleanup, token};
use crate::harness::Env;
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::{php_server, wordpress_platform};

const SLOW_CRON: &str = r#"<?php
add_action('init', function () {
    if (!defined('DOING_CRON')) {
        return;
    }
    $dir = dirname(__DIR__);
    // What the site's code may do in a cron run: the limits of its pool, and of the kernel.
    try {
        $ran = shell_exec('id') === null ? 'refused' : 'ran';
    } catch (Throwable $e) {
        $ran = 'refused';
    }
    $l = posix_getrlimit();
    file_put_contents("$dir/cron-limits", "exec=$ran maxproc={$l['soft maxproc']} core={$l['soft core']} openfiles={$l['soft openfiles']}");
    file_put_contents("$dir/cron-started", sprintf('%.0f', microtime(true) * 1000));
    sleep(5);
    file_put_contents("$dir/cron-ended", sprintf('%.0f', microtime(true) * 1000));
});
"#;

/// Waits (up to a minute) for the plugin's note and reads the time in it (Unix ms).
#[track_caller]
fn wait_note(path: &Path) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(ms) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return ms;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn notes(files: &Path) -> (PathBuf, PathBuf) {
    (files.join("cron-started"), files.join("cron-ended"))
}

#[test]
fn a_cron_run_and_a_restore_never_run_on_one_site_at_once() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let mut env = Env::bare();
    php_server(&env, &fpm);
    wordpress_platform(&env, "wp");
    let blog = format!("{t}-cronlock.wp.test");
    env.ok(&["site", "add", &blog, "--platform", "wp"]);
    env.dispatch_until_idle(&[]);
    let files = Path::new(&env.platform_path("wp"))
        .join("sites")
        .join(&blog);
    let plugin = files.join("mu-plugins/slow-cron.php");
    std::fs::write(&plugin, SLOW_CRON).unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // Restores bring back this backup: the plugin, and no notes yet.
    env.ok(&["site", "backup", &blog]);
    env.dispatch_until_idle(&[]);
    // Each restore backs the site up first: every restore here names the first backup.
    let backup = env.json(&["site", "backups", &blog])[0]["id"].to_string();
    let (started, ended) = notes(&files);

    // A cron runs; a restore queued meanwhile waits for it.
    env.ok(&["site", "cron", &blog, "--no-wait"]);
    let dispatcher = env.start_dispatcher(&[]);
    let cron_started = wait_note(&started);
    let restore = env.queue(&["site", "restore", &blog, "--backup", &backup]);
    // A cron run is the site's code run from the command line: it starts no process and
    // runs under the kernel's limits for the site's user.
    let limits = std::fs::read_to_string(files.join("cron-limits")).unwrap();
    assert_eq!(limits, "exec=refused maxproc=64 core=0 openfiles=1024");
    let done = env.wait_task(restore, Duration::from_secs(120));
    assert_eq!(done["status"], "success", "{done}\n{}", env.log(restore));
    let cron = &env.json(&["site", "show", &blog])["cron"];
    assert_eq!(cron["last_ok"], true, "{cron}");
    let restore_started = done["started_at_ms"].as_i64().unwrap();
    assert!(
        restore_started >= cron_started + 5000,
        "the restore started {} ms after the cron, which sleeps 5 s: {cron}",
        restore_started - cron_started
    );
    signal_and_wait(&mut env, dispatcher);

    // A restore runs (paused after its first step); the cron falling due meanwhile waits.
    // (The first restore took the notes away with the rest of what the backup lacked.)
    assert!(!started.exists() && !ended.exists());
    let restore = env.queue(&["site", "restore", &blog, "--backup", &backup]);
    let dispatcher = env.start_dispatcher(&["pause-after:site-restore:1:4000"]);
    env.wait_for_log(restore, "fault: paused");
    env.ok(&["site", "cron", &blog, "--no-wait"]);
    let done = env.wait_task(restore, Duration::from_secs(120));
    assert_eq!(done["status"], "success", "{done}\n{}", env.log(restore));
    let cron_started = wait_note(&started);
    let restore_finished = done["finished_at_ms"].as_i64().unwrap();
    assert!(
        cron_started >= restore_finished,
        "the cron started {} ms before the restore ended",
        restore_finished - cron_started
    );
    wait_note(&ended);
    signal_and_wait(&mut env, dispatcher);
    env.ok(&["site", "delete", &blog, "--force"]);
    env.dispatch_until_idle(&[]);
}

fn signal_and_wait(env: &mut Env, pid: u32) {
    crate::harness::signal(pid, "TERM");
    let status = env.wait_dispatcher(pid);
    assert!(status.success(), "{status}");
}
