//! Pure renderers of the files fjord writes to hosts: nginx config and the small pages fjord
//! serves itself.
//!
//! **Architecture invariant:** nothing here does IO or can fail. Inputs are validated model
//! types (host names and paths from a closed alphabet), so rendered config can never carry a
//! `;`, brace, quote or newline from user input. Every renderer is snapshot-tested in
//! `snapshots/`; run the tests with `UPDATE_SNAPSHOTS=1` to rewrite them after a deliberate
//! change, and review the diff.

use std::fmt::Write;
use std::path::{Path, PathBuf};

mod dokuwiki;
mod drupal;
mod logs;
mod mediawiki;
mod php;
mod wordpress;

pub use dokuwiki::{DOKUWIKI_DEFAULT_CONF, dokuwiki_preload, dokuwiki_protected};
pub use drupal::{DrupalSite, drupal_credentials, drupal_settings, drupal_sites_php};
pub use logs::{
    ACCESS_LOG, ERROR_LOG, LOG_FORMAT, PHP_ERROR_LOG, REDACTED, nginx_log_format,
    nginx_site_log_lines,
};
pub use mediawiki::{MediawikiSite, mediawiki_dispatcher, mediawiki_settings};
pub use php::{
    DISABLED_FUNCTIONS, MAIL_FUNCTIONS, PhpPool, db_address_of, php_fpm_pool, php_limits,
    php_settings,
};
pub use wordpress::{
    CONTENT_URL_PATH as WORDPRESS_CONTENT_URL_PATH, WordpressSite, wordpress_dispatcher,
    wordpress_mu_plugin, wordpress_site_config,
};

use model::{DbEngine, DbService, NginxService, Platform, Site, SiteDatabase, SiteStatus};

/// The host name of fjord's own probe server block. `.invalid` can never be a site's name
/// (the model refuses it), so this can never shadow a site.
pub const PROBE_HOST: &str = "fjord-probe.invalid";
pub const PROBE_GENERATION_PATH: &str = "/generation";

const HEADER: &str = "# Managed by fjord: edits here are overwritten by the next verify.\n";

/// Where a site's own files live, in its platform's `sites/` directory: a static site's
/// docroot, a PHP site's uploads and other files it writes.
pub fn site_files_dir(platform: &Platform, site: &Site) -> std::path::PathBuf {
    platform_sites_dir(platform).join(site.name.as_str())
}

/// Where a platform keeps its sites' directories: `sites/` of its docroot (Drupal's
/// multisite layout, which every kind follows).
pub fn platform_sites_dir(platform: &Platform) -> std::path::PathBuf {
    platform.docroot().join("sites")
}

/// The file nginx's main config includes (placed in its `include_dir`): it pulls in fjord's
/// server-level config and nothing else, so fjord owns exactly one line of the host's config.
pub fn nginx_hook(server_conf: &Path) -> String {
    format!("{HEADER}include {};\n", server_conf.display())
}

/// fjord's server-level nginx config: a probe server block, which lets a task confirm that a
/// reload is live, and the include of every site vhost.
pub fn nginx_server_conf(nginx: &NginxService, config_dir: &Path) -> String {
    let mut out = String::from(HEADER);
    out.push_str(&nginx_log_format());
    out.push('\n');
    let listen = nginx.listen;
    let _ = write!(
        out,
        "\
server {{
    listen {listen};
    server_name {PROBE_HOST};
    access_log off;
    include {generation};
    location / {{
        return 404;
    }}
}}

