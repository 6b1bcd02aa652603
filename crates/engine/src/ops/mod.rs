//! The use cases. Each validates its input, applies the business rules, and either changes
//! the state (queueing the task that brings the hosts in line) or, with `dry_run`, shows the
//! plan of that task and changes nothing.

use model::{Hostname, PhpVersion, Server, Task};

use crate::near::{Missing, NameKind};
use crate::{Error, Result};

pub use backup_targets::CopyPlan;
pub use logs::{
    LogCursor, LogKind, LogRotation, MAX_LOG_BYTES, MAX_LOG_LINES, redact_line, site_log_dir,
};
pub use panel::{PANEL_PLATFORM, PanelSite, PanelUrl, panel_upstream};
pub use servers::parse_on_off;

const SCHEDULE_KEY: &str = "backup.schedule";
const RETENTION_KEY: &str = "backup.retention";

/// What a use case that queues a task returns: the task, or with `dry_run` the plan.
#[derive(Debug)]
pub struct Queued {
    pub task: Option<Task>,
    pub plan: Option<Vec<String>>,
}

impl Queued {
    fn task(task: Option<Task>) -> Queued {
        Queued { task, plan: None }
    }

    fn plan(plan: Vec<String>) -> Queued {
        Queued {
            task: None,
            plan: Some(plan),
        }
    }
}

/// A platform as the add-site form offers it.
#[derive(Debug, Clone)]
pub struct PlatformChoice {
    pub name: String,
    /// Its last verify succeeded (a platform whose verify failed serves no site).
    pub ready: bool,
    /// The database engines a new site on it may ask for: its server's services that its
    /// kind runs on.
    pub db_engines: Vec<&'static str>,
}

