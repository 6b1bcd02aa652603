//! Test hosts: "remote machines" on this one, for the tests of servers fjord drives over
//! OpenSSH. A host is a network namespace joined to the root namespace by a veth pair on a /30
//! of 10.213.0.0/16 (its interface is `eth0`), with mount and UTS namespaces of its own: the
//! directories it is given are fresh tmpfs inside it (the root namespace sees them as they
//! were, empty), `/etc` is a private copy (a `useradd` inside changes only the host), `/run`
//! and `/tmp` are its own (the machine's daemons' sockets are not there). Its sshd listens on
//! its address, port 22. So a step that acts on the local machine where it should act on the
//! host finds nothing there, and what it leaves behind is where the test looks.
//!
//! Hosts reach each other through the root namespace, which forwards between their veths
//! only: forwarding is switched on per veth (never `net.ipv4.ip_forward`, nor on the machine's
//! own interfaces), a host has a route to 10.213.0.0/16 alone, and a policy rule per veth lets
//! what a host sends reach only another host's /30, prohibiting anything else. A host whose link
//! is cut has a route of last resort that answers "no route to host", so nothing meant for it
//! leaves by the machine's default route.
//!
//! Every process of a host lives in its network namespace (nsenter enters it with the mount
//! and UTS ones), so dropping the host kills what `ip netns pids` lists, and its mounts go with
//! the mount namespace's last process; it then deletes its veth, rules, route and namespace.

// A harness: the remote-server tests will use what its own tests do not.
#![allow(dead_code)]

// Named from this file's directory, so that a benchmark that includes this file by its path
// finds them too.
#[path = "test_hosts/daemons.rs"]
pub mod daemons;
#[cfg(test)]
#[path = "test_hosts/tests.rs"]
mod tests;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The hosts' /16: 10.213.0.0/16, cut into /30s (one per host: the root side `.1`, the host
/// `.2`).
const NETWORK: u32 = u32::from_be_bytes([10, 213, 0, 0]);
const NETWORK_PREFIX: &str = "10.213.0.0/16";
const SLOTS: u32 = 1 << 14;
/// The preference of the per-veth policy rules and the metric of the last-resort routes: one
/// number, easy to spot in `ip rule` and `ip route`.
const MARK: &str = "4213";
/// The preference of the rule that prohibits the rest, right after [`MARK`]'s.
const PROHIBIT: &str = "4214";

static HOSTS_STARTED: AtomicU32 = AtomicU32::new(0);

/// A way into a host's namespaces, for commands and files. Cheap to copy, so that handles of
/// the host's daemons carry one.
#[derive(Clone, Debug)]
pub struct Namespaces {
    holder_pid: u32,
}

impl Namespaces {
    /// `program` to be run inside the host (network, mount and UTS namespaces), stdin null.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.holder_pid))
            .args(["--mount", "--net", "--uts", "--"])
            .arg(program)
            .env("TMPDIR", "/tmp")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `argv` inside the host, directly (not through ssh).
    pub fn exec(&self, argv: &[&str]) -> Output {
        self.command(argv[0])
            .args(&argv[1..])
            .output()
            .expect("nsenter runs")
    }

    /// Runs `argv` inside the host and asserts success; returns stdout, trimmed.
    #[track_caller]
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?} in the host failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Where the host's `path` is reached from the root namespace (through its holder's root),
    /// for reading and writing the host's files with `std::fs`.
    pub fn path(&self, path: &Path) -> PathBuf {
        let inside = path.strip_prefix("/").unwrap_or(path);
        PathBuf::from(format!("/proc/{}/root", self.holder_pid)).join(inside)
    }
}

pub struct TestHost {
    slot: u32,
    name: String,
    /// The host's own files, visible from the root namespace: sshd's config, keys, pid file
    /// and log, the authorized keys, the copy of /etc.
    files: tempfile::TempDir,
    /// `sleep infinity`, holding the mount and UTS namespaces every later command enters.
    holder: Option<Child>,
    ns: Namespaces,
    /// Daemons that stay in the foreground (MariaDB), reaped when the host goes.
    children: Mutex<Vec<Child>>,
}

impl TestHost {
    /// A host whose private directories are `dirs` (each an empty tmpfs of mode 0755 inside
    /// the host), with its sshd listening and no key authorized yet.
    pub fn start(dirs: &[&Path]) -> TestHost {
        let (slot, name) = claim_slot();
        // From here on a panic drops the host, which undoes whatever was done so far.
        let mut host = TestHost {
            slot,
            name,
            files: tempfile::Builder::new()
                .prefix("fjord-test-host-")
                .tempdir()
                .unwrap(),
            holder: None,
            ns: Namespaces { holder_pid: 0 },
            children: Mutex::new(Vec::new()),
        };
        host.wire();
        host.hold_namespaces(dirs);
        host.generate_host_key();
        host.start_sshd();
        host
    }

