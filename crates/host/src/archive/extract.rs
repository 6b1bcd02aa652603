//! Extraction of a backup into staging, treating the archive as hostile: it may come from
//! `site restore --file`. Every member is created beneath its staging root without following
//! any link (see [`crate::beneath`]), links may point only inside the tree that holds them,
//! hard links and devices are refused, modes lose their setuid, setgid, sticky and
//! group/world-write bits, names are bytes, and no member is read into memory beyond a bound.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{FORMAT, Hashing, MANIFEST, Manifest, Member, TABLESPACES, hex};
use crate::beneath::Root;
use crate::{HostError, Result};

/// Files up to this size are read whole and handed to the writer threads; larger ones are
/// streamed by the reading thread. Bounds the memory in flight to about
/// `WRITE_QUEUE * SMALL_FILE`.
const SMALL_FILE: u64 = 256 << 10;
const WRITE_QUEUE: usize = 64;
/// The largest manifest read (about 400,000 members); the rest of the archive streams.
const MAX_MANIFEST: u64 = 64 << 20;
/// The longest member name or link target (Linux's PATH_MAX).
const MAX_NAME: u64 = 4096;

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

/// Whether a link at `rel` (below its tree's root) to `target` stays inside that tree: the
/// target is relative, its `..` come first and climb no higher than the root. A `..` after
/// a name is refused, since that name may itself be a link (`s -> .` and `a -> s/..` would
/// leave the tree) — so each link, resolved from the directory it really sits in, stays in.
pub(crate) fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    let mut depth = rel.components().count() as i64 - 1;
    let mut descended = false;
    for component in target.components() {
        match component {
            Component::Normal(_) => descended = true,
            Component::CurDir => {}
            Component::ParentDir if !descended => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    !target.as_os_str().is_empty()
}

/// The mode a restored entry gets: what the archive says, less setuid, setgid, sticky and
/// group/world write, and always usable by its owner.
fn normal_mode(mode: u32, is_dir: bool) -> u32 {
    (mode & 0o755) | if is_dir { 0o700 } else { 0o600 }
}

/// The staging roots that members are extracted beneath.
struct Roots {
    files: Root,
    private: Root,
    /// The directory that holds the database dump (and its tablespace directory).
    scratch: Root,
    dump: PathBuf,
}

/// Where a member goes: under which root, at which path, whether links may be made there,
/// and the widest mode it may have (private files and databases are never world-readable).
struct Place<'r> {
    root: &'r Root,
    rel: PathBuf,
    links_allowed: bool,
    mode_cap: u32,
}

fn place<'r>(roots: &'r Roots, name: &Path) -> Option<Place<'r>> {
    let at = |root, rel, links_allowed, mode_cap| {
        Some(Place {
            root,
            rel,
            links_allowed,
            mode_cap,
        })
    };
    if let Some(rel) = safe_relative(name, "files") {
        at(&roots.files, rel, true, 0o755)
    } else if let Some(rel) = safe_relative(name, "private") {
        at(&roots.private, rel, true, 0o750)
    } else if name == Path::new("database.sqlite") {
        // fjord keeps a site's SQLite database in its private directory.
        at(
            &roots.private,
            PathBuf::from("database.sqlite"),
            false,
            0o640,
        )
    } else if let Some(rel) = safe_relative(name, TABLESPACES) {
        let dir = crate::tablespace_dir(&roots.dump);
        at(
            &roots.scratch,
            PathBuf::from(dir.file_name()?).join(rel),
            false,
            0o750,
        )
    } else if ["database.sql", "database.sql.zst", "database.pgdump"]
        .iter()
        .any(|db| name == Path::new(db))
    {
        // A compressed dump stays compressed: the tablespaces usually make it unneeded,
        // and `DbCtl::load` decompresses it when it is.
        at(
            &roots.scratch,
            PathBuf::from(roots.dump.file_name()?),
            false,
            0o640,
        )
    } else {
        None
    }
}

/// One small file for a writer thread: its place in the archive, where it goes, its bytes.
struct WriteJob<'r> {
    index: usize,
    name: PathBuf,
    root: &'r Root,
    rel: PathBuf,
    data: Vec<u8>,
    mode: u32,
    mtime: Option<u64>,
}

/// Gives a written file its time from the archive (best effort: it is only information).
fn set_mtime(file: &File, mtime: Option<u64>) {
    if let Some(mtime) = mtime {
        let _ = file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime));
    }
}

