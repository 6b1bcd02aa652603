use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{AbsPath, DbEngine, DbService, Hostname, Invalid, Name, SiteDatabase};

/// A machine fjord manages, and the services it offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub id: i64,
    pub name: Name,
    pub http: HttpService,
    /// Database services, at most one per engine.
    pub db: Vec<DbService>,
    /// php-fpm masters, one per PHP version the server offers.
    #[serde(default)]
    pub php: Vec<PhpFpmService>,
    /// Whether the dispatchers' monitor probes its daemons and restarts one found down.
    #[serde(default = "monitored")]
    pub monitor: bool,
    /// How fjord reaches it over OpenSSH; None: the machine fjord runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::Remote>,
}

fn monitored() -> bool {
    true
}

/// Debian's nginx: the programs and paths a server has unless an administrator chooses others.
pub const STANDARD_NGINX_BINARY: &str = "/usr/sbin/nginx";
pub const STANDARD_NGINX_CONFIG: &str = "/etc/nginx/nginx.conf";
pub const STANDARD_NGINX_INCLUDE_DIR: &str = "/etc/nginx/conf.d";

impl Server {
    /// Whether fjord reaches it over SSH (else it is the machine fjord runs on).
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// A site's canonical address on this server, over HTTP: its name, and the port of the
    /// server's first HTTP address unless it is HTTP's own. Links a site makes and links
    /// fjord prints use it, never the `Host` a request brought.
    pub fn site_url(&self, host: &str) -> String {
        let HttpService::Nginx(nginx) = &self.http;
        canonical_url("http", host, nginx.http_port(), 80)
    }

    /// A site's canonical address: over HTTPS when the site requires it and has a
    /// certificate to serve it with (and the server an HTTPS address), else over HTTP.
    pub fn site_url_of(&self, site: &Site, has_certificate: bool) -> String {
        let HttpService::Nginx(nginx) = &self.http;
        match nginx.https_port() {
            Some(port) if site.https.mode == crate::HttpsMode::Required && has_certificate => {
                canonical_url("https", site.name.as_str(), port, 443)
            }
            _ => self.site_url(site.name.as_str()),
        }
    }

    /// The choices of this server that differ from the standard profile (Debian's nginx
    /// reloaded by signal, each database engine's and PHP version's defaults, files owned by
    /// the sites' own users and given to nginx's default group), each as `field value`.
    /// Every one of them names a program root runs, a file or socket root reads or writes,
    /// or an account root hands files to: only an administrator chooses them.
    pub fn beyond_standard_profile(&self) -> Vec<String> {
        let mut odd = Vec::new();
        let HttpService::Nginx(nginx) = &self.http;
        for (field, value, standard) in [
            ("nginx binary", &nginx.binary, STANDARD_NGINX_BINARY),
            ("nginx config", &nginx.config, STANDARD_NGINX_CONFIG),
            (
                "nginx include dir",
                &nginx.include_dir,
                STANDARD_NGINX_INCLUDE_DIR,
            ),
        ] {
            if value.as_str() != standard {
                odd.push(format!("{field} {value}"));
            }
        }
        if let Some(prefix) = &nginx.prefix {
            odd.push(format!("nginx prefix {prefix}"));
        }
        if let ReloadMethod::Command(argv) = &nginx.reload {
            odd.push(format!("reload command {}", argv.join(" ")));
        }
        if let Some(owner) = &nginx.files_owner {
            odd.push(format!("files owner {owner}"));
        }
        if let Some(group) = &nginx.web_group {
            odd.push(format!("web group {group}"));
        }
        if let Some(start) = &nginx.restart.start {
            odd.push(format!("nginx start command {}", start.join(" ")));
        }
        if let Some(unit) = &nginx.restart.unit {
            odd.push(format!("nginx unit {unit}"));
        }
        for db in &self.db {
            if *db != DbService::standard(db.engine) {
                odd.push(format!("{} service options", db.engine));
            }
        }
        for php in &self.php {
            if PhpFpmService::standard(php.version.clone()).as_ref() != Ok(php) {
                odd.push(format!("php-fpm {} paths", php.version));
            }
        }
        odd
    }

