//! The web edge: a server's nginx on several addresses, ACME's challenge path on every
//! vhost, the headers and compression every response gets, and a TLS vhost as fjord renders
//! it served over HTTP/2 by nginx 1.22.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::databases::{Cleanup, token};
use crate::harness::{Env, PrivateNginx, free_port, nginx_binary, world_readable_tempdir};
use crate::php_fpm::PrivatePhpFpm;

/// A response as curl saw it: status, headers (names lower-cased), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    http_version: String,
}

impl Reply {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> Option<&str> {
        let values = self.header(name);
        assert!(
            values.len() <= 1,
            "{name} sent {} times: {values:?}",
            values.len()
        );
        values.first().copied()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `curl` with `args`, the response's headers and body kept apart.
fn curl(args: &[&str]) -> Reply {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&head).unwrap();
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default();
    let mut words = first.split(' ');
    let http_version = words.next().unwrap_or_default().to_string();
    let status = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
        http_version,
    }
}

/// `GET path` of `host` through the address `addr` (`IP:PORT`, `[::1]:PORT`), over HTTP.
fn get(addr: &str, host: &str, path: &str, extra: &[&str]) -> Reply {
    let port = addr.rsplit(':').next().unwrap();
    let url = format!("http://{addr}{path}");
    let host = format!("Host: {host}:{port}");
    let mut args = vec!["-H", &host, &url];
    args.extend(extra);
    curl(&args)
}

