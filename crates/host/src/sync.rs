//! Brings a copy of a site's tree in line with the tree it was copied from, for the last
//! pass of a move: what changed since the copy began is copied again, what is gone is
//! removed. A file counts as changed when its ctime (which no one can set back, unlike the
//! mtime) is not older than the copy; links are copied as links, and only those that stay
//! inside the site; nothing is ever followed.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::beneath::Root;
use crate::{HostError, Result};

/// What a sync did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    pub copied: u64,
    pub bytes: u64,
    pub removed: u64,
}

/// Copies into `to` every file of `from` changed at or after `since_s` (Unix seconds) or
/// missing in `to` and, with `remove_gone`, removes from `to` what `from` no longer has.
pub fn sync_tree(from: &Path, to: &Path, since_s: i64, remove_gone: bool) -> Result<Synced> {
    let root = Root::open(to)?;
    let mut done = Synced::default();
    let pass = Pass {
        from,
        to: &root,
        since_s,
        remove_gone,
    };
    pass.dir(Path::new(""), &mut done)?;
    Ok(done)
}

struct Pass<'a> {
    from: &'a Path,
    to: &'a Root,
    since_s: i64,
    remove_gone: bool,
}

impl Pass<'_> {
    fn dir(&self, rel: &Path, done: &mut Synced) -> Result<()> {
        let (from, to, since_s) = (self.from, self.to, self.since_s);
        let dir = from.join(rel);
        let mut present = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| HostError::io(&dir, e))? {
            let entry = entry.map_err(|e| HostError::io(&dir, e))?;
            let name = entry.file_name();
            present.insert(name.clone());
            let child: PathBuf = rel.join(&name);
            let source = from.join(&child);
            let meta = std::fs::symlink_metadata(&source).map_err(|e| HostError::io(&source, e))?;
            let dest = to.path().join(&child);
            let existing = std::fs::symlink_metadata(&dest).ok();
            let kind = |m: &std::fs::Metadata| {
                let t = m.file_type();
                (t.is_dir(), t.is_file(), t.is_symlink())
            };
            let mut changed = meta.ctime() >= since_s || meta.mtime() >= since_s;
            if !self.remove_gone {
                // The last pass of a move: the new place may have been written since (fjord's
                // own config of the site, or the site itself once switched); a file there
                // newer than the source is kept.
                let stamp = |m: &std::fs::Metadata| (m.ctime(), m.ctime_nsec());
                changed &= existing.as_ref().is_none_or(|e| stamp(e) < stamp(&meta));
            }
            let same_kind = existing.as_ref().is_some_and(|e| kind(e) == kind(&meta));
            if meta.is_dir() {
                if !same_kind {
                    to.remove(&child)?;
                    to.create_dir(&child, meta.mode() & 0o755 | 0o700)?;
                }
                self.dir(&child, done)?;
            } else if meta.is_file() {
                // In the last pass a file newer at the destination counts as the same.
                let unchanged = !changed
                    && existing
                        .as_ref()
                        .is_some_and(|e| e.len() == meta.len() || !self.remove_gone);
                if same_kind && unchanged {
                    continue;
                }
                let mut file = std::fs::File::options()
                    .read(true)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&source)
                    .map_err(|e| HostError::io(&source, e))?;
                if existing.is_some() && !same_kind {
                    to.remove(&child)?;
                }
                let mode = (meta.mode() & 0o755) | 0o600;
                done.bytes += to.replace_file(&child, mode, &mut file)?;
                done.copied += 1;
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&source).map_err(|e| HostError::io(&source, e))?;
                let same = std::fs::read_link(&dest).is_ok_and(|t| t == target);
                if same || !crate::archive::link_stays_inside(&child, &target) {
                    continue;
                }
                to.remove(&child)?;
                to.symlink(&child, &target)?;
                done.copied += 1;
            }
        }
        // What the source no longer has goes.
        let dest_dir = to.path().join(rel);
        if !self.remove_gone {
            return Ok(());
        }
        if let Ok(entries) = std::fs::read_dir(&dest_dir) {
            for entry in entries.flatten() {
                if !present.contains(&entry.file_name()) {
                    to.remove(&rel.join(entry.file_name()))?;
                    done.removed += 1;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_new_files_and_removals_are_brought_over_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        std::fs::create_dir_all(from.join("d")).unwrap();
        std::fs::create_dir_all(to.join("d")).unwrap();
        std::fs::write(from.join("same"), "same").unwrap();
        std::fs::write(to.join("same"), "same").unwrap();
        std::fs::write(from.join("d/changed"), "new").unwrap();
        std::fs::write(to.join("d/changed"), "old").unwrap();
        std::fs::write(from.join("added"), "added").unwrap();
        std::fs::write(to.join("gone"), "gone").unwrap();
        std::os::unix::fs::symlink("same", from.join("inside")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.join("outside")).unwrap();
        let done = sync_tree(&from, &to, 0, true).unwrap();
        assert_eq!(std::fs::read(to.join("d/changed")).unwrap(), b"new");
        assert_eq!(std::fs::read(to.join("added")).unwrap(), b"added");
        assert!(!to.join("gone").exists());
        assert_eq!(
            std::fs::read_link(to.join("inside")).unwrap(),
            Path::new("same")
        );
        assert!(std::fs::symlink_metadata(to.join("outside")).is_err());
        assert_eq!(done.removed, 1);
        // Nothing changed since a later time: only what differs in size or is missing.
        let later = i64::MAX;
        let again = sync_tree(&from, &to, later, true).unwrap();
        assert_eq!(again, Synced::default());
    }
}
