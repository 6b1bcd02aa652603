//! Real applications from Debian's packages, whole: every file a package serves is in the
//! platform fjord copied from it (what the package links to in other packages included) and
//! is served by a site on it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::databases::{Cleanup, token};
use crate::harness::Env;
use crate::php_fpm::PrivatePhpFpm;
use crate::php_sites::{php_server, wordpress_platform};

/// GET `path` from `host` on the private nginx; the status and the body's bytes.
fn get_bytes(port: u16, host: &str, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        crate::harness::host_header(host, port)
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw[split + 4..].to_vec())
}

/// The files `package` installs under `root`, links resolved: (path below root, content).
fn package_files(package: &str, root: &Path) -> Vec<PathBuf> {
    let out = Command::new("dpkg").args(["-L", package]).output().unwrap();
    assert!(out.status.success(), "dpkg -L {package}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| Path::new(l).strip_prefix(root).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.as_os_str().is_empty() && root.join(rel).is_file())
        .collect()
}

#[test]
fn every_file_debians_wordpress_serves_is_in_the_platform_and_served() {
    let t = token();
    let _cleanup = Cleanup(t.clone());
    let fpm = PrivatePhpFpm::start();
    let env = Env::bare();
    php_server(&env, &fpm);
    wordpress_platform(&env, "wp");
    let platform = PathBuf::from(env.platform_path("wp"));
    let package = Path::new("/usr/share/wordpress");
    let files = package_files("wordpress", package);
    assert!(files.len() > 1000, "{} files", files.len());
    let linked: Vec<_> = files
        .iter()
        .filter(|rel| package.join(rel).is_symlink())
        .collect();
    assert!(linked.len() >= 20, "the package's links: {linked:?}");
    let mut missing = Vec::new();
    // fjord's own `wp-config.php` takes the place of Debian's (which picks a config by host).
    for rel in files
        .iter()
        .filter(|rel| *rel != Path::new("wp-config.php"))
    {
        let copy = platform.join(rel);
        match (std::fs::read(package.join(rel)), std::fs::read(&copy)) {
            (Ok(want), Ok(got)) if want == got => {}
            (_, got) => missing.push(format!(
                "{} ({})",
                rel.display(),
                got.map_or_else(|e| e.to_string(), |g| format!("{} bytes", g.len()))
            )),
        }
    }
    assert!(missing.is_empty(), "not in the platform: {missing:#?}");

    let blog = format!("{t}-whole.wp.test");
    env.ok(&["site", "add", &blog, "--platform", "wp", "--title", "Whole"]);
    env.dispatch_until_idle(&[]);
    assert_eq!(env.json(&["site", "show", &blog])["status"], "installed");
    let served: Vec<_> = files
        .iter()
        .filter(|rel| rel.starts_with("wp-includes") || rel.starts_with("wp-admin"))
        .filter(|rel| {
            rel.extension()
                .is_some_and(|e| e == "js" || e == "css" || e == "gif")
        })
        .collect();
    assert!(
        served
            .iter()
            .any(|rel| rel.ends_with("wp-includes/js/underscore.min.js")),
        "{served:?}"
    );
    let mut wrong = Vec::new();
    for rel in &served {
        let want = std::fs::read(package.join(rel)).unwrap();
        let (status, body) = get_bytes(env.nginx.port, &blog, &format!("/{}", rel.display()));
        if status != 200 || body != want {
            wrong.push(format!(
                "/{}: {status}, {} bytes of {}",
                rel.display(),
                body.len(),
                want.len()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} files served wrong: {wrong:#?}",
        wrong.len(),
        served.len()
    );
    env.ok(&["site", "delete", &blog, "--force"]);
    env.dispatch_until_idle(&[]);
}
