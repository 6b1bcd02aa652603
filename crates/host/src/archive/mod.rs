//! Site backups: one `.tar.zst` per backup holding `files/` (the docroot), `private/` (the
//! site's private dir), the database dump, and `manifest.json` last, with the size and sha256
//! of every member. Everything streams: no member is held whole in memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{HostError, Result};

pub const MANIFEST: &str = "manifest.json";
/// The archive layout this fjord writes. 2: the MariaDB dump and tablespaces are members
/// compressed on their own (`database.sql.zst`, `*.ibd.zst`). Older layouts are read too.
pub const FORMAT: u32 = 2;
const ZSTD_LEVEL: i32 = 3;
const JOB_SIZE: u32 = 2 << 20;
/// The level of the database members, compressed on the database thread as they are made
/// (the dump as it streams, the tables as they are copied under lock). On a 182 MB dump
/// and its 218 MB tablespace, level 1 took half the CPU of level 3 and its output was 7%
/// smaller.
pub(crate) const DB_ZSTD_LEVEL: i32 = 1;

#[cfg(test)]
mod attack_tests;
mod extract;
pub(crate) use extract::link_stays_inside;
pub use extract::{extract_backup, extract_backup_from, open_archive};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's name as text, for people (lossy if it is not UTF-8).
    pub name: String,
    /// File names are bytes: the exact name, hex-encoded, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_hex: Option<String>,
    pub size: u64,
    pub sha256: String,
}

impl Member {
    pub fn new(name: &Path, size: u64, sha256: String) -> Member {
        use std::os::unix::ffi::OsStrExt;
        let name_hex = name
            .to_str()
            .is_none()
            .then(|| hex(name.as_os_str().as_bytes()));
        Member {
            name: name.to_string_lossy().into_owned(),
            name_hex,
            size,
            sha256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub fjord_version: String,
    pub site: String,
    pub platform: String,
    pub platform_kind: String,
    pub db_engine: Option<String>,
    /// The member holding the database, if any.
    pub db_member: Option<String>,
    pub created_at: String,
    pub members: Vec<Member>,
}

/// What goes into a backup.
pub struct BackupSource<'a> {
    pub docroot: &'a Path,
    pub private: Option<&'a Path>,
    /// A file inside `private` left out (the live SQLite file: its consistent copy is `db`).
    pub skip_in_private: Option<&'a Path>,
    /// The database dump (or SQLite copy) and its member name.
    pub db: Option<(&'a Path, &'a str)>,
    /// InnoDB tablespaces of the database, archived under [`TABLESPACES`] if the directory
    /// exists once the dump is ready.
    pub db_tablespaces: PathBuf,
}

/// The member directory of a backup's InnoDB tablespaces.
pub const TABLESPACES: &str = "database.innodb";

struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> HostError + '_ {
    move |e| HostError::io(path, e)
}

/// An error of appending `source` to the archive `out`: a full disk is the archive's.
fn append_err<'a>(source: &'a Path, out: &'a Path) -> impl Fn(io::Error) -> HostError + 'a {
    move |e| {
        if crate::error::is_no_space(&e) {
            HostError::io(out, e)
        } else {
            HostError::io(source, e)
        }
    }
}

