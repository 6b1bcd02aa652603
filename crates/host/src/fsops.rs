use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{HostError, Result};

/// A file's content and mode, or `None` if it does not exist.
pub fn read_existing(path: &Path) -> Result<Option<(Vec<u8>, u32)>> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => {
            let data = fs::read(path).map_err(|e| HostError::io(path, e))?;
            Ok(Some((data, meta.permissions().mode() & 0o7777)))
        }
        Ok(_) => Err(HostError::Refused(format!(
            "{} exists and is not a regular file; fjord will not replace it",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HostError::io(path, e)),
    }
}

/// Replaces a file atomically: a reader (nginx, a web request) sees the old or the new
/// content, never a torn one, and a crash leaves one of the two.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| HostError::Refused(format!("{} has no parent", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.fjord-tmp-{}", crate::random_hex(4)));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(HostError::io(path, e));
    }
    Ok(())
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

pub fn remove_file(path: &Path) -> Result<()> {
    crate::remove_file_if_exists(path)
}

pub fn list_subdirs(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(HostError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| HostError::io(dir, e))?;
        let ty = entry
            .file_type()
            .map_err(|e| HostError::io(&entry.path(), e))?;
        if ty.is_dir() {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
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
}

/// Who owns a tree of site files, and who else may read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// The owner (default: leave owners as they are).
    pub user: Option<String>,
    /// The group (default: the owner's primary group).
    pub group: Option<String>,
    /// Private: no access for others (dirs 0750, files 0640); else dirs 0755, files 0644.
    pub private: bool,
}

impl Ownership {
    pub fn describe(&self) -> String {
        let (dirs, files) = if self.private {
            ("0750", "0640")
        } else {
            ("0755", "0644")
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

/// Entries under `root` whose mode or owner differ from the wanted ones. Symlinks are never
/// followed or changed: a site's owner could point one at a system file.
pub fn mode_changes(
    root: &Path,
    owner: Option<(u32, u32)>,
    private: bool,
) -> Result<Vec<(ModeEntry, u32)>> {
    let (dir_mode, file_mode, exec_mode) = if private {
        (0o750, 0o640, 0o750)
    } else {
        (0o755, 0o644, 0o755)
    };
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).map_err(|e| HostError::io(&path, e))?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        let wanted = if meta.is_dir() {
            dir_mode
        } else if mode & 0o100 != 0 {
            // Keep the executable bit of scripts; drop group/world write and setuid bits.
            exec_mode
        } else {
            file_mode
        };
        let owner_differs = owner.is_some_and(|(u, g)| meta.uid() != u || meta.gid() != g);
        if mode != wanted || owner_differs {
            out.push((
                ModeEntry {
                    path: path.clone(),
                    mode,
                    uid: meta.uid(),
                    gid: meta.gid(),
                },
                wanted,
            ));
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&path).map_err(|e| HostError::io(&path, e))? {
                stack.push(entry.map_err(|e| HostError::io(&path, e))?.path());
            }
        }
    }
    Ok(out)
}

/// Gives `path` a mode and owner through a handle opened without following a link at its
/// end (a link is left alone, as is a path that is gone).
pub fn set_mode_owner(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    use rustix::fs::{Mode, OFlags};
    let fd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(HostError::io(path, e.into())),
    };
    if let Some((uid, gid)) = owner {
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(|e| HostError::io(path, e.into()))?;
    }
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| HostError::io(path, e.into()))
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
