//! The steps that reach a backup target: a backup's copy made there (undone by removing it),
//! and a copy fetched back for a restore (undone by removing what was fetched).

use std::path::{Path, PathBuf};

use super::*;
use crate::remote::SshKeys;
use crate::remote::targets::{self, Copied, TargetAddress};

/// A backup archive to copy to a backup target.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TargetCopy {
    pub target: TargetAddress,
    /// fjord's SSH key dir (its key and the known-hosts files it writes).
    pub keys: PathBuf,
    /// The local archive.
    pub archive: PathBuf,
    /// The copy's path on the target.
    pub path: String,
}

/// A copy on a backup target to fetch for a restore.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TargetFetch {
    pub target: TargetAddress,
    pub keys: PathBuf,
    /// The copy's path on the target.
    pub path: String,
    /// Its SHA-256 as recorded when it was copied.
    pub sha256: String,
    /// Where to keep it (the backup's own path, when the local archive is gone); None: the
    /// task's scratch dir, removed with it.
    pub keep_at: Option<PathBuf>,
}

impl LiveSteps<'_> {
    pub(super) fn copy_to_target(&mut self, copy: &TargetCopy) -> Result<Copied> {
        let keys = SshKeys::new(copy.keys.clone());
        let dir = copy.path.rsplit_once('/').map_or("/", |(dir, _)| dir);
        // Reached (and its host key checked) before anything is journaled: a target that
        // cannot be reached fails the step with nothing to undo there.
        targets::reach(&keys, &copy.target, dir)?;
        let what = format!(
            "copy backup {} to backup target {} as {}",
            copy.archive.display(),
            copy.target.name,
            copy.path
        );
        let undo = Undo::RemoveTargetCopy {
            target: copy.target.clone(),
            keys: copy.keys.clone(),
            path: copy.path.clone(),
        };
        self.record(&what, &undo, None)?;
        let copied = targets::copy_to(&keys, &copy.target, &copy.archive, &copy.path)?;
        self.journal.log(&format!(
            "copied {} bytes to backup target {}, SHA-256 {} checked there",
            copied.size, copy.target.name, copied.sha256
        ));
        self.after_step(&what)?;
        Ok(copied)
    }

    pub(super) fn fetch_from_target(&mut self, fetch: &TargetFetch) -> Result<PathBuf> {
        let local = match &fetch.keep_at {
            Some(path) => path.clone(),
            None => {
                crate::ensure_dir(&self.scratch)?;
                self.scratch
                    .join(format!("fetched-{}.tar.zst", crate::random_hex(4)))
            }
        };
        if let Some(parent) = local.parent() {
            crate::ensure_private_dir(parent)?;
        }
        let what = format!(
            "fetch {} from backup target {} to {}",
            fetch.path,
            fetch.target.name,
            local.display()
        );
        let undo = Undo::RestoreFile {
            path: local.clone(),
            existed: false,
            mode: 0,
            beneath: Some(crate::anchor::anchor_of(&local)),
        };
        self.record(&what, &undo, None)?;
        let keys = SshKeys::new(fetch.keys.clone());
        let size = targets::fetch(&keys, &fetch.target, &fetch.path, &fetch.sha256, &local)?;
        self.journal.log(&format!(
            "fetched {size} bytes from backup target {}, SHA-256 {} checked",
            fetch.target.name, fetch.sha256
        ));
        self.after_step(&what)?;
        Ok(local)
    }

    pub(super) fn remove_from_target(&mut self, target: &TargetAddress, keys: &Path, path: &str) {
        let keys = SshKeys::new(keys.to_path_buf());
        match targets::remove_copy(&keys, target, path) {
            Ok(()) => self.journal.log(&format!(
                "removed {path} from backup target {}",
                target.name
            )),
            Err(e) => self.journal.log(&format!(
                "the copy {path} stays on backup target {} (fjord forgets it): {e}",
                target.name
            )),
        }
    }
}
