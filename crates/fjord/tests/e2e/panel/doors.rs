//! What strangers can do at the panel's door, over real connections to `fjord serve`: guess
//! passwords from behind a proxy, send a victim back to another site after login, hold
//! connections by sending slowly, and keep reading a task's log after the session ended.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::Env;

use super::{FORM, Panel, add_user, api, api_token, form_body, post_form, sign_in, task_count};

/// A login through the proxy, from `client` as the proxy reports it.
fn login_from(panel: &Panel, client: &str, name: &str, password: &str) -> u16 {
    let mut b = panel.browser();
    b.post(
        "/login",
        &[FORM, ("X-Forwarded-For", client)],
        &form_body(&[("name", name), ("password", password)]),
    )
    .status
}

#[test]
fn strangers_behind_the_proxy_never_lock_out_the_right_password() {
    let env = Env::new();
    let password = "the administrator's long password";
    add_user(&env, "admin", "administrator", None, password);
    add_user(&env, "other", "platform-manager", None, password);
    // fjord serve behind a TLS proxy on loopback: every connection comes from 127.0.0.1.
    let panel = Panel::start_with(&env, &[], &["--trusted-proxy", "127.0.0.1"]);

    // Twenty-five failures through the proxy, from many clients and on many names: the
    // proxy's address is not the one counted, so no one else is held.
    for i in 0..25 {
        let client = format!("203.0.113.{}", 100 + i);
        assert_eq!(login_from(&panel, &client, &format!("nobody{i}"), "x"), 401);
    }
    // Five strangers fail on the administrator's account, once each...
    for i in 0..5 {
        let client = format!("198.51.100.{}", 10 + i);
        assert_eq!(login_from(&panel, &client, "admin", "a wrong guess"), 401);
    }
    // ...and one of them four times more: that address is held for that account.
    for _ in 0..4 {
        assert_eq!(
            login_from(&panel, "198.51.100.10", "admin", "a wrong guess"),
            401
        );
    }
    assert_eq!(login_from(&panel, "198.51.100.10", "admin", password), 429);
    // The administrator, from an address that did not fail, signs in.
    assert_eq!(login_from(&panel, "192.0.2.7", "admin", password), 303);
    // So does another account from the address that is held for the first one.
    assert_eq!(login_from(&panel, "198.51.100.10", "other", password), 303);
    // A client that writes its own X-Forwarded-For before the proxy's is counted by the
    // address the proxy appended, not by what it wrote.
    assert_eq!(
        login_from(&panel, "192.0.2.7, 198.51.100.10", "admin", password),
        429
    );
    // The standard header works the same way.
    let mut b = panel.browser();
    let r = b.post(
        "/login",
        &[
            FORM,
            ("Forwarded", "for=\"[2001:db8::7]:4711\";proto=https"),
        ],
        &form_body(&[("name", "admin"), ("password", password)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    drop(panel);

    // Without --trusted-proxy, the header is the sender's own words and changes nothing:
    // five failures from this connection's address hold the account for it, whatever
    // address the header claims.
    let direct = Panel::start_with(&env, &[], &["--no-dispatcher"]);
    for i in 0..5 {
        let client = format!("203.0.113.{}", 200 + i);
        assert_eq!(login_from(&direct, &client, "other", "a wrong guess"), 401);
    }
    assert_eq!(login_from(&direct, "192.0.2.99", "other", password), 429);
}

#[test]
fn after_login_only_a_path_on_the_panel_is_followed() {
    let env = Env::new();
    let password = "the administrator's long password";
    add_user(&env, "admin", "administrator", None, password);
    let panel = Panel::start_with(&env, &[], &["--no-dispatcher"]);
    for (next, expected) in [
        ("/sites", "/sites"),
        ("/tasks?status=failed", "/tasks?status=failed"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/\r\nSet-Cookie: fjord_session=x", "/"),
        ("%0d%0a", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/ /evil.example", "/"),
        ("/caf\u{e9}", "/"),
    ] {
        let mut b = panel.browser();
        let r = b.post(
            "/login",
            &[FORM],
            &form_body(&[("name", "admin"), ("password", password), ("next", next)]),
        );
        assert_eq!(r.status, 303, "next={next:?}: {}", r.body);
        assert_eq!(r.header("location"), Some(expected), "next={next:?}");
        assert!(b.cookies.contains_key("fjord_session"), "next={next:?}");
        // The form carries only what it would follow.
        let query: String = next.bytes().map(|byte| format!("%{byte:02X}")).collect();
        let page = panel.browser().get(&format!("/login?next={query}"));
        assert_eq!(page.status, 200, "next={next:?}");
        let carried = format!("name=\"next\" value=\"{expected}\"");
        assert!(page.body.contains(&carried), "next={next:?}: {}", page.body);
    }
}

/// What a connection that sends `head` one byte at a time sees: how long until the server
/// closed it, and whether it answered first.
fn trickle(port: u16, head: &'static [u8], every: Duration, give_up: Duration) -> (Duration, bool) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(every)).unwrap();
    let mut answered = false;
    let mut sent = 0;
    let mut buf = [0u8; 4096];
    while started.elapsed() < give_up {
        if sent < head.len() {
            if stream.write_all(&head[sent..=sent]).is_err() {
                return (started.elapsed(), answered);
            }
            sent += 1;
        }
        match stream.read(&mut buf) {
            Ok(0) => return (started.elapsed(), answered),
            Ok(_) => answered = true,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (started.elapsed(), answered),
        }
    }
    (started.elapsed(), answered)
}

#[test]
fn slow_senders_are_cut_off_and_everyone_else_is_served_meanwhile() {
    let env = Env::new();
    let panel = Panel::start_with(&env, &[], &["--no-dispatcher"]);
    let port = panel.port;
    let header_bound = web::HEADER_READ_TIMEOUT + Duration::from_secs(5);
    let body_bound = web::BODY_READ_TIMEOUT + Duration::from_secs(5);
    let give_up = Duration::from_secs(60);

    let (done, finished) = mpsc::channel();
    // Fifty connections whose headers never end, a byte every 300 ms.
    for _ in 0..50 {
        let done = done.clone();
        std::thread::spawn(move || {
            let head: &[u8] = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            done.send((
                "headers",
                trickle(port, head, Duration::from_millis(300), give_up),
            ))
            .unwrap();
        });
    }
    // One whose body never ends.
    {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .write_all(
                    b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nname=",
                )
                .unwrap();
            let (after, answered) = trickle_body(&mut stream, give_up);
            done.send(("body", (after, answered))).unwrap();
        });
    }
    // One that asked once, kept the connection and went quiet.
    {
        let done = done.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            stream.set_read_timeout(Some(give_up)).unwrap();
            let mut buf = [0u8; 65536];
            let mut answered = false;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => answered = true,
                }
            }
            done.send(("idle", (started.elapsed(), answered))).unwrap();
        });
    }
    drop(done);

    // Meanwhile, a person is served at once, again and again.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        let asked = Instant::now();
        let r = panel.browser().get("/login");
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "a normal request took {:?} beside the slow ones",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut seen = 0;
    for (what, (after, answered)) in finished.iter() {
        seen += 1;
        match what {
            "headers" => assert!(
                after <= header_bound,
                "a connection still sending its headers was open for {after:?}"
            ),
            "body" => {
                assert!(
                    after <= body_bound,
                    "a connection still sending its body was open for {after:?}"
                );
                assert!(answered, "the slow body got no answer");
            }
            _ => {
                assert!(answered, "the quiet connection's request got no answer");
                assert!(
                    after <= header_bound,
                    "a quiet kept-alive connection was open for {after:?}"
                );
            }
        }
    }
    assert_eq!(seen, 52);

    // One address holds so many connections at once, and no more; the next is closed as it
    // comes, and once they are gone the address is served again.
    let held: Vec<TcpStream> = (0..web::CONNECTIONS_PER_ADDRESS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = extra.write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let mut buf = [0u8; 1024];
    match extra.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("a connection past the limit was not closed at once: {other:?}"),
    }
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(panel.browser().get("/login").status, 200);
}

