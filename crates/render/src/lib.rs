//! Pure renderers of the files fjord writes to hosts: nginx config and the small pages fjord
//! serves itself.
//!
//! **Architecture invariant:** nothing here does IO or can fail. Inputs are validated model
//! types (host names and paths from a closed alphabet), so rendered config can never carry a
//! `;`, brace, quote or newline from user input. Every renderer is snapshot-tested in
//! `snapshots/`; run the tests with `UPDATE_SNAPSHOTS=1` to rewrite them after a deliberate
//! change, and review the diff.

use std::fmt::Write;
use std::path::Path;

mod dokuwiki;
mod drupal;
mod logs;
mod mediawiki;
mod nginx;
mod php;
mod wordpress;

pub use dokuwiki::{DOKUWIKI_DEFAULT_CONF, dokuwiki_preload, dokuwiki_protected};
pub use drupal::{DrupalSite, drupal_credentials, drupal_settings, drupal_sites_php};
pub use logs::{ACCESS_LOG, ERROR_LOG, PHP_ERROR_LOG, REDACTED};
pub use mediawiki::{MediawikiSite, mediawiki_dispatcher, mediawiki_settings};
pub use nginx::{
    ACME_CHALLENGE_DIR, ACME_CHALLENGE_PATH, NEVER_SERVED, PROBE_GENERATION_PATH, PROBE_HOST,
    VhostSpec, VhostState, WebApp, acme_challenge_dir, acme_challenge_file, acme_root, nginx_hook,
    nginx_server_conf, nginx_vhost,
};
pub use php::{
    DISABLED_FUNCTIONS, MAIL_FUNCTIONS, PhpPool, db_address_of, php_fpm_pool, php_limits,
    php_settings,
};
pub use wordpress::{
    CONTENT_URL_PATH as WORDPRESS_CONTENT_URL_PATH, WordpressSite, wordpress_dispatcher,
    wordpress_mu_plugin, wordpress_site_config,
};

use model::{DbEngine, DbService, Platform, Site, SiteDatabase};

const HEADER: &str = "# Managed by fjord: edits here are overwritten by the next verify.\n";

/// Where a site's own files live, in its platform's `sites/` directory: a static site's
/// docroot, a PHP site's uploads and other files it writes.
pub fn site_files_dir(platform: &Platform, site: &Site) -> std::path::PathBuf {
    platform_sites_dir(platform).join(site.name.as_str())
}

/// Where a platform keeps its sites' directories: `sites/` of its docroot (Drupal's
/// multisite layout, which every kind follows).
pub fn platform_sites_dir(platform: &Platform) -> std::path::PathBuf {
    platform.docroot().join("sites")
}

/// A site's private directory, outside its docroot: credentials and SQLite files live here.
pub fn site_private_dir(platform: &Platform, site: &Site) -> std::path::PathBuf {
    platform.path.join("private").join(site.name.as_str())
}

/// The SQLite database file of a site.
pub fn site_sqlite_path(platform: &Platform, site: &Site) -> std::path::PathBuf {
    site_private_dir(platform, site).join("database.sqlite")
}

/// The site's database credentials, as `KEY=value` lines an application's settings can read
/// (written with mode 0640, outside the docroot).
pub fn site_db_env(db: &SiteDatabase, service: &DbService, sqlite_path: &Path) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "DB_ENGINE={}", db.engine);
    if db.engine == DbEngine::Sqlite {
        let _ = writeln!(out, "DB_PATH={}", sqlite_path.display());
        return out;
    }
    let _ = writeln!(
        out,
        "DB_NAME={}\nDB_USER={}\nDB_PASSWORD={}",
        db.name, db.user, db.password
    );
    match (&service.socket, &service.host) {
        (Some(socket), _) => {
            let _ = writeln!(out, "DB_HOST=localhost\nDB_SOCKET={socket}");
        }
        (None, Some(host)) => {
            let _ = writeln!(out, "DB_HOST={host}");
        }
        (None, None) => {}
    }
    if let Some(port) = service.port {
        let _ = writeln!(out, "DB_PORT={port}");
    }
    out
}

/// The page a disabled site shows.
pub fn disabled_page() -> String {
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Site disabled</title></head>\n\
     <body><h1>This site is disabled</h1>\n\
     <p>The site has been disabled by its administrator.</p></body></html>\n"
        .to_string()
}

/// The page a new static site starts with, so that its install can be seen to work.
pub fn placeholder_index(site: &Site) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{name}</title></head>\n\
         <body><h1>{name}</h1>\n<p>This site was installed by fjord. Replace this file with the \
         site's content.</p></body></html>\n",
        name = site.name.to_unicode()
    )
}

#[cfg(test)]
mod tests;
