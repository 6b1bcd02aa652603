//! What task scripts read of the machine they step on before they step: whether a path is
//! there, whether nginx would load a file. On the machine fjord runs on it is read here
//! ([`LocalReads`]); on a remote server its agent reads it (`remote::RemoteSteps`).

use std::path::{Path, PathBuf};

use crate::nginx::NginxCtl;
use crate::site_db::Row as SiteDbRow;
use crate::{DbCtl, Result, SiteDb};

pub trait Reads: Send + Sync {
    /// Whether `path` exists (a link counts as itself, not followed).
    fn exists(&self, path: &Path) -> Result<bool>;
    /// Whether `path` is a directory (following links, as `Path::is_dir`).
    fn is_dir(&self, path: &Path) -> Result<bool>;
    /// Whether nginx's main config includes `file` (None: nginx cannot tell).
    fn nginx_would_include(&self, ctl: &NginxCtl, file: &Path) -> Result<Option<bool>>;
    /// What nginx's master may open and holds, for server verify's log.
    fn nginx_open_files(&self, ctl: &NginxCtl) -> Result<Option<String>>;
    /// Which of `programs` (paths, or names looked for where fjord's processes look) are
    /// missing or not executable.
    fn missing_programs(&self, programs: &[PathBuf]) -> Result<Vec<PathBuf>>;
    /// The first `max` bytes of a file (as text), reached beneath its anchor through no link;
    /// None if it cannot be read.
    fn read_head(&self, path: &Path, max: u64) -> Option<String>;
    /// The subdirectories of `dir` (not following links); none if it does not exist.
    fn list_subdirs(&self, dir: &Path) -> Result<Vec<String>>;
    /// The plain files of `dir` (not following links); none if it cannot be read.
    fn list_files(&self, dir: &Path) -> Vec<String>;
    /// Whether a Unix user of this name exists.
    fn user_exists(&self, name: &str) -> Result<bool>;
    /// Whether `path` is a plain file (following links, as `Path::is_file`); false when it
    /// cannot be told.
    fn is_file(&self, path: &Path) -> bool;
    /// The size of a file (not following a last link); None if it cannot be read.
    fn file_size(&self, path: &Path) -> Option<u64>;
    /// Whether database `name` exists on the server `db` administers.
    fn database_exists(&self, db: &DbCtl, name: &str) -> Result<bool>;
    /// The rows of a read-only query in a site's own database (see [`SiteDb`]).
    fn site_db_rows(&self, db: &SiteDb, sql: &str) -> Result<Vec<SiteDbRow>>;
}

/// The machine fjord runs on.
pub struct LocalReads;

impl Reads for LocalReads {
    fn exists(&self, path: &Path) -> Result<bool> {
        Ok(std::fs::symlink_metadata(path).is_ok())
    }

    fn is_dir(&self, path: &Path) -> Result<bool> {
        Ok(path.is_dir())
    }

    fn nginx_would_include(&self, ctl: &NginxCtl, file: &Path) -> Result<Option<bool>> {
        Ok(ctl.would_include(file))
    }

    fn nginx_open_files(&self, ctl: &NginxCtl) -> Result<Option<String>> {
        Ok(ctl.open_files_report())
    }

    fn missing_programs(&self, programs: &[PathBuf]) -> Result<Vec<PathBuf>> {
        Ok(programs.iter().filter(|p| !found(p)).cloned().collect())
    }

    fn read_head(&self, path: &Path, max: u64) -> Option<String> {
        crate::read_head(path, max)
    }

    fn list_subdirs(&self, dir: &Path) -> Result<Vec<String>> {
        crate::list_subdirs(dir)
    }

    fn list_files(&self, dir: &Path) -> Vec<String> {
        crate::list_files(dir)
    }

    fn user_exists(&self, name: &str) -> Result<bool> {
        Ok(crate::user_exists(name))
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn file_size(&self, path: &Path) -> Option<u64> {
        std::fs::symlink_metadata(path).ok().map(|m| m.len())
    }

    fn database_exists(&self, db: &DbCtl, name: &str) -> Result<bool> {
        db.database_exists(name)
    }

    fn site_db_rows(&self, db: &SiteDb, sql: &str) -> Result<Vec<SiteDbRow>> {
        db.rows(sql)
    }
}

/// Where a program named without a directory is looked for: the `PATH` fjord's own processes
/// are started with.
const SEARCHED: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

fn found(program: &Path) -> bool {
    if program.components().count() > 1 {
        return crate::is_executable_file(program);
    }
    SEARCHED
        .iter()
        .any(|dir| crate::is_executable_file(&Path::new(dir).join(program)))
}
