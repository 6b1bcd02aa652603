//! Site backups: one `.tar.zst` per backup holding `files/` (the docroot), `private/` (the
//! site's private dir), the database dump, and `manifest.json` last, with the size and sha256
//! of every member. Everything streams: no member is held whole in memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub size: u64,
    pub sha256: String,
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

/// Writes the archive to `out` (which must not exist); returns its manifest.
///
/// The database is dumped while the files are archived: `tablespaces_ready` is called
/// before its tablespaces are added (if their directory exists then), `db_ready` before
/// the dump is.
pub fn write_backup(
    out: &Path,
    mut manifest: Manifest,
    source: &BackupSource,
    tablespaces_ready: &mut dyn FnMut(),
    db_ready: &mut dyn FnMut() -> Result<()>,
    log: &dyn Fn(&str),
) -> Result<Manifest> {
    let started = std::time::Instant::now();
    let mut phase = started;
    let mut lap = |what: &str| {
        log(&format!("{what} in {:.1} s", phase.elapsed().as_secs_f64()));
        phase = std::time::Instant::now();
    };
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(io_err(out))?;
    let file = EarlySync::new(file).map_err(io_err(out))?;
    let mut encoder = zstd::Encoder::new(file, ZSTD_LEVEL).map_err(io_err(out))?;
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
    add_tree(&mut builder, source.docroot, "files", None, &mut members)?;
    if let Some(private) = source.private.filter(|p| p.exists()) {
        add_tree(
            &mut builder,
            private,
            "private",
            source.skip_in_private,
            &mut members,
        )?;
    }
    lap("archived the files");
    if let Some((path, name)) = source.db {
        tablespaces_ready();
        if source.db_tablespaces.is_dir() {
            add_tree(
                &mut builder,
                &source.db_tablespaces,
                TABLESPACES,
                None,
                &mut members,
            )?;
            lap("archived the database's tablespaces");
        }
        db_ready()?;
        lap("waited for the database dump");
        add_file(&mut builder, path, name, &mut members)?;
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
    let file = encoder.finish().map_err(io_err(out))?;
    file.finish().map_err(io_err(out))?;
    lap("finished compressing and synced the archive to disk");
    Ok(manifest)
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
    path: &Path,
    name: &str,
    members: &mut Vec<Member>,
) -> Result<()> {
    let file = File::open(path).map_err(io_err(path))?;
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
        .map_err(io_err(path))?;
    if reader.size != meta.len() {
        return Err(HostError::Refused(format!(
            "{} changed size while it was archived",
            path.display()
        )));
    }
    members.push(Member {
        name: name.to_string(),
        size: reader.size,
        sha256: hex(&reader.hasher.finalize()),
    });
    Ok(())
}

fn add_tree<W: io::Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    prefix: &str,
    skip: Option<&Path>,
    members: &mut Vec<Member>,
) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
        let name = Path::new(prefix).join(rel);
        builder.append_dir(&name, &dir).map_err(io_err(&dir))?;
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if Some(path.as_path()) == skip {
                continue;
            }
            let ty = entry.file_type().map_err(io_err(&path))?;
            let member = Path::new(prefix).join(path.strip_prefix(root).unwrap_or(&path));
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() {
                add_file(builder, &path, &member.to_string_lossy(), members)?;
            } else if ty.is_symlink() {
                let target = std::fs::read_link(&path).map_err(io_err(&path))?;
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                builder
                    .append_link(&mut header, &member, &target)
                    .map_err(io_err(&path))?;
            }
        }
    }
    Ok(())
}

fn corrupt(path: &Path, why: impl std::fmt::Display) -> HostError {
    HostError::Refused(format!(
        "backup {} is unreadable or corrupt: {why}",
        path.display()
    ))
}

/// A member's path below its prefix, refusing anything that could leave the destination.
fn safe_relative(name: &Path, prefix: &str) -> Option<PathBuf> {
    let rel = name.strip_prefix(prefix).ok()?;
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| rel.to_path_buf())
}

/// Files up to this size are read whole and handed to the writer threads; larger ones are
/// streamed by the reading thread. Bounds the memory in flight to about
/// `WRITE_QUEUE * SMALL_FILE`.
const SMALL_FILE: u64 = 256 << 10;
const WRITE_QUEUE: usize = 64;

/// One small file for a writer thread: its place in the archive, where it goes, its bytes.
struct WriteJob {
    index: usize,
    name: String,
    dest: PathBuf,
    data: Vec<u8>,
    mode: u32,
    mtime: Option<u64>,
}

/// Creates a file that must not exist yet with `mode`.
fn create_member_file(dest: &Path, mode: u32) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let out = File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)
        .map_err(io_err(dest))?;
    // The umask may have narrowed the mode on creation.
    set_mode(dest, mode)?;
    Ok(out)
}

