use model::Invalid;

pub use crate::near::Missing;
use store::StoreError;

/// Every way a use case or task can fail, with the message a user should see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// Nothing by that name or id (or nothing the asker may see): the message may offer the
    /// closest names (`crate::near`).
    #[error("{0}")]
    NotFound(Missing),
    /// The request is well-formed but the current state forbids it.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Host(#[from] host::HostError),
    #[error("{0}")]
    Store(StoreError),
    /// Not signed in, or the credentials given are wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// Signed in, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed logins: try again later.
    #[error("too many failed logins: try again in {retry_after_s} seconds")]
    Throttled { retry_after_s: u64 },
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::NotFound(what) => Error::NotFound(what.into()),
            StoreError::Conflict(what) => Error::Conflict(what),
            e => Error::Store(e),
        }
    }
}

impl Error {
    /// A stable exit code per kind of failure, for scripts that drive the CLI.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_) => 2,
            Error::NotFound(_) => 3,
            Error::Refused(_) | Error::Conflict(_) => 4,
            Error::Host(_) | Error::Store(_) => 1,
            Error::Unauthenticated(_) | Error::Forbidden(_) | Error::Throttled { .. } => 5,
        }
    }

    /// A stable name per kind of failure, for the API's error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid",
            Error::NotFound(_) => "not_found",
            Error::Refused(_) => "refused",
            Error::Conflict(_) => "conflict",
            Error::Host(_) => "host_error",
            Error::Store(_) => "state_error",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::Throttled { .. } => "throttled",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
