//! fjord's state: servers, platforms, sites, clients, tasks, their logs and their journals.
//!
//! [`Store`] is the interface the engine uses; [`SqliteStore`] is the embedded default. A
//! PostgreSQL backend, for several dispatchers on several machines, will implement the same
//! trait with migrations of its own. The store has no rules about content: validation and
//! business rules live in `model` and `engine`. Uniqueness the database can enforce (names,
//! host names across all sites) it does enforce, and reports as [`StoreError::Conflict`].

mod accounts;
mod sqlite;

use model::{
    Client, DbEngine, Hostname, Name, Platform, Server, Site, SiteDatabase, SiteStatus, Target,
    Task, TaskKind, TaskStatus,
};

pub use accounts::{
    Accounts, ApiToken, ClientSummary, LoginFailures, NewUser, SessionRecord, SitePage, SiteQuery,
    UserUpdate,
};
pub use sqlite::SqliteStore;

/// The events of its daemons a server keeps (older ones are dropped as new ones come).
pub const SERVICE_EVENTS_KEPT: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("state database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("state database holds a value this version cannot read: {0}")]
    Corrupt(String),
    /// The state's schema is newer than this build's migrations: a newer fjord wrote it, and
    /// reading it with this one would be a downgrade.
    #[error(
        "the state in {dir} was written by a newer fjord (schema {found}; this fjord knows \
         {known}): install that release or newer; fjord never downgrades a state"
    )]
    NewerSchema { dir: String, found: i64, known: i64 },
}

impl StoreError {
    /// Whether the same operation may succeed if tried again later: the disk was full, the
    /// database busy or unreadable for a moment. Anything else fails the same way each time.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Db(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                DiskFull
                    | SystemIoFailure
                    | DatabaseBusy
                    | DatabaseLocked
                    | CannotOpen
                    | OutOfMemory
                    | ReadOnly
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A task to queue together with a change of state, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub kind: TaskKind,
    pub args: model::TaskArgs,
}

impl NewTask {
    pub fn new(kind: TaskKind) -> NewTask {
        NewTask {
            kind,
            args: model::TaskArgs::none_for(kind),
        }
    }

    pub fn with_args(kind: TaskKind, args: model::TaskArgs) -> NewTask {
        NewTask { kind, args }
    }
}

/// The change to fjord's state that a finished task makes, committed together with its
/// status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEffect {
    None,
    /// What a platform's or a site's code is, as its verify found it: a version and packages
    /// (JSON, as the app kind describes them).
    SetCodeFound {
        target: Target,
        version: Option<String>,
        packages: String,
        /// A platform's web root, where its code serves from when not its root.
        web_root: Option<model::WebRoot>,
    },
    SetSiteStatus(i64, SiteStatus),
    DeleteSite(i64),
    /// A site moved to another platform, name or database.
    MoveSite {
        site_id: i64,
        platform_id: i64,
        name: Hostname,
        database: Option<SiteDatabase>,
    },
    /// Put a site's aliases, redirect, upload limit and HTTPS settings back (an edit whose verify failed).
    SetSiteNames {
        site_id: i64,
        aliases: Vec<Hostname>,
        redirect_aliases: bool,
        upload_limit: Option<model::UploadLimit>,
        https: model::SiteHttps,
    },
    /// Put a platform's upload limit back (an edit whose verify failed).
    SetPlatformUploadLimit {
        platform_id: i64,
        upload_limit: Option<model::UploadLimit>,
    },
    /// Forget backups whose files the task removed.
    RemoveBackups(Vec<i64>),
    /// Record a backup the task wrote.
    AddBackup(NewBackup),
    /// Several changes, in order.
    Many(Vec<TaskEffect>),
    /// Record the installation's ACME account (replacing the one there was).
    SetAcmeAccount(AcmeAccount),
    /// Record a site's certificate, whose files the task wrote (replacing the one there was).
    SetSiteCertificate(SiteCertificate),
    /// Count orders a batch task placed with the ACME account (against the CA's limit).
    CountAcmeOrders(usize),
    /// Done, with something the operator should read: the task is recorded `warning`, with
    /// this as its message. Changes nothing in the state.
    Warn(String),
    /// Queues a follow-up task with this task's success (a new site's certificate order).
    QueueTask {
        target: Target,
        target_name: String,
        task: NewTask,
    },
    /// Record these sites, found on the platform, and queue an import task for each.
    /// Sites found on a platform, each recorded with an import task.
    ImportSites {
        platform_id: i64,
        sites: Vec<ImportedSite>,
    },
}