/// Writes the archive to `out` (which must not exist); returns its manifest.
///
/// The database is dumped while the files are archived: `tablespaces_ready` is called
/// before its tablespaces are added (if their directory exists then), `db_ready` before
/// the dump is.
pub fn write_backup(
    out: &Path,
    manifest: Manifest,
    source: &BackupSource,
    tablespaces_ready: &mut dyn FnMut(),
    db_ready: &mut dyn FnMut() -> Result<()>,
    log: &dyn Fn(&str),
) -> Result<Manifest> {
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(io_err(out))?;
    let file = EarlySync::new(file).map_err(io_err(out))?;
    let (manifest, file) = write_backup_to(
        out,
        file,
        manifest,
        source,
        tablespaces_ready,
        db_ready,
        log,
    )?;
    let started = std::time::Instant::now();
    file.finish().map_err(io_err(out))?;
    log(&format!(
        "synced the archive to disk in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(manifest)
}

/// [`write_backup`] to any stream (the connection to the machine that keeps the backups, for
/// a site on a remote server); `out` names it in errors. Returns the stream once the archive
/// is whole in it.
pub fn write_backup_to<W: io::Write + Send>(
    out: &Path,
    stream: W,
    mut manifest: Manifest,
    source: &BackupSource,
    tablespaces_ready: &mut dyn FnMut(),
    db_ready: &mut dyn FnMut() -> Result<()>,
    log: &dyn Fn(&str),
) -> Result<(Manifest, W)> {
    let started = std::time::Instant::now();
    let mut phase = started;
    let mut lap = |what: &str| {
        log(&format!("{what} in {:.1} s", phase.elapsed().as_secs_f64()));
        phase = std::time::Instant::now();
    };
    let mut encoder = zstd::Encoder::new(stream, ZSTD_LEVEL).map_err(io_err(out))?;
    // Compression runs on worker threads while this one reads the files.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4)) as u32;
    encoder.multithread(workers).map_err(io_err(out))?;
    // Each worker's job holds its input and output whole: zstd's default for this level
    // (8 MB jobs) kept 115 MB in flight on 1 GB of site files, 2 MB jobs keep 42 MB, at
    // the same speed and size.
    encoder
        .set_parameter(zstd::stream::raw::CParameter::JobSize(JOB_SIZE))
        .map_err(io_err(out))?;
    // tar copies each file in 8 KB chunks; the buffer hands the encoder 1 MB at a time
    // (a third less time than feeding it 8 KB writes, measured on 1 GB of site files).
    let mut builder = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, encoder));
    builder.follow_symlinks(false);
    let mut members = Vec::new();
    let mut outside_links = Vec::new();
    add_tree(
        &mut builder,
        out,
        source.docroot,
        "files",
        None,
        &mut members,
        &mut outside_links,
    )?;
    if let Some(private) = source.private.filter(|p| p.exists()) {
        add_tree(
            &mut builder,
            out,
            private,
            "private",
            source.skip_in_private,
            &mut members,
            &mut outside_links,
        )?;
    }
    lap("archived the files");
    if let Some((member, target)) = outside_links.first() {
        log(&format!(
            "left out {} link(s) to places outside the site, which a restore never makes (for \
             example {} -> {})",
            outside_links.len(),
            member.display(),
            target.display()
        ));
    }
    if let Some((path, name)) = source.db {
        tablespaces_ready();
        if source.db_tablespaces.is_dir() {
            add_tree(
                &mut builder,
                out,
                &source.db_tablespaces,
                TABLESPACES,
                None,
                &mut members,
                &mut outside_links,
            )?;
            lap("archived the database's tablespaces");
        }
        db_ready()?;
        lap("waited for the database dump");
        // The dump in fjord's own scratch dir.
        let dump = File::open(path).map_err(io_err(path))?;
        add_file(&mut builder, out, dump, path, Path::new(name), &mut members)?;
        lap("archived the database");
    }
    manifest.members = members;
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| HostError::Refused(e.to_string()))?;
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    builder
        .append_data(&mut header, MANIFEST, json.as_slice())
        .map_err(io_err(out))?;
    let encoder = builder
        .into_inner()
        .map_err(io_err(out))?
        .into_inner()
        .map_err(|e| io_err(out)(e.into_error()))?;
    let stream = encoder.finish().map_err(io_err(out))?;
    lap("finished compressing the archive");
    Ok((manifest, stream))
}

