//! What varies by the kind of a platform's code base. Each kind is one module behind
//! [`AppKind`]; the task scripts call its hooks and never ask which kind they have, so a new
//! kind (Drupal) is a new module and one line in [`of`].

use host::Reads;
use std::path::{Path, PathBuf};

use host::{PhpRun, Steps};
use model::{DbEngine, DbService, Hostname, Platform, PlatformKind, Site, SiteDatabase};

use crate::Result;

mod dokuwiki;
pub mod drupal;
mod mediawiki;
mod php;
mod proxy;
mod static_site;
mod wordpress;

/// The kind's module.
pub fn of(kind: PlatformKind) -> &'static dyn AppKind {
    match kind {
        PlatformKind::Static => &static_site::Static,
        PlatformKind::Php => &php::Php,
        PlatformKind::Wordpress => &wordpress::Wordpress,
        PlatformKind::Drupal => &drupal::Drupal,
        PlatformKind::Dokuwiki => &dokuwiki::Dokuwiki,
        PlatformKind::Mediawiki => &mediawiki::Mediawiki,
        PlatformKind::Proxy => &proxy::Proxy,
    }
}

/// What a platform's code base is, as its kind reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeBase {
    pub version: Option<String>,
    /// Plugins, themes, modules, profiles.
    pub packages: Vec<Package>,
    /// Where it serves from, when not its root (a composer-built Drupal's `web/`).
    pub web_root: Option<model::WebRoot>,
}

/// A package of a code base (a platform's) or of a site (what it has enabled).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Package {
    /// plugin, theme, module, profile…
    pub kind: String,
    pub name: String,
    pub version: Option<String>,
    /// The project it is released in (Drupal: `drupal` for core's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The core versions it is made for (`7.x`, `^10 || ^11`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
    /// A platform's package: the highest schema version its code brings a database to (its
    /// last `hook_update_N`); a site's: the one its database is at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<i64>,
    /// Its directory, relative to the docroot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A site's package found in the site's own directory: it travels with the site.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub site_local: bool,
}

impl Package {
    /// A package known by its type, name and version only.
    pub fn named(kind: &str, name: String, version: Option<String>) -> Package {
        Package {
            kind: kind.to_string(),
            name,
            version,
            project: None,
            core: None,
            schema: None,
            path: None,
            site_local: false,
        }
    }
}

/// A site as its application sees it: where its files are, who runs its PHP, its database.
pub struct SiteApp<'a> {
    /// Reads of the machine the site is on.
    pub reads: std::sync::Arc<dyn Reads>,
    pub platform: &'a Platform,
    pub site: &'a Site,
    /// The site's own files (`<platform>/sites/<host>`): what travels with it.
    pub files_dir: PathBuf,
    /// Its credentials and config, outside any docroot (`<platform>/private/<host>`).
    pub private_dir: PathBuf,
    pub php: Option<SitePhp>,
    pub db: Option<(&'a SiteDatabase, &'a DbService)>,
    pub sqlite: PathBuf,
    /// Its canonical address (`Server::site_url`): the port of its server's vhosts included.
    pub url: String,
}

/// How a PHP site's code runs.
#[derive(Debug, Clone)]
pub struct SitePhp {
    pub user: String,
    /// Its php-fpm pool, one per place the site is served from.
    pub pool: String,
    pub cli: PathBuf,
    pub socket: PathBuf,
    pub tmp_dir: PathBuf,
    /// The file the site's PHP reads its settings from (`FJORD_SITE_CONFIG`).
    pub site_config: PathBuf,
    /// The directories its PHP may open files in.
    pub open_basedir: Vec<PathBuf>,
}