#[test]
fn every_site_is_served_on_every_address_with_the_challenge_path_headers_and_gzip() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    let port = env.nginx.port;
    // IPv6 loopback when the machine has it, else a second IPv4 port.
    let second = if TcpListener::bind("[::1]:0").is_ok() {
        format!("[::1]:{port}")
    } else {
        format!("127.0.0.1:{}", free_port())
    };
    let php = fpm.service_arg();
    env.add_server_on(
        &env.nginx,
        "t",
        &["--listen", &second, "--php", &php, "--web-group", "nogroup"],
    );
    env.dispatch_until_idle(&[]);
    let listen = env.json(&["server", "show", "t"])["http"]["listen"].clone();
    assert_eq!(listen.as_array().map(Vec::len), Some(2), "{listen}");
    env.add_platform("p1");
    let code = env.platforms.path().join("app");
    std::fs::create_dir(&code).unwrap();
    // The application sends its own copy of a header the vhost sets: one is sent.
    std::fs::write(
        code.join("index.php"),
        "<?php header('Referrer-Policy: unsafe-url'); echo str_repeat(\"php page\\n\", 100);\n",
    )
    .unwrap();
    let code = code.display().to_string();
    env.ok(&[
        "platform", "add", "app", "--server", "t", "--path", &code, "--kind", "php",
    ]);
    env.dispatch_until_idle(&[]);

    let serving = format!("{t}-serving.edge.test");
    let alias = format!("www.{serving}");
    let disabled = format!("{t}-disabled.edge.test");
    let required = format!("{t}-required.edge.test");
    let php_site = format!("{t}-php.edge.test");
    env.ok(&[
        "site",
        "add",
        &serving,
        "--platform",
        "p1",
        "--alias",
        &alias,
        "--redirect",
    ]);
    env.ok(&["site", "add", &disabled, "--platform", "p1"]);
    env.ok(&[
        "site",
        "add",
        &required,
        "--platform",
        "p1",
        "--https",
        "required",
        "--hsts",
    ]);
    env.ok(&["site", "add", &php_site, "--platform", "app"]);
    env.dispatch_until_idle(&[]);
    env.ok(&["site", "disable", &disabled]);
    env.dispatch_until_idle(&[]);
    let shown = env.json(&["site", "show", &required]);
    assert_eq!(
        (&shown["https"], &shown["hsts"]),
        (&"required".into(), &true.into())
    );
    let err = env.fails(&["site", "edit", &serving, "--https", "always"]);
    assert!(
        err.contains("always") && err.contains("off, on or required"),
        "{err}"
    );

    // A token answer in fjord's own directory, as the ACME client writes it.
    let config_dir = env.data.path().join("config/t/nginx");
    let answer = format!("{t}-token.key-authorization");
    let challenge = render::acme_challenge_file(&config_dir, &format!("{t}-token"));
    std::fs::write(&challenge, &answer).unwrap();
    let challenge_path = format!("{}{t}-token", render::ACME_CHALLENGE_PATH);

    let docroot = env.docroot("p1", &serving);
    std::fs::write(
        docroot.join("style.css"),
        "body { color: black; }\n".repeat(40),
    )
    .unwrap();
    std::fs::write(docroot.join("index.html"), "<p>served</p>\n".repeat(40)).unwrap();

    for addr in [env.nginx.listen(), second.clone()] {
        // Every name answers the challenge over HTTP, not redirected: a serving site, its
        // redirecting alias, a disabled site, a `required` one.
        for host in [&serving, &alias, &disabled, &required, &php_site] {
            let r = get(&addr, host, &challenge_path, &[]);
            assert_eq!(
                (r.status, r.text()),
                (200, answer.clone()),
                "{host} on {addr}"
            );
            assert_eq!(r.one("content-type"), Some("text/plain"));
        }
        // `required` without a certificate serves HTTP: no redirect loop, no HSTS.
        let r = get(&addr, &required, "/", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("strict-transport-security").is_empty());
        // The alias redirects (the challenge path was the exception).
        let r = get(&addr, &alias, "/page", &[]);
        assert_eq!(r.status, 301);
        assert!(
            r.one("location")
                .unwrap()
                .ends_with(&format!("{serving}:{port}/page"))
        );

        // Headers on a static page, a static asset, a 404, the disabled page and PHP.
        let page = get(&addr, &serving, "/", &["-H", "Accept-Encoding: gzip"]);
        let asset = get(
            &addr,
            &serving,
            "/style.css",
            &["-H", "Accept-Encoding: gzip"],
        );
        let missing = get(&addr, &serving, "/missing.html", &[]);
        let off = get(&addr, &disabled, "/", &[]);
        let php_page = get(&addr, &php_site, "/", &["-H", "Accept-Encoding: gzip"]);
        assert_eq!(
            [
                page.status,
                asset.status,
                missing.status,
                off.status,
                php_page.status
            ],
            [200, 200, 404, 503, 200]
        );
        for r in [&page, &asset, &missing, &off, &php_page] {
            assert_eq!(
                r.one("x-content-type-options"),
                Some("nosniff"),
                "{:?}",
                r.headers
            );
            assert_eq!(
                r.one("referrer-policy"),
                Some("strict-origin-when-cross-origin"),
                "{:?}",
                r.headers
            );
        }
        // Text is compressed; assets are cached, pages are not.
        for r in [&page, &asset, &php_page] {
            assert_eq!(r.one("content-encoding"), Some("gzip"), "{:?}", r.headers);
        }
        assert_eq!(asset.one("cache-control"), Some("max-age=604800"));
        assert!(page.header("cache-control").is_empty());
    }
    // An HTTPS address for the server: its vhosts are rewritten, and without certificates
    // every site still serves HTTP; one address serves one protocol.
    let err = env.fails(&["server", "edit", "t", "--https-listen", &second]);
    assert!(err.contains("also an HTTP address"), "{err}");
    let https_addr = format!("127.0.0.1:{}", free_port());
    env.ok(&["server", "edit", "t", "--https-listen", &https_addr]);
    env.dispatch_until_idle(&[]);
    let http = &env.json(&["server", "show", "t"])["http"];
    assert_eq!(
        http["https_listen"],
        serde_json::json!([https_addr]),
        "{http}"
    );
    assert_eq!(get(&second, &required, "/", &[]).status, 200);
    std::fs::remove_file(&challenge).unwrap();
    assert_eq!(
        get(&env.nginx.listen(), &serving, &challenge_path, &[]).status,
        404
    );
    for site in [&serving, &disabled, &required, &php_site] {
        env.ok(&["site", "delete", site, "--force"]);
    }
    env.dispatch_until_idle(&[]);
}

