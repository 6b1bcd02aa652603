//! fjord's server-level nginx config and the hook that includes it.

use std::fmt::Write;
use std::path::Path;

use model::NginxService;

use crate::HEADER;

/// The host name of fjord's own probe server block. `.invalid` can never be a site's name
/// (the model refuses it), so this can never shadow a site.
pub const PROBE_HOST: &str = "fjord-probe.invalid";
pub const PROBE_GENERATION_PATH: &str = "/generation";

/// The file nginx's main config includes (placed in its `include_dir`): it pulls in fjord's
/// server-level config and nothing else, so fjord owns exactly one line of the host's config.
pub fn nginx_hook(server_conf: &Path) -> String {
    format!("{HEADER}include {};\n", server_conf.display())
}

/// fjord's server-level nginx config (included at `http` level): the access log format every
/// site's vhost logs in (`logs.rs`: no login token reaches a line); a probe server block on
/// every HTTP address, which lets a task confirm that a reload is live; on every HTTPS
/// address a block that refuses a handshake for a name no site serves (rather than hand out
/// some site's certificate), and the TLS session cache every site shares; then every site's
/// vhost.
///
/// Only what Debian's `nginx.conf` does not set already at `http` level is set here (a
/// directive set twice at one level fails `nginx -t`): gzip and the TLS protocols are in
/// each vhost.
pub fn nginx_server_conf(nginx: &NginxService, config_dir: &Path) -> String {
    let mut out = String::from(HEADER);
    out.push_str(&super::logs::log_format(config_dir));
    out.push_str("\nserver {\n");
    for listen in &nginx.listen {
        let _ = writeln!(out, "    listen {listen};");
    }
    let _ = write!(
        out,
        "    server_name {PROBE_HOST};
    access_log off;
    include {generation};
    location / {{
        return 404;
    }}
}}
",
        generation = config_dir.join("generation.conf").display(),
    );
    if !nginx.https_listen.is_empty() {
        out.push_str(
            "\n# TLS sessions are resumed across every site's vhost.\n\
             ssl_session_cache shared:fjord_tls:10m;\n\
             ssl_session_timeout 1d;\n\
             ssl_session_tickets off;\n\n\
             # A name no site serves gets no certificate (nginx would hand out the first one).\n\
             server {\n",
        );
        for listen in &nginx.https_listen {
            let _ = writeln!(out, "    listen {listen} ssl http2;");
        }
        out.push_str("    ssl_reject_handshake on;\n    access_log off;\n}\n");
    }
    let _ = write!(
        out,
        "\ninclude {vhosts}/*.conf;\n",
        vhosts = config_dir.join("vhost.d").display(),
    );
    out
}
