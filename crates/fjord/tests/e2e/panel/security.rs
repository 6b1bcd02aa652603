//! Forged posts, guessed passwords, and secrets that must appear nowhere: not in a page, not
//! in an API answer, not in the server's log.

use crate::databases::{Cleanup, db_env, env_with_databases, token};

use crate::browser::path_of;

use super::{Panel, add_user, api, api_token, csrf, form_body, post_form, sign_in, task_count};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

#[test]
fn forged_posts_guessed_passwords_and_every_secret_are_refused_or_hidden() {
    let env = env_with_databases();
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let site = format!("{t}.example");
    let panel = Panel::start(&env, &[]);
    let out = env.ok(&[
        "site",
        "add",
        &site,
        "--platform",
        "p1",
        "--db",
        "mysql",
        "--wait",
    ]);
    assert!(out.contains("success"), "{out}");
    let db_password = db_env(&env, &site)["DB_PASSWORD"].clone();
    assert!(db_password.len() >= 24);

    let password = "the administrator's long password";
    let guessed_password = "the guessed user's long password";
    add_user(&env, "admin", "administrator", None, password);
    add_user(&env, "guessed", "platform-manager", None, guessed_password);

    // Cookies: the script of a page cannot read them, another site's POST does not carry them.
    let mut b = panel.browser();
    let r = b.post(
        "/login",
        &[FORM],
        &form_body(&[("name", "admin"), ("password", password)]),
    );
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let session = b.cookies["fjord_session"].clone();
    let api_secret = api_token(&mut b);

    // A change without the session's CSRF token, with a wrong one, or sent from another
    // site's page, is refused and queues nothing.
    let path = format!("/sites/{site}/tasks/backup");
    let good = csrf(&mut b);
    let before = task_count(&env);
    for (what, headers, body) in [
        ("no token", vec![FORM], form_body(&[])),
        ("a wrong token", vec![FORM], form_body(&[("csrf", "0123")])),
        (
            "another site's origin",
            vec![FORM, ("Origin", "http://evil.example")],
            form_body(&[("csrf", &good)]),
        ),
        (
            "a cross-site fetch",
            vec![FORM, ("Sec-Fetch-Site", "cross-site")],
            form_body(&[("csrf", &good)]),
        ),
    ] {
        let r = b.post(&path, &headers, &body);
        assert_eq!(r.status, 403, "a POST with {what}: {}", r.body);
        assert_eq!(task_count(&env), before, "a POST with {what} queued a task");
    }
    let r = b.post(
        "/login",
        &[FORM, ("Origin", "http://evil.example")],
        &form_body(&[("name", "admin"), ("password", password)]),
    );
    assert_eq!(r.status, 403, "a login posted from another site");
    // The same request with the token goes through.
    let r = post_form(&mut b, &path, &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(task_count(&env), before + 1);
    let backup: i64 = r
        .header("location")
        .and_then(|l| l.strip_prefix("/tasks/"))
        .and_then(|id| id.parse().ok())
        .expect("the backup's task page");
    let done = env.wait_task(backup, std::time::Duration::from_secs(120));
    assert_eq!(done["status"], "success", "{done}");

    // Guessing: after five wrong passwords the account takes no password, not even the right
    // one, and says when to try again; other accounts are not held up.
    let mut guesser = panel.browser();
    for i in 0..5 {
        let r = guesser.post(
            "/login",
            &[FORM],
            &form_body(&[
                ("name", "guessed"),
                ("password", &format!("wrong guess {i}")),
            ]),
        );
        assert_eq!(r.status, 401, "guess {i}");
        assert!(r.body.contains("wrong user name or password"));
    }
    let r = guesser.post(
        "/login",
        &[FORM],
        &form_body(&[("name", "guessed"), ("password", guessed_password)]),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert!(!guesser.cookies.contains_key("fjord_session"));
    sign_in(&panel, "admin", password);

    // A one-time login link works once.
    let link = env.ok(&["user", "link", "admin"]).trim().to_string();
    let link_secret = link.rsplit('/').next().unwrap().to_string();
    let mut linked = panel.browser();
    let r = linked.get(&path_of(&link));
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(linked.cookies.contains_key("fjord_session"));
    let r = panel.browser().get(&path_of(&link));
    assert_eq!(r.status, 401, "a login link used twice");

    // Every page and answer a signed-in administrator can reach, and the server's log: no
    // password, token, session id or database credential.
    let mut seen = Vec::new();
    for page in [
        "/".to_string(),
        "/sites".into(),
        format!("/sites/{site}"),
        "/tasks".into(),
        "/users".into(),
        "/users/admin".into(),
        "/account".into(),
        "/platforms/p1".into(),
        "/servers/t".into(),
    ] {
        let r = b.get(&page);
        assert_eq!(r.status, 200, "{page}");
        seen.push((page, r.body));
    }
    for endpoint in [
        "/api/v1/sites".to_string(),
        format!("/api/v1/sites/{site}"),
        "/api/v1/tasks?limit=1000".into(),
        "/api/v1/users".into(),
        "/api/v1/tokens".into(),
        "/api/v1/servers".into(),
    ] {
        let r = api(&panel, &api_secret, "GET", &endpoint, None);
        assert_eq!(r.status, 200, "{endpoint}: {}", r.body);
        seen.push((endpoint, r.body));
    }
    let tasks: serde_json::Value = serde_json::from_str(
        &api(&panel, &api_secret, "GET", "/api/v1/tasks?limit=1000", None).body,
    )
    .unwrap();
    for task in tasks.as_array().unwrap() {
        let id = task["id"].as_i64().unwrap();
        for path in [format!("/api/v1/tasks/{id}/log"), format!("/tasks/{id}")] {
            let r = if path.starts_with("/api") {
                api(&panel, &api_secret, "GET", &path, None)
            } else {
                b.get(&path)
            };
            seen.push((path, r.body));
        }
    }
    // The dashboard charts the room the site's backup takes.
    let dashboard = &seen.iter().find(|(p, _)| p == "/").unwrap().1;
    let use_table = dashboard
        .split("id=\"backup-use\"")
        .nth(1)
        .expect("the backup use table");
    assert!(
        use_table.contains(&format!("{site} (1 backup)")),
        "{use_table}"
    );
    let site_json = &seen
        .iter()
        .find(|(p, _)| *p == format!("/api/v1/sites/{site}"))
        .unwrap()
        .1;
    assert!(site_json.contains("\"database\""), "{site_json}");
    seen.push(("the server's log".into(), panel.log()));
    let secrets = [
        ("the administrator's password", password),
        ("a guessed user's password", guessed_password),
        ("the database password", db_password.as_str()),
        ("the API token", api_secret.as_str()),
        ("the session id", session.as_str()),
        ("the login link", link_secret.as_str()),
    ];
    for (place, text) in &seen {
        for (what, secret) in &secrets {
            assert!(!text.contains(secret), "{place} shows {what}");
        }
    }
    assert!(
        panel.log().contains("/login/link/{token}"),
        "{}",
        panel.log()
    );

    let out = env.ok(&["site", "disable", &site, "--wait"]);
    assert!(out.contains("success"), "{out}");
    env.ok(&["site", "delete", &site, "--wait"]);
}