/// Gives a written file its time from the archive (best effort: it is only information).
fn set_mtime(file: &File, mtime: Option<u64>) {
    if let Some(mtime) = mtime {
        let _ = file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime));
    }
}

fn write_small_file(job: WriteJob) -> Result<(usize, Member)> {
    use std::io::Write;
    let mut out = create_member_file(&job.dest, job.mode)?;
    out.write_all(&job.data).map_err(io_err(&job.dest))?;
    set_mtime(&out, job.mtime);
    Ok((
        job.index,
        Member {
            name: job.name,
            size: job.data.len() as u64,
            sha256: hex(&Sha256::digest(&job.data)),
        },
    ))
}

/// Extracts `files/` into `files_dest`, `private/` into `private_dest` (and a SQLite
/// database with it), a database dump into `db_dest` (and its tablespaces beside it),
/// hashing every member as it is written, and checks the lot against the manifest at the
/// end: one pass over the archive. Creating many small files is what takes the time, so
/// writer threads create them while this thread decompresses and reads on.
/// The destinations must not exist; they are created. On any error they may hold a partial
/// extraction, which the caller's journal removes.
pub fn extract_backup(
    path: &Path,
    files_dest: &Path,
    private_dest: &Path,
    db_dest: &Path,
) -> Result<Manifest> {
    std::fs::create_dir(files_dest).map_err(io_err(files_dest))?;
    std::fs::create_dir(private_dest).map_err(io_err(private_dest))?;
    let writers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let (jobs, queue) = std::sync::mpsc::sync_channel::<WriteJob>(WRITE_QUEUE);
    let queue = std::sync::Mutex::new(queue);
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                scope.spawn(|| {
                    let mut written = Vec::new();
                    loop {
                        let job = queue
                            .lock()
                            .map_err(|_| ())
                            .and_then(|q| q.recv().map_err(|_| ()));
                        let Ok(job) = job else {
                            return Ok(written);
                        };
                        match write_small_file(job) {
                            Ok(member) => written.push(member),
                            Err(e) => {
                                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        let read = read_members(path, files_dest, private_dest, db_dest, &jobs, &failed);
        drop(jobs);
        let mut seen: Vec<Option<Member>> = Vec::new();
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(written)) => {
                    for (index, member) in written {
                        if seen.len() <= index {
                            seen.resize(index + 1, None);
                        }
                        seen[index] = Some(member);
                    }
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error
                        .get_or_insert(HostError::Refused("a writer thread panicked".into()));
                }
            }
        }
        // A writer's failure stops the reading early: its error is the one that tells.
        if let Some(e) = first_error {
            return Err(e);
        }
        let (manifest, streamed) = read?;
        for (index, member) in streamed {
            if seen.len() <= index {
                seen.resize(index + 1, None);
            }
            seen[index] = Some(member);
        }
        let seen: Vec<Member> = seen.into_iter().flatten().collect();
        if manifest.format > FORMAT {
            return Err(corrupt(
                path,
                format!(
                    "its format {} is newer than this fjord reads ({FORMAT})",
                    manifest.format
                ),
            ));
        }
        check_members(path, &manifest, &seen)?;
        Ok(manifest)
    })
}