include {vhosts}/*.conf;
",
        generation = config_dir.join("generation.conf").display(),
        vhosts = config_dir.join("vhost.d").display(),
    );
    out
}

/// A site's vhost. An installed site serves its docroot (and with `redirect_aliases`, its
/// aliases answer 301 to the main name); a disabled site serves the disabled page with 503
/// on every name.
pub fn nginx_vhost(
    nginx: &NginxService,
    platform: &Platform,
    site: &Site,
    web: &WebApp,
    config_dir: &Path,
    logs: Option<&Path>,
) -> String {
    vhost(nginx, platform, site, web, config_dir, logs, false)
}

/// The vhost of an installed site whose writes are frozen while fjord moves it: reads are
/// served as usual, any other method is answered 503 with `Retry-After`, to be retried once
/// the site has moved.
pub fn nginx_vhost_read_only(
    nginx: &NginxService,
    platform: &Platform,
    site: &Site,
    web: &WebApp,
    config_dir: &Path,
    logs: Option<&Path>,
) -> String {
    vhost(nginx, platform, site, web, config_dir, logs, true)
}

const READ_ONLY: &str =
    "    # Read-only while fjord moves this site: writes are refused, to be retried.
    if ($request_method !~ ^(GET|HEAD|OPTIONS)$) {
        return 503;
    }
    error_page 503 @fjord_read_only;
    location @fjord_read_only {
        add_header Retry-After 10 always;
        return 503 \"This site is moving; please try again in a moment.\\n\";
    }
";

fn vhost(
    nginx: &NginxService,
    platform: &Platform,
    site: &Site,
    web: &WebApp,
    config_dir: &Path,
    logs: Option<&Path>,
    read_only: bool,
) -> String {
    let listen = nginx.listen;
    // Every server block of the site logs to the site's own files.
    let log_lines = logs.map(nginx_site_log_lines).unwrap_or_default();
    let main = site.name.as_str();
    let names: Vec<&str> = site.all_names().map(|h| h.as_str()).collect();
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "# site {main} on platform {}\n", platform.name);

    if site.status == SiteStatus::Disabled {
        let _ = write!(
            out,
            "\
server {{
    listen {listen};
    server_name {names};
{log_lines}    root {disabled_dir};
    error_page 503 /fjord-disabled.html;
    location = /fjord-disabled.html {{
        internal;
    }}
    location / {{
        return 503;
    }}
}}
",
            names = names.join(" "),
            disabled_dir = config_dir.join("disabled").display(),
        );
        return out;
    }

    let served_names = if site.redirect_aliases {
        vec![main]
    } else {
        names.clone()
    };
    let _ = write!(
        out,
        "\
server {{
    listen {listen};
    server_name {served};
{log_lines}    root {docroot};
    # A link below the docroot is followed only if its owner owns what it points to: a
    # site's owner cannot publish another user's files through one.
    disable_symlinks if_not_owner from=$document_root;
    # The site's upload limit and what a form carries beside the file (PHP's post_max_size).
    client_max_body_size {body}m;
    index {index};
{read_only}",
        served = served_names.join(" "),
        docroot = web.docroot.display(),
        index = if web.php_socket.is_some() {
            "index.php index.html"
        } else {
            "index.html index.htm"
        },
        read_only = if read_only { READ_ONLY } else { "" },
        body = site.upload_limit_on(platform).body_mb(),
    );
    web_locations(&mut out, web);
    out.push_str("}\n");
    if site.redirect_aliases && !site.aliases.is_empty() {
        let aliases: Vec<&str> = site.aliases.iter().map(|h| h.as_str()).collect();
        let _ = write!(
            out,
            "
server {{
    listen {listen};
    server_name {aliases};
{log_lines}    return 301 $scheme://{main}{port}$request_uri;
}}
",
            aliases = aliases.join(" "),
            // The site's canonical address names the port when it is not HTTP's own.
            port = match listen.port() {
                80 => String::new(),
                port => format!(":{port}"),
            },
        );
    }
    out
}

/// How nginx serves a site's application: what the app kind decides, given to the vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebApp {
    pub docroot: PathBuf,
    /// PHP is run by php-fpm on this socket; without one only files are served.
    pub php_socket: Option<PathBuf>,
    /// Requests for what is not a file go to the front controller (`/index.php`).
    pub front_controller: bool,
    /// URL prefixes under the docroot that are never served (fjord's own directories).
    pub hidden: Vec<String>,
    /// URL prefixes served as plain files from a directory of the site (never run as PHP).
    pub files: Vec<(String, PathBuf)>,
    /// A regex of file names in the code base that are never served (Drupal's source files:
    /// `.module`, `.install`, `.yml`…).
    pub denied_files: Option<&'static str>,
    /// When set, the only PHP scripts run (URL paths, `/index.php`); any other `.php` is 404.
    pub php_scripts: Option<Vec<String>>,
}

fn web_locations(out: &mut String, web: &WebApp) {
    for prefix in &web.hidden {
        let _ = write!(
            out,
            "    location ^~ {prefix} {{\n        return 404;\n    }}\n"
        );
    }
    for (prefix, dir) in &web.files {
        // ^~ keeps the PHP location off these: an uploaded .php file is only ever a file.
        // Regex locations at the server level are not tried under a ^~ prefix, so the
        // denials are repeated inside.
        let _ = write!(
            out,
            "    location ^~ {prefix} {{\n        alias {}/;\n        try_files $uri =404;\n        \
             location ~ \\.php$ {{\n            return 404;\n        }}\n        \
             location ~ /\\. {{\n            return 404;\n        }}\n        \
             location ~* {NEVER_SERVED} {{\n            return 404;\n        }}\n    }}\n",
            dir.display()
        );
    }
    let fallback = if web.front_controller && web.php_socket.is_some() {
        "/index.php?$args"
    } else {
        "=404"
    };
    let _ = write!(
        out,
        "    location / {{\n        try_files $uri $uri/ {fallback};\n    }}\n"
    );
    // Before the PHP location: regex locations match in order, and a dot file is never run.
    out.push_str(
        "    # Dot files (.git, .env, .htaccess) are never served.\n    location ~ /\\. {\n        \
         return 404;\n    }\n",
    );
    out.push_str(
        "    # Editor and backup copies (settings.php~, .bak, .swp…) and the files that tell the\n    \
         # application's version (CHANGELOG.txt…) are never served, under any directory.\n",
    );
    let _ = write!(
        out,
        "    location ~* {NEVER_SERVED} {{\n        return 404;\n    }}\n"
    );
    if let Some(denied) = web.denied_files {
        let _ = write!(
            out,
            "    # The application's source and config files are never served.\n    \
             location ~* {denied} {{\n        return 404;\n    }}\n"
        );
    }
    let Some(socket) = &web.php_socket else {
        return;
    };
    let pass = |out: &mut String, location: &str| {
        let _ = write!(
            out,
            "    location {location} {{\n        try_files $uri =404;\n        \
             fastcgi_pass unix:{socket};\n        \
             # Unbuffered: nginx 1.22's buffered reader can leave a response with no timer,\n        \
             # and a worker retiring on reload drops it mid-body (nginx ticket #2367); the\n        \
             # application may not turn buffering back on.\n        \
             fastcgi_buffering off;\n        \
             fastcgi_ignore_headers X-Accel-Buffering;\n{params}    }}\n",
            socket = socket.display(),
            params = FASTCGI_PARAMS,
        );
    };
    match &web.php_scripts {
        None => pass(out, "~ \\.php$"),
        Some(scripts) => {
            for script in scripts {
                pass(out, &format!("= {script}"));
            }
            out.push_str("    location ~ \\.php$ {\n        return 404;\n    }\n");
        }
    }
}

/// File names no site ever serves, whatever its kind (a case-insensitive regex on the URL's
/// path): an editor's or a merge's leftovers (`settings.php~`, `.bak`, `.orig`, `.save`,
/// `.swp`/`.swo`, `.old`, `.rej`, emacs' `#name#`), which would hand out a config's source as
/// text, and the files that tell which version of an application runs (Drupal's
/// `CHANGELOG.txt`, `INSTALL*.txt`, `UPGRADE.txt`, `UPDATE.txt`, `MAINTAINERS.txt`,
/// `LICENSE.txt`, `COPYRIGHT.txt`, `README.txt`, composer's manifests), as Drupal's own
/// `.htaccess` and Aegir's nginx config deny them. `robots.txt` and assets stay served.
pub const NEVER_SERVED: &str = "(?:~|\\.(?:bak|orig|save|sw[op]|old|rej)|/#[^/]*#|/(?:CHANGELOG|\
     CHANGES|INSTALL[^/]*|UPGRADE|UPDATE|MAINTAINERS|LICENSE|COPYRIGHT|README)\\.(?:txt|md)|\
     /composer\\.(?:json|lock))$";

/// nginx's `fastcgi_params`, inline: a private nginx has no `/etc/nginx/fastcgi_params`.
const FASTCGI_PARAMS: &str =
    "        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_param SCRIPT_NAME $fastcgi_script_name;
        fastcgi_param QUERY_STRING $query_string;
        fastcgi_param REQUEST_METHOD $request_method;
        fastcgi_param CONTENT_TYPE $content_type;
        fastcgi_param CONTENT_LENGTH $content_length;
        fastcgi_param REQUEST_URI $request_uri;
        fastcgi_param DOCUMENT_URI $document_uri;
        fastcgi_param DOCUMENT_ROOT $document_root;
        fastcgi_param SERVER_PROTOCOL $server_protocol;
        fastcgi_param REQUEST_SCHEME $scheme;
        fastcgi_param HTTPS $https if_not_empty;
        fastcgi_param GATEWAY_INTERFACE CGI/1.1;
        fastcgi_param SERVER_SOFTWARE nginx;
        fastcgi_param REMOTE_ADDR $remote_addr;
        fastcgi_param REMOTE_PORT $remote_port;
        fastcgi_param SERVER_ADDR $server_addr;
        fastcgi_param SERVER_PORT $server_port;
        fastcgi_param SERVER_NAME $host;
        fastcgi_param REDIRECT_STATUS 200;
        # httpoxy: a request's Proxy header never becomes the app's HTTP_PROXY.
        fastcgi_param HTTP_PROXY \"\";
";

/// A site's private directory, outside its docroot: credentials and SQLite files live here.
pub fn site_private_dir(platform: &Platform, site: &Site) -> std::path::PathBuf {
    platform.path.join("private").join(site.name.as_str())
}

/// The SQLite database file of a site.
pub fn site_sqlite_path(platform: &Platform, site: &Site) -> std::path::PathBuf {
    site_private_dir(platform, site).join("database.sqlite")
}

/// The site's database credentials, as `KEY=value` lines an application's settings can read
/// (written with mode 0640, outside the docroot).
pub fn site_db_env(db: &SiteDatabase, service: &DbService, sqlite_path: &Path) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "DB_ENGINE={}", db.engine);
    if db.engine == DbEngine::Sqlite {
        let _ = writeln!(out, "DB_PATH={}", sqlite_path.display());
        return out;
    }
    let _ = writeln!(
        out,
        "DB_NAME={}\nDB_USER={}\nDB_PASSWORD={}",
        db.name, db.user, db.password
    );
    match (&service.socket, &service.host) {
        (Some(socket), _) => {
            let _ = writeln!(out, "DB_HOST=localhost\nDB_SOCKET={socket}");
        }
        (None, Some(host)) => {
            let _ = writeln!(out, "DB_HOST={host}");
        }
        (None, None) => {}
    }
    if let Some(port) = service.port {
        let _ = writeln!(out, "DB_PORT={port}");
    }
    out
}

/// The page a disabled site shows.
pub fn disabled_page() -> String {
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Site disabled</title></head>\n\
     <body><h1>This site is disabled</h1>\n\
     <p>The site has been disabled by its administrator.</p></body></html>\n"
        .to_string()
}

/// The page a new static site starts with, so that its install can be seen to work.
pub fn placeholder_index(site: &Site) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{name}</title></head>\n\
         <body><h1>{name}</h1>\n<p>This site was installed by fjord. Replace this file with the \
         site's content.</p></body></html>\n",
        name = site.name.to_unicode()
    )
}

#[cfg(test)]
mod tests;
