//! A static site's whole life on a real nginx, through the CLI.

use crate::harness::Env;

#[test]
fn static_site_lifecycle() {
    let mut env = Env::new();
    env.start_dispatcher(&[]);
    let nginx = &env.nginx;

    let out = env.ok(&[
        "site",
        "add",
        "Example.COM",
        "--platform",
        "p1",
        "--alias",
        "www.example.com",
        "--alias",
        "bücher.example",
        "--wait",
    ]);
    assert!(out.contains("success"), "{out}");
    std::fs::write(
        env.docroot("p1", "example.com").join("index.html"),
        "hello from example\n",
    )
    .unwrap();
    for host in ["example.com", "www.example.com", "xn--bcher-kva.example"] {
        let (status, _, body) = nginx.get(host, "/");
        assert_eq!(
            (status, body.as_str()),
            (200, "hello from example\n"),
            "GET {host}"
        );
    }
    // Dot files are never served.
    std::fs::write(env.docroot("p1", "example.com").join(".env"), "SECRET=1").unwrap();
    assert_eq!(nginx.get("example.com", "/.env").0, 404);

    let site = env.json(&["site", "show", "example.com"]);
    assert_eq!(site["status"], "installed");
    assert_eq!(
        site["aliases"],
        serde_json::json!(["www.example.com", "xn--bcher-kva.example"])
    );

    env.ok(&[
        "site",
        "edit",
        "example.com",
        "--redirect",
        "true",
        "--wait",
    ]);
    let (status, location, _) = nginx.get("www.example.com", "/some/page?x=1");
    // To the site's canonical address: the port of the server's vhosts named.
    assert_eq!(
        (status, location),
        (
            301,
            Some(format!("http://example.com:{}/some/page?x=1", nginx.port))
        )
    );
    assert_eq!(nginx.get("example.com", "/").0, 200);

    // Deleting a site that is not disabled is refused, and changes nothing.
    let err = env.fails(&["site", "delete", "example.com", "--wait"]);
    assert!(err.contains("disable it first"), "{err}");

    env.ok(&["site", "disable", "example.com", "--wait"]);
    let (status, _, body) = nginx.get("example.com", "/");
    assert_eq!(status, 503);
    assert!(body.contains("This site is disabled"), "{body}");
    assert_eq!(nginx.get("www.example.com", "/").0, 503);

    env.ok(&["site", "enable", "example.com", "--wait"]);
    assert_eq!(
        nginx.get("example.com", "/"),
        (200, None, "hello from example\n".into())
    );

    env.ok(&["site", "disable", "example.com", "--wait"]);
    env.ok(&["site", "delete", "example.com", "--wait"]);
    for host in ["example.com", "www.example.com"] {
        assert_eq!(
            nginx.get(host, "/").0,
            404,
            "{host} after delete: the default server"
        );
    }
    assert!(!env.docroot("p1", "example.com").exists());
    assert!(env.json(&["site", "list"]).as_array().unwrap().is_empty());
    // Its names are free again.
    env.ok(&[
        "site",
        "add",
        "www.example.com",
        "--platform",
        "p1",
        "--wait",
    ]);
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let env = Env::new();
    let before = env.host_state(&["dry.example"]);
    let tasks_before = env.json(&["task", "list"]);
    let plan = env.ok(&[
        "site",
        "add",
        "dry.example",
        "--platform",
        "p1",
        "--alias",
        "www.dry.example",
        "--dry-run",
    ]);
    assert!(plan.contains("nothing was changed"), "{plan}");
    assert!(
        plan.contains("server_name dry.example www.dry.example;"),
        "the plan shows the vhost: {plan}"
    );
    assert!(
        plan.contains("nginx -p") || plan.contains("-t -q"),
        "the plan shows the test command: {plan}"
    );
    crate::harness::assert_same_state(&before, &env.host_state(&["dry.example"]), "dry run");
    assert_eq!(tasks_before, env.json(&["task", "list"]));
    assert!(env.json(&["site", "list"]).as_array().unwrap().is_empty());
}

#[test]
fn platform_verify_imports_unknown_sites_and_locks() {
    let env = Env::new();
    let dir = env.docroot("p1", "found.example");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "found\n").unwrap();
    // Names that are not valid hosts are reported, not imported.
    std::fs::create_dir_all(env.docroot("p1", "Not A Host")).unwrap();
    env.ok(&["platform", "verify", "p1"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(
        env.json(&["site", "show", "found.example"])["status"],
        "installed"
    );
    assert_eq!(env.nginx.get("found.example", "/").2, "found\n");

    env.ok(&["platform", "lock", "p1"]);
    let err = env.fails(&["site", "add", "new.example", "--platform", "p1"]);
    assert!(err.contains("locked"), "{err}");
    env.ok(&["platform", "unlock", "p1"]);
    let err = env.fails(&["platform", "delete", "p1"]);
    assert!(err.contains("still has 1 site"), "{err}");
}

#[test]
fn failed_task_can_be_retried_and_queued_one_cancelled() {
    let env = Env::new();
    let id = env.queue(&["site", "add", "retry.example", "--platform", "p1"]);
    env.dispatch_until_idle(&["fail-after:site-install:2"]);
    let task = env.task(id);
    assert_eq!(task["status"], "failed");
    assert!(
        task["error"].as_str().unwrap().contains("fault injected"),
        "{task}"
    );
    assert_eq!(
        env.json(&["site", "show", "retry.example"])["status"],
        "failed"
    );
    let plan = env.ok(&["task", "retry", &id.to_string(), "--dry-run"]);
    assert!(plan.contains("server_name retry.example;"), "{plan}");
    assert_eq!(
        env.task(id)["status"],
        "failed",
        "a dry run changes nothing"
    );
    env.ok(&["task", "retry", &id.to_string()]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.task(id)["status"], "success");
    assert_eq!(env.nginx.get("retry.example", "/").0, 200);

    let id = env.queue(&["site", "verify", "retry.example"]);
    env.ok(&["task", "cancel", &id.to_string()]);
    assert_eq!(env.task(id)["status"], "cancelled");
    let err = env.fails(&["task", "cancel", &id.to_string()]);
    assert!(err.contains("only a queued task"), "{err}");
}

#[test]
fn init_registers_and_verifies_this_machine() {
    let env = Env::bare();
    // A private php-fpm stands in for the machine's (tests never touch the machine's).
    let fpm = crate::php_fpm::PrivatePhpFpm::start();
    let php = fpm.service_arg();
    let prefix = env.nginx.prefix().display().to_string();
    let args = [
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
    ];
    let out = env.ok(&args);
    assert!(out.contains("server local is verified"), "{out}");
    let server = env.json(&["server", "show", "local"]);
    assert_eq!(server["php"][0]["version"], "8.2", "{server}");
    assert!(fpm.prefix().join("pool.d/fjord-probe.conf").exists());
    assert!(
        out.contains("fjord platform add"),
        "init says what to do next: {out}"
    );
    assert!(env.nginx.prefix().join("conf.d/fjord-local.conf").exists());
    // Running it again verifies again and changes nothing else.
    env.ok(&args);
    assert_eq!(env.json(&["server", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(env.nginx.get(render_probe(), "/generation").0, 200);
}

fn render_probe() -> &'static str {
    "fjord-probe.invalid"
}
