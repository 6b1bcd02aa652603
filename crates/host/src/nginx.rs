//! Driving nginx safely: every change is tested with `nginx -t` on the whole config before a
//! reload, a change nginx rejects is put back before anything reloads, and the reload is
//! confirmed by asking nginx itself which config generation it serves.
//!
//! Changes from many tasks are group-committed (see [`crate::commit`]).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::commit::Reloadable;
use crate::fsops;
use crate::open_files;
use crate::{HostError, Result, run_command};

/// How to test and reload one nginx instance, and where fjord keeps its config for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NginxCtl {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub prefix: Option<PathBuf>,
    /// `None`: `nginx -s reload`.
    pub reload_command: Option<Vec<String>>,
    /// fjord's directory for this server's nginx config.
    pub config_dir: PathBuf,
    pub listen: SocketAddr,
    pub probe_host: String,
    pub probe_path: String,
}

impl NginxCtl {
    fn base_argv(&self) -> Vec<String> {
        let mut argv = vec![self.binary.display().to_string()];
        if let Some(prefix) = &self.prefix {
            argv.push("-p".into());
            argv.push(format!("{}/", prefix.display()));
        }
        argv.push("-c".into());
        argv.push(self.config.display().to_string());
        argv
    }

    /// `nginx [-p prefix] -c config`: what starts this nginx (it forks into the background
    /// unless its config says `daemon off`).
    pub fn start_argv(&self) -> Vec<String> {
        self.base_argv()
    }

    pub fn test_argv(&self) -> Vec<String> {
        let mut argv = self.base_argv();
        argv.extend(["-t".to_string(), "-q".to_string()]);
        argv
    }

    pub fn reload_argv(&self) -> Vec<String> {
        match &self.reload_command {
            Some(argv) => argv.clone(),
            None => {
                let mut argv = self.base_argv();
                argv.extend(["-s".to_string(), "reload".to_string()]);
                argv
            }
        }
    }

    /// `nginx -s reopen`: the master reopens every log file by name (after a rotation), and
    /// hands them to its workers' user, which reopen them too.
    pub fn reopen_logs(&self) -> Result<()> {
        let mut argv = self.base_argv();
        argv.extend(["-s".to_string(), "reopen".to_string()]);
        let out = run_command(&argv)?;
        if out.success {
            Ok(())
        } else {
            Err(HostError::Refused(format!(
                "nginx did not reopen its logs: {}",
                out.output.trim()
            )))
        }
    }

    /// `nginx -t` on the whole config: `Err` carries nginx's own message.
    pub fn test(&self) -> Result<()> {
        let raised = self.open_files_for_test();
        let out = run_command(&self.test_argv())?;
        if out.success {
            Ok(())
        } else {
            let mut message = out.output.trim().to_string();
            if let Err(why) = raised {
                message = format!("{message} ({why})");
            }
            Err(HostError::NginxRejected(message))
        }
    }

