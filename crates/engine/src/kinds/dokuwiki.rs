//! DokuWiki: many wikis on one code base. The platform keeps the code, DokuWiki's shared
//! default config (in its `conf/`) and fjord's `inc/preload.php`, which makes the config dir
//! the pool names (`conf/` beside the site's settings file, in its private dir) the site's
//! `DOKU_CONF`; each site has its own pages, media and caches (`data/` in its files dir),
//! its own users and access rules, and its PHP run as its own user.

use super::*;
use host::Reads;

pub struct Dokuwiki;

/// The directories DokuWiki keeps a site's data in (`init_paths`): it refuses to run
/// without any of them.
const DATA_DIRS: [&str; 11] = [
    "pages",
    "attic",
    "media",
    "media_attic",
    "meta",
    "media_meta",
    "cache",
    "index",
    "locks",
    "tmp",
    "log",
];

/// The only PHP scripts DokuWiki serves; `install.php` is not one (fjord installs).
const SCRIPTS: [&str; 14] = [
    "/doku.php",
    "/index.php",
    "/feed.php",
    "/lib/exe/ajax.php",
    "/lib/exe/css.php",
    "/lib/exe/detail.php",
    "/lib/exe/fetch.php",
    "/lib/exe/indexer.php",
    "/lib/exe/jquery.php",
    "/lib/exe/js.php",
    "/lib/exe/manifest.php",
    "/lib/exe/mediamanager.php",
    "/lib/exe/opensearch.php",
    "/lib/exe/taskrunner.php",
];

/// What Debian's package loads from other packages by absolute path (its composer autoload,
/// `lib/exe/jquery.php`, the syntax highlighter); upstream's archive bundles them instead.
const SYSTEM_LIBRARIES: [&str; 6] = [
    "/usr/share/php/phpseclib",
    "/usr/share/php/simplepie",
    "/usr/share/php-geshi",
    "/usr/share/javascript/jquery",
    "/usr/share/javascript/jquery-ui",
    "/usr/share/javascript/jquery-cookie",
];

/// Where a code base keeps DokuWiki's default config: its own `conf/` (upstream's archive),
/// or the directory its `inc/preload.php` names as `DOKU_MAIN_CONF` (Debian's package:
/// `/etc/dokuwiki/`).
fn default_conf_dir(r: &dyn Reads, code: &Path) -> Option<PathBuf> {
    if r.is_file(&code.join("conf").join("dokuwiki.php")) {
        return Some(code.join("conf"));
    }
    let preload = r.read_head(&code.join("inc").join("preload.php"), 65536)?;
    let line = preload
        .lines()
        .find(|l| l.contains("define") && l.contains("'DOKU_MAIN_CONF'"))?;
    let value = line.rsplit_once("'DOKU_MAIN_CONF'")?.1;
    let dir = php_single_quoted(value.trim_start_matches([',', ' ']))?;
    let dir = PathBuf::from(dir);
    (dir.is_absolute() && r.is_file(&dir.join("dokuwiki.php"))).then_some(dir)
}

impl AppKind for Dokuwiki {
    fn describe(&self, r: &dyn Reads, code: &Path) -> Result<CodeBase> {
        let version = r.read_head(&code.join("VERSION"), 4096);
        if !r.is_file(&code.join("doku.php")) || version.is_none() {
            return Err(crate::Error::Refused(format!(
                "{} has no doku.php and VERSION: not a DokuWiki code base",
                code.display()
            )));
        }
        if default_conf_dir(r, code).is_none()
            && !r.is_file(&code.join("conf").join("dokuwiki.php"))
        {
            return Err(crate::Error::Refused(format!(
                "{} has no conf/dokuwiki.php, and its inc/preload.php names no directory that \
                 holds one (DOKU_MAIN_CONF): DokuWiki's default config is missing",
                code.display()
            )));
        }
        Ok(CodeBase {
            version: version.map(|v| v.trim().to_string()),
            ..CodeBase::default()
        })
    }

    fn brought_in(&self, r: &dyn Reads, code: &Path) -> Vec<(PathBuf, PathBuf)> {
        let Some(dir) = default_conf_dir(r, code) else {
            return Vec::new();
        };
        if dir == code.join("conf") {
            return Vec::new();
        }
        render::DOKUWIKI_DEFAULT_CONF
            .iter()
            .filter(|name| r.is_file(&dir.join(name)))
            .map(|name| (dir.join(name), PathBuf::from("conf").join(name)))
            .collect()
    }

    fn system_libraries(&self, r: &dyn Reads) -> Vec<PathBuf> {
        SYSTEM_LIBRARIES
            .iter()
            .map(PathBuf::from)
            .filter(|dir| r.is_dir(dir).unwrap_or(false))
            .collect()
    }