/// Sends a body a byte every 300 ms until the server answers or closes; returns when that
/// happened and whether it answered.
fn trickle_body(stream: &mut TcpStream, give_up: Duration) -> (Duration, bool) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut answered = false;
    while started.elapsed() < give_up {
        if stream.write_all(b"a").is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => answered = true,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    (started.elapsed(), answered)
}

/// Opens a task's log stream with a browser's cookies; returns the socket, past the
/// response's head.
fn open_stream(panel: &Panel, cookie: &str, task: i64) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", panel.port)).unwrap();
    write!(
        stream,
        "GET /tasks/{task}/events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: fjord_session={cookie}\r\nAccept: text/event-stream\r\n\r\n",
        panel.port
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    stream
}

/// Reads a stream until the server ends it, for at most `bound`; what it sent, and whether
/// it ended.
fn read_until_end(stream: &mut TcpStream, bound: Duration) -> (String, bool) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < bound {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                // A chunked body ends with its last, empty chunk.
                if got.ends_with(b"0\r\n\r\n") {
                    return (String::from_utf8_lossy(&got).into_owned(), true);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

#[test]
fn a_log_stream_ends_when_its_session_does() {
    let env = Env::new();
    let password = "the operator's long password";
    add_user(&env, "ops", "platform-manager", None, password);
    // No dispatcher: the task stays queued and its log stream stays open, polling.
    let panel = Panel::start_with(&env, &[], &["--no-dispatcher"]);
    let task = env.queue(&["platform", "verify", "p1"]);

    // Signed out everywhere, from another device.
    let watcher = sign_in(&panel, "ops", password);
    let mut stream = open_stream(&panel, &watcher.cookies["fjord_session"], task);
    let (before, ended) = read_until_end(&mut stream, Duration::from_secs(2));
    assert!(
        !ended,
        "the stream ended while the session was live: {before}"
    );
    let mut other = sign_in(&panel, "ops", password);
    let r = post_form(&mut other, "/logout/everywhere", &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let (after, ended) = read_until_end(&mut stream, Duration::from_secs(5));
    assert!(
        ended,
        "the stream went on after signing out everywhere: {after}"
    );
    assert!(after.contains("event: signed-out"), "{after}");

    // Disabled by an administrator.
    let watcher = sign_in(&panel, "ops", password);
    let mut stream = open_stream(&panel, &watcher.cookies["fjord_session"], task);
    env.ok(&["user", "edit", "ops", "--disable"]);
    let (after, ended) = read_until_end(&mut stream, Duration::from_secs(5));
    assert!(
        ended,
        "the stream went on after the user was disabled: {after}"
    );
    assert!(after.contains("event: signed-out"), "{after}");
    // And it cannot be opened again.
    let r = watcher_get(&panel, &watcher.cookies["fjord_session"], task);
    assert_eq!(r, 303);
}

fn watcher_get(panel: &Panel, cookie: &str, task: i64) -> u16 {
    let mut b = panel.browser();
    b.cookies
        .insert("fjord_session".to_string(), cookie.to_string());
    b.get(&format!("/tasks/{task}/events")).status
}

#[test]
fn only_an_administrator_gives_a_site_a_name_that_is_not_public() {
    let env = Env::new();
    let password = "a long enough password";
    add_user(&env, "admin", "administrator", None, password);
    add_user(&env, "pm", "platform-manager", None, password);
    // No dispatcher: what is accepted is only recorded and queued, never installed.
    let panel = Panel::start_with(&env, &[], &["--no-dispatcher"]);
    let admin = api_token(&mut sign_in(&panel, "admin", password));
    let pm = api_token(&mut sign_in(&panel, "pm", password));
    let add = |name: &str, alias: &str, allow: bool| {
        format!(
            r#"{{"name":"{name}","platform":"p1","aliases":["{alias}"],"allow_private_names":{allow}}}"#
        )
    };
    let before = task_count(&env);
    for (token, body, status) in [
        (&pm, add("localhost", "www.a.example", false), 422),
        (&pm, add("a.example", "localhost", false), 422),
        (&pm, add("a.example", "printer.local", false), 422),
        (&pm, add("a.example", "intranet", false), 422),
        (&pm, add("a.example", "localhost", true), 403),
        (&admin, add("a.example", "localhost", false), 422),
    ] {
        let r = api(&panel, token, "POST", "/api/v1/sites", Some(&body));
        assert_eq!(r.status, status, "{body}: {}", r.body);
        if status == 422 {
            assert!(r.body.contains("is not a public host name"), "{}", r.body);
        }
    }
    assert_eq!(task_count(&env), before, "a refused name queued a task");
    let r = api(
        &panel,
        &admin,
        "POST",
        "/api/v1/sites",
        Some(&add("a.example", "localhost", true)),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    // Adding one to a site: the same rule, the same permission.
    for (token, allow, status) in [(&pm, false, 422), (&pm, true, 403)] {
        let body =
            format!(r#"{{"aliases":["localhost","dev.localhost"],"allow_private_names":{allow}}}"#);
        let r = api(
            &panel,
            token,
            "POST",
            "/api/v1/sites/a.example/names",
            Some(&body),
        );
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }
    let site = env.json(&["site", "show", "a.example"]);
    assert_eq!(site["aliases"], serde_json::json!(["localhost"]), "{site}");
}
