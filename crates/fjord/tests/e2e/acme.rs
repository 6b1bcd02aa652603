//! Certificates from an ACME CA (Debian's pebble, private, on loopback) and a site's own
//! certificate, through the real binary: HTTP-01 is answered by the site's own vhost on the
//! private nginx; what is issued covers the site and its aliases, chains to the CA's root and
//! is served over HTTPS (HTTP/2) at once; a CA that is down, a refused order or a vhost nginx
//! rejects fails the task with the CA's (or nginx's) words and leaves the site serving exactly
//! as before; an own certificate that does not fit is refused before anything is queued.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{Env, free_port};
use crate::pebble::Pebble;

/// Where fjord writes the answers to HTTP-01 challenges for server `t`'s vhosts.
fn challenge_dir(env: &Env) -> PathBuf {
    env.data
        .path()
        .join("config/t/nginx/acme/.well-known/acme-challenge")
}

/// The directories of site certificates fjord keeps.
fn site_tls_dirs(env: &Env) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(env.data.path().join("tls"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("site-")
        })
        .collect();
    dirs.sort();
    dirs
}

/// Where `site`'s certificate chain and key are, as `site show` says.
pub(crate) fn tls_files(env: &Env, site: &str) -> (PathBuf, PathBuf) {
    let shown = env.json(&["site", "show", site]);
    let file = |key: &str| PathBuf::from(shown["certificate"][key].as_str().unwrap());
    (file("chain_file"), file("key_file"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn add_site(env: &Env, name: &str, aliases: &[&str]) {
    let mut args = vec!["site", "add", name, "--platform", "p1"];
    for alias in aliases {
        args.extend(["--alias", alias]);
    }
    env.ok(&args);
    env.dispatch_until_idle(&[]);
}

/// Registers the installation's ACME account with pebble; the task's record.
pub(crate) fn register_account(env: &Env, pebble: &Pebble, email: &str) -> serde_json::Value {
    let ca_root = pebble.listener_root().display().to_string();
    run_task(
        env,
        &[
            "https",
            "account",
            "--email",
            email,
            "--directory",
            &pebble.directory(),
            "--ca-root",
            &ca_root,
            "--server",
            "t",
        ],
    )
}

/// Has server `t` listen for HTTPS on a free port of 127.0.0.1, and returns the port.
pub(crate) fn listen_https(env: &Env) -> u16 {
    let https_port = free_port();
    env.ok(&[
        "server",
        "edit",
        "t",
        "--https-listen",
        &format!("127.0.0.1:{https_port}"),
    ]);
    env.dispatch_until_idle(&[]);
    https_port
}

/// Adds a site on `p1` that requires HTTPS, and runs its tasks.
pub(crate) fn add_required_site(env: &Env, name: &str) {
    env.ok(&[
        "site",
        "add",
        name,
        "--platform",
        "p1",
        "--https",
        "required",
    ]);
    env.dispatch_until_idle(&[]);
}

/// Runs queued tasks and returns the last one's record.
pub(crate) fn run_task(env: &Env, args: &[&str]) -> serde_json::Value {
    let id = env.queue(args);
    env.dispatch_until_idle(&[]);
    env.wait_task(id, Duration::from_secs(120))
}

#[test]
fn a_site_gets_a_certificate_for_its_name_and_aliases_and_failed_orders_write_nothing() {
    let env = Env::new();
    // pebble validates HTTP-01 against the sites' own vhosts.
    let mut pebble = Pebble::start(env.nginx.port);
    add_site(&env, "shop.example", &["www.shop.example"]);

    let refused = env.fails(&["site", "https", "shop.example"]);
    assert!(refused.contains("no ACME account"), "{refused}");

    let account = register_account(&env, &pebble, "ops@shop.example");
    assert_eq!(account["status"], "success", "{account}");
    let credentials = env.data.path().join("tls/acme-account.json");
    assert_eq!(mode(&credentials), 0o600);
    assert_eq!(mode(&env.data.path().join("tls")), 0o700);

    let issued = run_task(&env, &["site", "https", "shop.example"]);
    assert_eq!(issued["status"], "success", "{issued}");
    let (chain, key) = tls_files(&env, "shop.example");
    // The pair lives in a directory of its own under the site's.
    let site_dir = chain.parent().unwrap().parent().unwrap().to_path_buf();
    assert_eq!(site_tls_dirs(&env), std::slice::from_ref(&site_dir));
    assert_eq!((mode(&chain), mode(&key)), (0o600, 0o600));
    let chain_s = chain.display().to_string();
    let names = openssl(&["x509", "-in", &chain_s, "-noout", "-ext", "subjectAltName"]);
    assert!(
        names.contains("DNS:shop.example") && names.contains("DNS:www.shop.example"),
        "{names}"
    );
    // The chain (leaf, then pebble's intermediate) leads to the root pebble issues under.
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &pebble.issuing_root().display().to_string(),
        "-untrusted",
        &chain_s,
        &chain_s,
    ]);
    assert!(verified.trim_end().ends_with(": OK"), "{verified}");
    let shown = env.json(&["site", "show", "shop.example"]);
    assert_eq!(shown["certificate"]["source"], "acme", "{shown}");
    assert_eq!(
        shown["certificate"]["names"],
        serde_json::json!(["shop.example", "www.shop.example"])
    );
    // The challenge answers are gone.
    let left: Vec<_> = std::fs::read_dir(challenge_dir(&env)).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    // A name that does not point here: the task fails in pebble's words, nothing is written.
    add_site(&env, "elsewhere.example", &[]);
    pebble.answer_wrongly("elsewhere.example", "127.0.0.2");
    let wrong = run_task(&env, &["site", "https", "elsewhere.example"]);
    assert_eq!(wrong["status"], "failed", "{wrong}");
    let error = wrong["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refused the order")
            && error.contains("elsewhere.example")
            && error.contains("127.0.0.2"),
        "{error}"
    );
    assert_eq!(site_tls_dirs(&env), std::slice::from_ref(&site_dir));

    // The CA down: the task fails saying so, and writes nothing.
    pebble.stop();
    add_site(&env, "down.example", &[]);
    let down = run_task(&env, &["site", "https", "down.example"]);
    assert_eq!(down["status"], "failed", "{down}");
    let error = down["error"].as_str().unwrap_or_default();
    assert!(error.contains("could not be reached"), "{error}");
    assert_eq!(site_tls_dirs(&env), std::slice::from_ref(&site_dir));
    // The issued certificate is still the site's.
    assert!(chain.exists() && key.exists());
}

