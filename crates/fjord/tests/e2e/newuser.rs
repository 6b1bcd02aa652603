//! What a new user meets first: a fresh data dir opened by several processes at once, a
//! `--wait` with nobody to run its task.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Env, FJORD, world_readable_tempdir};

/// Waits for `child` for up to `limit` (a guard against a hang, not a timing assertion);
/// kills it and panics if it is still running then.
fn wait_or_kill(
    mut child: std::process::Child,
    limit: Duration,
    what: &str,
) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn processes_opening_a_fresh_data_dir_at_once_all_open_it() {
    for round in 0..5 {
        let data = world_readable_tempdir();
        let dir = data.path().join("fjord");
        let spawn = |args: &[&str]| {
            std::process::Command::new(FJORD)
                .args(args)
                .env("FJORD_DATA_DIR", &dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        // A dispatcher started beside the first commands, as a new user does.
        let mut children = vec![spawn(&["dispatch", "--until-idle"])];
        children.extend((0..7).map(|_| spawn(&["task", "list"])));
        for child in children {
            let out = wait_or_kill(child, Duration::from_secs(120), "fjord");
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn wait_with_no_dispatcher_alive_says_so_and_fails_instead_of_hanging() {
    let env = Env::bare();
    let args = env.nginx.server_add_args("t", &["--wait"]);
    let child = env
        .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_or_kill(child, Duration::from_secs(120), "fjord server add --wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no dispatcher is running"), "{stderr}");
    assert!(stderr.contains("fjord serve"), "{stderr}");
    // The task is still there for a dispatcher to run.
    let tasks = env.json(&["task", "list"]);
    assert_eq!(tasks[0]["status"], "queued", "{tasks}");
}

#[test]
fn a_site_that_never_installed_is_deleted_plainly_and_its_name_is_free_again() {
    let env = Env::new();
    let id = env.queue(&["site", "add", "never.example", "--platform", "p1"]);
    env.dispatch_until_idle(&["fail-after:site-install:2"]);
    assert_eq!(env.task(id)["status"], "failed");
    // Adding it again names the command that frees the name.
    let err = env.fails(&["site", "add", "never.example", "--platform", "p1"]);
    assert!(err.contains("fjord site delete never.example"), "{err}");
    // It is deleted without --force: it has nothing on the host to lose.
    let id = env.queue(&["site", "delete", "never.example"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.task(id)["status"], "success", "{}", env.log(id));
    env.ok(&["site", "add", "never.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.nginx.get("never.example", "/").0, 200);
    // An installed site is still refused a plain delete, and the message says how.
    let err = env.fails(&["site", "delete", "never.example"]);
    assert!(err.contains("fjord site disable never.example"), "{err}");
}

#[test]
fn a_server_whose_nginx_never_loads_fjords_hook_is_refused_at_once_leaving_nothing() {
    let env = Env::bare();
    // nginx's main config without the include of the dir fjord puts its hook in.
    let conf = env.nginx.prefix().join("nginx.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.contains("conf.d/*.conf"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(text, without);
    std::fs::write(&conf, without).unwrap();
    let args = env.nginx.server_add_args("t", &[]);
    let id = env.queue(&args.iter().map(String::as_str).collect::<Vec<_>>());
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    assert_eq!(task["status"], "failed", "{task}");
    let error = task["error"].as_str().unwrap();
    assert!(error.contains("does not include"), "{error}");
    assert!(error.contains("conf.d/*.conf;"), "{error}");
    // Nothing was made: no hook, no config dir of the server.
    let conf_d: Vec<_> = std::fs::read_dir(env.nginx.prefix().join("conf.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(conf_d.is_empty(), "{conf_d:?}");
    assert!(!env.data.path().join("config/t").exists());
    let log = env.log(id);
    assert!(!log.contains("incomplete"), "{log}");
}

#[test]
fn every_command_says_what_it_does_and_shows_speak_to_people() {
    let env = Env::new();
    let mut bare = Vec::new();
    for group in [
        "", "server", "platform", "site", "task", "client", "user", "mail",
    ] {
        let args: Vec<&str> = [group, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let help = env.ok(&args);
        let commands = help
            .split("Commands:\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .unwrap_or_default();
        for line in commands.lines() {
            // A command's line is indented by two; its description's continuations by more.
            if line.starts_with("  ") && !line.starts_with("   ") {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.len() == 1 {
                    bare.push(format!("fjord {group} {}", words[0]));
                }
            }
        }
    }
    assert!(bare.is_empty(), "commands without a description: {bare:?}");
    let platform_help = env.ok(&["platform", "add", "--help"]);
    assert!(platform_help.contains("drupal"), "{platform_help}");
    assert!(platform_help.contains("release archive"), "{platform_help}");

    let id = env.queue(&["site", "add", "shown.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let shown = env.ok(&["task", "show", &id.to_string()]);
    assert!(!shown.contains("_ms"), "{shown}");
    assert!(shown.contains("queued by"), "{shown}");
    assert!(shown.contains("cli"), "{shown}");
    assert!(shown.contains("UTC"), "{shown}");
    assert!(shown.contains("duration"), "{shown}");
    let site = env.ok(&["site", "show", "shown.example"]);
    assert!(!site.contains('_') || !site.contains("_ms"), "{site}");
    assert!(!site.contains("redirect_aliases"), "{site}");
    assert!(site.contains("redirect aliases"), "{site}");
}
