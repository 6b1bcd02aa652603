//! The arguments of each task kind, typed. A task's arguments are stored as JSON (the shape
//! each variant names below); they are parsed once, when a task is loaded, so that the lock
//! rules, the status rules and the scripts read fields, never JSON keys.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Hostname, Invalid, TaskKind};

/// What an application's installer is told (title, first administrator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallInput {
    pub title: Option<String>,
    pub admin_user: Option<String>,
    pub admin_email: Option<String>,
    /// The installation profile (Drupal) [default: standard].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// A site's names before an edit: put back if the edit's verify fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteNames {
    pub aliases: Vec<Hostname>,
    pub redirect_aliases: bool,
    /// Its own upload limit (none: its platform's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_limit: Option<crate::UploadLimit>,
    #[serde(default)]
    pub https: crate::SiteHttps,
}

/// A platform's upload limit before `platform edit` changed it: put back if the verify
/// that brings its sites in line fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformLimitBefore {
    /// None: the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_limit: Option<crate::UploadLimit>,
}

/// Where a migrate takes a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateArgs {
    /// The target platform.
    pub platform: i64,
    /// The site's main name afterwards.
    pub name: Hostname,
    /// A database moving to another server: that server and the name it gets there.
    #[serde(default)]
    pub db_server: Option<i64>,
    #[serde(default)]
    pub db_name: Option<String>,
    /// Move without the packages the target platform lacks (the compatibility check).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// The ACME account to register: its CA's directory, contact address and, for a private CA,
/// the only root trusted to reach it (a PEM file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsAccountArgs {
    pub directory: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_root: Option<String>,
}

impl HttpsAccountArgs {
    /// Checks an account request: an `https://` directory URL, an email address, an absolute
    /// path for the CA root.
    pub fn parse(
        directory: &str,
        email: &str,
        ca_root: Option<&str>,
    ) -> Result<HttpsAccountArgs, Invalid> {
        let rest = directory.strip_prefix("https://").ok_or_else(|| {
            Invalid::new(
                "directory",
                directory,
                "must be an https:// URL (an ACME directory)",
            )
        })?;
        if rest.is_empty()
            || rest.starts_with('/')
            || !directory.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Invalid::new(
                "directory",
                directory,
                "must be an https:// URL with a host, in printable ASCII",
            ));
        }
        let email = crate::EmailAddress::parse("email", email)?;
        let ca_root = ca_root
            .map(|p| crate::AbsPath::parse("ca-root", p).map(|p| p.to_string()))
            .transpose()?;
        Ok(HttpsAccountArgs {
            directory: directory.to_string(),
            email: email.to_string(),
            ca_root,
        })
    }
}

/// A site's own certificate and key: files an administrator named, read by the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnCertificate {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskArgs {
    None,
    /// Disable, enable, delete: `--force` (delete a site that is not disabled).
    Site {
        force: bool,
    },
    Install(InstallInput),
    /// Copy the code base in from a directory first; a verify queued by `platform edit`
    /// carries the limit to put back if it fails.
    PlatformVerify {
        from: Option<String>,
        limit_before: Option<PlatformLimitBefore>,
    },
    /// A verify queued by `site edit` carries the names to put back if it fails.
    SiteVerify {
        names_before: Option<SiteNames>,
    },
    Backup {
        scheduled: bool,
    },
    BackupDelete {
        ids: Vec<i64>,
    },
    /// `own`: a backup of this site (else a file given by the operator).
    Restore {
        backup: String,
        own: bool,
        /// Restore from the copy of backup `backup_id` on a backup target, fetched first (and
        /// checked by its SHA-256) to `backup`.
        from_target: Option<FromTarget>,
    },
    /// The new site is the target; the source is only read.
    Clone {
        source: i64,
        /// Clone without the packages the target platform lacks (the compatibility check).
        force: bool,
    },
    Migrate(MigrateArgs),
    MigrateAll {
        children: Vec<i64>,
        to: String,
    },
    LoginLink {
        token_sha256: String,
        expires_at_s: i64,
    },
    HttpsAccount(HttpsAccountArgs),
    /// `own`: the site's own certificate; none: one issued by the ACME account.
    SiteHttps {
        own: Option<OwnCertificate>,
    },
}

