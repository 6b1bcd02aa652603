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
    /// An nginx commit failed; the message says how.
    #[error("{0}")]
    Commit(String),
    #[error("fault injected by FJORD_FAULTS: {0}")]
    Injected(String),
    #[error("journal: {0}")]
    Journal(String),
    #[error("{0}")]
    Refused(String),
    /// A rollback found the data an undo needs gone, and stopped destroying anything.
    #[error("{0}")]
    UndoDataLost(String),
}

impl HostError {
    pub fn io(path: &Path, source: std::io::Error) -> HostError {
        HostError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = HostError> = std::result::Result<T, E>;
