//! Certificates renewed by the dispatcher itself: a certificate made due (its dates moved in
//! the state, since pebble's last five years) is renewed by a running dispatcher and the new
//! one served; a renewal the CA cannot answer changes nothing, is not tried again before its
//! backoff, and once it keeps failing the administrators are mailed.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::acme::{
    add_required_site, fingerprint, https_get, listen_https, register_account, served_certificate,
    tls_files,
};
use crate::harness::Env;
use crate::pebble::Pebble;
use crate::smtp::SmtpSink;

/// Runs SQL on fjord's state (the test's only way to move a certificate's dates).
fn state_sql(env: &Env, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(env.data.path().join("state.db"))
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Moves a certificate's life so that it began 100 days ago and ends in 10: due for renewal.
fn make_due(env: &Env, attempts: u32) {
    state_sql(
        env,
        &format!(
            "UPDATE site_certificates SET not_before = unixepoch() - 100 * 86400, \
             not_after = unixepoch() + 10 * 86400, renewal_attempts = {attempts}, \
             last_attempt_at = CASE WHEN {attempts} > 0 THEN unixepoch() - 86400 END"
        ),
    );
}

/// The renewals queued for `site` (newest first).
fn renewals(env: &Env, site: &str) -> Vec<serde_json::Value> {
    env.json(&["task", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["kind"] == "site-https" && t["target"]["name"] == site && t["queued_by"] == "renewal"
        })
        .cloned()
        .collect()
}

/// Waits until `site` has `count` renewals, the newest finished; returns it.
fn wait_renewals(env: &Env, site: &str, count: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = renewals(env, site);
        if found.len() == count && matches!(found[0]["status"].as_str(), Some("success" | "failed"))
        {
            return found[0].clone();
        }
        assert!(Instant::now() < deadline, "renewals of {site}: {found:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_dispatcher_renews_a_due_certificate_and_a_failing_renewal_changes_nothing_and_is_told() {
    let mut env = Env::new();
    let https_port = listen_https(&env);
    let mut pebble = Pebble::start(env.nginx.port);
    let sink = SmtpSink::for_administrator(&env, "ops@renewal.example");
    let account = register_account(&env, &pebble, "ops@renewal.example");
    assert_eq!(account["status"], "success", "{account}");
    let name = "due.example";
    add_required_site(&env, name);
    let first = served_certificate(name, https_port);
    assert!(renewals(&env, name).is_empty());

    // Due: a running dispatcher renews it, and serves the new one.
    make_due(&env, 0);
    env.start_dispatcher(&[]);
    let renewed = wait_renewals(&env, name, 1);
    assert_eq!(renewed["status"], "success", "{renewed}");
    env.kill_dispatchers();
    let second = served_certificate(name, https_port);
    assert_ne!(first, second);
    let (chain, _) = tls_files(&env, name);
    assert_eq!(second, fingerprint(&std::fs::read(&chain).unwrap()));
    let shown = env.json(&["site", "show", name]);
    assert_eq!(shown["certificate"]["renewal_attempts"], 0, "{shown}");

    // The CA is down: the renewal fails, the site serves the same certificate, and no other
    // renewal is queued before the backoff has passed. Its client has no address, and two
    // failures in a row are not yet the administrators' business.
    pebble.stop();
    make_due(&env, 1);
    env.start_dispatcher(&[]);
    let failed = wait_renewals(&env, name, 2);
    assert_eq!(failed["status"], "failed", "{failed}");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        renewals(&env, name).len(),
        2,
        "a renewal before its backoff"
    );
    env.kill_dispatchers();
    assert_eq!(served_certificate(name, https_port), second);
    assert_eq!(https_get(&pebble, name, https_port, "/").status, 200);
    assert_eq!(
        env.json(&["site", "show", name])["certificate"]["renewal_attempts"],
        2
    );
    assert_eq!(sink.count(), 0);

    // A third failure in a row: the administrators are told, with the CA's words.
    make_due(&env, 2);
    env.start_dispatcher(&[]);
    let failed = wait_renewals(&env, name, 3);
    assert_eq!(failed["status"], "failed", "{failed}");
    let mail = sink.wait_for("is not renewed");
    assert!(
        mail.contains("ops@renewal.example")
            && mail.contains(name)
            && mail.contains("could not be reached"),
        "{mail}"
    );
    env.kill_dispatchers();
    assert_eq!(served_certificate(name, https_port), second);
}

#[test]
fn the_panel_shows_a_sites_certificate_and_asks_for_a_new_one() {
    let env = Env::new();
    let https_port = listen_https(&env);
    let pebble = Pebble::start(env.nginx.port);
    let name = "panel.renew.example";
    add_required_site(&env, name);
    crate::panel::add_user(&env, "ann", "administrator", None, "a long enough password");
    let panel = crate::panel::Panel::start(&env, &[]);
    let mut b = crate::panel::sign_in(&panel, "ann", "a long enough password");

    // No account yet: no certificate, and no button to ask for one.
    let page = b.get(&format!("/sites/{name}"));
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("id=\"certificate\"><span class=\"muted\">none"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"action-https\""));

    let account = register_account(&env, &pebble, "ops@renew.example");
    assert_eq!(account["status"], "success", "{account}");
    let page = b.get(&format!("/sites/{name}"));
    assert!(page.body.contains("id=\"action-https\""), "{}", page.body);
    let r = crate::panel::post_form(&mut b, &format!("/sites/{name}/tasks/https"), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.json(&["site", "show", name])["certificate"].is_null() {
        assert!(Instant::now() < deadline, "no certificate");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(https_get(&pebble, name, https_port, "/").status, 200);
    let page = b.get(&format!("/sites/{name}"));
    assert!(
        page.body.contains(name) && page.body.contains("renewed by fjord"),
        "{}",
        page.body
    );
    // Pebble's certificates last five years: not yet a warning.
    let expiry = page
        .body
        .split("id=\"certificate-expiry\"")
        .nth(1)
        .expect("the expiry");
    let expiry = expiry.split("</span>").next().unwrap();
    assert!(
        expiry.contains("expires") && !expiry.contains("status-warning"),
        "{expiry}"
    );
}
