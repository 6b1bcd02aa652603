//! Real wikis from Debian's packages, several sites on one code base: DokuWiki's per-site
//! config and data, served with DokuWiki's own deny rules, each site reading only its own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::databases::token;
use crate::harness::Env;
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::php_server;

/// POSTs a form to `host` on the private nginx: the status and the body.
fn post_form(port: u16, host: &str, path: &str, form: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        crate::harness::host_header(host, port),
        form.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

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

    // A page saved through DokuWiki's editor (its access rules let anyone edit one
    // namespace here) is written by the site's user into its own data dir and served.
    let acl = code.join("private").join(&one).join("conf/acl.auth.php");
    let mut rules = std::fs::read_to_string(&acl).unwrap();
    rules.push_str("playground:*\t@ALL\t8\n");
    std::fs::write(&acl, rules).unwrap();
    let (status, answer) = post_form(
        env.nginx.port,
        &one,
        "/doku.php",
        &format!("id=playground:note&do=save&sectok=&summary=e2e&wikitext=Saved+by+{t}"),
    );
    assert!(matches!(status, 302 | 303), "save: {answer}");
    let saved = env
        .docroot("dw", &one)
        .join("data/pages/playground/note.txt");
    assert_eq!(
        std::fs::read_to_string(&saved).unwrap().trim(),
        format!("Saved by {t}")
    );
    let (status, _, body) = env.nginx.get(&one, "/doku.php?id=playground:note");
    assert_eq!(status, 200);
    assert!(body.contains(&format!("Saved by {t}")), "{body}");
    let (_, _, body) = env.nginx.get(&two, "/doku.php?id=playground:note");
    assert!(!body.contains(&format!("Saved by {t}")), "{body}");
    // Another site may not edit there: its access rules are its own.
    let (_, answer) = post_form(
        env.nginx.port,
        &two,
        "/doku.php",
        &format!("id=playground:note&do=save&sectok=&summary=e2e&wikitext=Forged+by+{t}"),
    );
    assert!(
        !env.docroot("dw", &two)
            .join("data/pages/playground/note.txt")
            .exists(),
        "{answer}"
    );

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

    // Backed up, changed, restored: the page as it was; cloned: the page on the clone's
    // name, with settings of its own.
    let hello = |env: &Env, site: &str| env.nginx.get(site, "/doku.php?id=hello");
    backup_restore_and_clone(&env, "dw", &one, &|env| {
        std::fs::write(&page, "====== Changed after the backup ======\n").unwrap();
        let (_, _, body) = hello(env, &one);
        assert!(body.contains("Changed after the backup"), "{body}");
    });
    let (status, _, body) = hello(&env, &one);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("Hello from {t}")),
        "restored: {body}"
    );
    let copy = format!("{t}-copy.dw.test");
    let (status, _, body) = hello(&env, &copy);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("Hello from {t}")), "cloned: {body}");
    assert!(body.contains(&copy) && !body.contains(&one), "{body}");
    let protected = std::fs::read_to_string(
        code.join("private")
            .join(&copy)
            .join("conf/local.protected.php"),
    )
    .unwrap();
    assert!(
        protected.contains(&format!("sites/{copy}/data")) && !protected.contains(&one),
        "{protected}"
    );

    for site in [&one, &two, &copy] {
        env.ok(&["site", "delete", site, "--force"]);
    }
    env.dispatch_until_idle(&[]);
}

/// Backs `site` up, runs `change`, restores the backup and clones the site to
/// `<token>-copy.<rest of its name>`, each task a success.
fn backup_restore_and_clone(env: &Env, platform: &str, site: &str, change: &dyn Fn(&Env)) {
    let id = env.queue(&["site", "backup", site]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.task(id)["status"], "success", "{}", env.log(id));
    change(env);
    let id = env.queue(&["site", "restore", site]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.task(id)["status"], "success", "{}", env.log(id));
    let (token, rest) = site.split_once("-one.").unwrap();
    let copy = format!("{token}-copy.{rest}");
    let id = env.queue(&["site", "clone", site, &copy]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.task(id)["status"], "success", "{}", env.log(id));
    let shown = env.json(&["site", "show", &copy]);
    assert_eq!(
        (&shown["status"], &shown["platform"]),
        (
            &serde_json::json!("installed"),
            &serde_json::json!(platform)
        ),
        "{shown}"
    );
}

