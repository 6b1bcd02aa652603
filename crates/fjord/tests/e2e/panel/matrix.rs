//! Every route of the panel and every endpoint of the API, for every role: what each may do,
//! and that a client guessing another client's names and ids gets "not found", queues
//! nothing and learns nothing.

use crate::browser::{Browser, Response};
use crate::databases::token;
use crate::harness::Env;

use super::{Panel, add_user, api, api_token, csrf, form_body, sign_in, task_count};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// Permitted (whatever the state then says: 2xx, 3xx, 409, 422).
    Allow,
    /// 403 or 404, and nothing queued.
    Deny,
}
use Expect::{Allow, Deny};

/// One request of the matrix and what each role gets: administrator, platform manager,
/// account manager, client user of alpha.
struct Case {
    api: bool,
    method: &'static str,
    path: String,
    body: String,
    expect: [Expect; 4],
}

fn html(method: &'static str, path: String, body: &str, expect: [Expect; 4]) -> Case {
    Case {
        api: false,
        method,
        path,
        body: body.to_string(),
        expect,
    }
}

fn json(method: &'static str, path: String, body: &str, expect: [Expect; 4]) -> Case {
    Case {
        api: true,
        method,
        path,
        body: body.to_string(),
        expect,
    }
}

const ALL: [Expect; 4] = [Allow, Allow, Allow, Allow];
const NOT_CLIENT: [Expect; 4] = [Allow, Allow, Allow, Deny];
const TECHNICAL: [Expect; 4] = [Allow, Allow, Deny, Deny];
const ADMIN_ONLY: [Expect; 4] = [Allow, Deny, Deny, Deny];
const ACCOUNTS: [Expect; 4] = [Allow, Deny, Allow, Deny];
const SITE_TASK_OWN: [Expect; 4] = [Allow, Allow, Deny, Allow];
const ALL_BUT_ACCOUNTS: [Expect; 4] = [Allow, Allow, Deny, Allow];