impl TaskEffect {
    /// What the task warns of ([`TaskEffect::Warn`]), if anything.
    pub fn warning(&self) -> Option<String> {
        match self {
            TaskEffect::Warn(text) => Some(text.clone()),
            TaskEffect::Many(effects) => {
                let said: Vec<String> = effects.iter().filter_map(|e| e.warning()).collect();
                (!said.is_empty()).then(|| said.join("; "))
            }
            _ => None,
        }
    }
}

/// A site found on a platform: its name, and what its config says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedSite {
    pub name: Hostname,
    pub database: Option<SiteDatabase>,
    pub app_secret: String,
}

/// The installation's account at an ACME CA. Its credentials (the account's private key) are in
/// the root-only file `credentials_path`, never in the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccount {
    pub directory: String,
    pub email: String,
    /// The only root trusted to reach a private CA (a PEM file); none: the system's roots.
    pub ca_root: Option<String>,
    pub credentials_path: String,
    pub account_url: String,
}

/// Where a site's certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSource {
    /// Issued by the installation's ACME account (and renewed by fjord).
    Acme,
    /// The site's own, given by an administrator.
    Own,
}

impl CertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CertSource::Acme => "acme",
            CertSource::Own => "own",
        }
    }
}

/// A site's certificate: its files (root's only) and what it covers, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteCertificate {
    pub site_id: i64,
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    pub issuer: String,
    pub source: CertSource,
    pub cert_path: String,
    pub key_path: String,
    /// Unix seconds of the last renewal attempt, and what went wrong if it failed.
    pub last_attempt_at: Option<i64>,
    pub last_failure: Option<String>,
    /// Renewals queued since it was issued (none succeeded yet): how long the next waits.
    pub renewal_attempts: u32,
}

impl SiteCertificate {
    /// The files a TLS server block names.
    pub fn tls_files(&self) -> Result<model::TlsFiles> {
        let path = |field: &'static str, value: &str| {
            model::AbsPath::parse(field, value).map_err(|e| {
                StoreError::Corrupt(format!("site {}'s certificate: {e}", self.site_id))
            })
        };
        Ok(model::TlsFiles {
            cert: path("cert_path", &self.cert_path)?,
            key: path("key_path", &self.key_path)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewSite {
    pub name: Hostname,
    pub platform_id: i64,
    pub aliases: Vec<Hostname>,
    pub redirect_aliases: bool,
    pub client_id: Option<i64>,
    pub status: SiteStatus,
    pub database: Option<SiteDatabase>,
    pub app_secret: String,
    /// Its own upload limit (none: its platform's).
    pub upload_limit: Option<model::UploadLimit>,
    pub https: model::SiteHttps,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBackup {
    pub site_id: i64,
    pub site_name: String,
    pub path: String,
    pub size: i64,
    /// The copies made of it on backup targets, recorded with it.
    pub copies: Vec<NewBackupCopy>,
}

/// A copy of a new backup on a backup target, checked there by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBackupCopy {
    pub target_id: i64,
    /// The copy's path on the target.
    pub path: String,
    pub size: i64,
    /// Hex.
    pub sha256: String,
}

/// A backup target: a machine reached over SSH (as a remote server is: fjord's key, a pinned
/// host key) that keeps copies of backups in a directory, and runs nothing of fjord's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupTargetRecord {
    pub id: i64,
    pub name: model::Name,
    pub target: model::BackupTarget,
    pub host_key: model::HostKey,
}

/// A copy of a backup on a backup target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCopy {
    pub backup_id: i64,
    pub target_id: i64,
    pub target_name: String,
    pub path: String,
    pub size: i64,
    pub sha256: String,
    /// Unix milliseconds.
    pub copied_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub id: i64,
    pub site_id: i64,
    pub site_name: String,
    pub path: String,
    pub size: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Where a site stands in the backup schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSchedule {
    pub site_id: i64,
    pub site_name: String,
    /// The site's own schedule; None follows the installation's default.
    pub own_schedule: Option<String>,
    /// Unix milliseconds; None until first computed.
    pub next_at: Option<i64>,
}

/// The upper bounds, in seconds, of the buckets `/metrics` counts task run times in: from a
/// verify of a static site to a migrate of a large one.
pub const TASK_DURATION_BUCKETS_S: &[f64] = &[0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

/// What `/metrics` reads from the state, in one read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateMetrics {
    /// Task records by kind and status.
    pub tasks: Vec<(String, String, u64)>,
    /// Run times of finished tasks, by kind.
    pub durations: Vec<TaskDurations>,
    /// When the oldest task still queued was queued (ms), if any is.
    pub oldest_queued_at: Option<i64>,
    pub sites: Vec<(SiteStatus, u64)>,
    /// Each installed or disabled site with the time (ms) of its newest backup, if it has one.
    pub newest_backups: Vec<(String, Option<i64>)>,
    /// Counts kept in the state (`cron_runs`, `cron_failures`), by name.
    pub counters: Vec<(String, i64)>,
    /// Each daemon of a monitored server the monitor has probed.
    pub services: Vec<ServiceState>,
}

/// A daemon as the monitor last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    pub server: String,
    pub service: String,
    pub up: bool,
    /// Restarts the monitor made of it, ever.
    pub restarts: u64,
}

/// A file system over the disk guard's line, holding one dispatcher's claims back: recorded
/// by the dispatcher while it pauses, so that the CLI and a panel in other processes can tell.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimPause {
    /// The dispatcher that stopped claiming.
    pub owner: String,
    /// A directory on the file system that is too full (the data dir or a platform's root).
    pub path: String,
    /// How full the file system was at the dispatcher's last look, in percent.
    pub used_percent: f64,
    /// Claims stop above this share, and resume once every file system is below `resume_percent`.
    pub stop_percent: u8,
    pub resume_percent: u8,
    /// When the dispatcher stopped claiming (ms).
    pub since_ms: i64,
}

