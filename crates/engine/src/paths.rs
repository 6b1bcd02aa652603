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

/// Certificates, their keys and the ACME account's credentials: root's alone (0700).
pub fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

/// The ACME account's credentials (its private key), mode 0600.
pub fn acme_credentials(data_dir: &Path) -> PathBuf {
    tls_dir(data_dir).join("acme-account.json")
}

/// Where a site's certificate chain and key live, named by its id (a rename keeps them).
pub fn site_tls_dir(data_dir: &Path, site_id: i64) -> PathBuf {
    tls_dir(data_dir).join(format!("site-{site_id}"))
}