    /// The name of its network namespace, root-side veth and hostname.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address, as the root namespace and other hosts reach it.
    pub fn address(&self) -> Ipv4Addr {
        Ipv4Addr::from(NETWORK + self.slot * 4 + 2)
    }

    /// The root namespace's end of its link: where the host's traffic is routed.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(NETWORK + self.slot * 4 + 1)
    }

    fn subnet(&self) -> String {
        format!("{}/30", Ipv4Addr::from(NETWORK + self.slot * 4))
    }

    /// Cuts its link: the root side of its veth goes down. New connections to it are refused
    /// as unreachable; open ones hang, as over a cut cable.
    pub fn link_down(&self) {
        ip_ok(&["link", "set", &self.name, "down"]);
    }

    pub fn link_up(&self) {
        ip_ok(&["link", "set", &self.name, "up"]);
    }

    pub fn namespaces(&self) -> Namespaces {
        self.ns.clone()
    }

    pub fn command(&self, program: &str) -> Command {
        self.ns.command(program)
    }

    pub fn exec(&self, argv: &[&str]) -> Output {
        self.ns.exec(argv)
    }

    #[track_caller]
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        self.ns.exec_ok(argv)
    }

    pub fn path(&self, path: &Path) -> PathBuf {
        self.ns.path(path)
    }

    /// Lets the holder of `pubkey_line`'s private key in as any user (root included).
    pub fn authorize(&self, pubkey_line: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.authorized_keys())
            .unwrap();
        writeln!(file, "{}", pubkey_line.trim()).unwrap();
    }

    /// The public half of its host key: `ssh-ed25519 AAAA…`, as a known_hosts line has it
    /// after the address.
    pub fn host_key_line(&self) -> String {
        let public = std::fs::read_to_string(self.host_key().with_extension("pub")).unwrap();
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Gives it a new host key and restarts its sshd, as a reinstalled machine would come
    /// back.
    pub fn change_host_key(&self) {
        self.stop_sshd();
        std::fs::remove_file(self.host_key()).unwrap();
        std::fs::remove_file(self.host_key().with_extension("pub")).unwrap();
        self.generate_host_key();
        self.start_sshd();
    }

    /// What its sshd logged.
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.files.path().join("sshd.log")).unwrap_or_default()
    }

    /// Whether something accepts a TCP connection at its address on `port` (within 2 s).
    pub fn answers_on(&self, port: u16) -> bool {
        let address = SocketAddr::from((self.address(), port));
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
    }

    /// Waits until its `port` accepts connections from the root namespace.
    #[track_caller]
    pub fn wait_for_port(&self, port: u16, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers_on(port) {
            assert!(
                Instant::now() < deadline,
                "{what} in host {} did not listen on {}:{port}",
                self.name,
                self.address()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Keeps `child` (a daemon in the foreground) to be killed and reaped with the host.
    fn adopt(&self, child: Child) {
        self.children.lock().unwrap().push(child);
    }

    fn host_key(&self) -> PathBuf {
        self.files.path().join("ssh_host_ed25519_key")
    }

    fn authorized_keys(&self) -> PathBuf {
        self.files.path().join("authorized_keys")
    }

    /// The veth pair, the addresses, the host's route and the root side's forwarding guard.
    fn wire(&self) {
        let (name, gateway, address) = (&self.name, self.gateway(), self.address());
        ip_ok(&[
            "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name,
        ]);
        ip_ok(&["addr", "add", &format!("{gateway}/30"), "dev", name]);
        // Only packets arriving on this veth are forwarded: none from the machine's own
        // interfaces reach a host, whatever the machine's global setting.
        std::fs::write(format!("/proc/sys/net/ipv4/conf/{name}/forwarding"), "1").unwrap();
        ip_ok(&["link", "set", name, "up"]);
        ip_ok(&[
            "-n",
            name,
            "addr",
            "add",
            &format!("{address}/30"),
            "dev",
            "eth0",
        ]);
        ip_ok(&["-n", name, "link", "set", "eth0", "up"]);
        ip_ok(&["-n", name, "link", "set", "lo", "up"]);
        ip_ok(&[
            "-n",
            name,
            "route",
            "add",
            NETWORK_PREFIX,
            "via",
            &gateway.to_string(),
        ]);
        // What a host sends is routed by the main table's /30s and longer only (other hosts;
        // the default route and the machine's own networks are shorter), else prohibited.
        ip_ok(&[
            "rule",
            "add",
            "iif",
            name,
            "lookup",
            "main",
            "suppress_prefixlength",
            "29",
            "pref",
            MARK,
        ]);
        ip_ok(&["rule", "add", "iif", name, "prohibit", "pref", PROHIBIT]);
        // While the link is down its connected route is gone; this one keeps the host's
        // traffic from taking the default route out of the machine.
        ip_ok(&[
            "route",
            "add",
            "unreachable",
            &self.subnet(),
            "metric",
            MARK,
        ]);
    }

    /// Starts the holder: inside the network namespace, new mount and UTS namespaces with a
    /// tmpfs on each of `dirs`, the copy of /etc on /etc and a fresh /run and /tmp.
    fn hold_namespaces(&mut self, dirs: &[&Path]) {
        let etc = self.files.path().join("etc");
        let copied = Command::new("cp")
            .arg("-a")
            .arg("/etc")
            .arg(&etc)
            .status()
            .unwrap();
        assert!(copied.success(), "copying /etc for host {}", self.name);
        use std::io::Write;
        let mut hosts = std::fs::OpenOptions::new()
            .append(true)
            .open(etc.join("hosts"))
            .unwrap();
        writeln!(hosts, "{} {}", self.address(), self.name).unwrap();
        // The hosts share this machine's kernel, its process ids among them: a user made in a
        // host gets ids of a range of that host's own, so that no two hosts (nor the machine)
        // hand out one uid, and ending every process of a site's user ends that site's only.
        let defs = etc.join("login.defs");
        let base = 200_000 + self.slot * 100;
        let kept: String = std::fs::read_to_string(&defs)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("SYS_UID_") && !l.starts_with("SYS_GID_"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(
            &defs,
            format!(
                "{kept}SYS_UID_MIN {base}\nSYS_UID_MAX {}\nSYS_GID_MIN {base}\nSYS_GID_MAX {}\n",
                base + 99,
                base + 99
            ),
        )
        .unwrap();
        // The host's mounts stay its own (slave: the root's unmounts, `ip netns del` of
        // another host's namespace among them, still reach it). Its /tmp is its own too (two
        // MariaDB servers sharing one remove each other's temporary tables as they start):
        // the host's files are carried over, the directories it was given made in it.
        let script = r#"set -e
files=$1; name=$2; shift 2
mount --bind "$files/etc" /etc
mount -t tmpfs -o mode=0755 fjord-test-host-run /run
mkdir /run/sshd /run/lock /run/files
mount --bind "$files" /run/files
mount -t tmpfs -o mode=1777 fjord-test-host-tmp /tmp
mkdir -p "$files"
mount --move /run/files "$files"
for dir in "$@"; do
    mkdir -p "$dir"
    mount -t tmpfs -o mode=0755 fjord-test-host "$dir"
done
hostname "$name"
echo ready
exec sleep infinity
"#;
        let mut holder = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(["unshare", "--mount", "--uts", "--propagation", "slave"])
            .args(["sh", "-c", script, "sh"])
            .arg(self.files.path())
            .arg(&self.name)
            .args(dirs)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = holder.stdout.take().unwrap();
        self.ns = Namespaces {
            holder_pid: holder.id(),
        };
        let mut stderr = holder.stderr.take().unwrap();
        self.holder = Some(holder);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        if line.trim() != "ready" {
            let mut why = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut why);
            panic!("host {} did not start its namespaces: {why}", self.name);
        }
    }

    fn generate_host_key(&self) {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", &self.name, "-f"])
            .arg(self.host_key())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start_sshd(&self) {
        let files = self.files.path();
        let config = files.join("sshd_config");
        if !config.exists() {
            if !self.authorized_keys().exists() {
                std::fs::write(self.authorized_keys(), "").unwrap();
                std::fs::set_permissions(
                    self.authorized_keys(),
                    std::fs::Permissions::from_mode(0o600),
                )
                .unwrap();
            }
            std::fs::write(
                &config,
                format!(
                    "ListenAddress {address}:22
HostKey {key}
AuthorizedKeysFile {keys}
PidFile {files}/sshd.pid
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
# The files are in a temp dir whose parents sshd would find too open.
StrictModes no
Subsystem sftp internal-sftp
",
                    address = self.address(),
                    key = self.host_key().display(),
                    keys = self.authorized_keys().display(),
                    files = files.display(),
                ),
            )
            .unwrap();
        }
        // sshd forks to the background, then listens, then writes its pid file.
        self.exec_ok(&[
            "/usr/sbin/sshd",
            "-f",
            &config.display().to_string(),
            "-E",
            &files.join("sshd.log").display().to_string(),
        ]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !files.join("sshd.pid").exists() {
            assert!(
                Instant::now() < deadline,
                "sshd of host {} did not start: {}",
                self.name,
                self.sshd_log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.wait_for_port(22, "sshd");
    }

    /// Stops the listening sshd (sessions it started go on) and waits until it is gone.
    fn stop_sshd(&self) {
        let pid_file = self.files.path().join("sshd.pid");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let pid = pid.trim();
        let _ = Command::new("kill").args(["-TERM", pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_running(pid) {
            assert!(Instant::now() < deadline, "sshd {pid} did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(pid_file);
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // A dying daemon may still fork (a master replacing a worker): kill until none is left,
        // then wait until the killed have ended (they leave the namespace before that).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut killed = Vec::new();
        loop {
            let pids = processes_in(&self.name);
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            let _ = Command::new("kill").arg("-KILL").args(&pids).status();
            killed.extend(pids);
            std::thread::sleep(Duration::from_millis(20));
        }
        while killed.iter().any(|pid| is_running(pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        for mut child in self.holder.take().into_iter().chain(std::mem::take(
            &mut *self.children.lock().unwrap_or_else(|e| e.into_inner()),
        )) {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Each may be missing when the host failed to start; none is anyone else's.
        let name = self.name.as_str();
        let quiet = |args: &[&str]| {
            let _ = Command::new("ip")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&[
            "rule",
            "del",
            "iif",
            name,
            "lookup",
            "main",
            "suppress_prefixlength",
            "29",
            "pref",
            MARK,
        ]);
        quiet(&["rule", "del", "iif", name, "prohibit", "pref", PROHIBIT]);
        quiet(&[
            "route",
            "del",
            "unreachable",
            &self.subnet(),
            "metric",
            MARK,
        ]);
        quiet(&["link", "del", name]);
        quiet(&["netns", "del", name]);
    }
}

/// A /30 no one uses, claimed by creating its network namespace (`ip netns add` fails for a
/// name that exists, so two processes never claim one slot). Processes start at different
/// places so that they seldom try the same slots.
fn claim_slot() -> (u32, String) {
    let first = (std::process::id() % 128) * 128 + HOSTS_STARTED.fetch_add(1, Ordering::Relaxed);
    for step in 0..SLOTS {
        let slot = (first + step) % SLOTS;
        let name = format!("fjt-{slot}");
        // A link left by a killed test would refuse this name's veth.
        if Path::new("/sys/class/net").join(&name).exists() {
            continue;
        }
        if ip(&["netns", "add", &name]).is_ok() {
            return (slot, name);
        }
    }
    panic!("no free /30 in {NETWORK_PREFIX} for a test host");
}

/// Whether process `pid` runs: one killed may linger as a zombie until its parent (init, for
/// a daemon) reaps it, but holds nothing then.
pub fn is_running(pid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    !matches!(state, Some(Some('Z' | 'X')))
}

/// The processes in network namespace `name`.
fn processes_in(name: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "pids", name])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[track_caller]
fn ip_ok(args: &[&str]) {
    if let Err(why) = ip(args) {
        panic!("ip {}: {why}", args.join(" "));
    }
}

/// An OpenSSH client of a test's own: its key, and a known_hosts that trusts only the hosts
/// it was told to, checked strictly.
pub struct SshClient {
    dir: tempfile::TempDir,
}

impl SshClient {
    pub fn new() -> SshClient {
        let dir = tempfile::Builder::new()
            .prefix("fjord-test-ssh-")
            .tempdir()
            .unwrap();
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "fjord-test", "-f"])
            .arg(dir.path().join("id_ed25519"))
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen for a client");
        std::fs::write(dir.path().join("known_hosts"), "").unwrap();
        SshClient { dir }
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    pub fn public_key_line(&self) -> String {
        std::fs::read_to_string(self.key().with_extension("pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Trusts `host`'s current host key (as a pinned key: no other is accepted for it).
    pub fn trust(&self, host: &TestHost) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.known_hosts())
            .unwrap();
        writeln!(file, "{} {}", host.address(), host.host_key_line()).unwrap();
    }

    /// `ssh` to `host` as root with this client's key and known_hosts only, no prompts.
    pub fn ssh_command(&self, host: &TestHost) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "none", "-i"])
            .arg(self.key())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args([
                "-o",
                "GlobalKnownHostsFile=none",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "UpdateHostKeys=no",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg(format!("root@{}", host.address()))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `remote_command` on `host` over ssh.
    pub fn ssh(&self, host: &TestHost, remote_command: &str) -> Output {
        self.ssh_command(host)
            .arg(remote_command)
            .output()
            .expect("ssh runs")
    }
}
