use std::path::{Path, PathBuf};

use model::{
    AbsPath, Hostname, Name, NginxService, Platform, PlatformKind, ReloadMethod, Site, SiteStatus,
};

use super::*;

/// Compares `actual` with `snapshots/<name>`; `UPDATE_SNAPSHOTS=1` rewrites the file instead.
#[track_caller]
#[allow(clippy::disallowed_methods)]
fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}: run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "snapshot {name} differs; UPDATE_SNAPSHOTS=1 rewrites it"
    );
}

fn nginx() -> NginxService {
    NginxService {
        binary: AbsPath::parse("p", "/usr/sbin/nginx").unwrap(),
        config: AbsPath::parse("p", "/etc/nginx/nginx.conf").unwrap(),
        prefix: None,
        include_dir: AbsPath::parse("p", "/etc/nginx/conf.d").unwrap(),
        listen: vec!["127.0.0.1:8080".parse().unwrap()],
        https_listen: Vec::new(),
        reload: ReloadMethod::Signal,
        files_owner: None,
        web_group: None,
        restart: Default::default(),
    }
}

fn platform() -> Platform {
    Platform {
        id: 1,
        name: Name::parse("n", "static1").unwrap(),
        server_id: 1,
        path: AbsPath::parse("p", "/srv/static1").unwrap(),
        kind: PlatformKind::Static,
        locked: false,
        php_version: None,
        web_root: None,
        drush: None,
        allow_exec: false,
        upload_limit: None,
        upstream: None,
    }
}

fn site(status: SiteStatus, redirect: bool) -> Site {
    let h = |s| Hostname::parse("h", s).unwrap();
    Site {
        id: 1,
        name: h("example.com"),
        platform_id: 1,
        aliases: vec![h("www.example.com"), h("bücher.example")],
        redirect_aliases: redirect,
        status,
        client_id: None,
        database: None,
        app_secret: String::new(),
        upload_limit: None,
        https: Default::default(),
    }
}

const CONFIG_DIR: &str = "/var/lib/fjord/config/local/nginx";
const LOG_DIR: &str = "/var/lib/fjord/logs/fj1a2b3c-1";

fn static_web() -> WebApp {
    WebApp {
        docroot: site_files_dir(&platform(), &site(SiteStatus::Installed, false)),
        php_socket: None,
        front_controller: false,
        hidden: Vec::new(),
        files: Vec::new(),
        denied_files: None,
        php_scripts: None,
        proxy: None,
        headers: &[],
    }
}

/// The vhost of `site` on `platform` as the engine builds it for a server listening on
/// 127.0.0.1:8080 (HTTP only).
fn spec(platform: &Platform, site: &Site, web: &WebApp, state: VhostState) -> VhostSpec {
    VhostSpec {
        name: site.name.as_str().to_string(),
        aliases: site
            .aliases
            .iter()
            .map(|h| h.as_str().to_string())
            .collect(),
        redirect_aliases: site.redirect_aliases,
        platform: platform.name.to_string(),
        http_listen: vec!["127.0.0.1:8080".parse().unwrap()],
        https_listen: Vec::new(),
        tls: None,
        https: site.https.mode,
        hsts: site.https.hsts,
        acme_dir: acme_root(Path::new(CONFIG_DIR)),
        disabled_dir: Path::new(CONFIG_DIR).join("disabled"),
        web: web.clone(),
        state: match (site.status, state) {
            (SiteStatus::Disabled, _) => VhostState::Disabled,
            (_, state) => state,
        },
        upload_limit: site.upload_limit_on(platform),
        canonical_http_port: 8080,
        canonical_https_port: None,
        log_dir: Some(PathBuf::from(LOG_DIR)),
    }
}

fn vhost(platform: &Platform, site: &Site, web: &WebApp) -> String {
    nginx_vhost(&spec(platform, site, web, VhostState::Serving))
}

const SOCKET: &str = "/var/lib/fjord/config/local/php-8.2/fj1a2b3c-1-1-a379a6.sock";

#[test]
fn vhost_php_and_wordpress() {
    let mut web = WebApp {
        docroot: PathBuf::from("/srv/wp"),
        php_socket: Some(PathBuf::from(SOCKET)),
        front_controller: true,
        hidden: vec!["/sites/".into(), "/private/".into()],
        files: Vec::new(),
        denied_files: None,
        php_scripts: None,
        proxy: None,
        headers: &[("X-Frame-Options", "SAMEORIGIN")],
    };
    // The platform's upload limit (16M), which this site takes.
    let platform = Platform {
        upload_limit: model::UploadLimit::from_mb(16),
        ..platform()
    };
    let mut site = site(SiteStatus::Installed, false);
    check("vhost_php.conf", &vhost(&platform, &site, &web));
    // The site's own limit (8M) wins.
    site.upload_limit = model::UploadLimit::from_mb(8);
    web.files = vec![(
        format!("{WORDPRESS_CONTENT_URL_PATH}/"),
        PathBuf::from("/srv/wp/sites/example.com"),
    )];
    check("vhost_wordpress.conf", &vhost(&platform, &site, &web));
}