fn write_small_file(job: WriteJob) -> Result<(usize, Member)> {
    use std::io::Write;
    let dest = job.root.path().join(&job.rel);
    let mut out = job.root.create_file(&job.rel, job.mode)?;
    out.write_all(&job.data)
        .map_err(|e| HostError::io(&dest, e))?;
    set_mtime(&out, job.mtime);
    let sha256 = hex(&Sha256::digest(&job.data));
    Ok((
        job.index,
        Member::new(&job.name, job.data.len() as u64, sha256),
    ))
}

/// Extracts `files/` into `files_dest`, `private/` into `private_dest` (and a SQLite
/// database with it), a database dump into `db_dest` (and its tablespaces beside it),
/// hashing every member as it is written, and checks the lot against the manifest at the
/// end: one pass over the archive. Creating many small files is what takes the time, so
/// writer threads create them while this thread decompresses and reads on.
/// The destinations must not exist; they are created. On any error they may hold a partial
/// extraction, which the caller's journal removes; nothing is ever written elsewhere.
pub fn extract_backup(
    path: &Path,
    files_dest: &Path,
    private_dest: &Path,
    db_dest: &Path,
) -> Result<Manifest> {
    let archive = open_archive(path)?;
    extract_backup_from(path, archive, files_dest, private_dest, db_dest)
}

/// Opens a backup archive to read. Only regular files are read: a FIFO or a device would
/// block or never end (opened without blocking, so that a FIFO with no writer is refused
/// rather than waited on).
pub fn open_archive(path: &Path) -> Result<File> {
    let archive = {
        use std::os::unix::fs::OpenOptionsExt;
        File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
            .map_err(|e| HostError::io(path, e))?
    };
    let meta = archive.metadata().map_err(|e| HostError::io(path, e))?;
    if !meta.is_file() {
        return Err(HostError::Refused(format!(
            "{} is not a regular file; a backup is read only from one",
            path.display()
        )));
    }
    Ok(archive)
}

/// [`extract_backup`] from any stream (the connection from the machine that keeps the
/// backups, for a site on a remote server); `path` names it in errors.
pub fn extract_backup_from(
    path: &Path,
    archive: impl Read + Send,
    files_dest: &Path,
    private_dest: &Path,
    db_dest: &Path,
) -> Result<Manifest> {
    std::fs::create_dir(files_dest).map_err(|e| HostError::io(files_dest, e))?;
    std::fs::create_dir(private_dest).map_err(|e| HostError::io(private_dest, e))?;
    let scratch = db_dest
        .parent()
        .ok_or_else(|| HostError::Refused(format!("{} has no parent", db_dest.display())))?;
    let roots = Roots {
        files: Root::open(files_dest)?,
        private: Root::open(private_dest)?,
        scratch: Root::open(scratch)?,
        dump: db_dest.to_path_buf(),
    };
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
        let read = read_members(path, archive, &roots, &jobs, &failed);
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

/// Reads at most `limit` bytes of a member; more is refused, naming `what`.
fn read_bounded(entry: &mut dyn Read, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    entry.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "{what} is larger than {limit} bytes"
        )));
    }
    Ok(data)
}

