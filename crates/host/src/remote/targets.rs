//! Backup targets: machines that keep copies of a site's backups, reached over SSH exactly as
//! a remote server is (fjord's own key, the host key pinned when the target was added), but
//! running nothing of fjord's: a copy is streamed into a POSIX shell there (`mkdir`, `cat`,
//! `sha256sum`, `mv`, `rm`), checked by its SHA-256 on the target before it takes its name,
//! and read back with `cat`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Output, Stdio};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{Endpoint, SshKeys};
use crate::{HostError, Result};

/// A backup target as fjord reaches it (and as a journal entry's undo names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetAddress {
    /// The target's name in fjord's state.
    pub name: String,
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The pinned host key: `TYPE BASE64`.
    pub host_key: String,
}

impl TargetAddress {
    /// The endpoint `ssh` is run for. Its name, which names its known-hosts file, holds a dot
    /// that no server's name may: a target never shares a pinned key with a server.
    fn endpoint(&self) -> Endpoint {
        Endpoint {
            name: format!("backup-target.{}", self.name),
            user: self.user.clone(),
            host: self.host.clone(),
            port: self.port,
            host_key: self.host_key.clone(),
            dir: "/".into(),
        }
    }

    /// `USER@HOST[:PORT]`, for messages.
    pub fn target(&self) -> String {
        self.endpoint().target()
    }
}

/// A copy made on a backup target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copied {
    pub path: String,
    pub size: u64,
    /// Hex.
    pub sha256: String,
}

/// A path the target's shell reads unquoted: absolute, of plain path characters only.
fn plain(what: &str, path: &str) -> Result<()> {
    if path.starts_with('/')
        && path.len() > 1
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && !path.split('/').any(|p| p == "..")
    {
        Ok(())
    } else {
        Err(HostError::Refused(format!(
            "{what} {path:?} on a backup target must be an absolute path of letters, digits, \
             /, ., _ and -"
        )))
    }
}

/// The name a copy has while it arrives, beside its final one: one per copy, so that an
/// undo knows it too.
fn part_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/.{file}.part"),
        None => format!(".{path}.part"),
    }
}

/// Runs `script` on the target; `doing` says what for, in the error.
fn run(
    keys: &SshKeys,
    target: &TargetAddress,
    script: &str,
    stdin: Stdio,
    doing: &str,
) -> Result<Output> {
    let out = keys
        .command(&target.endpoint(), script)?
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| HostError::io(Path::new("ssh"), e))?;
    if out.status.success() {
        return Ok(out);
    }
    Err(failed(
        target,
        out.status.code(),
        &String::from_utf8_lossy(&out.stderr),
        doing,
    ))
}

/// What `ssh` (exit 255: it could not connect or lost the connection) or the target's shell
/// said, as an error naming the target.
fn failed(target: &TargetAddress, code: Option<i32>, stderr: &str, doing: &str) -> HostError {
    let said = stderr.trim();
    let said = if said.is_empty() {
        "ssh ended without a word".to_string()
    } else {
        said.lines().take(5).collect::<Vec<_>>().join("; ")
    };
    if said.contains("Host key verification failed")
        || said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || said.contains("host key for")
    {
        return HostError::Unreachable(format!(
            "backup target {name} ({addr}) did not prove it holds the host key pinned for it; \
             nothing is copied to or read from it. If its key was changed on purpose, remove \
             the target and add it again with `--host-key 'TYPE BASE64'`, read on it from \
             /etc/ssh/ssh_host_ed25519_key.pub",
            name = target.name,
            addr = target.target(),
        ));
    }
    match code {
        Some(255) | None => HostError::Unreachable(format!(
            "backup target {} ({}) cannot be reached over SSH to {doing}: {said}",
            target.name,
            target.target()
        )),
        Some(_) => HostError::Refused(format!(
            "backup target {} ({}): cannot {doing}: {said}",
            target.name,
            target.target()
        )),
    }
}

/// Signs in to the target and makes `dir` there: whether it can be reached at all (with the
/// pinned key), before a step that needs an undo there is journaled.
pub fn reach(keys: &SshKeys, target: &TargetAddress, dir: &str) -> Result<()> {
    plain("directory", dir)?;
    run(
        keys,
        target,
        &format!("umask 077 && mkdir -p {dir}"),
        Stdio::null(),
        &format!("make {dir}"),
    )
    .map(|_| ())
}