#[test]
fn vhost_drupal() {
    let web = WebApp {
        docroot: PathBuf::from("/srv/d10/web"),
        php_socket: Some(PathBuf::from(SOCKET)),
        front_controller: true,
        hidden: vec!["/private/".into()],
        files: Vec::new(),
        denied_files: Some("\\.(install|module|yml)$"),
        php_scripts: Some(vec!["/index.php".into()]),
        proxy: None,
        headers: &[("X-Frame-Options", "SAMEORIGIN")],
    };
    let site = site(SiteStatus::Installed, false);
    check("vhost_drupal.conf", &vhost(&platform(), &site, &web));
}

#[test]
fn drupal_files() {
    let db = mysql_db();
    let service = model::DbService::parse("mysql").unwrap();
    let postgres = model::DbService::parse("postgresql").unwrap();
    let sqlite = Path::new("/srv/d7/private/example.com/database.sqlite");
    for (major, engine, file) in [
        (7, &service, "drupal7"),
        (10, &service, "drupal10"),
        (10, &postgres, "drupal10_postgresql"),
    ] {
        let mut db = db.clone();
        db.engine = engine.engine;
        let site = DrupalSite {
            major,
            base_url: "http://example.com:8080",
            names: vec!["example.com", "www.example.com"],
            site_dir: "sites/example.com".into(),
            credentials: "/srv/d/private/example.com/settings.php".into(),
            private_dir: "/srv/d/private/example.com".into(),
            login_link: "/srv/d/private/example.com/login-link.json".into(),
            db: Some((&db, engine, sqlite)),
            hash_salt: "0123abcd",
        };
        check(&format!("{file}_settings.php"), &drupal_settings(&site));
        check(
            &format!("{file}_credentials.php"),
            &drupal_credentials(&site),
        );
    }
    check("drupal_sites.php", &drupal_sites_php());
}

#[test]
fn php_pool_and_settings() {
    let pool = PhpPool {
        name: "fj1a2b3c-1-1-a379a6".into(),
        user: "fj1a2b3c-1".into(),
        site: "example.com".into(),
        socket: PathBuf::from(SOCKET),
        web_group: "www-data".into(),
        open_basedir: vec![
            PathBuf::from("/srv/app"),
            PathBuf::from("/srv/app/sites/example.com"),
            PathBuf::from("/srv/app/private/example.com"),
        ],
        tmp_dir: PathBuf::from("/srv/app/private/example.com/tmp"),
        site_config: PathBuf::from("/srv/app/private/example.com/settings.php"),
        max_children: 5,
        allow_exec: false,
        upload_limit: model::UploadLimit::DEFAULT,
        putenv: false,
        error_log: Some(PathBuf::from(format!("{LOG_DIR}/php-error.log"))),
    };
    check("php_pool.conf", &php_fpm_pool(&pool));
    let db = mysql_db();
    let service = model::DbService::parse("mysql").unwrap();
    check(
        "php_settings.php",
        &php_settings(
            "http://example.com",
            Path::new("/srv/app/sites/example.com"),
            Some((
                &db,
                &service,
                Path::new("/srv/app/private/example.com/database.sqlite"),
            )),
        ),
    );
}

fn mysql_db() -> model::SiteDatabase {
    model::SiteDatabase {
        server_id: 1,
        engine: model::DbEngine::Mysql,
        name: "example_com".into(),
        user: "example_com".into(),
        // A quote and a backslash: the renderer must keep them inside the PHP string.
        password: "0123456789abcdef'\\x".into(),
    }
}

#[test]
fn wordpress_files() {
    let db = mysql_db();
    let service = model::DbService::parse("mysql").unwrap();
    let salts = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let site = WordpressSite {
        url: "http://example.com".into(),
        code: PathBuf::from("/srv/wp"),
        content_dir: PathBuf::from("/srv/wp/sites/example.com"),
        db: &db,
        db_service: &service,
        table_prefix: "wp_",
        salts,
    };
    check("wordpress_site_config.php", &wordpress_site_config(&site));
    check("wordpress_dispatcher.php", &wordpress_dispatcher());
    check("wordpress_mu_plugin.php", &wordpress_mu_plugin());
}