    pub fn db_service(&self, engine: DbEngine) -> Option<&DbService> {
        self.db.iter().find(|d| d.engine == engine)
    }

    pub fn php_service(&self, version: &PhpVersion) -> Option<&PhpFpmService> {
        self.php.iter().find(|p| &p.version == version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HttpService {
    Nginx(NginxService),
}

/// Everything fjord needs to drive one nginx instance. Tests run a private nginx by giving a
/// prefix, their own config and a loopback port; the machine's nginx uses Debian's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NginxService {
    pub binary: AbsPath,
    /// The main config file (`nginx -c`).
    pub config: AbsPath,
    /// The prefix (`nginx -p`), when not nginx's compiled-in one.
    pub prefix: Option<AbsPath>,
    /// A directory the main config includes at `http` level (Debian: `/etc/nginx/conf.d`);
    /// server verify puts fjord's one hook file there.
    pub include_dir: AbsPath,
    /// Where vhosts answer HTTP (one or more; the first is the canonical port and the
    /// probe's). An older state's single address reads as a list of one.
    #[serde(deserialize_with = "crate::https::one_or_many")]
    pub listen: Vec<SocketAddr>,
    /// Where vhosts answer HTTPS, for sites that have a certificate (none: HTTP only).
    #[serde(default)]
    pub https_listen: Vec<SocketAddr>,
    pub reload: ReloadMethod,
    /// The user that should own site files, if any (needs root).
    pub files_owner: Option<Name>,
    /// The group nginx's workers run as: the files of PHP sites and their php-fpm sockets are
    /// given to it, so that nginx reads them and other sites' PHP does not.
    #[serde(default)]
    pub web_group: Option<Name>,
    /// How the monitor starts it again (none: `nginx -c CONFIG [-p PREFIX]`, or systemd's
    /// `nginx.service` for the standard nginx when systemd runs).
    #[serde(default, skip_serializing_if = "crate::Restart::is_empty")]
    pub restart: crate::Restart,
}

fn canonical_url(scheme: &str, host: &str, port: u16, default_port: u16) -> String {
    if port == default_port {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

impl NginxService {
    /// The port of the canonical HTTP address.
    pub fn http_port(&self) -> u16 {
        self.listen.first().map_or(80, SocketAddr::port)
    }

    /// The port of the canonical HTTPS address, when the server serves HTTPS.
    pub fn https_port(&self) -> Option<u16> {
        self.https_listen.first().map(SocketAddr::port)
    }

    /// Checks the two lists: at least one HTTP address (the probe and ACME's challenges
    /// come over HTTP) and no address on both.
    pub fn check_listens(&self) -> Result<(), Invalid> {
        if self.listen.is_empty() {
            return Err(Invalid::new(
                "listen address",
                "",
                "a server needs at least one HTTP address",
            ));
        }
        if let Some(both) = self.https_listen.iter().find(|a| self.listen.contains(a)) {
            return Err(Invalid::new(
                "https listen address",
                &both.to_string(),
                "is also an HTTP address: one address serves one protocol",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadMethod {
    /// `nginx [-p prefix] -c config -s reload`.
    Signal,
    /// An operator-given command, run without a shell (for example `systemctl reload nginx`).
    Command(Vec<String>),
}

impl ReloadMethod {
    pub fn parse(input: &str) -> Result<ReloadMethod, Invalid> {
        if input == "signal" {
            return Ok(ReloadMethod::Signal);
        }
        let argv: Vec<String> = input.split_whitespace().map(str::to_string).collect();
        if argv.is_empty() {
            return Err(Invalid::new(
                "reload method",
                input,
                "give 'signal' or a command",
            ));
        }
        if !argv[0].starts_with('/') {
            return Err(Invalid::new(
                "reload method",
                input,
                "a reload command must start with an absolute path to the program",
            ));
        }
        if input
            .chars()
            .any(|c| c.is_control() || "\"'`$;|&<>\\".contains(c))
        {
            return Err(Invalid::new(
                "reload method",
                input,
                "is run without a shell: quotes, $, ;, |, &, <, > and \\ are not allowed",
            ));
        }
        Ok(ReloadMethod::Command(argv))
    }
}

pub fn parse_listen(input: &str) -> Result<SocketAddr, Invalid> {
    input.parse::<SocketAddr>().map_err(|_| {
        Invalid::new(
            "listen address",
            input,
            "must be IP:PORT, for example 127.0.0.1:8080",
        )
    })
}

/// A code base on a server that sites run on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub id: i64,
    pub name: Name,
    pub server_id: i64,
    pub path: AbsPath,
    pub kind: PlatformKind,
    /// A locked platform takes no new sites (Aegir's "lock platform").
    pub locked: bool,
    /// The PHP version its sites run on (kinds that run PHP): one of its server's php-fpm
    /// services.
    pub php_version: Option<PhpVersion>,
    /// Where its code serves from, when not its root (a composer-built Drupal: `web/`).
    pub web_root: Option<WebRoot>,
    /// The drush to drive its sites with, when its code has none of its own
    /// (`vendor/bin/drush` wins).
    pub drush: Option<AbsPath>,
    /// Its sites' PHP may start processes (`exec`, `proc_open`, `shell_exec`…), which
    /// walk around `open_basedir`: off unless the platform is added with it.
    pub allow_exec: bool,
    /// The largest upload its sites take, unless a site sets its own
    /// ([`crate::UploadLimit::DEFAULT`] when neither does).
    #[serde(default)]
    pub upload_limit: Option<crate::UploadLimit>,
    /// Where a `proxy` platform's sites pass their requests (the panel's own address);
    /// no other kind has one.
    #[serde(default)]
    pub upstream: Option<SocketAddr>,
}

impl Platform {
    /// The directory its web server serves, where its sites' directories are (`sites/`).
    pub fn docroot(&self) -> std::path::PathBuf {
        WebRoot::docroot(self.path.as_path(), self.web_root)
    }
}

/// The directory of a composer-built code base that is served; its `vendor/` and config
/// sit beside it, out of the web's reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebRoot {
    Web,
    Docroot,
}

impl WebRoot {
    pub const ALL: [WebRoot; 2] = [WebRoot::Web, WebRoot::Docroot];

    /// The directory a code base at `code` serves from.
    pub fn docroot(code: &std::path::Path, web_root: Option<WebRoot>) -> std::path::PathBuf {
        match web_root {
            Some(root) => code.join(root.as_str()),
            None => code.to_path_buf(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WebRoot::Web => "web",
            WebRoot::Docroot => "docroot",
        }
    }

    pub fn parse(input: &str) -> Result<WebRoot, Invalid> {
        WebRoot::ALL
            .into_iter()
            .find(|r| r.as_str() == input)
            .ok_or_else(|| Invalid::new("web root", input, "must be web or docroot"))
    }
}

/// What a platform's code base is. The engine gives each kind one module (`engine::kinds`);
/// this is only its validated name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    /// Files served as they are.
    Static,
    /// Any PHP application with a front controller (`index.php`): MediaWiki, DokuWiki,
    /// custom code. No installer.
    Php,
    Wordpress,
    /// Drupal 7 and Drupal 8 and later (10, 11): sites in `sites/<host>/`, in Drupal's
    /// multisite layout.
    Drupal,
    /// DokuWiki (upstream's archive or Debian's package): a config dir and a data dir per
    /// site over one code base.
    Dokuwiki,
    /// MediaWiki (upstream's archive or Debian's package): settings, uploads and a database
    /// per site over one code base.
    Mediawiki,
    /// No code base: its sites pass every request to an address on the server (fjord's own
    /// panel, served through its own HTTPS vhost). fjord makes the one it needs; nobody
    /// adds one.
    Proxy,
}

impl PlatformKind {
    pub const ALL: [PlatformKind; 7] = [
        PlatformKind::Static,
        PlatformKind::Php,
        PlatformKind::Wordpress,
        PlatformKind::Drupal,
        PlatformKind::Dokuwiki,
        PlatformKind::Mediawiki,
        PlatformKind::Proxy,
    ];

    /// The kinds a person adds platforms of (a `proxy` platform is fjord's own).
    pub fn addable() -> impl Iterator<Item = PlatformKind> {
        PlatformKind::ALL
            .into_iter()
            .filter(|k| *k != PlatformKind::Proxy)
    }

    pub fn parse(input: &str) -> Result<PlatformKind, Invalid> {
        if let Some(kind) = PlatformKind::ALL.into_iter().find(|k| k.as_str() == input) {
            return Ok(kind);
        }
        let supported = PlatformKind::addable()
            .map(PlatformKind::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        Err(Invalid::new(
            "platform kind",
            input,
            format!("supported kinds: {supported}"),
        ))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Static => "static",
            PlatformKind::Php => "php",
            PlatformKind::Wordpress => "wordpress",
            PlatformKind::Drupal => "drupal",
            PlatformKind::Dokuwiki => "dokuwiki",
            PlatformKind::Mediawiki => "mediawiki",
            PlatformKind::Proxy => "proxy",
        }
    }

    /// Whether its sites run PHP, each with a php-fpm pool and a Unix user of its own.
    pub fn runs_php(self) -> bool {
        !matches!(self, PlatformKind::Static | PlatformKind::Proxy)
    }
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PHP version as php-fpm services and platforms name it: `MAJOR.MINOR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhpVersion(String);

impl PhpVersion {
    pub fn parse(input: &str) -> Result<PhpVersion, Invalid> {
        let ok = input.split_once('.').is_some_and(|(major, minor)| {
            (1..=2).contains(&major.len())
                && (1..=2).contains(&minor.len())
                && major
                    .chars()
                    .chain(minor.chars())
                    .all(|c| c.is_ascii_digit())
                && major.parse::<u8>().is_ok_and(|m| m >= 7)
        });
        if ok {
            Ok(PhpVersion(input.to_string()))
        } else {
            Err(Invalid::new(
                "PHP version",
                input,
                "must be MAJOR.MINOR, 7.0 or newer, for example 8.2",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhpVersion {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        PhpVersion::parse(&s)
    }
}

impl From<PhpVersion> for String {
    fn from(v: PhpVersion) -> String {
        v.0
    }
}

impl fmt::Display for PhpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One php-fpm master fjord drives. fjord writes one pool file per PHP site into `pool_dir`
/// (a directory the main config includes), tests the whole config with `php-fpm -t` and
/// reloads with SIGUSR2 to the pid in `pid_file`. Tests run a private master by giving their
/// own config, pool dir and pid file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhpFpmService {
    pub version: PhpVersion,
    pub binary: AbsPath,
    /// The main config file (`php-fpm -y`).
    pub config: AbsPath,
    pub pool_dir: AbsPath,
    pub pid_file: AbsPath,
    /// How the monitor starts it again (none: `BINARY --fpm-config CONFIG`, or systemd's
    /// `phpV-fpm.service` for the standard one when systemd runs).
    #[serde(default, skip_serializing_if = "crate::Restart::is_empty")]
    pub restart: crate::Restart,
}

impl PhpFpmService {
    /// Debian's php-fpm of `version`: what a version alone stands for. Anything else is an
    /// administrator's choice ([`Server::beyond_standard_profile`]).
    pub fn standard(version: PhpVersion) -> Result<PhpFpmService, Invalid> {
        let v = version.as_str();
        let path = |field: &'static str, s: String| AbsPath::parse(field, &s);
        Ok(PhpFpmService {
            binary: path("php-fpm binary", format!("/usr/sbin/php-fpm{v}"))?,
            config: path("php-fpm config", format!("/etc/php/{v}/fpm/php-fpm.conf"))?,
            pool_dir: path("php-fpm pool dir", format!("/etc/php/{v}/fpm/pool.d"))?,
            pid_file: path("php-fpm pid file", format!("/run/php/php{v}-fpm.pid"))?,
            restart: crate::Restart::default(),
            version,
        })
    }

    /// Parses `VERSION[:key=value,...]` with keys binary, config, pool-dir, pid, start (the
    /// command that starts it, for the monitor), unit (its systemd unit). Defaults are
    /// Debian's paths for that version (`/usr/sbin/php-fpmV`, `/etc/php/V/fpm/...`,
    /// `/run/php/phpV-fpm.pid`).
    pub fn parse(input: &str) -> Result<PhpFpmService, Invalid> {
        let (version, rest) = input.split_once(':').unwrap_or((input, ""));
        let version = PhpVersion::parse(version)?;
        let mut service = PhpFpmService::standard(version)?;
        for pair in rest.split(',').filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(Invalid::new(
                    "php-fpm service",
                    input,
                    "options are key=value pairs separated by commas",
                ));
            };
            match key {
                "binary" => service.binary = AbsPath::parse("php-fpm binary", value)?,
                "config" => service.config = AbsPath::parse("php-fpm config", value)?,
                "pool-dir" => service.pool_dir = AbsPath::parse("php-fpm pool dir", value)?,
                "pid" => service.pid_file = AbsPath::parse("php-fpm pid file", value)?,
                "start" => {
                    service.restart.start = Some(crate::monitor::parse_start_command(
                        "php-fpm start command",
                        value,
                    )?)
                }
                "unit" => {
                    service.restart.unit = Some(crate::monitor::parse_unit("php-fpm unit", value)?)
                }
                _ => {
                    return Err(Invalid::new(
                        "php-fpm service",
                        input,
                        format!(
                            "unknown option {key:?}; options: binary, config, pool-dir, pid, \
                             start, unit"
                        ),
                    ));
                }
            }
        }
        Ok(service)
    }

    /// The PHP command-line interpreter of the same version (Debian: `/usr/bin/phpV`).
    pub fn cli(&self) -> String {
        format!("/usr/bin/php{}", self.version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: i64,
    pub name: Hostname,
    pub platform_id: i64,
    pub aliases: Vec<Hostname>,
    /// Send every alias to the main name with a 301.
    pub redirect_aliases: bool,
    pub status: SiteStatus,
    pub client_id: Option<i64>,
    pub database: Option<SiteDatabase>,
    /// A random secret of the site's own, from which its application's keys and salts are
    /// derived (kept in fjord's state, so that a verify rewrites the same config).
    #[serde(default)]
    pub app_secret: String,
    /// The largest upload it takes, over its platform's.
    #[serde(default)]
    pub upload_limit: Option<crate::UploadLimit>,
    /// Whether it is served over HTTPS once it has a certificate, and with HSTS.
    #[serde(default)]
    pub https: crate::SiteHttps,
}

impl Site {
    /// The largest upload it takes on `platform`: its own limit, else the platform's, else
    /// the default.
    pub fn upload_limit_on(&self, platform: &Platform) -> crate::UploadLimit {
        crate::UploadLimit::of(self.upload_limit, platform.upload_limit)
    }

    /// Every host name the site answers to, main name first.
    pub fn all_names(&self) -> impl Iterator<Item = &Hostname> {
        std::iter::once(&self.name).chain(&self.aliases)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteStatus {
    /// Recorded; its install (or import) has not succeeded yet.
    Queued,
    Installed,
    Disabled,
    Deleted,
    /// Its install failed and was rolled back; it can be installed again or deleted.
    Failed,
    /// A task's rollback found data it needed gone and stopped removing anything: an operator
    /// must look (the task's log says what was kept), then restore, verify or delete it.
    NeedsAttention,
}

impl SiteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SiteStatus::Queued => "queued",
            SiteStatus::Installed => "installed",
            SiteStatus::Disabled => "disabled",
            SiteStatus::Deleted => "deleted",
            SiteStatus::Failed => "failed",
            SiteStatus::NeedsAttention => "needs-attention",
        }
    }

    pub fn from_db(s: &str) -> Option<SiteStatus> {
        Some(match s {
            "queued" => SiteStatus::Queued,
            "installed" => SiteStatus::Installed,
            "disabled" => SiteStatus::Disabled,
            "deleted" => SiteStatus::Deleted,
            "failed" => SiteStatus::Failed,
            "needs-attention" => SiteStatus::NeedsAttention,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub id: i64,
    pub name: Name,
    /// Where mail about the client's sites goes (login links, task failures).
    pub email: Option<crate::EmailAddress>,
    /// How many sites it may have; none: no limit.
    pub site_quota: Option<u32>,
}
