//! What fjord writes to nginx: the server-level config and its hook (`server.rs`), a site's
//! vhost rendered from one [`VhostSpec`] (`vhost.rs`), how an application is served inside
//! it (`locations.rs`), and the site's own logs (`logs.rs`).
//!
//! The spec is everything a web server needs to serve a site (names, listen addresses, TLS
//! files, HTTPS mode, docroot and PHP, freeze, log dir); the engine builds it in one place, so another
//! web server is another renderer of the same value.

mod locations;
mod logs;
mod server;
mod vhost;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use locations::{NEVER_SERVED, WebApp};
pub use server::{PROBE_GENERATION_PATH, PROBE_HOST, nginx_hook, nginx_server_conf};
pub use vhost::nginx_vhost;

use model::{HttpsMode, TlsFiles, UploadLimit};

/// The URL path under which ACME's HTTP-01 challenges are answered, on every name of every
/// vhost, over HTTP (never redirected) and HTTPS.
pub const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// fjord's directory of challenge answers within a server's nginx config dir. nginx serves it
/// as the `root` of [`ACME_CHALLENGE_PATH`]: the answer to token `T` is the file
/// `<acme dir>/.well-known/acme-challenge/T` ([`acme_challenge_file`]), written by root only.
pub const ACME_CHALLENGE_DIR: &str = "acme";

/// fjord's ACME root for a server's nginx config dir: what [`VhostSpec::acme_dir`] names.
pub fn acme_root(config_dir: &std::path::Path) -> PathBuf {
    config_dir.join(ACME_CHALLENGE_DIR)
}

/// The directory the answers to ACME challenges are written in, for a server's nginx config
/// dir (made by server verify, root's, readable by nginx).
pub fn acme_challenge_dir(config_dir: &std::path::Path) -> PathBuf {
    acme_root(config_dir).join(ACME_CHALLENGE_PATH.trim_matches('/'))
}

/// Where the answer to ACME challenge `token` is written, for a server's nginx config dir.
pub fn acme_challenge_file(config_dir: &std::path::Path, token: &str) -> PathBuf {
    acme_challenge_dir(config_dir).join(token)
}

/// What a site's vhost serves, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostSpec {
    /// The main name (ASCII, as DNS has it).
    pub name: String,
    pub aliases: Vec<String>,
    /// The aliases answer 301 to the main name.
    pub redirect_aliases: bool,
    /// The platform, named in the file's first lines.
    pub platform: String,
    pub http_listen: Vec<SocketAddr>,
    pub https_listen: Vec<SocketAddr>,
    /// The certificate, once the site has one: without it only HTTP is served.
    pub tls: Option<TlsFiles>,
    pub https: HttpsMode,
    pub hsts: bool,
    /// fjord's ACME challenge dir (the `root` of [`ACME_CHALLENGE_PATH`]).
    pub acme_dir: PathBuf,
    /// fjord's directory of the disabled page, `disabled/` in the server's nginx config dir.
    pub disabled_dir: PathBuf,
    pub web: WebApp,
    pub state: VhostState,
    pub upload_limit: UploadLimit,
    /// The ports of the canonical addresses (redirects name them unless they are 80 / 443).
    pub canonical_http_port: u16,
    pub canonical_https_port: Option<u16>,
    /// The site's log dir: every server block of the site (HTTP and HTTPS, redirecting and
    /// disabled too) writes its access and error logs there. `None` (a vhost rendered
    /// outside a task, as the benchmarks' by-hand way does) leaves nginx's own logs.
    pub log_dir: Option<PathBuf>,
}

impl VhostSpec {
    /// The server's nginx config dir, whose `disabled/` [`VhostSpec::disabled_dir`] is.
    fn config_dir(&self) -> &Path {
        self.disabled_dir.parent().unwrap_or(&self.disabled_dir)
    }
}

/// What a vhost does with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VhostState {
    Serving,
    /// Reads are served; writes answer 503 with `Retry-After` while fjord moves or restores
    /// the site.
    ReadOnly,
    /// The disabled page, 503, on every name.
    Disabled,
}

impl VhostSpec {
    /// The certificate, when HTTPS is served: the site has one, does not turn HTTPS off, and
    /// its server has an HTTPS address.
    pub fn served_tls(&self) -> Option<&TlsFiles> {
        self.tls
            .as_ref()
            .filter(|_| self.https != HttpsMode::Off && !self.https_listen.is_empty())
    }

    /// The canonical address of the main name over a scheme, without a trailing slash.
    fn base_url(&self, https: bool) -> String {
        let (scheme, port, default) = match (https, self.canonical_https_port) {
            (true, Some(port)) => ("https", port, 443),
            _ => ("http", self.canonical_http_port, 80),
        };
        if port == default {
            format!("{scheme}://{}", self.name)
        } else {
            format!("{scheme}://{}:{port}", self.name)
        }
    }
}