/// Reads the archive: makes directories and symlinks, streams large files itself and queues
/// small ones for the writers. Returns the manifest and the members it wrote itself, each
/// with its place in the archive.
fn read_members(
    path: &Path,
    files_dest: &Path,
    private_dest: &Path,
    db_dest: &Path,
    jobs: &std::sync::mpsc::SyncSender<WriteJob>,
    failed: &std::sync::atomic::AtomicBool,
) -> Result<(Manifest, Vec<(usize, Member)>)> {
    let file = File::open(path).map_err(io_err(path))?;
    let decoder = zstd::Decoder::new(file).map_err(|e| corrupt(path, e))?;
    let mut archive = tar::Archive::new(decoder);
    let mut streamed = Vec::new();
    let mut index = 0;
    let mut manifest: Option<Manifest> = None;
    for entry in archive.entries().map_err(|e| corrupt(path, e))? {
        if failed.load(std::sync::atomic::Ordering::Relaxed) {
            // A writer's error is the one to report; it is collected by the caller.
            break;
        }
        let mut entry = entry.map_err(|e| corrupt(path, e))?;
        let name = entry.path().map_err(|e| corrupt(path, e))?.into_owned();
        if name == Path::new(MANIFEST) {
            let mut json = Vec::new();
            entry.read_to_end(&mut json).map_err(|e| corrupt(path, e))?;
            manifest = Some(
                serde_json::from_slice(&json)
                    .map_err(|e| corrupt(path, format!("manifest: {e}")))?,
            );
            continue;
        }
        let dest = if let Some(rel) = safe_relative(&name, "files") {
            files_dest.join(rel)
        } else if let Some(rel) = safe_relative(&name, "private") {
            private_dest.join(rel)
        } else if name == Path::new("database.sqlite") {
            // fjord keeps a site's SQLite database in its private directory.
            private_dest.join("database.sqlite")
        } else if let Some(rel) = safe_relative(&name, TABLESPACES) {
            crate::tablespace_dir(db_dest).join(rel)
        } else if ["database.sql", "database.sql.zst", "database.pgdump"]
            .iter()
            .any(|db| name == Path::new(db))
        {
            // A compressed dump stays compressed: the tablespaces usually make it unneeded,
            // and `DbCtl::load` decompresses it when it is.
            db_dest.to_path_buf()
        } else {
            return Err(corrupt(
                path,
                format!("unexpected member {}", name.display()),
            ));
        };
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        match header.entry_type() {
            tar::EntryType::Directory => {
                if dest != files_dest && dest != private_dest {
                    std::fs::create_dir(&dest).map_err(io_err(&dest))?;
                }
                set_mode(&dest, mode)?;
            }
            tar::EntryType::Symlink => {
                let target = header
                    .link_name()
                    .map_err(|e| corrupt(path, e))?
                    .ok_or_else(|| corrupt(path, "symlink without target"))?;
                std::os::unix::fs::symlink(target, &dest).map_err(io_err(&dest))?;
            }
            t if t.is_file() => {
                let name = name.to_string_lossy().into_owned();
                let mtime = header.mtime().ok();
                let size = header.size().map_err(|e| corrupt(path, e))?;
                // Table files are archived compressed (as `DbCtl::snapshot_tablespaces`
                // copies them) and imported as plain files.
                let unpack = name.starts_with(TABLESPACES) && name.ends_with(".zst");
                if !unpack && size <= SMALL_FILE {
                    let mut data = Vec::with_capacity(size as usize);
                    entry.read_to_end(&mut data).map_err(|e| corrupt(path, e))?;
                    let job = WriteJob {
                        index,
                        name,
                        dest,
                        data,
                        mode,
                        mtime,
                    };
                    if jobs.send(job).is_err() {
                        break;
                    }
                } else {
                    let dest = if unpack {
                        dest.with_extension("")
                    } else {
                        dest
                    };
                    let out = create_member_file(&dest, mode)?;
                    let (size, sha256) = stream_member(&mut entry, out, mtime, unpack)
                        .map_err(|e| corrupt(path, format!("{name}: {e}")))?;
                    streamed.push((index, Member { name, size, sha256 }));
                }
                index += 1;
            }
            _ => {
                return Err(corrupt(
                    path,
                    format!("unexpected entry type of {}", name.display()),
                ));
            }
        }
    }
    let manifest = manifest.ok_or_else(|| {
        corrupt(
            path,
            "it has no manifest (truncated, or not a fjord backup)",
        )
    })?;
    Ok((manifest, streamed))
}

/// Streams a member into `out` through a 1 MB buffer (io::copy then moves 1 MB at a time,
/// not 8 KB), decompressing it if `unpack`; returns the size and sha256 of the member as
/// the archive holds it.
fn stream_member(
    entry: &mut dyn Read,
    mut out: File,
    mtime: Option<u64>,
    unpack: bool,
) -> io::Result<(u64, String)> {
    let mut reader = Hashing {
        inner: entry,
        hasher: Sha256::new(),
        size: 0,
    };
    let mut buffered = io::BufWriter::with_capacity(1 << 20, &mut out);
    if unpack {
        zstd::stream::copy_decode(&mut reader, &mut buffered)?;
        // The whole member is hashed, even past the end of its zstd frame.
        io::copy(&mut reader, &mut io::sink())?;
    } else {
        io::copy(&mut reader, &mut buffered)?;
    }
    io::Write::flush(&mut buffered)?;
    drop(buffered);
    set_mtime(&out, mtime);
    Ok((reader.size, hex(&reader.hasher.finalize())))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

fn check_members(path: &Path, manifest: &Manifest, seen: &[Member]) -> Result<()> {
    if manifest.members.len() != seen.len() {
        return Err(corrupt(
            path,
            format!(
                "the manifest lists {} files, the archive holds {}",
                manifest.members.len(),
                seen.len()
            ),
        ));
    }
    for (want, got) in manifest.members.iter().zip(seen) {
        if want != got {
            return Err(corrupt(
                path,
                format!("{} does not match its checksum in the manifest", want.name),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
