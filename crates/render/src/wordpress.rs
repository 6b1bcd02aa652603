//! WordPress, many sites on one code base: the platform's `wp-config.php` only picks the
//! site's own config, named by the php-fpm pool that runs it (or by fjord on the command
//! line); each site's config holds its database, salts, URLs and its own content dir.

use std::fmt::Write;
use std::path::PathBuf;

use model::{DbService, SiteDatabase};

use crate::php::{db_address, php_str};

/// The URL prefix of a site's own content dir (uploads, its own themes).
pub const CONTENT_URL_PATH: &str = "/site-content";

/// What one WordPress site's config says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordpressSite<'a> {
    pub url: String,
    /// The platform's code base (`ABSPATH`).
    pub code: PathBuf,
    /// The site's own `wp-content`.
    pub content_dir: PathBuf,
    pub db: &'a SiteDatabase,
    pub db_service: &'a DbService,
    pub table_prefix: &'a str,
    /// Eight secrets for WordPress's keys and salts.
    pub salts: [&'a str; 8],
}

/// The platform's `wp-config.php`.
pub fn wordpress_dispatcher() -> String {
    "<?php
// Managed by fjord. Every site on this code base has its own config; the php-fpm pool that
// runs the site (or fjord, on the command line) names it. A request cannot choose it.
$fjord_site_config = getenv('FJORD_SITE_CONFIG');
if (!is_string($fjord_site_config) || $fjord_site_config === '' || !is_file($fjord_site_config)) {
    http_response_code(404);
    exit(\"No site is configured here.\\n\");
}
require $fjord_site_config;
"
    .to_string()
}

const SALT_NAMES: [&str; 8] = [
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
];

/// A site's own config. Core updates and file edits are off: a platform is changed by moving
/// its sites to a newer one, never by a site. Cron is run by fjord's queue, not by visitors.
pub fn wordpress_site_config(site: &WordpressSite) -> String {
    let mut out = String::from(
        "<?php\n// Managed by fjord: edits here are overwritten by the next verify.\n",
    );
    let define = |out: &mut String, name: &str, value: String| {
        let _ = writeln!(out, "define('{name}', {value});");
    };
    let (host, socket, port) = db_address(site.db_service);
    let db_host = match (socket, port) {
        (Some(socket), _) => format!("{host}:{socket}"),
        (None, Some(port)) => format!("{host}:{port}"),
        (None, None) => host,
    };
    define(&mut out, "DB_NAME", php_str(&site.db.name));
    define(&mut out, "DB_USER", php_str(&site.db.user));
    define(&mut out, "DB_PASSWORD", php_str(&site.db.password));
    define(&mut out, "DB_HOST", php_str(&db_host));
    define(&mut out, "DB_CHARSET", php_str("utf8mb4"));
    define(&mut out, "DB_COLLATE", php_str(""));
    let _ = writeln!(out, "$table_prefix = {};", php_str(site.table_prefix));
    for (name, salt) in SALT_NAMES.iter().zip(site.salts) {
        define(&mut out, name, php_str(salt));
    }
    let code = site.code.display().to_string();
    let content = site.content_dir.display().to_string();
    // wp-load.php defines ABSPATH before it reads the config; the command line may not.
    let _ = writeln!(
        out,
        "if (!defined('ABSPATH')) {{ define('ABSPATH', {}); }}",
        php_str(&format!("{code}/"))
    );
    define(&mut out, "WP_HOME", php_str(&site.url));
    define(&mut out, "WP_SITEURL", php_str(&site.url));
    define(&mut out, "WP_CONTENT_DIR", php_str(&content));
    define(
        &mut out,
        "WP_CONTENT_URL",
        php_str(&format!("{}{CONTENT_URL_PATH}", site.url)),
    );
    // The platform's plugins are every site's plugins.
    define(
        &mut out,
        "WP_PLUGIN_DIR",
        php_str(&format!("{code}/wp-content/plugins")),
    );
    define(
        &mut out,
        "WP_PLUGIN_URL",
        php_str(&format!("{}/wp-content/plugins", site.url)),
    );
    define(&mut out, "DISALLOW_FILE_MODS", "true".into());
    define(&mut out, "DISALLOW_FILE_EDIT", "true".into());
    define(&mut out, "AUTOMATIC_UPDATER_DISABLED", "true".into());
    define(&mut out, "WP_AUTO_UPDATE_CORE", "false".into());
    define(&mut out, "DISABLE_WP_CRON", "true".into());
    out.push_str("require_once ABSPATH . 'wp-settings.php';\n");
    out
}

/// fjord's must-use plugin in each site's content dir: the platform's themes are every
/// site's themes, and the one-time login link fjord hands out is honoured here (once, before
/// it expires; only its hash is stored).
pub fn wordpress_mu_plugin() -> String {
    "<?php
// Managed by fjord: edits here are overwritten by the next verify.
// With one theme directory WordPress looks only in the site's content dir; with two it
// searches both: the site's own themes, then the platform's.
register_theme_directory(WP_CONTENT_DIR . '/themes');
register_theme_directory(ABSPATH . 'wp-content/themes');
// WordPress keeps the theme directories it found as absolute paths in the database, which a
// site's old and new places share while it moves (each with a platform of its own): the
// active theme's (`template_root`, `stylesheet_root`) and every theme's (the `theme_roots`
// transient, rewritten by whichever place looks first). A root that is not one of this
// place's theme directories is read as if below WP_CONTENT_DIR, the theme is not found, and
// pages answer 200 with nothing in them: each place maps such a root to its own directory
// that holds the theme.
(function () {
    $own_root = function ($root, $theme) {
        global $wp_theme_directories;
        $dirs = (array) $wp_theme_directories;
        if (!is_string($root) || $root === '' || $root[0] !== '/' || !is_string($theme)
            || $theme === '' || in_array($root, $dirs, true)
            || in_array(WP_CONTENT_DIR . $root, $dirs, true)) {
            return $root;
        }
        foreach ($dirs as $dir) {
            if (is_dir($dir . '/' . $theme)) {
                return $dir;
            }
        }
        return $root;
    };
    foreach (['template_root' => 'template', 'stylesheet_root' => 'stylesheet'] as $root => $theme) {
        add_filter('option_' . $root, function ($value) use ($own_root, $theme) {
            return $own_root($value, get_option($theme));
        });
    }
    add_filter('site_transient_theme_roots', function ($roots) use ($own_root) {
        if (is_array($roots)) {
            foreach ($roots as $theme => $root) {
                $roots[$theme] = $own_root($root, $theme);
            }
        }
        return $roots;
    });
})();

// A platform is changed by moving its sites to a newer one, never by a site: no update
// checks, and no calls home to wordpress.org (version, browser and news checks).
remove_action('init', 'wp_schedule_update_checks');
add_action('init', function () {
    foreach (['wp_version_check', 'wp_update_plugins', 'wp_update_themes'] as $hook) {
        if (wp_next_scheduled($hook)) {
            wp_clear_scheduled_hook($hook);
        }
    }
});
add_filter('pre_http_request', function ($response, $args, $url) {
    $host = strtolower((string) parse_url($url, PHP_URL_HOST));
    if (preg_match('/(^|\\.)(wordpress\\.org|w\\.org)$/', $host)) {
        return new WP_Error('fjord_blocked', 'wordpress.org is not called from sites fjord manages');
    }
    return $response;
}, 10, 3);

add_action('init', function () {
    if (!isset($_GET['fjord-login']) || !is_string($_GET['fjord-login'])) {
        return;
    }
    $token = $_GET['fjord-login'];
    $link = get_option('fjord_login_link');
    $refuse = function () {
        wp_die('This login link is not valid: it was used already or it has expired.', 'Login link', ['response' => 403]);
    };
    if (!is_array($link) || !isset($link['hash'], $link['expires'], $link['user'])) {
        $refuse();
    }
    if (!hash_equals($link['hash'], hash('sha256', $token)) || time() > (int) $link['expires']) {
        $refuse();
    }
    // Used once: only the request that deletes the option logs in.
    global $wpdb;
    $deleted = $wpdb->query($wpdb->prepare(
        \"DELETE FROM {$wpdb->options} WHERE option_name = %s AND option_value = %s\",
        'fjord_login_link',
        maybe_serialize($link)
    ));
    wp_cache_delete('fjord_login_link', 'options');
    wp_cache_delete('alloptions', 'options');
    if ($deleted !== 1) {
        $refuse();
    }
    $user = get_user_by('login', $link['user']);
    if (!$user) {
        $refuse();
    }
    wp_set_current_user($user->ID);
    wp_set_auth_cookie($user->ID);
    wp_safe_redirect(admin_url());
    exit;
}, 0);
"
    .to_string()
}