    /// Gives this process (whose limits `nginx -t` inherits) the open files a test of every
    /// site's vhost needs (see [`crate::open_files`]).
    fn open_files_for_test(&self) -> std::result::Result<(), String> {
        let vhosts = open_files::vhosts_in(&self.config_dir);
        let need = open_files::needed_by_test(vhosts);
        open_files::ensure_open_files(None, need)
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "testing {vhosts} sites' vhosts opens about {need} files, and fjord could \
                     not raise its own open-files limit to that: {e}"
                )
            })
    }

    /// Gives nginx's master the open files a reload needs: the new config's log files beside
    /// the ones it holds. What it cannot give is said on fjord's stderr, and the reload made
    /// all the same: the need is an estimate with room to spare, and a reload that does run
    /// out is told by [`short_of_open_files`].
    fn open_files_for_reload(&self, master: u32) {
        let vhosts = open_files::vhosts_in(&self.config_dir);
        let Some(held) = open_files::open_files_held(master) else {
            return;
        };
        let need = open_files::needed_by_reload(held, vhosts);
        match open_files::ensure_open_files(Some(master), need) {
            Ok(None) => {}
            Ok(Some(raised)) => tracing::info!(
                "nginx's master (pid {master}) could open {} files, too few to reload \
                 {vhosts} sites (about {need}): raised to {} for as long as it runs (see \
                 `fjord server verify`)",
                raised.from,
                raised.to
            ),
            Err(e) => tracing::warn!(
                "nginx's master (pid {master}) holds {held} open files, and a reload of \
                 {vhosts} sites may need about {need}: fjord could not raise its limit that far \
                 ({e}). Raise nginx's limit: LimitNOFILE={} in its systemd unit (systemctl \
                 edit nginx), or ulimit -n where it is started, then restart nginx",
                suggested_limit(need)
            ),
        }
    }

    /// What nginx's limits allow, for the server's verify to report: how many sites this
    /// nginx's master can reload now, and whether a start of it (a restart, a reboot) could
    /// open every site's logs with the limit its service gives it.
    pub fn open_files_report(&self) -> Option<String> {
        let (_, worker) = probe_generation(self)?;
        let (master, _) = proc_info(worker)?;
        let vhosts = open_files::vhosts_in(&self.config_dir);
        let (soft, hard) = open_files::open_files_limits(master)?;
        let held = open_files::open_files_held(master)?;
        let mut report = format!(
            "nginx's master (pid {master}) may open {soft} files (hard limit {hard}) and holds \
             {held}: {vhosts} sites, two log files each, opened again at each reload (fjord \
             raises the limit before a reload that needs more)"
        );
        if let Some((unit, unit_soft)) = systemd_limit(master) {
            let need = open_files::needed_by_reload(0, vhosts) + 2 * vhosts;
            if unit_soft < need {
                report.push_str(&format!(
                    "; its service {unit} starts it with {unit_soft}, too few for {vhosts} \
                     sites (about {need} to start and reload): after a restart or a reboot \
                     nginx may fail to start, leaving every site down. Give it \
                     LimitNOFILE={} (systemctl edit {unit}: [Service])",
                    suggested_limit(need)
                ));
            }
        }
        Some(report)
    }

    /// Whether nginx's whole config (`nginx -T`) has an `include` that would load `file`.
    /// `None` when nginx cannot dump its config (its own test then says why).
    pub fn would_include(&self, file: &std::path::Path) -> Option<bool> {
        let mut argv = self.base_argv();
        argv.push("-T".into());
        let out = run_command(&argv).ok().filter(|o| o.success)?;
        let base = self
            .config
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        let file = file.display().to_string();
        Some(included_patterns(&out.output).iter().any(|pattern| {
            let pattern = if pattern.starts_with('/') {
                pattern.clone()
            } else {
                base.join(pattern).display().to_string()
            };
            glob_matches(&pattern, &file)
        }))
    }

    fn generation_file(&self) -> PathBuf {
        self.config_dir.join("generation.conf")
    }

    fn lock_file(&self) -> PathBuf {
        self.config_dir.join(".lock")
    }
}

