<?php
// Managed by fjord: edits here are overwritten by the next verify.
// With one theme directory WordPress looks only in the site's content dir; with two it
// searches both: the site's own themes, then the platform's.
register_theme_directory(WP_CONTENT_DIR . '/themes');
register_theme_directory(ABSPATH . 'wp-content/themes');
// WordPress stores the active theme's directory as an absolute path. While a site moves, its
// old and new places share one database, each with its own platform: each finds the theme
// among its own theme directories.
foreach (['template_root' => 'template', 'stylesheet_root' => 'stylesheet'] as $root => $theme) {
    add_filter('option_' . $root, function ($value) use ($theme) {
        global $wp_theme_directories;
        if (!is_string($value) || $value === '' || $value[0] !== '/' || is_dir($value)) {
            return $value;
        }
        $name = get_option($theme);
        foreach ((array) $wp_theme_directories as $dir) {
            if (is_string($name) && $name !== '' && is_dir($dir . '/' . $name)) {
                return $dir;
            }
        }
        return $value;
    });
}

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
    if (preg_match('/(^|\.)(wordpress\.org|w\.org)$/', $host)) {
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
        "DELETE FROM {$wpdb->options} WHERE option_name = %s AND option_value = %s",
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
