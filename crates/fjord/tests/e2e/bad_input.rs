//! Hostile input through the CLI: each is refused with a message that names the value and
//! the rule, and nothing is written to the state or the disk.
//!
//! NUL cannot be tested here: no operating system can pass it inside a command-line argument.
//! The model's unit tests refuse it.

use crate::harness::{Env, assert_same_state};

fn hostile_hosts() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "a b.example",
        " lead.example",
        "trail.example ",
        "tab\t.example",
        "new\nline.example",
        "cr\r.example",
        "semi;colon.example",
        "brace{.example",
        "brace}.example",
        "dollar$.example",
        "$host",
        "quote\".example",
        "apos'.example",
        "back`tick.example",
        "back\\slash.example",
        "slash/.example",
        "../etc",
        "..",
        ".",
        ".lead.example",
        "trail.example.",
        "double..dot.example",
        "-lead.example",
        "trail-.example",
        "mid.-dash.example",
        "under_score.example",
        "star*.example",
        "*.example",
        "percent%20.example",
        "at@.example",
        "colon:80.example",
        "example.com:8080",
        "http://example.com",
        "example.com/path",
        "hash#.example",
        "q?.example",
        "amp&.example",
        "pipe|.example",
        "lt<.example",
        "gt>.example",
        "eq=.example",
        "plus+.example",
        "comma,.example",
        "bang!.example",
        "tilde~.example",
        "paren(.example",
        "bracket[.example",
        "1.2.3.4",
        "127.0.0.1",
        "10.0.0.1",
        "x.invalid",
        "ab--cd.example",
        "xn--.example",
        "xn--zz-invalid.example",
        "pаypal.example",
        "gοogle.example",
        "ｅxample.com",
        "example。com",
        "zero\u{200b}width.example",
        "joiner\u{200d}.example",
        "soft\u{ad}hyphen.example",
        "ﬁle.example",
        "\u{202e}rtl.example",
        "ⓔxample.com",
        "exa\u{301}mple.com",
        "bell\u{7}.example",
        "esc\u{1b}[31m.example",
        "del\u{7f}.example",
        "\u{feff}bom.example",
        "nbsp\u{a0}.example",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("{}.example", "a".repeat(64)));
    v.push(vec!["abcdefghij"; 26].join("."));
    v.push(format!("{}.com", "-".repeat(10)));
    v
}

