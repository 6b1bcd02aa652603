//! Backup targets: machines that keep a copy of each backup by policy, so that a site's
//! backups outlive its web server; the policy that names one; restores from a copy there.

use model::{BackupTarget, FromTarget, HostKey, Name, Target, TaskArgs, TaskKind};
use store::{BackupCopy, BackupTargetRecord};

use super::*;
use crate::scripts;
use crate::{Error, Fjord, Result};

/// The installation's default backup target (a target's name; absent: none).
pub(super) const COPY_TO_KEY: &str = "backup.copy_to";

/// What a backup or restore task needs of backup targets, loaded when it starts.
#[derive(Debug, Clone, Default)]
pub struct CopyPlan {
    /// A backup task: the target its new backup is copied to (the site's effective policy).
    pub copy_to: Option<BackupTargetRecord>,
    /// Every target: the copies of the backups a task removes are removed from theirs.
    pub targets: Vec<BackupTargetRecord>,
    /// The copies of the site's backups.
    pub copies: Vec<BackupCopy>,
    /// A restore from a target: the target, and the copy there it fetches.
    pub fetch: Option<(BackupTargetRecord, BackupCopy)>,
    /// fjord's SSH key and known-hosts files, with which targets are reached.
    pub keys: std::path::PathBuf,
}

/// What `--copy-to` says: a target by name, none, or (a site's only) the default.
enum CopyTo<'a> {
    Target(&'a str),
    None,
    Default,
}

impl Fjord {
    /// Records a backup target reached over SSH as `ssh` (`USER@HOST[:PORT]:/path`) and pins
    /// its host key: `host_key`, or the one the target offers now (the caller shows it).
    pub fn add_backup_target(
        &self,
        name: &str,
        ssh: &str,
        host_key: Option<&str>,
    ) -> Result<BackupTargetRecord> {
        let name = Name::parse("backup target name", name)?;
        let target = BackupTarget::parse("ssh", ssh)?;
        let host_key = match host_key {
            Some(key) => HostKey::parse("host key", key)?,
            None => {
                let offered = host::remote::scan_host_key(&target.ssh.host, target.ssh.port)?;
                HostKey::parse("host key", &offered)?
            }
        };
        Ok(self.store().add_backup_target(&name, &target, &host_key)?)
    }

    pub fn backup_targets(&self) -> Result<Vec<BackupTargetRecord>> {
        Ok(self.store().backup_targets()?)
    }

    /// Forgets a backup target and the copies it holds (which stay on it); refused while a
    /// backup policy names it.
    pub fn remove_backup_target(&self, name: &str) -> Result<()> {
        self.backup_target(name)?;
        Ok(self.store().remove_backup_target(name, COPY_TO_KEY)?)
    }

    fn backup_target(&self, name: &str) -> Result<BackupTargetRecord> {
        match self.store().backup_target(name) {
            Err(store::StoreError::NotFound(_)) => {
                let known: Vec<String> = self
                    .store()
                    .backup_targets()?
                    .into_iter()
                    .map(|t| t.name.to_string())
                    .collect();
                Err(Error::NotFound(
                    format!(
                        "backup target {name:?} (known: {})",
                        if known.is_empty() {
                            "none; add one with `fjord backup-target add`".to_string()
                        } else {
                            known.join(", ")
                        }
                    )
                    .into(),
                ))
            }
            other => Ok(other?),
        }
    }

    /// Sets where a site's backups (or, with `site: None`, every site's without its own) are
    /// copied: a target's name, `none`, or for a site `default`. Returns the policy's value
    /// now (None: no copy for the installation, the default for a site).
    pub fn set_backup_copy_to(
        &self,
        site: Option<&str>,
        copy_to: Option<&str>,
    ) -> Result<Option<String>> {
        let parsed = match copy_to {
            None => None,
            Some("none") => Some(CopyTo::None),
            Some("default") if site.is_some() => Some(CopyTo::Default),
            Some(name) => {
                Name::parse("copy-to", name)?;
                self.backup_target(name)?;
                Some(CopyTo::Target(name))
            }
        };
        match site {
            Some(name) => {
                let site = self.site(name)?;
                if let Some(parsed) = parsed {
                    let value = match parsed {
                        CopyTo::Target(name) => Some(name),
                        CopyTo::None => Some("none"),
                        CopyTo::Default => None,
                    };
                    self.store().set_site_backup_copy_to(site.id, value)?;
                }
                Ok(self.store().site_backup_copy_to(site.id)?)
            }
            None => {
                if let Some(parsed) = parsed {
                    let value = match parsed {
                        CopyTo::Target(name) => Some(name),
                        _ => None,
                    };
                    self.store().set_setting(COPY_TO_KEY, value)?;
                }
                Ok(self.store().setting(COPY_TO_KEY)?)
            }
        }
    }