impl SiteApp<'_> {
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A run of PHP as the site's user, with its pool's limits and its settings file named.
    pub fn php_run(
        &self,
        describe: &str,
        code: String,
        env: Vec<(String, String)>,
    ) -> Option<PhpRun> {
        let php = self.php.as_ref()?;
        let basedir: Vec<String> = php
            .open_basedir
            .iter()
            .map(|p| format!("{}/", p.display()))
            .collect();
        let mut all_env = vec![
            (
                "FJORD_SITE_CONFIG".to_string(),
                php.site_config.display().to_string(),
            ),
            ("TMPDIR".to_string(), php.tmp_dir.display().to_string()),
            // The directory of `sites/` it runs (Drupal's sites.php reads it).
            (
                "FJORD_SITE_DIR".to_string(),
                self.site.name.as_str().to_string(),
            ),
        ];
        all_env.extend(env);
        let mut ini = vec![
            ("open_basedir".into(), basedir.join(":")),
            ("sys_temp_dir".into(), php.tmp_dir.display().to_string()),
            ("max_execution_time".into(), "300".into()),
            ("display_errors".into(), "stderr".into()),
        ];
        ini.extend(render::php_limits(
            self.platform.allow_exec,
            of(self.platform.kind).needs_putenv(),
        ));
        Some(PhpRun {
            cli: php.cli.clone(),
            user: php.user.clone(),
            describe: describe.to_string(),
            code,
            env: all_env,
            ini,
            cwd: self.platform.path.as_path().to_path_buf(),
            args: Vec::new(),
            hide_lines_with: None,
        })
    }
}

/// A config file of a site, written with mode 0640 for its user only.
pub struct ConfigFile {
    pub path: PathBuf,
    pub contents: String,
}

/// What fjord asks of a kind of application.
pub trait AppKind: Sync {
    /// Reads a code base: its version and packages, or why it is not one of this kind.
    fn describe(&self, r: &dyn Reads, code: &Path) -> Result<CodeBase>;

    /// The packages a site has of its own (WordPress: the themes in its content dir; Drupal:
    /// what it has enabled, at which schema version); an error says why they could not be
    /// read.
    fn site_packages(&self, _app: &SiteApp) -> std::result::Result<Vec<Package>, String> {
        Ok(Vec::new())
    }

    /// Files a code base needs from outside it, copied into the platform by its verify:
    /// (the file, where it goes relative to the platform). Debian's DokuWiki keeps its
    /// default config in `/etc/dokuwiki`, which no site's PHP may read.
    fn brought_in(&self, _r: &dyn Reads, _code: &Path) -> Vec<(PathBuf, PathBuf)> {
        Vec::new()
    }

    /// Whether the application cannot run without `putenv` (MediaWiki sets its locale with
    /// it on every request): its sites keep it and lose `mail()` and its kin instead
    /// (`render::MAIL_FUNCTIONS`).
    fn needs_putenv(&self) -> bool {
        false
    }

    /// Directories of the system's shared, packaged code the application reads beside its
    /// code base (Debian's DokuWiki loads phpseclib, SimplePie, GeSHi and jQuery from
    /// `/usr/share`): added to the sites' `open_basedir`, those that exist. Public code
    /// only, owned by root: never a place a site can write or another site's files.
    fn system_libraries(&self, _r: &dyn Reads) -> Vec<PathBuf> {
        Vec::new()
    }

