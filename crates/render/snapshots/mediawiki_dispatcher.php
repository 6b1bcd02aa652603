<?php
// Managed by fjord. Every site on this code base has its own settings; the php-fpm pool that
// runs the site (or fjord, on the command line) names them. A request cannot choose them.
if (!defined('MEDIAWIKI')) {
    exit;
}
$fjord_site_config = getenv('FJORD_SITE_CONFIG');
if (!is_string($fjord_site_config) || $fjord_site_config === '' || !is_file($fjord_site_config)) {
    http_response_code(404);
    exit("No site is configured here.\n");
}
require $fjord_site_config;