    /// The target a site's backups are copied to, by its own policy or the default.
    pub(super) fn copy_target_of(&self, site_id: i64) -> Result<Option<BackupTargetRecord>> {
        let name = match self.store().site_backup_copy_to(site_id)? {
            Some(own) => own,
            None => match self.store().setting(COPY_TO_KEY)? {
                Some(default) => default,
                None => return Ok(None),
            },
        };
        if name == "none" {
            return Ok(None);
        }
        Ok(Some(self.store().backup_target(&name)?))
    }

    /// What a backup task on a site needs of backup targets: where its new backup is copied
    /// (`copy`: a backup task, not a removal) and where its old ones' copies are.
    pub(super) fn copy_plan(&self, site_id: i64, copy: bool) -> Result<CopyPlan> {
        Ok(CopyPlan {
            copy_to: if copy {
                self.copy_target_of(site_id)?
            } else {
                None
            },
            targets: self.store().backup_targets()?,
            copies: self.store().site_backup_copies(site_id)?,
            fetch: None,
            keys: self.ssh_keys_dir(),
        })
    }

    /// The target and copy a restore from a target fetches.
    pub(super) fn fetch_plan(&self, from: &FromTarget) -> Result<(BackupTargetRecord, BackupCopy)> {
        let target = self.store().backup_target_by_id(from.target)?;
        let backup = self.store().backup(from.backup_id)?;
        let copy = self
            .store()
            .site_backup_copies(backup.site_id)?
            .into_iter()
            .find(|c| c.backup_id == from.backup_id && c.target_id == from.target)
            .ok_or_else(|| {
                Error::NotFound(
                    format!(
                        "a copy of backup {} on backup target {}",
                        from.backup_id, target.name
                    )
                    .into(),
                )
            })?;
        Ok((target, copy))
    }

    /// Queues a restore of a site from the copy of one of its backups on a backup target (of
    /// its newest backup copied there, if none is named): the copy is fetched and checked by
    /// its SHA-256, then restored as a local backup is.
    pub fn restore_site_from_target(
        &self,
        name: &str,
        backup_id: Option<i64>,
        target: &str,
        dry_run: bool,
    ) -> Result<Queued> {
        let site = self.site(name)?;
        scripts::check_site_status(TaskKind::SiteRestore, &site, false)?;
        let target = self.backup_target(target)?;
        let copies: Vec<BackupCopy> = self
            .store()
            .site_backup_copies(site.id)?
            .into_iter()
            .filter(|c| c.target_id == target.id)
            .collect();
        let copy = match backup_id {
            Some(id) => copies
                .into_iter()
                .find(|c| c.backup_id == id)
                .ok_or_else(|| {
                    Error::NotFound(
                        format!(
                            "a copy of backup {id} of site {} on backup target {}",
                            site.name, target.name
                        )
                        .into(),
                    )
                })?,
            None => copies.into_iter().next().ok_or_else(|| {
                Error::Refused(format!(
                    "backup target {} holds no copy of a backup of site {}",
                    target.name, site.name
                ))
            })?,
        };
        let backup = self.store().backup(copy.backup_id)?;
        let args = TaskArgs::Restore {
            backup: backup.path,
            own: true,
            from_target: Some(FromTarget {
                target: target.id,
                backup_id: copy.backup_id,
            }),
        };
        self.queue(Target::Site(site.id), TaskKind::SiteRestore, args, dry_run)
    }

    /// The copies on backup targets of the backups `backups` lists (a site's, by name).
    pub fn backup_copies(&self, name: &str) -> Result<Vec<BackupCopy>> {
        let host = model::Hostname::parse("site name", name)?;
        match self.site(host.as_str()) {
            Ok(site) => Ok(self.store().site_backup_copies(site.id)?),
            Err(Error::NotFound(_)) => {
                Ok(self.store().backup_copies_by_site_name(host.as_str())?)
            }
            Err(e) => Err(e),
        }
    }
}
