//! The objects fjord manages and the rules they obey.
//!
//! Everything here is pure: no IO, no clock, no database. Every constructor that takes user
//! input validates it and refuses with an [`Invalid`] error that names the field, the value and
//! the rule, so that the CLI and (later) the panel can show the same message.

pub mod access;
mod db;
pub mod https;
mod invalid;
mod mail;
pub mod monitor;
mod name;
mod network;
mod objects;
mod path;
mod remote;
mod schedule;
mod site_name;
mod task;
mod task_args;
pub mod time;
mod upload;

pub use access::{Action, Actor, Role, User};
pub use db::{DbEngine, DbService, SiteDatabase, derive_db_name, is_safe_db_identifier};
pub use https::{HttpsMode, SiteHttps, TlsFiles, parse_listens, renewal_due_at};
pub use invalid::Invalid;
pub use mail::{EmailAddress, MailSettings};
pub use monitor::{Restart, ServiceEvent, ServiceEventKind};
pub use name::Name;
pub use network::TrustedProxies;
pub use objects::{
    Client, HttpService, NginxService, PhpFpmService, PhpVersion, Platform, PlatformKind,
    ReloadMethod, STANDARD_NGINX_BINARY, STANDARD_NGINX_CONFIG, STANDARD_NGINX_INCLUDE_DIR, Server,
    Site, SiteStatus, WebRoot, parse_listen,
};
pub use path::AbsPath;
pub use remote::{BackupTarget, DEFAULT_REMOTE_DIR, HostKey, Remote, SshTarget};
pub use schedule::{CronSchedule, Retention};
pub use site_name::{Hostname, validate_aliases};
pub use task::{LockKey, Target, Task, TaskKind, TaskStatus, locks_conflict, site_locks};
pub use task_args::{
    FromTarget, HttpsAccountArgs, InstallInput, MigrateArgs, OwnCertificate, PlatformLimitBefore,
    SiteNames, TaskArgs,
};
pub use upload::UploadLimit;