/// Where a queued task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlace {
    /// Queued tasks older than it (those a dispatcher looks at first).
    pub ahead: usize,
    /// A running task, else an older queued one, on one of its objects: it runs after that.
    pub waits_for: Option<i64>,
}

/// How long the finished tasks of one kind ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskDurations {
    pub kind: String,
    /// How many ran at most each bound of [`TASK_DURATION_BUCKETS_S`], in its order.
    pub at_most: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

/// A site's cron run under way: it holds the site's locks until its outcome is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronRun {
    pub site_id: i64,
    /// The dispatcher running it.
    pub owner: String,
    /// Unix milliseconds.
    pub started_at: i64,
}

/// A site's cron: how often, and how its last run went.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct SiteCron {
    /// The site's own interval in seconds; None follows the installation's default.
    pub own_interval_s: Option<i64>,
    /// Unix milliseconds of the last run's start.
    pub last_at: Option<i64>,
    pub last_ok: Option<bool>,
    /// The last run's output (its error, if it failed), cut to a few lines.
    pub last_message: Option<String>,
    /// When it is due; None: at once.
    pub next_at: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub target: Option<Target>,
    /// Only tasks queued on this client's sites.
    pub client_id: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub line: String,
}

/// A task's log line not yet written: when it was logged (Unix milliseconds) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogLine {
    pub task_id: i64,
    pub at: i64,
    pub line: String,
}

/// One journaled step of a running task: how to undo it, written before the step is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub task_id: i64,
    pub seq: i64,
    pub step: String,
    pub undo: String,
    pub saved: Option<Vec<u8>>,
    /// The remote server whose machine the undo is made on; None: the machine fjord runs on.
    pub machine: Option<i64>,
}

/// One claim of a task by a dispatcher. Claims are numbered per task: a task recovered by
/// another dispatcher, or retried and claimed again, has a new one, so an old claim can never
/// record an outcome over the new one's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The dispatcher that holds it.
    pub owner: String,
    pub seq: i64,
}

/// A processing task and the claim it runs under.
#[derive(Debug, Clone)]
pub struct RunningTask {
    pub task: Task,
    pub claim: Claim,
}

