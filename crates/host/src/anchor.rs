//! Where a path stops being fjord's alone. A path is split at its *anchor*: the deepest
//! directory above it that only root (or fjord's own user) can change, reached from `/`
//! through directories that only they can change either. Nothing above the anchor can be
//! swapped by a site's user, so fjord opens the anchor as it is named (following the links an
//! administrator made there); everything below it is reached with [`Root`], beneath the anchor
//! and through no link, so a site's user who swaps a directory it owns for a link (to another
//! site's private dir, to `/etc`) makes the step fail instead of leading it there.
//!
//! A step records its anchor in the journal with its undo, and the undo checks it again before
//! use: a directory that was fjord's at the step (a new site's files dir before they were
//! given to the site's user) may be the site's when the undo runs, and the undo then anchors
//! higher. An undo recorded without an anchor (by an older fjord) is anchored at `/`: no link
//! anywhere on its path is followed.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::beneath::Root;
use crate::{HostError, Result};

/// The anchor of an undo recorded without one: no link on its path is followed.
pub fn strict() -> PathBuf {
    PathBuf::from("/")
}

/// The anchor of `path`: the deepest directory strictly above it that is trusted, as found
/// now. (`path` is made absolute first.)
pub fn anchor_of(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match path.parent() {
        Some(parent) => walk(parent).0,
        None => strict(),
    }
}

/// The anchor that holds every one of `paths` (siblings, usually).
pub fn anchor_of_all(paths: &[&Path]) -> PathBuf {
    let mut anchor = paths.first().map_or_else(strict, |p| anchor_of(p));
    while !paths.iter().all(|p| p.starts_with(&anchor)) {
        match anchor.parent() {
            Some(up) => anchor = up.to_path_buf(),
            None => return strict(),
        }
    }
    anchor
}

/// Opens `anchor` (checked again now: the part of it still trusted) and returns it with
/// `path` relative to it.
pub fn open(anchor: &Path, path: &Path) -> Result<(Root, PathBuf)> {
    let (root, mut rels) = open_all(anchor, &[path])?;
    Ok((root, rels.remove(0)))
}

/// [`open`] for several paths under one anchor.
pub fn open_all(anchor: &Path, paths: &[&Path]) -> Result<(Root, Vec<PathBuf>)> {
    let (held, opened) = walk(anchor);
    let below_held = anchor.strip_prefix(&held).unwrap_or(Path::new(""));
    let mut rels = Vec::with_capacity(paths.len());
    for path in paths {
        let rel = path.strip_prefix(anchor).map_err(|_| {
            HostError::Refused(format!(
                "{} does not lie under {}, the directory it was recorded under",
                path.display(),
                anchor.display()
            ))
        })?;
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(HostError::Refused(format!(
                "{}: only plain names may follow {}",
                path.display(),
                anchor.display()
            )));
        }
        rels.push(below_held.join(rel));
    }
    Ok((Root::open(&opened)?.named(&held), rels))
}

/// Opens the anchor `path` has now, for a forward step or a read: `(root, rel, anchor)`.
pub fn open_now(path: &Path) -> Result<(Root, PathBuf, PathBuf)> {
    let path = std::path::absolute(path).map_err(|e| HostError::io(path, e))?;
    let anchor = anchor_of(&path);
    let (root, rel) = open(&anchor, &path)?;
    Ok((root, rel, anchor))
}

/// Walks `dir` from `/` while every step is trusted: a directory owned by root or fjord's
/// own user that no one else may write, or a link such a user made in one (followed, if every
/// directory it leads through is trusted). Returns how far `dir` was walked (as `dir` names
/// it) and the directory reached (with every link resolved).
fn walk(dir: &Path) -> (PathBuf, PathBuf) {
    let mut held = PathBuf::from("/");
    let mut reached = PathBuf::from("/");
    if !dir.has_root() || !trusted_dir(&reached) {
        return (held, reached);
    }
    for component in dir.components().skip(1) {
        let Component::Normal(name) = component else {
            break;
        };
        let next = reached.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&next) else {
            break;
        };
        if meta.file_type().is_symlink() {
            if !trusted_owner(meta.uid()) {
                break;
            }
            match std::fs::canonicalize(&next) {
                Ok(target) if chain_trusted(&target) => reached = target,
                _ => break,
            }
        } else if trusted_dir(&next) {
            reached = next;
        } else {
            break;
        }
        held.push(name);
    }
    (held, reached)
}

/// Every directory from `/` to `dir` (which has no links) is trusted.
fn chain_trusted(dir: &Path) -> bool {
    let mut at = PathBuf::from("/");
    if !trusted_dir(&at) {
        return false;
    }
    for component in dir.components().skip(1) {
        let Component::Normal(name) = component else {
            return false;
        };
        at.push(name);
        if !trusted_dir(&at) {
            return false;
        }
    }
    true
}

fn trusted_dir(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|meta| {
        meta.file_type().is_dir() && trusted_owner(meta.uid()) && meta.mode() & 0o022 == 0
    })
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == uzers::get_effective_uid()
}

/// A temporary directory whose ancestors are all trusted (unlike those in `/tmp`, which
/// everyone may write): where unit tests see anchors as they are in a data dir.
#[cfg(test)]
pub(crate) fn trusted_tempdir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/unit-tmp");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("anchor-")
        .tempdir_in(base)
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_anchor_stops_at_the_first_directory_someone_else_may_change() {
        let dir = trusted_tempdir();
        let base = dir.path().canonicalize().unwrap();
        let ours = base.join("platform/sites");
        std::fs::create_dir_all(&ours).unwrap();
        let site = ours.join("site.example");
        std::fs::create_dir(&site).unwrap();
        std::fs::create_dir(site.join("sub")).unwrap();
        assert_eq!(anchor_of(&site.join("sub/file")), site.join("sub"));
        // Given to a site's user: everything below it is the site's.
        std::fs::set_permissions(&site, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(anchor_of(&site.join("sub/file")), ours);
        // An anchor recorded while it was trusted is checked again when used.
        let (root, rel) = open(&site.join("sub"), &site.join("sub/file")).unwrap();
        assert_eq!(
            (root.path(), rel.as_path()),
            (ours.as_path(), Path::new("site.example/sub/file"))
        );
    }

    #[test]
    fn a_link_an_administrator_made_is_followed_one_a_site_made_is_not() {
        let dir = trusted_tempdir();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("real/sites")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("srv")).unwrap();
        let (root, rel, _) = open_now(&base.join("srv/sites/file")).unwrap();
        assert_eq!(rel, Path::new("file"));
        root.create_file(&rel, 0o600).unwrap();
        assert!(base.join("real/sites/file").is_file());
        std::fs::remove_file(base.join("real/sites/file")).unwrap();
        // The same link in a directory others may write is not followed.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (root, rel, _) = open_now(&base.join("srv/sites/file")).unwrap();
        assert!(base.starts_with(root.path()) && rel.ends_with("srv/sites/file"));
        assert!(root.create_file(&rel, 0o600).is_err());
        assert!(!base.join("real/sites/file").exists());
    }
}
