<?php
// Managed by fjord. Every site on this code base has its own config dir; the php-fpm pool
// that runs the site (or fjord, on the command line) names it. A request cannot choose it.
$fjord_site_config = getenv('FJORD_SITE_CONFIG');
if (!is_string($fjord_site_config) || $fjord_site_config === ''
    || !is_dir(dirname($fjord_site_config) . '/conf')) {
    http_response_code(404);
    exit("No site is configured here.\n");
}
if (!defined('DOKU_CONF')) define('DOKU_CONF', dirname($fjord_site_config) . '/conf/');
$fjord_defaults = dirname(__DIR__) . '/conf/';
$config_cascade = array(
    'main' => array(
        'default' => array($fjord_defaults . 'dokuwiki.php'),
        'local' => array(DOKU_CONF . 'local.php'),
        'protected' => array(DOKU_CONF . 'local.protected.php'),
    ),
    'acronyms' => array(
        'default' => array($fjord_defaults . 'acronyms.conf'),
        'local' => array(DOKU_CONF . 'acronyms.local.conf'),
    ),
    'entities' => array(
        'default' => array($fjord_defaults . 'entities.conf'),
        'local' => array(DOKU_CONF . 'entities.local.conf'),
    ),
    'interwiki' => array(
        'default' => array($fjord_defaults . 'interwiki.conf'),
        'local' => array(DOKU_CONF . 'interwiki.local.conf'),
    ),
    'license' => array(
        'default' => array($fjord_defaults . 'license.php'),
        'local' => array(DOKU_CONF . 'license.local.php'),
    ),
    'manifest' => array(
        'default' => array($fjord_defaults . 'manifest.json'),
        'local' => array(DOKU_CONF . 'manifest.local.json'),
    ),
    'mediameta' => array(
        'default' => array($fjord_defaults . 'mediameta.php'),
        'local' => array(DOKU_CONF . 'mediameta.local.php'),
    ),
    'mime' => array(
        'default' => array($fjord_defaults . 'mime.conf'),
        'local' => array(DOKU_CONF . 'mime.local.conf'),
    ),
    'scheme' => array(
        'default' => array($fjord_defaults . 'scheme.conf'),
        'local' => array(DOKU_CONF . 'scheme.local.conf'),
    ),
    'smileys' => array(
        'default' => array($fjord_defaults . 'smileys.conf'),
        'local' => array(DOKU_CONF . 'smileys.local.conf'),
    ),
    'wordblock' => array(
        'default' => array($fjord_defaults . 'wordblock.conf'),
        'local' => array(DOKU_CONF . 'wordblock.local.conf'),
    ),
    'plugins' => array(
        'default' => array($fjord_defaults . 'plugins.php'),
        'local' => array(DOKU_CONF . 'plugins.local.php'),
        'protected' => array(
            $fjord_defaults . 'plugins.required.php',
            DOKU_CONF . 'plugins.protected.php',
        ),
    ),
);
unset($fjord_site_config, $fjord_defaults);