/// The SHA-256 of a local file, in hex, and its size.
pub fn sha256_of(path: &Path) -> Result<(String, u64)> {
    let mut file = std::fs::File::open(path).map_err(|e| HostError::io(path, e))?;
    let mut hasher = sha2::Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(|e| HostError::io(path, e))?;
    Ok((hex(&hasher.finalize()), size))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Streams the local file `local` to `path` on the target: it arrives under a name of its
/// own, is checked by its SHA-256 there, and only then takes its name (a copy cut short or
/// damaged is removed, never named).
pub fn copy_to(keys: &SshKeys, target: &TargetAddress, local: &Path, path: &str) -> Result<Copied> {
    plain("copy", path)?;
    let (sha256, size) = sha256_of(local)?;
    let dir = path.rsplit_once('/').map_or("/", |(d, _)| d);
    let part = part_of(path);
    let script = format!(
        "umask 077 && mkdir -p {dir} || exit 4; \
         if cat > {part} && [ \"$(sha256sum < {part})\" = \"{sha256}  -\" ] && \
         mv -f {part} {path}; then exit 0; fi; \
         rm -f {part}; echo 'the copy did not arrive whole (nothing of it is kept)' >&2; exit 3"
    );
    let file = std::fs::File::open(local).map_err(|e| HostError::io(local, e))?;
    run(
        keys,
        target,
        &script,
        Stdio::from(file),
        &format!("copy {} to {path}", local.display()),
    )?;
    Ok(Copied {
        path: path.to_string(),
        size,
        sha256,
    })
}

/// Removes the copy at `path` on the target, and what of it may still be arriving. Idempotent:
/// a copy that is not there is removed already.
pub fn remove_copy(keys: &SshKeys, target: &TargetAddress, path: &str) -> Result<()> {
    plain("copy", path)?;
    run(
        keys,
        target,
        &format!("rm -f {path} {}", part_of(path)),
        Stdio::null(),
        &format!("remove {path}"),
    )
    .map(|_| ())
}

/// Reads the copy at `path` on the target into the new local file `local` (mode 0600),
/// checking it against `sha256` as it arrives: a copy that differs is removed and refused.
pub fn fetch(
    keys: &SshKeys,
    target: &TargetAddress,
    path: &str,
    sha256: &str,
    local: &Path,
) -> Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    plain("copy", path)?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(local)
        .map_err(|e| HostError::io(local, e))?;
    let mut child = keys
        .command(&target.endpoint(), &format!("cat {path}"))?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HostError::io(Path::new("ssh"), e))?;
    let mut stderr = child.stderr.take().expect("piped");
    let said = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stderr).take(64 << 10).read_to_string(&mut text);
        text
    });
    let mut stdout = child.stdout.take().expect("piped");
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    let copied: Result<()> = loop {
        match stdout.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
                if let Err(e) = out.write_all(&buf[..n]) {
                    break Err(HostError::io(local, e));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(HostError::io(Path::new("ssh"), e)),
        }
    };
    drop(stdout);
    let status = child
        .wait()
        .map_err(|e| HostError::io(Path::new("ssh"), e))?;
    let said = said.join().unwrap_or_default();
    let checked = copied
        .and_then(|()| {
            if status.success() {
                Ok(())
            } else {
                Err(failed(
                    target,
                    status.code(),
                    &said,
                    &format!("read its copy {path}"),
                ))
            }
        })
        .and_then(|()| out.sync_all().map_err(|e| HostError::io(local, e)))
        .and_then(|()| {
            let found = hex(&hasher.finalize());
            if found == sha256 {
                Ok(size)
            } else {
                Err(HostError::Refused(format!(
                    "backup target {}: the copy {path} is not the backup that was copied (its \
                     SHA-256 is {found}, the copy's was {sha256}); nothing is restored from it",
                    target.name
                )))
            }
        });
    if checked.is_err() {
        let _ = std::fs::remove_file(local);
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_absolute_paths_reach_the_targets_shell() {
        for ok in [
            "/srv/copies/a.example/a.example-20261208T043500Z.tar.zst",
            "/b",
        ] {
            assert!(plain("copy", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/",
            "srv",
            "/srv/a b",
            "/srv/$(id)",
            "/srv/../etc",
            "/srv/a;rm",
        ] {
            assert!(plain("copy", bad).is_err(), "{bad}");
        }
        assert_eq!(part_of("/srv/c/a.tar.zst"), "/srv/c/.a.tar.zst.part");
    }
}
