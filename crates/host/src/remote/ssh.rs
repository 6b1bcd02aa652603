//! OpenSSH as fjord runs it: the system's `ssh`, with fjord's own key, no user or system
//! config, and only the host key pinned for the server (`StrictHostKeyChecking=yes` against a
//! known-hosts file fjord writes from its state). Nothing here trusts a key on first use
//! except [`scan_host_key`], whose answer is shown to the administrator who adds the server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Endpoint;
use crate::process::child_command;
use crate::{HostError, Result};

/// Key types asked of a server, best first.
const SCAN_TYPES: &[&str] = &["ed25519", "ecdsa", "rsa"];

/// fjord's own SSH key pair and the known-hosts files it writes, in a directory of its data
/// dir that only root reads.
#[derive(Debug, Clone)]
pub struct SshKeys {
    dir: PathBuf,
}

impl SshKeys {
    pub fn new(dir: PathBuf) -> SshKeys {
        SshKeys { dir }
    }

    fn identity(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The public half of fjord's key (`ssh-ed25519 AAAA… fjord@HOST`), made first if there
    /// is none: what an administrator appends to the remote user's `authorized_keys`.
    pub fn public_key(&self) -> Result<String> {
        // One maker at a time: two links opened at once must not each make a key.
        static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        let identity = self.identity();
        let public = identity.with_extension("pub");
        if !identity.exists() {
            crate::ensure_private_dir(&self.dir)?;
            let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into());
            let _ = std::fs::remove_file(&public);
            keygen(&[
                "-q".as_ref(),
                "-t".as_ref(),
                "ed25519".as_ref(),
                "-N".as_ref(),
                "".as_ref(),
                "-C".as_ref(),
                format!("fjord@{hostname}").as_ref(),
                "-f".as_ref(),
                identity.as_os_str(),
            ])?;
        } else if !public.exists() {
            // The private key is what servers know fjord by: never made again; its public
            // half is read back from it.
            let line = keygen(&["-y".as_ref(), "-f".as_ref(), identity.as_os_str()])?;
            crate::fsops::write_atomic(&public, line.as_bytes(), 0o644)?;
        }
        let line = std::fs::read_to_string(&public).map_err(|e| HostError::io(&public, e))?;
        Ok(line.trim().to_string())
    }

    /// The known-hosts file for `endpoint`: its pinned key alone, under an alias of its own.
    fn known_hosts(&self, endpoint: &Endpoint) -> Result<PathBuf> {
        let dir = self.dir.join("known_hosts.d");
        crate::ensure_private_dir(&dir)?;
        let path = dir.join(&endpoint.name);
        let line = format!("{} {}\n", alias(endpoint), endpoint.host_key);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(line.as_str()) {
            crate::fsops::write_atomic(&path, line.as_bytes(), 0o600)?;
        }
        Ok(path)
    }

    /// `ssh` to `endpoint` running `remote_command` there (its user's shell reads it).
    pub(super) fn command(&self, endpoint: &Endpoint, remote_command: &str) -> Result<Command> {
        self.public_key()?;
        let known_hosts = self.known_hosts(endpoint)?;
        let mut cmd = child_command("ssh");
        // -F /dev/null: no config of root's or the system's changes how fjord connects.
        cmd.args(["-F", "/dev/null", "-T", "-x", "-a", "-i"])
            .arg(self.identity());
        for option in [
            "IdentitiesOnly=yes".to_string(),
            "IdentityAgent=none".to_string(),
            "BatchMode=yes".to_string(),
            "StrictHostKeyChecking=yes".to_string(),
            format!("UserKnownHostsFile={}", known_hosts.display()),
            "GlobalKnownHostsFile=/dev/null".to_string(),
            format!("HostKeyAlias={}", alias(endpoint)),
            "UpdateHostKeys=no".to_string(),
            "CheckHostIP=no".to_string(),
            "ConnectTimeout=10".to_string(),
            // A cut link is noticed within 15 s, not at TCP's timeout.
            "ServerAliveInterval=5".to_string(),
            "ServerAliveCountMax=3".to_string(),
            "LogLevel=ERROR".to_string(),
            // AES-GCM first: with the CPU's AES instructions it carries a backup's archive
            // about twice as fast as OpenSSH's default ChaCha20.
            "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"
                .to_string(),
        ] {
            cmd.arg("-o").arg(option);
        }
        cmd.arg("-p")
            .arg(endpoint.port.to_string())
            .arg("-l")
            .arg(&endpoint.user)
            .arg("--")
            .arg(&endpoint.host)
            .arg(remote_command);
        Ok(cmd)
    }
}

fn alias(endpoint: &Endpoint) -> String {
    format!("fjord-server-{}", endpoint.name)
}

/// What `ssh` said when it could not connect, told as the reason a server is unreachable: a
/// changed host key named as such, with what to do.
pub(super) fn unreachable(endpoint: &Endpoint, stderr: &str) -> HostError {
    let said = stderr.trim();
    if said.contains("Host key verification failed")
        || said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || said.contains("No ED25519 host key is known")
        || said.contains("host key for")
    {
        return HostError::Unreachable(format!(
            "server {name} ({target}) did not prove it holds the host key pinned for it \
             ({key}): every task on it is refused. If its key was changed on purpose, pin \
             the new one with `fjord server edit {name} --host-key 'TYPE BASE64'`, read on \
             the server from /etc/ssh/ssh_host_ed25519_key.pub",
            name = endpoint.name,
            target = endpoint.target(),
            key = fingerprint_hint(&endpoint.host_key),
        ));
    }
    let said = if said.is_empty() {
        "ssh ended without a word".to_string()
    } else {
        said.lines().take(5).collect::<Vec<_>>().join("; ")
    };
    HostError::Unreachable(format!(
        "server {} ({}) cannot be reached over SSH: {said}",
        endpoint.name,
        endpoint.target()
    ))
}

/// A key's type and the end of its base64: enough to tell two keys apart in a message.
fn fingerprint_hint(key: &str) -> String {
    let mut words = key.split_whitespace();
    let key_type = words.next().unwrap_or_default();
    let base64 = words.next().unwrap_or_default();
    let tail = &base64[base64.len().saturating_sub(12)..];
    format!("{key_type} …{tail}")
}

/// Asks `host:port` for its host key (`ssh-keyscan`), best type first: what `server add`
/// pins when no key is given, and shows.
pub fn scan_host_key(host: &str, port: u16) -> Result<String> {
    let out = child_command("ssh-keyscan")
        .args(["-T", "10", "-p", &port.to_string(), "-t"])
        .arg(SCAN_TYPES.join(","))
        .arg("--")
        .arg(host)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HostError::io(Path::new("ssh-keyscan"), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let keys: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace().skip(1);
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect();
    for wanted in ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"] {
        if let Some((t, k)) = keys.iter().find(|(t, _)| t == wanted) {
            return Ok(format!("{t} {k}"));
        }
    }
    Err(HostError::Unreachable(format!(
        "{host} port {port} offered no SSH host key{}",
        match String::from_utf8_lossy(&out.stderr).trim() {
            "" => String::new(),
            said => format!(": {said}"),
        }
    )))
}

/// Runs `ssh-keygen` with `args`; its standard output.
fn keygen(args: &[&std::ffi::OsStr]) -> Result<String> {
    let out = child_command("ssh-keygen")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HostError::io(Path::new("ssh-keygen"), e))?;
    if !out.status.success() {
        return Err(HostError::Command {
            program: "ssh-keygen".into(),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
