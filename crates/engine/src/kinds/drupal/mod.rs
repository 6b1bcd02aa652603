//! Drupal 7 and Drupal 8 and later, in Drupal's own multisite layout: each site in
//! `sites/<host>/` of the platform's docroot, with a `settings.php` of fjord's that reads the
//! site's credentials from outside the docroot. The application is driven through the
//! platform's drush when it has one, or else through PHP of fjord's own (`helper`) that calls
//! Drupal's install, update, cron and one-time-login functions, run as the site's user.

use super::*;
use host::Reads;

mod discover;
mod helper;
pub mod php_serialized;
pub mod schema;

pub use discover::{Layout, info_values, layout, package_dirs, packages, schema_in_code};

pub struct Drupal;

/// Drupal's source and config files: never served, whatever their directory.
const DENIED_FILES: &str = "\\.(engine|inc|info|install|make|module|profile|po|sh|sql|theme|\
twig|tpl(\\.php)?|xtmpl|yml|test)$|^/(composer\\.(json|lock)|web\\.config|\
(README|CHANGELOG|COPYRIGHT|INSTALL|LICENSE|MAINTAINERS|UPDATE)[^/]*\\.txt)$";

fn not_drupal(code: &Path) -> crate::Error {
    crate::Error::Refused(format!(
        "{} is not a Drupal code base: neither includes/bootstrap.inc (Drupal 7) nor \
         core/lib/Drupal.php (Drupal 8 and later) with its VERSION was found, at its root or \
         in web/ or docroot/",
        code.display()
    ))
}

/// The platform's code base as it is now.
pub(crate) fn platform_layout(r: &dyn Reads, platform: &Platform) -> Result<Layout> {
    let mut found =
        layout(r, platform.path.as_path()).ok_or_else(|| not_drupal(platform.path.as_path()))?;
    if found.drush.is_none() {
        found.drush = platform.drush.as_ref().map(|d| d.as_path().to_path_buf());
    }
    Ok(found)
}

/// The packages of a site: each enabled one with the schema version its database is at,
/// and its version from the site's own directory (then it travels with the site) or else
/// from the platform.
fn site_packages(app: &SiteApp, layout: &Layout) -> std::result::Result<Vec<Package>, String> {
    let docroot = layout.docroot(app.platform.path.as_path());
    let site_dir = format!("sites/{}", app.site.name.as_str());
    let local_dirs = [format!("{site_dir}/modules"), format!("{site_dir}/themes")];
    let local_dirs: Vec<&str> = local_dirs.iter().map(String::as_str).collect();
    let r = &*app.reads;
    let local = packages(r, &docroot, &local_dirs, layout.major, &layout.version);
    let platform = packages(
        r,
        &docroot,
        package_dirs(layout.major),
        layout.major,
        &layout.version,
    );
    let Some((db, service)) = app.db else {
        return Ok(Vec::new());
    };
    let ctl;
    let reader = if db.engine == DbEngine::Sqlite {
        host::SiteDb::Sqlite(&app.sqlite)
    } else {
        ctl = crate::scripts::db_ctl(service)
            .ok_or("the site's database server is not on this machine")?;
        host::SiteDb::Server {
            ctl: &ctl,
            database: &db.name,
            user: &db.user,
            password: &db.password,
        }
    };
    let enabled = schema::enabled(&*app.reads, &reader, layout.major)?;
    Ok(enabled
        .into_iter()
        .map(|e| {
            let (code, site_local) = match local.iter().find(|p| p.name == e.name) {
                Some(p) => (Some(p), true),
                None => (platform.iter().find(|p| p.name == e.name), false),
            };
            Package {
                kind: code.map(|p| p.kind.clone()).unwrap_or(e.kind),
                version: code.and_then(|p| p.version.clone()),
                project: code.and_then(|p| p.project.clone()),
                core: code.and_then(|p| p.core.clone()),
                schema: e.schema,
                path: code.and_then(|p| p.path.clone()),
                site_local,
                name: e.name,
            }
        })
        .collect())
}

