//! A site's own log files: their directory's owners and modes, their rotation, and reading
//! their last lines. Every file is reached beneath the log dir, through no link.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::anchor;
use crate::beneath::{Root, identity};
use crate::fsops::{ModeEntry, lookup_user};
use crate::{HostError, Result};

/// A site's log dir: `root:<site group>`, which the nginx workers pass through to reopen
/// their files (so not `0750`) and where nobody but the site's group lists or reads.
pub const LOG_DIR_MODE: u32 = 0o751;
/// Each log file: written by its writer, read by the site's group.
pub const LOG_FILE_MODE: u32 = 0o640;

/// One file in a site's log dir, and who writes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogFile {
    pub name: String,
    /// Its writer, when it is not nginx's master (which opens its files as root, and hands
    /// them to its workers' user when it reopens them): the site's user, for PHP's log.
    pub owner: Option<String>,
}

/// What a site's log dir should be: its path, its group (the site's; root's without one)
/// and its files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogDir {
    pub dir: PathBuf,
    pub group: Option<String>,
    pub files: Vec<LogFile>,
}

impl LogDir {
    pub(crate) fn gid(&self) -> Result<u32> {
        match &self.group {
            Some(group) => Ok(lookup_user(group)?.1),
            None => Ok(0),
        }
    }

    /// (uid, gid) a missing file is created with, and the uid an existing one must have
    /// (`None`: whoever owns it, nginx's workers after a reopen).
    pub(crate) fn ids_of(&self, file: &LogFile) -> Result<(Option<u32>, u32)> {
        let gid = self.gid()?;
        match &file.owner {
            Some(user) => Ok((Some(lookup_user(user)?.0), gid)),
            None => Ok((None, gid)),
        }
    }
}

/// A file's identity: (device, inode).
pub type FileId = (u64, u64);

/// One repair: the entry as it is (for the undo), the mode it gets and its (uid, gid).
pub(crate) type Repair = (ModeEntry, u32, (u32, u32));

/// What must change in an existing log dir: (entries as they are, for the undo, and the
/// mode and owner each gets).
pub(crate) fn repairs(root: &Root, rel: &Path, logs: &LogDir) -> Result<Vec<Repair>> {
    let mut out = Vec::new();
    let gid = logs.gid()?;
    let mut check = |rel: PathBuf, mode: u32, uid: Option<u32>| -> Result<()> {
        let Some(stat) = root.stat(&rel)? else {
            return Ok(());
        };
        let uid = uid.unwrap_or(stat.st_uid);
        if stat.st_mode & 0o7777 != mode || stat.st_uid != uid || stat.st_gid != gid {
            out.push((
                ModeEntry {
                    path: root.path().join(&rel),
                    mode: stat.st_mode & 0o7777,
                    uid: stat.st_uid,
                    gid: stat.st_gid,
                    inode: Some(identity(&stat)),
                },
                mode,
                (uid, gid),
            ));
        }
        Ok(())
    };
    check(rel.to_path_buf(), LOG_DIR_MODE, Some(0))?;
    for file in &logs.files {
        let (uid, _) = logs.ids_of(file)?;
        check(rel.join(&file.name), LOG_FILE_MODE, uid)?;
    }
    Ok(out)
}

/// Rotates the site's logs in `logs.dir` when its largest file has reached `max_bytes`:
/// `name.{keep-1}` goes, each `name.N` becomes `name.{N+1}`, and `name` becomes `name.1`
/// in one exchange with a new empty file of the same owner and mode (a writer that opens it
/// by name, as PHP does on every line, never finds it missing). Writers that hold it open
/// (nginx) write on into `name.1` until told to reopen. Returns whether it rotated.
pub fn rotate(logs: &LogDir, keep: usize, max_bytes: u64) -> Result<bool> {
    let (root, rel, _) = anchor::open_now(&logs.dir)?;
    if !root.is_dir(&rel)? {
        return Ok(false);
    }
    let largest = logs
        .files
        .iter()
        .filter_map(|f| root.stat(&rel.join(&f.name)).ok().flatten())
        .map(|s| s.st_size as u64)
        .max()
        .unwrap_or(0);
    if largest < max_bytes.max(1) {
        return Ok(false);
    }
    for file in &logs.files {
        let name = rel.join(&file.name);
        let Some(stat) = root.stat(&name)? else {
            continue;
        };
        let numbered = |n: usize| rel.join(format!("{}.{n}", file.name));
        if keep == 0 {
            root.remove_file(&name)?;
            continue;
        }
        // Beyond the count (`keep` was lowered since): gone.
        let mut n = keep;
        while root.stat(&numbered(n))?.is_some() {
            root.remove_file(&numbered(n))?;
            n += 1;
        }
        for n in (1..keep).rev() {
            if root.stat(&numbered(n))?.is_some() {
                root.rename(&numbered(n), &numbered(n + 1))?;
            }
        }
        let fresh = rel.join(format!(".{}.fjord-new-{}", file.name, crate::random_hex(4)));
        root.replace_file_as(
            &fresh,
            stat.st_mode & 0o777,
            Some((stat.st_uid, stat.st_gid)),
            &mut std::io::empty(),
        )?;
        root.exchange(&fresh, &name)?;
        root.rename(&fresh, &numbered(1))?;
    }
    Ok(true)
}

