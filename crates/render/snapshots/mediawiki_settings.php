<?php
// Managed by fjord: rewritten by every verify. The site's own choices are in /srv/mw/private/wiki.example.com/local.php.
if (!defined('MEDIAWIKI')) {
    exit;
}
$wgSitename = 'Wiki';
$wgServer = 'http://wiki.example.com:8080';
$wgCanonicalServer = 'http://wiki.example.com:8080';
$wgScriptPath = '';
$wgResourceBasePath = $wgScriptPath;
$wgDBtype = 'mysql';
$wgDBserver = 'localhost:/run/mysqld/mysqld.sock';
$wgDBname = 'example_com';
$wgDBuser = 'example_com';
$wgDBpassword = '0123456789abcdef\'\\x';
$wgDBprefix = '';
$wgUploadDirectory = '/srv/mw/sites/wiki.example.com/images';
$wgUploadPath = '/images';
$wgEnableUploads = true;
$wgCacheDirectory = '/srv/mw/private/wiki.example.com/cache';
$wgTmpDirectory = '/srv/mw/private/wiki.example.com/tmp';
$wgSecretKey = '0123456789abcdef0123456789abcdef';
$wgUpgradeKey = '0123456789abcdef';
$wgLanguageCode = 'en';
$wgMainCacheType = CACHE_NONE;
$wgEnableEmail = false;
$wgShellLocale = 'C.UTF-8';
$wgUseInstantCommons = false;
$wgPingback = false;
wfLoadSkin('MonoBook');
wfLoadSkin('Vector');
$wgDefaultSkin = 'vector';
if (is_file('/srv/mw/private/wiki.example.com/local.php')) {
    require '/srv/mw/private/wiki.example.com/local.php';
}
