use serde::{Deserialize, Serialize};

/// What a task does. Each kind is one short script in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    ServerVerify,
    PlatformVerify,
    SiteInstall,
    SiteVerify,
    SiteDisable,
    SiteEnable,
    SiteDelete,
    SiteImport,
    SiteBackup,
    SiteRestore,
    SiteClone,
    SiteMigrate,
    SiteBackupDelete,
    /// The summary of a batch migrate: runs after its children, reports each one's result.
    PlatformMigrateAll,
    /// Arms a one-time login link in the site's application.
    SiteLoginLink,
    /// Clears the caches of the site's application.
    SiteCacheClear,
    /// Registers the installation's account at an ACME CA (queued on the server it runs from).
    HttpsAccount,
    /// Gives a site a certificate: issued by the ACME account, or its own, given by an
    /// administrator.
    SiteHttps,
    /// Gives every site of a server that wants a certificate one from the ACME account, in
    /// one batch: orders side by side, few nginx reloads.
    HttpsIssue,
}

impl TaskKind {
    pub const ALL: [TaskKind; 19] = [
        TaskKind::ServerVerify,
        TaskKind::PlatformVerify,
        TaskKind::SiteInstall,
        TaskKind::SiteVerify,
        TaskKind::SiteDisable,
        TaskKind::SiteEnable,
        TaskKind::SiteDelete,
        TaskKind::SiteImport,
        TaskKind::SiteBackup,
        TaskKind::SiteRestore,
        TaskKind::SiteClone,
        TaskKind::SiteMigrate,
        TaskKind::SiteBackupDelete,
        TaskKind::PlatformMigrateAll,
        TaskKind::SiteLoginLink,
        TaskKind::SiteCacheClear,
        TaskKind::HttpsAccount,
        TaskKind::SiteHttps,
        TaskKind::HttpsIssue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::ServerVerify => "server-verify",
            TaskKind::PlatformVerify => "platform-verify",
            TaskKind::SiteInstall => "site-install",
            TaskKind::SiteVerify => "site-verify",
            TaskKind::SiteDisable => "site-disable",
            TaskKind::SiteEnable => "site-enable",
            TaskKind::SiteDelete => "site-delete",
            TaskKind::SiteImport => "site-import",
            TaskKind::SiteBackup => "site-backup",
            TaskKind::SiteRestore => "site-restore",
            TaskKind::SiteClone => "site-clone",
            TaskKind::SiteMigrate => "site-migrate",
            TaskKind::SiteBackupDelete => "site-backup-delete",
            TaskKind::PlatformMigrateAll => "platform-migrate-all",
            TaskKind::SiteLoginLink => "site-login-link",
            TaskKind::SiteCacheClear => "site-cache-clear",
            TaskKind::HttpsAccount => "https-account",
            TaskKind::SiteHttps => "site-https",
            TaskKind::HttpsIssue => "https-issue",
        }
    }

    pub fn from_db(s: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The object a task works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum Target {
    Server(i64),
    Platform(i64),
    Site(i64),
}

impl Target {
    pub fn type_str(self) -> &'static str {
        match self {
            Target::Server(_) => "server",
            Target::Platform(_) => "platform",
            Target::Site(_) => "site",
        }
    }

    pub fn id(self) -> i64 {
        match self {
            Target::Server(id) | Target::Platform(id) | Target::Site(id) => id,
        }
    }

    pub fn from_db(kind: &str, id: i64) -> Option<Target> {
        Some(match kind {
            "server" => Target::Server(id),
            "platform" => Target::Platform(id),
            "site" => Target::Site(id),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Queued,
    Processing,
    Success,
    Failed,
    /// Done, but with something the operator should read in the log.
    Warning,
    Cancelled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Processing => "processing",
            TaskStatus::Success => "success",
            TaskStatus::Failed => "failed",
            TaskStatus::Warning => "warning",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn from_db(s: &str) -> Option<TaskStatus> {
        Some(match s {
            "queued" => TaskStatus::Queued,
            "processing" => TaskStatus::Processing,
            "success" => TaskStatus::Success,
            "failed" => TaskStatus::Failed,
            "warning" => TaskStatus::Warning,
            "cancelled" => TaskStatus::Cancelled,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Success | TaskStatus::Failed | TaskStatus::Warning | TaskStatus::Cancelled
        )
    }

    /// Only a task that did not complete can be queued again.
    pub fn can_retry(self) -> bool {
        matches!(self, TaskStatus::Failed | TaskStatus::Cancelled)
    }

    /// Only a task no dispatcher has started can be cancelled; a running one is rolled back
    /// only by failing.
    pub fn can_cancel(self) -> bool {
        self == TaskStatus::Queued
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: i64,
    pub kind: TaskKind,
    pub target: Target,
    /// The target's name when the task was queued (the object may since be gone).
    pub target_name: String,
    pub args: crate::TaskArgs,
    pub status: TaskStatus,
    /// Unix milliseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    /// The client of the site it was queued on, if any: whose users may see it.
    pub client_id: Option<i64>,
    /// Who queued it: a user of the panel or the API (their name), `cli` (the command line,
    /// or a task a task queued) or `schedule` (a scheduled backup).
    pub queued_by: String,
}

/// A lock a running task holds. Exclusive locks conflict with every lock on the same key;
/// shared ones only with exclusive ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKey {
    Server(i64),
    Platform(i64),
    Site(i64),
}

impl Task {
    /// The locks this task needs: a site task holds its site and shares its platform, so that a
    /// platform-wide task never runs beside a task on one of the platform's sites; site and
    /// platform tasks share their server, so that none runs while the server is verified (a
    /// site must not be served by an nginx whose fjord config is not committed yet).
    /// `server_of` gives a platform's server.
    pub fn locks(
        &self,
        platform_of_site: Option<i64>,
        server_of: &dyn Fn(i64) -> Option<i64>,
    ) -> Vec<(LockKey, bool)> {
        let mut locks = Vec::new();
        let platform = |locks: &mut Vec<(LockKey, bool)>, id: i64, exclusive: bool| {
            locks.push((LockKey::Platform(id), exclusive));
            if let Some(server) = server_of(id) {
                locks.push((LockKey::Server(server), false));
            }
        };
        match self.target {
            Target::Server(id) => locks.push((LockKey::Server(id), true)),
            Target::Platform(id) => platform(&mut locks, id, true),
            Target::Site(id) => {
                locks.extend(site_locks(id, platform_of_site, server_of));
                // A clone reads its source site: no task may change that site meanwhile.
                if let Some(source) = self.args.source_site() {
                    locks.push((LockKey::Site(source), false));
                }
                // Clone and migrate write into their target platform: no platform-wide task
                // (a verify that would import a half-moved site) runs there meanwhile.
                if let Some(target) = self.args.target_platform() {
                    platform(&mut locks, target, false);
                }
            }
        }
        locks
    }
}

/// The locks of any work on one site (a site task, a site's cron run): the site exclusively,
/// its platform and its server shared.
pub fn site_locks(
    site: i64,
    platform_of_site: Option<i64>,
    server_of: &dyn Fn(i64) -> Option<i64>,
) -> Vec<(LockKey, bool)> {
    let mut locks = vec![(LockKey::Site(site), true)];
    if let Some(platform) = platform_of_site {
        locks.push((LockKey::Platform(platform), false));
        if let Some(server) = server_of(platform) {
            locks.push((LockKey::Server(server), false));
        }
    }
    locks
}

pub fn locks_conflict(a: &[(LockKey, bool)], b: &[(LockKey, bool)]) -> bool {
    a.iter()
        .any(|(ka, xa)| b.iter().any(|(kb, xb)| ka == kb && (*xa || *xb)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(target: Target) -> Task {
        Task {
            id: 1,
            kind: TaskKind::SiteVerify,
            target,
            target_name: String::new(),
            args: crate::TaskArgs::None,
            status: TaskStatus::Queued,
            created_at: 0,
            started_at: None,
            finished_at: None,
            error: None,
            client_id: None,
            queued_by: "cli".into(),
        }
    }

    #[test]
    fn lock_rules() {
        // Platforms 8 and 9 on server 1.
        let server_of = |_: i64| Some(1);
        let s1 = task(Target::Site(1)).locks(Some(9), &server_of);
        let s2 = task(Target::Site(2)).locks(Some(9), &server_of);
        let p9 = task(Target::Platform(9)).locks(None, &server_of);
        let p8 = task(Target::Platform(8)).locks(None, &server_of);
        assert!(
            !locks_conflict(&s1, &s2),
            "sites of one platform run side by side"
        );
        assert!(locks_conflict(&s1, &s1), "never two tasks on one site");
        assert!(
            locks_conflict(&s1, &p9),
            "a platform task excludes its sites' tasks"
        );
        assert!(!locks_conflict(&s1, &p8));

        let mut clone = task(Target::Site(3));
        clone.args = crate::TaskArgs::Clone {
            source: 1,
            force: false,
        };
        let clone = clone.locks(Some(8), &server_of);
        assert!(
            locks_conflict(&clone, &s1),
            "a clone waits for tasks on its source"
        );
        assert!(!locks_conflict(
            &clone,
            &task(Target::Site(2)).locks(Some(9), &server_of)
        ));
        assert!(
            locks_conflict(&clone, &p8),
            "and excludes platform-wide tasks on its target"
        );
        let mut migrate = task(Target::Site(1));
        migrate.args = crate::TaskArgs::Migrate(crate::MigrateArgs {
            platform: 8,
            name: crate::Hostname::parse("h", "a.example").unwrap(),
            db_server: None,
            db_name: None,
            force: false,
        });
        let migrate = migrate.locks(Some(9), &server_of);
        assert!(
            locks_conflict(&migrate, &p8) && locks_conflict(&migrate, &p9),
            "a migrate excludes platform-wide tasks on both its platforms"
        );
        let server = task(Target::Server(1)).locks(None, &server_of);
        for other in [&s1, &p9, &clone] {
            assert!(
                locks_conflict(&server, other),
                "no site or platform task runs while its server is verified"
            );
        }
        assert!(
            !locks_conflict(&s1, &p8),
            "sharing a server excludes nothing else"
        );
    }

    #[test]
    fn kinds_round_trip() {
        for k in TaskKind::ALL {
            assert_eq!(TaskKind::from_db(k.as_str()), Some(k));
        }
    }
}