fn trim_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// Reads the archive: makes directories and links, streams large files itself and queues
/// small ones for the writers. Returns the manifest and the members it wrote itself, each
/// with its place in the archive.
///
/// The tar reader runs raw: it would read GNU long names and pax headers whole into memory,
/// whatever their size, so this reads them itself, bounded.
fn read_members<'r>(
    path: &Path,
    archive: impl Read,
    roots: &'r Roots,
    jobs: &std::sync::mpsc::SyncSender<WriteJob<'r>>,
    failed: &std::sync::atomic::AtomicBool,
) -> Result<(Manifest, Vec<(usize, Member)>)> {
    let decoder = zstd::Decoder::new(archive).map_err(|e| corrupt(path, e))?;
    let mut archive = tar::Archive::new(decoder);
    let mut streamed = Vec::new();
    let mut index = 0;
    let mut manifest: Option<Manifest> = None;
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let entries = archive.entries().map_err(|e| corrupt(path, e))?.raw(true);
    for entry in entries {
        if failed.load(std::sync::atomic::Ordering::Relaxed) {
            // A writer's error is the one to report; it is collected by the caller.
            break;
        }
        let mut entry = entry.map_err(|e| corrupt(path, e))?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        if kind.is_gnu_longname() || kind.is_gnu_longlink() {
            let data = read_bounded(&mut entry, MAX_NAME + 1, "a long name")
                .map_err(|e| corrupt(path, e))?;
            *if kind.is_gnu_longname() {
                &mut long_name
            } else {
                &mut long_link
            } = Some(trim_nul(data));
            continue;
        }
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            return Err(corrupt(path, "pax headers are not used in fjord backups"));
        }
        let name_bytes = long_name
            .take()
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let name = PathBuf::from(OsStr::from_bytes(&name_bytes));
        let link = long_link
            .take()
            .or_else(|| header.link_name_bytes().map(|b| b.into_owned()))
            .map(|b| PathBuf::from(OsStr::from_bytes(&b)));
        if name == Path::new(MANIFEST) {
            let json = read_bounded(&mut entry, MAX_MANIFEST, "its manifest")
                .map_err(|e| corrupt(path, e))?;
            manifest = Some(
                serde_json::from_slice(&json)
                    .map_err(|e| corrupt(path, format!("manifest: {e}")))?,
            );
            continue;
        }
        let Some(Place {
            root,
            rel,
            links_allowed,
            mode_cap,
        }) = place(roots, &name)
        else {
            return Err(corrupt(
                path,
                format!("unexpected member {}", name.display()),
            ));
        };
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        match kind {
            tar::EntryType::Directory => {
                let mode = normal_mode(mode, true) & mode_cap;
                if rel.as_os_str().is_empty() {
                    root.set_dir_mode(&rel, mode)?;
                } else {
                    root.create_dir(&rel, mode)?;
                }
            }
            tar::EntryType::Symlink => {
                let target = link.ok_or_else(|| corrupt(path, "symlink without target"))?;
                if !links_allowed || !link_stays_inside(&rel, &target) {
                    return Err(corrupt(
                        path,
                        format!(
                            "{} is a link to {}, outside the site; a restore makes links only \
                             to places inside the site",
                            name.display(),
                            target.display()
                        ),
                    ));
                }
                root.symlink(&rel, &target)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if rel.as_os_str().is_empty() {
                    return Err(corrupt(path, format!("{} is not a file", name.display())));
                }
                let mode = normal_mode(mode, false) & mode_cap;
                let mtime = header.mtime().ok();
                let size = header.size().map_err(|e| corrupt(path, e))?;
                // Table files are archived compressed (as `DbCtl::snapshot_tablespaces`
                // copies them) and imported as plain files.
                let unpack =
                    name.starts_with(TABLESPACES) && name.extension() == Some(OsStr::new("zst"));
                if !unpack && size <= SMALL_FILE {
                    let data = read_bounded(&mut entry, SMALL_FILE, "a member")
                        .map_err(|e| corrupt(path, e))?;
                    let job = WriteJob {
                        index,
                        name,
                        root,
                        rel,
                        data,
                        mode,
                        mtime,
                    };
                    if jobs.send(job).is_err() {
                        break;
                    }
                } else {
                    let rel = if unpack { rel.with_extension("") } else { rel };
                    let out = root.create_file(&rel, mode)?;
                    let dest = root.path().join(&rel);
                    let (size, sha256) =
                        stream_member(&mut entry, out, mtime, unpack).map_err(|e| {
                            if crate::error::is_no_space(&e) {
                                HostError::io(&dest, e)
                            } else {
                                corrupt(path, format!("{}: {e}", name.display()))
                            }
                        })?;
                    streamed.push((index, Member::new(&name, size, sha256)));
                }
                index += 1;
            }
            _ => {
                return Err(corrupt(
                    path,
                    format!(
                        "{} is a {kind:?} entry; a backup holds only files, directories and \
                         links",
                        name.display()
                    ),
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

    #[test]
    fn links_may_point_only_inside_their_tree() {
        let inside = [
            ("a", "b"),
            ("d/a", "../b"),
            ("d/e/a", "../../x/y"),
            ("a", "./b"),
        ];
        // `s -> .` then `a -> s/..` would climb out through a link.
        let climbs_through_a_name = [("a", "s/.."), ("d/a", "x/../../b")];
        for (rel, target) in inside {
            assert!(
                link_stays_inside(Path::new(rel), Path::new(target)),
                "{rel} → {target}"
            );
        }
        let outside = [("a", "../b"), ("d/a", "../../b"), ("a", "/etc"), ("a", "")];
        for (rel, target) in outside.into_iter().chain(climbs_through_a_name) {
            assert!(
                !link_stays_inside(Path::new(rel), Path::new(target)),
                "{rel} → {target}"
            );
        }
    }

    #[test]
    fn modes_lose_special_bits_and_group_or_world_write() {
        assert_eq!(normal_mode(0o7777, true), 0o755);
        assert_eq!(normal_mode(0o4755, false), 0o755);
        assert_eq!(normal_mode(0o666, false), 0o644);
        assert_eq!(normal_mode(0o640, false), 0o640);
        assert_eq!(normal_mode(0o000, true), 0o700);
    }
}
