//! A private ACME CA for the tests: Debian's `pebble`, resolving names through its
//! `pebble-challtestsrv` (every name is 127.0.0.1 unless a test says otherwise), validating
//! HTTP-01 against a private nginx's port, on free loopback ports. Killed and its files removed
//! when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{free_port, world_readable_tempdir};

pub struct Pebble {
    pub dir: tempfile::TempDir,
    pebble: Option<Child>,
    challtestsrv: Child,
    port: u16,
    management: u16,
    dns_management: u16,
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `http_port` (the private nginx's).
    pub fn start(http_port: u16) -> Pebble {
        Pebble::start_with(http_port, &[])
    }

    /// [`Pebble::start`], with more of pebble's settings in its environment (`PEBBLE_…`).
    pub fn start_with(http_port: u16, settings: &[(&str, &str)]) -> Pebble {
        let dir = world_readable_tempdir();
        let p = dir.path();
        make_listener_certificate(p);
        let port = free_port();
        let management = free_port();
        let dns = free_port();
        let dns_management = free_port();
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{management}"),
                "certificate": p.join("listener.pem"),
                "privateKey": p.join("listener.key"),
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        std::fs::write(p.join("pebble.json"), config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(p.join(name)).unwrap();
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("pebble-challtestsrv runs (scripts/setup-host --test installs pebble)");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(p.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // Every order validates its names: pebble otherwise reuses half of the valid
            // authorizations it holds, and an order for a name whose DNS a test has just
            // pointed elsewhere would pass or fail by chance.
            .env("PEBBLE_AUTHZREUSE", "0")
            .envs(settings.iter().copied())
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("pebble runs (scripts/setup-host --test installs it)");
        let pebble = Pebble {
            dir,
            pebble: Some(pebble),
            challtestsrv,
            port,
            management,
            dns_management,
        };
        for port in [port, management, dns_management] {
            wait_listening(port);
        }
        pebble.fetch_issuing_root();
        pebble
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The root of pebble's own listener certificate: what a client trusts to reach it.
    pub fn listener_root(&self) -> PathBuf {
        self.dir.path().join("listener-ca.pem")
    }

    /// The root pebble issues certificates under (fetched from its management port).
    pub fn issuing_root(&self) -> PathBuf {
        self.dir.path().join("issuing-root.pem")
    }

    fn fetch_issuing_root(&self) {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--cacert"])
            .arg(self.listener_root())
            .arg("-o")
            .arg(self.issuing_root())
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pebble's root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Makes the DNS answer `address` for `host` (instead of 127.0.0.1).
    pub fn answer_wrongly(&self, host: &str, address: &str) {
        let body = serde_json::json!({ "host": format!("{host}."), "addresses": [address] });
        let out = Command::new("curl")
            .args(["-sS", "--fail", "-X", "POST", "-d", &body.to_string()])
            .arg(format!("http://127.0.0.1:{}/add-a", self.dns_management))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "challtestsrv add-a: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Makes the DNS answer 127.0.0.1 for `host` again.
    pub fn answer_rightly(&self, host: &str) {
        let body = serde_json::json!({ "host": format!("{host}.") });
        let out = Command::new("curl")
            .args(["-sS", "--fail", "-X", "POST", "-d", &body.to_string()])
            .arg(format!("http://127.0.0.1:{}/clear-a", self.dns_management))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "challtestsrv clear-a: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the CA (as if it were down); its port is then closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.pebble.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        let _ = self.challtestsrv.kill();
        let _ = self.challtestsrv.wait();
    }
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "pebble did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A CA of the test's own and a certificate it signs for pebble's listener (localhost and
/// 127.0.0.1): rustls refuses a self-signed CA certificate as a server's.
fn make_listener_certificate(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=fjord test listener CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "listener-ca.key", "-out", "listener-ca.pem"]);
    openssl(&ca);
    let mut csr = vec!["req", "-new", "-nodes", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "listener.key", "-out", "listener.csr"]);
    openssl(&csr);
    std::fs::write(
        dir.join("listener.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "listener.csr",
        "-CA",
        "listener-ca.pem",
        "-CAkey",
        "listener-ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "listener.ext",
        "-out",
        "listener.pem",
    ]);
}