fn cases(own: &str, other: &str, other_task: i64, other_backup: i64, victim: &str) -> Vec<Case> {
    // First, while the victim user is still there.
    let mut c = grant_cases(own, victim);
    c.extend([
        html("GET", "/".into(), "", ALL),
        html("GET", "/sites".into(), "", ALL),
        html("GET", format!("/sites/{own}"), "", ALL),
        html("GET", format!("/sites/{other}"), "", NOT_CLIENT),
        html("GET", "/platforms".into(), "", ALL),
        html("GET", "/platforms/p1".into(), "", ALL),
        html("GET", "/platforms/p2".into(), "", NOT_CLIENT),
        html("GET", "/servers".into(), "", TECHNICAL),
        html("GET", "/servers/t".into(), "", TECHNICAL),
        html("GET", "/tasks".into(), "", ALL_BUT_ACCOUNTS),
        html("GET", format!("/tasks/{other_task}"), "", TECHNICAL),
        html("GET", format!("/tasks/{other_task}/events"), "", TECHNICAL),
        html("GET", "/clients".into(), "", NOT_CLIENT),
        html("GET", "/clients/beta".into(), "", NOT_CLIENT),
        html("GET", "/users".into(), "", ACCOUNTS),
        html("GET", "/users/bob".into(), "", ACCOUNTS),
        html("GET", "/platforms/new".into(), "", TECHNICAL),
        html(
            "GET",
            format!("/sites/{other}/migrate-check?platform=p2"),
            "",
            TECHNICAL,
        ),
        html(
            "POST",
            format!("/sites/{own}/tasks/verify"),
            "",
            SITE_TASK_OWN,
        ),
        html(
            "POST",
            format!("/sites/{other}/tasks/verify"),
            "",
            TECHNICAL,
        ),
        html(
            "POST",
            format!("/sites/{other}/tasks/backup"),
            "",
            TECHNICAL,
        ),
        html(
            "POST",
            format!("/sites/{other}/tasks/disable"),
            "",
            TECHNICAL,
        ),
        html("POST", format!("/sites/{own}/tasks/disable"), "", TECHNICAL),
        html("POST", format!("/sites/{other}/login-link"), "", TECHNICAL),
        html(
            "POST",
            format!("/sites/{other}/restore"),
            &format!("backup={other_backup}"),
            TECHNICAL,
        ),
        html(
            "POST",
            format!("/sites/{other}/clone"),
            "new_name=stolen.example&platform=p1",
            TECHNICAL,
        ),
        html(
            "POST",
            format!("/sites/{other}/migrate"),
            "platform=p2",
            TECHNICAL,
        ),
        html(
            "POST",
            format!("/sites/{other}/names"),
            "aliases=www.stolen.example",
            TECHNICAL,
        ),
        html("POST", format!("/tasks/{other_task}/retry"), "", TECHNICAL),
        html("POST", "/platforms/p1/verify".into(), "", TECHNICAL),
        // A limit the rules refuse: permitted roles get 422, and nothing changes.
        html(
            "POST",
            "/platforms/p1/upload-limit".into(),
            "upload_limit=lots",
            TECHNICAL,
        ),
        html("POST", "/servers/t/verify".into(), "", TECHNICAL),
        // An engine the rules refuse: permitted roles get 422, and the server is untouched.
        html(
            "POST",
            "/servers/t/services".into(),
            "remove_db=oracle",
            TECHNICAL,
        ),
        html("GET", "/servers/new".into(), "", TECHNICAL),
        // A name the rules refuse: permitted roles get 422, and no server is ever touched.
        html("POST", "/servers".into(), "name=Not+A+Name", TECHNICAL),
        json(
            "POST",
            "/api/v1/servers".into(),
            r#"{"name":"Not A Name"}"#,
            TECHNICAL,
        ),
        html(
            "POST",
            "/platforms".into(),
            "name=pz&server=t&path=/nonexistent/pz&kind=static",
            TECHNICAL,
        ),
        html("POST", "/clients/beta".into(), "quota=1", ACCOUNTS),
        html(
            "POST",
            "/users".into(),
            "name=eve&role=administrator",
            ADMIN_ONLY,
        ),
        html(
            "POST",
            "/users/bob".into(),
            "role=client&client=alpha",
            ACCOUNTS,
        ),
        json("GET", "/api/v1/me".into(), "", ALL),
        json("GET", "/api/v1/sites".into(), "", ALL),
        json("GET", format!("/api/v1/sites/{own}"), "", ALL),
        json("GET", format!("/api/v1/sites/{other}"), "", NOT_CLIENT),
        json(
            "GET",
            format!("/api/v1/sites/{other}/backups"),
            "",
            NOT_CLIENT,
        ),
        json("GET", format!("/api/v1/sites/{own}/logs"), "", ALL),
        json(
            "GET",
            format!("/api/v1/sites/{other}/logs?log=php&lines=5"),
            "",
            NOT_CLIENT,
        ),
        json(
            "GET",
            format!("/api/v1/sites/{other}/migrate-check?platform=p2"),
            "",
            TECHNICAL,
        ),
        json(
            "POST",
            format!("/api/v1/sites/{own}/tasks"),
            r#"{"task":"verify"}"#,
            SITE_TASK_OWN,
        ),
        json(
            "POST",
            format!("/api/v1/sites/{other}/tasks"),
            r#"{"task":"backup"}"#,
            TECHNICAL,
        ),
        json(
            "POST",
            format!("/api/v1/sites/{other}/restore"),
            &format!(r#"{{"backup":{other_backup}}}"#),
            TECHNICAL,
        ),
        json(
            "POST",
            format!("/api/v1/sites/{other}/clone"),
            r#"{"new_name":"stolen2.example","platform":"p1"}"#,
            TECHNICAL,
        ),
        json(
            "POST",
            format!("/api/v1/sites/{other}/migrate"),
            r#"{"platform":"p2"}"#,
            TECHNICAL,
        ),
        json(
            "POST",
            format!("/api/v1/sites/{other}/login-link"),
            "",
            TECHNICAL,
        ),
        json(
            "POST",
            format!("/api/v1/sites/{other}/names"),
            r#"{"aliases":["www.stolen.example"]}"#,
            TECHNICAL,
        ),
        json("GET", "/api/v1/platforms".into(), "", ALL),
        json("GET", "/api/v1/platforms/p2".into(), "", NOT_CLIENT),
        json(
            "POST",
            "/api/v1/platforms".into(),
            r#"{"name":"py","server":"t","path":"/nonexistent/py","kind":"static"}"#,
            TECHNICAL,
        ),
        json("POST", "/api/v1/platforms/p1/verify".into(), "", TECHNICAL),
        json(
            "POST",
            "/api/v1/platforms/p1/upload-limit".into(),
            r#"{"upload_limit":"lots"}"#,
            TECHNICAL,
        ),
        json("GET", "/api/v1/servers".into(), "", TECHNICAL),
        json("GET", "/api/v1/backup-targets".into(), "", TECHNICAL),
        json("GET", "/api/v1/claims".into(), "", ALL_BUT_ACCOUNTS),
        json("GET", "/api/v1/servers/t".into(), "", TECHNICAL),
        json("POST", "/api/v1/servers/t/verify".into(), "", TECHNICAL),
        json(
            "POST",
            "/api/v1/servers/t/services".into(),
            r#"{"remove_db":["oracle"]}"#,
            TECHNICAL,
        ),
        json("GET", "/api/v1/tasks".into(), "", ALL_BUT_ACCOUNTS),
        json("GET", format!("/api/v1/tasks/{other_task}"), "", TECHNICAL),
        json(
            "GET",
            format!("/api/v1/tasks/{other_task}/log"),
            "",
            TECHNICAL,
        ),
        json(
            "POST",
            format!("/api/v1/tasks/{other_task}/retry"),
            "",
            TECHNICAL,
        ),
        json(
            "POST",
            format!("/api/v1/tasks/{other_task}/cancel"),
            "",
            TECHNICAL,
        ),
        json("GET", "/api/v1/clients".into(), "", NOT_CLIENT),
        json(
            "POST",
            "/api/v1/clients/beta".into(),
            r#"{"name":"beta","site_quota":1}"#,
            ACCOUNTS,
        ),
        json("GET", "/api/v1/users".into(), "", ACCOUNTS),
        json("GET", "/api/v1/users/bob".into(), "", ACCOUNTS),
        json(
            "POST",
            "/api/v1/users".into(),
            r#"{"name":"mallory","role":"administrator"}"#,
            ADMIN_ONLY,
        ),
        json("DELETE", format!("/api/v1/users/{victim}"), "", ACCOUNTS),
        json("GET", "/api/v1/tokens".into(), "", ALL),
    ]);
    // Guessing ids: the other client's backup through the own site answers as a missing one
    // (404) to every role, and the account manager may not restore at all.
    c.push(html(
        "POST",
        format!("/sites/{own}/restore"),
        &format!("backup={other_backup}"),
        [Deny, Deny, Deny, Deny],
    ));
    c
}

/// Impersonation through users and login links, server programs and client creation: the
/// paths by which a role could reach past its grant.
fn grant_cases(own: &str, victim: &str) -> Vec<Case> {
    let new_user = format!("new-{victim}");
    vec![
        // A login link: an administrator is shown it; an account manager's goes to the user
        // (none here: no mail is set up), and no answer but an administrator's holds one.
        html("POST", format!("/users/{victim}/link"), "", ACCOUNTS),
        html(
            "POST",
            "/users".into(),
            &format!("name={new_user}&role=client&client=beta&email=someone%40example.org"),
            ACCOUNTS,
        ),
        json(
            "POST",
            "/api/v1/users".into(),
            &format!(r#"{{"name":"{new_user}-api","role":"client","client":"beta"}}"#),
            ACCOUNTS,
        ),
        // Where a user's links are mailed is an administrator's to change.
        html(
            "POST",
            format!("/users/{victim}"),
            "role=client&client=beta&email=attacker%40example.org",
            ADMIN_ONLY,
        ),
        // Programs and paths root runs: an administrator's (theirs fail to verify here,
        // harmlessly: nothing they name exists).
        html(
            "POST",
            "/servers".into(),
            &format!(
                "name=odd-html-{victim}&nginx_binary=/nonexistent/nginx&nginx_config=/nonexistent/\
                 nginx.conf&include_dir=/nonexistent/conf.d&listen=127.0.0.1:9&reload=signal"
            ),
            ADMIN_ONLY,
        ),
        json(
            "POST",
            "/api/v1/servers".into(),
            &format!(
                r#"{{"name":"odd-api-{victim}","nginx_binary":"/nonexistent/nginx","nginx_config":"/nonexistent/nginx.conf","include_dir":"/nonexistent/conf.d","listen":"127.0.0.1:9","reload":"/nonexistent/reload now"}}"#
            ),
            ADMIN_ONLY,
        ),
        // A client that does not exist is made only by those who manage clients.
        html(
            "POST",
            "/sites".into(),
            &format!("name=site-{victim}.{own}&platform=p1&client=new-client-{victim}"),
            ADMIN_ONLY,
        ),
        json(
            "POST",
            "/api/v1/sites".into(),
            &format!(
                r#"{{"name":"api-{victim}.{own}","platform":"p1","client":"new-api-client-{victim}"}}"#
            ),
            ADMIN_ONLY,
        ),
    ]
}

fn send(panel: &Panel, b: &mut Browser, token: &str, case: &Case) -> Response {
    if case.api {
        let body = (!case.body.is_empty()).then_some(case.body.as_str());
        api(panel, token, case.method, &case.path, body)
    } else if case.method == "GET" {
        b.get(&case.path)
    } else {
        let csrf = csrf(b);
        let mut body = format!("csrf={csrf}");
        if !case.body.is_empty() {
            body.push('&');
            body.push_str(&case.body);
        }
        b.post(
            &case.path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    }
}

#[test]
fn every_route_and_endpoint_holds_each_role_to_its_rights() {
    let env = Env::new();
    env.add_platform("p2");
    let t = token();
    let own = format!("a-{t}.example");
    let other = format!("b-{t}.example");
    let panel = Panel::start(&env, &[]);
    env.ok(&[
        "client",
        "add",
        "alpha",
        "--quota",
        "10",
        "--platform",
        "p1",
    ]);
    env.ok(&["client", "add", "beta", "--platform", "p1"]);
    for (site, client) in [(&own, "alpha"), (&other, "beta")] {
        let out = env.ok(&[
            "site",
            "add",
            site,
            "--platform",
            "p1",
            "--client",
            client,
            "--wait",
        ]);
        assert!(out.contains("success"), "{out}");
    }
    let out = env.ok(&["site", "backup", &other, "--wait"]);
    assert!(out.contains("success"), "{out}");
    let backups = env.json(&["site", "backups", &other]);
    let other_backup = backups[0]["id"].as_i64().unwrap();
    let other_task = env.json(&["task", "list"])[0]["id"].as_i64().unwrap();
    let other_log = env.log(other_task);

    let password = "a long test password";
    for (user, role, client) in [
        ("root", "administrator", None),
        ("pm", "platform-manager", None),
        ("am", "account-manager", None),
        ("ann", "client", Some("alpha")),
        ("bob", "client", Some("beta")),
    ] {
        add_user(&env, user, role, client, password);
        add_user(
            &env,
            &format!("victim-{user}"),
            "client",
            Some("beta"),
            password,
        );
    }

    let roles = ["root", "pm", "am", "ann"];
    let mut failures = Vec::new();
    // The client first: its denials must find everything still in place.
    for (i, user) in roles.iter().enumerate().rev() {
        let mut b = sign_in(&panel, user, password);
        let token = api_token(&mut b);
        let victim = format!("victim-{user}");
        for case in cases(&own, &other, other_task, other_backup, &victim) {
            let expect = case.expect[i];
            let before = (expect == Deny).then(|| task_count(&env));
            let r = send(&panel, &mut b, &token, &case);
            let door = if case.api { "api" } else { "html" };
            let what = format!(
                "{user}: {door} {} {} → {}",
                case.method, case.path, r.status
            );
            match expect {
                Allow if matches!(r.status, 401 | 403 | 404) || r.status >= 500 => {
                    failures.push(format!("{what}, expected it allowed: {}", excerpt(&r.body)))
                }
                Deny if !matches!(r.status, 403 | 404) => {
                    failures.push(format!("{what}, expected 403 or 404: {}", excerpt(&r.body)))
                }
                Deny => {
                    if task_count(&env) != before.unwrap() {
                        failures.push(format!("{what} queued a task"));
                    }
                    for secret in ["beta", other_backup_marker(other_backup).as_str()] {
                        if *user == "ann" && r.body.contains(secret) {
                            failures.push(format!("{what} leaked {secret:?}"));
                        }
                    }
                    if !other_log.is_empty()
                        && other_log
                            .lines()
                            .filter(|l| l.len() > 30)
                            .any(|l| r.body.contains(l.trim()))
                    {
                        failures.push(format!("{what} leaked the task's log"));
                    }
                }
                _ => {}
            }
            if *user != "root" && r.body.contains("/login/link/") {
                failures.push(format!("{what} showed a login link"));
            }
        }
        // The lists a client user sees hold only its own.
        if *user == "ann" {
            // Its own site with the other's backup: refused without naming whose it is.
            let r = super::post_form(
                &mut b,
                &format!("/sites/{own}/restore"),
                &[("backup", &other_backup.to_string())],
            );
            if r.body.contains(&other) {
                failures.push(format!("ann: restoring {other}'s backup named {other}"));
            }
            for path in ["/sites", "/", "/tasks"] {
                let body = b.get(path).body;
                if body.contains(&other) {
                    failures.push(format!("ann: {path} lists {other}"));
                }
            }
            let r = api(&panel, &token, "GET", "/api/v1/sites", None);
            assert!(r.body.contains(&own), "{}", r.body);
            if r.body.contains(&other) {
                failures.push(format!("ann: /api/v1/sites lists {other}"));
            }
            let r = api(&panel, &token, "GET", "/api/v1/tasks", None);
            if r.body.contains(&other) {
                failures.push(format!("ann: /api/v1/tasks lists {other}'s tasks"));
            }
        }
    }
    // Only the administrator's new clients exist.
    let clients = env.json(&["client", "list"]).to_string();
    for user in ["pm", "am", "ann"] {
        if clients.contains(&format!("client-victim-{user}\"")) {
            failures.push(format!("{user} made a client by naming it"));
        }
    }
    assert!(
        clients.contains("new-client-victim-root"),
        "the administrator's site made its client: {clients}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nobody signed in: every page asks to sign in, every endpoint answers 401.
    let mut anonymous = panel.browser();
    for path in ["/", "/sites", &format!("/sites/{own}"), "/tasks", "/users"] {
        let r = anonymous.get(path);
        assert_eq!(r.status, 303, "{path}");
        assert!(
            r.header("location").unwrap().starts_with("/login"),
            "{path}"
        );
    }
    let r = anonymous.post(
        &format!("/sites/{own}/tasks/verify"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form_body(&[("csrf", "x")]),
    );
    assert_eq!(r.status, 303);
    for path in ["/api/v1/sites", "/api/v1/tasks", "/api/v1/me"] {
        let r = api(&panel, "fjord_not-a-token", "GET", path, None);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(
            r.body.contains("\"code\":\"unauthenticated\""),
            "{}",
            r.body
        );
    }
}

fn other_backup_marker(id: i64) -> String {
    format!("backup={id}\"")
}

fn excerpt(body: &str) -> String {
    let text: String = body.chars().take(300).collect();
    text.replace('\n', " ")
}

/// The newest task's id and status.
fn newest_task(env: &Env) -> i64 {
    env.json(&["task", "list"])[0]["id"].as_i64().unwrap()
}

fn task_status(env: &Env, id: i64) -> String {
    env.json(&["task", "show", &id.to_string()])["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Cancel and retry of the operator's tasks, and the answers about another client's backups
/// and names, through the panel and the API, with no dispatcher to take the queued tasks.
#[test]
fn others_tasks_backups_and_names_answer_by_the_grant_through_every_door() {
    let env = Env::new();
    env.add_platform("p2");
    let t = token();
    let own = format!("a-{t}.example");
    let other = format!("b-{t}.example");
    let their_alias = format!("shop-{t}.example");
    env.ok(&["client", "add", "alpha", "--platform", "p1"]);
    env.ok(&["client", "add", "beta", "--platform", "p1"]);
    // No dispatcher runs beside the panel below: the setup's tasks are run here.
    for (site, client, alias) in [(&own, "alpha", None), (&other, "beta", Some(&their_alias))] {
        let mut args = vec!["site", "add", site, "--platform", "p1", "--client", client];
        if let Some(alias) = alias {
            args.extend(["--alias", alias.as_str()]);
        }
        env.ok(&args);
    }
    env.dispatch_until_idle(&[]);
    for site in [&own, &other] {
        env.ok(&["site", "backup", site]);
    }
    env.dispatch_until_idle(&[]);
    let other_backup = env.json(&["site", "backups", &other])[0]["id"]
        .as_i64()
        .unwrap();
    let own_archive = env.json(&["site", "backups", &own])[0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let password = "a long test password";
    add_user(&env, "ann", "client", Some("alpha"), password);
    add_user(&env, "pm", "platform-manager", None, password);
    let panel = Panel::start_with(&env, &[], &["--no-dispatcher"]);

    // The operator's tasks on ann's site: a delete, a forced migrate, a restore of a file.
    env.ok(&["site", "delete", &own, "--force"]);
    let delete = newest_task(&env);
    env.ok(&["site", "migrate", &own, "--platform", "p2", "--force"]);
    let forced = newest_task(&env);
    env.ok(&["site", "restore", &own, "--file", &own_archive]);
    let from_file = newest_task(&env);

    let mut ann = sign_in(&panel, "ann", password);
    let ann_token = api_token(&mut ann);
    let mut pm = sign_in(&panel, "pm", password);
    let pm_token = api_token(&mut pm);
    let mut failures = Vec::new();
    let mut expect_refused = |what: String, r: Response| {
        if !matches!(r.status, 403 | 404) {
            failures.push(format!("{what} → {}: {}", r.status, excerpt(&r.body)));
        }
    };
    for id in [delete, forced, from_file] {
        let path = format!("/api/v1/tasks/{id}/cancel");
        expect_refused(
            format!("ann: api cancel {id}"),
            api(&panel, &ann_token, "POST", &path, None),
        );
        let r = super::post_form(&mut ann, &format!("/tasks/{id}/cancel"), &[]);
        expect_refused(format!("ann: html cancel {id}"), r);
        assert_eq!(task_status(&env, id), "queued", "task {id}");
    }
    for id in [forced, from_file] {
        env.ok(&["task", "cancel", &id.to_string()]);
        let path = format!("/api/v1/tasks/{id}/retry");
        expect_refused(
            format!("ann: api retry {id}"),
            api(&panel, &ann_token, "POST", &path, None),
        );
        let r = super::post_form(&mut ann, &format!("/tasks/{id}/retry"), &[]);
        expect_refused(format!("ann: html retry {id}"), r);
        assert_eq!(task_status(&env, id), "cancelled", "task {id}");
    }
    // A file root reads is the administrator's to name, on a retry too.
    let path = format!("/api/v1/tasks/{from_file}/retry");
    expect_refused(
        "pm: api retry of a restore from a file".into(),
        api(&panel, &pm_token, "POST", &path, None),
    );
    assert_eq!(task_status(&env, from_file), "cancelled");

    // Another client's backup answers as a missing one, word for word but the id.
    let restore = |backup: i64| {
        let body = format!(r#"{{"backup":{backup}}}"#);
        let path = format!("/api/v1/sites/{own}/restore");
        let r = api(&panel, &ann_token, "POST", &path, Some(&body));
        // Only the id itself: the site's random name may hold the same digits.
        (
            r.status,
            r.body.replace(&format!("backup {backup} "), "backup ID "),
        )
    };
    let theirs = restore(other_backup);
    assert_eq!(theirs.0, 404, "{}", theirs.1);
    assert_eq!(theirs, restore(other_backup + 100_000));
    let r = super::post_form(
        &mut ann,
        &format!("/sites/{own}/restore"),
        &[("backup", &other_backup.to_string())],
    );
    assert_eq!(r.status, 404, "{}", excerpt(&r.body));

    // Another client's name or alias is taken, without saying whose.
    let mut named = Vec::new();
    for (path, body) in [
        (
            "/api/v1/sites".to_string(),
            format!(r#"{{"name":"{their_alias}","platform":"p1"}}"#),
        ),
        (
            format!("/api/v1/sites/{own}/names"),
            format!(r#"{{"aliases":["{their_alias}"]}}"#),
        ),
        (
            format!("/api/v1/sites/{own}/clone"),
            format!(r#"{{"new_name":"{their_alias}","platform":"p1"}}"#),
        ),
    ] {
        let r = api(&panel, &ann_token, "POST", &path, Some(&body));
        if r.status != 409 || r.body.contains(&other) || !r.body.contains("taken") {
            named.push(format!("{path} → {}: {}", r.status, excerpt(&r.body)));
        }
    }
    assert!(named.is_empty(), "{}", named.join("\n"));

    // What ann could queue herself she may cancel.
    let r = api(
        &panel,
        &ann_token,
        "POST",
        &format!("/api/v1/sites/{own}/tasks"),
        Some(r#"{"task":"verify"}"#),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let hers = newest_task(&env);
    let path = format!("/api/v1/tasks/{hers}/cancel");
    let r = api(&panel, &ann_token, "POST", &path, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(task_status(&env, hers), "cancelled");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