/// The last `lines` lines of `name` in `dir` (at most `max_bytes` of them), and the size
/// read up to. Read beneath `dir`, through no link.
pub fn tail(dir: &Path, name: &str, lines: usize, max_bytes: u64) -> Result<(Vec<u8>, u64)> {
    let (root, rel, _) = anchor::open_now(&dir.join(name))?;
    let Some(mut file) = root.open_file(&rel)? else {
        return Ok((Vec::new(), 0));
    };
    let size = file
        .metadata()
        .map_err(|e| HostError::io(&dir.join(name), e))?
        .len();
    let start = size.saturating_sub(max_bytes);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| HostError::io(&dir.join(name), e))?;
    let mut buf = Vec::new();
    file.take(size - start)
        .read_to_end(&mut buf)
        .map_err(|e| HostError::io(&dir.join(name), e))?;
    // A partial first line (cut by the bound) is left out.
    if start > 0
        && let Some(nl) = buf.iter().position(|&b| b == b'\n')
    {
        buf.drain(..=nl);
    }
    let ends_with_newline = buf.last() == Some(&b'\n');
    let count = buf.iter().filter(|&&b| b == b'\n').count() + usize::from(!ends_with_newline);
    if count > lines {
        let mut skip = count - lines;
        let mut at = 0;
        for (i, b) in buf.iter().enumerate() {
            if *b == b'\n' {
                skip -= 1;
                if skip == 0 {
                    at = i + 1;
                    break;
                }
            }
        }
        buf.drain(..at);
    }
    Ok((buf, size))
}

/// What `name` in `dir` holds from `offset` on (at most `max_bytes`), for following a log:
/// (bytes, the offset read up to, the file's identity). A file that is now shorter than
/// `offset`, or another file than `was` (rotated), is read from its start.
pub fn read_on(
    dir: &Path,
    name: &str,
    offset: u64,
    was: Option<FileId>,
    max_bytes: u64,
) -> Result<(Vec<u8>, u64, Option<FileId>)> {
    let (root, rel, _) = anchor::open_now(&dir.join(name))?;
    let Some(mut file) = root.open_file(&rel)? else {
        return Ok((Vec::new(), 0, None));
    };
    let meta = file
        .metadata()
        .map_err(|e| HostError::io(&dir.join(name), e))?;
    let now = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    let size = meta.len();
    let offset = if was != Some(now) || size < offset {
        0
    } else {
        offset
    };
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| HostError::io(&dir.join(name), e))?;
    let mut buf = Vec::new();
    file.take(max_bytes)
        .read_to_end(&mut buf)
        .map_err(|e| HostError::io(&dir.join(name), e))?;
    // Only whole lines: the rest is read on the next call.
    let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(whole);
    Ok((buf.clone(), offset + buf.len() as u64, Some(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(dir: &Path) -> LogDir {
        LogDir {
            dir: dir.to_path_buf(),
            group: None,
            files: vec![LogFile {
                name: "access.log".into(),
                owner: None,
            }],
        }
    }

    #[test]
    fn rotation_keeps_the_configured_count_and_leaves_a_new_empty_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let logs = logs(dir);
        for round in 0..6 {
            std::fs::write(dir.join("access.log"), format!("round {round}\n")).unwrap();
            assert!(rotate(&logs, 3, 1).unwrap());
        }
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["access.log", "access.log.1", "access.log.2", "access.log.3"]
        );
        assert_eq!(std::fs::read_to_string(dir.join("access.log")).unwrap(), "");
        assert_eq!(
            std::fs::read_to_string(dir.join("access.log.1")).unwrap(),
            "round 5\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("access.log.3")).unwrap(),
            "round 3\n"
        );
        // Below the size, nothing moves.
        assert!(!rotate(&logs, 3, 1 << 20).unwrap());
    }

    #[test]
    fn tail_reads_the_last_lines_within_its_bound() {
        let tmp = tempfile::tempdir().unwrap();
        let text: String = (1..=100).map(|n| format!("line {n}\n")).collect();
        std::fs::write(tmp.path().join("access.log"), &text).unwrap();
        let (last, size) = tail(tmp.path(), "access.log", 3, 1 << 20).unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "line 98\nline 99\nline 100\n"
        );
        assert_eq!(size, text.len() as u64);
        // A bound cuts whole lines only.
        let (bounded, _) = tail(tmp.path(), "access.log", 100, 20).unwrap();
        assert_eq!(String::from_utf8(bounded).unwrap(), "line 99\nline 100\n");
        // A link is never read through.
        std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("error.log")).unwrap();
        assert!(tail(tmp.path(), "error.log", 3, 1 << 20).is_err());
    }
}