    fn platform_files(&self, _r: &dyn Reads, platform: &Platform) -> Vec<ConfigFile> {
        vec![ConfigFile {
            path: platform.path.join("inc").join("preload.php"),
            contents: render::dokuwiki_preload(),
        }]
    }

    fn web(&self, app: &SiteApp) -> render::WebApp {
        let mut hidden = php::hidden_dirs();
        // DokuWiki's own deny list (its .htaccess): config, data, code and tools.
        hidden.extend(
            ["/conf/", "/data/", "/inc/", "/bin/", "/vendor/"]
                .into_iter()
                .map(String::from),
        );
        render::WebApp {
            headers: super::APP_HEADERS,
            docroot: app.platform.path.as_path().to_path_buf(),
            php_socket: app.php.as_ref().map(|p| p.socket.clone()),
            front_controller: true,
            hidden,
            files: Vec::new(),
            denied_files: None,
            php_scripts: Some(SCRIPTS.iter().map(|s| s.to_string()).collect()),
            proxy: None,
        }
    }

    fn seed_files(&self, app: &SiteApp) -> Vec<ConfigFile> {
        DATA_DIRS
            .iter()
            .map(|dir| ConfigFile {
                path: app.files_dir.join("data").join(dir).join("_dummy"),
                contents: "DokuWiki keeps this site's data here.\n".into(),
            })
            .collect()
    }

    fn site_config(&self, app: &SiteApp) -> Vec<ConfigFile> {
        let Some(php) = &app.php else {
            return Vec::new();
        };
        let conf = conf_dir(php);
        vec![
            ConfigFile {
                path: php.site_config.clone(),
                contents: "<?php\n// Managed by fjord: this site's DokuWiki config is in conf/ \
                           beside this file.\n"
                    .into(),
            },
            ConfigFile {
                path: conf.join("local.protected.php"),
                contents: render::dokuwiki_protected(&app.url(), &app.files_dir.join("data")),
            },
        ]
    }

    /// Writes what DokuWiki's installer would: the wiki's title, its access rules (readable
    /// by all, editable by its users) and its administrator (a random password, hashed by
    /// PHP's bcrypt, which DokuWiki reads), as the site's user, into its own config dir.
    fn install(&self, app: &SiteApp, input: &InstallInput, x: &mut dyn Steps) -> Result<()> {
        let password = host::random_secret(12)?;
        let title = input
            .title
            .clone()
            .unwrap_or_else(|| app.site.name.to_string());
        let user = input.admin_user.clone().unwrap_or_else(|| "admin".into());
        let email = input
            .admin_email
            .clone()
            .unwrap_or_else(|| format!("admin@{}", app.site.name));
        let env = vec![
            ("FJORD_TITLE".to_string(), title),
            ("FJORD_ADMIN".to_string(), user),
            ("FJORD_EMAIL".to_string(), email),
            ("FJORD_PASSWORD".to_string(), password),
        ];
        if let Some(run) = app.php_run("install DokuWiki", INSTALL.to_string(), env) {
            x.run_php(&run)?;
        }
        Ok(())
    }
}

fn conf_dir(php: &SitePhp) -> PathBuf {
    php.site_config
        .parent()
        .map_or_else(|| PathBuf::from("conf"), |p| p.join("conf"))
}

/// DokuWiki's installer's output, written as the site's user. A name with `:` or a line
/// break would break `users.auth.php`'s lines, so it is refused.
const INSTALL: &str = r##"<?php
$conf = dirname(getenv('FJORD_SITE_CONFIG')) . '/conf/';
$title = getenv('FJORD_TITLE');
$admin = getenv('FJORD_ADMIN');
$email = getenv('FJORD_EMAIL');
foreach ([$admin, $email] as $field) {
    if (preg_match('/[:\r\n]/', $field)) {
        fwrite(STDERR, "a DokuWiki user name or address holds no ':' or line break\n");
        exit(1);
    }
}
$hash = password_hash(getenv('FJORD_PASSWORD'), PASSWORD_BCRYPT);
$local = "<?php\n\$conf['title'] = " . var_export($title, true) . ";\n\$conf['lang'] = 'en';\n\$conf['license'] = 'cc-by-sa';\n";
$acl = "# acl.auth.php\n# Written by fjord at install: everyone reads, users edit and upload.\n*\t@ALL\t1\n*\t@user\t8\n";
$users = "# users.auth.php\n# login:passwordhash:Real Name:email:groups,comma,separated\n"
    . "$admin:$hash:Administrator:$email:admin,user\n";
foreach (['local.php' => $local, 'acl.auth.php' => $acl, 'users.auth.php' => $users] as $name => $text) {
    if (file_put_contents($conf . $name, $text, LOCK_EX) === false) {
        fwrite(STDERR, "could not write $name\n");
        exit(1);
    }
}
"##;