/// `openssl` makes a self-signed certificate for `names` in `dir`: (cert, key).
fn self_signed(dir: &Path, names: &[&str]) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={}", names[0]),
        ])
        .args(["-addext", &format!("subjectAltName={}", san.join(","))])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn a_tls_vhost_as_fjord_renders_it_serves_http2_and_required_redirects_http() {
    let nginx = PrivateNginx::start();
    let dir = world_readable_tempdir();
    let (name, alias) = ("tls.edge.test", "www.tls.edge.test");
    let (cert, key) = self_signed(dir.path(), &[name, alias]);
    let docroot = dir.path().join("docroot");
    std::fs::create_dir(&docroot).unwrap();
    std::fs::write(docroot.join("index.html"), "<p>over TLS</p>\n").unwrap();
    let config_dir = dir.path().join("fjord");
    for sub in ["vhost.d", "disabled", "acme/.well-known/acme-challenge"] {
        std::fs::create_dir_all(config_dir.join(sub)).unwrap();
    }
    std::fs::write(config_dir.join("generation.conf"), "# generation\n").unwrap();
    std::fs::write(render::acme_challenge_file(&config_dir, "tok"), "tok.auth").unwrap();
    let log_dir = dir.path().join("logs");
    std::fs::create_dir(&log_dir).unwrap();
    let https_port = free_port();
    let path = |p: &str| engine::model::AbsPath::parse("path", p).unwrap();
    let service = engine::model::NginxService {
        binary: path(nginx_binary()),
        config: path(&nginx.prefix().join("nginx.conf").display().to_string()),
        prefix: None,
        include_dir: path(&nginx.prefix().join("conf.d").display().to_string()),
        listen: vec![nginx.listen().parse().unwrap()],
        https_listen: vec![format!("127.0.0.1:{https_port}").parse().unwrap()],
        reload: engine::model::ReloadMethod::Signal,
        files_owner: None,
        web_group: None,
        restart: Default::default(),
    };
    let spec = render::VhostSpec {
        name: name.into(),
        aliases: vec![alias.into()],
        redirect_aliases: true,
        platform: "tls".into(),
        http_listen: service.listen.clone(),
        https_listen: service.https_listen.clone(),
        tls: Some(engine::model::TlsFiles {
            cert: path(&cert),
            key: path(&key),
        }),
        https: engine::model::HttpsMode::Required,
        hsts: true,
        acme_dir: render::acme_root(&config_dir),
        disabled_dir: config_dir.join("disabled"),
        web: render::WebApp {
            docroot: docroot.clone(),
            php_socket: None,
            front_controller: false,
            hidden: Vec::new(),
            files: Vec::new(),
            denied_files: None,
            php_scripts: None,
            proxy: None,
            headers: &[("X-Frame-Options", "SAMEORIGIN")],
        },
        state: render::VhostState::Serving,
        upload_limit: engine::model::UploadLimit::DEFAULT,
        canonical_http_port: nginx.port,
        canonical_https_port: Some(https_port),
        log_dir: Some(log_dir.clone()),
    };
    std::fs::write(
        config_dir.join("server.conf"),
        render::nginx_server_conf(&service, &config_dir),
    )
    .unwrap();
    std::fs::write(
        config_dir.join("vhost.d/tls.conf"),
        render::nginx_vhost(&spec),
    )
    .unwrap();
    std::fs::write(
        nginx.prefix().join("conf.d/fjord.conf"),
        render::nginx_hook(&config_dir.join("server.conf")),
    )
    .unwrap();
    let prefix = format!("{}/", nginx.prefix().display());
    let out = Command::new(nginx_binary())
        .args(["-p", &prefix, "-c"])
        .arg(nginx.prefix().join("nginx.conf"))
        .args(["-s", "reload"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let url = format!("https://{name}:{https_port}/");
    let resolve = format!("{name}:{https_port}:127.0.0.1");
    let https = |url: &str, resolve: &str, extra: &[&str]| {
        let mut args = vec!["--http2", "--cacert", &cert, "--resolve", resolve, url];
        args.extend(extra);
        curl(&args)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--cacert",
            &cert,
            "--resolve",
            &resolve,
            &url,
        ])
        .status()
        .map_or(true, |s| !s.success())
    {
        assert!(Instant::now() < deadline, "nginx never served {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The old workers may still take HTTP connections for a moment after the new ones serve:
    // wait until several in a row are the new config's.
    let mut new_answers = 0;
    while new_answers < 5 {
        assert!(
            Instant::now() < deadline,
            "nginx kept its old config on HTTP"
        );
        if get(&nginx.listen(), name, "/", &[]).status == 301 {
            new_answers += 1;
        } else {
            new_answers = 0;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let r = https(&url, &resolve, &[]);
    assert_eq!(
        (r.http_version.as_str(), r.status),
        ("HTTP/2", 200),
        "{:?}",
        r.headers
    );
    assert_eq!(r.text(), "<p>over TLS</p>\n");
    assert_eq!(r.one("strict-transport-security"), Some("max-age=31536000"));
    assert_eq!(r.one("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.one("x-frame-options"), Some("SAMEORIGIN"));
    // TLS 1.2 is taken, and so is 1.3; nothing older.
    let r = https(&url, &resolve, &["--tlsv1.2", "--tls-max", "1.2"]);
    assert_eq!(r.status, 200);
    // The alias over HTTPS goes to the main name.
    let alias_resolve = format!("{alias}:{https_port}:127.0.0.1");
    let r = https(
        &format!("https://{alias}:{https_port}/x"),
        &alias_resolve,
        &[],
    );
    assert_eq!(r.status, 301);
    assert_eq!(
        r.one("location"),
        Some(format!("https://{name}:{https_port}/x").as_str())
    );
    // A name no site serves gets no certificate at all.
    let stranger = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--resolve",
            &format!("other.test:{https_port}:127.0.0.1"),
        ])
        .arg(format!("https://other.test:{https_port}/"))
        .output()
        .unwrap();
    assert!(!stranger.status.success(), "a stranger's name was answered");

    // HTTP: 301 to the HTTPS address, except ACME's challenges, on every name.
    for host in [name, alias] {
        let r = get(&nginx.listen(), host, "/page?q=1", &[]);
        assert_eq!(r.status, 301, "{host}");
        assert_eq!(
            r.one("location"),
            Some(format!("https://{name}:{https_port}/page?q=1").as_str())
        );
        assert!(r.header("strict-transport-security").is_empty());
        let r = get(
            &nginx.listen(),
            host,
            "/.well-known/acme-challenge/tok",
            &[],
        );
        assert_eq!((r.status, r.text().as_str()), (200, "tok.auth"), "{host}");
    }

    // Every block logged to the site's own access log (HTTPS served, the alias's HTTPS
    // redirect, HTTP's redirect on both names, ACME's challenges), and a login token asked
    // of any of them is not in it.
    let secret = "edgeLoginSecret9";
    let r = https(&format!("{url}?fjord-login={secret}"), &resolve, &[]);
    assert_eq!(r.status, 200);
    let r = https(
        &format!("https://{alias}:{https_port}/?fjord-login={secret}"),
        &alias_resolve,
        &[],
    );
    assert_eq!(r.status, 301);
    let r = get(
        &nginx.listen(),
        alias,
        &format!("/?fjord-login={secret}"),
        &[],
    );
    assert_eq!(r.status, 301);
    let access = std::fs::read_to_string(log_dir.join(render::ACCESS_LOG)).unwrap();
    for line in [
        "\"GET / HTTP/2.0\" 200 ",
        "\"GET /x HTTP/2.0\" 301 ",
        "\"GET /page?q=1 HTTP/1.1\" 301 ",
        "\"GET /.well-known/acme-challenge/tok HTTP/1.1\" 200 ",
        "\"GET /?[secret] HTTP/2.0\" 200 ",
        "\"GET /?[secret] HTTP/2.0\" 301 ",
        "\"GET /?[secret] HTTP/1.1\" 301 ",
    ] {
        assert!(
            access.contains(line),
            "no {line} in the site's access log:\n{access}"
        );
    }
    assert!(!access.contains(secret), "{access}");
    let errors = std::fs::read_to_string(log_dir.join(render::ERROR_LOG)).unwrap_or_default();
    assert!(!errors.contains(secret), "{errors}");
}
