use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {output}")]
    Command {
        program: String,
        status: String,
        output: String,
    },
    #[error("nginx rejected the configuration: {0}")]
    NginxRejected(String),
    #[error("nginx: {0}")]
    Nginx(String),
    #[error("php-fpm rejected the configuration: {0}")]
    PhpFpmRejected(String),
    #[error("php-fpm: {0}")]
    PhpFpm(String),
    #[error("mail could not be sent {0}")]
    Mail(String),
    /// An nginx commit failed; the message says how.
    #[error("{0}")]
    Commit(String),
    #[error("fault injected by FJORD_FAULTS: {0}")]
    Injected(String),
    #[error("journal: {0}")]
    Journal(String),
    #[error("{0}")]
    Refused(String),
    /// A full disk or quota: `no space left on <file system>`.
    #[error("{0}")]
    NoSpace(String),
    /// A rollback found the data an undo needs gone, and stopped destroying anything.
    #[error("{0}")]
    UndoDataLost(String),
    /// A remote machine could not be reached (its link is down, its sshd does not answer, or
    /// it offers another host key than the one pinned): what was asked of it may or may not
    /// have been made.
    #[error("{0}")]
    Unreachable(String),
}

impl HostError {
    /// An IO error on `path`. A full disk (or quota) is told as itself, naming the file
    /// system: not as whatever the failed write was part of.
    pub fn io(path: &Path, source: std::io::Error) -> HostError {
        if is_no_space(&source) {
            return HostError::NoSpace(format!(
                "no space left on {} (writing {})",
                mount_point(path).display(),
                path.display()
            ));
        }
        HostError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub(crate) fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// The mount point of the file system that holds `path` (or would hold it).
fn mount_point(path: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let mut at = path;
    while std::fs::symlink_metadata(at).is_err() {
        match at.parent() {
            Some(parent) => at = parent,
            None => return path.to_path_buf(),
        }
    }
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    let here = dev(at);
    while let Some(parent) = at.parent() {
        if dev(parent) != here {
            break;
        }
        at = parent;
    }
    at.to_path_buf()
}

pub type Result<T, E = HostError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_as_itself_naming_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("archive.tar.zst");
        let error = HostError::io(&file, std::io::Error::from_raw_os_error(28)).to_string();
        assert!(error.starts_with("no space left on /"), "{error}");
        assert!(error.contains("archive.tar.zst"), "{error}");
        let other = HostError::io(&file, std::io::Error::from_raw_os_error(5)).to_string();
        assert!(!other.contains("no space"), "{other}");
    }
}
