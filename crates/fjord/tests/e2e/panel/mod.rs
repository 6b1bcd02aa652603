//! The panel and the API of a real `fjord serve`, over HTTP: who may do what, forged and
//! guessed requests, and a site run from the panel.

mod chromium;
mod doors;
mod https;
mod matrix;
mod metrics;
mod newuser;
mod schema;
mod security;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::browser::{Browser, Response};
use crate::harness::{Env, free_port, signal};

/// A `fjord serve` (panel and dispatcher) on a free loopback port, its stderr kept in a file.
pub struct Panel {
    child: Option<Child>,
    pub port: u16,
    pub log_path: PathBuf,
}

impl Panel {
    pub fn start(env: &Env, faults: &[&str]) -> Panel {
        Panel::start_with(env, faults, &[])
    }

    /// With more arguments to `fjord serve`.
    pub fn start_with(env: &Env, faults: &[&str], args: &[&str]) -> Panel {
        Panel::start_on(env, free_port(), faults, args)
    }

    /// On a port of the caller's choice (a restart where it listened before).
    pub fn start_on(env: &Env, port: u16, faults: &[&str], args: &[&str]) -> Panel {
        let log_path = env.data.path().join(format!("serve-{port}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let listen = format!("127.0.0.1:{port}");
        let mut all = vec!["serve", "--listen", &listen];
        // No monitor unless a test asks: the tests' daemons are the tests' to stop.
        if !args.contains(&"--monitor-interval") {
            all.extend(["--monitor-interval", "0"]);
        }
        all.extend_from_slice(args);
        let child = env
            .command(&all)
            .env("FJORD_FAULTS", faults.join(","))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "fjord serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Panel {
            child: Some(child),
            port,
            log_path,
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.port, &format!("127.0.0.1:{}", self.port))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Panel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `application/x-www-form-urlencoded` for a value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn form_body(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Adds a user with a password, through the CLI.
pub fn add_user(env: &Env, name: &str, role: &str, client: Option<&str>, password: &str) {
    let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
    if let Some(c) = client {
        args.extend(["--client", c]);
    }
    let mut child = env
        .command(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A signed-in browser.
pub fn sign_in(panel: &Panel, name: &str, password: &str) -> Browser {
    let mut b = panel.browser();
    let r = b.post(
        "/login",
        &[FORM],
        &form_body(&[("name", name), ("password", password), ("next", "/")]),
    );
    assert_eq!(r.status, 303, "sign in as {name}: {}", r.body);
    assert!(b.cookies.contains_key("fjord_session"));
    b
}

/// The CSRF token of the browser's session, from a page's form.
pub fn csrf(b: &mut Browser) -> String {
    let page = b.get("/account");
    csrf_in(&page.body).expect("a CSRF token in the account page")
}

pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}

/// Posts a form with the session's CSRF token.
pub fn post_form(b: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Response {
    let token = csrf(b);
    let mut all = vec![("csrf", token.as_str())];
    all.extend_from_slice(fields);
    b.post(path, &[FORM], &form_body(&all))
}

/// Makes an API token for a signed-in browser's user.
pub fn api_token(b: &mut Browser) -> String {
    let r = post_form(b, "/account/tokens", &[("name", "e2e")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let at = r.body.find("fjord_").expect("the new token on the page");
    r.body[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// An API request with a bearer token and an optional JSON body.
pub fn api(panel: &Panel, token: &str, method: &str, path: &str, json: Option<&str>) -> Response {
    let mut b = panel.browser();
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if json.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    b.request(method, path, &headers, json.unwrap_or("").as_bytes())
}

/// How many tasks the state holds.
pub fn task_count(env: &Env) -> usize {
    env.json(&["task", "list", "--limit", "100000"])
        .as_array()
        .unwrap()
        .len()
}
