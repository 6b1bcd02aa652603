//! How fjord reaches a server that is not the machine it runs on: OpenSSH, as a user of that
//! machine, to an address and port, checked against a host key pinned when the server was
//! added.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// Where a remote server's sshd is, and the user fjord signs in as: `USER@HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshTarget {
    pub user: String,
    /// An IP address or a DNS name.
    pub host: String,
    pub port: u16,
}

/// Longest user name Debian's `adduser` accepts (and what fits utmp).
const MAX_USER: usize = 32;

impl SshTarget {
    /// Reads `USER@HOST[:PORT]`; an IPv6 address is written in brackets (`root@[fd00::2]:22`).
    pub fn parse(field: &'static str, input: &str) -> Result<SshTarget, Invalid> {
        let refuse = |rule: &str| Err(Invalid::new(field, input, rule));
        let Some((user, rest)) = input.split_once('@') else {
            return refuse("must be USER@HOST or USER@HOST:PORT");
        };
        if user.is_empty()
            || user.len() > MAX_USER
            || !user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            || !user
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return refuse(
                "the user must be 1 to 32 of a-z, 0-9, _ and -, starting with a letter or _",
            );
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let Some((address, after)) = bracketed.split_once(']') else {
                return refuse("an IPv6 address in brackets needs its closing ]");
            };
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return refuse("inside brackets must be an IPv6 address");
            }
            match after {
                "" => (address, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (address, Some(port)),
                    None => return refuse("after ] comes nothing or :PORT"),
                },
            }
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            None => 22,
            Some(port) => match port.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return refuse("the port must be a number from 1 to 65535"),
            },
        };
        if host.parse::<IpAddr>().is_err() && !is_dns_name(host) {
            return refuse(
                "the host must be an IP address or a DNS name (letters, digits, - and dots)",
            );
        }
        Ok(SshTarget {
            user: user.to_string(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// A name `ssh` takes as a host and never as an option or a pattern: labels of a-z, 0-9 and
/// `-`, not starting with `-`.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{}@{host}", self.user)?;
        if self.port != 22 {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// The key types fjord pins: those OpenSSH 9 offers by default.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

/// A server's public host key as a `known_hosts` line holds it: `TYPE BASE64` (a comment
/// after it is dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKey {
    pub key_type: String,
    pub base64: String,
}

impl HostKey {
    pub fn parse(field: &'static str, input: &str) -> Result<HostKey, Invalid> {
        let mut words = input.split_whitespace();
        let (Some(key_type), Some(base64)) = (words.next(), words.next()) else {
            return Err(Invalid::new(
                field,
                input,
                "must be a public key line: TYPE BASE64 (as in /etc/ssh/ssh_host_ed25519_key.pub)",
            ));
        };
        if !KEY_TYPES.contains(&key_type) {
            return Err(Invalid::new(
                field,
                input,
                format!("the key type must be one of {}", KEY_TYPES.join(", ")),
            ));
        }
        if base64.len() < 16
            || !base64
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
        {
            return Err(Invalid::new(field, input, "the key must be base64"));
        }
        Ok(HostKey {
            key_type: key_type.to_string(),
            base64: base64.to_string(),
        })
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key_type, self.base64)
    }
}

/// How fjord reaches a remote server: the target and the host key pinned for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    pub ssh: SshTarget,
    pub host_key: HostKey,
    /// fjord's directory on the machine: its agent, its config of the server's daemons, the
    /// tasks' scratch dirs.
    pub dir: crate::AbsPath,
}

/// Where fjord keeps its files on a remote server unless it is told otherwise.
pub const DEFAULT_REMOTE_DIR: &str = "/var/lib/fjord-remote";

/// Where a backup target keeps its copies: `USER@HOST[:PORT]:/path`, a machine reached over
/// SSH as a remote server is, holding nothing of fjord's but the copies in `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupTarget {
    pub ssh: SshTarget,
    /// An absolute directory of plain path characters: the target's shell reads it unquoted.
    pub path: String,
}

