//! MediaWiki's files: the platform's `LocalSettings.php`, which loads the settings of the
//! site its pool names, and a site's settings.

use std::fmt::Write as _;
use std::path::PathBuf;

use model::{DbService, SiteDatabase};

use crate::php::{db_address, php_str};

/// The platform's `LocalSettings.php`.
pub fn mediawiki_dispatcher() -> String {
    "<?php
// Managed by fjord. Every site on this code base has its own settings; the php-fpm pool that
// runs the site (or fjord, on the command line) names them. A request cannot choose them.
if (!defined('MEDIAWIKI')) {
    exit;
}
$fjord_site_config = getenv('FJORD_SITE_CONFIG');
if (!is_string($fjord_site_config) || $fjord_site_config === '' || !is_file($fjord_site_config)) {
    http_response_code(404);
    exit(\"No site is configured here.\\n\");
}
require $fjord_site_config;
"
    .to_string()
}

/// What a MediaWiki site's settings are made of.
pub struct MediawikiSite<'a> {
    /// Its canonical address (`$wgServer`).
    pub url: String,
    /// Its uploads (`$wgUploadDirectory`), served at `/images`.
    pub upload_dir: PathBuf,
    /// Its caches (`$wgCacheDirectory`), in its private dir, within `open_basedir`.
    pub cache_dir: PathBuf,
    pub tmp_dir: PathBuf,
    /// What its install chose (`$wgSitename`), kept in a file of the site's own.
    pub local: PathBuf,
    pub db: &'a SiteDatabase,
    pub db_service: &'a DbService,
    pub secret_key: &'a str,
    /// The skins the code base has (`skins/<name>/skin.json`).
    pub skins: Vec<String>,
}

/// A site's own settings (its user's only: they hold its database password).
pub fn mediawiki_settings(site: &MediawikiSite) -> String {
    let (host, socket, port) = db_address(site.db_service);
    let server = match (socket, port) {
        (Some(socket), _) => format!("{host}:{socket}"),
        (None, Some(port)) => format!("{host}:{port}"),
        (None, None) => host,
    };
    let mut out = format!(
        "<?php
// Managed by fjord: rewritten by every verify. The site's own choices are in {local}.
if (!defined('MEDIAWIKI')) {{
    exit;
}}
$wgSitename = 'Wiki';
$wgServer = {url};
$wgCanonicalServer = {url};
$wgScriptPath = '';
$wgResourceBasePath = $wgScriptPath;
$wgDBtype = 'mysql';
$wgDBserver = {server};
$wgDBname = {name};
$wgDBuser = {user};
$wgDBpassword = {password};
$wgDBprefix = '';
$wgUploadDirectory = {uploads};
$wgUploadPath = '/images';
$wgEnableUploads = true;
$wgCacheDirectory = {cache};
$wgTmpDirectory = {tmp};
$wgSecretKey = {secret};
$wgUpgradeKey = {upgrade};
$wgLanguageCode = 'en';
$wgMainCacheType = CACHE_NONE;
$wgEnableEmail = false;
$wgShellLocale = 'C.UTF-8';
$wgUseInstantCommons = false;
$wgPingback = false;
",
        local = site.local.display(),
        url = php_str(&site.url),
        server = php_str(&server),
        name = php_str(&site.db.name),
        user = php_str(&site.db.user),
        password = php_str(&site.db.password),
        uploads = php_str(&site.upload_dir.display().to_string()),
        cache = php_str(&site.cache_dir.display().to_string()),
        tmp = php_str(&site.tmp_dir.display().to_string()),
        secret = php_str(site.secret_key),
        upgrade = php_str(&site.secret_key[..16.min(site.secret_key.len())]),
    );
    for skin in &site.skins {
        let _ = writeln!(out, "wfLoadSkin({});", php_str(skin));
    }
    if let Some(first) = site
        .skins
        .iter()
        .find(|s| *s == "Vector")
        .or(site.skins.first())
    {
        let _ = writeln!(out, "$wgDefaultSkin = {};", php_str(&first.to_lowercase()));
    }
    let _ = write!(
        out,
        "if (is_file({local})) {{\n    require {local};\n}}\n",
        local = php_str(&site.local.display().to_string())
    );
    out
}
