//! A code base copied in from a directory or a release archive (a platform's `--from`):
//! links are copied only when they stay inside the tree, special files never, and what is
//! made belongs to fjord's user (root), not to whoever owned the source. An archive is
//! unpacked by the system's own `tar` or `unzip` into a scratch directory first (they refuse
//! members with `..` or an absolute path), then copied in by the same rules as a directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::archive::link_stays_inside;
use crate::{HostError, Result};

/// What a copy made and what it left out.
#[derive(Debug, Default)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
    pub left_out: Vec<String>,
}

/// Copies the tree `from` to `to`, which must not exist.
pub fn copy_tree(from: &Path, to: &Path) -> Result<Copied> {
    let meta = fs::symlink_metadata(from).map_err(|e| HostError::io(from, e))?;
    if !meta.is_dir() {
        return Err(HostError::Refused(format!(
            "{} is not a directory",
            from.display()
        )));
    }
    let mut copied = Copied::default();
    fs::create_dir(to).map_err(|e| HostError::io(to, e))?;
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = from.join(&rel);
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| HostError::io(&dir, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| HostError::io(&dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = rel.join(entry.file_name());
            let (src, dst) = (from.join(&rel), to.join(&rel));
            let meta = fs::symlink_metadata(&src).map_err(|e| HostError::io(&src, e))?;
            let mode = meta.permissions().mode() & 0o755;
            if meta.is_dir() {
                fs::create_dir(&dst).map_err(|e| HostError::io(&dst, e))?;
                fs::set_permissions(&dst, fs::Permissions::from_mode(0o755))
                    .map_err(|e| HostError::io(&dst, e))?;
                stack.push(rel);
            } else if meta.is_file() {
                copied.bytes += fs::copy(&src, &dst).map_err(|e| HostError::io(&src, e))?;
                let mode = if mode & 0o100 != 0 { 0o755 } else { 0o644 };
                fs::set_permissions(&dst, fs::Permissions::from_mode(mode))
                    .map_err(|e| HostError::io(&dst, e))?;
                copied.files += 1;
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&src).map_err(|e| HostError::io(&src, e))?;
                if link_stays_inside(&rel, &target) {
                    std::os::unix::fs::symlink(&target, &dst)
                        .map_err(|e| HostError::io(&dst, e))?;
                } else {
                    copied.left_out.push(format!(
                        "{} (a link to {}, outside the code base)",
                        rel.display(),
                        target.display()
                    ));
                }
            } else {
                copied
                    .left_out
                    .push(format!("{} (not a file, directory or link)", rel.display()));
            }
        }
    }
    Ok(copied)
}

/// The kinds of release archive `--from` takes, by name.
pub fn archive_kind(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some("tar.gz")
    } else if name.ends_with(".zip") {
        Some("zip")
    } else {
        None
    }
}

/// Unpacks a release archive into `into` (which must exist, empty) and returns the code
/// base's root in it: the archive's single top directory (`wordpress/`), or `into` itself.
pub fn unpack(archive: &Path, into: &Path) -> Result<std::path::PathBuf> {
    let (a, i) = (archive.display().to_string(), into.display().to_string());
    let argv: Vec<String> = match archive_kind(archive) {
        Some("tar.gz") => [
            "tar",
            "-xzf",
            &a,
            "-C",
            &i,
            "--no-same-owner",
            "--no-same-permissions",
        ]
        .map(String::from)
        .to_vec(),
        Some(_) => {
            // Info-ZIP would make a link and then write a later member through it: a zip
            // archive with a link in it is refused before anything is unpacked.
            let listing = crate::run_command(&["unzip".into(), "-Z".into(), a.clone()])?;
            if !listing.success {
                return Err(HostError::Refused(format!(
                    "{} is not a zip archive fjord can read: {}",
                    archive.display(),
                    listing.output.trim()
                )));
            }
            if listing.output.lines().any(|l| l.starts_with('l')) {
                return Err(HostError::Refused(format!(
                    "{} holds links: fjord unpacks no zip archive with links in it",
                    archive.display()
                )));
            }
            ["unzip", "-q", "-o", &a, "-d", &i]
                .map(String::from)
                .to_vec()
        }
        None => {
            return Err(HostError::Refused(format!(
                "{} is not a .tar.gz, .tgz or .zip release archive",
                archive.display()
            )));
        }
    };
    let out = crate::run_command(&argv)?;
    if !out.success {
        return Err(HostError::Refused(format!(
            "{} could not be unpacked: {}",
            archive.display(),
            out.output.trim()
        )));
    }
    let entries: Vec<_> = fs::read_dir(into)
        .map_err(|e| HostError::io(into, e))?
        .flatten()
        .collect();
    match entries.as_slice() {
        [only] if only.file_type().is_ok_and(|t| t.is_dir()) => Ok(only.path()),
        _ => Ok(into.to_path_buf()),
    }
}