#[test]
fn mediawiki_files() {
    let (db, service) = (mysql_db(), model::DbService::parse("mysql").unwrap());
    let site = MediawikiSite {
        url: "http://wiki.example.com:8080".into(),
        upload_dir: PathBuf::from("/srv/mw/sites/wiki.example.com/images"),
        cache_dir: PathBuf::from("/srv/mw/private/wiki.example.com/cache"),
        tmp_dir: PathBuf::from("/srv/mw/private/wiki.example.com/tmp"),
        local: PathBuf::from("/srv/mw/private/wiki.example.com/local.php"),
        db: &db,
        db_service: &service,
        secret_key: "0123456789abcdef0123456789abcdef",
        skins: vec!["MonoBook".into(), "Vector".into()],
    };
    check("mediawiki_settings.php", &mediawiki_settings(&site));
    check("mediawiki_dispatcher.php", &mediawiki_dispatcher());
}

#[test]
fn dokuwiki_files() {
    check("dokuwiki_preload.php", &dokuwiki_preload());
    check(
        "dokuwiki_protected.php",
        &dokuwiki_protected(
            "http://wiki.example.com:8080",
            Path::new("/srv/wiki/sites/wiki.example.com/data"),
        ),
    );
}

#[test]
fn vhost_installed() {
    check(
        "vhost_installed.conf",
        &vhost(
            &platform(),
            &site(SiteStatus::Installed, false),
            &static_web(),
        ),
    );
}

#[test]
fn vhost_read_only_while_moving() {
    check(
        "vhost_read_only.conf",
        &nginx_vhost(&spec(
            &platform(),
            &site(SiteStatus::Installed, false),
            &static_web(),
            VhostState::ReadOnly,
        )),
    );
}

#[test]
fn vhost_redirect() {
    check(
        "vhost_redirect.conf",
        &vhost(
            &platform(),
            &site(SiteStatus::Installed, true),
            &static_web(),
        ),
    );
}

#[test]
fn vhost_disabled() {
    check(
        "vhost_disabled.conf",
        &vhost(
            &platform(),
            &site(SiteStatus::Disabled, true),
            &static_web(),
        ),
    );
}

#[test]
fn server_conf() {
    check(
        "server.conf",
        &nginx_server_conf(&nginx(), Path::new(CONFIG_DIR)),
    );
    check(
        "hook.conf",
        &nginx_hook(&Path::new(CONFIG_DIR).join("server.conf")),
    );
}

#[test]
fn pages() {
    check("disabled.html", &disabled_page());
    check(
        "placeholder.html",
        &placeholder_index(&site(SiteStatus::Installed, false)),
    );
}

#[test]
fn db_env() {
    let db = |engine| model::SiteDatabase {
        server_id: 1,
        engine,
        name: "example_com".into(),
        user: "example_com".into(),
        password: "0123456789abcdef0123456789abcdef".into(),
    };
    let sqlite = Path::new("/srv/static1/private/example.com/database.sqlite");
    for (engine, file) in [
        (model::DbEngine::Mysql, "db_mysql.env"),
        (model::DbEngine::Postgresql, "db_postgresql.env"),
        (model::DbEngine::Sqlite, "db_sqlite.env"),
    ] {
        let service = model::DbService::parse(engine.as_str()).unwrap();
        check(file, &site_db_env(&db(engine), &service, sqlite));
    }
}

