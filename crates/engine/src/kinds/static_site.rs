//! Static files, served as they are.

use super::*;
use host::Reads;

pub struct Static;

impl AppKind for Static {
    fn describe(&self, _r: &dyn Reads, _code: &Path) -> Result<CodeBase> {
        Ok(CodeBase::default())
    }

    fn web(&self, app: &SiteApp) -> render::WebApp {
        render::WebApp {
            headers: super::SITE_HEADERS,
            docroot: app.files_dir.clone(),
            php_socket: None,
            front_controller: false,
            hidden: Vec::new(),
            files: Vec::new(),
            denied_files: None,
            php_scripts: None,
            proxy: None,
        }
    }

    fn seed_files(&self, app: &SiteApp) -> Vec<ConfigFile> {
        vec![ConfigFile {
            path: app.files_dir.join("index.html"),
            contents: render::placeholder_index(app.site),
        }]
    }

    fn site_config(&self, _app: &SiteApp) -> Vec<ConfigFile> {
        Vec::new()
    }
}