/// The archive file, flushed to disk as it grows: every [`EarlySync::EVERY`] bytes a helper
/// thread syncs what is written so far, so that the final fsync (a backup not on disk is
/// no backup) waits for the tail only, not for the whole archive.
struct EarlySync {
    file: File,
    unsynced: u64,
    tick: Option<std::sync::mpsc::Sender<()>>,
    syncer: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl EarlySync {
    const EVERY: u64 = 32 << 20;

    fn new(file: File) -> io::Result<EarlySync> {
        let clone = file.try_clone()?;
        let (tick, ticks) = std::sync::mpsc::channel::<()>();
        let syncer = std::thread::spawn(move || {
            while ticks.recv().is_ok() {
                // Ticks that came in while the last sync ran are covered by this one.
                while ticks.try_recv().is_ok() {}
                clone.sync_data()?;
            }
            Ok(())
        });
        Ok(EarlySync {
            file,
            unsynced: 0,
            tick: Some(tick),
            syncer: Some(syncer),
        })
    }

    fn finish(mut self) -> io::Result<()> {
        drop(self.tick.take());
        if let Some(syncer) = self.syncer.take() {
            syncer
                .join()
                .map_err(|_| io::Error::other("the sync thread panicked"))??;
        }
        self.file.sync_all()
    }
}

impl io::Write for EarlySync {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= Self::EVERY {
            self.unsynced = 0;
            if let Some(tick) = &self.tick {
                let _ = tick.send(());
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for EarlySync {
    fn drop(&mut self) {
        // Ends the sync thread when the archive is abandoned half-written.
        drop(self.tick.take());
    }
}

fn add_file<W: io::Write>(
    builder: &mut tar::Builder<W>,
    out: &Path,
    file: File,
    path: &Path,
    name: &Path,
    members: &mut Vec<Member>,
) -> Result<()> {
    let meta = file.metadata().map_err(io_err(path))?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata(&meta);
    let mut reader = Hashing {
        inner: file,
        hasher: Sha256::new(),
        size: 0,
    };
    builder
        .append_data(&mut header, name, &mut reader)
        .map_err(append_err(path, out))?;
    if reader.size != meta.len() {
        return Err(HostError::Refused(format!(
            "{} changed size while it was archived",
            path.display()
        )));
    }
    members.push(Member::new(
        name,
        reader.size,
        hex(&reader.hasher.finalize()),
    ));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn add_tree<W: io::Write>(
    builder: &mut tar::Builder<W>,
    out: &Path,
    root: &Path,
    prefix: &str,
    skip: Option<&Path>,
    members: &mut Vec<Member>,
    outside_links: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<()> {
    // Links are archived as links, never followed: not the root itself either, or a link
    // planted as a docroot would carry what it points to into the backup.
    let meta = std::fs::symlink_metadata(root).map_err(io_err(root))?;
    if !meta.is_dir() {
        return Err(HostError::Refused(format!(
            "{} is not a directory (a link is never followed into a backup)",
            root.display()
        )));
    }
    // Read beneath the directory above the tree that no site's user can change, through no
    // link: a directory the site swaps for a link while it is archived (as root) is refused,
    // never read into the site's backup.
    let (beneath, base, _) = crate::anchor::open_now(root)?;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let name = Path::new(prefix).join(&rel);
        builder
            .append_dir(&name, &dir)
            .map_err(append_err(&dir, out))?;
        let mut entries = beneath.list(&base.join(&rel))?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (entry, kind) in entries {
            let rel = rel.join(&entry);
            let path = root.join(&rel);
            if Some(path.as_path()) == skip {
                continue;
            }
            let member = Path::new(prefix).join(&rel);
            if kind == rustix::fs::FileType::Directory {
                stack.push(rel);
            } else if kind == rustix::fs::FileType::RegularFile {
                // A file swapped for a link after it was listed is refused, not followed.
                let Some(file) = beneath.open_file(&base.join(&rel))? else {
                    continue;
                };
                add_file(builder, out, file, &path, &member, members)?;
            } else if kind == rustix::fs::FileType::Symlink {
                let target = beneath.read_link(&base.join(&rel))?;
                if !extract::link_stays_inside(&rel, &target) {
                    // A restore never makes such a link: it is left out, and said so.
                    outside_links.push((member, target));
                    continue;
                }
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                builder
                    .append_link(&mut header, &member, &target)
                    .map_err(append_err(&path, out))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_reached_through_a_site_made_link_is_never_archived() {
        let dir = tempfile::tempdir().unwrap();
        let (site, victim) = (dir.path().join("site"), dir.path().join("victim"));
        // The site swapped a directory on the way to the tree for a link.
        std::fs::create_dir_all(victim.join("inner")).unwrap();
        std::fs::write(victim.join("inner/settings.php"), "victim's secret").unwrap();
        std::fs::create_dir_all(&site).unwrap();
        std::os::unix::fs::symlink(&victim, site.join("sub")).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let (mut members, mut outside) = (Vec::new(), Vec::new());
        let archived = add_tree(
            &mut builder,
            Path::new("out.tar"),
            &site.join("sub/inner"),
            "files",
            None,
            &mut members,
            &mut outside,
        );
        assert!(archived.is_err(), "{members:?}");
        assert!(members.is_empty());
    }

    fn manifest(format: u32) -> Manifest {
        Manifest {
            format,
            fjord_version: "test".into(),
            site: "example.com".into(),
            platform: "web".into(),
            platform_kind: "static".into(),
            db_engine: Some("mysql".into()),
            db_member: None,
            created_at: "now".into(),
            members: Vec::new(),
        }
    }

    /// A site with one file, a dump named `member` and a tablespace directory, packed or not.
    fn backup(dir: &Path, format: u32, member: &str, dump: &[u8], packed: bool) -> PathBuf {
        let docroot = dir.join("docroot");
        std::fs::create_dir(&docroot).unwrap();
        std::fs::write(docroot.join("index.html"), "hello").unwrap();
        let dump_path = dir.join("dump");
        std::fs::write(&dump_path, dump).unwrap();
        let tablespaces = crate::tablespace_dir(&dump_path);
        std::fs::create_dir(&tablespaces).unwrap();
        std::fs::write(tablespaces.join("t.ibd"), b"pages ".repeat(50_000)).unwrap();
        std::fs::write(tablespaces.join("t.cfg"), b"cfg").unwrap();
        if packed {
            let ibd = tablespaces.join("t.ibd");
            let zst = zstd::encode_all(std::fs::File::open(&ibd).unwrap(), 1).unwrap();
            std::fs::write(tablespaces.join("t.ibd.zst"), zst).unwrap();
            std::fs::remove_file(ibd).unwrap();
        }
        let out = dir.join("backup.tar.zst");
        let source = BackupSource {
            docroot: &docroot,
            private: None,
            skip_in_private: None,
            db: Some((&dump_path, member)),
            db_tablespaces: tablespaces,
        };
        write_backup(
            &out,
            manifest(format),
            &source,
            &mut || {},
            &mut || Ok(()),
            &|_| {},
        )
        .unwrap();
        out
    }

    fn extract(dir: &Path, archive: &Path) -> Result<(PathBuf, PathBuf)> {
        let (files, private, db) = (dir.join("x-files"), dir.join("x-private"), dir.join("x-db"));
        extract_backup(archive, &files, &private, &db)?;
        assert_eq!(std::fs::read(files.join("index.html")).unwrap(), b"hello");
        Ok((db.clone(), crate::tablespace_dir(&db)))
    }

    #[test]
    fn packed_tablespaces_come_out_plain_and_the_compressed_dump_stays_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let dump = zstd::encode_all(&b"-- a dump\n-- Dump completed\n"[..], 3).unwrap();
        let archive = backup(dir.path(), FORMAT, "database.sql.zst", &dump, true);
        let (db, tablespaces) = extract(dir.path(), &archive).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), dump);
        assert!(crate::db::is_zstd(&db).unwrap());
        assert_eq!(
            std::fs::read(tablespaces.join("t.ibd")).unwrap(),
            b"pages ".repeat(50_000)
        );
        assert!(!tablespaces.join("t.ibd.zst").exists());
        assert_eq!(std::fs::read(tablespaces.join("t.cfg")).unwrap(), b"cfg");
    }

    #[test]
    fn format_1_archives_with_plain_members_still_extract() {
        let dir = tempfile::tempdir().unwrap();
        let archive = backup(dir.path(), 1, "database.sql", b"-- Dump completed\n", false);
        let (db, tablespaces) = extract(dir.path(), &archive).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"-- Dump completed\n");
        assert!(!crate::db::is_zstd(&db).unwrap());
        assert_eq!(
            std::fs::read(tablespaces.join("t.ibd")).unwrap(),
            b"pages ".repeat(50_000)
        );
    }

    #[test]
    fn archives_of_a_newer_format_are_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let archive = backup(
            dir.path(),
            FORMAT + 1,
            "database.sql",
            b"-- Dump completed\n",
            false,
        );
        let error = extract(dir.path(), &archive).unwrap_err().to_string();
        assert!(
            error.contains(&format!("format {} is newer", FORMAT + 1)),
            "{error}"
        );
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// File names are bytes: a name that is not UTF-8 comes back exactly, and so does a
    /// long one.
    #[test]
    fn names_that_are_not_utf8_come_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let docroot = dir.path().join("docroot");
        let odd = std::ffi::OsStr::from_bytes(b"caf\xe9-latin1.html");
        let long = "d".repeat(150);
        std::fs::create_dir_all(docroot.join(&long)).unwrap();
        std::fs::write(docroot.join(odd), "odd").unwrap();
        std::fs::write(docroot.join(&long).join(odd), "deep").unwrap();
        std::os::unix::fs::symlink(odd, docroot.join("to-odd")).unwrap();
        let out = dir.path().join("b.tar.zst");
        let source = BackupSource {
            docroot: &docroot,
            private: None,
            skip_in_private: None,
            db: None,
            db_tablespaces: dir.path().join("none"),
        };
        let mut manifest = tests_manifest();
        manifest.db_engine = None;
        let written =
            write_backup(&out, manifest, &source, &mut || {}, &mut || Ok(()), &|_| {}).unwrap();
        assert!(written.members.iter().all(|m| m.name_hex.is_some()));
        let files = dir.path().join("x-files");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        extract_backup(
            &out,
            &files,
            &dir.path().join("x-private"),
            &scratch.join("db"),
        )
        .unwrap();
        assert_eq!(std::fs::read(files.join(odd)).unwrap(), b"odd");
        assert_eq!(std::fs::read(files.join(&long).join(odd)).unwrap(), b"deep");
        assert_eq!(
            std::fs::read_link(files.join("to-odd")).unwrap(),
            Path::new(odd)
        );
    }

    fn tests_manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            fjord_version: "test".into(),
            site: "example.com".into(),
            platform: "web".into(),
            platform_kind: "static".into(),
            db_engine: None,
            db_member: None,
            created_at: "now".into(),
            members: Vec::new(),
        }
    }
}