fn hostile_paths() -> Vec<String> {
    [
        "",
        "relative/path",
        "./here",
        "/",
        "/srv/../etc",
        "/srv/./x",
        "/srv//x",
        "/srv/x/",
        "/srv/x;rm",
        "/srv/{x}",
        "/srv/$x",
        "/srv/x y",
        "/srv/\"x\"",
        "/srv/'x'",
        "/srv/x\ny",
        "/srv/`x`",
        "/srv/-x",
        "/srv/x\\y",
        "/srv/ü",
        "/srv/x*",
        "~/x",
        "/srv/x#y",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn hostile_names() -> Vec<String> {
    [
        "", "-x", "x-", "UPPER", "a b", "a/b", "../x", "a.b", "a;b", "a{b", "a$b", "ä", "x\ny",
        "'x'",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["x".repeat(65)])
    .collect()
}

#[test]
fn hostile_input_is_refused_clearly_and_changes_nothing() {
    let env = Env::new();
    env.ok(&[
        "site",
        "add",
        "taken.example",
        "--platform",
        "p1",
        "--alias",
        "www.taken.example",
    ]);
    env.dispatch_until_idle(&[]);
    let data = env.data.path().display().to_string();
    let p1 = env.platform_path("p1");

    // (arguments, the value the message must name)
    let mut cases: Vec<(Vec<String>, String)> = Vec::new();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for host in hostile_hosts() {
        cases.push((
            args(&["site", "add", &host, "--platform", "p1"]),
            host.clone(),
        ));
        cases.push((
            args(&[
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--alias",
                &host,
            ]),
            host.clone(),
        ));
        cases.push((
            args(&["site", "edit", "taken.example", "--add-alias", &host]),
            host.clone(),
        ));
    }
    for path in hostile_paths() {
        cases.push((
            args(&["platform", "add", "px", "--server", "t", "--path", &path]),
            path.clone(),
        ));
    }
    for name in hostile_names() {
        cases.push((
            args(&[
                "platform",
                "add",
                &name,
                "--server",
                "t",
                "--path",
                "/srv/fjord-never",
            ]),
            name.clone(),
        ));
        cases.push((args(&["server", "add", &name]), name.clone()));
        cases.push((
            args(&[
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--client",
                &name,
            ]),
            name.clone(),
        ));
    }
    // Rules that need the state: overlaps and names already taken.
    for (a, value) in [
        (
            vec![
                "platform",
                "add",
                "inside",
                "--server",
                "t",
                "--path",
                &format!("{p1}/sub"),
            ],
            format!("{p1}/sub"),
        ),
        (
            vec![
                "platform",
                "add",
                "inside-data",
                "--server",
                "t",
                "--path",
                &format!("{data}/x"),
            ],
            format!("{data}/x"),
        ),
        (
            vec![
                "platform",
                "add",
                "p1",
                "--server",
                "t",
                "--path",
                "/srv/fjord-never",
            ],
            "p1".to_string(),
        ),
        (
            vec!["site", "add", "www.taken.example", "--platform", "p1"],
            "www.taken.example".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--alias",
                "taken.example",
            ],
            "taken.example".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--alias",
                "fine.example",
            ],
            "fine.example".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--alias",
                "a.example",
                "--alias",
                "a.example",
            ],
            "a.example".into(),
        ),
        (
            vec!["site", "add", "fine.example", "--platform", "nope"],
            "nope".into(),
        ),
        (
            vec!["server", "add", "z", "--listen", "localhost:80"],
            "localhost:80".into(),
        ),
        (
            vec!["server", "add", "z", "--listen", "1.2.3.4:99999"],
            "1.2.3.4:99999".into(),
        ),
        (
            vec![
                "server",
                "add",
                "z",
                "--reload",
                "nginx -s reload; rm -rf /",
            ],
            "nginx -s reload; rm -rf /".into(),
        ),
        (
            vec!["server", "add", "z", "--reload", "relative/cmd"],
            "relative/cmd".into(),
        ),
        (
            vec![
                "server",
                "add",
                "z",
                "--nginx-conf",
                "/etc/../etc/nginx.conf",
            ],
            "/etc/../etc/nginx.conf".into(),
        ),
        (
            vec![
                "platform", "add", "px", "--server", "t", "--path", "/srv/x", "--kind", "joomla",
            ],
            "joomla".into(),
        ),
        (vec!["task", "list", "--status", "done"], "done".into()),
        // PHP sites: kinds, sources, PHP services, installer input, cron intervals.
        (
            vec![
                "platform", "add", "px", "--server", "t", "--path", "/srv/x", "--kind", "drupal7",
            ],
            "drupal7".into(),
        ),
        (
            vec![
                "platform", "add", "px", "--server", "t", "--path", "/srv/x", "--kind", "PHP",
            ],
            "PHP".into(),
        ),
        (
            vec![
                "platform",
                "add",
                "px",
                "--server",
                "t",
                "--path",
                "/srv/x",
                "--kind",
                "wordpress",
            ],
            "wordpress".into(),
        ),
        (
            vec![
                "platform", "add", "px", "--server", "t", "--path", "/srv/x", "--php", "8.2",
            ],
            "8.2".into(),
        ),
        (
            vec![
                "platform", "add", "px", "--server", "t", "--path", "/srv/x", "--from", "rel/dir",
            ],
            "rel/dir".into(),
        ),
        (
            vec![
                "platform",
                "add",
                "px",
                "--server",
                "t",
                "--path",
                "/srv/x",
                "--from",
                "/nonexistent-fjord-source",
            ],
            "/nonexistent-fjord-source".into(),
        ),
        (
            vec![
                "platform",
                "add",
                "px",
                "--server",
                "t",
                "--path",
                "/srv/x",
                "--from",
                "/etc/hostname",
            ],
            "/etc/hostname".into(),
        ),
        (
            vec![
                "platform", "add", "px", "--server", "t", "--path", "/srv/x", "--from", &p1,
            ],
            p1.clone(),
        ),
        (vec!["server", "add", "z", "--php", "abc"], "abc".into()),
        (vec!["server", "add", "z", "--php", "5.6"], "5.6".into()),
        (
            vec!["server", "add", "z", "--php", "8.2:pool-dir=rel"],
            "rel".into(),
        ),
        (
            vec!["server", "add", "z", "--php", "8.2:socket=/x"],
            "8.2:socket=/x".into(),
        ),
        (
            vec!["server", "add", "z", "--php", "8.2", "--php", "8.2"],
            "8.2".into(),
        ),
        (
            vec!["server", "add", "z", "--web-group", "a;b"],
            "a;b".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--title",
                "two\nlines",
            ],
            "two\nlines".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--title",
                "  ",
            ],
            "  ".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--admin-email",
                "not-an-address",
            ],
            "not-an-address".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--admin-email",
                "a@localhost",
            ],
            "a@localhost".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--admin-email",
                "a b@example.com",
            ],
            "a b@example.com".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--admin-user",
                "root;",
            ],
            "root;".into(),
        ),
        // Drupal: profiles, the compatibility check, packages, cache clears.
        (
            vec![
                "platform",
                "add",
                "px",
                "--server",
                "t",
                "--path",
                "/srv/x",
                "--drush",
                "/bin/true",
            ],
            "/bin/true".into(),
        ),
        (
            vec![
                "platform",
                "add",
                "px",
                "--server",
                "t",
                "--path",
                "/srv/x",
                "--kind",
                "drupal",
                "--drush",
                "vendor/drush",
            ],
            "vendor/drush".into(),
        ),
        (
            vec![
                "platform",
                "add",
                "px",
                "--server",
                "t",
                "--path",
                "/srv/x",
                "--kind",
                "drupal",
                "--drush",
                "/etc/passwd",
            ],
            "/etc/passwd".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--profile",
                "Standard",
            ],
            "Standard".into(),
        ),
        (
            vec![
                "site",
                "add",
                "fine.example",
                "--platform",
                "p1",
                "--profile",
                "../x",
            ],
            "../x".into(),
        ),
        (
            vec![
                "site",
                "migrate-check",
                "taken.example",
                "--platform",
                "nope",
            ],
            "nope".into(),
        ),
        (
            vec![
                "site",
                "migrate-check",
                "nosuch.example",
                "--platform",
                "p1",
            ],
            "nosuch.example".into(),
        ),
        (
            vec!["site", "cache-clear", "taken.example"],
            "taken.example".into(),
        ),
        (
            vec!["site", "packages", "nosuch.example"],
            "nosuch.example".into(),
        ),
        (vec!["platform", "packages", "nope"], "nope".into()),
        (
            vec!["site", "cron", "taken.example", "--every", "5"],
            "5".into(),
        ),
        (
            vec!["site", "cron", "taken.example", "--every", "30s"],
            "30s".into(),
        ),
        (
            vec!["site", "cron", "taken.example", "--every", "8d"],
            "8d".into(),
        ),
        (vec!["site", "cron-default", "0m"], "0m".into()),
        (
            vec!["site", "cron", "taken.example"],
            "taken.example".into(),
        ),
        (
            vec!["site", "login-link", "taken.example"],
            "taken.example".into(),
        ),
        (
            vec![
                "site",
                "edit",
                "taken.example",
                "--remove-alias",
                "not.taken.example",
            ],
            "not.taken.example".into(),
        ),
        (
            vec![
                "site",
                "add",
                "db.example",
                "--platform",
                "p1",
                "--db",
                "oracle",
            ],
            "oracle".into(),
        ),
        (
            vec!["server", "add", "z", "--db", "mysql:port=abc"],
            "abc".into(),
        ),
        (
            vec!["server", "add", "z", "--db", "mysql:host=a;b"],
            "mysql:host=a;b".into(),
        ),
        (
            vec![
                "server",
                "add",
                "z",
                "--db",
                "postgresql:password-env=lower",
            ],
            "postgresql:password-env=lower".into(),
        ),
        (
            vec!["server", "add", "z", "--db", "mysql", "--db", "mysql"],
            "mysql".into(),
        ),
        (
            vec!["server", "add", "z", "--db", "mysql:start=start-db"],
            "start-db".into(),
        ),
        (
            vec!["server", "add", "z", "--php", "8.2:unit=a/b"],
            "a/b".into(),
        ),
        (
            vec![
                "server",
                "add",
                "z",
                "--nginx-start",
                "/usr/sbin/nginx;reboot",
            ],
            "/usr/sbin/nginx;reboot".into(),
        ),
        (
            vec!["server", "edit", "t", "--monitor", "maybe"],
            "maybe".into(),
        ),
        (vec!["server", "add", "z", "--monitor", "yes"], "yes".into()),
        (
            vec!["site", "clone", "taken.example", "bad host.example"],
            "bad host.example".into(),
        ),
        (
            vec!["site", "clone", "taken.example", "www.taken.example"],
            "www.taken.example".into(),
        ),
        (
            vec![
                "site",
                "migrate",
                "taken.example",
                "--rename",
                "a;b.example",
            ],
            "a;b.example".into(),
        ),
        (
            vec!["site", "migrate", "taken.example", "--platform", "nowhere"],
            "nowhere".into(),
        ),
        (
            vec![
                "site",
                "backup-policy",
                "taken.example",
                "--schedule",
                "61 * * * *",
            ],
            "61 * * * *".into(),
        ),
        (
            vec![
                "site",
                "backup-policy",
                "taken.example",
                "--schedule",
                "@daily",
            ],
            "@daily".into(),
        ),
        (
            vec!["backup-policy", "--retention", "forever"],
            "forever".into(),
        ),
        (
            vec!["backup-policy", "--retention", "last=0"],
            "last=0".into(),
        ),
        (
            vec![
                "site",
                "restore",
                "taken.example",
                "--file",
                "relative/backup.tar.zst",
            ],
            "relative/backup.tar.zst".into(),
        ),
        (
            vec![
                "site",
                "restore",
                "taken.example",
                "--file",
                "/nonexistent/backup.tar.zst",
            ],
            "/nonexistent/backup.tar.zst".into(),
        ),
    ] {
        cases.push((a.iter().map(|s| s.to_string()).collect(), value));
    }
    assert!(cases.len() >= 100, "only {} cases", cases.len());

    let hosts = ["taken.example", "www.taken.example", "fine.example"];
    let before = env.host_state(&hosts);
    let state = |env: &Env| {
        ["site", "platform", "server", "task"].map(|what| env.json(&[what, "list"]).to_string())
    };
    let state_before = state(&env);
    let mut failures = Vec::new();
    for (args, value) in &cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let named = stderr.contains(&format!("{value:?}"))
            || (!value.is_empty() && stderr.contains(value.as_str()));
        if out.status.success() || !stderr.starts_with("fjord: error: ") || !named {
            failures.push(format!("{argv:?} (exit {:?}): {stderr}", out.status.code()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases not refused clearly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(state_before, state(&env), "the state changed");
    assert_same_state(&before, &env.host_state(&hosts), "hostile input");
    eprintln!("{} hostile inputs refused", cases.len());
}
