//! How an application is served inside a vhost: the locations every kind shares and the
//! ones its `WebApp` asks for.

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// The security headers the kind wants on every response (name, value), beside
    /// `X-Content-Type-Options: nosniff`, which every site sends.
    pub headers: &'static [(&'static str, &'static str)],
    /// Every request is passed to this address (a `proxy` site: fjord's panel) instead of
    /// being served from the docroot.
    pub proxy: Option<SocketAddr>,
}

/// What a browser may cache for a while: stylesheets, scripts, images and fonts.
pub(super) const STATIC_ASSETS: &str =
    "\\.(?:css|js|mjs|map|png|jpe?g|gif|webp|avif|ico|svg|woff2?|ttf|otf|eot)$";

/// How long a browser keeps a static asset before asking again.
const ASSET_EXPIRES: &str = "7d";

/// The locations of a served site. `headers` are the names of the headers the vhost adds
/// itself: PHP's copies of them are dropped, so that a response carries each once.
pub(super) fn web_locations(out: &mut String, web: &WebApp, headers: &[&str]) {
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
    match web.proxy {
        Some(upstream) => proxy_location(out, upstream, headers),
        None => {
            let _ = write!(
                out,
                "    location / {{\n        try_files $uri $uri/ {fallback};\n    }}\n"
            );
        }
    }
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
    if web.proxy.is_some() {
        // What the upstream serves is its own: no asset is a file here, no PHP runs.
        return;
    }
    if let Some(denied) = web.denied_files {
        let _ = write!(
            out,
            "    # The application's source and config files are never served.\n    \
             location ~* {denied} {{\n        return 404;\n    }}\n"
        );
    }
    // `expires` is not `add_header`: the server's headers still reach these responses.
    let _ = write!(
        out,
        "    # Static assets are cached by browsers for a while.\n    \
         location ~* {STATIC_ASSETS} {{\n        expires {ASSET_EXPIRES};\n        \
         try_files $uri {fallback};\n    }}\n"
    );
    let Some(socket) = &web.php_socket else {
        return;
    };
    let hide_app_headers: String = headers
        .iter()
        .map(|name| format!("        fastcgi_hide_header {name};\n"))
        .collect();
    let pass = |out: &mut String, location: &str| {
        let _ = write!(
            out,
            "    location {location} {{\n        try_files $uri =404;\n        \
             fastcgi_pass unix:{socket};\n        \
             # Unbuffered: nginx 1.22's buffered reader can leave a response with no timer,\n        \
             # and a worker retiring on reload drops it mid-body (nginx ticket #2367); the\n        \
             # application may not turn buffering back on.\n        \
             fastcgi_buffering off;\n        \
             fastcgi_ignore_headers X-Accel-Buffering;\n{hide_app_headers}{params}    }}\n",
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

/// Every request passed to `upstream`, which learns the name and scheme it was asked for and
/// the client's address (set, not appended to: nothing the client sends in `X-Forwarded-For`
/// or `Forwarded` reaches it, so an upstream that trusts this vhost believes only nginx).
/// Responses are passed on as they come (a task's log streams for as long as the task
/// runs), and the vhost's own headers replace the upstream's copies.
fn proxy_location(out: &mut String, upstream: SocketAddr, headers: &[&str]) {
    let hide_app_headers: String = headers
        .iter()
        .map(|name| format!("        proxy_hide_header {name};\n"))
        .collect();
    let _ = write!(
        out,
        "    location / {{
        proxy_pass http://{upstream};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Forwarded \"\";
        proxy_set_header Connection \"\";
        # A task's log is a stream of events that lasts as long as the task: passed on as it
        # comes, and given an hour between two of its events.
        proxy_buffering off;
        proxy_read_timeout 1h;
        proxy_send_timeout 1m;
        proxy_connect_timeout 10s;
{hide_app_headers}    }}
"
    );
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
