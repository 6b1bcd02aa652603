//! Drupal's files: a site's `settings.php` in `sites/<host>/` (Drupal finds it there), the
//! credentials it reads from outside the docroot, and the platform's `sites/sites.php`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use model::{DbEngine, DbService, SiteDatabase};

use crate::php::{db_address, php_str};

/// What a Drupal site's settings are made of.
pub struct DrupalSite<'a> {
    /// 7, or 8 and later (10, 11), whose settings differ.
    pub major: u32,
    /// The site's canonical address (scheme, name, port): Drupal 7's `$base_url`, so that no
    /// forged `Host` changes the links it makes.
    pub base_url: &'a str,
    /// The site's main name and its aliases: Drupal 8+ answers only these
    /// (`trusted_host_patterns`).
    pub names: Vec<&'a str>,
    /// `sites/<host>`, relative to the docroot: its public files are in `files/` there.
    pub site_dir: String,
    /// The credentials file, outside the docroot, readable by the site's user only.
    pub credentials: PathBuf,
    /// The site's private dir: private files, temporary files, config sync (8+).
    pub private_dir: PathBuf,
    /// Where an armed one-time login link waits (fjord's `?fjord-login=` links).
    pub login_link: PathBuf,
    pub db: Option<(&'a SiteDatabase, &'a DbService, &'a Path)>,
    pub hash_salt: &'a str,
}

/// A request with `?fjord-login=TOKEN` whose hash matches the armed link, before it expires,
/// is sent to Drupal's own one-time login URL, once: the rename lets only one request take
/// it. Anything else goes on to Drupal as usual.
const LOGIN_LINK: &str = "if (PHP_SAPI !== 'cli' && isset($_GET['fjord-login']) && is_string($_GET['fjord-login'])) {
  $fjord_armed = json_decode((string) @file_get_contents($fjord_login_link), TRUE);
  if (is_array($fjord_armed) && isset($fjord_armed['hash'], $fjord_armed['expires'], $fjord_armed['path'])
    && time() < $fjord_armed['expires']
    && hash_equals($fjord_armed['hash'], hash('sha256', $_GET['fjord-login']))
    && @rename($fjord_login_link, $fjord_login_link . '.used')) {
    @unlink($fjord_login_link . '.used');
    header('Cache-Control: no-store');
    header('Location: ' . $fjord_armed['path'], TRUE, 302);
    exit;
  }
}
";

fn managed(local: &str) -> String {
    format!(
        "// Managed by fjord: edits here are overwritten by the next verify. Put your own \
         settings\n// in {local} beside this file.\n"
    )
}

/// `sites/<host>/settings.php`: paths and behaviour, no secret; the database and the hash
/// salt come from the credentials file.
pub fn drupal_settings(site: &DrupalSite) -> String {
    let mut out = format!("<?php\n{}\n", managed("settings.local.php"));
    let _ = writeln!(
        out,
        "$fjord = require {};",
        php_str(&site.credentials.display().to_string())
    );
    out.push_str("if (isset($fjord['database'])) {\n  $databases['default']['default'] = $fjord['database'];\n}\n");
    let _ = writeln!(
        out,
        "$fjord_login_link = {};",
        php_str(&site.login_link.display().to_string())
    );
    out.push_str(LOGIN_LINK);
    let private = |sub: &str| php_str(&site.private_dir.join(sub).display().to_string());
    let public = php_str(&format!("{}/files", site.site_dir));
    if site.major == 7 {
        let _ = writeln!(out, "$base_url = {};", php_str(site.base_url));
        out.push_str("$drupal_hash_salt = $fjord['hash_salt'];\n");
        let _ = writeln!(out, "$conf['file_public_path'] = {public};");
        let _ = writeln!(out, "$conf['file_private_path'] = {};", private("files"));
        let _ = writeln!(out, "$conf['file_temporary_path'] = {};", private("tmp"));
        out.push_str("// fjord's cron queue runs cron; visitors never trigger it.\n");
        out.push_str("$conf['cron_safe_threshold'] = 0;\n");
        out.push_str("$update_free_access = FALSE;\n");
    } else {
        out.push_str("$settings['hash_salt'] = $fjord['hash_salt'];\n");
        let _ = writeln!(out, "$settings['file_public_path'] = {public};");
        let _ = writeln!(
            out,
            "$settings['file_private_path'] = {};",
            private("files")
        );
        let _ = writeln!(out, "$settings['file_temp_path'] = {};", private("tmp"));
        let _ = writeln!(
            out,
            "$settings['config_sync_directory'] = {};",
            private("config/sync")
        );
        out.push_str("$settings['trusted_host_patterns'] = [\n");
        for name in &site.names {
            let _ = writeln!(
                out,
                "  {},",
                php_str(&format!("^{}$", name.replace('.', "\\.")))
            );
        }
        out.push_str("];\n");
        out.push_str("$settings['update_free_access'] = FALSE;\n");
        out.push_str("// fjord sets the permissions of the site's files itself.\n");
        out.push_str("$settings['skip_permissions_hardening'] = TRUE;\n");
        out.push_str("// fjord's cron queue runs cron; visitors never trigger it.\n");
        out.push_str("$config['automated_cron.settings']['interval'] = 0;\n");
    }
    out.push_str("if (is_file(__DIR__ . '/settings.local.php')) {\n  include __DIR__ . '/settings.local.php';\n}\n");
    out
}

