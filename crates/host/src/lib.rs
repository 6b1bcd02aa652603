#![allow(clippy::disallowed_methods)]
//! The one layer that touches hosts: files, processes, nginx.
//!
//! **Architecture invariant:** no other crate reads or writes host files (beyond fjord's own
//! state database), runs a process, or signals a daemon. Task scripts in `engine` describe what
//! to change through the [`Steps`] trait; [`LiveSteps`] makes each change only after writing
//! its undo to the task's journal, and [`DryRun`] prints the change instead.

pub mod acme;
mod anchor;
mod archive;
mod beneath;
pub mod certs;
mod commit;
mod copy_in;
mod db;
mod error;
mod faults;
mod fsops;
mod journal;
mod logs;
mod mail;
mod nginx;
mod open_files;
mod php_fpm;
mod php_run;
mod probe;
mod process;
mod reads;
pub mod remote;
pub mod service_manager;
mod signals;
mod site_db;
mod steps;
mod sync;
mod tablespaces;
#[cfg(test)]
mod undo_attack_tests;
mod users;
mod wake;

pub use archive::{FORMAT as BACKUP_FORMAT, Manifest, Member};
pub use commit::{Committer, Committers, FileChange, Reloadable};
pub use db::{DbCtl, DbKind, set_session_tag};
pub use error::{HostError, Result};
pub use faults::Faults;
pub use fsops::Ownership;
pub use journal::{Journal, JournalRecord, StepCounter, Undo, rollback};
pub use logs::{
    LOG_DIR_MODE, LOG_FILE_MODE, LogDir, LogFile, read_on as read_log_on, rotate as rotate_logs,
    tail as tail_log,
};
pub use mail::{MailTransport, send_mail};
pub use nginx::{NginxCtl, probe_generation};
pub use php_fpm::{PhpFpmCtl, ping as php_fpm_ping};
pub use php_run::PhpRun;
pub use probe::{
    PROBE_BOUND, Restart as RestartHow, probe_http, probe_php_fpm, restart as restart_daemon,
    start_log, systemd_runs,
};
pub use process::{CommandOutput, lower_this_thread_priority, reexec_with, run_command};
pub use reads::{LocalReads, Reads};
pub use signals::{stop_on_signals, wait_for_stop};
pub use site_db::{Row as SiteDbRow, SiteDb, SiteDbSpec};
pub use steps::{
    BackupDb, BackupRequest, DRAIN_BOUND, DryRun, ExtractedAndBackedUp, LiveSteps, Parking,
    SplitSteps, Steps, TargetCopy, TargetFetch, Trash, trash_path,
};
pub use sync::Synced;
pub use tablespaces::{Snapshot, tablespace_dir};
pub use users::SystemUser;
pub use wake::{WakeSocket, wake, wake_all};

/// The space of the file system holding `path`: bytes free to an unprivileged user, and in all.
pub fn disk_space(path: &std::path::Path) -> Result<(u64, u64)> {
    let stat = rustix::fs::statvfs(path).map_err(|e| HostError::io(path, e.into()))?;
    Ok((
        stat.f_bavail.saturating_mul(stat.f_frsize),
        stat.f_blocks.saturating_mul(stat.f_frsize),
    ))
}

/// How full the file system holding `path` is, as `df` counts it: the share of the space
/// users may have (used, and free to an unprivileged user) that is used. Root's reserve is
/// neither; a file system with no room at all is full. None for one with no blocks (`/proc`).
pub fn disk_used_share(path: &std::path::Path) -> Result<Option<f64>> {
    let stat = rustix::fs::statvfs(path).map_err(|e| HostError::io(path, e.into()))?;
    let used = stat.f_blocks.saturating_sub(stat.f_bfree);
    let usable = used.saturating_add(stat.f_bavail);
    Ok((stat.f_blocks > 0).then(|| {
        if usable == 0 {
            1.0
        } else {
            used as f64 / usable as f64
        }
    }))
}

/// Whether the system clock is kept in sync, as the machine's time service says: systemd's
/// `timedatectl` (`NTPSynchronized`), else chrony's `chronyc tracking` (its leap status).
/// `Err` names what was tried when neither is there: nothing keeps the clock then.
pub fn clock_synchronised() -> std::result::Result<bool, String> {
    if let Ok(out) = run_command(&[
        "timedatectl".into(),
        "show".into(),
        "--property=NTPSynchronized".into(),
        "--value".into(),
    ]) && out.success
    {
        return Ok(out.output.trim() == "yes");
    }
    if let Ok(out) = run_command(&["chronyc".into(), "-n".into(), "tracking".into()])
        && out.success
    {
        return Ok(out
            .output
            .lines()
            .any(|l| l.starts_with("Leap status") && l.trim_end().ends_with("Normal")));
    }
    Err("neither timedatectl nor chronyc answers".into())
}

/// Lists the subdirectories of `dir` (not following symlinks); none if it does not exist.
pub fn list_subdirs(dir: &std::path::Path) -> Result<Vec<String>> {
    fsops::list_subdirs(dir)
}

/// Makes `dir` (and its parents) if needed and gives it mode 0700: for directories that
/// hold secrets (database dumps, backups).
pub fn ensure_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    ensure_dir(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| HostError::io(dir, e))
}

