//! The test hosts themselves: reached over strictly checked ssh, private where they should
//! be, cut off and back, talking to each other and to nothing else, and gone after their test.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{SLOTS, SshClient, TestHost, is_running, processes_in};
use crate::harness::world_readable_tempdir;

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// The machine's IPv4 default gateway and the interface it is reached by, if it has one.
fn default_route() -> Option<(String, String)> {
    let out = Command::new("ip")
        .args(["-4", "route", "show", "default"])
        .output()
        .unwrap();
    let routes = String::from_utf8_lossy(&out.stdout).into_owned();
    let word_after = |key: &str| {
        let mut words = routes.split_whitespace();
        words.find(|w| *w == key)?;
        words.next().map(str::to_string)
    };
    Some((word_after("via")?, word_after("dev")?))
}

#[test]
fn ssh_with_a_pinned_host_key_reaches_the_host_and_what_it_writes_stays_there() {
    let dir = world_readable_tempdir();
    let host = TestHost::start(&[dir.path()]);
    let client = SshClient::new();
    host.authorize(&client.public_key_line());
    client.trust(&host);

    let written = dir.path().join("written");
    let out = client.ssh(
        &host,
        &format!("echo from-ssh > {} && hostname", written.display()),
    );
    assert!(
        out.status.success(),
        "ssh: {}\nsshd: {}",
        String::from_utf8_lossy(&out.stderr),
        host.sshd_log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), host.name());
    assert!(
        is_empty(dir.path()),
        "the root namespace sees the host's file"
    );
    assert_eq!(
        host.exec_ok(&["cat", &written.display().to_string()]),
        "from-ssh"
    );
    assert_eq!(
        std::fs::read_to_string(host.path(&written)).unwrap(),
        "from-ssh\n"
    );

    let stranger = SshClient::new();
    stranger.trust(&host);
    let refused = stranger.ssh(&host, "true");
    assert!(!refused.status.success(), "a key never authorized got in");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn a_user_added_in_a_host_exists_only_there() {
    let host = TestHost::start(&[]);
    let user = format!(
        "fjt{}x{}",
        std::process::id(),
        host.name().trim_start_matches("fjt-")
    );
    host.exec_ok(&[
        "useradd",
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        &user,
    ]);
    assert!(host.exec(&["id", &user]).status.success());
    let outside = Command::new("id").arg(&user).output().unwrap();
    assert!(
        !outside.status.success(),
        "useradd in the host made {user} on the machine"
    );
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(!passwd.contains(&format!("{user}:")));
}