impl BackupTarget {
    /// Reads `USER@HOST[:PORT]:/path`, split at the first `:/` outside an IPv6 address's
    /// brackets.
    pub fn parse(field: &'static str, input: &str) -> Result<BackupTarget, Invalid> {
        let refuse = |rule: &str| Err(Invalid::new(field, input, rule));
        let after_brackets = input.find(']').map_or(0, |i| i + 1);
        let Some(split) = input[after_brackets..]
            .find(":/")
            .map(|i| i + after_brackets)
        else {
            return refuse("must be USER@HOST:/path or USER@HOST:PORT:/path, the path absolute");
        };
        let ssh = SshTarget::parse(field, &input[..split])
            .map_err(|e| Invalid::new(field, input, e.rule))?;
        let path = &input[split + 1..];
        if path == "/" || path.trim_end_matches('/').is_empty() {
            return refuse("the path must be a directory below /, never / itself");
        }
        if !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        {
            return refuse("the path may hold only letters, digits, /, ., _ and -");
        }
        if path.split('/').any(|part| part == "." || part == "..") {
            return refuse("the path may not hold . or .. as a directory");
        }
        Ok(BackupTarget {
            ssh,
            path: path.trim_end_matches('/').to_string(),
        })
    }
}

impl fmt::Display for BackupTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ssh, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_with_their_ports_and_refused_with_the_rule() {
        let t = SshTarget::parse("ssh", "root@web1.example.org").unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("root", "web1.example.org", 22)
        );
        let t = SshTarget::parse("ssh", "fjord@10.0.0.2:2222").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("10.0.0.2", 2222));
        assert_eq!(t.to_string(), "fjord@10.0.0.2:2222");
        let t = SshTarget::parse("ssh", "root@[fd00::2]:22").unwrap();
        assert_eq!(t.host, "fd00::2");
        assert_eq!(t.to_string(), "root@[fd00::2]");
        for bad in [
            "web1",
            "@web1",
            "Root@web1",
            "root@-oProxyCommand=x",
            "root@web1:0",
            "root@web1:http",
            "root@[fd00::2",
            "root@a b",
            "root@",
            "-o@web1",
        ] {
            let err = SshTarget::parse("ssh", bad).unwrap_err();
            assert_eq!(err.value, bad);
        }
    }

    #[test]
    fn host_keys_are_read_from_a_public_key_line() {
        let k = HostKey::parse(
            "host key",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn2a0d6wpWkoKU1X9bU9a root@web1",
        )
        .unwrap();
        assert_eq!(k.key_type, "ssh-ed25519");
        assert!(!k.to_string().contains("root@web1"));
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
            "ssh-ed25519 AAAA;rm",
        ] {
            assert!(HostKey::parse("host key", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backup_targets_split_at_the_first_colon_slash_outside_brackets() {
        let t = BackupTarget::parse("ssh", "backup@store1:/srv/fjord-copies").unwrap();
        assert_eq!(
            (t.ssh.user.as_str(), t.ssh.host.as_str(), t.ssh.port),
            ("backup", "store1", 22)
        );
        assert_eq!(t.path, "/srv/fjord-copies");
        let t = BackupTarget::parse("ssh", "backup@10.0.0.9:2222:/srv/c/").unwrap();
        assert_eq!((t.ssh.port, t.path.as_str()), (2222, "/srv/c"));
        assert_eq!(t.to_string(), "backup@10.0.0.9:2222:/srv/c");
        let t = BackupTarget::parse("ssh", "root@[fd00::9]:22:/b").unwrap();
        assert_eq!((t.ssh.host.as_str(), t.path.as_str()), ("fd00::9", "/b"));
        for bad in [
            "backup@store1",
            "backup@store1:srv",
            "backup@store1:/",
            "backup@store1://",
            "backup@store1:/srv/a b",
            "backup@store1:/srv/$(id)",
            "backup@store1:/srv/../etc",
            "backup@store1:0:/srv",
            "store1:/srv",
            "root@[fd00::9:/srv",
        ] {
            let err = BackupTarget::parse("ssh", bad).unwrap_err();
            assert_eq!(err.value, bad);
            assert_eq!(err.field, "ssh");
        }
    }
}
