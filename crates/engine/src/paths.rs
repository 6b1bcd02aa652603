use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// `/var/lib/fjord` for root, `$XDG_DATA_HOME/fjord` (or `~/.local/share/fjord`) otherwise.
pub fn default_data_dir(is_root: bool) -> PathBuf {
    if is_root {
        return PathBuf::from("/var/lib/fjord");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("fjord");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/share/fjord")
}

pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Error::Refused(format!("data dir {}: {e}", path.display())))
}
