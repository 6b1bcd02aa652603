//! A code base copied in from a directory (a platform's `--from`): links are copied only
//! when they stay inside the tree, special files never, and what is made belongs to fjord's
//! user (root), not to whoever owned the source.

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
