//! What the panel shows and the API returns of each object: the same shapes for both, and
//! never a secret (database passwords, application salts and token hashes stay in the state).

use std::collections::HashMap;

use engine::acting::Acting;
use engine::model::{Platform, Server, Site, Task};
use engine::{Backup, ClientSummary, LogLine};
use model::User;
use serde::Serialize;

/// Names by id, loaded once per request.
pub struct Names {
    pub platforms: HashMap<i64, String>,
    /// Each platform's upload limit, which its sites without their own take.
    pub upload_limits: HashMap<i64, Option<model::UploadLimit>>,
    pub servers: HashMap<i64, String>,
    pub clients: HashMap<i64, String>,
    /// Each platform's server, whose web service gives its sites their address.
    pub platform_servers: HashMap<i64, Server>,
}

impl Names {
    /// Platform and server names (few), and the names of the clients `client_ids`.
    pub fn load(
        acting: &Acting,
        client_ids: impl IntoIterator<Item = i64>,
    ) -> engine::Result<Names> {
        let fjord = acting.fjord();
        let platforms = fjord.platforms()?;
        let servers: HashMap<i64, Server> =
            fjord.servers()?.into_iter().map(|s| (s.id, s)).collect();
        Ok(Names {
            platform_servers: platforms
                .iter()
                .filter_map(|p| Some((p.id, servers.get(&p.server_id)?.clone())))
                .collect(),
            upload_limits: platforms.iter().map(|p| (p.id, p.upload_limit)).collect(),
            platforms: platforms
                .into_iter()
                .map(|p| (p.id, p.name.to_string()))
                .collect(),
            servers: servers
                .into_iter()
                .map(|(id, s)| (id, s.name.to_string()))
                .collect(),
            clients: acting.client_names(client_ids)?,
        })
    }

    fn platform(&self, id: i64) -> String {
        self.platforms.get(&id).cloned().unwrap_or_default()
    }

    /// The site's canonical address (its name and its server's port), as links use it.
    fn site_url(&self, platform_id: i64, name: &str) -> String {
        match self.platform_servers.get(&platform_id) {
            Some(server) => server.site_url(name),
            None => format!("http://{name}"),
        }
    }

    fn server(&self, id: i64) -> String {
        self.servers.get(&id).cloned().unwrap_or_default()
    }