#[derive(Deserialize)]
struct ForceJson {
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
struct InstallJson {
    #[serde(default)]
    install: InstallInput,
}

#[derive(Deserialize)]
struct FromJson {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    limit_before: Option<PlatformLimitBefore>,
}

#[derive(Deserialize)]
struct NamesJson {
    #[serde(default)]
    names_before: Option<SiteNames>,
}

#[derive(Deserialize)]
struct ScheduledJson {
    #[serde(default)]
    scheduled: bool,
}

#[derive(Deserialize)]
struct DeleteJson {
    delete: Vec<i64>,
}

#[derive(Deserialize)]
struct RestoreJson {
    backup: String,
    #[serde(default)]
    own: bool,
    #[serde(default)]
    from_target: Option<FromTarget>,
}

/// Which copy a restore from a backup target fetches: the target's and the backup's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromTarget {
    pub target: i64,
    pub backup_id: i64,
}

#[derive(Deserialize)]
struct SourceJson {
    source: i64,
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
struct ChildrenJson {
    children: Vec<i64>,
    #[serde(default)]
    to: String,
}

#[derive(Deserialize)]
struct OwnJson {
    #[serde(default)]
    own: Option<OwnCertificate>,
}

#[derive(Deserialize)]
struct LoginJson {
    token_sha256: String,
    expires_at_s: i64,
}

impl TaskArgs {
    /// The arguments of a task of `kind` queued with none.
    pub fn none_for(kind: TaskKind) -> TaskArgs {
        match kind {
            TaskKind::SiteDisable | TaskKind::SiteEnable | TaskKind::SiteDelete => {
                TaskArgs::Site { force: false }
            }
            TaskKind::SiteInstall => TaskArgs::Install(InstallInput::default()),
            TaskKind::PlatformVerify => TaskArgs::PlatformVerify {
                from: None,
                limit_before: None,
            },
            TaskKind::SiteVerify => TaskArgs::SiteVerify { names_before: None },
            TaskKind::SiteBackup => TaskArgs::Backup { scheduled: false },
            TaskKind::SiteHttps => TaskArgs::SiteHttps { own: None },
            _ => TaskArgs::None,
        }
    }

    /// Reads the stored arguments of a task of `kind`.
    pub fn parse(kind: TaskKind, json: &Value) -> Result<TaskArgs, Invalid> {
        fn read<T: for<'de> Deserialize<'de>>(kind: TaskKind, json: &Value) -> Result<T, Invalid> {
            let json = if json.is_null() { &json!({}) } else { json };
            serde_json::from_value(json.clone()).map_err(|e| {
                Invalid::new(
                    "task arguments",
                    &json.to_string(),
                    format!("are not those of a {} task: {e}", kind.as_str()),
                )
            })
        }
        Ok(match kind {
            TaskKind::ServerVerify
            | TaskKind::SiteImport
            | TaskKind::SiteCacheClear
            | TaskKind::HttpsIssue => TaskArgs::None,
            TaskKind::SiteDisable | TaskKind::SiteEnable | TaskKind::SiteDelete => TaskArgs::Site {
                force: read::<ForceJson>(kind, json)?.force,
            },
            TaskKind::SiteInstall => TaskArgs::Install(read::<InstallJson>(kind, json)?.install),
            TaskKind::PlatformVerify => {
                let read = read::<FromJson>(kind, json)?;
                TaskArgs::PlatformVerify {
                    from: read.from,
                    limit_before: read.limit_before,
                }
            }
            TaskKind::SiteVerify => TaskArgs::SiteVerify {
                names_before: read::<NamesJson>(kind, json)?.names_before,
            },
            TaskKind::SiteBackup => TaskArgs::Backup {
                scheduled: read::<ScheduledJson>(kind, json)?.scheduled,
            },
            TaskKind::SiteBackupDelete => TaskArgs::BackupDelete {
                ids: read::<DeleteJson>(kind, json)?.delete,
            },
            TaskKind::SiteRestore => {
                let r = read::<RestoreJson>(kind, json)?;
                TaskArgs::Restore {
                    backup: r.backup,
                    own: r.own,
                    from_target: r.from_target,
                }
            }
            TaskKind::SiteClone => {
                let c = read::<SourceJson>(kind, json)?;
                TaskArgs::Clone {
                    source: c.source,
                    force: c.force,
                }
            }
            TaskKind::SiteMigrate => TaskArgs::Migrate(read(kind, json)?),
            TaskKind::PlatformMigrateAll => {
                let c = read::<ChildrenJson>(kind, json)?;
                TaskArgs::MigrateAll {
                    children: c.children,
                    to: c.to,
                }
            }
            TaskKind::HttpsAccount => TaskArgs::HttpsAccount(read(kind, json)?),
            TaskKind::SiteHttps => TaskArgs::SiteHttps {
                own: read::<OwnJson>(kind, json)?.own,
            },
            TaskKind::SiteLoginLink => {
                let l = read::<LoginJson>(kind, json)?;
                TaskArgs::LoginLink {
                    token_sha256: l.token_sha256,
                    expires_at_s: l.expires_at_s,
                }
            }
        })
    }

