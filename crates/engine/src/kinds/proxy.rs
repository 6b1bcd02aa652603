//! A site that passes every request to an address on its server: fjord's own panel, served
//! through its own vhost (with its certificate) as any site is. Its platform holds no code;
//! the address is the platform's `upstream`.

use super::*;
use host::Reads;

pub struct Proxy;

impl AppKind for Proxy {
    fn describe(&self, _r: &dyn Reads, _code: &Path) -> Result<CodeBase> {
        Ok(CodeBase::default())
    }

    fn web(&self, app: &SiteApp) -> render::WebApp {
        render::WebApp {
            // The upstream sends its own security headers (the panel's are stricter).
            headers: &[],
            docroot: app.files_dir.clone(),
            php_socket: None,
            front_controller: false,
            hidden: Vec::new(),
            files: Vec::new(),
            denied_files: None,
            php_scripts: None,
            proxy: app
                .platform
                .upstream
                .or_else(|| crate::auth::DEFAULT_LISTEN.parse().ok()),
        }
    }

    fn site_config(&self, _app: &SiteApp) -> Vec<ConfigFile> {
        Vec::new()
    }
}