#[test]
fn nginx_in_a_host_answers_at_its_address_until_its_link_is_cut() {
    let dir = world_readable_tempdir();
    let host = TestHost::start(&[dir.path()]);
    let nginx = host.start_nginx(&dir.path().join("nginx"), 80);
    assert!(
        is_empty(dir.path()),
        "nginx's prefix is visible outside the host"
    );
    nginx.add_vhost(
        "probe",
        &format!(
            "server {{ listen {}; server_name probe.test; return 200 \"served by $hostname\"; }}\n",
            nginx.listen()
        ),
    );
    assert_eq!(
        nginx.get_when_served("probe.test", "/"),
        (200, None, format!("served by {}", host.name()))
    );
    assert_eq!(nginx.get("other.test", "/").0, 404);

    host.link_down();
    let cut = Instant::now();
    assert!(!host.answers_on(80), "the host answers over a cut link");
    assert!(
        !host.answers_on(22),
        "the host's sshd answers over a cut link"
    );
    // Refused at once as unreachable, not waited for: nothing took the default route.
    assert!(
        cut.elapsed() < Duration::from_secs(2),
        "{:?}",
        cut.elapsed()
    );

    host.link_up();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !host.answers_on(80) {
        assert!(Instant::now() < deadline, "the host did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    let again = nginx.get("probe.test", "/");
    assert_eq!(
        again.0,
        200,
        "{again:?}\n{}",
        std::fs::read_to_string(host.path(&nginx.prefix().join("logs/error.log"))).unwrap()
    );
}

#[test]
fn two_hosts_reach_each_other_and_nothing_beyond() {
    let web_dir = world_readable_tempdir();
    let db_dir = world_readable_tempdir();
    let web = TestHost::start(&[web_dir.path()]);
    let db = TestHost::start(&[db_dir.path()]);
    let mariadb = db.start_mariadb(&db_dir.path().join("mariadb"));
    let nginx = web.start_nginx(&web_dir.path().join("nginx"), 80);
    assert!(is_empty(db_dir.path()) && is_empty(web_dir.path()));

    // The web host's site reaches the database host by address, and the database sees the
    // web host's own address (no translation on the way).
    mariadb.sql(&format!(
        "CREATE USER 'probe'@'{}' IDENTIFIED BY 'probe-pw'",
        web.address()
    ));
    let who = web
        .command("mariadb")
        .args(["-h", &db.address().to_string(), "-uprobe", "-N", "-B"])
        .args(["-e", "SELECT CURRENT_USER()"])
        .env("MYSQL_PWD", "probe-pw")
        .output()
        .unwrap();
    assert!(
        who.status.success(),
        "{}",
        String::from_utf8_lossy(&who.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&who.stdout).trim(),
        format!("probe@{}", web.address())
    );
    // The database's socket is in the database host only.
    assert!(!web.path(&mariadb.socket()).exists());
    assert!(db.path(&mariadb.socket()).exists());

    let status = db.exec_ok(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        &format!("http://{}/", nginx.listen()),
    ]);
    assert_eq!(status, "404");

    // A host routes nothing but the hosts' network, and the root namespace forwards from it
    // to the other hosts' /30s alone: not to an unclaimed host address, not to the Internet,
    // not through the machine's gateway.
    let mut beyond = vec!["9.9.9.9".to_string()];
    beyond.extend(default_route().map(|(gateway, _)| gateway));
    for address in &beyond {
        let out = web.exec(&["ip", "route", "get", address]);
        assert!(!out.status.success(), "a host has a route to {address}");
    }
    let unclaimed = (0..SLOTS)
        .map(|step| (web.slot + SLOTS / 2 + step) % SLOTS)
        .find(|slot| {
            let name = format!("fjt-{slot}");
            !Path::new("/run/netns").join(&name).exists()
                && !Path::new("/sys/class/net").join(&name).exists()
        })
        .map(|slot| std::net::Ipv4Addr::from(super::NETWORK + slot * 4 + 2))
        .unwrap();
    beyond.push(unclaimed.to_string());
    for beyond in beyond {
        let routed = Command::new("ip")
            .args(["route", "get", &beyond, "from", &web.address().to_string()])
            .args(["iif", web.name()])
            .output()
            .unwrap();
        assert!(
            !routed.status.success(),
            "the root namespace forwards a host's packets to {beyond}: {}",
            String::from_utf8_lossy(&routed.stdout)
        );
    }
    let to_db = Command::new("ip")
        .args(["route", "get", &db.address().to_string()])
        .args(["from", &web.address().to_string(), "iif", web.name()])
        .output()
        .unwrap();
    assert!(to_db.status.success());
    // Nothing arriving on the machine's own interface is forwarded to a host (unless the
    // machine forwards on it of its own accord).
    if let Some((gateway, device)) = default_route() {
        let forwarding = format!("/proc/sys/net/ipv4/conf/{device}/forwarding");
        if std::fs::read_to_string(forwarding).unwrap().trim() == "0" {
            let routed = Command::new("ip")
                .args(["route", "get", &db.address().to_string()])
                .args(["from", &gateway, "iif", &device])
                .output()
                .unwrap();
            assert!(!routed.status.success(), "{device} forwards to a host");
        }
    }
}

#[test]
fn a_changed_host_key_fails_strict_ssh() {
    let host = TestHost::start(&[]);
    let client = SshClient::new();
    host.authorize(&client.public_key_line());
    client.trust(&host);
    assert!(client.ssh(&host, "true").status.success());
    let old_key = host.host_key_line();

    host.change_host_key();
    assert_ne!(host.host_key_line(), old_key);
    let refused = client.ssh(&host, "true");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Host key verification failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let told = SshClient::new();
    host.authorize(&told.public_key_line());
    told.trust(&host);
    assert!(told.ssh(&host, "true").status.success());
}

#[test]
fn php_in_a_host_runs_behind_its_nginx() {
    let dir = world_readable_tempdir();
    let host = TestHost::start(&[dir.path()]);
    let fpm = host.start_php_fpm(&dir.path().join("php-fpm"));
    let nginx = host.start_nginx(&dir.path().join("nginx"), 80);
    let docroot = dir.path().join("www");
    std::fs::create_dir(host.path(&docroot)).unwrap();
    std::fs::write(
        host.path(&docroot.join("index.php")),
        "<?php echo 'php on ', gethostname();",
    )
    .unwrap();
    let socket = fpm.prefix().join("www.sock");
    fpm.add_pool(
        "www",
        &format!(
            "[www]\nuser = nobody\nlisten = {}\nlisten.mode = 0666\npm = ondemand\npm.max_children = 2\n",
            socket.display()
        ),
    );
    nginx.add_vhost(
        "php",
        &format!(
            "server {{
    listen {listen};
    server_name php.test;
    root {root};
    location / {{
        include /etc/nginx/fastcgi_params;
        fastcgi_param SCRIPT_FILENAME {root}/index.php;
        fastcgi_pass unix:{socket};
    }}
}}
",
            listen = nginx.listen(),
            root = docroot.display(),
            socket = socket.display()
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = nginx.get("php.test", "/");
        if status == 200 {
            assert_eq!(body, format!("php on {}", host.name()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "PHP never answered: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(fpm.service_arg().contains("php-fpm.conf"));
    assert!(is_empty(dir.path()));
}

#[test]
fn a_host_leaves_nothing_behind_after_its_test_panics() {
    let dir = world_readable_tempdir();
    let mut seen = None;
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let host = TestHost::start(&[dir.path()]);
        let nginx = host.start_nginx(&dir.path().join("nginx"), 80);
        let nginx_pid = nginx.pid().unwrap();
        seen = Some((
            host.name().to_string(),
            host.subnet(),
            host.ns.holder_pid,
            nginx_pid,
        ));
        panic!("a test fails with its host running");
    }));
    assert!(panicked.is_err());
    let (name, subnet, holder, nginx) = seen.unwrap();

    assert!(processes_in(&name).is_empty());
    for pid in [holder.to_string(), nginx] {
        assert!(!is_running(&pid), "{pid} lives on");
    }
    assert!(
        !Path::new("/run/netns").join(&name).exists(),
        "namespace {name} is left"
    );
    assert!(
        !Path::new("/sys/class/net").join(&name).exists(),
        "link {name} is left"
    );
    let text = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new("ip").args(args).output().unwrap().stdout)
            .into_owned()
    };
    assert!(
        !text(&["rule", "list"]).contains(&format!("iif {name} ")),
        "a rule for {name} is left"
    );
    assert!(
        !text(&["route", "list"]).contains(&subnet),
        "a route to {subnet} is left"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&dir.path().display().to_string()));
    assert!(is_empty(dir.path()));
}
