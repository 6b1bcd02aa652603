<?php
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