#[test]
fn two_mediawiki_sites_on_debians_package_each_serve_their_own_wiki_with_its_own_settings() {
    let t = token();
    let _cleanup = crate::databases::Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    let path = env.platform_path("mw");
    env.ok(&[
        "platform",
        "add",
        "mw",
        "--server",
        "t",
        "--path",
        &path,
        "--kind",
        "mediawiki",
        "--from",
        "/usr/share/mediawiki",
    ]);
    env.dispatch_until_idle(&[]);
    let platform = env.json(&["platform", "show", "mw"]);
    assert!(
        platform["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{platform}: {}",
        env.ok(&["task", "log", "2"])
    );
    let code = PathBuf::from(&path);

    let one = format!("{t}-one.mw.test");
    let two = format!("{t}-two.mw.test");
    let (title_one, title_two) = (format!("Wiki One {t}"), format!("Wiki Two {t}"));
    for (site, title) in [(&one, &title_one), (&two, &title_two)] {
        env.ok(&["site", "add", site, "--platform", "mw", "--title", title]);
    }
    env.dispatch_until_idle(&[]);
    for site in [&one, &two] {
        let shown = env.json(&["site", "show", site]);
        assert_eq!(
            shown["status"],
            "installed",
            "{}\n{}",
            env.ok(&["task", "log", "3"]),
            env.ok(&["task", "log", "4"])
        );
    }

    for (site, own, other) in [
        (&one, &title_one, &title_two),
        (&two, &title_two, &title_one),
    ] {
        let (status, _, body) = env.nginx.get(site, "/index.php?title=Main_Page");
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
        // Its canonical address, whatever Host the request forged.
        assert!(
            body.contains(&format!("{site}:{}", env.nginx.port)),
            "{body}"
        );
        let (status, _, _) = env
            .nginx
            .get(site, "/load.php?modules=startup&only=scripts");
        assert_eq!(status, 200, "{site} load.php");
    }

    // A page saved through MediaWiki's API by an anonymous editor is that site's alone.
    let (status, token_answer) = post_form(
        env.nginx.port,
        &one,
        "/api.php",
        "action=query&meta=tokens&format=json",
    );
    assert_eq!(status, 200, "{token_answer}");
    let csrf = token_answer
        .split("\"csrftoken\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .replace("\\\\", "\\");
    let encoded: String = csrf
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, answer) = post_form(
        env.nginx.port,
        &one,
        "/api.php",
        &format!("action=edit&title=Note&text=Saved+by+{t}&format=json&token={encoded}"),
    );
    assert!(
        status == 200 && answer.contains("\"result\":\"Success\""),
        "{answer}"
    );
    let (_, _, body) = env.nginx.get(&one, "/index.php?title=Note");
    assert!(body.contains(&format!("Saved by {t}")), "{body}");
    let (_, _, body) = env.nginx.get(&two, "/index.php?title=Note");
    assert!(!body.contains(&format!("Saved by {t}")), "{body}");

    let denied = [
        format!("/private/{one}/settings.php"),
        format!("/private/{one}/local.php"),
        format!("/sites/{one}/images/README"),
        "/LocalSettings.php".to_string(),
        "/maintenance/install.php".to_string(),
        "/mw-config/index.php".to_string(),
        "/includes/Defines.php".to_string(),
        "/vendor/autoload.php".to_string(),
        "/cache/".to_string(),
    ];
    for path in &denied {
        let (status, _, body) = env.nginx.get(&one, path);
        assert!(
            status == 403 || status == 404 || (path == "/LocalSettings.php" && body.is_empty()),
            "{path} answered {status}: {body}"
        );
        assert!(!body.contains("wgDBpassword"), "{path}");
    }
    // Uploads are served from the site's own images dir.
    let (status, _, body) = env.nginx.get(&one, "/images/README");
    assert_eq!(status, 200, "{body}");
    assert!(code.join("LocalSettings.php").is_file());

    // A migrate onto another platform runs MediaWiki's update.php as the site's user; the
    // site keeps its pages and serves from its new place.
    let path_b = env.platform_path("mwb");
    env.ok(&[
        "platform",
        "add",
        "mwb",
        "--server",
        "t",
        "--path",
        &path_b,
        "--kind",
        "mediawiki",
        "--from",
        "/usr/share/mediawiki",
    ]);
    env.dispatch_until_idle(&[]);
    let id = env.queue(&["site", "migrate", &one, "--platform", "mwb"]);
    env.dispatch_until_idle(&[]);
    let task = env.task(id);
    assert_eq!(task["status"], "success", "{}", env.log(id));
    assert!(env.log(id).contains("update.php") || env.log(id).contains("update MediaWiki"));
    let (status, _, body) = env.nginx.get(&one, "/index.php?title=Note");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("Saved by {t}")), "{body}");

    // Backed up, changed, restored: the page as it was; cloned: the page on the clone's
    // name, with settings of its own (its address, its database).
    backup_restore_and_clone(&env, "mwb", &one, &|env| {
        let (status, answer) = post_form(
            env.nginx.port,
            &one,
            "/api.php",
            &format!(
                "action=edit&title=Note&text=Changed+after+the+backup&format=json&token={encoded}"
            ),
        );
        assert!(
            status == 200 && answer.contains("\"result\":\"Success\""),
            "{answer}"
        );
    });
    let (status, _, body) = env.nginx.get(&one, "/index.php?title=Note");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("Saved by {t}")) && !body.contains("Changed after the backup"),
        "restored: {body}"
    );
    let copy = format!("{t}-copy.mw.test");
    let (status, _, body) = env.nginx.get(&copy, "/index.php?title=Note");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("Saved by {t}")), "cloned: {body}");
    assert!(
        body.contains(&format!("{copy}:{}", env.nginx.port)) && !body.contains(&one),
        "{body}"
    );
    let settings = |site: &str| {
        std::fs::read_to_string(
            std::path::Path::new(&path_b)
                .join("private")
                .join(site)
                .join("settings.php"),
        )
        .unwrap()
    };
    let (of_one, of_copy) = (settings(&one), settings(&copy));
    let db_name = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("$wgDBname"))
            .unwrap()
            .to_string()
    };
    assert_ne!(db_name(&of_one), db_name(&of_copy));
    assert!(
        of_copy.contains(&copy) && !of_copy.contains(&one),
        "{of_copy}"
    );

    for site in [&one, &two, &copy] {
        env.ok(&["site", "delete", site, "--force"]);
    }
    env.dispatch_until_idle(&[]);
}
