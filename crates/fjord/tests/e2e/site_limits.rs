//! What a site's PHP may do, run by its own pool: no process started (so nothing outside
//! `open_basedir`, nothing left running) unless its platform allows processes; and whatever
//! a site's user left running ends with the site.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::databases::{Cleanup, token};
use crate::harness::Env;
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::php_server;

/// Tries every way a PHP file has to start a process, and says for each whether it ran
/// (`ls /` lists `proc`) or was refused. With `?spawn`, leaves `sleep 150` running in a
/// session of its own.
const TRY_PROCESSES: &str = r#"<?php
$ls = function ($out) { return is_string($out) && strpos($out, 'proc') !== false; };
$tries = [
    'shell_exec' => function () use ($ls) { return $ls(shell_exec('ls /')); },
    'exec' => function () use ($ls) { exec('ls /', $lines); return $ls(implode("\n", $lines)); },
    'system' => function () use ($ls) { ob_start(); system('ls /'); return $ls(ob_get_clean()); },
    'passthru' => function () use ($ls) { ob_start(); passthru('ls /'); return $ls(ob_get_clean()); },
    'popen' => function () use ($ls) { $p = popen('ls /', 'r'); return $ls(stream_get_contents($p)); },
    'proc_open' => function () use ($ls) {
        $p = proc_open(['ls', '/'], [1 => ['pipe', 'w']], $pipes);
        return $ls(stream_get_contents($pipes[1]));
    },
    'putenv' => function () { return putenv('FJORD_TEST=1'); },
];
foreach ($tries as $name => $try) {
    try {
        echo $name, '=', @$try() ? 'ran' : 'refused', "\n";
    } catch (Throwable $e) {
        echo $name, "=refused\n";
    }
}
echo 'memory_limit=', ini_get('memory_limit'), "\n";
if (isset($_GET['spawn'])) {
    exec('setsid sleep 150 > /dev/null 2>&1 < /dev/null &', $out, $rc);
    echo "spawned $rc\n";
}
"#;

const FUNCTIONS: [&str; 7] = [
    "shell_exec",
    "exec",
    "system",
    "passthru",
    "popen",
    "proc_open",
    "putenv",
];

/// The processes whose real user id is `uid`, zombies left out.
fn processes_of(uid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        // A zombie holds nothing; its parent (php-fpm's master) reaps it.
        if status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
        {
            continue;
        }
        let real = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next()?.parse::<u32>().ok());
        if real == Some(uid) {
            let cmd = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{name}: {}", cmd.replace('\0', " ")));
        }
    }
    found
}

fn uid_of(user: &str) -> Option<u32> {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[test]
fn a_sites_php_starts_no_process_unless_its_platform_allows_and_none_outlives_the_site() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    for (platform, extra) in [("held", None), ("exec", Some("--allow-exec"))] {
        let code = env.platforms.path().join(platform);
        std::fs::create_dir(&code).unwrap();
        std::fs::write(code.join("index.php"), TRY_PROCESSES).unwrap();
        let code = code.display().to_string();
        let mut args = vec![
            "platform", "add", platform, "--server", "t", "--path", &code, "--kind", "php",
        ];
        args.extend(extra);
        env.ok(&args);
    }
    // A static platform runs no PHP: allowing it processes is refused, and nothing is added.
    let plain = env.platforms.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let err = env.fails(&[
        "platform",
        "add",
        "plain",
        "--server",
        "t",
        "--path",
        &plain.display().to_string(),
        "--allow-exec",
    ]);
    assert!(
        err.contains("--allow-exec") && err.contains("static"),
        "{err}"
    );
    assert!(env.fails(&["platform", "show", "plain"]).contains("plain"));
    env.dispatch_until_idle(&[]);
    let (held, exec) = (format!("{t}-held.php.test"), format!("{t}-exec.php.test"));
    env.ok(&["site", "add", &held, "--platform", "held"]);
    env.ok(&["site", "add", &exec, "--platform", "exec"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.json(&["platform", "show", "exec"])["allow_exec"], true);
    assert_eq!(env.json(&["platform", "show", "held"])["allow_exec"], false);

    let (status, _, body) = env.nginx.get(&held, "/");
    assert_eq!(status, 200, "{body}");
    for name in FUNCTIONS {
        assert!(
            body.contains(&format!("{name}=refused\n")),
            "{name}:\n{body}"
        );
    }
    assert!(body.contains("memory_limit=256M"), "{body}");
    let (status, _, body) = env.nginx.get(&exec, "/?spawn=1");
    assert_eq!(status, 200, "{body}");
    for name in FUNCTIONS {
        assert!(body.contains(&format!("{name}=ran\n")), "{name}:\n{body}");
    }
    assert!(body.contains("spawned"), "{body}");

    // The process the site left running dies with the site's user.
    let owner = std::fs::metadata(
        env.platforms
            .path()
            .join("exec")
            .join("private")
            .join(&exec)
            .join("settings.php"),
    )
    .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_of(owner).iter().any(|p| p.contains("sleep 150")) {
        assert!(
            Instant::now() < deadline,
            "{:?}\n{body}",
            processes_of(owner)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let user_name = fpm
        .pool_users()
        .into_iter()
        .find(|u| uid_of(u) == Some(owner))
        .expect("the exec site's user");
    env.ok(&["site", "delete", &exec, "--force"]);
    env.dispatch_until_idle(&[]);
    let task = &env.json(&["task", "list"])[0];
    assert_eq!(
        task["status"],
        "success",
        "{task}\n{}",
        env.log(task["id"].as_i64().unwrap())
    );
    assert_eq!(uid_of(&user_name), None, "user {user_name} is left");
    assert!(processes_of(owner).is_empty(), "{:?}", processes_of(owner));

    env.ok(&["site", "delete", &held, "--force"]);
    env.dispatch_until_idle(&[]);
}
