<?php
// Managed by fjord: edits here are overwritten by the next verify. Put your own settings
// in settings.local.php beside this file.

$fjord = require '/srv/d/private/example.com/settings.php';
if (isset($fjord['database'])) {
  $databases['default']['default'] = $fjord['database'];
}
$fjord_login_link = '/srv/d/private/example.com/login-link.json';
if (PHP_SAPI !== 'cli' && isset($_GET['fjord-login']) && is_string($_GET['fjord-login'])) {
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
$base_url = 'http://example.com:8080';
$drupal_hash_salt = $fjord['hash_salt'];
$conf['file_public_path'] = 'sites/example.com/files';
$conf['file_private_path'] = '/srv/d/private/example.com/files';
$conf['file_temporary_path'] = '/srv/d/private/example.com/tmp';
// fjord's cron queue runs cron; visitors never trigger it.
$conf['cron_safe_threshold'] = 0;
$update_free_access = FALSE;
if (is_file(__DIR__ . '/settings.local.php')) {
  include __DIR__ . '/settings.local.php';
}
