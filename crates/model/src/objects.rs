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
}

impl Server {
    pub fn db_service(&self, engine: DbEngine) -> Option<&DbService> {
        self.db.iter().find(|d| d.engine == engine)
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
    /// Where vhosts listen.
    pub listen: SocketAddr,
    pub reload: ReloadMethod,
    /// The user that should own site files, if any (needs root).
    pub files_owner: Option<Name>,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    Static,
}

impl PlatformKind {
    pub fn parse(input: &str) -> Result<PlatformKind, Invalid> {
        match input {
            "static" => Ok(PlatformKind::Static),
            "drupal" | "wordpress" => Err(Invalid::new(
                "platform kind",
                input,
                "is planned but not supported yet; supported kinds: static",
            )),
            _ => Err(Invalid::new(
                "platform kind",
                input,
                "supported kinds: static",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Static => "static",
        }
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
}

impl Site {
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
}