#[test]
fn an_application_that_needs_putenv_keeps_it_and_loses_every_way_to_start_sendmail() {
    let disabled = |allow_exec, putenv| {
        php_limits(allow_exec, putenv)
            .into_iter()
            .find(|(k, _)| k == "disable_functions")
            .map(|(_, v)| v.split(',').map(String::from).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let plain = disabled(false, false);
    assert!(plain.iter().any(|f| f == "putenv") && !plain.iter().any(|f| f == "mail"));
    let putenv = disabled(false, true);
    assert!(!putenv.iter().any(|f| f == "putenv"));
    for f in MAIL_FUNCTIONS
        .iter()
        .chain(["exec", "proc_open", "popen"].iter())
    {
        assert!(putenv.iter().any(|d| d == f), "{f} stays enabled");
    }
    assert!(disabled(true, true).is_empty());
}

/// A site with a certificate, on a server listening on two HTTP and two HTTPS addresses
/// (IPv4 and IPv6).
fn tls_spec(https: model::HttpsMode, hsts: bool, redirect: bool, state: VhostState) -> VhostSpec {
    let mut site = site(SiteStatus::Installed, redirect);
    site.https = model::SiteHttps { mode: https, hsts };
    let web = WebApp {
        headers: &[
            ("X-Frame-Options", "SAMEORIGIN"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ],
        ..static_web()
    };
    VhostSpec {
        http_listen: vec!["0.0.0.0:80".parse().unwrap(), "[::]:80".parse().unwrap()],
        https_listen: vec!["0.0.0.0:443".parse().unwrap(), "[::]:443".parse().unwrap()],
        tls: Some(model::TlsFiles {
            cert: AbsPath::parse("cert", "/var/lib/fjord/tls/example.com/fullchain.pem").unwrap(),
            key: AbsPath::parse("key", "/var/lib/fjord/tls/example.com/key.pem").unwrap(),
        }),
        canonical_http_port: 80,
        canonical_https_port: Some(443),
        ..spec(&platform(), &site, &web, state)
    }
}

#[test]
fn vhost_tls_serving_both_protocols_in_one_block() {
    use model::HttpsMode::On;
    check(
        "vhost_tls_on.conf",
        &nginx_vhost(&tls_spec(On, false, false, VhostState::Serving)),
    );
}

#[test]
fn vhost_tls_with_hsts_sends_it_over_https_only() {
    use model::HttpsMode::On;
    let conf = nginx_vhost(&tls_spec(On, true, false, VhostState::Serving));
    check("vhost_tls_hsts.conf", &conf);
    // Two blocks: the HTTPS one alone carries the header.
    let blocks: Vec<&str> = conf.split("\nserver {").skip(1).collect();
    assert_eq!(blocks.len(), 2);
    assert!(!blocks[0].contains("Strict-Transport-Security \"") && !blocks[0].contains("ssl"));
    assert!(blocks[1].contains("Strict-Transport-Security \"max-age="));
}

#[test]
fn vhost_tls_required_redirects_http_but_the_challenges() {
    use model::HttpsMode::Required;
    let conf = nginx_vhost(&tls_spec(Required, true, true, VhostState::Serving));
    check("vhost_tls_required.conf", &conf);
    // Every block answers ACME's challenges, the redirecting ones included.
    assert_eq!(
        conf.matches("location ^~ /.well-known/acme-challenge/")
            .count(),
        conf.matches("\nserver {").count()
    );
    check(
        "vhost_tls_read_only.conf",
        &nginx_vhost(&tls_spec(Required, false, false, VhostState::ReadOnly)),
    );
}

#[test]
fn vhost_without_a_certificate_serves_http_whatever_its_mode() {
    use model::HttpsMode::Required;
    let spec = VhostSpec {
        tls: None,
        ..tls_spec(Required, true, false, VhostState::Serving)
    };
    let conf = nginx_vhost(&spec);
    assert!(
        !conf.contains("ssl") && !conf.contains("return 301"),
        "{conf}"
    );
    assert!(!conf.contains("Strict-Transport-Security \""), "{conf}");
    // Off keeps HTTP even with a certificate.
    let off = VhostSpec {
        https: model::HttpsMode::Off,
        ..tls_spec(Required, true, false, VhostState::Serving)
    };
    assert!(!nginx_vhost(&off).contains("ssl"));
}

#[test]
fn every_server_block_of_a_site_logs_to_its_own_files() {
    use model::HttpsMode::Required;
    let server = nginx_server_conf(&nginx(), Path::new(CONFIG_DIR));
    let format = server
        .lines()
        .find_map(|l| l.strip_prefix("log_format ")?.split(' ').next())
        .expect("the server's log format");
    let access = format!("    access_log {LOG_DIR}/access.log {format};\n");
    let error = format!("    error_log {LOG_DIR}/error.log error;\n");
    // HTTP redirected to HTTPS, HTTPS served, the aliases redirected on both; then the same
    // site disabled, and served over both protocols in one block.
    for (name, spec) in [
        (
            "required",
            tls_spec(Required, true, true, VhostState::Serving),
        ),
        (
            "read-only",
            tls_spec(Required, false, true, VhostState::ReadOnly),
        ),
        (
            "disabled",
            tls_spec(Required, true, true, VhostState::Disabled),
        ),
        (
            "on",
            tls_spec(model::HttpsMode::On, false, true, VhostState::Serving),
        ),
    ] {
        let conf = nginx_vhost(&spec);
        let blocks: Vec<&str> = conf.split("\nserver {").skip(1).collect();
        assert!(!blocks.is_empty(), "{name}: {conf}");
        for block in &blocks {
            assert!(
                block.contains(&access) && block.contains(&error),
                "{name}: a block without the site's logs:\n{block}"
            );
            assert!(
                block.contains("    log_not_found off;\n"),
                "{name}: {block}"
            );
        }
    }
    // Without a log dir, nginx's own logs are left as they are.
    let conf = nginx_vhost(&VhostSpec {
        log_dir: None,
        ..tls_spec(Required, true, true, VhostState::Serving)
    });
    assert!(
        !conf.contains("access_log") && !conf.contains("error_log"),
        "{conf}"
    );
}

#[test]
fn vhost_tls_disabled() {
    use model::HttpsMode::Required;
    check(
        "vhost_tls_disabled.conf",
        &nginx_vhost(&tls_spec(Required, true, true, VhostState::Disabled)),
    );
}

#[test]
fn server_conf_with_https_addresses() {
    let nginx = NginxService {
        listen: vec!["0.0.0.0:80".parse().unwrap(), "[::]:80".parse().unwrap()],
        https_listen: vec!["0.0.0.0:443".parse().unwrap(), "[::]:443".parse().unwrap()],
        ..nginx()
    };
    check(
        "server_tls.conf",
        &nginx_server_conf(&nginx, Path::new(CONFIG_DIR)),
    );
}

#[test]
fn the_acme_challenge_layout_is_the_one_the_vhost_serves() {
    let dir = Path::new(CONFIG_DIR);
    let spec = spec(
        &platform(),
        &site(SiteStatus::Installed, false),
        &static_web(),
        VhostState::Serving,
    );
    // nginx maps /.well-known/acme-challenge/T to <root>/.well-known/acme-challenge/T.
    assert_eq!(
        acme_challenge_file(dir, "T"),
        spec.acme_dir
            .join(ACME_CHALLENGE_PATH.trim_start_matches('/'))
            .join("T")
    );
}

#[test]
fn two_fjord_servers_on_one_nginx_define_their_log_formats_under_their_own_names() {
    let format_of = |dir: &str| {
        nginx_server_conf(&nginx(), Path::new(dir))
            .lines()
            .find_map(|l| {
                Some(
                    l.strip_prefix("log_format ")?
                        .split(' ')
                        .next()?
                        .to_string(),
                )
            })
            .unwrap()
    };
    assert_ne!(
        format_of("/var/lib/fjord/config/a/nginx"),
        format_of("/var/lib/fjord/config/b/nginx")
    );
    assert_eq!(format_of(CONFIG_DIR), format_of(CONFIG_DIR));
}

#[test]
fn vhost_proxy_passes_every_request_to_its_upstream_over_https() {
    use model::HttpsMode::Required;
    let base = tls_spec(Required, false, false, VhostState::Serving);
    let spec = VhostSpec {
        name: "panel.example".into(),
        aliases: Vec::new(),
        platform: "panel".into(),
        web: WebApp {
            headers: &[],
            proxy: Some("127.0.0.1:8470".parse().unwrap()),
            ..static_web()
        },
        ..base
    };
    let conf = nginx_vhost(&spec);
    check("vhost_proxy.conf", &conf);
    let https = conf.split("\nserver {").nth(2).expect("an HTTPS block");
    assert!(https.contains("listen 0.0.0.0:443 ssl http2;"), "{https}");
    assert!(
        https.contains("proxy_pass http://127.0.0.1:8470;"),
        "{https}"
    );
    // The client's address is set, never appended to what the client claims.
    assert!(https.contains("proxy_set_header X-Forwarded-For $remote_addr;"));
    assert!(https.contains("proxy_set_header Forwarded \"\";"));
    assert!(https.contains("proxy_buffering off;"));
    // The upstream serves its own assets: nothing is looked for in the docroot, no PHP runs.
    assert!(!https.contains("try_files $uri $uri/"), "{https}");
    assert!(!https.contains("fastcgi_pass"), "{https}");
    assert!(!https.contains("expires 7d"), "{https}");
    // The vhost's nosniff replaces the upstream's copy: one of each on a response.
    assert!(https.contains("proxy_hide_header X-Content-Type-Options;"));
    // Plain HTTP only redirects (and answers ACME's challenges).
    let http = conf.split("\nserver {").nth(1).unwrap();
    assert!(!http.contains("proxy_pass"), "{http}");
    // Before its certificate, it answers plain HTTP with 503 (and ACME's challenges), and
    // passes nothing on: no password crosses the network unencrypted.
    let waiting = nginx_vhost(&VhostSpec { tls: None, ..spec });
    check("vhost_proxy_waiting.conf", &waiting);
    assert!(!waiting.contains("proxy_pass"), "{waiting}");
    assert!(waiting.contains("return 503"), "{waiting}");
    assert!(waiting.contains("location ^~ /.well-known/acme-challenge/"));
}