impl NginxCtl {
    /// Waits, at most `bound`, until no worker of this nginx is shutting down: every request
    /// that reached it before its last reload has then been answered (a retiring worker
    /// exits only once its last request is done). Returns how many still were at the bound.
    pub fn wait_until_drained(&self, bound: Duration) -> usize {
        let Some((master, _)) = probe_generation(self).and_then(|(_, worker)| proc_info(worker))
        else {
            return 0;
        };
        let deadline = Instant::now() + bound;
        loop {
            let retiring = retiring_workers_of(master);
            if retiring == 0 || Instant::now() >= deadline {
                return retiring;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Reloadable for NginxCtl {
    fn test(&self) -> Result<()> {
        NginxCtl::test(self)
    }

    fn lock_file(&self) -> PathBuf {
        NginxCtl::lock_file(self)
    }

    fn key(&self) -> PathBuf {
        self.config_dir.clone()
    }

    fn committed_dirs(&self) -> Vec<PathBuf> {
        vec![self.config_dir.clone(), self.config_dir.join("vhost.d")]
    }

    fn reload_and_confirm(&self) -> Result<()> {
        // The workers serving now: after the reload each must be gone or shutting down (it
        // has then closed its listening sockets), or a request could still get the old config.
        let old_workers = probe_generation(self)
            .map(|(_, pid)| live_workers_beside(pid))
            .unwrap_or_default();
        // A master short of open files fails its reload and keeps its old config: the commit
        // would wait for a generation that never comes.
        let master = old_workers
            .first()
            .and_then(|w| proc_info(*w))
            .map(|(m, _)| m);
        if let Some(master) = master {
            self.open_files_for_reload(master);
        }
        let generation = next_generation();
        fsops::write_atomic(
            &self.generation_file(),
            generation_conf(&self.probe_path, generation).as_bytes(),
            0o644,
        )?;
        let reload_began = boot_ticks();
        let out = run_command(&self.reload_argv())?;
        if !out.success {
            return Err(HostError::Nginx(format!(
                "reload failed ({}): {}",
                out.status,
                out.output.trim()
            )));
        }
        // nginx reloads asynchronously; a task is done only once its config is live.
        let deadline = Instant::now() + Duration::from_secs(20);
        let want = generation.to_string();
        while Instant::now() < deadline {
            if let Some((served, worker)) = probe_generation(self)
                && served == want
                // Workers that started before the reload serve an older config. The probe
                // found them before it, unless no config of ours was live yet (the first
                // commit): then only their start times tell them from the new ones.
                && old_workers
                    .iter()
                    .copied()
                    .chain(
                        live_workers_beside(worker)
                            .into_iter()
                            .filter(|pid| started_before(*pid, reload_began)),
                    )
                    .all(|pid| !is_live_worker(pid))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some(why) = master.and_then(short_of_open_files) {
            return Err(HostError::Nginx(format!(
                "reloaded, but after 20 s nginx does not serve the new config (generation \
                 {generation}): {why}"
            )));
        }
        Err(HostError::Nginx(format!(
            "reloaded, but after 20 s nginx does not serve the new config (generation {generation}) \
             on {}: is {} included by {}?",
            self.listen,
            self.config_dir.display(),
            self.config.display()
        )))
    }
}

/// Why a master may have failed its reload for want of open files: a reload opens every log
/// file of the new config while the old ones are still open, so a master that already holds
/// over half its limit cannot (each site's logs are two files).
fn short_of_open_files(master: u32) -> Option<String> {
    let open = std::fs::read_dir(format!("/proc/{master}/fd"))
        .ok()?
        .count() as u64;
    let limits = std::fs::read_to_string(format!("/proc/{master}/limits")).ok()?;
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    (open * 2 > soft).then(|| {
        format!(
            "its master (pid {master}) holds {open} open files and may open {soft}; a reload \
             opens every log file again beside the old ones, so it ran out (its error log says \
             \"Too many open files\"). Raise nginx's limit: LimitNOFILE=65536 in its systemd \
             unit (systemctl edit nginx), or ulimit -n where it is started, then restart nginx"
        )
    })
}

/// A round open-files limit above `need`, to suggest.
fn suggested_limit(need: u64) -> u64 {
    (need * 2).max(65_536).next_multiple_of(1024)
}

/// The systemd unit `pid` runs in, and the soft open-files limit that unit starts its
/// processes with (None: not a systemd service, or systemd cannot say).
fn systemd_limit(pid: u32) -> Option<(String, u64)> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let unit = cgroup
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .find(|u| u.ends_with(".service"))?
        .to_string();
    let out = run_command(&[
        "systemctl".to_string(),
        "show".to_string(),
        "--property=LimitNOFILESoft".to_string(),
        "--value".to_string(),
        unit.clone(),
    ])
    .ok()
    .filter(|o| o.success)?;
    let soft = out.output.trim().parse().ok()?;
    Some((unit, soft))
}

/// A process's parent pid and its command line (nginx sets its title there).
fn proc_info(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; the fields after it are plain.
    let after = &stat[stat.rfind(')')? + 2..];
    let ppid = after.split(' ').nth(1)?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some((ppid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
}

/// Clock ticks since boot (Linux counts process start times in these, 100 a second).
fn boot_ticks() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |seconds| (seconds * 100.0) as u64)
}

/// Whether a process started in a clock tick before `tick` (one started in the same tick
/// counts as later).
fn started_before(pid: u32, tick: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = &stat[stat.rfind(')')? + 2..];
            // Field 22 of stat, the start time, is the 20th after the command name.
            after.split(' ').nth(19)?.parse::<u64>().ok()
        })
        .is_some_and(|started| started < tick)
}

fn is_live_worker(pid: u32) -> bool {
    proc_info(pid).is_some_and(|(_, cmd)| {
        cmd.starts_with("nginx: worker process") && !cmd.contains("shutting down")
    })
}

/// How many workers of `master` are shutting down.
fn retiring_workers_of(master: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            proc_info(*pid).is_some_and(|(ppid, cmd)| {
                ppid == master
                    && cmd.starts_with("nginx: worker process")
                    && cmd.contains("shutting down")
            })
        })
        .count()
}

