//! The config file: `fjord config check` naming what is wrong and where, the precedence of
//! flag, environment, file and default as `fjord serve` applies them, the file's `[mail]`,
//! and serve's log as JSON lines.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Env, free_port, signal};
use crate::panel::Panel;

/// Writes `text` as a config file in the Env's data dir.
fn config_file(env: &Env, name: &str, text: &str) -> PathBuf {
    let path = env.data.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn check(env: &Env, file: &Path, vars: &[(&str, &str)]) -> Output {
    let mut cmd = env.command(&["config", "check", "--config", file.to_str().unwrap()]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[track_caller]
fn refused(env: &Env, text: &str) -> String {
    let file = config_file(env, "bad.toml", text);
    let out = check(env, &file, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}: {stderr}");
    assert!(
        stderr.starts_with(&format!("fjord: error: {}: ", file.display())),
        "{stderr}"
    );
    stderr
}

/// The line of `config check` that shows `key`.
fn shown<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("{key} is not shown:\n{stdout}"))
}

#[test]
fn config_check_names_the_bad_key_value_or_line_and_shows_where_each_setting_came_from() {
    let env = Env::bare();
    let e = refused(
        &env,
        "data_dir = \"/srv/fjord\"\n[panel]\nlisen = \"127.0.0.1:9000\"\n",
    );
    assert!(
        e.contains("unknown key `panel.lisen` at line 3, column 1 (did you mean `listen`?)"),
        "{e}"
    );
    let e = refused(&env, "[dispatcher]\nconcurrency = -4\n");
    assert!(
        e.contains("`dispatcher.concurrency` = -4 at line 2, column 15: must be a whole number"),
        "{e}"
    );
    let e = refused(&env, "[mail]\ntransport = \"carrier-pigeon\"\n");
    assert!(e.contains("must be smtp, sendmail or off"), "{e}");
    let e = refused(
        &env,
        "[panel]\nlisten = \"127.0.0.1:9000\"\n[log\nformat = \"json\"\n",
    );
    assert!(e.contains("line 3, column"), "{e}");
    assert!(e.contains("not valid TOML"), "{e}");

    // A missing file named explicitly is an error, not an empty config.
    let out = check(&env, &env.data.path().join("nowhere.toml"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config file"));

    let file = config_file(
        &env,
        "fjord.toml",
        "[panel]\nlisten = \"127.0.0.1:9001\"\nserver = \"none\"\n[dispatcher]\nconcurrency = 3\n",
    );
    let out = check(&env, &file, &[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("{}: valid", file.display())),
        "{stdout}"
    );
    assert!(
        shown(&stdout, "panel.listen").contains("127.0.0.1:9001  (file)"),
        "{stdout}"
    );
    assert!(
        shown(&stdout, "panel.server").contains("none  (file)"),
        "{stdout}"
    );
    assert!(
        shown(&stdout, "log.format").contains("text  (default)"),
        "{stdout}"
    );
    assert!(
        shown(&stdout, "data_dir").contains("(env FJORD_DATA_DIR)"),
        "{stdout}"
    );
    // The environment wins over the file, and is checked by the same rules.
    let out = check(&env, &file, &[("FJORD_PANEL_LISTEN", "127.0.0.1:9002")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown(&stdout, "panel.listen").contains("127.0.0.1:9002  (env FJORD_PANEL_LISTEN)"),
        "{stdout}"
    );
    let out = check(&env, &file, &[("FJORD_CONCURRENCY", "-1")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("environment variable FJORD_CONCURRENCY: \"-1\": must be a whole number"),
        "{out:?}"
    );
    // Every other command refuses to run on a bad file.
    let bad = config_file(&env, "bad.toml", "[panel]\nlisen = 1\n");
    let e = env.fails(&["site", "list", "--config", bad.to_str().unwrap()]);
    assert!(e.contains("unknown key `panel.lisen`"), "{e}");
}

/// `fjord serve` started with `args` and `vars`, its stderr in `log`.
fn serve(env: &Env, args: &[&str], vars: &[(&str, &str)], log: &Path) -> Child {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let mut cmd = env.command(&all);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.env_remove("FJORD_DATA_DIR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Waits until something listens on `port`, or the process ends (with its log in the
/// message).
fn wait_listening(child: &mut Child, port: u16, log: &Path) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let ended = child.try_wait().unwrap();
        assert!(
            ended.is_none() && started.elapsed() < Duration::from_secs(30),
            "fjord serve never listened on {port} ({ended:?}): {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut child: Child) {
    signal(child.id(), "TERM");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_listens_where_the_file_says_unless_the_environment_or_a_flag_says_otherwise() {
    let env = Env::bare();
    let data = tempfile::tempdir().unwrap();
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let file = config_file(
        &env,
        "fjord.toml",
        &format!(
            "data_dir = \"{}\"\n[panel]\nlisten = \"127.0.0.1:{file_port}\"\ndispatcher = false\n",
            data.path().display()
        ),
    );
    let file = file.to_str().unwrap();
    let log = env.data.path().join("serve.log");

    let mut child = serve(&env, &["--config", file], &[], &log);
    wait_listening(&mut child, file_port, &log);
    stop(child);
    assert!(
        data.path().join("state.db").exists(),
        "serve did not open the file's data dir"
    );

    let listen = format!("127.0.0.1:{env_port}");
    let mut child = serve(
        &env,
        &[],
        &[("FJORD_CONFIG", file), ("FJORD_PANEL_LISTEN", &listen)],
        &log,
    );
    wait_listening(&mut child, env_port, &log);
    assert!(std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err());
    stop(child);

    let flag = format!("127.0.0.1:{flag_port}");
    let mut child = serve(
        &env,
        &["--config", file, "--listen", &flag],
        &[("FJORD_PANEL_LISTEN", &listen)],
        &log,
    );
    wait_listening(&mut child, flag_port, &log);
    assert!(std::net::TcpStream::connect(("127.0.0.1", env_port)).is_err());
    stop(child);
}

#[test]
fn the_files_mail_table_is_applied_at_start_and_fjord_mail_refers_to_it() {
    let env = Env::bare();
    let file = config_file(
        &env,
        "fjord.toml",
        "[mail]\ntransport = \"sendmail\"\nfrom = \"fjord@example.com\"\n",
    );
    let file = file.to_str().unwrap();
    env.ok(&["mail", "off"]);
    let shown = env.ok(&["mail", "show", "--config", file]);
    assert!(
        shown.contains("applied when `fjord serve` or `fjord dispatch` starts"),
        "{shown}"
    );
    let e = env.fails(&[
        "mail",
        "smtp",
        "m.example:25",
        "--from",
        "a@example.com",
        "--config",
        file,
    ]);
    assert!(
        e.contains(&format!("mail is set by the [mail] table of {file}")),
        "{e}"
    );

    env.ok(&["dispatch", "--until-idle", "--config", file]);
    let shown = env.ok(&["mail", "show", "--config", file]);
    assert!(
        shown.contains("mail goes through sendmail /usr/sbin/sendmail, from fjord@example.com"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("(set by the [mail] table of {file})")),
        "{shown}"
    );
    // Without the file, `fjord mail` decides again.
    env.ok(&["mail", "off"]);
}

#[test]
fn serve_logs_one_json_object_a_line_with_level_message_and_fields() {
    let env = Env::bare();
    let panel = Panel::start_with(&env, &[], &["--log-format", "json"]);
    let answer = panel.browser().get("/login");

    assert_eq!(answer.status, 200);
    let log_path = panel.log_path.clone();
    // Stopped, so that its last events are written too.
    drop(panel);
    let log = std::fs::read_to_string(log_path).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{log}"))
        })
        .collect();
    for event in &events {
        assert!(event["level"].is_string(), "{event}");
        assert!(event["fields"]["message"].is_string(), "{event}");
        assert!(event["timestamp"].is_string(), "{event}");
    }
    let request = events
        .iter()
        .find(|e| e["fields"]["path"] == "/login")
        .unwrap_or_else(|| panic!("no event for the request:\n{log}"));
    assert_eq!(request["level"], "INFO");
    assert_eq!(request["fields"]["method"], "GET");
    assert_eq!(request["fields"]["status"], 200);
    assert_eq!(request["fields"]["client"], "127.0.0.1");
    assert!(request["fields"]["ms"].is_number(), "{request}");
    assert!(
        events.iter().any(|e| e["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("dispatcher "))),
        "{log}"
    );
}

#[test]
fn a_dispatcher_logs_each_task_claimed_and_ended_with_its_fields() {
    let env = Env::bare();
    env.add_server("t");
    env.ok(&["server", "verify", "t"]);
    let out = env.run(&["dispatch", "--until-idle", "--log-format", "json"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "a dispatcher logs on stderr only");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of_task = |status: Option<&str>| {
        events.iter().find(|e| {
            e["fields"]["kind"] == "server-verify" && e["fields"]["status"].as_str() == status
        })
    };
    let claimed = of_task(None).unwrap_or_else(|| panic!("no claim:\n{stderr}"));
    assert!(claimed["fields"]["task"].is_i64(), "{claimed}");
    let ended = of_task(Some("success")).unwrap_or_else(|| panic!("no end:\n{stderr}"));
    assert_eq!(ended["fields"]["task"], claimed["fields"]["task"]);
    assert!(ended["fields"]["duration_ms"].is_u64(), "{ended}");
}