/// What a `settings.php` says of its site's database and hash salt: fjord's reads its
/// credentials file; anyone else's holds `$databases` itself.
fn found_in(settings: &str, credentials: Option<&str>) -> Option<FoundConfig> {
    let source = if settings.contains("$fjord = require") {
        credentials?
    } else {
        settings
    };
    let entry = |key: &str| {
        source.lines().find_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix(&format!("'{key}' => "))
                .or_else(|| line.strip_prefix(&format!("\"{key}\" => ")))?;
            php_single_quoted(rest).or_else(|| {
                let rest = rest.strip_prefix('"')?;
                Some(rest[..rest.find('"')?].to_string())
            })
        })
    };
    let engine = match entry("driver").as_deref() {
        Some("mysql") | None => DbEngine::Mysql,
        Some("pgsql") => DbEngine::Postgresql,
        Some("sqlite") => DbEngine::Sqlite,
        Some(_) => return None,
    };
    let database = if engine == DbEngine::Sqlite {
        None
    } else {
        Some((entry("database")?, entry("username")?))
    };
    let salt = entry("hash_salt").or_else(|| {
        settings.lines().find_map(|line| {
            let rest = line
                .trim()
                .strip_prefix("$drupal_hash_salt = ")
                .or_else(|| line.trim().strip_prefix("$settings['hash_salt'] = "))?;
            php_single_quoted(rest)
        })
    });
    let salt = salt.filter(|s| {
        (16..=512).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    Some(FoundConfig {
        database,
        engine: Some(engine),
        app_secret: salt,
    })
}

impl AppKind for Drupal {
    fn describe(&self, r: &dyn Reads, code: &Path) -> Result<CodeBase> {
        let layout = layout(r, code).ok_or_else(|| not_drupal(code))?;
        let docroot = layout.docroot(code);
        Ok(CodeBase {
            packages: packages(
                r,
                &docroot,
                package_dirs(layout.major),
                layout.major,
                &layout.version,
            ),
            version: Some(layout.version),
            web_root: layout.web_root,
        })
    }

    fn site_packages(&self, app: &SiteApp) -> std::result::Result<Vec<Package>, String> {
        let layout = platform_layout(&*app.reads, app.platform).map_err(|e| e.to_string())?;
        site_packages(app, &layout)
    }

    fn platform_files(&self, r: &dyn Reads, platform: &Platform) -> Vec<ConfigFile> {
        let path = render::platform_sites_dir(platform).join("sites.php");
        // A sites.php of someone else's is theirs: its mappings win (see the README).
        let foreign = r
            .read_head(&path, 65536)
            .is_some_and(|text| !text.contains("Managed by fjord"));
        if foreign {
            return Vec::new();
        }
        vec![ConfigFile {
            path,
            contents: render::drupal_sites_php(),
        }]
    }

    fn default_db_engine(&self) -> Option<&'static str> {
        Some("mysql")
    }

    fn web(&self, app: &SiteApp) -> render::WebApp {
        render::WebApp {
            headers: crate::kinds::APP_HEADERS,
            docroot: app.platform.docroot(),
            php_socket: app.php.as_ref().map(|p| p.socket.clone()),
            front_controller: true,
            // A Drupal 7 code base serves from its root, where fjord keeps private/.
            hidden: vec!["/private/".into()],
            files: Vec::new(),
            denied_files: Some(DENIED_FILES),
            php_scripts: Some(vec!["/index.php".into()]),
            proxy: None,
        }
    }

    fn site_config(&self, app: &SiteApp) -> Vec<ConfigFile> {
        let Some(php) = &app.php else {
            return Vec::new();
        };
        let major = platform_layout(&*app.reads, app.platform).map_or(7, |l| l.major);
        let names: Vec<&str> = app.site.all_names().map(|n| n.as_str()).collect();
        let url = app.url();
        let site = render::DrupalSite {
            base_url: &url,
            major,
            names,
            site_dir: format!("sites/{}", app.site.name.as_str()),
            credentials: php.site_config.clone(),
            private_dir: app.private_dir.clone(),
            login_link: helper::login_file(app),
            db: app
                .db
                .map(|(db, service)| (db, service, app.sqlite.as_path())),
            hash_salt: &app.site.app_secret,
        };
        // Drupal cannot make these itself: PHP's recursive mkdir looks at parents that
        // open_basedir hides.
        let private_dirs = ["files", "config/sync"].map(|dir| ConfigFile {
            path: app.private_dir.join(dir).join("README.txt"),
            contents: format!(
                "The site's {}: outside the docroot, never served, read by its user only.\n",
                if dir == "files" {
                    "private files"
                } else {
                    "configuration to import and export (Drupal 8 and later)"
                }
            ),
        });
        let mut files = vec![
            ConfigFile {
                path: app.files_dir.join("settings.php"),
                contents: render::drupal_settings(&site),
            },
            ConfigFile {
                path: php.site_config.clone(),
                contents: render::drupal_credentials(&site),
            },
        ];
        files.extend(private_dirs);
        files
    }

    fn seed_files(&self, app: &SiteApp) -> Vec<ConfigFile> {
        // Drupal checks that its files directories exist and are writable by the site.
        ["files/.gitignore"]
            .into_iter()
            .map(|f| ConfigFile {
                path: app.files_dir.join(f),
                contents: "# The site's public files: kept out of version control.\n*\n".into(),
            })
            .collect()
    }

    fn install(&self, app: &SiteApp, input: &InstallInput, x: &mut dyn Steps) -> Result<()> {
        let layout = platform_layout(&*app.reads, app.platform)?;
        x.run_php(&helper::install(app, &layout, input)?)?;
        Ok(())
    }

    fn after_move(&self, app: &SiteApp, x: &mut dyn Steps) -> Result<()> {
        let layout = platform_layout(&*app.reads, app.platform)?;
        if let Some(run) = helper::update(app, &layout) {
            x.run_php(&run)?;
        }
        Ok(())
    }

    fn has_cron(&self) -> bool {
        true
    }

    fn cron(&self, app: &SiteApp) -> Option<PhpRun> {
        let layout = platform_layout(&*app.reads, app.platform).ok()?;
        helper::cron(app, &layout)
    }

    fn has_cache(&self) -> bool {
        true
    }

    fn cache_clear(&self, app: &SiteApp) -> Option<PhpRun> {
        let layout = platform_layout(&*app.reads, app.platform).ok()?;
        helper::cache_clear(app, &layout)
    }

    fn found_config(
        &self,
        r: &dyn Reads,
        files_dir: &Path,
        private_dir: &Path,
    ) -> Option<FoundConfig> {
        let settings = r.read_head(&files_dir.join("settings.php"), 1 << 20)?;
        let credentials = r.read_head(&private_dir.join("settings.php"), 65536);
        found_in(&settings, credentials.as_deref())
    }

    fn not_sites(&self) -> &'static [&'static str] {
        &["all", "default", "simpletest"]
    }

    fn site_tool(&self, r: &dyn Reads, platform: &Platform) -> Option<String> {
        let drush = match platform_layout(r, platform) {
            Ok(layout) => layout.drush,
            // Code that cannot be read now: what the platform was given, if anything.
            Err(_) => platform.drush.as_ref().map(|d| d.as_path().to_path_buf()),
        };
        Some(drush.map_or_else(
            || "none: fjord's own PHP drives its sites".to_string(),
            |d| d.display().to_string(),
        ))
    }

    fn has_login_link(&self) -> bool {
        true
    }

    fn login_link(&self, app: &SiteApp, token_hash: &str, expires_at_s: i64) -> Option<String> {
        let layout = platform_layout(&*app.reads, app.platform).ok()?;
        Some(helper::arm_login_link(
            app,
            &layout,
            token_hash,
            expires_at_s,
        ))
    }
}

#[cfg(test)]
mod tests;
