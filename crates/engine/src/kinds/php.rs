//! Any PHP application with a front controller (`index.php`) in its code base: MediaWiki,
//! DokuWiki, custom code. No installer: the site gets its pool, user, files dir and database,
//! and a settings file the application reads through `require getenv('FJORD_SITE_CONFIG')`.

use super::*;
use host::Reads;

pub struct Php;

/// URL prefixes of fjord's own directories in a code base that serves from its root.
pub(super) fn hidden_dirs() -> Vec<String> {
    vec!["/sites/".into(), "/private/".into()]
}

impl AppKind for Php {
    fn describe(&self, r: &dyn Reads, code: &Path) -> Result<CodeBase> {
        if !r.is_file(&code.join("index.php")) {
            return Err(crate::Error::Refused(format!(
                "{} has no index.php: a php platform needs a front controller",
                code.display()
            )));
        }
        Ok(CodeBase::default())
    }

    fn web(&self, app: &SiteApp) -> render::WebApp {
        render::WebApp {
            headers: super::SITE_HEADERS,
            docroot: app.platform.path.as_path().to_path_buf(),
            php_socket: app.php.as_ref().map(|p| p.socket.clone()),
            front_controller: true,
            hidden: hidden_dirs(),
            files: Vec::new(),
            denied_files: None,
            php_scripts: None,
            proxy: None,
        }
    }

    fn found_config(
        &self,
        r: &dyn Reads,
        _files_dir: &Path,
        private_dir: &Path,
    ) -> Option<FoundConfig> {
        let settings = r.read_head(&private_dir.join("settings.php"), 65536)?;
        let entry = |key: &str| {
            let prefix = format!("'{key}' => ");
            settings
                .lines()
                .find_map(|l| l.trim().strip_prefix(&prefix).and_then(php_single_quoted))
        };
        Some(FoundConfig {
            database: entry("name").zip(entry("user")),
            engine: entry("engine").and_then(|e| DbEngine::parse(&e).ok()),
            app_secret: None,
        })
    }

    fn site_config(&self, app: &SiteApp) -> Vec<ConfigFile> {
        let Some(php) = &app.php else {
            return Vec::new();
        };
        let db = app
            .db
            .map(|(db, service)| (db, service, app.sqlite.as_path()));
        vec![ConfigFile {
            path: php.site_config.clone(),
            contents: render::php_settings(&app.url(), &app.files_dir, db),
        }]
    }
}
