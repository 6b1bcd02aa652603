//! DokuWiki's files: the platform's `inc/preload.php`, which points DokuWiki at the config
//! dir of the site its pool names, and a site's protected settings.

use std::fmt::Write as _;
use std::path::Path;

/// The config files DokuWiki ships whose defaults every site of a platform shares; fjord
/// keeps them in the platform's `conf/` (Debian keeps them in `/etc/dokuwiki`).
pub const DOKUWIKI_DEFAULT_CONF: [&str; 13] = [
    "dokuwiki.php",
    "acronyms.conf",
    "entities.conf",
    "interwiki.conf",
    "license.php",
    "manifest.json",
    "mediameta.php",
    "mime.conf",
    "plugins.php",
    "plugins.required.php",
    "scheme.conf",
    "smileys.conf",
    "wordblock.conf",
];

/// The platform's `inc/preload.php` (DokuWiki includes it before anything else). The pool
/// that runs the site (or fjord, on the command line) names the site's settings file; its
/// `conf/` dir beside it is the site's `DOKU_CONF`. No request chooses it (not the `Host`
/// header, not `animal`), and every shared default is read from the platform's `conf/`.
pub fn dokuwiki_preload() -> String {
    let mut out = String::from(
        "<?php
// Managed by fjord. Every site on this code base has its own config dir; the php-fpm pool
// that runs the site (or fjord, on the command line) names it. A request cannot choose it.
$fjord_site_config = getenv('FJORD_SITE_CONFIG');
if (!is_string($fjord_site_config) || $fjord_site_config === ''
    || !is_dir(dirname($fjord_site_config) . '/conf')) {
    http_response_code(404);
    exit(\"No site is configured here.\\n\");
}
if (!defined('DOKU_CONF')) define('DOKU_CONF', dirname($fjord_site_config) . '/conf/');
$fjord_defaults = dirname(__DIR__) . '/conf/';
$config_cascade = array(
    'main' => array(
        'default' => array($fjord_defaults . 'dokuwiki.php'),
        'local' => array(DOKU_CONF . 'local.php'),
        'protected' => array(DOKU_CONF . 'local.protected.php'),
    ),
",
    );
    for (key, file, local) in [
        ("acronyms", "acronyms.conf", "acronyms.local.conf"),
        ("entities", "entities.conf", "entities.local.conf"),
        ("interwiki", "interwiki.conf", "interwiki.local.conf"),
        ("license", "license.php", "license.local.php"),
        ("manifest", "manifest.json", "manifest.local.json"),
        ("mediameta", "mediameta.php", "mediameta.local.php"),
        ("mime", "mime.conf", "mime.local.conf"),
        ("scheme", "scheme.conf", "scheme.local.conf"),
        ("smileys", "smileys.conf", "smileys.local.conf"),
        ("wordblock", "wordblock.conf", "wordblock.local.conf"),
    ] {
        let _ = writeln!(
            out,
            "    '{key}' => array(\n        'default' => array($fjord_defaults . '{file}'),\n        \
             'local' => array(DOKU_CONF . '{local}'),\n    ),"
        );
    }
    out.push_str(
        "    'plugins' => array(
        'default' => array($fjord_defaults . 'plugins.php'),
        'local' => array(DOKU_CONF . 'plugins.local.php'),
        'protected' => array(
            $fjord_defaults . 'plugins.required.php',
            DOKU_CONF . 'plugins.protected.php',
        ),
    ),
);
unset($fjord_site_config, $fjord_defaults);
",
    );
    out
}

/// What a site's settings fix, over anything its administrator sets in DokuWiki's config
/// manager (`local.protected.php` wins over `local.php`): where its data lives, its
/// canonical address (sites are served from the root of their names), and that its pages have access control.
pub fn dokuwiki_protected(url: &str, data_dir: &Path) -> String {
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    format!(
        "<?php
// Managed by fjord: rewritten by every verify.
$conf['savedir'] = {savedir};
$conf['baseurl'] = {base};
$conf['basedir'] = '/';
$conf['useacl'] = 1;
$conf['superuser'] = '@admin';
$conf['authtype'] = 'authplain';
",
        savedir = quote(&data_dir.display().to_string()),
        base = quote(url),
    )
}