    /// Paths below a code base's root that `platform_files` writes: `platform add --from`
    /// leaves them out of its copy, whatever they are in the source (Debian's MediaWiki
    /// links `LocalSettings.php` to a file that does not exist).
    fn owned_files(&self) -> &'static [&'static str] {
        &[]
    }

    /// Files the kind keeps in the platform's code base, rewritten by platform verify.
    fn platform_files(&self, _r: &dyn Reads, _platform: &Platform) -> Vec<ConfigFile> {
        Vec::new()
    }

    /// The database engine a new site gets when none is asked for.
    fn default_db_engine(&self) -> Option<&'static str> {
        None
    }

    /// The engines the application runs on (`None`: any, or none).
    fn db_engines(&self) -> Option<&'static [DbEngine]> {
        None
    }

    /// How nginx serves the site.
    fn web(&self, app: &SiteApp) -> render::WebApp;

    /// What a new site starts with in its files dir (a static site's placeholder page).
    fn seed_files(&self, _app: &SiteApp) -> Vec<ConfigFile> {
        Vec::new()
    }

    /// The site's own config files (pure renderers).
    fn site_config(&self, app: &SiteApp) -> Vec<ConfigFile>;

    /// Runs the application's installer, once its database, files and config exist.
    fn install(&self, _app: &SiteApp, _install: &InstallInput, _x: &mut dyn Steps) -> Result<()> {
        Ok(())
    }

    /// Brings a site's database up to its (new) code base after a move, clone or restore.
    fn after_move(&self, _app: &SiteApp, _x: &mut dyn Steps) -> Result<()> {
        Ok(())
    }

    /// Rewrites the site's old URL in its content after a clone or rename.
    fn change_url(&self, _app: &SiteApp, _from: &Hostname, _x: &mut dyn Steps) -> Result<()> {
        Ok(())
    }

    /// Whether the application has a cron for fjord's queue to run.
    fn has_cron(&self) -> bool {
        false
    }

    /// One cron run, if the application has cron.
    fn cron(&self, _app: &SiteApp) -> Option<PhpRun> {
        None
    }

    /// Whether the application has caches fjord can clear.
    fn has_cache(&self) -> bool {
        false
    }

    /// A run that clears the application's caches, if it has any to clear.
    fn cache_clear(&self, _app: &SiteApp) -> Option<PhpRun> {
        None
    }

    /// Reads the config of a site found in the platform (its files dir and its private dir)
    /// for its import; `None`: this is not a site fjord can import.
    fn found_config(
        &self,
        _r: &dyn Reads,
        _files_dir: &Path,
        _private_dir: &Path,
    ) -> Option<FoundConfig> {
        None
    }

    /// Directories of `sites/` that are the application's own, never a site (Drupal's
    /// `all`, `default`).
    fn not_sites(&self) -> &'static [&'static str] {
        &[]
    }

    /// The command-line tool that drives the platform's sites, as its code is now (Drupal:
    /// the drush used), or none for a kind without one.
    fn site_tool(&self, _r: &dyn Reads, _platform: &Platform) -> Option<String> {
        None
    }

    /// Whether the application has a login fjord can hand out a link to.
    fn has_login_link(&self) -> bool {
        false
    }

    /// The PHP code that arms a one-time login link whose token hashes to `token_hash`.
    fn login_link(&self, _app: &SiteApp, _token_hash: &str, _expires_at_s: i64) -> Option<String> {
        None
    }
}

/// What the config of a site found on a platform says (for its import).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundConfig {
    /// Its database's name and user (the password is replaced on import).
    pub database: Option<(String, String)>,
    /// Its database's engine, when the config says.
    pub engine: Option<DbEngine>,
    /// Its keys and salts, when they are fjord's (kept, so nobody is logged out).
    pub app_secret: Option<String>,
}

/// A PHP string literal, single-quoted.
pub(crate) fn php_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A single-quoted PHP string starting at `text` (`'…'`, with `\'` and `\\`).
pub(crate) fn php_single_quoted(text: &str) -> Option<String> {
    let mut chars = text.strip_prefix('\'')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                c @ ('\'' | '\\') => out.push(c),
                c => {
                    out.push('\\');
                    out.push(c);
                }
            },
            '\'' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

pub use model::InstallInput;

/// The headers of an application with a login, which no other site may frame.
pub(crate) const APP_HEADERS: &[(&str, &str)] = &[
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
];

/// The headers of a site whose framing is its own affair (static files, a custom PHP
/// application, MediaWiki, which sets `X-Frame-Options` per page itself).
pub(crate) const SITE_HEADERS: &[(&str, &str)] =
    &[("Referrer-Policy", "strict-origin-when-cross-origin")];
