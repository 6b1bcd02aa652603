//! The panel served by fjord itself: `fjord serve --url https://panel…` makes the panel a
//! site of its own on the server's nginx, a vhost passing requests to where it listens, with
//! a certificate from the account (pebble here), as Aegir's front end is a site of itself.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::acme::{listen_https, register_account};
use crate::harness::{Env, free_port};
use crate::pebble::Pebble;

use super::{Panel, add_user, form_body, task_count};

/// An HTTPS exchange with curl, trusting pebble's issuing root only.
pub(crate) struct Answer {
    pub status: u16,
    pub http_version: String,
    pub headers: String,
    pub body: String,
}

/// `curl` to `https://host:port/path` (`host` resolved to 127.0.0.1, the chain checked
/// against pebble's root); `None` while nothing answers over TLS with a good certificate.
pub(crate) fn curl(
    pebble: &Pebble,
    host: &str,
    port: u16,
    path: &str,
    extra: &[&str],
) -> Option<Answer> {
    let headers = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(pebble.issuing_root())
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(["-w", "\n%{http_code} %{http_version}", "-D"])
        .arg(headers.path())
        .args(extra)
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "curl https://{host}:{port}{path}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let written = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, last) = written.rsplit_once('\n').unwrap_or(("", &written));
    let mut words = last.split(' ');
    Some(Answer {
        status: words.next().unwrap_or_default().parse().unwrap_or(0),
        http_version: words.next().unwrap_or_default().to_string(),
        headers: std::fs::read_to_string(headers.path()).unwrap_or_default(),
        body: body.to_string(),
    })
}

