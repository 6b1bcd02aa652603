//! A site's vhost, rendered from its [`VhostSpec`].
//!
//! HTTP is served on every HTTP address; HTTPS on every HTTPS address once the site has a
//! certificate and does not turn HTTPS off. `required` answers HTTP with 301 to the HTTPS
//! canonical address; every block, redirecting or disabled, answers ACME's challenge path
//! from fjord's own directory first, and logs to the site's own files. HSTS goes on HTTPS responses only, so a site that
//! serves both with HSTS gets one block per protocol.
//!
//! nginx 1.22 (Debian 12) has no `http2 on;` (1.25.1): HTTP/2 is a `listen … ssl http2`
//! option, which later versions still accept (with a deprecation notice).

use std::fmt::Write;

use model::{HttpsMode, TlsFiles};

use super::locations::web_locations;
use super::logs::site_log_lines;
use super::{ACME_CHALLENGE_PATH, VhostSpec, VhostState};
use crate::HEADER;

/// TLS 1.2 and 1.3 only, with Mozilla's "intermediate" cipher list (TLS 1.3's suites are
/// not configurable here and all good); the client picks among them, as Mozilla advises.
const TLS_SETTINGS: &str = "    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:\
DHE-RSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers off;
";

/// Text compressed on the way out (HTML always is, once gzip is on).
const GZIP: &str = "    gzip on;
    gzip_vary on;
    gzip_min_length 256;
    gzip_types text/css text/plain text/xml text/javascript application/javascript \
application/json application/xml application/rss+xml application/atom+xml image/svg+xml;
";

/// One year, the least HSTS preload lists take; subdomains are not the site's to speak for.
const HSTS: &str = "max-age=31536000";

/// Which addresses a server block listens on.
#[derive(Clone, Copy)]
enum Listen<'a> {
    Http,
    Https(&'a TlsFiles),
    Both(&'a TlsFiles),
}

impl Listen<'_> {
    fn https_only(self) -> bool {
        matches!(self, Listen::Https(_))
    }

    fn serves_https(self) -> bool {
        !matches!(self, Listen::Http)
    }
}

/// A site's vhost.
pub fn nginx_vhost(spec: &VhostSpec) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "# site {} on platform {}", spec.name, spec.platform);
    let tls = spec.served_tls();
    let all_names: Vec<&str> = std::iter::once(spec.name.as_str())
        .chain(spec.aliases.iter().map(String::as_str))
        .collect();
    if spec.state == VhostState::Disabled {
        let listen = tls.map_or(Listen::Http, Listen::Both);
        disabled_block(&mut out, spec, listen, &all_names);
        return out;
    }
    let served: &[&str] = if spec.redirect_aliases {
        &all_names[..1]
    } else {
        &all_names
    };
    match tls {
        None => site_block(&mut out, spec, Listen::Http, served),
        Some(tls) if spec.https == HttpsMode::Required => {
            redirect_block(&mut out, spec, Listen::Http, served, true);
            site_block(&mut out, spec, Listen::Https(tls), served);
        }
        Some(tls) if !spec.hsts => site_block(&mut out, spec, Listen::Both(tls), served),
        Some(tls) => {
            site_block(&mut out, spec, Listen::Http, served);
            site_block(&mut out, spec, Listen::Https(tls), served);
        }
    }
    if spec.redirect_aliases && !spec.aliases.is_empty() {
        let aliases = &all_names[1..];
        let to_https = tls.is_some() && spec.https == HttpsMode::Required;
        redirect_block(&mut out, spec, Listen::Http, aliases, to_https);
        if let Some(tls) = tls {
            redirect_block(&mut out, spec, Listen::Https(tls), aliases, true);
        }
    }
    out
}

fn open_server(out: &mut String, spec: &VhostSpec, listen: Listen, names: &[&str]) {
    out.push_str("\nserver {\n");
    if !listen.https_only() {
        for addr in &spec.http_listen {
            let _ = writeln!(out, "    listen {addr};");
        }
    }
    let tls = match listen {
        Listen::Http => None,
        Listen::Https(tls) | Listen::Both(tls) => Some(tls),
    };
    if tls.is_some() {
        for addr in &spec.https_listen {
            let _ = writeln!(out, "    listen {addr} ssl http2;");
        }
    }
    let _ = writeln!(out, "    server_name {};", names.join(" "));
    // Every block of the site logs to the site's own files, a redirect's and the disabled
    // page's too (ACME's challenges and a refused write are requests of the site's as well).
    if let Some(dir) = &spec.log_dir {
        site_log_lines(out, dir, spec.config_dir());
    }
    if let Some(tls) = tls {
        let _ = writeln!(
            out,
            "    ssl_certificate {};\n    ssl_certificate_key {};",
            tls.cert, tls.key
        );
        out.push_str(TLS_SETTINGS);
    }
}

