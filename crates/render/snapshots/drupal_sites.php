<?php
// Managed by fjord: edits here are overwritten by the next verify. Put your own settings
// in sites.local.php beside this file.
$fjord_site_dir = getenv('FJORD_SITE_DIR');
if (is_string($fjord_site_dir) && $fjord_site_dir !== '' && isset($_SERVER['HTTP_HOST'])) {
  $fjord_host = strtolower(preg_replace('/:\d+$/', '', $_SERVER['HTTP_HOST']));
  $sites[$fjord_host] = $fjord_site_dir;
}
if (is_file(__DIR__ . '/sites.local.php')) {
  include __DIR__ . '/sites.local.php';
}