/// Services to add to and remove from a registered server (`fjord server edit`).
#[derive(Debug, Clone, Default)]
pub struct ServerEdit {
    pub name: String,
    /// Database services to add: `ENGINE[:key=value,...]`.
    pub add_db: Vec<String>,
    /// Database engines whose service goes.
    pub remove_db: Vec<String>,
    /// php-fpm services to add: `VERSION[:key=value,...]`.
    pub add_php: Vec<String>,
    /// PHP versions whose php-fpm service goes.
    pub remove_php: Vec<String>,
    /// New HTTP listen addresses (none given: unchanged).
    pub listen: Vec<String>,
    /// New HTTPS listen addresses (none given: unchanged; `none`: no HTTPS).
    pub https_listen: Vec<String>,
    /// Whether the monitor watches its daemons (none: unchanged).
    pub monitor: Option<bool>,
    /// A remote server's new host key (`TYPE BASE64`), pinned in place of the old one.
    pub host_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ServerInput {
    pub name: String,
    pub nginx_binary: String,
    pub nginx_config: String,
    pub nginx_prefix: Option<String>,
    pub include_dir: String,
    /// The HTTP addresses its vhosts listen on (at least one).
    pub listen: Vec<String>,
    /// The HTTPS addresses (none: HTTP only).
    pub https_listen: Vec<String>,
    pub reload: String,
    pub files_owner: Option<String>,
    /// Database services: `ENGINE[:key=value,...]` (see `model::DbService::parse`).
    pub db: Vec<String>,
    /// php-fpm services: `VERSION[:key=value,...]` (see `model::PhpFpmService::parse`).
    pub php: Vec<String>,
    /// The group nginx's workers run as.
    pub web_group: Option<String>,
    /// Whether the monitor watches its daemons and restarts one found down.
    pub monitor: bool,
    /// The command that starts nginx again (absolute, no shell), for the monitor.
    pub nginx_start: Option<String>,
    /// nginx's systemd unit, for the monitor's restarts.
    pub nginx_unit: Option<String>,
    /// How fjord reaches the server, if it is not the machine fjord runs on.
    pub remote: Option<RemoteInput>,
}

/// A remote server's `--ssh`, `--host-key` and `--remote-dir`.
#[derive(Debug, Clone, Default)]
pub struct RemoteInput {
    /// `USER@HOST[:PORT]`.
    pub ssh: String,
    /// The host key to pin (`TYPE BASE64`); none: the one the server offers now, shown.
    pub host_key: Option<String>,
    /// fjord's dir on the server (default `/var/lib/fjord-remote`).
    pub dir: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PlatformInput {
    pub name: String,
    pub server: String,
    pub path: String,
    pub kind: String,
    /// The PHP version its sites run on [default: the server's newest].
    pub php: Option<String>,
    /// A directory to copy the code base in from.
    pub from: Option<String>,
    /// The drush to drive its sites with (Drupal), when its code has none of its own.
    pub drush: Option<String>,
    /// Its sites' PHP may start processes (`exec`, `proc_open`…).
    pub allow_exec: bool,
    /// The largest upload its sites take (`model::UploadLimit::parse`) [default: 64M].
    pub upload_limit: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SiteInput {
    pub name: String,
    pub platform: String,
    pub aliases: Vec<String>,
    pub redirect_aliases: bool,
    pub client: Option<String>,
    /// The engine of the site's own database, if it has one.
    pub db: Option<String>,
    /// The server whose database service to use [default: the platform's server].
    pub db_server: Option<String>,
    /// What the application's installer is told (title, admin user and email).
    pub install: crate::kinds::InstallInput,
    /// Accept names that are not public host names (`localhost`, single labels, `*.local`:
    /// `Hostname::private_use`) as the name and aliases; only an administrator may.
    pub allow_private_names: bool,
    /// The largest upload it takes (`model::UploadLimit::parse`) [default: its platform's].
    pub upload_limit: Option<String>,
    /// Its HTTPS mode (`model::HttpsMode::parse`) [default: on].
    pub https: Option<String>,
    /// Strict-Transport-Security on its HTTPS responses.
    pub hsts: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SiteEdit {
    /// Replace the alias list.
    pub set_aliases: Option<Vec<String>>,
    pub add_aliases: Vec<String>,
    pub remove_aliases: Vec<String>,
    pub redirect_aliases: Option<bool>,
    /// Accept aliases that are not public host names; only an administrator may.
    pub allow_private_names: bool,
    /// A new upload limit of its own (`model::UploadLimit::parse`), or `platform`: back to
    /// its platform's.
    pub upload_limit: Option<String>,
    /// A new HTTPS mode (`model::HttpsMode::parse`: off, on, required).
    pub https: Option<String>,
    /// HSTS on or off.
    pub hsts: Option<bool>,
}

/// A new name for a site as it moves.
#[derive(Debug, Clone, Copy)]
pub struct Rename<'a> {
    pub name: &'a str,
    /// Accept a name that is not a public host name; only an administrator may.
    pub allow_private_name: bool,
}

/// Title, admin user and email for an application's installer: refused with the rule when
/// they could not be what the person meant (control characters, an address without a
/// domain).
fn validate_install_input(
    input: &crate::kinds::InstallInput,
) -> Result<crate::kinds::InstallInput> {
    let invalid = |field: &'static str, value: &str, rule: &str| {
        Err(Error::Invalid(model::Invalid::new(field, value, rule)))
    };
    if let Some(title) = &input.title {
        if title.trim().is_empty() || title.chars().count() > 200 {
            return invalid(
                "site title",
                title,
                "must be 1 to 200 characters, not only spaces",
            );
        }
        if title.chars().any(char::is_control) {
            return invalid(
                "site title",
                title,
                "must not contain control characters (newlines, tabs)",
            );
        }
    }
    if let Some(profile) = &input.profile
        && (profile.is_empty()
            || profile.len() > 64
            || !profile.starts_with(|c: char| c.is_ascii_lowercase())
            || !profile
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    {
        return invalid(
            "install profile",
            profile,
            "must be a machine name: a lowercase letter, then lowercase letters, digits and \
             '_', at most 64",
        );
    }
    if let Some(user) = &input.admin_user
        && (user.is_empty()
            || user.len() > 60
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
    {
        return invalid(
            "admin user",
            user,
            "must be 1 to 60 characters: ASCII letters, digits, '.', '_' and '-'",
        );
    }
    if let Some(email) = &input.admin_email {
        let ok = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && local
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
                    && domain.contains('.')
                    && Hostname::parse("email domain", domain).is_ok()
            });
        if !ok {
            return invalid(
                "admin email",
                email,
                "must be an address like name@example.com (ASCII, a domain with a dot)",
            );
        }
    }
    Ok(input.clone())
}

/// Refuses names that are not public host names (they catch requests meant for this machine
/// or its network), unless an administrator allowed them; the panel's doors check who may.
fn check_public_names<'a>(
    field: &'static str,
    hosts: impl IntoIterator<Item = &'a Hostname>,
    allowed: bool,
) -> Result<()> {
    if !allowed {
        for host in hosts {
            host.check_public(field)?;
        }
    }
    Ok(())
}

fn parse_hosts(field: &'static str, inputs: &[String]) -> Result<Vec<Hostname>> {
    inputs
        .iter()
        .map(|a| Ok(Hostname::parse(field, a)?))
        .collect()
}

mod backup_targets;
mod backups;
mod https;
mod logs;
mod moves;
mod panel;
mod platforms;
mod schedules;
mod servers;
mod sites;
mod tasks;

/// `path` with links resolved as far as it exists (the rest appended as it is).
/// The PHP versions whose php-fpm is installed on this machine (Debian's `php-fpmX.Y`).
pub fn installed_php_fpm() -> Vec<String> {
    host::list_files(std::path::Path::new("/usr/sbin"))
        .into_iter()
        .filter_map(|f| f.strip_prefix("php-fpm").map(str::to_string))
        .filter(|v| PhpVersion::parse(v).is_ok())
        .collect()
}

/// How long a login link works.
pub const LOGIN_LINK_TTL_S: i64 = 15 * 60;

fn php_versions(server: &Server) -> String {
    if server.php.is_empty() {
        return "none".into();
    }
    server
        .php
        .iter()
        .map(|p| p.version.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn resolve_existing(path: &std::path::Path) -> std::path::PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return missing.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// A lookup by name's failure: not found names what was looked for (for a front end to offer
/// the closest names); any other failure stays as it was.
fn missing(e: store::StoreError, kind: NameKind, name: &str) -> Error {
    match e {
        store::StoreError::NotFound(_) => Error::NotFound(Missing::named(kind, name)),
        e => e.into(),
    }
}
