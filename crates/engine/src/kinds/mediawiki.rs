//! MediaWiki: many wikis on one code base. The platform keeps the code and fjord's
//! `LocalSettings.php`, which loads the settings of the site its pool names; each site has
//! its own database, uploads (`images/` in its files dir, served at `/images`), caches in its
//! private dir, and its PHP run as its own user. Install and upgrade are MediaWiki's own
//! `maintenance/install.php` and `maintenance/update.php`, run as the site's user.

use super::*;
use host::Reads;

pub struct Mediawiki;

/// The PHP entry points MediaWiki serves; its web installer (`mw-config/`) is not one.
const SCRIPTS: [&str; 7] = [
    "/index.php",
    "/api.php",
    "/load.php",
    "/rest.php",
    "/thumb.php",
    "/opensearch_desc.php",
    "/img_auth.php",
];

/// The version `includes/Defines.php` names (`define( 'MW_VERSION', '1.39.17' );`).
fn version(r: &dyn Reads, code: &Path) -> Option<String> {
    let defines = r.read_head(&code.join("includes").join("Defines.php"), 65536)?;
    let line = defines.lines().find(|l| l.contains("'MW_VERSION'"))?;
    let value = line.rsplit_once("'MW_VERSION'")?.1;
    php_single_quoted(value.trim_start_matches([',', ' ']))
}

fn skins(r: &dyn Reads, code: &Path) -> Vec<String> {
    r.list_subdirs(&code.join("skins"))
        .unwrap_or_default()
        .into_iter()
        .filter(|s| r.is_file(&code.join("skins").join(s).join("skin.json")))
        .collect()
}

/// Runs one of MediaWiki's maintenance scripts as the site's user with `args`; values named
/// in `files` are read from the environment into private files first (so no password is in
/// an argument), and those files are removed afterwards.
const MAINTENANCE: &str = r#"<?php
$tmp = getenv('TMPDIR');
$made = [];
$args = json_decode(getenv('FJORD_ARGS'), true);
foreach (json_decode(getenv('FJORD_FILES'), true) as $option => $variable) {
    $file = tempnam($tmp, 'fjord');
    chmod($file, 0600);
    file_put_contents($file, getenv($variable));
    $made[] = $file;
    $args[] = "--$option=$file";
}
$confpath = $tmp . '/fjord-install-' . bin2hex(random_bytes(6));
if (getenv('FJORD_CONFPATH')) {
    mkdir($confpath, 0700);
    $args[] = "--confpath=$confpath";
    // The installer refuses to run beside settings it finds: it is shown none (what it
    // writes there is thrown away; fjord's settings are the site's).
    define('MW_CONFIG_FILE', "$confpath/LocalSettings.php");
}
register_shutdown_function(function () use ($made, $confpath) {
    foreach ($made as $file) {
        @unlink($file);
    }
    @unlink("$confpath/LocalSettings.php");
    @rmdir($confpath);
});
$script = getenv('FJORD_SCRIPT');
$argv = array_merge([$script], $args);
$_SERVER['argv'] = $argv;
$argc = count($argv);
chdir(dirname($script));
require $script;
"#;

fn maintenance(
    app: &SiteApp,
    describe: &str,
    script: &str,
    args: Vec<String>,
    files: Vec<(&str, &str, String)>,
    confpath: bool,
) -> Option<PhpRun> {
    let mut env = vec![
        (
            "FJORD_SCRIPT".to_string(),
            app.platform
                .path
                .join("maintenance")
                .join(script)
                .display()
                .to_string(),
        ),
        // Set here, so that MediaWiki does not set it with `putenv`, which sites may not call.
        (
            "MW_INSTALL_PATH".to_string(),
            app.platform.path.as_path().display().to_string(),
        ),
        (
            "FJORD_ARGS".to_string(),
            serde_json::to_string(&args).unwrap_or_default(),
        ),
    ];
    let mut named = serde_json::Map::new();
    for (option, variable, value) in files {
        named.insert(option.to_string(), variable.into());
        env.push((variable.to_string(), value));
    }
    env.push((
        "FJORD_FILES".to_string(),
        serde_json::Value::Object(named).to_string(),
    ));
    if confpath {
        env.push(("FJORD_CONFPATH".to_string(), "1".to_string()));
    }
    app.php_run(describe, MAINTENANCE.to_string(), env)
}

impl AppKind for Mediawiki {
    fn describe(&self, r: &dyn Reads, code: &Path) -> Result<CodeBase> {
        let version = version(r, code);
        if !r.is_file(&code.join("index.php")) || version.is_none() {
            return Err(crate::Error::Refused(format!(
                "{} has no index.php and includes/Defines.php naming MW_VERSION: not a \
                 MediaWiki code base",
                code.display()
            )));
        }
        Ok(CodeBase {
            version,
            packages: skins(r, code)
                .into_iter()
                .map(|s| Package::named("skin", s, None))
                .collect(),
            web_root: None,
        })
    }

