<?php
// Managed by fjord: edits here are overwritten by the next verify.
define('DB_NAME', 'example_com');
define('DB_USER', 'example_com');
define('DB_PASSWORD', '0123456789abcdef\'\\x');
define('DB_HOST', 'localhost:/run/mysqld/mysqld.sock');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
$table_prefix = 'wp_';
define('AUTH_KEY', 'a');
define('SECURE_AUTH_KEY', 'b');
define('LOGGED_IN_KEY', 'c');
define('NONCE_KEY', 'd');
define('AUTH_SALT', 'e');
define('SECURE_AUTH_SALT', 'f');
define('LOGGED_IN_SALT', 'g');
define('NONCE_SALT', 'h');
if (!defined('ABSPATH')) { define('ABSPATH', '/srv/wp/'); }
define('WP_HOME', 'http://example.com');
define('WP_SITEURL', 'http://example.com');
define('WP_CONTENT_DIR', '/srv/wp/sites/example.com');
define('WP_CONTENT_URL', 'http://example.com/site-content');
define('WP_PLUGIN_DIR', '/srv/wp/wp-content/plugins');
define('WP_PLUGIN_URL', 'http://example.com/wp-content/plugins');
define('DISALLOW_FILE_MODS', true);
define('DISALLOW_FILE_EDIT', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
define('DISABLE_WP_CRON', true);
require_once ABSPATH . 'wp-settings.php';