pub trait Store: Accounts + Send + Sync {
    /// Records a server (its `id` is ignored) and queues `then` on it.
    fn insert_server(
        &self,
        server: &Server,
        then: Option<NewTask>,
    ) -> Result<(Server, Option<Task>)>;
    /// Replaces a server's database and php-fpm services and queues `then` on it, in one
    /// transaction that refuses (naming them) to take away a database engine a site's
    /// database uses or a PHP version a platform runs on.
    fn update_server_services(
        &self,
        server: &Server,
        then: Option<NewTask>,
    ) -> Result<(Server, Option<Task>)>;
    fn server(&self, id: i64) -> Result<Server>;
    fn server_by_name(&self, name: &str) -> Result<Server>;
    fn servers(&self) -> Result<Vec<Server>>;
    /// Records what the monitor saw happen to a server's daemon, with the daemon's state
    /// (`down` and `restart failed`: down; `back`: up; `restarted`: one restart more), in one
    /// transaction. A server keeps its newest [`SERVICE_EVENTS_KEPT`] events.
    fn record_service_event(&self, event: &model::ServiceEvent) -> Result<()>;
    /// A server's newest `limit` events, newest first.
    fn service_events(&self, server_id: i64, limit: u32) -> Result<Vec<model::ServiceEvent>>;
    /// Every daemon the monitor has probed: (server id, service, up).
    fn service_states(&self) -> Result<Vec<(i64, String, bool)>>;
    /// Records a daemon the monitor finds up and had never seen (no event: nothing happened).
    fn note_service_up(&self, server_id: i64, service: &str) -> Result<()>;

    /// Records a platform (its `id` and `locked` are ignored) and queues `then` on it.
    fn insert_platform(
        &self,
        platform: &Platform,
        then: Option<NewTask>,
    ) -> Result<(Platform, Option<Task>)>;
    fn platform(&self, id: i64) -> Result<Platform>;
    fn platform_by_name(&self, name: &str) -> Result<Platform>;
    fn platforms(&self) -> Result<Vec<Platform>>;
    fn set_platform_locked(&self, id: i64, locked: bool) -> Result<()>;
    /// The largest upload a platform's sites take (none: the default), and the task that
    /// brings its sites' config in line, in one transaction.
    fn set_platform_upload_limit(
        &self,
        id: i64,
        limit: Option<model::UploadLimit>,
        then: Option<NewTask>,
    ) -> Result<Option<Task>>;
    /// Where a `proxy` platform passes requests, and the task that rewrites its sites'
    /// vhosts, in one transaction.
    fn set_platform_upstream(
        &self,
        id: i64,
        upstream: std::net::SocketAddr,
        then: Option<NewTask>,
    ) -> Result<Option<Task>>;
    fn delete_platform(&self, id: i64) -> Result<()>;

    fn insert_site(&self, site: &NewSite, then: Option<NewTask>) -> Result<(Site, Option<Task>)>;
    fn site(&self, id: i64) -> Result<Site>;
    /// Finds a site by its main name or any alias.
    fn site_by_host(&self, host: &str) -> Result<Site>;
    fn sites(&self, platform_id: Option<i64>) -> Result<Vec<Site>>;
    /// A site's aliases, redirect and own upload limit.
    fn update_site_names(
        &self,
        id: i64,
        aliases: &[Hostname],
        redirect_aliases: bool,
        upload_limit: Option<model::UploadLimit>,
        https: model::SiteHttps,
        then: Option<NewTask>,
    ) -> Result<(Site, Option<Task>)>;
    fn set_site_status(&self, id: i64, status: SiteStatus) -> Result<()>;
    /// The certificate a site's vhost serves HTTPS with, once it has one: its recorded
    /// certificate's files.
    fn site_tls(&self, site_id: i64) -> Result<Option<model::TlsFiles>> {
        self.site_certificate(site_id)?
            .map(|c| c.tls_files())
            .transpose()
    }
    /// The installation's ACME account, if one was made.
    fn acme_account(&self) -> Result<Option<AcmeAccount>>;
    /// A site's certificate, if it has one.
    fn site_certificate(&self, site_id: i64) -> Result<Option<SiteCertificate>>;
    /// Records an attempt to renew a site's certificate (`failure`: what went wrong; none: it
    /// worked). A site without a certificate is left as it is.
    fn record_certificate_attempt(
        &self,
        site_id: i64,
        at: i64,
        failure: Option<&str>,
    ) -> Result<()>;
    /// The certificates the ACME account renews that may be due at `now` (Unix seconds): issued
    /// by it, of sites that are served and serve HTTPS, past seven twelfths of their life (the
    /// earliest `model::renewal_due_at` gives); with each site's name.
    fn renewable_certificates(&self, now: i64) -> Result<Vec<(SiteCertificate, String)>>;
    /// Queues `task` to renew a site's certificate if no other dispatcher did since this one
    /// read it with `attempts` renewals (compare and set), counting the attempt at `now`
    /// (Unix seconds).
    fn take_due_renewal(
        &self,
        site_id: i64,
        site_name: &str,
        attempts: u32,
        now: i64,
        task: NewTask,
    ) -> Result<Option<Task>>;
    /// How many tasks of `kind` were queued since `since_ms`.
    fn tasks_queued_since(&self, kind: TaskKind, since_ms: i64) -> Result<usize>;
    /// How many orders the ACME account placed since `since_ms`: a certificate task's one
    /// (counted when queued), and those of batch tasks (counted when they succeed).
    fn acme_orders_since(&self, since_ms: i64) -> Result<usize>;
    fn delete_site(&self, id: i64) -> Result<()>;

