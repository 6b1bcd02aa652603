//! Use cases, task scripts and the dispatcher.
//!
//! The CLI (and, later, the panel) calls the functions in [`ops`]: they validate, apply the
//! business rules and change the state, and the state changes that need a host queue a task.
//! Only the [`dispatch`] module runs tasks; each task kind is one short script in [`scripts`]
//! that describes host changes through `host::Steps`.

pub mod acting;
pub mod auth;
pub mod compat;
pub mod config;
mod cron;
pub mod dispatch;
pub mod doctor;
mod error;
pub mod kinds;
pub mod metrics;
pub mod monitor;
pub mod near;
mod notify;
pub mod ops;
mod paths;
mod remote;
pub mod scripts;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cron::{DEFAULT_CRON_INTERVAL_S, parse_interval};
pub use error::{Error, Result};
pub use model::{self, Invalid};
pub use paths::default_data_dir;

/// Whether systemd runs this machine (so fjord itself is best started as its service).
pub fn systemd_runs() -> bool {
    host::systemd_runs()
}
pub use store::{
    AcmeAccount, ApiToken, Backup, BackupCopy, BackupTargetRecord, CertSource, ClaimPause,
    ClientSummary, LogLine, QueuePlace, SiteCertificate, SiteCron, SitePage, SiteQuery, TaskFilter,
};

use store::{SqliteStore, Store};

/// Holds glibc's malloc to two arenas in a long-running `fjord serve`, by running it again
/// with `MALLOC_ARENA_MAX=2` unless that is set. With a heap per thread that was ever busy at
/// once (the panel's threads, one per task, zstd's workers), it kept every heap's peak: the
/// panel bench measured 73 MB resident against 40 MB with two arenas, at the same speed.
pub fn limit_malloc_arenas() -> Result<()> {
    Ok(host::reexec_with("MALLOC_ARENA_MAX", "2")?)
}

/// Writes generated files (man pages, shell completions) beneath `dir`, for a package: no
/// state is opened or changed.
pub fn write_generated_files(dir: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    Ok(host::write_files(dir, files)?)
}

/// Serves a dispatcher on its standard input and output: `fjord agent`, on a remote server.
pub fn serve_agent(dir: &Path) -> Result<()> {
    Ok(host::remote::serve_agent(
        dir,
        std::io::stdin().lock(),
        std::io::stdout(),
    )?)
}

/// Tells a service manager that the process (a panel with no dispatcher) is ready, and blocks
/// until it is asked to stop (SIGTERM or SIGINT).
pub fn wait_for_stop_signal() -> Result<()> {
    Ok(host::wait_for_stop(
        "the panel serves; no dispatcher runs here",
    )?)
}

/// An open fjord installation: its data directory and state.
pub struct Fjord {
    data_dir: PathBuf,
    store: Arc<dyn Store>,
    /// A random id of this installation, in the names fjord gives host-wide things (the
    /// Unix users of sites), so that two installations on one host never clash.
    installation: String,
    /// This process's links to remote servers, opened when a task first needs one.
    machines: std::sync::OnceLock<host::remote::Machines>,
}

impl Fjord {
    /// Opens (creating if needed) the state in `data_dir`, applying pending migrations.
    pub fn open(data_dir: &Path) -> Result<Fjord> {
        let data_dir = paths::absolute(data_dir)?;
        // Sites' code runs on this machine as other users: they may pass through to a pool's
        // socket, never list what fjord keeps.
        for dir in [data_dir.clone(), data_dir.join("config")] {
            host::ensure_unlisted_dir(&dir)?;
        }
        // Backups and task scratch dirs hold whole databases; the state holds site database
        // passwords: only fjord's own user may read them.
        for dir in [
            data_dir.join("run"),
            data_dir.join("backups"),
            data_dir.join("journal"),
            paths::tls_dir(&data_dir),
        ] {
            host::ensure_private_dir(&dir)?;
        }
        // Processes that open a fresh data dir at once (a dispatcher started beside the first
        // command) take turns: one creates and migrates the state, the others then find it
        // whole, never a file another is still writing (which would read as empty).
        let opening = host::FileLock::acquire(&data_dir.join("run").join("state-open.lock"))?;
        let state = data_dir.join("state.db");
        let store = SqliteStore::open(&state)?;
        for file in ["state.db", "state.db-wal", "state.db-shm"] {
            host::restrict_to_owner(&data_dir.join(file))?;
        }
        let installation = match store.setting("installation_id")? {
            Some(id) => id,
            None => {
                let id = host::random_hex(3);
                store.set_setting("installation_id", Some(&id))?;
                id
            }
        };
        drop(opening);
        Ok(Fjord {
            data_dir,
            store: Arc::new(store),
            installation,
            machines: Default::default(),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub(crate) fn run_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }

    /// Whether a dispatcher is alive on this data dir: one holds its lock in the run dir for
    /// as long as it lives (see ARCHITECTURE, "Crash recovery").
    pub fn dispatcher_alive(&self) -> Result<bool> {
        Ok(host::any_lock_held(&self.run_dir(), "dispatcher-")?)
    }

    /// Wakes every dispatcher on this data dir so that a new task starts at once.
    pub fn notify_dispatchers(&self) {
        dispatch::notify(&self.run_dir());
    }
}

#[cfg(test)]
mod tests;
