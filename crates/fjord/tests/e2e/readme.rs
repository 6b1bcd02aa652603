//! The README's commands, as written and in its order, on private nginx and php-fpm instances
//! with the machine's MariaDB: a new user who follows it must not dead-end.

use crate::databases::Cleanup;
use crate::harness::Env;
use crate::php_fpm::PrivatePhpFpm;

/// The README's commands this test runs, in the README's order. Each must be a command line of
/// one of its code blocks (comments after two spaces and `#` left out), so that the two cannot
/// drift apart. The others need what a test cannot give (a release archive, Drupal's code, a
/// second platform, a task id known in advance).
const FOLLOWED: &[&str] = &[
    "fjord platform add web --server local --path /srv/web",
    "fjord site add example.com --platform web --alias www.example.com --wait",
    "fjord site edit example.com --redirect true --wait",
    "fjord site disable example.com --wait",
    "fjord site delete example.com --wait",
    "fjord task list",
    "fjord server edit local --add-db sqlite --wait",
    "fjord site add shop.example --platform web --db mysql --wait",
    "fjord site backup shop.example --wait",
    "fjord site backups shop.example",
    "fjord site restore shop.example --wait",
    "fjord platform add wp --server local --kind wordpress --path /srv/wp --from /usr/share/wordpress --wait",
    "fjord site add blog.example --platform wp --title \"Our blog\" --admin-email me@example.com --wait",
    "fjord site login-link blog.example",
    "fjord site cron blog.example",
];

/// The `fjord …` command lines of README.md's code blocks, without their comments.
fn readme_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut in_block = false;
    let mut commands = Vec::new();
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let line = line.trim();
        if in_block && line.starts_with("fjord ") {
            let command = match line.find("  #") {
                Some(at) => &line[..at],
                None => line,
            };
            commands.push(command.trim_end().to_string());
        }
    }
    commands
}

/// Splits a command line as a shell would for these commands: words, and "double-quoted"
/// words.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[test]
fn the_commands_this_test_follows_are_the_readmes_in_its_order() {
    let readme = readme_commands();
    let mut at = 0;
    for command in FOLLOWED {
        let found = readme[at..].iter().position(|c| c == command);
        let found = found.unwrap_or_else(|| {
            panic!(
                "README.md has no command `{command}` after `{}`",
                readme[at.saturating_sub(1)]
            )
        });
        at += found + 1;
    }
}

#[test]
fn the_readmes_commands_run_as_written_in_order() {
    let _shop = Cleanup("shop_example".into());
    let _blog = Cleanup("blog_example".into());
    let fpm = PrivatePhpFpm::start();
    let mut env = Env::bare();
    // What ./scripts/run does on a machine where MariaDB runs, on the private instances.
    let prefix = env.nginx.prefix().display().to_string();
    let php = fpm.service_arg();
    env.ok(&[
        "init",
        "--nginx-conf",
        &format!("{prefix}/nginx.conf"),
        "--nginx-prefix",
        &prefix,
        "--nginx-include-dir",
        &format!("{prefix}/conf.d"),
        "--listen",
        &env.nginx.listen(),
        "--php",
        &php,
        "--web-group",
        "nogroup",
        "--db",
        "mysql",
    ]);
    // init does not change a registered server: what it would ignore is refused, and the
    // message names the command that does it.
    let err = env.fails(&["init", "--db", "postgresql"]);
    assert!(err.contains("fjord server edit local --add-db"), "{err}");
    env.start_dispatcher(&[]);
    let srv = env.platforms.path().display().to_string();
    for command in FOLLOWED {
        let line = command.replace("/srv/", &format!("{srv}/"));
        let words = words(&line);
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let out = env.run(&args);
        assert!(
            out.status.success(),
            "`{command}` failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        match *command {
            "fjord site add example.com --platform web --alias www.example.com --wait" => {
                assert_eq!(env.nginx.get("example.com", "/").0, 200)
            }
            "fjord site edit example.com --redirect true --wait" => {
                assert_eq!(env.nginx.get("www.example.com", "/").0, 301)
            }
            "fjord site login-link blog.example" => {
                assert!(stdout.contains("fjord-login="), "{stdout}")
            }
            _ => {}
        }
    }
    let server = env.json(&["server", "show", "local"]);
    let engines: Vec<&str> = server["db"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["engine"].as_str().unwrap())
        .collect();
    assert_eq!(engines, ["mysql", "sqlite"], "{server}");
    // What sites use is not removed, and the refusal names them.
    let err = env.fails(&["server", "edit", "local", "--remove-db", "mysql"]);
    assert!(
        err.contains("shop.example") && err.contains("blog.example"),
        "{err}"
    );
    for site in ["shop.example", "blog.example"] {
        env.ok(&["site", "delete", site, "--force", "--wait"]);
    }
    env.ok(&["server", "edit", "local", "--remove-db", "mysql", "--wait"]);
}
