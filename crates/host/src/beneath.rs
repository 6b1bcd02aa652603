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

    /// The same directory, named `path` in messages and in the paths built from it (the
    /// name it had before the links to it were resolved).
    pub fn named(self, path: &Path) -> Root {
        Root {
            fd: self.fd,
            path: path.to_path_buf(),
        }
    }

    /// Makes the directory `rel` with `mode` (exactly: the umask does not narrow it).
    pub fn create_dir(&self, rel: &Path, mode: u32) -> Result<()> {
        let (parent, name) = self.parent(rel)?;
        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(mode))
            .map_err(|e| error(&self.path.join(rel), e))?;
        self.set_dir_mode(rel, mode)
    }

    /// `rel` opened beneath the root with `flags` (the root itself, again, if `rel` is empty).
    fn open_beneath(
        &self,
        rel: &Path,
        flags: OFlags,
    ) -> std::result::Result<rustix::fd::OwnedFd, rustix::io::Errno> {
        if rel.as_os_str().is_empty() {
            rustix::io::dup(&self.fd)
        } else {
            rustix::fs::openat2(&self.fd, rel, flags, Mode::empty(), RESOLVE)
        }
    }

    /// Gives the directory `rel` (the root itself if empty) `mode`.
    pub fn set_dir_mode(&self, rel: &Path, mode: u32) -> Result<()> {
        let full = self.path.join(rel);
        let dir = self
            .open_beneath(rel, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC)
            .map_err(|e| error(&full, e))?;
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
    /// gone. Only a directory keeps setuid or setgid bits of `mode`.
    pub fn set_mode_owner(&self, rel: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<bool> {
        self.set_mode_owner_of(rel, mode, owner, None)
    }

    /// [`Root::set_mode_owner`], and only if `rel` is still the object `inode` (device,
    /// inode) names: an undo gives back the mode and owner of what its step changed, never of
    /// something put in its place since (another name for another site's file).
    pub fn set_mode_owner_of(
        &self,
        rel: &Path,
        mode: u32,
        owner: Option<(u32, u32)>,
        inode: Option<(u64, u64)>,
    ) -> Result<bool> {
        let full = self.path.join(rel);
        let fd = self.open_beneath(
            rel,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        );
        let fd = match fd {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOENT) => return Ok(false),
            Err(e) => return Err(error(&full, e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| error(&full, e))?;
        if inode.is_some_and(|inode| identity(&stat) != inode) {
            return Ok(false);
        }
        // Never setuid or setgid on anything but a directory, not even as an undo gives a
        // mode back: while a step had given the file to a site's user, the site could have
        // written it, and the bit would then run the site's code with another's ids.
        let is_dir =
            rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory;
        let mode = if is_dir { mode } else { mode & !0o6000 };
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
        self.replace_file_as(rel, mode, None, content)
    }

    /// [`Root::replace_file`], the new file owned by `owner` if given. The temporary file is
    /// created with its final mode and given its owner before a byte is written, so the
    /// content (a secret, often) is never readable by anyone it is not meant for, not even
    /// for a moment; it is synced before the rename.
    pub fn replace_file_as(
        &self,
        rel: &Path,
        mode: u32,
        owner: Option<(u32, u32)>,
        content: &mut dyn std::io::Read,
    ) -> Result<u64> {
        let full = self.path.join(rel);
        let (parent, name) = self.parent(rel)?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(".fjord-tmp-");
        tmp_name.push(crate::random_hex(4));
        // Only the owner may touch it until it has its final mode and owner.
        let fd = rustix::fs::openat(
            &parent,
            &tmp_name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o700),
        )
        .map_err(|e| error(&full, e))?;
        let written = (|| {
            creation_hook(&fd);
            if let Some((uid, gid)) = owner {
                rustix::fs::fchown(
                    &fd,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )?;
            }
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            let mut out = File::from(fd);
            let n = std::io::copy(content, &mut out).map_err(|e| {
                rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO)
            })?;
            out.sync_all().map_err(|e| {
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

    /// Writes `content` to a temporary file beside `rel`, with its final mode, and neither
    /// syncs it nor puts it in place: a commit of many files writes them all, syncs them at
    /// once ([`Staged::sync_filesystem`]) and then puts each in place ([`Staged::put_in_place`]),
    /// where [`Root::replace_file`] syncs every file on its own. Dropped before it is put in
    /// place, the temporary file is removed.
    pub fn stage_file(&self, rel: &Path, mode: u32, content: &[u8]) -> Result<Staged> {
        let full = self.path.join(rel);
        let (parent, name) = self.parent(rel)?;
        let mut tmp = std::ffi::OsString::from(".");
        tmp.push(name);
        tmp.push(".fjord-tmp-");
        tmp.push(crate::random_hex(4));
        let fd = rustix::fs::openat(
            &parent,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o700),
        )
        .map_err(|e| error(&full, e))?;
        let staged = Staged {
            parent,
            tmp,
            name: name.to_os_string(),
            full,
            placed: false,
        };
        let written = (|| {
            creation_hook(&fd);
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            std::io::Write::write_all(&mut File::from(fd), content)
                .map_err(|e| rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO))
        })();
        written.map_err(|e| error(&staged.full, e))?;
        Ok(staged)
    }

    /// What `rel` is (never through a link: a link is reported as one), `None` if it is gone.
    pub fn stat(&self, rel: &Path) -> Result<Option<rustix::fs::Stat>> {
        let full = self.path.join(rel);
        let found = if rel.as_os_str().is_empty() {
            rustix::fs::fstat(&self.fd)
        } else {
            let (parent, name) = match self.parent(rel) {
                Ok(p) => p,
                Err(HostError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            rustix::fs::statat(&parent, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        };
        match found {
            Ok(stat) => Ok(Some(stat)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(error(&full, e)),
        }
    }

    /// Whether `rel` is a directory (a link to one is not).
    pub fn is_dir(&self, rel: &Path) -> Result<bool> {
        Ok(self.stat(rel)?.is_some_and(|s| {
            rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Directory
        }))
    }

    /// The content (at most `max` bytes) and mode of the regular file `rel`, `None` if it
    /// is gone. A link, at `rel` or on the way, is refused, as is anything but a regular file.
    pub fn read_file(&self, rel: &Path, max: u64) -> Result<Option<(Vec<u8>, u32)>> {
        use std::io::Read;
        let Some(file) = self.open_file(rel)? else {
            return Ok(None);
        };
        let full = self.path.join(rel);
        let mode = file.metadata().map_err(|e| HostError::io(&full, e))?;
        let mut content = Vec::new();
        file.take(max)
            .read_to_end(&mut content)
            .map_err(|e| HostError::io(&full, e))?;
        use std::os::unix::fs::PermissionsExt;
        Ok(Some((content, mode.permissions().mode() & 0o7777)))
    }

    /// The regular file `rel` open for reading, `None` if it is gone. A link, at `rel` or on
    /// the way, is refused, as is anything but a regular file.
    pub fn open_file(&self, rel: &Path) -> Result<Option<File>> {
        let full = self.path.join(rel);
        let fd = match rustix::fs::openat2(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(error(&full, e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| error(&full, e))?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(HostError::Refused(format!(
                "{} is not a regular file; fjord reads only regular files",
                full.display()
            )));
        }
        Ok(Some(File::from(fd)))
    }

    /// Where the link `rel` points (read, never followed).
    pub fn read_link(&self, rel: &Path) -> Result<PathBuf> {
        use std::os::unix::ffi::OsStrExt;
        let (parent, name) = self.parent(rel)?;
        let target = rustix::fs::readlinkat(&parent, name, Vec::new())
            .map_err(|e| error(&self.path.join(rel), e))?;
        Ok(PathBuf::from(OsStr::from_bytes(target.as_bytes())))
    }

    /// The names in the directory `rel` with whether each is a directory and whether a
    /// regular file (links are neither); nothing if it is gone.
    pub fn list(&self, rel: &Path) -> Result<Vec<(std::ffi::OsString, rustix::fs::FileType)>> {
        use std::os::unix::ffi::OsStrExt;
        let full = self.path.join(rel);
        let fd = self.open_beneath(
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        );
        let fd = match fd {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
            Err(e) => return Err(error(&full, e)),
        };
        let dir = rustix::fs::Dir::read_from(&fd).map_err(|e| error(&full, e))?;
        let mut out = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| error(&full, e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name).to_os_string();
            let kind = match entry.file_type() {
                rustix::fs::FileType::Unknown => {
                    match rustix::fs::statat(
                        &fd,
                        name.as_os_str(),
                        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                    ) {
                        Ok(s) => rustix::fs::FileType::from_raw_mode(s.st_mode),
                        Err(_) => continue,
                    }
                }
                known => known,
            };
            out.push((name, kind));
        }
        Ok(out)
    }

    /// Removes the file or link `rel`; nothing if it is gone. A directory is refused.
    pub fn remove_file(&self, rel: &Path) -> Result<()> {
        let full = self.path.join(rel);
        let (parent, name) = self.parent(rel)?;
        match rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(error(&full, e)),
        }
    }

    /// Removes the directory `rel` if it is empty; nothing if it is gone.
    pub fn remove_empty_dir(&self, rel: &Path) -> Result<()> {
        let full = self.path.join(rel);
        let (parent, name) = self.parent(rel)?;
        match rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::REMOVEDIR) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(error(&full, e)),
        }
    }

    /// Renames `from` to `to`, both beneath the root (what `to` names, if a link, is
    /// replaced, never followed).
    pub fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let (from_parent, from_name) = self.parent(from)?;
        let (to_parent, to_name) = self.parent(to)?;
        rustix::fs::renameat(&from_parent, from_name, &to_parent, to_name)
            .map_err(|e| error(&self.path.join(to), e))
    }

    /// Exchanges `a` and `b` in one atomic step (`renameat2(RENAME_EXCHANGE)`), both beneath
    /// the root: whoever looks sees both names at every moment.
    pub fn exchange(&self, a: &Path, b: &Path) -> Result<()> {
        let (a_parent, a_name) = self.parent(a)?;
        let (b_parent, b_name) = self.parent(b)?;
        rustix::fs::renameat_with(
            &a_parent,
            a_name,
            &b_parent,
            b_name,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(|e| error(&self.path.join(a), e))
    }

    /// Removes `rel` (a file, a link, or a directory with everything in it); nothing if it is
    /// gone. Links are removed, never followed.
    pub fn remove(&self, rel: &Path) -> Result<()> {
        let full = self.path.join(rel);
        let (parent, name) = self.parent(rel)?;
        match rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(rustix::io::Errno::ISDIR) => {
                // Listed through a handle opened beneath the root: a directory swapped for a
                // link meanwhile is refused, not listed.
                for (entry, _) in self.list(rel)? {
                    self.remove(&rel.join(entry))?;
                }
                match rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::REMOVEDIR) {
                    Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
                    Err(e) => Err(error(&full, e)),
                }
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

/// A file written beside the one it replaces (see [`Root::stage_file`]).
pub struct Staged {
    parent: OwnedFd,
    tmp: std::ffi::OsString,
    name: std::ffi::OsString,
    full: PathBuf,
    placed: bool,
}

impl Staged {
    /// Flushes every file written on the file system that holds this one: one sync for all
    /// the files a commit stages, before any is put in place.
    pub fn sync_filesystem(&self) -> Result<()> {
        let dir = rustix::fs::openat(
            &self.parent,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .and_then(rustix::fs::syncfs);
        dir.map_err(|e| error(&self.full, e))
    }

    /// Renames the file over the one it replaces.
    pub fn put_in_place(mut self) -> Result<()> {
        rustix::fs::renameat(&self.parent, &self.tmp, &self.parent, &self.name)
            .map_err(|e| error(&self.full, e))?;
        self.placed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.placed {
            let _ = rustix::fs::unlinkat(&self.parent, &self.tmp, rustix::fs::AtFlags::empty());
        }
    }
}

/// A file's device and inode: what it is, whatever it is named.
#[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
pub fn identity(stat: &rustix::fs::Stat) -> (u64, u64) {
    (stat.st_dev as u64, u64::from(stat.st_ino))
}

/// What tests hook into file creation.
#[cfg(test)]
pub(crate) type CreationHook = Option<Box<dyn Fn(&OwnedFd)>>;

#[cfg(test)]
thread_local! {
    /// Called with each temporary file [`Root::replace_file_as`] creates, before it is given
    /// its owner and content: tests look at its mode there.
    pub(crate) static ON_CREATE: std::cell::RefCell<CreationHook> =
        const { std::cell::RefCell::new(None) };
}

fn creation_hook(_fd: &OwnedFd) {
    #[cfg(test)]
    ON_CREATE.with(|hook| {
        if let Some(hook) = hook.borrow().as_ref() {
            hook(_fd)
        }
    });
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
