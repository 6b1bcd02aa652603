//! The panel in a real browser: Debian's headless Chromium, driven through chromedriver.
//! Screenshots of each step are kept under `target/screenshots/`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::databases::token;
use crate::harness::{Env, free_port};

use super::{Panel, add_user};

struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        Chromedriver::start_with(&[])
    }

    /// With more environment for it and the browsers it starts (`HOME`: where Chromium
    /// finds its NSS database of trusted roots).
    fn start_with(env: &[(&str, &std::path::Path)]) -> Chromedriver {
        let port = free_port();
        // Its own process group: the browsers it starts go with it, even after a failed test.
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) runs");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Chromedriver { child, port }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Chromedriver) -> Client {
    browser_with(driver, &[]).await
}

/// With more command-line arguments for Chromium.
async fn browser_with(driver: &Chromedriver, extra: &[String]) -> Client {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(extra);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": args,
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// The element, once the page has it (a click's navigation may still be under way).
async fn element(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => panic!(
            "{css} on the page ({}): {e}\n{}",
            c.current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default(),
            c.source().await.unwrap_or_default()
        ),
    }
}

/// The text of an element; found again if a navigation replaced it meanwhile.
async fn text(c: &Client, css: &str) -> String {
    for _ in 0..50 {
        match element(c, css).await.text().await {
            Ok(t) => return t,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("the text of {css} could not be read")
}

/// Waits until the browser is at a path that `at` accepts (after a click that navigates).
async fn wait_path(c: &Client, what: &str, at: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let path = c.current_url().await.unwrap().path().to_string();
        if at(&path) {
            return path;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reached {what}; at {path}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(c: &Client, css: &str, value: &str) {
    let field = element(c, css).await;
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Clicks an element; found again if the page was replaced meanwhile (a task's page reloads
/// itself 600 ms after the task ends, and a click on the page it left is refused).
async fn click(c: &Client, css: &str) {
    for _ in 0..50 {
        match element(c, css).await.click().await {
            Ok(()) => return,
            Err(e) if e.to_string().contains("stale element") => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("click on {css}: {e}"),
        }
    }
    panic!("{css} was replaced on every click");
}

async fn select(c: &Client, css: &str, value: &str) {
    element(c, css).await.select_by_value(value).await.unwrap();
}

/// Waits on a task's page until its status badge shows one of `ends` (the page updates it
/// from the log stream); returns the status.
async fn task_ends(c: &Client, ends: &[&str]) -> String {
    let started = Instant::now();
    loop {
        if let Ok(badge) = c.find(Locator::Id("task-status")).await
            && let Ok(status) = badge.text().await
            && ends.contains(&status.as_str())
        {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the task page never showed {ends:?}: {}",
            c.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sign_in(c: &Client, panel: &Panel, name: &str, password: &str) {
    sign_in_at(c, &panel.url(), name, password).await
}

async fn sign_in_at(c: &Client, base: &str, name: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    fill(c, "#name", name).await;
    fill(c, "#password", password).await;
    click(c, "#sign-in").await;
    wait_path(c, "the dashboard", |p| p == "/").await;
}

#[test]
fn a_person_runs_sites_from_the_panel_in_a_real_browser() {
    let env = Env::new();
    let t = token();
    let site = format!("{t}.example");
    // Every backup fails: the test re-queues a failed task.
    let panel = Panel::start(&env, &["fail-after:site-backup:1"]);
    let password = "the browser test's password";
    add_user(&env, "admin", "administrator", None, password);
    env.ok(&["client", "add", "alpha", "--platform", "p1"]);
    env.ok(&["client", "add", "beta", "--platform", "p1"]);
    add_user(&env, "ann", "client", Some("alpha"), password);
    for (name, client) in [
        (format!("a-{t}.example"), "alpha"),
        (format!("b-{t}.example"), "beta"),
    ] {
        env.ok(&[
            "site",
            "add",
            &name,
            "--platform",
            "p1",
            "--client",
            client,
            "--wait",
        ]);
    }
    let driver = Chromedriver::start();
    let platform_path = env.platform_path("web");

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let c = browser(&driver).await;

            // Sign in: the dashboard.
            sign_in(&c, &panel, "admin", password).await;
            assert_eq!(text(&c, "h1").await, "Dashboard");
            shot(&c, "01-dashboard").await;

            // Add a platform; its verify runs.
            c.goto(&format!("{}/platforms/new", panel.url()))
                .await
                .unwrap();
            fill(&c, "#platform-name", "web").await;
            fill(&c, "#platform-path", &platform_path).await;
            select(&c, "#platform-kind", "static").await;
            shot(&c, "02-platform-form").await;
            click(&c, "#create-platform").await;
            wait_path(&c, "the platform's verify", |p| p.starts_with("/tasks/")).await;
            assert_eq!(task_ends(&c, &["success", "failed"]).await, "success");

            // Add a site and watch its install's log stream to its end.
            c.goto(&format!("{}/sites/new", panel.url())).await.unwrap();
            fill(&c, "#site-name", "Not A Host!").await;
            click(&c, "#create-site").await;
            wait_path(&c, "the refused form", |p| p == "/sites").await;
            // A refusal is shown beside its field, and nothing was added.
            let error = text(&c, "#error-name").await;
            assert!(error.contains("Not A Host!"), "{error}");
            shot(&c, "03-site-form-error").await;
            fill(&c, "#site-name", &site).await;
            select(&c, "#site-platform", "web").await;
            click(&c, "#create-site").await;
            wait_path(&c, "the install", |p| p.starts_with("/tasks/")).await;
            assert_eq!(task_ends(&c, &["success", "failed"]).await, "success");
            let log = text(&c, "#log").await;
            assert!(!log.trim().is_empty(), "the install's log is shown");
            shot(&c, "04-install-log").await;

            // Disable it: the button asks first, then the site's state changes.
            c.goto(&format!("{}/sites/{site}", panel.url()))
                .await
                .unwrap();
            assert_eq!(text(&c, "#site-status").await, "installed");
            click(&c, "#action-disable").await;
            c.accept_alert().await.unwrap();
            wait_path(&c, "the disable", |p| p.starts_with("/tasks/")).await;
            assert_eq!(task_ends(&c, &["success", "failed"]).await, "success");
            c.goto(&format!("{}/sites/{site}", panel.url()))
                .await
                .unwrap();
            assert_eq!(text(&c, "#site-status").await, "disabled");
            assert!(c.find(Locator::Css("#action-enable")).await.is_ok());
            assert!(c.find(Locator::Css("#action-disable")).await.is_err());
            shot(&c, "05-site-disabled").await;

            // A task that fails, and its re-queue.
            click(&c, "#action-backup").await;
            wait_path(&c, "the backup", |p| p.starts_with("/tasks/")).await;
            assert_eq!(task_ends(&c, &["success", "failed"]).await, "failed");
            let first_error = text(&c, "#task-error").await;
            assert!(first_error.contains("fault"), "{first_error}");
            shot(&c, "06-task-failed").await;
            let task_url = c.current_url().await.unwrap();
            click(&c, "#retry").await;
            // The same task runs again: its log streams a second run, which fails too.
            let started = Instant::now();
            loop {
                let log = text(&c, "#log").await;
                let runs = log.matches("site-backup of site").count();
                if runs == 2 && log.matches("rollback complete").count() == 2 {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(60), "{log}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert_eq!(task_ends(&c, &["success", "failed"]).await, "failed");
            assert_eq!(c.current_url().await.unwrap().path(), task_url.path());
            shot(&c, "07-task-requeued").await;

            // Sign out; a client user sees only its client's sites.
            click(&c, "form[action='/logout'] button").await;
            wait_path(&c, "the login page", |p| p == "/login").await;
            sign_in(&c, &panel, "ann", password).await;
            c.goto(&format!("{}/sites", panel.url())).await.unwrap();
            let list = text(&c, "#sites").await;
            assert!(list.contains(&format!("a-{t}.example")), "{list}");
            assert!(!list.contains(&format!("b-{t}.example")), "{list}");
            assert!(!list.lines().any(|l| l.starts_with(&site)), "{list}");
            assert!(c.find(Locator::Css("a[href='/servers']")).await.is_err());
            c.set_window_size(390, 844).await.unwrap();
            shot(&c, "08-client-sites-phone").await;
            c.goto(&format!("{}/sites/b-{t}.example", panel.url()))
                .await
                .unwrap();
            assert!(text(&c, "#error-message").await.contains("not found"));

            c.close().await.unwrap();
        });
    for f in [
        "01-dashboard",
        "04-install-log",
        "05-site-disabled",
        "07-task-requeued",
        "08-client-sites-phone",
    ] {
        let png = std::fs::read(screenshots().join(format!("{f}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 2000, "{f}");
    }
}

/// An NSS database in `home` (where Chromium looks: `~/.pki/nssdb`) that trusts `root` to
/// issue server certificates, and nothing else of the machine's.
fn trust_root_for_chromium(home: &std::path::Path, root: &std::path::Path) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    let run = |args: &[&str]| {
        let out = Command::new("certutil")
            .args(args)
            .output()
            .expect("certutil runs (scripts/setup-host --test installs libnss3-tools)");
        assert!(
            out.status.success(),
            "certutil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["-N", "-d", &db, "--empty-password"]);
    let root = root.display().to_string();
    run(&[
        "-A",
        "-d",
        &db,
        "-n",
        "fjord-test-ca",
        "-t",
        "C,,",
        "-i",
        &root,
    ]);
}

#[test]
fn a_person_signs_in_and_runs_a_task_through_the_panels_own_https_vhost() {
    use super::https::{serve_at, wait_served};
    use crate::acme::{listen_https, register_account};
    use crate::pebble::Pebble;

    let env = Env::new();
    let pebble = Pebble::start(env.nginx.port);
    register_account(&env, &pebble, "ops@panel.example");
    let https_port = listen_https(&env);
    let password = "the browser test's password";
    add_user(&env, "admin", "administrator", None, password);
    let t = token();
    let site = format!("{t}.example");
    env.ok(&["site", "add", &site, "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let host = "panel.example";
    let url = format!("https://{host}:{https_port}");
    let panel = serve_at(&env, free_port(), &url);
    wait_served(&env, &pebble, &panel, host, https_port);

    // Chromium trusts pebble's root through its own NSS database, as a machine trusts a
    // private CA: no certificate error is ignored, so a page it shows passed its checks.
    let home = tempfile::tempdir().unwrap();
    trust_root_for_chromium(home.path(), &pebble.issuing_root());
    let driver = Chromedriver::start_with(&[("HOME", home.path())]);
    let resolve = format!("--host-resolver-rules=MAP {host} 127.0.0.1");

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let c = browser_with(&driver, &[resolve]).await;
            sign_in_at(&c, &url, "admin", password).await;
            assert_eq!(text(&c, "h1").await, "Dashboard");
            let at = c.current_url().await.unwrap();
            assert_eq!(
                (at.scheme(), at.host_str(), at.port()),
                ("https", Some(host), Some(https_port))
            );
            let cookie = c.get_named_cookie("fjord_session").await.unwrap();
            assert_eq!(cookie.secure(), Some(true), "{cookie:?}");
            shot(&c, "https-01-dashboard").await;

            // A task queued from the site's page; its log streams through the vhost to its end.
            c.goto(&format!("{url}/sites/{site}")).await.unwrap();
            click(&c, "#action-backup").await;
            wait_path(&c, "the backup", |p| p.starts_with("/tasks/")).await;
            assert_eq!(task_ends(&c, &["success", "failed"]).await, "success");
            let log = text(&c, "#log").await;
            assert!(log.contains("site-backup of site"), "{log}");
            shot(&c, "https-02-task").await;
            c.close().await.unwrap();
        });
}