    /// The stored form.
    pub fn to_json(&self) -> Value {
        match self {
            TaskArgs::None => Value::Null,
            TaskArgs::Site { force: false } => Value::Null,
            TaskArgs::Site { force: true } => json!({ "force": true }),
            TaskArgs::Install(install) => json!({ "install": install }),
            TaskArgs::PlatformVerify {
                from: None,
                limit_before: None,
            } => Value::Null,
            TaskArgs::PlatformVerify { from, limit_before } => {
                let mut args = serde_json::Map::new();
                if let Some(from) = from {
                    args.insert("from".into(), json!(from));
                }
                if let Some(before) = limit_before {
                    args.insert("limit_before".into(), json!(before));
                }
                Value::Object(args)
            }
            TaskArgs::SiteVerify { names_before: None } => Value::Null,
            TaskArgs::SiteVerify {
                names_before: Some(names),
            } => json!({ "names_before": names }),
            TaskArgs::Backup { scheduled: false } => Value::Null,
            TaskArgs::Backup { scheduled: true } => json!({ "scheduled": true }),
            TaskArgs::BackupDelete { ids } => json!({ "delete": ids }),
            TaskArgs::Restore {
                backup,
                own,
                from_target: None,
            } => json!({ "backup": backup, "own": own }),
            TaskArgs::Restore {
                backup,
                own,
                from_target: Some(from),
            } => json!({ "backup": backup, "own": own, "from_target": from }),
            TaskArgs::Clone {
                source,
                force: false,
            } => json!({ "source": source }),
            TaskArgs::Clone {
                source,
                force: true,
            } => json!({ "source": source, "force": true }),
            TaskArgs::Migrate(m) => serde_json::to_value(m).unwrap_or(Value::Null),
            TaskArgs::MigrateAll { children, to } => json!({ "children": children, "to": to }),
            TaskArgs::LoginLink {
                token_sha256,
                expires_at_s,
            } => json!({ "token_sha256": token_sha256, "expires_at_s": expires_at_s }),
            TaskArgs::HttpsAccount(a) => serde_json::to_value(a).unwrap_or(Value::Null),
            TaskArgs::SiteHttps { own: None } => Value::Null,
            TaskArgs::SiteHttps { own: Some(own) } => json!({ "own": own }),
        }
    }

    pub fn force(&self) -> bool {
        matches!(self, TaskArgs::Site { force: true })
    }

    /// The site a task only reads (a clone's source).
    pub fn source_site(&self) -> Option<i64> {
        match self {
            TaskArgs::Clone { source, .. } => Some(*source),
            _ => None,
        }
    }