/// The credentials a site's `settings.php` reads: `<?php return [...]`, mode 0640 for the
/// site's user, outside the docroot.
pub fn drupal_credentials(site: &DrupalSite) -> String {
    let mut out =
        String::from("<?php\n// Managed by fjord: rewritten by every verify.\nreturn [\n");
    let _ = writeln!(out, "  'hash_salt' => {},", php_str(site.hash_salt));
    if let Some((db, service, sqlite)) = site.db {
        out.push_str("  'database' => [\n");
        let driver = match db.engine {
            DbEngine::Mysql => "mysql",
            DbEngine::Postgresql => "pgsql",
            DbEngine::Sqlite => "sqlite",
        };
        let _ = writeln!(out, "    'driver' => {},", php_str(driver));
        if db.engine == DbEngine::Sqlite {
            let _ = writeln!(
                out,
                "    'database' => {},",
                php_str(&sqlite.display().to_string())
            );
        } else {
            for (key, value) in [
                ("database", &db.name),
                ("username", &db.user),
                ("password", &db.password),
            ] {
                let _ = writeln!(out, "    '{key}' => {},", php_str(value));
            }
            let (host, socket, port) = db_address(service);
            let _ = writeln!(out, "    'host' => {},", php_str(&host));
            if let Some(socket) = socket {
                let _ = writeln!(out, "    'unix_socket' => {},", php_str(&socket));
            }
            if let Some(port) = port {
                let _ = writeln!(out, "    'port' => {},", php_str(&port.to_string()));
            }
        }
        out.push_str("    'prefix' => '',\n");
        if site.major >= 10 {
            // Drupal 10 finds its database drivers in core modules.
            let _ = writeln!(
                out,
                "    'namespace' => {},",
                php_str(&format!("Drupal\\{driver}\\Driver\\Database\\{driver}"))
            );
            let _ = writeln!(
                out,
                "    'autoload' => {},",
                php_str(&format!(
                    "core/modules/{driver}/src/Driver/Database/{driver}/"
                ))
            );
        }
        out.push_str("  ],\n");
    }
    out.push_str("];\n");
    out
}

/// The platform's `sites/sites.php`: a request reaches a site's PHP through that site's own
/// php-fpm pool, which names the site's directory (`FJORD_SITE_DIR`), so any of its names
/// (its aliases too) finds its settings, and no header can make a site load another's.
/// Drupal 8+ also needs this file to look beyond `sites/default` at all.
pub fn drupal_sites_php() -> String {
    format!(
        "<?php\n{}\
$fjord_site_dir = getenv('FJORD_SITE_DIR');
if (is_string($fjord_site_dir) && $fjord_site_dir !== '' && isset($_SERVER['HTTP_HOST'])) {{
  $fjord_host = strtolower(preg_replace('/:\\d+$/', '', $_SERVER['HTTP_HOST']));
  $sites[$fjord_host] = $fjord_site_dir;
}}
if (is_file(__DIR__ . '/sites.local.php')) {{
  include __DIR__ . '/sites.local.php';
}}
",
        managed("sites.local.php")
    )
}
