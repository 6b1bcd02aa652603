//! Driving nginx safely: every change is tested with `nginx -t` on the whole config before a
//! reload, a change nginx rejects is put back before anything reloads, and the reload is
//! confirmed by asking nginx itself which config generation it serves.
//!
//! Changes from many tasks are *group-committed*: while one batch is being tested and
//! reloaded, new changes queue up, and the next batch takes them all. A thousand tasks
//! finishing together cost a handful of reloads, not a thousand.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::fsops;
use crate::{FileLock, HostError, Result, run_command};

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

    /// `nginx -t` on the whole config: `Err` carries nginx's own message.
    pub fn test(&self) -> Result<()> {
        let out = run_command(&self.test_argv())?;
        if out.success {
            Ok(())
        } else {
            Err(HostError::NginxRejected(out.output.trim().to_string()))
        }
    }

    fn generation_file(&self) -> PathBuf {
        self.config_dir.join("generation.conf")
    }

    fn lock_file(&self) -> PathBuf {
        self.config_dir.join(".lock")
    }
}

/// One change to a file of nginx's config: `contents: None` removes it. `old` is the content
/// found before, so a rejected change can be put back.
#[derive(Debug, Clone)]
pub struct FileChange {
    pub path: PathBuf,
    pub contents: Option<Vec<u8>>,
    pub old: Option<(Vec<u8>, u32)>,
}

impl FileChange {
    fn apply(&self) -> Result<()> {
        match &self.contents {
            Some(c) => fsops::write_atomic(&self.path, c, 0o644),
            None => fsops::remove_file(&self.path),
        }
    }

    fn revert(&self) -> Result<()> {
        match &self.old {
            Some((c, mode)) => fsops::write_atomic(&self.path, c, *mode),
            None => fsops::remove_file(&self.path),
        }
    }
}

struct Request {
    id: u64,
    changes: Vec<FileChange>,
}

#[derive(Default)]
struct State {
    pending: Vec<Request>,
    leader_active: bool,
    results: HashMap<u64, std::result::Result<(), String>>,
    next_id: u64,
}

/// The group-commit point of one nginx instance, shared by every task in this process.
/// Dispatchers in other processes serialize with it through a lock file.
pub struct NginxCommitter {
    ctl: NginxCtl,
    state: Mutex<State>,
    done: Condvar,
    reloads: AtomicU64,
}

impl NginxCommitter {
    pub fn new(ctl: NginxCtl) -> NginxCommitter {
        NginxCommitter {
            ctl,
            state: Mutex::default(),
            done: Condvar::new(),
            reloads: AtomicU64::new(0),
        }
    }

    /// How many reloads this committer has made.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Applies `changes`, tests, reloads and confirms; returns once the changes are live, or
    /// with the reason they were refused (in which case they have been put back). An empty
    /// list asks for a tested reload only.
    pub fn submit(&self, changes: Vec<FileChange>) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let id = state.next_id;
        state.next_id += 1;
        state.pending.push(Request { id, changes });
        loop {
            if let Some(result) = state.results.remove(&id) {
                return result.map_err(HostError::Commit);
            }
            if !state.leader_active {
                state.leader_active = true;
                let batch = std::mem::take(&mut state.pending);
                drop(state);
                let results = self.commit_batch(batch);
                state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.results.extend(results);
                state.leader_active = false;
                self.done.notify_all();
                continue;
            }
            state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn commit_batch(&self, batch: Vec<Request>) -> Vec<(u64, std::result::Result<(), String>)> {
        let mut results = Vec::new();
        let _lock = match FileLock::acquire(&self.ctl.lock_file()) {
            Ok(l) => l,
            Err(e) => return batch.iter().map(|r| (r.id, Err(e.to_string()))).collect(),
        };
        let mut live = Vec::new();
        for req in batch {
            match req.changes.iter().try_for_each(FileChange::apply) {
                Ok(()) => live.push(req),
                Err(e) => {
                    revert_all(&req);
                    results.push((req.id, Err(e.to_string())));
                }
            }
        }
        // Test the whole config; put back every change nginx names in its error, and test
        // again, until the config passes or nothing of this batch is left.
        loop {
            if live.is_empty() {
                return results;
            }
            let message = match self.ctl.test() {
                Ok(()) => break,
                Err(e) => e.to_string(),
            };
            let (culprits, innocent): (Vec<_>, Vec<_>) = live.into_iter().partition(|req| {
                req.changes
                    .iter()
                    .any(|c| message.contains(&*c.path.to_string_lossy()))
            });
            if culprits.is_empty() {
                // The error is in a file none of these changes touched: the config was broken
                // before this batch. Nothing is reloaded until an operator fixes it.
                for req in &innocent {
                    revert_all(req);
                }
                let msg = format!("{message} (the error is outside the files this task changed)");
                results.extend(innocent.iter().map(|r| (r.id, Err(msg.clone()))));
                return results;
            }
            for req in &culprits {
                revert_all(req);
            }
            results.extend(culprits.iter().map(|r| (r.id, Err(message.clone()))));
            live = innocent;
        }
        let outcome = self.reload_and_confirm().map_err(|e| e.to_string());
        results.extend(live.iter().map(|r| (r.id, outcome.clone())));
        results
    }

    fn reload_and_confirm(&self) -> Result<()> {
        // The workers serving now: after the reload each must be gone or shutting down (it
        // has then closed its listening sockets), or a request could still get the old config.
        let old_workers = probe_generation(&self.ctl)
            .map(|(_, pid)| live_workers_beside(pid))
            .unwrap_or_default();
        let generation = next_generation();
        fsops::write_atomic(
            &self.ctl.generation_file(),
            generation_conf(&self.ctl.probe_path, generation).as_bytes(),
            0o644,
        )?;
        let reload_began = boot_ticks();
        let out = run_command(&self.ctl.reload_argv())?;
        self.reloads.fetch_add(1, Ordering::Relaxed);
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
            if let Some((served, worker)) = probe_generation(&self.ctl)
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
        Err(HostError::Nginx(format!(
            "reloaded, but after 20 s nginx does not serve the new config (generation {generation}) \
             on {}: is {} included by {}?",
            self.ctl.listen,
            self.ctl.config_dir.display(),
            self.ctl.config.display()
        )))
    }
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

fn revert_all(req: &Request) {
    for change in req.changes.iter().rev() {
        // A failed revert leaves the file as the task's journal undo will find it, and that
        // undo runs again when the task fails.
        let _ = change.revert();
    }
}

/// The probe answers with the generation and the pid of the worker that served it.
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

/// The committers of this process, one per nginx instance (keyed by fjord's config dir).
#[derive(Default)]
pub struct NginxRegistry {
    map: Mutex<HashMap<PathBuf, Arc<NginxCommitter>>>,
}

impl NginxRegistry {
    pub fn committer(&self, ctl: &NginxCtl) -> Arc<NginxCommitter> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(ctl.config_dir.clone())
            .or_insert_with(|| Arc::new(NginxCommitter::new(ctl.clone())))
            .clone()
    }

    pub fn total_reloads(&self) -> u64 {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|c| c.reloads())
            .sum()
    }
}