/// Writes a certificate for `names` valid from `from` to `until` (days from today) and its key
/// (or another key) under `dir`; returns their paths.
fn own_certificate(
    dir: &Path,
    tag: &str,
    names: &[&str],
    from: i64,
    until: i64,
    other_key: bool,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = |d: i64| {
        let t = today + d * 86_400;
        let (y, m, dd) = civil_from_days(t.div_euclid(86_400));
        rcgen::date_time_ymd(y, m, dd)
    };
    params.not_before = day(from);
    params.not_after = day(until);
    let cert = params.self_signed(&key).unwrap();
    let key_pem = if other_key {
        rcgen::KeyPair::generate().unwrap().serialize_pem()
    } else {
        key.serialize_pem()
    };
    let (c, k) = (
        dir.join(format!("{tag}.crt")),
        dir.join(format!("{tag}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key_pem).unwrap();
    (c.display().to_string(), k.display().to_string())
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m as u8, d as u8)
}

#[test]
fn an_own_certificate_that_does_not_fit_the_site_is_refused_before_anything_is_queued() {
    let env = Env::new();
    add_site(&env, "own.example", &["www.own.example"]);
    let dir = tempfile::tempdir().unwrap();
    let names = ["own.example", "www.own.example"];
    let tasks_before = env.json(&["task", "list"]).as_array().map(Vec::len);

    let (c, k) = own_certificate(dir.path(), "other-key", &names, -1, 30, true);
    let err = env.fails(&["site", "https", "own.example", "--cert", &c, "--key", &k]);
    assert!(
        err.contains(&k) && err.contains("is not the key of the certificate"),
        "{err}"
    );

    let (c, k) = own_certificate(dir.path(), "other-names", &["own.example"], -1, 30, false);
    let err = env.fails(&["site", "https", "own.example", "--cert", &c, "--key", &k]);
    assert!(
        err.contains(&c) && err.contains("does not cover www.own.example"),
        "{err}"
    );

    let (c, k) = own_certificate(dir.path(), "expired", &names, -30, -1, false);
    let err = env.fails(&["site", "https", "own.example", "--cert", &c, "--key", &k]);
    assert!(err.contains(&c) && err.contains("has expired"), "{err}");
    assert_eq!(
        env.json(&["task", "list"]).as_array().map(Vec::len),
        tasks_before,
        "a refused certificate queues nothing"
    );
    assert!(site_tls_dirs(&env).is_empty());

    // One that fits is written, root's only, and recorded as the site's own.
    let (c, k) = own_certificate(dir.path(), "good", &names, -1, 30, false);
    let done = run_task(
        &env,
        &["site", "https", "own.example", "--cert", &c, "--key", &k],
    );
    assert_eq!(done["status"], "success", "{done}");
    let (chain, key) = tls_files(&env, "own.example");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(
        std::fs::read_to_string(chain).unwrap(),
        std::fs::read_to_string(&c).unwrap()
    );
    assert_eq!(
        env.json(&["site", "show", "own.example"])["certificate"]["source"],
        "own"
    );
}

/// An HTTPS answer as curl saw it, trusting only pebble's issuing root.
pub(crate) struct Secure {
    pub status: u16,
    pub http_version: String,
}

/// curl's `GET https://host:port/path`, `host` resolved to 127.0.0.1 and the chain checked
/// against pebble's issuing root: its stdout is the status and the HTTP version.
pub(crate) fn curl_status(
    pebble: &Pebble,
    host: &str,
    port: u16,
    path: &str,
) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", "--cacert"])
        .arg(pebble.issuing_root())
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(["-w", "%{http_code} %{http_version}"])
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .unwrap()
}

/// `GET https://host:port/path`, `host` resolved to 127.0.0.1, the chain checked against
/// pebble's issuing root (curl fails on any other).
pub(crate) fn https_get(pebble: &Pebble, host: &str, port: u16, path: &str) -> Secure {
    let out = curl_status(pebble, host, port, path);
    assert!(
        out.status.success(),
        "https://{host}:{port}{path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = written.split(' ');
    Secure {
        status: words.next().unwrap_or_default().parse().unwrap_or(0),
        http_version: words.next().unwrap_or_default().to_string(),
    }
}

/// The certificate tasks of a site, newest first.
fn site_https_tasks(env: &Env, site: &str) -> Vec<serde_json::Value> {
    env.json(&["task", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "site-https" && t["target"]["name"] == site)
        .cloned()
        .collect()
}

/// Every file under `dir` with its contents.
fn files_under(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    crate::harness::walk(dir, &mut out);
    out
}

#[test]
fn a_site_requiring_https_is_served_with_its_certificate_and_a_failed_order_changes_nothing() {
    let env = Env::new();
    let https_port = free_port();
    let https_addr = format!("127.0.0.1:{https_port}");
    env.ok(&["server", "edit", "t", "--https-listen", &https_addr]);
    env.dispatch_until_idle(&[]);
    let pebble = Pebble::start(env.nginx.port);
    let account = register_account(&env, &pebble, "ops@secure.example");
    assert_eq!(account["status"], "success", "{account}");

    let (name, alias) = ("secure.example", "www.secure.example");
    env.ok(&[
        "site",
        "add",
        name,
        "--platform",
        "p1",
        "--alias",
        alias,
        "--https",
        "required",
    ]);
    env.dispatch_until_idle(&[]);
    // An account exists and the server listens for HTTPS: the install ordered the
    // certificate, and it is served.
    let orders = site_https_tasks(&env, name);
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["status"], "success", "{orders:?}");
    for host in [name, alias] {
        let r = https_get(&pebble, host, https_port, "/");
        assert_eq!((r.status, r.http_version.as_str()), (200, "2"), "{host}");
    }
    // HTTP answers 301 to the HTTPS address, but for ACME's challenges.
    let (status, location, _) = env.nginx.get(name, "/page?q=1");
    assert_eq!(status, 301);
    assert_eq!(
        location.as_deref(),
        Some(format!("https://{name}:{https_port}/page?q=1").as_str())
    );
    let (status, _, _) = env.nginx.get(alias, "/.well-known/acme-challenge/none");
    assert_eq!(status, 404, "the challenge path is answered over HTTP");
    let shown = env.json(&["site", "show", name]);
    assert_eq!(
        shown["certificate"]["names"],
        serde_json::json!([name, alias]),
        "{shown}"
    );
    let cert = &shown["certificate"];
    let (from, until) = (
        cert["not_before_ms"].as_i64().unwrap(),
        cert["not_after_ms"].as_i64().unwrap(),
    );
    // Renewed before two thirds of its life (pebble's certificates last five years).
    let renews = cert["renews_at_ms"].as_i64().unwrap_or_default();
    assert!(from < renews && renews < until, "{shown}");
    assert_eq!(cert["renewal_attempts"], 0);

    // An alias is added whose name does not point here (a name the CA validated before it
    // would not ask about again): the order its verify queues is refused in the CA's words,
    // and so is one asked for again; the vhost, the certificate and what is served stay
    // exactly as they were, and nginx never reloads for a refused order.
    let added = "shop.secure.example";
    pebble.answer_wrongly(added, "127.0.0.2");
    env.ok(&["site", "edit", name, "--add-alias", added]);
    env.dispatch_until_idle(&[]);
    let orders = site_https_tasks(&env, name);
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(orders[0]["status"], "failed", "{orders:?}");
    let vhost = env
        .data
        .path()
        .join(format!("config/t/nginx/vhost.d/{name}.conf"));
    let vhost_before = std::fs::read(&vhost).unwrap();
    let tls_before = files_under(&env.data.path().join("tls"));
    let reloads = env.nginx.reloads();
    let refused = run_task(&env, &["site", "https", name]);
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(added) && error.contains("127.0.0.2"),
        "{error}"
    );
    assert_eq!(std::fs::read(&vhost).unwrap(), vhost_before);
    assert_eq!(files_under(&env.data.path().join("tls")), tls_before);
    assert_eq!(env.nginx.reloads(), reloads);
    assert_eq!(https_get(&pebble, name, https_port, "/").status, 200);
    pebble.answer_rightly(added);

    // A certificate issued but whose vhost nginx rejects: the task fails, the new files go,
    // the site serves its old certificate.
    let id = env.queue(&["site", "https", name]);
    env.dispatch_until_idle(&[&format!("corrupt-vhost:{name}")]);
    let rejected = env.wait_task(id, Duration::from_secs(120));
    assert_eq!(rejected["status"], "failed", "{rejected}");
    assert_eq!(std::fs::read(&vhost).unwrap(), vhost_before);
    assert_eq!(files_under(&env.data.path().join("tls")), tls_before);
    assert_eq!(https_get(&pebble, name, https_port, "/").status, 200);

    // Another alias is added, now that every name points here: the certificate its verify
    // orders covers them all, served over HTTPS at once; the pair served before is gone.
    let blog = "blog.secure.example";
    env.ok(&["site", "edit", name, "--add-alias", blog]);
    env.dispatch_until_idle(&[]);
    for host in [name, alias, added, blog] {
        assert_eq!(
            https_get(&pebble, host, https_port, "/").status,
            200,
            "{host}"
        );
    }
    assert_eq!(
        env.json(&["site", "show", name])["certificate"]["names"],
        serde_json::json!([name, alias, added, blog])
    );
    let (chain, key) = tls_files(&env, name);
    let pairs: Vec<_> = std::fs::read_dir(chain.parent().unwrap().parent().unwrap())
        .unwrap()
        .collect();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!((mode(&chain), mode(&key)), (0o600, 0o600));

    // Deleting the site removes its key and certificate.
    let site_dir = chain.parent().unwrap().parent().unwrap().to_path_buf();
    env.ok(&["site", "delete", name, "--force"]);
    env.dispatch_until_idle(&[]);
    assert!(!site_dir.exists(), "{}", site_dir.display());
}

/// What a certificate task may change, and what the site answers over HTTPS.
fn served_state(
    env: &Env,
    pebble: &Pebble,
    name: &str,
    https_port: u16,
) -> std::collections::BTreeMap<String, String> {
    let mut state = env.host_state(&[name]);
    state.extend(files_under(&env.data.path().join("tls")));
    let r = https_get(pebble, name, https_port, "/");
    state.insert("HTTPS".into(), format!("{} {}", r.status, r.http_version));
    state
}

#[test]
fn a_certificate_task_failing_or_killed_after_any_step_leaves_the_site_serving_its_old_certificate()
{
    let mut env = Env::new();
    let https_port = listen_https(&env);
    let pebble = Pebble::start(env.nginx.port);
    let account = register_account(&env, &pebble, "ops@steps.example");
    assert_eq!(account["status"], "success", "{account}");
    let name = "steps.example";
    add_required_site(&env, name);
    assert_eq!(https_get(&pebble, name, https_port, "/").status, 200);

    // Renewing over a served certificate fails after each of its steps in turn.
    let mut step = 1;
    loop {
        let before = served_state(&env, &pebble, name, https_port);
        let id = env.queue(&["site", "https", name]);
        env.dispatch_until_idle(&[&format!("fail-after:site-https:{step}")]);
        let task = env.task(id);
        if task["status"] == "success" {
            break;
        }
        assert_eq!(task["status"], "failed", "step {step}: {task}");
        crate::harness::assert_same_state(
            &before,
            &served_state(&env, &pebble, name, https_port),
            &format!("site-https failing after step {step}"),
        );
        step += 1;
        assert!(step < 30, "site-https never succeeded");
    }
    let steps = step - 1;
    assert!(steps >= 5, "site-https has {steps} steps");

    // And its dispatcher is killed after each of them: the next one rolls it back.
    for step in 1..=steps {
        let before = served_state(&env, &pebble, name, https_port);
        let pid = env.start_dispatcher(&[&format!("pause-after:site-https:{step}")]);
        let id = env.queue(&["site", "https", name]);
        env.wait_for_log(id, "fault: paused");
        crate::harness::signal(pid, "KILL");
        env.start_dispatcher(&[]);
        let task = env.wait_task(id, Duration::from_secs(60));
        assert_eq!(
            task["error"], "interrupted; rolled back",
            "site-https killed after step {step}: {task}"
        );
        env.kill_dispatchers();
        crate::harness::assert_same_state(
            &before,
            &served_state(&env, &pebble, name, https_port),
            &format!("site-https killed after step {step}"),
        );
    }
    assert_eq!(https_get(&pebble, name, https_port, "/").status, 200);
}

/// The SHA-256 fingerprint of a PEM certificate (the first of `pem`).
pub(crate) fn fingerprint(pem: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(pem).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The certificate nginx serves for `host` on `port`.
pub(crate) fn served_certificate(host: &str, port: u16) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", host])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    fingerprint(&out.stdout)
}

#[test]
fn a_forced_renewal_replaces_the_served_certificate_without_a_failed_request() {
    let env = Env::new();
    let https_port = listen_https(&env);
    let pebble = Pebble::start(env.nginx.port);
    let account = register_account(&env, &pebble, "ops@renew.example");
    assert_eq!(account["status"], "success", "{account}");
    let name = "renew.example";
    add_required_site(&env, name);
    let page = "<p>renewed without a gap</p>\n".repeat(2_000);
    std::fs::write(env.docroot("p1", name).join("page.html"), &page).unwrap();
    let first = served_certificate(name, https_port);
    let (chain, _) = tls_files(&env, name);
    assert_eq!(first, fingerprint(&std::fs::read(&chain).unwrap()));

    // A reader asks for the page over HTTPS, checking pebble's chain, the status and the
    // length of every answer, while the certificate is renewed three times.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = https_reader(
        pebble.issuing_root(),
        name,
        https_port,
        format!("200 {}", page.len()),
        stop.clone(),
    );
    let mut served = vec![first];
    for _ in 0..3 {
        let renewed = run_task(&env, &["site", "https", name]);
        assert_eq!(renewed["status"], "success", "{renewed}");
        served.push(served_certificate(name, https_port));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answers, retried) = reader.join().expect("every answer was whole");
    assert!(answers >= 10, "only {answers} answers");
    assert!(
        retried <= 3,
        "{retried} of {answers} requests told GOAWAY unprocessed"
    );
    // Each renewal served a new certificate, the one the state names.
    let distinct: std::collections::BTreeSet<_> = served.iter().collect();
    assert_eq!(distinct.len(), 4, "{served:?}");
    let (chain, _) = tls_files(&env, name);
    assert_eq!(
        served.last().unwrap(),
        &fingerprint(&std::fs::read(&chain).unwrap())
    );

    // A clone and a site renamed by a migrate get certificates for their new names.
    env.ok(&["site", "clone", name, "copy.renew.example"]);
    env.dispatch_until_idle(&[]);
    env.ok(&[
        "site",
        "migrate",
        name,
        "--platform",
        "p1",
        "--rename",
        "moved.example",
    ]);
    env.dispatch_until_idle(&[]);
    for (site, host) in [
        ("copy.renew.example", "copy.renew.example"),
        ("moved.example", "moved.example"),
    ] {
        assert_eq!(
            env.json(&["site", "show", site])["certificate"]["names"],
            serde_json::json!([host]),
            "{site}"
        );
        assert_eq!(
            https_get(&pebble, host, https_port, "/page.html").status,
            200
        );
    }
}

/// Reads `host`'s page over HTTPS with curl (pebble's chain checked), checking status and
/// length of every answer, until stopped. An HTTP/2 connection a retiring nginx worker had
/// just accepted may be told GOAWAY before its first request is processed (curl exits 16 with
/// no byte of an answer); a client retries such a request (RFC 9113, 6.8): it is retried once
/// and counted apart. Returns (answers, retried).
pub(crate) fn https_reader(
    root: std::path::PathBuf,
    host: &'static str,
    port: u16,
    expected: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let ask = || {
            Command::new("curl")
                .args(["-sS", "--max-time", "10", "-o", "/dev/null", "--cacert"])
                .arg(&root)
                .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
                .args(["-w", "%{http_code} %{size_download}"])
                .arg(format!("https://{host}:{port}/page.html"))
                .output()
                .unwrap()
        };
        let (mut answers, mut retried) = (0, 0);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut out = ask();
            if out.status.code() == Some(16) && out.stdout == b"000 0" {
                retried += 1;
                out = ask();
            }
            let said = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success() && said == expected,
                "{host} answer {answers}: {said} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            answers += 1;
        }
        (answers, retried)
    })
}