    /// Whether a site database of this name exists on that server and engine.
    fn database_name_taken(&self, server_id: i64, engine: DbEngine, name: &str) -> Result<bool>;

    /// The backups taken under a site name (those of a deleted site stay listed), newest
    /// first.
    fn backups(&self, site_name: &str) -> Result<Vec<Backup>>;
    /// A site's backups, whatever name it had when each was taken, newest first.
    fn site_backups(&self, site_id: i64) -> Result<Vec<Backup>>;
    fn backup(&self, id: i64) -> Result<Backup>;

    /// Records a backup target; a name already taken is a conflict.
    fn add_backup_target(
        &self,
        name: &model::Name,
        target: &model::BackupTarget,
        host_key: &model::HostKey,
    ) -> Result<BackupTargetRecord>;
    /// The backup targets, by name.
    fn backup_targets(&self) -> Result<Vec<BackupTargetRecord>>;
    fn backup_target(&self, name: &str) -> Result<BackupTargetRecord>;
    fn backup_target_by_id(&self, id: i64) -> Result<BackupTargetRecord>;
    /// Removes a backup target and the record of the copies it holds (not the copies), in
    /// one transaction with the check that no policy names it: refused (a conflict naming
    /// the sites, or the installation's default) while one does.
    fn remove_backup_target(&self, name: &str, default_key: &str) -> Result<()>;
    /// The copies of a site's backups on backup targets.
    fn site_backup_copies(&self, site_id: i64) -> Result<Vec<BackupCopy>>;
    /// The copies of the backups taken under a site name.
    fn backup_copies_by_site_name(&self, site_name: &str) -> Result<Vec<BackupCopy>>;
    /// A site's own backup target (None: the installation's default; `none`: no copy).
    fn site_backup_copy_to(&self, site_id: i64) -> Result<Option<String>>;
    fn set_site_backup_copy_to(&self, site_id: i64, copy_to: Option<&str>) -> Result<()>;

    /// A site's own backup schedule and retention (None: the installation's defaults).
    fn site_backup_policy(&self, site_id: i64) -> Result<(Option<String>, Option<String>)>;
    /// Sets a site's policy; clears its next backup time so that it is computed anew.
    fn set_site_backup_policy(
        &self,
        site_id: i64,
        schedule: Option<&str>,
        retention: Option<&str>,
    ) -> Result<()>;
    fn setting(&self, key: &str) -> Result<Option<String>>;
    fn set_setting(&self, key: &str, value: Option<&str>) -> Result<()>;
    /// The backup schedule state of every installed or disabled site.
    fn backup_schedules(&self) -> Result<Vec<SiteSchedule>>;
    fn set_next_backup(&self, site_id: i64, at: Option<i64>) -> Result<()>;
    /// Moves a site's next scheduled backup on from `due` to `next` and queues `backup`
    /// (if given) with it, in one transaction, unless another dispatcher has moved it on
    /// first: then nothing changes. Returns the task queued.
    fn take_due_backup(
        &self,
        site_id: i64,
        site_name: &str,
        due: i64,
        next: Option<i64>,
        backup: Option<NewTask>,
    ) -> Result<Option<Task>>;

