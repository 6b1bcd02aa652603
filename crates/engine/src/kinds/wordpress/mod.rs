//! WordPress: many sites on one code base, in the Aegir manner. The platform keeps core, the
//! shared themes and plugins and a `wp-config.php` that only picks the site's config; each
//! site has its own config (database, table prefix, salts, URLs), its own content dir
//! (uploads, its own themes), a must-use plugin of fjord's, and its PHP run as its own user.

use super::*;
use host::Reads;

pub struct Wordpress;

const TABLE_PREFIX: &str = "wp_";

const SALT_NAMES: [&str; 8] = [
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
];

/// What a site config fjord wrote says: its database, and its salts when they are fjord's
/// (so that an import keeps them and logs nobody out).
fn found_in(config: &str) -> Option<FoundConfig> {
    let defined = |name: &str| {
        let prefix = format!("define('{name}', ");
        config
            .lines()
            .find_map(|l| l.trim().strip_prefix(&prefix).and_then(php_single_quoted))
    };
    let database = Some((defined("DB_NAME")?, defined("DB_USER")?));
    let salts: Vec<String> = SALT_NAMES.iter().filter_map(|n| defined(n)).collect();
    let ours = salts.len() == 8
        && salts
            .iter()
            .all(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    Some(FoundConfig {
        database,
        engine: Some(DbEngine::Mysql),
        app_secret: ours.then(|| salts.concat()),
    })
}

/// A `define`d or assigned string in PHP source: `$wp_version = '6.1.9';`.
fn php_string_value(source: &str, variable: &str) -> Option<String> {
    let line = source
        .lines()
        .find(|l| l.trim_start().starts_with(variable))?;
    let value = line.split_once('=')?.1.trim();
    let quote = value.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &value[1..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// A header field of a theme's style.css or a plugin's main file (`Version: 1.2`).
fn header_field(head: &str, field: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let line = line
            .trim_start_matches(|c: char| c == '*' || c == '#' || c == '@' || c.is_whitespace());
        let (key, value) = line.split_once(':')?;
        (key.trim().eq_ignore_ascii_case(field)).then(|| value.trim().to_string())
    })
}

fn packages(r: &dyn Reads, content: &Path, out: &mut Vec<Package>) {
    let themes = content.join("themes");
    for name in r.list_subdirs(&themes).unwrap_or_default() {
        if let Some(head) = r.read_head(&themes.join(&name).join("style.css"), 8192)
            && header_field(&head, "Theme Name").is_some()
        {
            out.push(Package::named(
                "theme",
                name,
                header_field(&head, "Version"),
            ));
        }
    }
    let plugins = content.join("plugins");
    for name in r.list_subdirs(&plugins).unwrap_or_default() {
        let dir = plugins.join(&name);
        let version = r
            .list_files(&dir)
            .into_iter()
            .filter(|f| f.ends_with(".php"))
            .filter_map(|f| r.read_head(&dir.join(f), 8192))
            .find(|head| header_field(head, "Plugin Name").is_some())
            .map(|head| header_field(&head, "Version"));
        if let Some(version) = version {
            out.push(Package::named("plugin", name, version));
        }
    }
}

/// Runs PHP with WordPress loaded for the site, as the site's user.
fn with_wordpress(app: &SiteApp, body: &str) -> String {
    format!(
        "<?php
$_SERVER['HTTP_HOST'] = {host};
$_SERVER['SERVER_NAME'] = {host};
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PORT'] = 80;
{body}",
        host = php_quote(app.site.name.as_str()),
    )
}

/// Rewrites the site's old URL as its new one in every text column of its tables, inside
/// PHP-serialized values too (whose `s:N:` lengths change with the URL): WordPress stores
/// absolute URLs in options, posts and meta. Plain, https and JSON-escaped (`http:\/\/`, as
/// block attributes hold them) forms are rewritten; objects of classes not loaded are kept.
const REPLACE_URLS: &str = r#"global $wpdb;
$from = getenv('FJORD_FROM');
$to = getenv('FJORD_TO');
$pairs = [];
foreach (['http://', 'https://', 'http:\/\/', 'https:\/\/'] as $scheme) {
    $pairs[$scheme . $from] = $scheme . $to;
}
function fjord_replace_data($data, $pairs) {
    if (is_string($data)) {
        return fjord_replace($data, $pairs);
    }
    if (is_array($data)) {
        foreach ($data as $key => $value) {
            $data[$key] = fjord_replace_data($value, $pairs);
        }
    }
    return $data;
}
function fjord_replace($value, $pairs) {
    if (is_serialized($value)) {
        $data = @unserialize($value, ['allowed_classes' => false]);
        if ($data !== false || $value === 'b:0;') {
            return serialize(fjord_replace_data($data, $pairs));
        }
    }
    return strtr($value, $pairs);
}
$changed = 0;
$tables = $wpdb->get_col($wpdb->prepare('SHOW TABLES LIKE %s', $wpdb->esc_like($wpdb->prefix) . '%'));
foreach ($tables as $table) {
    $keys = $wpdb->get_results("SHOW KEYS FROM `$table` WHERE Key_name = 'PRIMARY'");
    if (count($keys) !== 1) {
        continue;
    }
    $key = $keys[0]->Column_name;
    foreach ($wpdb->get_results("SHOW COLUMNS FROM `$table`") as $column) {
        if ($column->Field === $key || !preg_match('/char|text/i', $column->Type)) {
            continue;
        }
        $name = $column->Field;
        $rows = $wpdb->get_results($wpdb->prepare(
            "SELECT `$key` AS k, `$name` AS v FROM `$table` WHERE `$name` LIKE %s",
            '%' . $wpdb->esc_like($from) . '%'
        ));
        foreach ($rows as $row) {
            $new = fjord_replace($row->v, $pairs);
            if ($new !== $row->v) {
                if ($wpdb->update($table, [$name => $new], [$key => $row->k]) === false) {
                    fwrite(STDERR, "could not update $table.$name: {$wpdb->last_error}
");
                    exit(1);
                }
                $changed++;
            }
        }
    }
}
wp_cache_flush();
echo "rewrote $changed value(s) from $from to $to
";
"#;

impl AppKind for Wordpress {
    fn describe(&self, r: &dyn Reads, code: &Path) -> Result<CodeBase> {
        let version = r
            .read_head(&code.join("wp-includes/version.php"), 65536)
            .and_then(|source| php_string_value(&source, "$wp_version"))
            .ok_or_else(|| {
                crate::Error::Refused(format!(
                    "{} is not a WordPress code base: wp-includes/version.php with $wp_version \
                     not found",
                    code.display()
                ))
            })?;
        let mut packages = Vec::new();
        self::packages(r, &code.join("wp-content"), &mut packages);
        Ok(CodeBase {
            version: Some(version),
            packages,
            web_root: None,
        })
    }

    fn site_packages(&self, app: &SiteApp) -> std::result::Result<Vec<Package>, String> {
        let mut found = Vec::new();
        packages(&*app.reads, &app.files_dir, &mut found);
        for package in &mut found {
            package.site_local = true;
        }
        Ok(found)
    }

    fn default_db_engine(&self) -> Option<&'static str> {
        Some("mysql")
    }

    fn db_engines(&self) -> Option<&'static [DbEngine]> {
        Some(&[DbEngine::Mysql])
    }

    fn platform_files(&self, _r: &dyn Reads, platform: &Platform) -> Vec<ConfigFile> {
        vec![ConfigFile {
            path: platform.path.join("wp-config.php"),
            contents: render::wordpress_dispatcher(),
        }]
    }

    fn web(&self, app: &SiteApp) -> render::WebApp {
        render::WebApp {
            headers: crate::kinds::APP_HEADERS,
            docroot: app.platform.path.as_path().to_path_buf(),
            php_socket: app.php.as_ref().map(|p| p.socket.clone()),
            front_controller: true,
            hidden: php::hidden_dirs(),
            files: vec![(
                format!("{}/", render::WORDPRESS_CONTENT_URL_PATH),
                app.files_dir.clone(),
            )],
            denied_files: None,
            php_scripts: None,
            proxy: None,
        }
    }

    fn seed_files(&self, app: &SiteApp) -> Vec<ConfigFile> {
        vec![
            // The site's own themes, beside the platform's.
            ConfigFile {
                path: app.files_dir.join("themes").join("index.php"),
                contents: "<?php
// Silence is golden.
"
                .into(),
            },
        ]
    }

    fn site_config(&self, app: &SiteApp) -> Vec<ConfigFile> {
        let (Some(php), Some((db, service))) = (&app.php, app.db) else {
            return Vec::new();
        };
        let secret = &app.site.app_secret;
        let salts: Vec<&str> = (0..8)
            .map(|i| secret.get(i * 64..(i + 1) * 64).unwrap_or(secret))
            .collect();
        let site = render::WordpressSite {
            url: app.url(),
            code: app.platform.path.as_path().to_path_buf(),
            content_dir: app.files_dir.clone(),
            db,
            db_service: service,
            table_prefix: TABLE_PREFIX,
            salts: std::array::from_fn(|i| salts[i]),
        };
        vec![
            ConfigFile {
                path: php.site_config.clone(),
                contents: render::wordpress_site_config(&site),
            },
            ConfigFile {
                path: app.files_dir.join("mu-plugins").join("fjord.php"),
                contents: render::wordpress_mu_plugin(),
            },
        ]
    }

    fn install(&self, app: &SiteApp, input: &InstallInput, x: &mut dyn Steps) -> Result<()> {
        let password = host::random_secret(12)?;
        let body = format!(
            "define('WP_INSTALLING', true);
// No mail from the installer (a pluggable function, defined before WordPress defines it):
// fjord tells the site's client itself.
function wp_new_blog_notification() {{}}
// The site's config defines ABSPATH and loads wp-settings.php.
require {loader};
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$result = wp_install(getenv('FJORD_TITLE'), getenv('FJORD_ADMIN_USER'), getenv('FJORD_ADMIN_EMAIL'), 1, '', wp_slash(getenv('FJORD_ADMIN_PASSWORD')));
update_option('siteurl', {url});
update_option('home', {url});
echo 'WordPress ', get_bloginfo('version'), ' installed; admin user ', getenv('FJORD_ADMIN_USER'), \"\\n\";
",
            loader = php_quote(&app.platform.path.join("wp-load.php").display().to_string()),
            url = php_quote(&app.url()),
        );
        let title = input
            .title
            .clone()
            .unwrap_or_else(|| app.site.name.to_unicode());
        let env = vec![
            ("FJORD_TITLE".to_string(), title),
            (
                "FJORD_ADMIN_USER".to_string(),
                input.admin_user.clone().unwrap_or_else(|| "admin".into()),
            ),
            (
                "FJORD_ADMIN_EMAIL".to_string(),
                input
                    .admin_email
                    .clone()
                    .unwrap_or_else(|| format!("admin@{}", app.site.name.as_str())),
            ),
            ("FJORD_ADMIN_PASSWORD".to_string(), password),
        ];
        let run = app
            .php_run(
                "the WordPress installer (wp_install)",
                with_wordpress(app, &body),
                env,
            )
            .ok_or_else(|| crate::Error::Refused("a WordPress site needs PHP".into()))?;
        x.run_php(&run)?;
        Ok(())
    }

    fn after_move(&self, app: &SiteApp, x: &mut dyn Steps) -> Result<()> {
        let body = format!(
            "require {loader};
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
// The roots of the active theme are stored as absolute paths: at a new place they name the
// old platform's directory. Found again among this place's theme directories.
search_theme_directories(true);
foreach (['template' => 'template_root', 'stylesheet' => 'stylesheet_root'] as $theme => $root) {{
    $found = get_raw_theme_root(get_option($theme), true);
    if ($found && $found !== get_option($root)) {{
        update_option($root, $found);
        echo $root, ' -> ', $found, \"\\n\";
    }}
}}
$before = get_option('db_version');
wp_upgrade();
wp_cache_flush();
echo 'database version ', $before, ' -> ', get_option('db_version'), \"\\n\";
",
            loader = php_quote(&app.platform.path.join("wp-load.php").display().to_string()),
        );
        if let Some(run) = app.php_run(
            "WordPress's upgrade routine (wp_upgrade)",
            with_wordpress(app, &body),
            Vec::new(),
        ) {
            x.run_php(&run)?;
        }
        Ok(())
    }

    fn change_url(&self, app: &SiteApp, from: &Hostname, x: &mut dyn Steps) -> Result<()> {
        let body = format!(
            "require {loader};
{REPLACE_URLS}",
            loader = php_quote(&app.platform.path.join("wp-load.php").display().to_string()),
        );
        let env = vec![
            ("FJORD_FROM".to_string(), from.as_str().to_string()),
            ("FJORD_TO".to_string(), app.site.name.as_str().to_string()),
        ];
        let describe = format!("rewrite {from} as {} in the database", app.site.name);
        if let Some(run) = app.php_run(&describe, with_wordpress(app, &body), env) {
            x.run_php(&run)?;
        }
        Ok(())
    }

    fn has_cron(&self) -> bool {
        true
    }

    fn cron(&self, app: &SiteApp) -> Option<PhpRun> {
        let code = with_wordpress(
            app,
            &format!(
                // wp-cron.php defines DOING_CRON itself (and stops if it is defined).
                "require {cron};
",
                cron = php_quote(&app.platform.path.join("wp-cron.php").display().to_string()),
            ),
        );
        app.php_run("cron", code, Vec::new())
    }

    fn found_config(
        &self,
        r: &dyn Reads,
        _files_dir: &Path,
        private_dir: &Path,
    ) -> Option<FoundConfig> {
        found_in(&r.read_head(&private_dir.join("settings.php"), 65536)?)
    }

    fn has_login_link(&self) -> bool {
        true
    }

    fn login_link(&self, app: &SiteApp, token_hash: &str, expires_at_s: i64) -> Option<String> {
        Some(with_wordpress(
            app,
            &format!(
                "require {loader};
$admins = get_users(['role' => 'administrator', 'orderby' => 'ID', 'number' => 1]);
if (!$admins) {{ fwrite(STDERR, \"the site has no administrator\\n\"); exit(1); }}
update_option('fjord_login_link', ['hash' => {hash}, 'expires' => {expires_at_s}, 'user' => $admins[0]->user_login], false);
echo 'login link armed for ', $admins[0]->user_login, \"\\n\";
",
                loader = php_quote(&app.platform.path.join("wp-load.php").display().to_string()),
                hash = php_quote(token_hash),
            ),
        ))
    }
}

#[cfg(test)]
mod tests;