    fn client(&self, id: Option<i64>) -> Option<String> {
        id.and_then(|id| self.clients.get(&id).cloned())
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SiteView {
    pub name: String,
    /// Where the site answers: its name and its server's port.
    pub url: String,
    pub aliases: Vec<String>,
    pub redirect_aliases: bool,
    pub platform: String,
    pub status: String,
    pub client: Option<String>,
    pub database: Option<DatabaseView>,
    /// The largest file it takes in one upload (`64M`).
    pub upload_limit: String,
    /// Whose limit that is: `site`, `platform` or `default`.
    pub upload_limit_of: String,
    /// Its own limit, if it has one.
    pub own_upload_limit: Option<String>,
    /// `off`, `on` or `required`: how it is served once it has a certificate.
    pub https: String,
    /// Strict-Transport-Security on its HTTPS responses.
    pub hsts: bool,
}

/// A site's certificate as its page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CertificateView {
    pub names: Vec<String>,
    pub issuer: String,
    /// `acme` (the installation's account renews it) or `own`.
    pub source: String,
    pub not_after: String,
    /// Whole days until it expires (negative once it has).
    pub days_left: i64,
    /// Under 14 days left: whatever renews it has not managed to.
    pub expires_soon: bool,
}

/// Days left under which a certificate is shown as needing attention: renewal starts at two
/// thirds of its life (30 days before a 90-day certificate expires), so a certificate this
/// close to its end has failed to renew for two weeks.
pub const EXPIRES_SOON_DAYS: i64 = 14;

impl CertificateView {
    pub fn new(cert: &engine::SiteCertificate, now_ms: i64) -> CertificateView {
        let days_left = (cert.not_after - now_ms / 1000).div_euclid(86_400);
        CertificateView {
            names: cert.names.clone(),
            issuer: cert.issuer.clone(),
            source: cert.source.as_str().to_string(),
            not_after: when(cert.not_after * 1000),
            days_left,
            expires_soon: days_left < EXPIRES_SOON_DAYS,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatabaseView {
    pub engine: String,
    pub name: String,
    pub server: String,
}

impl SiteView {
    pub fn new(names: &Names, s: &Site) -> SiteView {
        let platform_limit = names.upload_limits.get(&s.platform_id).copied().flatten();
        let upload_limit_of = match (s.upload_limit, platform_limit) {
            (Some(_), _) => "site",
            (None, Some(_)) => "platform",
            (None, None) => "default",
        };
        SiteView {
            upload_limit: model::UploadLimit::of(s.upload_limit, platform_limit).to_string(),
            upload_limit_of: upload_limit_of.to_string(),
            own_upload_limit: s.upload_limit.map(|l| l.to_string()),
            https: s.https.mode.as_str().to_string(),
            hsts: s.https.hsts,
            name: s.name.to_string(),
            url: names.site_url(s.platform_id, s.name.as_str()),
            aliases: s.aliases.iter().map(|a| a.to_string()).collect(),
            redirect_aliases: s.redirect_aliases,
            platform: names.platform(s.platform_id),
            status: s.status.as_str().to_string(),
            client: names.client(s.client_id),
            database: s.database.as_ref().map(|d| DatabaseView {
                engine: d.engine.as_str().to_string(),
                name: d.name.clone(),
                server: names.server(d.server_id),
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlatformView {
    pub name: String,
    pub server: String,
    pub path: String,
    pub kind: String,
    pub php: Option<String>,
    pub web_root: Option<String>,
    pub locked: bool,
    /// The largest file its sites take in one upload, unless a site has its own (`64M`).
    pub upload_limit: String,
}

impl PlatformView {
    pub fn new(names: &Names, p: &Platform) -> PlatformView {
        PlatformView {
            name: p.name.to_string(),
            server: names.server(p.server_id),
            path: p.path.to_string(),
            kind: p.kind.as_str().to_string(),
            php: p.php_version.as_ref().map(|v| v.to_string()),
            web_root: p.web_root.map(|r| r.as_str().to_string()),
            locked: p.locked,
            upload_limit: model::UploadLimit::of(None, p.upload_limit).to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServerView {
    pub name: String,
    pub listen: String,
    pub php: Vec<String>,
    pub databases: Vec<String>,
    /// Whether the dispatchers' monitor watches its daemons.
    pub monitor: bool,
}

/// A backup target: where it is reached, and the host key pinned for it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackupTargetView {
    pub name: String,
    /// `USER@HOST[:PORT]`.
    pub ssh: String,
    /// The directory the copies go in.
    pub path: String,
    /// `TYPE BASE64`.
    pub host_key: String,
}

impl BackupTargetView {
    pub fn new(t: &engine::BackupTargetRecord) -> BackupTargetView {
        BackupTargetView {
            name: t.name.to_string(),
            ssh: t.target.ssh.to_string(),
            path: t.target.path.clone(),
            host_key: t.host_key.to_string(),
        }
    }
}

/// What the monitor saw happen to one of a server's daemons.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceEventView {
    /// `nginx`, `php-fpm-8.2`, `mysql` or `postgresql`.
    pub service: String,
    /// `down`, `restarted`, `restart failed` or `back`.
    pub event: String,
    pub detail: String,
    /// Unix milliseconds.
    pub at: i64,
}

impl ServiceEventView {
    pub fn new(e: &model::ServiceEvent) -> ServiceEventView {
        ServiceEventView {
            service: e.service.clone(),
            event: e.event.as_str().to_string(),
            detail: e.detail.clone(),
            at: e.at,
        }
    }

    /// When it happened, in UTC, for people.
    pub fn when(&self) -> String {
        model::time::utc_display(self.at)
    }
}

impl ServerView {
    pub fn new(s: &Server) -> ServerView {
        let model::HttpService::Nginx(n) = &s.http;
        ServerView {
            name: s.name.to_string(),
            listen: n
                .listen
                .iter()
                .map(ToString::to_string)
                .chain(n.https_listen.iter().map(|a| format!("{a} (HTTPS)")))
                .collect::<Vec<_>>()
                .join(", "),
            php: s.php.iter().map(|p| p.version.to_string()).collect(),
            databases: s.db.iter().map(|d| d.engine.as_str().to_string()).collect(),
            monitor: s.monitor,
        }
    }
}

/// Whether dispatchers claim tasks, and the file systems over the disk guard's line if not.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClaimsView {
    /// True while a live dispatcher's disk guard holds task claims back (running tasks go on;
    /// queued ones wait).
    pub paused: bool,
    /// What the panel and the CLI say about it, when paused.
    pub notice: Option<String>,
    pub file_systems: Vec<ClaimPauseView>,
}

/// A file system holding a dispatcher's claims back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClaimPauseView {
    /// A directory on it (the data dir or a platform's); "a file system" for those who may
    /// not see the servers.
    pub path: String,
    /// How full it was at the dispatcher's last look.
    pub used_percent: f64,
    /// Claims stop above this share and resume once every file system is below `resume_percent`.
    pub stop_percent: u8,
    pub resume_percent: u8,
    /// Since when claims are held back, in Unix milliseconds.
    pub since: i64,
}

impl ClaimsView {
    pub fn new(pauses: &[engine::ClaimPause]) -> ClaimsView {
        ClaimsView {
            paused: !pauses.is_empty(),
            notice: engine::dispatch::pause_notice(pauses, true),
            file_systems: pauses
                .iter()
                .map(|p| ClaimPauseView {
                    path: p.path.clone(),
                    used_percent: p.used_percent,
                    stop_percent: p.stop_percent,
                    resume_percent: p.resume_percent,
                    since: p.since_ms,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    pub id: i64,
    pub kind: String,
    pub target_type: String,
    pub target: String,
    pub status: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    /// Who queued it: a user's name, `cli` or `schedule`.
    pub queued_by: String,
    /// From start to finish, in milliseconds, once it has finished.
    pub duration_ms: Option<i64>,
}

impl TaskView {
    pub fn new(t: &Task) -> TaskView {
        TaskView {
            id: t.id,
            kind: t.kind.as_str().to_string(),
            target_type: t.target.type_str().to_string(),
            target: t.target_name.clone(),
            status: t.status.as_str().to_string(),
            created_at: t.created_at,
            started_at: t.started_at,
            finished_at: t.finished_at,
            error: t.error.clone(),
            queued_by: t.queued_by.clone(),
            duration_ms: t.started_at.zip(t.finished_at).map(|(s, f)| f - s),
        }
    }

    pub fn duration_ms(&self) -> Option<i64> {
        Some(self.finished_at? - self.started_at?)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogLineView {
    pub id: i64,
    pub at: i64,
    pub line: String,
}

impl LogLineView {
    pub fn new(l: &LogLine) -> LogLineView {
        LogLineView {
            id: l.id,
            at: l.at,
            line: l.line.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackupView {
    pub id: i64,
    pub created_at: i64,
    pub size: i64,
}

impl BackupView {
    pub fn new(b: &Backup) -> BackupView {
        BackupView {
            id: b.id,
            created_at: b.created_at,
            size: b.size,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    pub name: String,
    pub email: Option<String>,
    pub site_quota: Option<u32>,
    pub sites: i64,
    pub users: i64,
    pub platforms: Vec<String>,
}

impl ClientView {
    pub fn new(names: &Names, c: &ClientSummary) -> ClientView {
        ClientView {
            name: c.client.name.to_string(),
            email: c.client.email.as_ref().map(|e| e.to_string()),
            site_quota: c.client.site_quota,
            sites: c.sites,
            users: c.users,
            platforms: c.platforms.iter().map(|p| names.platform(*p)).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub client: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
}

impl UserView {
    pub fn new(names: &Names, u: &User) -> UserView {
        UserView {
            name: u.name.to_string(),
            email: u.email.as_ref().map(|e| e.to_string()),
            role: u.role.as_str().to_string(),
            client: names.client(u.client_id),
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl TokenView {
    pub fn new(t: &engine::ApiToken) -> TokenView {
        TokenView {
            id: t.id,
            name: t.name.clone(),
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// A time for people: UTC, to the minute.
/// The clock, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn when(ms: i64) -> String {
    model::time::utc_display(ms)
}

pub fn when_opt(ms: &Option<i64>) -> String {
    ms.map(when).unwrap_or_else(|| "–".into())
}

/// A size for people.
pub fn size(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// One package in a migrate check: what the site has, what the target platform holds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CompatRowView {
    pub kind: String,
    pub name: String,
    pub site_version: Option<String>,
    pub site_schema: Option<i64>,
    pub target_version: Option<String>,
    pub target_schema: Option<i64>,
    /// same, upgrade, changed, travels-with-site, downgrade (refused), missing (refused
    /// unless forced).
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MigrateCheckView {
    /// Why the move would be refused; none: it may go ahead.
    pub refused: Option<String>,
    pub packages: Vec<CompatRowView>,
}

impl MigrateCheckView {
    pub fn new(report: &engine::compat::Report) -> MigrateCheckView {
        MigrateCheckView {
            refused: report.refusal(),
            packages: report
                .rows
                .iter()
                .map(|r| CompatRowView {
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                    site_version: r.site_version.clone(),
                    site_schema: r.site_schema,
                    target_version: r.target_version.clone(),
                    target_schema: r.target_schema,
                    verdict: r.verdict.as_str().to_string(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_shown_as_expiring_soon_under_fourteen_days() {
        const DAY: i64 = 86_400;
        let now = 1_800_000_000;
        let cert = |days: i64| engine::SiteCertificate {
            site_id: 1,
            names: vec!["a.example".into(), "www.a.example".into()],
            not_before: now - 60 * DAY,
            not_after: now + days * DAY + 60,
            issuer: "CN=R11".into(),
            source: engine::CertSource::Acme,
            cert_path: "/var/lib/fjord/tls/site-1/x/chain.pem".into(),
            key_path: "/var/lib/fjord/tls/site-1/x/key.pem".into(),
            last_attempt_at: None,
            last_failure: None,
            renewal_attempts: 0,
        };
        let shown = |days| CertificateView::new(&cert(days), now * 1000);
        assert_eq!((shown(30).days_left, shown(30).expires_soon), (30, false));
        assert_eq!((shown(14).days_left, shown(14).expires_soon), (14, false));
        assert_eq!((shown(13).days_left, shown(13).expires_soon), (13, true));
        assert!(shown(-2).days_left < 0 && shown(-2).expires_soon);
        assert_eq!(shown(30).names, ["a.example", "www.a.example"]);
    }
}
