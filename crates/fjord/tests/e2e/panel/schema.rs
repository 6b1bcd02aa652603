//! The API against its own OpenAPI document: schemathesis (from PyPI) generates requests from
//! the document, valid and not, and checks every answer against it.

use std::process::Command;

use crate::harness::Env;

use super::{Panel, add_user, api, api_token, sign_in};

#[test]
fn the_api_answers_as_its_openapi_document_says_and_never_fails() {
    let env = Env::new();
    // No dispatcher: what the generated requests queue (platforms at made-up paths, sites
    // with made-up names) stays in the state and never reaches the machine.
    let panel = Panel::start_with(&env, &[], &["--no-dispatcher"]);
    env.ok(&["client", "add", "alpha", "--platform", "p1", "--quota", "3"]);
    let password = "the schema test's password";
    add_user(&env, "admin", "administrator", None, password);
    add_user(&env, "ann", "client", Some("alpha"), password);

    let spec = api(&panel, "", "GET", "/api/v1/openapi.json", None);
    assert_eq!(spec.status, 200);
    let doc: serde_json::Value = serde_json::from_str(&spec.body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/sites",
        "/sites/{name}",
        "/tasks/{id}/log",
        "/users",
        "/tokens",
    ] {
        assert!(paths.contains_key(path), "the document lacks {path}");
    }

    for user in ["admin", "ann"] {
        let mut b = sign_in(&panel, user, password);
        let token = api_token(&mut b);
        let work = tempfile::tempdir().unwrap();
        let out = Command::new("st")
            .current_dir(work.path())
            .args([
                "run",
                &format!("{}/api/v1/openapi.json", panel.url()),
                "--header",
                &format!("Authorization: Bearer {token}"),
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance",
                "--max-examples",
                "25",
                // One worker: with two, schemathesis' own code generation failed now and
                // then ("AST constructor recursion depth mismatch", CPython's ast module
                // used from two threads), a runtime error of the tool, not an answer of ours.
                "--workers",
                "1",
                "--generation-database",
                "none",
            ])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .expect("schemathesis (`st`, pip install schemathesis) runs");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "schemathesis as {user} found failures:\n{report}"
        );
        assert!(report.contains("Tested:"), "{report}");
    }
    let log = panel.log();
    assert!(
        !log.lines().any(|l| l.contains(" 500 ")),
        "the server answered 500:\n{log}"
    );
}