/// Makes `dir` (and its parents) if needed and gives it mode 0711: others may pass through it
/// (nginx to a pool's socket beneath it) but not list it. A directory others may write to
/// (`/tmp`, say) is refused: whoever can write there could swap what fjord keeps in it.
pub fn ensure_unlisted_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    ensure_dir(dir)?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| HostError::io(dir, e))?;
    if !meta.is_dir() || meta.mode() & 0o022 != 0 || meta.uid() != uzers::get_effective_uid() {
        return Err(HostError::Refused(format!(
            "{}: fjord's data dir must be a directory of its own user that no one else may write to (it is mode {:o}, owner {})",
            dir.display(),
            meta.mode() & 0o7777,
            meta.uid()
        )));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
        .map_err(|e| HostError::io(dir, e))
}

/// Gives an existing file mode 0600 (nothing if it does not exist).
pub fn restrict_to_owner(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(HostError::io(path, e)),
        _ => Ok(()),
    }
}

pub fn ensure_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| HostError::io(dir, e))
}

/// Writes each file at its path beneath `dir`, making the directories on the way and
/// replacing a file already there, as the invoking user: what a build step leaves for a
/// package (`fjord generate`), never a host's state.
pub fn write_files(dir: &std::path::Path, files: &[(std::path::PathBuf, Vec<u8>)]) -> Result<()> {
    for (name, content) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            ensure_dir(parent)?;
        }
        std::fs::write(&path, content).map_err(|e| HostError::io(&path, e))?;
    }
    Ok(())
}

/// An exclusive lock on a file, held until dropped; `try_lock` tells whether another process
/// (alive) holds it.
pub struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    pub fn acquire(path: &std::path::Path) -> Result<FileLock> {
        let file = open_lock_file(path)?;
        file.lock().map_err(|e| HostError::io(path, e))?;
        Ok(FileLock { _file: file })
    }

    /// `Ok(Some)` if the lock was free (its holder, if any, is dead), `Ok(None)` if held.
    pub fn try_acquire(path: &std::path::Path) -> Result<Option<FileLock>> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(HostError::io(path, e)),
        }
    }
}

impl FileLock {
    /// Whether a live process holds the lock at `path` (a file that is gone is held by
    /// nobody). Never creates the file: a dead holder's file may be removed meanwhile.
    pub fn is_held(path: &std::path::Path) -> Result<bool> {
        let file = match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(HostError::io(path, e)),
        };
        match file.try_lock() {
            Ok(()) => Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => Ok(true),
            Err(std::fs::TryLockError::Error(e)) => Err(HostError::io(path, e)),
        }
    }
}

/// Whether a live process holds any lock file in `dir` whose name starts with `prefix` and
/// ends in `.lock` (the run dir's `dispatcher-<id>.lock`: see [`FileLock`]).
pub fn any_lock_held(dir: &std::path::Path, prefix: &str) -> Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(HostError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| HostError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(".lock") && FileLock::is_held(&entry.path())?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn open_lock_file(path: &std::path::Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| HostError::io(path, e))
}

/// Removes a directory tree fjord made for itself (a task's scratch dir); nothing if absent.
pub fn remove_dir_if_exists(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(HostError::io(path, e)),
        _ => Ok(()),
    }
}

pub fn remove_file_if_exists(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(HostError::io(path, e)),
        _ => Ok(()),
    }
}

/// Random hex from the OS random source, for identifiers that must not collide across
/// processes. Without that source fjord stops rather than make up weaker ids.
pub fn random_hex(bytes: usize) -> String {
    random_secret(bytes).expect("the OS random source (getrandom) is unavailable")
}

/// A secret (a database password) of `bytes` random bytes as hex, from the OS random source;
/// an error, never a weaker fallback, without it.
/// The SHA-256 of `data`, in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn random_secret(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| HostError::Refused(format!("the OS random source is unavailable: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A text file read whole (fjord's config file).
pub fn read_text_file(path: &std::path::Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

/// A text file read whole, or None if there is none.
pub fn read_text_file_if_exists(path: &std::path::Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The first `max` bytes of a file, as text (lossy), or `None` if it cannot be read. For
/// headers an application keeps at the top of its files (WordPress reads 8 KiB of each).
/// Read beneath the file's anchor (see `anchor`) through no link, and only a regular file:
/// a site's user may plant a link where fjord, as root, reads its files.
pub fn read_head(path: &std::path::Path, max: u64) -> Option<String> {
    let (root, rel, _) = anchor::open_now(path).ok()?;
    let (content, _) = root.read_file(&rel, max).ok()??;
    Some(String::from_utf8_lossy(&content).into_owned())
}

/// The regular files directly in `dir` (not following links), sorted; none if it is gone or
/// is reached through a link.
pub fn list_files(dir: &std::path::Path) -> Vec<String> {
    let Ok((root, rel, _)) = anchor::open_now(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = root
        .list(&rel)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, kind)| *kind == rustix::fs::FileType::RegularFile)
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    out.sort();
    out
}

/// The kind of release archive a path names (`tar.gz`, `zip`), if it names one.
pub fn archive_kind(path: &std::path::Path) -> Option<&'static str> {
    copy_in::archive_kind(path)
}

/// Whether `path` is a regular file (through links) that someone may execute.
pub fn is_executable_file(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether a user of that name exists (through NSS).
pub fn user_exists(name: &str) -> bool {
    users::lookup(name).is_some()
}

/// The first component of `path` below `root` that is a link, if any (`path` must lie under
/// `root`). fjord refuses to write through one: a site's user could plant it to make fjord,
/// running as root, write outside the site.
pub fn link_below(root: &std::path::Path, path: &std::path::Path) -> Option<std::path::PathBuf> {
    let rel = path.strip_prefix(root).ok()?;
    let mut at = root.to_path_buf();
    for component in rel.components() {
        at.push(component);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(at);
        }
    }
    None
}
