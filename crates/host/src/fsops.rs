use std::fs;
use std::path::{Path, PathBuf};

use crate::beneath::Root;

use serde::{Deserialize, Serialize};

use crate::{HostError, Result};

/// A file's content and mode, or `None` if it does not exist. Read beneath its anchor
/// (see `anchor`): a link on the way or at the end is refused.
pub fn read_existing(path: &Path) -> Result<Option<(Vec<u8>, u32)>> {
    let (root, rel, _) = crate::anchor::open_now(path)?;
    read_beneath(&root, &rel)
}

/// Directories reached beneath their anchors once for many files (see `anchor`): a commit of
/// thousands of vhosts in one directory walked from `/`, checking every directory on the way,
/// for each read, journal entry and write of each file (about six walks a file, 9 s of a
/// 2,000-vhost commit on a loaded machine).
#[derive(Default)]
pub struct Anchored {
    /// For each parent directory: its root (opened beneath the anchor), the directory
    /// relative to that root, and the anchor.
    dirs: std::collections::HashMap<PathBuf, (Root, PathBuf, PathBuf)>,
}

impl Anchored {
    /// The root `path` is reached beneath, `path` relative to it, and its anchor.
    pub fn open(&mut self, path: &Path) -> Result<(&Root, PathBuf, &Path)> {
        let path = std::path::absolute(path).map_err(|e| HostError::io(path, e))?;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(HostError::Refused(format!(
                "{} names no file in a directory",
                path.display()
            )));
        };
        if !self.dirs.contains_key(parent) {
            let (root, rel, anchor) = crate::anchor::open_now(&path)?;
            let dir = rel.parent().map(Path::to_path_buf).unwrap_or_default();
            self.dirs.insert(parent.to_path_buf(), (root, dir, anchor));
        }
        let (root, dir, anchor) = &self.dirs[parent];
        Ok((root, dir.join(name), anchor))
    }

    /// [`read_existing`], beneath the directory's root opened once.
    pub fn read_existing(&mut self, path: &Path) -> Result<Option<(Vec<u8>, u32)>> {
        let (root, rel, _) = self.open(path)?;
        read_beneath(root, &rel)
    }

    /// [`crate::beneath::Root::stage_file`] beneath the directory's root opened once: the
    /// file written beside `path`, not synced, not yet in place.
    pub fn stage_atomic(
        &mut self,
        path: &Path,
        contents: &[u8],
        mode: u32,
    ) -> Result<crate::beneath::Staged> {
        let (root, rel, _) = self.open(path)?;
        root.stage_file(&rel, mode, contents)
    }
}

/// [`read_existing`] beneath an open root.
pub fn read_beneath(root: &Root, rel: &Path) -> Result<Option<(Vec<u8>, u32)>> {
    let max = crate::journal::SAVED_FILE_MAX;
    let found = root.read_file(rel, max + 1)?;
    if found.as_ref().is_some_and(|(c, _)| c.len() as u64 > max) {
        return Err(HostError::Refused(format!(
            "{} is larger than {max} bytes; fjord will not replace it",
            root.path().join(rel).display()
        )));
    }
    Ok(found)
}

/// Replaces a file atomically: a reader (nginx, a web request) sees the old or the new
/// content, never a torn one, and a crash leaves one of the two. The file is created with
/// its final mode before its content is written, beneath its anchor (see `anchor`).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let (root, rel, _) = crate::anchor::open_now(path)?;
    root.replace_file_as(&rel, mode, None, &mut &contents[..])
        .map(|_| ())
}

/// Flushes a file and the directory entry that names it to disk.
pub fn sync_file_and_dir(path: &Path) -> Result<()> {
    let sync = |p: &Path| fs::File::open(p).and_then(|f| f.sync_all());
    sync(path).map_err(|e| HostError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync(dir).map_err(|e| HostError::io(dir, e))?;
    }
    Ok(())
}

