//! The command line helps: "did you mean" for commands, flags and the names of sites,
//! platforms and servers; `--version` says which build it is; colours only on a terminal,
//! never with NO_COLOR; `--wait` shows a task's steps as they happen.

use std::process::Command;

use crate::harness::{Env, FJORD};

/// Runs fjord with `args` on a terminal of its own (`script` gives it a pseudo-terminal) and
/// returns what the terminal showed.
fn on_a_terminal(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> String {
    let line = std::iter::once(FJORD)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("FJORD_DATA_DIR", env.data.path())
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    for (key, value) in vars {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("script runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_typo_in_a_command_a_flag_or_a_name_is_answered_with_the_closest() {
    let env = Env::new();
    env.ok(&["site", "add", "shop.example", "--platform", "p1"]);
    env.ok(&["site", "add", "blog.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);

    let out = env.run(&["sitee", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'sitee'") && err.contains("'site'"), "{err}");
    let err = env.fails(&["site", "add", "x.example", "--platfrom", "p1"]);
    assert!(err.contains("'--platform'"), "{err}");
    let err = env.fails(&["site", "verfiy", "shop.example"]);
    assert!(err.contains("'verify'"), "{err}");

    let out = env.run(&["site", "show", "shpo.example"]);
    assert_eq!(out.status.code(), Some(3), "not found keeps its exit code");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"site "shpo.example" not found; did you mean shop.example?"#),
        "{err}"
    );
    let err = env.fails(&["site", "verify", "shop"]);
    assert!(err.contains("did you mean shop.example?"), "{err}");
    let err = env.fails(&["site", "add", "x.example", "--platform", "p2"]);
    assert!(
        err.contains(r#"platform "p2" not found; did you mean p1?"#),
        "{err}"
    );
    let err = env.fails(&["server", "show", "tt"]);
    assert!(
        err.contains(r#"server "tt" not found; did you mean t?"#),
        "{err}"
    );
    // Nothing near: nothing offered.
    let err = env.fails(&["site", "show", "news.example"]);
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn the_version_names_the_commit_and_the_day_it_was_built() {
    let env = Env::bare();
    let version = env.ok(&["--version"]);
    let version = version.trim();
    let rest = version
        .strip_prefix(&format!("fjord {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{version}"));
    let (commit, date) = rest
        .strip_suffix(')')
        .and_then(|r| r.split_once(", built "))
        .unwrap_or_else(|| panic!("{version}"));
    // Built from a git checkout: its commit; from a tarball: unknown.
    let checkout = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    assert_eq!(
        commit,
        checkout.as_deref().unwrap_or("unknown"),
        "{version}"
    );
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        parts.len() == 3
            && [4, 2, 2] == [parts[0].len(), parts[1].len(), parts[2].len()]
            && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())),
        "{version}"
    );
}

#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    let env = Env::new();
    env.ok(&["site", "add", "shop.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    const ESC: char = '\x1b';

    let shown = on_a_terminal(&env, &["task", "list"], &[]);
    assert!(shown.contains("\x1b[32msuccess"), "{shown:?}");
    let help = on_a_terminal(&env, &["site", "--help"], &[]);
    assert!(help.contains(ESC), "{help:?}");
    let err = on_a_terminal(&env, &["site", "show", "shpo.example"], &[]);
    assert!(err.contains("\x1b[1;31merror:"), "{err:?}");

    for args in [
        &["task", "list"][..],
        &["site", "--help"],
        &["site", "show", "x.example"],
    ] {
        let shown = on_a_terminal(&env, args, &[("NO_COLOR", "1")]);
        assert!(!shown.contains(ESC), "{args:?} with NO_COLOR: {shown:?}");
        assert!(!shown.trim().is_empty(), "{args:?}");
        // Through a pipe, no colour either.
        let out = env.run(args);
        let all = [out.stdout, out.stderr].concat();
        assert!(!all.contains(&(ESC as u8)), "{args:?} through a pipe");
    }
    // CLICOLOR_FORCE asks for colours through a pipe, and NO_COLOR still wins.
    let forced = env
        .command(&["task", "list"])
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert!(forced.stdout.contains(&(ESC as u8)));
    let both = env
        .command(&["task", "list"])
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!both.stdout.contains(&(ESC as u8)));
}

#[test]
fn wait_on_a_terminal_shows_a_status_line_under_the_steps_and_clears_it() {
    let mut env = Env::new();
    env.ok(&["site", "add", "shop.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    // The verify pauses after its first step: long enough for the line to show it running.
    env.start_dispatcher(&["pause-after:site-verify:1:8000"]);
    let shown = on_a_terminal(
        &env,
        &["site", "verify", "shop.example", "--wait"],
        &[("NO_COLOR", "1")],
    );
    assert!(shown.contains(" running for "), "{shown:?}");
    assert!(shown.contains(": fault: paused"), "{shown:?}");
    assert!(!shown.contains('\x1b'), "NO_COLOR: {shown:?}");
    // The outcome is printed on a line of its own, the status line cleared before it.
    let last = shown.trim_end().rsplit(['\r', '\n']).next().unwrap();
    assert!(
        last.starts_with("task ") && last.contains(": success in "),
        "{shown:?}"
    );
}

#[test]
fn wait_shows_the_tasks_steps_as_they_happen_and_show_speaks_in_units() {
    let mut env = Env::new();
    env.start_dispatcher(&[]);
    let out = env.run(&["site", "add", "shop.example", "--platform", "p1", "--wait"]);
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stderr.contains("queued; waiting"), "{stderr}");
    // Each step's log line, with its time, before the outcome.
    let steps = stderr.lines().filter(|l| l.starts_with("  20")).count();
    assert!(steps >= 3, "{stderr}");
    let outcome = stdout.trim();
    assert!(
        outcome.starts_with("task ") && outcome.contains(": success in "),
        "{stdout}"
    );

    let id = outcome["task ".len()..].split(':').next().unwrap();
    let shown = env.ok(&["task", "show", id]);
    let line = |label: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in {shown}"))
            .to_string()
    };
    assert!(line("created at").contains(" UTC ("), "{shown}");
    assert!(
        line("duration").ends_with(" ms") || line("duration").ends_with(" s"),
        "{shown}"
    );
    let json = env.task(id.parse().unwrap());
    assert!(json["duration_ms"].is_i64(), "{json}");
    assert!(json["created_at_ms"].is_i64(), "{json}");
}