    /// Installed sites on platforms of `kinds` whose cron is due at `now` (never run first,
    /// then the longest overdue), at most `limit`.
    fn due_crons(&self, now: i64, kinds: &[&str], limit: usize) -> Result<Vec<i64>>;
    /// Starts a run of a site's cron for dispatcher `owner`: moves it on from `due` (None:
    /// never run) to `next` and makes the run a holder of the site's locks (as a site task:
    /// the site exclusive, its platform and server shared), in the transaction that task
    /// claims use. False, changing nothing, if another dispatcher moved it first, a run of
    /// it is under way, or a processing or queued task holds or waits for those locks.
    fn take_due_cron(&self, site_id: i64, due: Option<i64>, next: i64, owner: &str)
    -> Result<bool>;
    /// Records a run's outcome and ends `owner`'s run (its locks), in one transaction.
    fn record_cron(
        &self,
        site_id: i64,
        owner: &str,
        at: i64,
        ok: bool,
        message: &str,
    ) -> Result<()>;
    /// The cron runs under way, each holding its site's locks.
    fn cron_runs(&self) -> Result<Vec<CronRun>>;
    /// What `/metrics` reports from the state.
    fn metrics(&self) -> Result<StateMetrics>;
    /// Replaces what `owner`'s disk guard holds claims back for (nothing: it claims again).
    fn set_claim_pause(&self, owner: &str, pauses: &[ClaimPause]) -> Result<()>;
    /// Every recorded pause, the dead dispatchers' too (whoever reads them asks who lives).
    fn claim_pauses(&self) -> Result<Vec<ClaimPause>>;
    fn site_cron(&self, site_id: i64) -> Result<SiteCron>;
    /// The version and packages (JSON) a platform's or site's last verify found.
    fn code_found(&self, target: Target) -> Result<(Option<String>, Option<String>)>;
    /// Sets a site's own interval (None: the default) and when it is next due.
    fn set_site_cron(
        &self,
        site_id: i64,
        interval_s: Option<i64>,
        next_at: Option<i64>,
    ) -> Result<()>;

    fn client_by_name_or_insert(&self, name: &Name) -> Result<Client>;
    fn client(&self, id: i64) -> Result<Client>;
    fn set_client_email(&self, id: i64, email: Option<&model::EmailAddress>) -> Result<()>;

    fn enqueue(&self, target: Target, target_name: &str, task: NewTask) -> Result<Task>;
    fn task(&self, id: i64) -> Result<Task>;
    /// Records who queued a task (a panel or API user's name); tasks are `cli`'s otherwise.
    fn set_task_queued_by(&self, id: i64, by: &str) -> Result<()>;
    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>>;
    /// The unfinished (queued or processing) tasks on a target.
    fn active_tasks(&self, target: Target) -> Result<Vec<Task>>;
    /// Atomically moves the oldest runnable queued task to `processing`, owned by `owner`. A
    /// task is runnable when its locks conflict with no processing task's and no older queued
    /// task's, so tasks on one object run in the order they were queued.
    fn claim_next(&self, owner: &str) -> Result<Option<RunningTask>>;
    /// Records a task's outcome and its effect in one transaction, if `claim` still holds the
    /// task (processing, same owner, same claim); otherwise changes nothing and returns false:
    /// the task was recovered by another dispatcher, or retried and claimed again.
    fn finish_task(
        &self,
        id: i64,
        claim: &Claim,
        status: TaskStatus,
        error: Option<&str>,
        effect: &TaskEffect,
    ) -> Result<bool>;
    /// Takes a processing task over from `from` (a dead dispatcher's claim) for `owner`, with
    /// a new claim; None if `from` no longer holds it (another dispatcher took it first).
    fn adopt_task(&self, id: i64, from: &Claim, owner: &str) -> Result<Option<Claim>>;
    fn cancel_task(&self, id: i64) -> Result<Task>;
    fn retry_task(&self, id: i64) -> Result<Task>;
    fn running_tasks(&self) -> Result<Vec<RunningTask>>;
    /// Where queued task `id` stands in the queue.
    fn queue_place(&self, id: i64) -> Result<QueuePlace>;
    /// The claim that holds task `id`, while it is processing.
    fn task_claim(&self, id: i64) -> Result<Option<Claim>>;

    fn append_log(&self, task_id: i64, line: &str) -> Result<()>;
    /// Writes log lines of any tasks, in this order, in one transaction (each line a write
    /// of its own made 10,000 verifies wait on the state's lock).
    fn append_logs(&self, lines: &[PendingLogLine]) -> Result<()>;
    fn log(&self, task_id: i64, after_id: i64) -> Result<Vec<LogLine>>;

    fn journal_append(&self, entry: &JournalEntry) -> Result<()>;
    /// Appends entries in one transaction: all or none.
    fn journal_append_all(&self, entries: &[JournalEntry]) -> Result<()>;
    fn journal(&self, task_id: i64) -> Result<Vec<JournalEntry>>;
    fn journal_clear(&self, task_id: i64) -> Result<()>;
    /// Tasks that succeeded but still have journal entries: their dispatcher stopped before
    /// it purged what they set aside. With each one's dispatcher.
    fn unpurged_tasks(&self) -> Result<Vec<(i64, String)>>;
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