    /// The platform a task writes into besides its target's (a migrate's).
    pub fn target_platform(&self) -> Option<i64> {
        match self {
            TaskArgs::Migrate(m) => Some(m.platform),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acme_account_needs_an_https_directory_and_an_email_address() {
        let ok = HttpsAccountArgs::parse("https://ca.example/dir", "ops@a.example", None).unwrap();
        assert_eq!(ok.email, "ops@a.example");
        let err = HttpsAccountArgs::parse("http://ca.example/dir", "ops@a.example", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("directory") && err.contains("https://"),
            "{err}"
        );
        assert!(HttpsAccountArgs::parse("https://", "ops@a.example", None).is_err());
        assert!(HttpsAccountArgs::parse("https://ca.example/dir", "ops", None).is_err());
        assert!(
            HttpsAccountArgs::parse("https://ca.example/dir", "o@a.example", Some("ca.pem"))
                .is_err()
        );
    }

    #[test]
    fn every_kind_reads_back_what_it_stores() {
        let host = Hostname::parse("h", "a.example").unwrap();
        let samples = [
            (TaskKind::SiteDelete, TaskArgs::Site { force: true }),
            (
                TaskKind::SiteInstall,
                TaskArgs::Install(InstallInput {
                    title: Some("T".into()),
                    ..Default::default()
                }),
            ),
            (
                TaskKind::PlatformVerify,
                TaskArgs::PlatformVerify {
                    from: Some("/usr/share/wordpress".into()),
                    limit_before: None,
                },
            ),
            (
                TaskKind::PlatformVerify,
                TaskArgs::PlatformVerify {
                    from: None,
                    limit_before: Some(PlatformLimitBefore {
                        upload_limit: crate::UploadLimit::from_mb(8),
                    }),
                },
            ),
            (
                TaskKind::PlatformVerify,
                TaskArgs::PlatformVerify {
                    from: None,
                    limit_before: Some(PlatformLimitBefore { upload_limit: None }),
                },
            ),
            (
                TaskKind::SiteVerify,
                TaskArgs::SiteVerify {
                    names_before: Some(SiteNames {
                        aliases: vec![host.clone()],
                        redirect_aliases: true,
                        upload_limit: crate::UploadLimit::from_mb(8),
                        https: crate::SiteHttps {
                            mode: crate::HttpsMode::Required,
                            hsts: true,
                        },
                    }),
                },
            ),
            (TaskKind::SiteBackup, TaskArgs::Backup { scheduled: true }),
            (
                TaskKind::SiteBackupDelete,
                TaskArgs::BackupDelete { ids: vec![1, 2] },
            ),
            (
                TaskKind::SiteRestore,
                TaskArgs::Restore {
                    backup: "/b.tar.zst".into(),
                    own: true,
                    from_target: None,
                },
            ),
            (
                TaskKind::SiteRestore,
                TaskArgs::Restore {
                    backup: "/b.tar.zst".into(),
                    own: true,
                    from_target: Some(FromTarget {
                        target: 2,
                        backup_id: 7,
                    }),
                },
            ),
            (
                TaskKind::SiteClone,
                TaskArgs::Clone {
                    source: 3,
                    force: true,
                },
            ),
            (
                TaskKind::SiteMigrate,
                TaskArgs::Migrate(MigrateArgs {
                    platform: 2,
                    name: host,
                    db_server: Some(4),
                    db_name: Some("a_example".into()),
                    force: false,
                }),
            ),
            (
                TaskKind::PlatformMigrateAll,
                TaskArgs::MigrateAll {
                    children: vec![5, 6],
                    to: "p2".into(),
                },
            ),
            (
                TaskKind::HttpsAccount,
                TaskArgs::HttpsAccount(HttpsAccountArgs {
                    directory: "https://ca.example/dir".into(),
                    email: "ops@a.example".into(),
                    ca_root: Some("/etc/ssl/ca.pem".into()),
                }),
            ),
            (
                TaskKind::SiteHttps,
                TaskArgs::SiteHttps {
                    own: Some(OwnCertificate {
                        cert: "/root/c.pem".into(),
                        key: "/root/k.pem".into(),
                    }),
                },
            ),
            (
                TaskKind::SiteLoginLink,
                TaskArgs::LoginLink {
                    token_sha256: "ab".repeat(32),
                    expires_at_s: 9,
                },
            ),
        ];
        for (kind, args) in samples {
            assert_eq!(
                TaskArgs::parse(kind, &args.to_json()).unwrap(),
                args,
                "{kind:?}"
            );
        }
        for kind in TaskKind::ALL {
            let none = TaskArgs::none_for(kind);
            if none != TaskArgs::None || kind == TaskKind::ServerVerify {
                assert_eq!(
                    TaskArgs::parse(kind, &none.to_json()).unwrap(),
                    none,
                    "{kind:?}"
                );
            }
        }
        let err = TaskArgs::parse(TaskKind::SiteClone, &json!({ "source": "x" })).unwrap_err();
        assert!(err.to_string().contains("site-clone"), "{err}");
    }
}
