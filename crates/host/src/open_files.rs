//! Open files for nginx. Every site's vhost names two log files of the site's own (its
//! access and error logs), and every nginx process that reads the config opens them: `nginx
//! -t`, run by fjord, and nginx's master, which at a reload opens the new config's files
//! while it still holds the old ones (and its workers inherit what it holds). So N sites need
//! about 2N open files in `nginx -t` and 4N in the master at a reload, past the 1,024 that a
//! process gets by default (a systemd service's soft limit): a reload then fails with "Too
//! many open files", and the master keeps its old config.
//!
//! fjord runs as root and manages this nginx: before it tests, it gives itself the files the
//! test needs, and before it reloads, it gives the master what the reload needs (`prlimit`,
//! both limits when the hard one is short). A raise lasts as long as the process: a master
//! started again (a restart, a reboot) starts with its service's limit, opens every log file
//! and fails to start when that is short; so a raise is reported, with the lasting fix.

use std::path::Path;

use rustix::process::{Pid, Resource, Rlimit, prlimit};

/// Open files an nginx process holds beside its sites' logs (its own logs, listening sockets,
/// connections to upstreams, the files it serves), and to spare.
pub const NGINX_BASE_FILES: u64 = 1024;

/// The most open files the kernel lets a process have (`fs.nr_open`).
fn kernel_ceiling() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// A process's open-files limits (soft, hard), read from `/proc` (None: unlimited or
/// unreadable).
pub fn open_files_limits(pid: u32) -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let mut fields = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .skip(3);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// How many files a process holds open.
pub fn open_files_held(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Vhost files in fjord's config of one nginx: each names two log files of its site.
pub fn vhosts_in(config_dir: &Path) -> u64 {
    std::fs::read_dir(config_dir.join("vhost.d"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".conf"))
                .count() as u64
        })
        .unwrap_or(0)
}

/// What a raise did: the soft limit before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub from: u64,
    pub to: u64,
}

/// Makes `pid` (None: this process) able to open at least `need` files: its soft limit is
/// raised, to twice `need` (so that a few more sites raise nothing), within its hard limit,
/// which is raised too when it is short, if this process may (`CAP_SYS_RESOURCE`: root's,
/// unless a container took it away); else the soft limit goes up to the hard one. `Ok(None)`:
/// it already could. `Err`: it still cannot (it may have been raised part of the way).
pub fn ensure_open_files(pid: Option<u32>, need: u64) -> std::io::Result<Option<Raised>> {
    let id = pid.unwrap_or_else(std::process::id);
    let Some((soft, hard)) = open_files_limits(id) else {
        // "unlimited" (or no /proc): nothing to raise.
        return Ok(None);
    };
    if soft >= need {
        return Ok(None);
    }
    let want = need.saturating_mul(2).min(kernel_ceiling()).max(need);
    let target = match pid {
        Some(p) => Some(
            Pid::from_raw(p as i32)
                .ok_or_else(|| std::io::Error::other(format!("no process {p}")))?,
        ),
        None => None,
    };
    let set = |current: u64, maximum: u64| {
        prlimit(
            target,
            Resource::Nofile,
            Rlimit {
                current: Some(current),
                maximum: Some(maximum),
            },
        )
    };
    let to = if want <= hard {
        set(want, hard)?;
        want
    } else {
        match set(want, want) {
            Ok(_) => want,
            Err(e) => {
                set(hard, hard)?;
                if hard < need {
                    return Err(std::io::Error::other(format!(
                        "its hard limit is {hard}, and raising it failed: {e}"
                    )));
                }
                hard
            }
        }
    };
    Ok(Some(Raised { from: soft, to }))
}

/// Open files `nginx -t` needs for `vhosts` sites: it opens each site's two log files.
pub fn needed_by_test(vhosts: u64) -> u64 {
    2 * vhosts + NGINX_BASE_FILES
}

/// Open files nginx's master needs to reload `vhosts` sites while holding `held`: the new
/// config's log files beside what it holds.
pub fn needed_by_reload(held: u64, vhosts: u64) -> u64 {
    held + 2 * vhosts + NGINX_BASE_FILES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_short_of_open_files_is_raised_to_twice_what_it_needs_and_never_lowered() {
        let mut child = crate::process::child_command("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let tight = Rlimit {
            current: Some(300),
            maximum: Some(10_000),
        };
        prlimit(Pid::from_raw(pid as i32), Resource::Nofile, tight).unwrap();
        assert_eq!(open_files_limits(pid), Some((300, 10_000)));

        assert_eq!(ensure_open_files(Some(pid), 250).unwrap(), None);
        assert_eq!(open_files_limits(pid), Some((300, 10_000)));

        // Within the hard limit, only the soft one moves.
        let raised = ensure_open_files(Some(pid), 1000).unwrap().unwrap();
        assert_eq!((raised.from, raised.to), (300, 2000));
        assert_eq!(open_files_limits(pid), Some((2000, 10_000)));

        // Twice the need is past the hard limit: the hard limit is raised where this process
        // may (root), or else the soft one goes up to it, which is enough.
        let raised = ensure_open_files(Some(pid), 6000).unwrap().unwrap();
        let (soft, hard) = open_files_limits(pid).unwrap();
        assert!(
            soft >= 6000 && soft == raised.to && hard >= soft,
            "{soft} {hard}"
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}
