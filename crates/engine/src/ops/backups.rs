//! Backups: list, delete, restore.

use model::{AbsPath, Hostname, Target, TaskArgs, TaskKind};

use super::*;
use crate::scripts::{self};
use crate::{Error, Fjord, Result};

impl Fjord {
    /// A site's backups, newest first, whatever name it had when each was taken; a deleted
    /// site's stay listed under its name.
    pub fn backups(&self, name: &str) -> Result<Vec<store::Backup>> {
        let host = Hostname::parse("site name", name)?;
        match self.site(host.as_str()) {
            Ok(site) => Ok(self.store().site_backups(site.id)?),
            Err(Error::NotFound(_)) => Ok(self.store().backups(host.as_str())?),
            Err(e) => Err(e),
        }
    }

    /// Queues a restore from one of the site's backups (the newest if none is named), or from
    /// an archive file. The archive is checked whole before anything changes.
    pub fn restore_site(
        &self,
        name: &str,
        backup_id: Option<i64>,
        file: Option<&str>,
        dry_run: bool,
    ) -> Result<Queued> {
        let site = self.site(name)?;
        scripts::check_site_status(TaskKind::SiteRestore, &site, false)?;
        let path = match (backup_id, file) {
            (Some(_), Some(_)) => {
                return Err(Error::Refused("give --backup or --file, not both".into()));
            }
            (_, Some(file)) => AbsPath::parse("backup file", file)?.to_string(),
            (Some(id), None) => {
                // Another site's backup answers exactly as one that does not exist: whether
                // an id is taken, and by whom, is not the asker's to learn.
                let not_found =
                    || Error::NotFound(format!("backup {id} of site {}", site.name).into());
                match self.store().backup(id) {
                    Ok(backup) if backup.site_id == site.id => backup.path,
                    Ok(_) | Err(store::StoreError::NotFound(_)) => return Err(not_found()),
                    Err(e) => return Err(e.into()),
                }
            }
            (None, None) => {
                self.store()
                    .site_backups(site.id)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Refused(format!("site {} has no backups", site.name)))?
                    .path
            }
        };
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(Error::Refused(format!(
                    "backup file {path} is not a regular file; a backup is read only from one"
                )));
            }
            Err(_) => return Err(Error::Refused(format!("backup file {path} does not exist"))),
        }
        // One of the site's own backups may carry a name the site had before a rename.
        let args = TaskArgs::Restore {
            backup: path,
            own: file.is_none(),
            from_target: None,
        };
        self.queue(Target::Site(site.id), TaskKind::SiteRestore, args, dry_run)
    }
}
