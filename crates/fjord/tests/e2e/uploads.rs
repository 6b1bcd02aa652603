//! What a site's visitors and editors meet in its files: an editor's copies and the files
//! that tell an application's version are never served.

use crate::harness::Env;

/// Names no site serves, whatever its kind, and an asset beside each that stays served.
const NEVER_SERVED: &[&str] = &[
    "settings.php~",
    "sites/default/settings.php~",
    "wp-config.php.bak",
    "index.php.orig",
    "settings.php.save",
    ".settings.php.swp",
    "settings.php.swp",
    "settings.php.swo",
    "config.old",
    "core/CHANGELOG.txt",
    "CHANGELOG.txt",
    "core/INSTALL.txt",
    "core/INSTALL.mysql.txt",
    "UPGRADE.txt",
    "core/UPDATE.txt",
    "core/MAINTAINERS.txt",
    "core/LICENSE.txt",
    "core/COPYRIGHT.txt",
    "modules/contrib/foo/README.md",
    "composer.json",
    "composer.lock",
    "%23settings.php%23",
];

const SERVED: &[&str] = &[
    "robots.txt",
    "core/misc/drupal.js",
    "themes/a/style.css",
    "wp-content/uploads/notes.txt",
    "index.html",
];

#[test]
fn editor_copies_and_version_files_are_never_served_and_assets_are() {
    let env = Env::new();
    env.ok(&["site", "add", "copies.example", "--platform", "p1"]);
    env.dispatch_until_idle(&[]);
    let docroot = env.docroot("p1", "copies.example");
    for name in NEVER_SERVED.iter().chain(SERVED) {
        let path = docroot.join(name.replace("%23", "#"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "Drupal 10.1.6, 2023-11-01\n").unwrap();
    }
    // Files written after the install: readable by nginx as the site's files are.
    env.ok(&["site", "verify", "copies.example"]);
    env.dispatch_until_idle(&[]);
    let mut wrong = Vec::new();
    for name in NEVER_SERVED {
        let (status, _, _) = env.nginx.get("copies.example", &format!("/{name}"));
        if !matches!(status, 403 | 404) {
            wrong.push(format!("/{name} answered {status}"));
        }
    }
    for name in SERVED {
        let (status, _, _) = env.nginx.get("copies.example", &format!("/{name}"));
        if status != 200 {
            wrong.push(format!("/{name} answered {status}, not 200"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
