//! Files made strictly beneath a directory. Every path is resolved by the kernel from an
//! open handle on the directory with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (openat2), so
//! neither `..` nor a link leads out: not a link the archive being extracted made a moment
//! before, nor one that another process plants while fjord works. The last component is
//! created with `O_EXCL`, which never follows a link either.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::{HostError, Result};

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

/// An open directory under which paths are created without following any link.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `path`, which must be a directory and not itself a link.
    pub fn open(path: &Path) -> Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| error(path, e))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the directory `rel` with `mode` (exactly: the umask does not narrow it).
    pub fn create_dir(&self, rel: &Path, mode: u32) -> Result<()> {
        let (parent, name) = self.parent(rel)?;
        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(mode))
            .map_err(|e| error(&self.path.join(rel), e))?;
        self.set_dir_mode(rel, mode)
    }

    /// Gives the directory `rel` (the root itself if empty) `mode`.
    pub fn set_dir_mode(&self, rel: &Path, mode: u32) -> Result<()> {
        let full = self.path.join(rel);
        let dir = if rel.as_os_str().is_empty() {
            rustix::io::dup(&self.fd).map_err(|e| error(&full, e))?
        } else {
            rustix::fs::openat2(
                &self.fd,
                rel,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            )
            .map_err(|e| error(&full, e))?
        };
        rustix::fs::fchmod(&dir, Mode::from_raw_mode(mode)).map_err(|e| error(&full, e))
    }

    /// Creates the file `rel`, which must not exist, with `mode`; returns it open for writing.
    pub fn create_file(&self, rel: &Path, mode: u32) -> Result<File> {
        let full = self.path.join(rel);
        let (parent, name) = self.parent(rel)?;
        let fd = rustix::fs::openat(
            &parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| error(&full, e))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| error(&full, e))?;
        Ok(File::from(fd))
    }

    /// Makes `rel` a symbolic link to `target` (the link is made, never followed).
    pub fn symlink(&self, rel: &Path, target: &Path) -> Result<()> {
        let (parent, name) = self.parent(rel)?;
        rustix::fs::symlinkat(target, &parent, name).map_err(|e| error(&self.path.join(rel), e))
    }

    /// Gives `rel` (the root itself if empty) `mode` and, if given, an owner. A link, at `rel`
    /// or on the way to it, is never followed or changed: `Ok(false)` then, as when `rel` is
    /// gone.
    pub fn set_mode_owner(&self, rel: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<bool> {
        let full = self.path.join(rel);
        let fd = if rel.as_os_str().is_empty() {
            rustix::io::dup(&self.fd)
        } else {
            rustix::fs::openat2(
                &self.fd,
                rel,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            )
        };
        let fd = match fd {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOENT) => return Ok(false),
            Err(e) => return Err(error(&full, e)),
        };
        if let Some((uid, gid)) = owner {
            rustix::fs::fchown(
                &fd,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .map_err(|e| error(&full, e))?;
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| error(&full, e))?;
        Ok(true)
    }

    /// Writes `rel` whole from `content` with `mode`, replacing what is there (a file or a
    /// link) in one rename: a reader sees the old file or the new one.
    pub fn replace_file(
        &self,
        rel: &Path,
        mode: u32,
        content: &mut dyn std::io::Read,
    ) -> Result<u64> {
        let full = self.path.join(rel);
        let (parent, name) = self.parent(rel)?;
        let mut tmp_name = std::ffi::OsString::from(".fjord-sync-");
        tmp_name.push(crate::random_hex(4));
        let fd = rustix::fs::openat(
            &parent,
            &tmp_name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| error(&full, e))?;
        let written = (|| {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            let mut out = File::from(fd);
            let n = std::io::copy(content, &mut out).map_err(|e| {
                rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO)
            })?;
            rustix::fs::renameat(&parent, &tmp_name, &parent, name)?;
            Ok(n)
        })();
        written.map_err(|e| {
            let _ = rustix::fs::unlinkat(&parent, &tmp_name, rustix::fs::AtFlags::empty());
            error(&full, e)
        })
    }

    /// Removes `rel` (a file, a link, or a directory with everything in it); nothing if it is
    /// gone. Links are removed, never followed.
    pub fn remove(&self, rel: &Path) -> Result<()> {
        let full = self.path.join(rel);
        let (parent, name) = self.parent(rel)?;
        match rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(rustix::io::Errno::ISDIR) => {
                for entry in std::fs::read_dir(&full).map_err(|e| HostError::io(&full, e))? {
                    let entry = entry.map_err(|e| HostError::io(&full, e))?;
                    self.remove(&rel.join(entry.file_name()))?;
                }
                rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::REMOVEDIR)
                    .map_err(|e| error(&full, e))
            }
            Err(e) => Err(error(&full, e)),
        }
    }

    /// The directory that holds `rel`, opened beneath the root, and `rel`'s last component.
    fn parent<'a>(&self, rel: &'a Path) -> Result<(OwnedFd, &'a OsStr)> {
        let full = self.path.join(rel);
        let name = rel
            .file_name()
            .ok_or_else(|| HostError::Refused(format!("{} names no file", full.display())))?;
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let fd = rustix::fs::openat2(
            &self.fd,
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|e| error(&full, e))?;
        Ok((fd, name))
    }
}

fn error(path: &Path, errno: rustix::io::Errno) -> HostError {
    match errno {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => HostError::Refused(format!(
            "{}: a link or `..` on the way out of {}; fjord never follows one",
            path.display(),
            path.parent().unwrap_or(path).display()
        )),
        other => HostError::io(path, other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_made_through_a_link_or_above_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let root_path = dir.path().join("root");
        std::fs::create_dir(&root_path).unwrap();
        let root = Root::open(&root_path).unwrap();
        root.symlink(Path::new("out"), &outside).unwrap();
        root.symlink(Path::new("up"), Path::new("../outside"))
            .unwrap();
        for rel in ["out/file", "up/file", "../outside/file", "out"] {
            assert!(root.create_file(Path::new(rel), 0o644).is_err(), "{rel}");
            assert!(root.create_dir(Path::new(rel), 0o755).is_err(), "{rel}");
        }
        assert!(root.symlink(Path::new("out/link"), Path::new("/")).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        root.create_dir(Path::new("d"), 0o750).unwrap();
        root.create_file(Path::new("d/f"), 0o600).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(root_path.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!((mode("d"), mode("d/f")), (0o750, 0o600));
    }
}