/// The headers every response of the block carries (`always`: errors too). nginx drops a
/// server's `add_header`s in a location that has its own, so such a location repeats these.
fn headers(spec: &VhostSpec, listen: Listen, indent: &str) -> String {
    let mut out = String::new();
    let mut add = |name: &str, value: &str| {
        let _ = writeln!(out, "{indent}add_header {name} \"{value}\" always;");
    };
    add("X-Content-Type-Options", "nosniff");
    for (name, value) in spec.web.headers {
        add(name, value);
    }
    if spec.hsts && listen.https_only() {
        add("Strict-Transport-Security", HSTS);
    }
    out
}

/// The names of the headers [`headers`] adds.
fn header_names(spec: &VhostSpec) -> Vec<&'static str> {
    let mut names = vec!["X-Content-Type-Options"];
    names.extend(spec.web.headers.iter().map(|(name, _)| *name));
    names.push("Strict-Transport-Security");
    names
}

/// ACME's HTTP-01 challenges, answered from fjord's directory, never from the site's.
fn acme_location(out: &mut String, spec: &VhostSpec) {
    let _ = write!(
        out,
        "    # ACME's challenges, answered from fjord's directory on every name.
    location ^~ {ACME_CHALLENGE_PATH} {{
        root {};
        try_files $uri =404;
        default_type text/plain;
    }}
",
        spec.acme_dir.display()
    );
}

const READ_ONLY: &str =
    "    # Read-only while fjord moves this site: writes are refused, to be retried.
    if ($request_method !~ ^(GET|HEAD|OPTIONS)$) {
        return 503;
    }
    error_page 503 @fjord_read_only;
    location @fjord_read_only {
        add_header Retry-After 10 always;
";

fn site_block(out: &mut String, spec: &VhostSpec, listen: Listen, names: &[&str]) {
    open_server(out, spec, listen, names);
    let web = &spec.web;
    let _ = write!(
        out,
        "    root {docroot};
    # A link below the docroot is followed only if its owner owns what it points to: a
    # site's owner cannot publish another user's files through one.
    disable_symlinks if_not_owner from=$document_root;
    # The site's upload limit and what a form carries beside the file (PHP's post_max_size).
    client_max_body_size {body}m;
    index {index};
{GZIP}{headers}",
        docroot = web.docroot.display(),
        index = if web.php_socket.is_some() {
            "index.php index.html"
        } else {
            "index.html index.htm"
        },
        body = spec.upload_limit.body_mb(),
        headers = headers(spec, listen, "    "),
    );
    if spec.state == VhostState::ReadOnly {
        out.push_str(READ_ONLY);
        out.push_str(&headers(spec, listen, "        "));
        out.push_str(
            "        return 503 \"This site is moving; please try again in a moment.\\n\";\n    }\n",
        );
    }
    acme_location(out, spec);
    if web.proxy.is_some() && spec.https == HttpsMode::Required && !listen.serves_https() {
        // A proxied application that wants HTTPS (the panel: its sign-in form) is never
        // passed plain HTTP, even before its certificate comes: ACME's challenges only.
        out.push_str(
            "    location / {\n        default_type text/plain;\n        \
             return 503 \"This address is served over HTTPS once its certificate is issued.\\n\";\n    }\n}\n",
        );
        return;
    }
    web_locations(out, web, &header_names(spec));
    out.push_str("}\n");
}

/// Answers every request with 301 to the main name's canonical address (over HTTPS when
/// `to_https`), except ACME's challenges.
fn redirect_block(
    out: &mut String,
    spec: &VhostSpec,
    listen: Listen,
    names: &[&str],
    to_https: bool,
) {
    open_server(out, spec, listen, names);
    out.push_str(&headers(spec, listen, "    "));
    acme_location(out, spec);
    let _ = write!(
        out,
        "    location / {{\n        return 301 {}$request_uri;\n    }}\n}}\n",
        spec.base_url(to_https)
    );
}

fn disabled_block(out: &mut String, spec: &VhostSpec, listen: Listen, names: &[&str]) {
    open_server(out, spec, listen, names);
    let _ = write!(
        out,
        "    root {disabled_dir};
{headers}",
        disabled_dir = spec.disabled_dir.display(),
        headers = headers(spec, listen, "    "),
    );
    acme_location(out, spec);
    out.push_str(
        "    error_page 503 /fjord-disabled.html;
    location = /fjord-disabled.html {
        internal;
    }
    location / {
        return 503;
    }
}
",
    );
}
