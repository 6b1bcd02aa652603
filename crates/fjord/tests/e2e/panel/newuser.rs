//! What a new user meets in the panel: a server's services changed from its page and the
//! API, who queued a task and how long it took, a link to the site, an add-site form that
//! offers only what the platform takes.

use super::{Panel, add_user, api, api_token, post_form, sign_in};
use crate::harness::Env;

#[test]
fn server_services_tasks_and_the_add_site_form_as_a_new_user_meets_them() {
    let env = Env::new();
    add_user(&env, "ada", "administrator", None, "correct horse battery");
    let panel = Panel::start(&env, &[]);
    let mut ada = sign_in(&panel, "ada", "correct horse battery");

    // The server's page changes its services; the verify it queues is ada's.
    let page = ada.get("/servers/t");
    assert!(
        page.body.contains("id=\"server-services\""),
        "{}",
        page.body
    );
    let r = post_form(&mut ada, "/servers/t/services", &[("add_db", "sqlite")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let task = r.header("location").expect("to the task").to_string();
    let id: i64 = task.rsplit('/').next().unwrap().parse().unwrap();
    let done = env.wait_task(id, std::time::Duration::from_secs(60));
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["queued_by"], "ada", "{done}");
    let server = env.json(&["server", "show", "t"]);
    assert_eq!(server["db"][0]["engine"], "sqlite", "{server}");
    let page = ada.get(&task);
    assert!(
        page.body.contains("id=\"task-queued-by\">ada<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"task-duration\""), "{}", page.body);

    // The API: what a site uses stays, and the refusal names it.
    env.ok(&[
        "site",
        "add",
        "kept.example",
        "--platform",
        "p1",
        "--db",
        "sqlite",
    ]);
    env.wait_task(
        env.json(&["task", "list"])[0]["id"].as_i64().unwrap(),
        std::time::Duration::from_secs(60),
    );
    let token = api_token(&mut ada);
    let r = api(
        &panel,
        &token,
        "POST",
        "/api/v1/servers/t/services",
        Some(r#"{"remove_db":["sqlite"]}"#),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("kept.example"), "{}", r.body);
    let r = api(&panel, &token, "GET", &format!("/api/v1/tasks/{id}"), None);
    assert!(r.body.contains("\"queued_by\":\"ada\""), "{}", r.body);

    // The site's page links to the site, at its server's port.
    let page = ada.get("/sites/kept.example");
    assert!(
        page.body
            .contains(&format!("href=\"http://kept.example:{}/\"", env.nginx.port)),
        "{}",
        page.body
    );

    // The add-site form: a static platform on a server with sqlite only offers sqlite, and a
    // platform whose verify failed is not preselected.
    env.ok(&[
        "platform",
        "add",
        "broken",
        "--server",
        "t",
        "--path",
        "/nonexistent/fjord-broken",
    ]);
    env.dispatch_until_idle(&[]);
    let form = ada.get("/sites/new").body;
    assert!(form.contains("<option value=\"sqlite\""), "{form}");
    assert!(!form.contains("<option value=\"mysql\""), "{form}");
    assert!(!form.contains("value=\"broken\" selected"), "{form}");
    assert!(form.contains("value=\"p1\" selected"), "{form}");
}
