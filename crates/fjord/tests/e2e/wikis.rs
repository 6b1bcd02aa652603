//! Real wikis from Debian's packages, several sites on one code base: DokuWiki's per-site
//! config and data, served with DokuWiki's own deny rules, each site reading only its own.

use std::path::PathBuf;

use crate::databases::token;
use crate::harness::Env;
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::php_server;

fn dokuwiki_platform(env: &Env, name: &str) {
    let path = env.platform_path(name);
    env.ok(&[
        "platform",
        "add",
        name,
        "--server",
        "t",
        "--path",
        &path,
        "--kind",
        "dokuwiki",
        "--from",
        "/usr/share/dokuwiki",
    ]);
    env.dispatch_until_idle(&[]);
}

#[test]
fn two_dokuwiki_sites_on_debians_package_each_serve_their_own_wiki_and_hide_their_data() {
    let t = token();
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    dokuwiki_platform(&env, "dw");
    let platform = env.json(&["platform", "show", "dw"]);
    assert!(
        platform["version"]
            .as_str()
            .is_some_and(|v| v.contains("Igor") || v.contains('-')),
        "{platform}: {}",
        env.ok(&["task", "log", "2"])
    );
    let code = PathBuf::from(env.platform_path("dw"));

    let one = format!("{t}-one.dw.test");
    let two = format!("{t}-two.dw.test");
    let (title_one, title_two) = (format!("Wiki One {t}"), format!("Wiki Two {t}"));
    for (site, title) in [(&one, &title_one), (&two, &title_two)] {
        env.ok(&["site", "add", site, "--platform", "dw", "--title", title]);
    }
    env.dispatch_until_idle(&[]);
    for site in [&one, &two] {
        assert_eq!(env.json(&["site", "show", site])["status"], "installed");
    }

    // Each site's main page: its own title, never the other's.
    for (site, own, other) in [
        (&one, &title_one, &title_two),
        (&two, &title_two, &title_one),
    ] {
        let (status, _, body) = env.nginx.get(site, "/doku.php?id=start");
        assert_eq!(
            status,
            200,
            "{site}: {body}\n{}",
            std::fs::read_to_string(fpm.dir.path().join("error.log")).unwrap_or_default()
        );
        assert!(
            body.contains(own.as_str()),
            "{site} lacks its title: {body}"
        );
        assert!(!body.contains(other.as_str()), "{site} shows {other}");
        let (status, location, _) = env.nginx.get(site, "/");
        assert!(
            status == 200 || (status == 302 && location.is_some()),
            "{site} /: {status}"
        );
        // Its stylesheet and script, built by DokuWiki's PHP from the platform's templates.
        for path in ["/lib/exe/css.php", "/lib/exe/js.php"] {
            let (status, _, body) = env.nginx.get(site, path);
            assert_eq!(status, 200, "{site}{path}: {body}");
        }
    }

    // A page in one site's data is that site's alone.
    let page = env.docroot("dw", &one).join("data/pages/hello.txt");
    std::fs::write(&page, format!("====== Hello from {t} ======\n")).unwrap();
    let (status, _, body) = env.nginx.get(&one, "/doku.php?id=hello");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("Hello from {t}")), "{body}");
    let (_, _, body) = env.nginx.get(&two, "/doku.php?id=hello");
    assert!(!body.contains(&format!("Hello from {t}")), "{body}");

    // What DokuWiki keeps private is never served: data, config (shared and the site's),
    // code, tools and the web installer.
    let denied = [
        format!("/sites/{one}/data/pages/hello.txt"),
        format!("/private/{one}/conf/users.auth.php"),
        format!("/private/{one}/conf/local.protected.php"),
        "/conf/dokuwiki.php".to_string(),
        "/inc/init.php".to_string(),
        "/inc/preload.php".to_string(),
        "/bin/indexer.php".to_string(),
        "/vendor/autoload.php".to_string(),
        "/install.php".to_string(),
        "/data/pages/hello.txt".to_string(),
        "/.htaccess".to_string(),
    ];
    for path in &denied {
        let (status, _, body) = env.nginx.get(&one, path);
        assert!(
            status == 403 || status == 404,
            "{path} answered {status}: {body}"
        );
        assert!(
            !body.contains("passwordhash") && !body.contains("$2y$"),
            "{path}"
        );
    }

    // The shared defaults came in with the code base (Debian keeps them in /etc/dokuwiki),
    // and each site's config dir holds its own administrator.
    assert!(code.join("conf/dokuwiki.php").is_file());
    let users =
        std::fs::read_to_string(code.join("private").join(&one).join("conf/users.auth.php"))
            .unwrap();
    assert!(users.contains(":admin,user"), "{users}");

    for site in [&one, &two] {
        env.ok(&["site", "delete", site, "--force"]);
    }
    env.dispatch_until_idle(&[]);
}