/// Waits until `https://host:port/login` answers with the certificate pebble issued, and the
/// task that switched it in has ended: nginx's first answer from its new workers comes while
/// the old ones may still take connections (their config has no HTTPS block for the name), and
/// the task is done only once those are gone.
pub(crate) fn wait_served(
    env: &Env,
    pebble: &Pebble,
    panel: &Panel,
    host: &str,
    port: u16,
) -> Answer {
    let started = Instant::now();
    loop {
        if let Some(answer) = curl(pebble, host, port, "/login", &[])
            && answer.status == 200
        {
            idle(env);
            return answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "https://{host}:{port} never answered with its certificate; serve's log:\n{}",
            panel.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The panel's site, as `site show` has it (status and whether it has a certificate).
fn panel_site(env: &Env, host: &str) -> Option<serde_json::Value> {
    let out = env.run(&["site", "show", host, "--json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// Starts `fjord serve` on `port` with the panel's URL on server `t`.
pub(crate) fn serve_at(env: &Env, port: u16, url: &str) -> Panel {
    Panel::start_on(env, port, &[], &["--url", url, "--panel-server", "t"])
}

/// Waits until serve's log says `text`.
fn wait_log(panel: &Panel, text: &str) {
    let started = Instant::now();
    while !panel.log().contains(text) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve never said {text:?}:\n{}",
            panel.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until no task is queued or running.
fn idle(env: &Env) {
    let started = Instant::now();
    loop {
        let busy = env
            .json(&["task", "list", "--limit", "100000"])
            .as_array()
            .unwrap()
            .iter()
            .any(|t| matches!(t["status"].as_str(), Some("queued" | "processing")));
        if !busy {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "tasks never ended"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_panel_is_served_through_its_own_https_vhost_with_a_secure_cookie() {
    let env = Env::new();
    let pebble = Pebble::start(env.nginx.port);
    register_account(&env, &pebble, "ops@panel.example");
    let https_port = listen_https(&env);
    add_user(&env, "admin", "administrator", None, "the panel's password");
    let host = "panel.example";
    let url = format!("https://{host}:{https_port}");

    let port = free_port();
    let panel = serve_at(&env, port, &url);
    // Serve does not wait for the certificate: it answers at once where it listens.
    let direct = panel.browser().get("/login");
    assert_eq!(direct.status, 200);
    let login = wait_served(&env, &pebble, &panel, host, https_port);
    assert_eq!(login.http_version, "2", "{}", login.headers);
    assert!(login.body.contains("password"), "{}", login.body);
    let log = panel.log();
    assert!(
        log.contains(&format!(
            "the panel is reached at {url}, through its own site {host}"
        )),
        "{log}"
    );

    // Signing in through the vhost: the session cookie is Secure, and the session works.
    let form = String::from_utf8(form_body(&[
        ("name", "admin"),
        ("password", "the panel's password"),
        ("next", "/"),
    ]))
    .unwrap();
    let signed_in =
        curl(&pebble, host, https_port, "/login", &["--data", &form]).unwrap_or_else(|| {
            panic!(
                "no answer after a 200; tasks: {}\nserve: {}",
                env.ok(&["task", "list"]),
                panel.log()
            )
        });
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let cookie = signed_in
        .headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: fjord_session=")
        })
        .unwrap_or_else(|| panic!("a session cookie: {}", signed_in.headers))
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let session = cookie
        .split_once(": ")
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let dashboard = curl(
        &pebble,
        host,
        https_port,
        "/",
        &["-H", &format!("Cookie: {session}")],
    )
    .unwrap();
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.body.contains("Dashboard"), "{}", dashboard.body);
    // One X-Content-Type-Options on a response: nginx's replaces the panel's copy.
    assert_eq!(
        dashboard
            .headers
            .to_ascii_lowercase()
            .matches("x-content-type-options")
            .count(),
        1,
        "{}",
        dashboard.headers
    );

    // The panel believes the address its own nginx passes on, and nothing a client forges:
    // five wrong passwords from 127.0.0.2, each claiming another address, hold the account
    // for 127.0.0.2 (the right password too), and for no one else.
    let login = |from: &str, password: &str, forged: Option<String>| {
        let form = String::from_utf8(form_body(&[
            ("name", "admin"),
            ("password", password),
            ("next", "/"),
        ]))
        .unwrap();
        let mut extra = vec!["--interface".to_string(), from.to_string()];
        if let Some(forged) = forged {
            extra.extend([
                "-H".into(),
                format!("X-Forwarded-For: {forged}"),
                "-H".into(),
                format!("Forwarded: for={forged}"),
            ]);
        }
        extra.extend(["--data".into(), form]);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        curl(&pebble, host, https_port, "/login", &extra)
            .unwrap()
            .status
    };
    for i in 0..5 {
        let status = login("127.0.0.2", "wrong", Some(format!("10.9.9.{i}")));
        assert_eq!(status, 401, "guess {i}");
    }
    let held = login("127.0.0.2", "the panel's password", Some("10.9.9.9".into()));
    assert_eq!(held, 429);
    assert_eq!(login("127.0.0.3", "the panel's password", None), 303);

    // The site is the panel's: it is not deleted or disabled by hand, and takes no sibling.
    for args in [
        vec!["site", "delete", host, "--force"],
        vec!["site", "disable", host],
        vec!["site", "migrate", host, "--platform", "p1"],
    ] {
        let refused = env.fails(&args);
        assert!(refused.contains("the panel's own site"), "{refused}");
    }
    let refused = env.fails(&["site", "add", "other.example", "--platform", "panel"]);
    assert!(refused.contains("the panel's own"), "{refused}");
    let refused = env.fails(&[
        "platform",
        "add",
        "mine",
        "--server",
        "t",
        "--kind",
        "proxy",
        "--path",
        &env.platform_path("mine"),
    ]);
    assert!(refused.contains("fjord serve --url"), "{refused}");

    // The same URL again changes nothing: no task, the same vhost.
    idle(&env);
    let tasks = task_count(&env);
    let vhosts = env.host_state(&[host]);
    drop(panel);
    let panel = serve_at(&env, port, &url);
    idle(&env);
    assert_eq!(task_count(&env), tasks, "{}", panel.log());
    assert_eq!(env.host_state(&[host]), vhosts);
    assert_eq!(
        wait_served(&env, &pebble, &panel, host, https_port).status,
        200
    );
    // It listens elsewhere now: its platform's verify points the vhost there.
    drop(panel);
    let panel = serve_at(&env, free_port(), &url);
    wait_log(&panel, "(queued: task");
    assert!(panel.log().contains("platform-verify"), "{}", panel.log());
    idle(&env);
    assert_eq!(
        wait_served(&env, &pebble, &panel, host, https_port).status,
        200
    );

    // Another host: the site moves (the old name's vhost and certificate go).
    let moved = "admin.example";
    let moved_url = format!("https://{moved}:{https_port}");
    drop(panel);
    let panel = serve_at(&env, free_port(), &moved_url);
    wait_served(&env, &pebble, &panel, moved, https_port);
    idle(&env);
    let old = panel_site(&env, host);
    assert!(
        old.as_ref().is_none_or(|s| s["status"] == "deleted"),
        "{old:?}"
    );
    assert!(curl(&pebble, host, https_port, "/login", &[]).is_none_or(|a| a.status != 200));
    assert_eq!(panel_site(&env, moved).unwrap()["status"], "installed");

    // An address, not a host: no vhost serves the panel any more.
    drop(panel);
    let panel = Panel::start_with(
        &env,
        &[],
        &["--url", "http://127.0.0.1:8470", "--panel-server", "t"],
    );
    idle(&env);
    wait_log(&panel, &format!("the panel's site {moved} is deleted"));
    let gone = panel_site(&env, moved);
    assert!(gone.is_none_or(|s| s["status"] == "deleted"));

    // A URL the server's nginx does not serve is refused before anything changes.
    drop(panel);
    let tasks = task_count(&env);
    let out = env.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--url",
        "https://panel.example:1",
        "--panel-server",
        "t",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listens for HTTPS on no port 1"), "{err}");
    assert_eq!(task_count(&env), tasks);
}