/// The live workers of the nginx master that `worker` belongs to.
fn live_workers_beside(worker: u32) -> Vec<u32> {
    let Some((master, _)) = proc_info(worker) else {
        return vec![worker];
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![worker];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            proc_info(*pid).is_some_and(|(ppid, _)| ppid == master) && is_live_worker(*pid)
        })
        .collect()
}

/// The probe answers with the generation and the pid of the worker that served it.
/// The arguments of every `include` directive in a config dump (comments left out).
fn included_patterns(dump: &str) -> Vec<String> {
    dump.lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .flat_map(|line| line.split(';'))
        .filter_map(|statement| {
            let mut words = statement.split_whitespace();
            (words.next() == Some("include"))
                .then(|| words.next())
                .flatten()
                .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_string())
        })
        .collect()
}

/// Whether `path` matches the glob `pattern` (`*` and `?` within one path component), as
/// nginx's `include` expands it.
fn glob_matches(pattern: &str, path: &str) -> bool {
    fn matches(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                matches(&p[1..], s)
                    || (s.first().is_some_and(|&c| c != b'/') && matches(p, &s[1..]))
            }
            (Some(b'?'), Some(&c)) if c != b'/' => matches(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => matches(&p[1..], &s[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), path.as_bytes())
}

pub fn generation_conf(path: &str, generation: u64) -> String {
    format!(
        "location = {path} {{\n    default_type text/plain;\n    return 200 \"{generation} $pid\";\n}}\n"
    )
}

/// Generations grow across processes and restarts: microseconds since the epoch, bumped if
/// two are asked for within one microsecond.
fn next_generation() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let prev = LAST.fetch_max(now, Ordering::SeqCst);
    if prev >= now {
        LAST.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        now
    }
}

/// Asks nginx for the generation it serves, and which worker answered, through fjord's probe
/// server block.
pub fn probe_generation(ctl: &NginxCtl) -> Option<(String, u32)> {
    let mut addr = ctl.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        ctl.probe_path, ctl.probe_host
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let (generation, pid) = body.trim().split_once(' ')?;
    Some((generation.to_string(), pid.parse().ok()?))
}

#[cfg(test)]
mod include_tests {
    use super::*;

    #[test]
    fn an_include_glob_is_matched_as_nginx_expands_it() {
        let dump = "# configuration file /etc/nginx/nginx.conf:\nhttp {\n  include /etc/nginx/mime.types;\n  # include /etc/nginx/off/*.conf;\n  include /etc/nginx/conf.d/*.conf; include sites-enabled/*;\n}\n";
        let patterns = included_patterns(dump);
        assert_eq!(
            patterns,
            [
                "/etc/nginx/mime.types",
                "/etc/nginx/conf.d/*.conf",
                "sites-enabled/*"
            ]
        );
        assert!(glob_matches(
            "/etc/nginx/conf.d/*.conf",
            "/etc/nginx/conf.d/fjord-local.conf"
        ));
        assert!(!glob_matches(
            "/etc/nginx/conf.d/*.conf",
            "/etc/nginx/conf.d/a/b.conf"
        ));
        assert!(!glob_matches(
            "/etc/nginx/off/*.conf",
            "/etc/nginx/conf.d/fjord-local.conf"
        ));
        assert!(glob_matches(
            "/etc/nginx/conf.d/fjord-?ocal.conf",
            "/etc/nginx/conf.d/fjord-local.conf"
        ));
    }
}

#[cfg(test)]
mod open_files_tests {
    use super::*;

    #[test]
    fn a_master_over_half_its_open_files_is_named_as_the_reason_a_reload_failed() {
        // A process that may open 5 files and holds at least 3 (its standard streams).
        let mut tight = std::process::Command::new("prlimit")
            .args(["--nofile=5:5", "sleep", "30"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let why = short_of_open_files(tight.id());
        tight.kill().unwrap();
        tight.wait().unwrap();
        let why = why.expect("3 or more of 5 open files: a reload would need 6");
        assert!(why.contains("open files and may open 5"), "{why}");
        assert!(why.contains("LimitNOFILE"), "{why}");
        assert_eq!(short_of_open_files(std::process::id()), None);
    }
}