/// Refuses a directory fjord manages (a docroot, a private dir) that is a symbolic link: it
/// would publish, archive or copy whatever it points to.
pub fn refuse_link(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(HostError::Refused(format!(
            "{} is a symbolic link; fjord manages only real directories (a link could publish \
             files from outside the site). Replace it with a directory, or restore the site",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Removes a file or link beneath its anchor (see `anchor`); nothing if it is gone.
pub fn remove_file(path: &Path) -> Result<()> {
    let (root, rel, _) = crate::anchor::open_now(path)?;
    root.remove_file(&rel)
}

/// The subdirectories of `dir`, listed beneath its anchor (see `anchor`): `dir` or a
/// directory on the way to it that is a link is refused, not followed.
pub fn list_subdirs(dir: &Path) -> Result<Vec<String>> {
    let (root, rel, _) = crate::anchor::open_now(dir)?;
    let mut out: Vec<String> = root
        .list(&rel)?
        .into_iter()
        .filter(|(_, kind)| *kind == rustix::fs::FileType::Directory)
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    out.sort();
    Ok(out)
}

/// The mode and owner of one file, as found before a step changed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeEntry {
    pub path: PathBuf,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The device and inode the step changed: the undo changes that object back, and
    /// nothing that took its name since. (Absent in entries an older fjord wrote.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<(u64, u64)>,
}

/// Who owns a tree of site files, and who else may read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// The owner (default: leave owners as they are).
    pub user: Option<String>,
    /// The group (default: the owner's primary group).
    pub group: Option<String>,
    /// Private: no access for others (dirs 0750, files 0640); else dirs 0755, files 0644.
    pub private: bool,
    /// Directories carry the set-group-id bit (dirs 2750 or 2755): what the site's code
    /// makes in them takes their group (the web server's, which the site's user is not a
    /// member of) instead of the site's own, and a new directory carries the bit on, so the
    /// web server reads a new upload from the moment it is written. Only directories: a file
    /// never gets the bit (it would run with the group).
    pub inherit_group: bool,
}

impl Ownership {
    pub fn describe(&self) -> String {
        let (dirs, files) = match (self.private, self.inherit_group) {
            (true, false) => ("0750", "0640"),
            (true, true) => ("2750", "0640"),
            (false, false) => ("0755", "0644"),
            (false, true) => ("2755", "0644"),
        };
        let mut out = format!("dirs {dirs}, files {files}");
        if let Some(user) = &self.user {
            out.push_str(&format!(", owner {user}"));
        }
        if let Some(group) = &self.group {
            out.push_str(&format!(", group {group}"));
        }
        out
    }

    /// The uid and gid to give, looked up through NSS.
    pub fn ids(&self) -> Result<Option<(u32, u32)>> {
        let Some(user) = &self.user else {
            return Ok(None);
        };
        let (uid, primary) = lookup_user(user)?;
        let gid = match &self.group {
            Some(group) => crate::users::lookup_group(group).ok_or_else(|| {
                HostError::Refused(format!("group {group:?} does not exist on this host"))
            })?,
            None => primary,
        };
        Ok(Some((uid, gid)))
    }
}

/// Removes the temporary files [`write_atomic`] makes (`.<name>.fjord-tmp-<hex>`) from `dir`:
/// those a writer killed before its rename left behind. Only for directories whose writers
/// hold a lock the caller holds.
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".fjord-tmp-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// What [`mode_changes`] found: each entry to change, with the mode it should have, and the
/// files left alone because they have other names.
pub type ModeChanges = (Vec<(ModeEntry, u32)>, Vec<PathBuf>);

/// Entries under `root` (`rel` beneath it) whose mode or owner differ from the wanted ones.
/// Walked beneath `root` without following a link: a site's owner could point one at a
/// system file, or swap a directory for one while this walks. A file with more than one name
/// is left out (and named in the second list): another of its names may be outside the site.
/// Files lose setuid, setgid and sticky bits; directories get setgid only with
/// [`Ownership::inherit_group`].
pub fn mode_changes(
    root: &Root,
    rel: &Path,
    owner: Option<(u32, u32)>,
    ownership: &Ownership,
) -> Result<ModeChanges> {
    use rustix::fs::FileType;
    let (mut dir_mode, file_mode, exec_mode) = if ownership.private {
        (0o750, 0o640, 0o750)
    } else {
        (0o755, 0o644, 0o755)
    };
    if ownership.inherit_group {
        dir_mode |= 0o2000;
    }
    let mut out = Vec::new();
    let mut shared = Vec::new();
    let mut stack = vec![rel.to_path_buf()];
    while let Some(rel) = stack.pop() {
        let path = root.path().join(&rel);
        let Some(stat) = root.stat(&rel)? else {
            continue;
        };
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind == FileType::Symlink {
            continue;
        }
        if kind != FileType::Directory && stat.st_nlink > 1 {
            shared.push(path);
            continue;
        }
        let mode = stat.st_mode & 0o7777;
        let wanted = if kind == FileType::Directory {
            dir_mode
        } else if mode & 0o100 != 0 {
            // Keep the executable bit of scripts; drop group/world write and setuid bits.
            exec_mode
        } else {
            file_mode
        };
        let owner_differs = owner.is_some_and(|(u, g)| stat.st_uid != u || stat.st_gid != g);
        if mode != wanted || owner_differs {
            out.push((
                ModeEntry {
                    path: path.clone(),
                    mode,
                    uid: stat.st_uid,
                    gid: stat.st_gid,
                    inode: Some(crate::beneath::identity(&stat)),
                },
                wanted,
            ));
        }
        if kind == FileType::Directory {
            for (name, _) in root.list(&rel)? {
                stack.push(rel.join(name));
            }
        }
    }
    Ok((out, shared))
}

/// Gives `path` a mode and owner beneath its anchor (see `anchor`): a link, at its end or on
/// the way, is left alone, as is a path that is gone.
pub fn set_mode_owner(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let (root, rel, _) = crate::anchor::open_now(path)?;
    root.set_mode_owner(&rel, mode, owner).map(|_| ())
}

/// Looks a user up through the system's user database (NSS: /etc/passwd, LDAP, …): its uid
/// and primary gid.
pub fn lookup_user(name: &str) -> Result<(u32, u32)> {
    uzers::get_user_by_name(name)
        .map(|u| (u.uid(), u.primary_group_id()))
        .ok_or_else(|| HostError::Refused(format!("user {name:?} does not exist on this host")))
}

#[cfg(test)]
mod stale_tests {
    use super::*;

    #[test]
    fn only_temporaries_a_killed_writer_left_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".a.conf.fjord-tmp-0a1b2c3d",
            "a.conf",
            ".hidden",
            "b.conf.fjord-tmp-1",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        remove_stale_temporaries(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden", "a.conf", "b.conf.fjord-tmp-1"]);
    }
}
