//! Brings a copy of a site's tree in line with the tree it was copied from, for the last
//! pass of a move: what changed since the copy began is copied again, what is gone is
//! removed. A file counts as changed when its ctime (which no one can set back, unlike the
//! mtime) is not older than the copy; links are copied as links, and only those that stay
//! inside the site; nothing is ever followed.

use std::path::{Path, PathBuf};

use crate::Result;
use crate::beneath::Root;

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
    // The source is a site's own tree, which its user may change while this reads it as
    // root: it is read beneath the directory above it that no site's user can change, through
    // no link, so a directory swapped for a link is refused instead of copied from.
    let (source, from_rel, _) = crate::anchor::open_now(from)?;
    let mut done = Synced::default();
    let pass = Pass {
        from: &source,
        from_rel: &from_rel,
        to: &root,
        since_s,
        remove_gone,
    };
    pass.dir(Path::new(""), &mut done)?;
    Ok(done)
}

struct Pass<'a> {
    from: &'a Root,
    from_rel: &'a Path,
    to: &'a Root,
    since_s: i64,
    remove_gone: bool,
}

impl Pass<'_> {
    fn dir(&self, rel: &Path, done: &mut Synced) -> Result<()> {
        use rustix::fs::FileType;
        let (from, to, since_s) = (self.from, self.to, self.since_s);
        let kind = |s: &rustix::fs::Stat| FileType::from_raw_mode(s.st_mode);
        let mut present = std::collections::BTreeSet::new();
        for (name, _) in from.list(&self.from_rel.join(rel))? {
            present.insert(name.clone());
            let child: PathBuf = rel.join(&name);
            let source = self.from_rel.join(&child);
            let Some(meta) = from.stat(&source)? else {
                continue;
            };
            let existing = to.stat(&child)?;
            let mut changed = meta.st_ctime >= since_s || meta.st_mtime >= since_s;
            if !self.remove_gone {
                // The last pass of a move: the new place may have been written since (fjord's
                // own config of the site, or the site itself once switched); a file there
                // newer than the source is kept.
                let stamp = |m: &rustix::fs::Stat| (m.st_ctime, m.st_ctime_nsec);
                changed &= existing.as_ref().is_none_or(|e| stamp(e) < stamp(&meta));
            }
            let same_kind = existing.as_ref().is_some_and(|e| kind(e) == kind(&meta));
            let mode = meta.st_mode & 0o7777;
            match kind(&meta) {
                FileType::Directory => {
                    if !same_kind {
                        to.remove(&child)?;
                        to.create_dir(&child, mode & 0o755 | 0o700)?;
                    }
                    self.dir(&child, done)?;
                }
                FileType::RegularFile => {
                    // In the last pass a file newer at the destination counts as the same.
                    let unchanged = !changed
                        && existing
                            .as_ref()
                            .is_some_and(|e| e.st_size == meta.st_size || !self.remove_gone);
                    if same_kind && unchanged {
                        continue;
                    }
                    let Some(mut file) = from.open_file(&source)? else {
                        continue;
                    };
                    if existing.is_some() && !same_kind {
                        to.remove(&child)?;
                    }
                    done.bytes += to.replace_file(&child, (mode & 0o755) | 0o600, &mut file)?;
                    done.copied += 1;
                }
                FileType::Symlink => {
                    let target = from.read_link(&source)?;
                    let same = to.read_link(&child).is_ok_and(|t| t == target);
                    if same || !crate::archive::link_stays_inside(&child, &target) {
                        continue;
                    }
                    to.remove(&child)?;
                    to.symlink(&child, &target)?;
                    done.copied += 1;
                }
                _ => {}
            }
        }
        // What the source no longer has goes.
        if !self.remove_gone {
            return Ok(());
        }
        for (name, _) in to.list(rel)? {
            if !present.contains(&name) {
                to.remove(&rel.join(name))?;
                done.removed += 1;
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

    #[test]
    fn a_source_directory_swapped_for_a_link_is_never_copied_from() {
        let dir = tempfile::tempdir().unwrap();
        let (site, to, victim) = (
            dir.path().join("site"),
            dir.path().join("to"),
            dir.path().join("victim"),
        );
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("settings.php"), "victim's secret").unwrap();
        std::fs::create_dir_all(&site).unwrap();
        std::fs::create_dir_all(to.join("sub")).unwrap();
        std::os::unix::fs::symlink(&victim, site.join("sub")).unwrap();
        assert!(sync_tree(&site.join("sub"), &to.join("sub"), 0, true).is_err());
        assert_eq!(std::fs::read_dir(to.join("sub")).unwrap().count(), 0);
    }
}
