//! The WordPress kind's tests (in a file of their own: some make files, which only tests
//! outside `crates/host` may).

use super::*;
use host::LocalReads;

#[test]
fn a_site_config_fjord_wrote_is_read_back_for_its_import() {
    let db = model::SiteDatabase {
        server_id: 1,
        engine: DbEngine::Mysql,
        name: "blog_example".into(),
        user: "blog_example".into(),
        password: "it's\\secret".into(),
    };
    let service = model::DbService::parse("mysql").unwrap();
    let secret = "ab".repeat(256);
    let salts: Vec<&str> = (0..8).map(|i| &secret[i * 64..(i + 1) * 64]).collect();
    let config = render::wordpress_site_config(&render::WordpressSite {
        url: "http://blog.example".into(),
        code: "/srv/wp".into(),
        content_dir: "/srv/wp/sites/blog.example".into(),
        db: &db,
        db_service: &service,
        table_prefix: "wp_",
        salts: std::array::from_fn(|i| salts[i]),
    });
    let found = found_in(&config).unwrap();
    assert_eq!(
        found.database,
        Some(("blog_example".into(), "blog_example".into()))
    );
    assert_eq!(found.app_secret, Some(secret));
    assert_eq!(
        php_single_quoted(r"'it\'s\\x' rest").as_deref(),
        Some(r"it's\x")
    );
}

#[test]
#[allow(clippy::disallowed_methods)]
fn a_theme_whose_style_css_is_a_link_is_never_read() {
    // The site's user links its theme's header to a file only root may read: fjord, as
    // root, reads the site's packages and would record a line of it as the version.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("root-only");
    std::fs::write(&secret, "Theme Name: x\nVersion: root-only-secret\n").unwrap();
    let content = dir.path().join("site");
    for theme in ["linked", "own"] {
        std::fs::create_dir_all(content.join("themes").join(theme)).unwrap();
    }
    std::os::unix::fs::symlink(&secret, content.join("themes/linked/style.css")).unwrap();
    std::os::unix::fs::symlink(dir.path(), content.join("themes/dir-link")).unwrap();
    std::fs::write(
        content.join("themes/own/style.css"),
        "Theme Name: Own\nVersion: 1.0\n",
    )
    .unwrap();
    let mut found = Vec::new();
    packages(&LocalReads, &content, &mut found);
    let found = format!("{found:?}");
    assert!(!found.contains("root-only-secret"), "{found}");
    assert!(
        found.contains("\"own\"") && found.contains("1.0"),
        "{found}"
    );
}

#[test]
fn versions_and_headers_are_read_as_wordpress_writes_them() {
    let source =
        "<?php\n/**\n * The version\n */\n$wp_version = '6.1.9';\n$wp_db_version = 53496;\n";
    assert_eq!(
        php_string_value(source, "$wp_version").as_deref(),
        Some("6.1.9")
    );
    let style = "/*\nTheme Name: Twenty Twenty-Three\nVersion: 1.0\n*/";
    assert_eq!(header_field(style, "Version").as_deref(), Some("1.0"));
    let plugin = "<?php\n/**\n * Plugin Name: Hello Dolly\n * Version: 1.7.2\n */";
    assert_eq!(
        header_field(plugin, "Plugin Name").as_deref(),
        Some("Hello Dolly")
    );
    assert_eq!(header_field(plugin, "Version").as_deref(), Some("1.7.2"));
}