    fn needs_putenv(&self) -> bool {
        true
    }

    fn owned_files(&self) -> &'static [&'static str] {
        &["LocalSettings.php"]
    }

    fn platform_files(&self, _r: &dyn Reads, platform: &Platform) -> Vec<ConfigFile> {
        vec![ConfigFile {
            path: platform.path.join("LocalSettings.php"),
            contents: render::mediawiki_dispatcher(),
        }]
    }

    fn default_db_engine(&self) -> Option<&'static str> {
        Some("mysql")
    }

    fn db_engines(&self) -> Option<&'static [DbEngine]> {
        Some(&[DbEngine::Mysql])
    }

    fn web(&self, app: &SiteApp) -> render::WebApp {
        let mut hidden = php::hidden_dirs();
        hidden.extend(
            [
                "/cache/",
                "/includes/",
                "/languages/",
                "/maintenance/",
                "/mw-config/",
                "/vendor/",
                "/tests/",
                "/docs/",
                "/config/",
            ]
            .into_iter()
            .map(String::from),
        );
        render::WebApp {
            headers: super::SITE_HEADERS,
            docroot: app.platform.path.as_path().to_path_buf(),
            php_socket: app.php.as_ref().map(|p| p.socket.clone()),
            front_controller: true,
            hidden,
            files: vec![("/images/".into(), app.files_dir.join("images"))],
            denied_files: None,
            php_scripts: Some(SCRIPTS.iter().map(|s| s.to_string()).collect()),
            proxy: None,
        }
    }

    fn seed_files(&self, app: &SiteApp) -> Vec<ConfigFile> {
        vec![ConfigFile {
            path: app.files_dir.join("images").join("README"),
            contents: "MediaWiki keeps this site's uploads here.\n".into(),
        }]
    }

    fn site_config(&self, app: &SiteApp) -> Vec<ConfigFile> {
        let (Some(php), Some((db, service))) = (&app.php, app.db) else {
            return Vec::new();
        };
        let site = render::MediawikiSite {
            url: app.url(),
            upload_dir: app.files_dir.join("images"),
            cache_dir: app.private_dir.join("cache"),
            tmp_dir: php.tmp_dir.clone(),
            local: app.private_dir.join("local.php"),
            db,
            db_service: service,
            secret_key: &app.site.app_secret,
            skins: skins(&*app.reads, app.platform.path.as_path()),
        };
        vec![ConfigFile {
            path: php.site_config.clone(),
            contents: render::mediawiki_settings(&site),
        }]
    }

    fn install(&self, app: &SiteApp, input: &InstallInput, x: &mut dyn Steps) -> Result<()> {
        let (Some((db, service)), Some(php)) = (app.db, &app.php) else {
            return Ok(());
        };
        let _ = php;
        let password = host::random_secret(16)?;
        let title = input
            .title
            .clone()
            .unwrap_or_else(|| app.site.name.to_string());
        let admin = input.admin_user.clone().unwrap_or_else(|| "Admin".into());
        let (host, socket, port) = render::db_address_of(service);
        let server = match (socket, port) {
            (Some(socket), _) => format!("{host}:{socket}"),
            (None, Some(port)) => format!("{host}:{port}"),
            (None, None) => host,
        };
        let args = vec![
            "--dbtype=mysql".to_string(),
            format!("--dbserver={server}"),
            format!("--dbname={}", db.name),
            format!("--dbuser={}", db.user),
            format!("--server={}", app.url()),
            "--scriptpath=".to_string(),
            "--lang=en".to_string(),
            "--skins=Vector".to_string(),
            title.clone(),
            admin,
        ];
        let files = vec![
            ("dbpassfile", "FJORD_DB_PASSWORD", db.password.clone()),
            ("passfile", "FJORD_PASSWORD", password),
        ];
        if let Some(run) = maintenance(app, "install MediaWiki", "install.php", args, files, true) {
            x.run_php(&run)?;
        }
        // The site's own choices, which fjord's settings load last.
        let local = format!("<?php\n$wgSitename = {};\n", php_quote(&title));
        let code = "<?php\n$file = dirname(getenv('FJORD_SITE_CONFIG')) . '/local.php';\n\
                    if (file_put_contents($file, getenv('FJORD_LOCAL'), LOCK_EX) === false) {\n\
                    fwrite(STDERR, \"could not write $file\\n\");\n    exit(1);\n}\n"
            .to_string();
        if let Some(run) = app.php_run(
            "write the wiki's name",
            code,
            vec![("FJORD_LOCAL".to_string(), local)],
        ) {
            x.run_php(&run)?;
        }
        Ok(())
    }

    fn after_move(&self, app: &SiteApp, x: &mut dyn Steps) -> Result<()> {
        if let Some(run) = maintenance(
            app,
            "update MediaWiki's database",
            "update.php",
            vec!["--quick".into()],
            Vec::new(),
            false,
        ) {
            x.run_php(&run)?;
        }
        Ok(())
    }
}
