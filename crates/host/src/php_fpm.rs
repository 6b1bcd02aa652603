//! Driving php-fpm as nginx is driven: pool files are group-committed ([`crate::commit`]),
//! the whole config is tested with `php-fpm -t` before any reload, a pool php-fpm rejects is
//! put back, and a reload counts only once php-fpm itself answers with the new generation.
//!
//! The generation is carried by fjord's probe pool (`fjord-probe.conf` in the pool dir):
//! its `ping.response` is rewritten before each reload, and asked for over FastCGI on the
//! probe's socket. php-fpm re-executes its master on SIGUSR2 and reads every pool again, so
//! once the probe answers the new generation, every pool runs the new config.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::commit::Reloadable;
use crate::{HostError, Result, fsops, run_command};

pub const PROBE_POOL: &str = "fjord-probe";
pub const PING_PATH: &str = "/fjord-ping";
/// How long a reload lets running PHP requests finish (see [`PhpFpmCtl::probe_pool`]).
/// Requests that arrive meanwhile wait in the sockets' queues until the new master serves.
pub const PROCESS_CONTROL_TIMEOUT_SECS: u64 = 10;

/// How to test and reload one php-fpm master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhpFpmCtl {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub pid_file: PathBuf,
    pub pool_dir: PathBuf,
    /// fjord's directory for this master (lock file, sockets).
    pub config_dir: PathBuf,
    /// The probe pool's socket, and the user its (never started) workers would run as.
    pub probe_socket: PathBuf,
    pub probe_user: String,
}

impl PhpFpmCtl {
    pub fn probe_pool_file(&self) -> PathBuf {
        self.pool_dir.join(format!("{PROBE_POOL}.conf"))
    }

    /// The probe pool, answering `generation` to a ping, after fjord's global settings. Pure,
    /// so that server verify writes the same file the committer does.
    ///
    /// php-fpm reads `[global]` in an included file too, and the main config of a package
    /// (Debian's) includes the pool dir last, so these settings win over its defaults.
    /// `process_control_timeout`: on a reload (SIGUSR2) the master asks every child to end
    /// and, after this long, kills those still busy; its default, 0, kills them at once, which
    /// cut the responses being sent (of every site) on every reload.
    pub fn probe_pool(&self, generation: u64) -> String {
        format!(
            "; Managed by fjord: its global settings, and its probe pool, which tells which \
             config php-fpm runs.\n\
             [global]\n\
             process_control_timeout = {PROCESS_CONTROL_TIMEOUT_SECS}s\n\
             [{PROBE_POOL}]\n\
             user = {user}\n\
             listen = {socket}\n\
             listen.mode = 0600\n\
             pm = ondemand\n\
             pm.max_children = 1\n\
             ping.path = {PING_PATH}\n\
             ping.response = {generation}\n",
            user = self.probe_user,
            socket = self.probe_socket.display(),
        )
    }

    /// The probe pool with the generation it answers now (0 if there is none): what server
    /// verify writes, so that a verify that changes nothing else leaves the file as it is and
    /// reloads nothing.
    pub fn probe_pool_as_it_is(&self) -> String {
        let generation = std::fs::read_to_string(self.probe_pool_file())
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("ping.response = ")?.trim().parse().ok())
            })
            .unwrap_or(0);
        self.probe_pool(generation)
    }

    fn pid(&self) -> Result<u32> {
        let text = std::fs::read_to_string(&self.pid_file)
            .map_err(|e| HostError::io(&self.pid_file, e))?;
        text.trim().parse().map_err(|_| {
            HostError::Refused(format!(
                "php-fpm's pid file {} does not hold a pid: is php-fpm running?",
                self.pid_file.display()
            ))
        })
    }

    /// The `process_control_timeout` php-fpm's whole config sets, in seconds, as its own test
    /// (`-tt`) reports it; `None` when the config does not load.
    pub fn process_control_timeout(&self) -> Result<Option<u64>> {
        let out = run_command(&[
            self.binary.display().to_string(),
            "-tt".into(),
            "-y".into(),
            self.config.display().to_string(),
        ])?;
        if !out.success {
            return Ok(None);
        }
        Ok(out.output.lines().find_map(|line| {
            let value = line.split_once("process_control_timeout = ")?.1.trim();
            let (number, unit) = value.split_at(value.find(|c: char| !c.is_ascii_digit())?);
            let n: u64 = number.parse().ok()?;
            Some(match unit {
                "m" => n * 60,
                "h" => n * 3600,
                "d" => n * 86400,
                _ => n,
            })
        }))
    }

    fn generation_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    }
}

impl Reloadable for PhpFpmCtl {
    fn test(&self) -> Result<()> {
        let out = run_command(&[
            self.binary.display().to_string(),
            "-t".into(),
            "-y".into(),
            self.config.display().to_string(),
        ])?;
        if out.success {
            Ok(())
        } else {
            // Keep the lines that say what is wrong; the rest repeats "initialization failed".
            let errors: Vec<&str> = out
                .output
                .lines()
                .filter(|l| l.contains("ERROR"))
                .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest))
                .collect();
            Err(HostError::PhpFpmRejected(errors.join("; ")))
        }
    }

    fn reload_and_confirm(&self) -> Result<()> {
        let generation = Self::generation_now();
        fsops::write_atomic(
            &self.probe_pool_file(),
            self.probe_pool(generation).as_bytes(),
            0o644,
        )?;
        let pid = self.pid()?;
        let out = run_command(&["kill".into(), "-USR2".into(), pid.to_string()])?;
        if !out.success {
            return Err(HostError::PhpFpm(format!(
                "reload (SIGUSR2 to {pid}) failed: {}",
                out.output.trim()
            )));
        }
        // The master first waits (up to the timeout) for the requests in flight.
        let deadline = Instant::now() + Duration::from_secs(20 + PROCESS_CONTROL_TIMEOUT_SECS);
        let want = generation.to_string();
        while Instant::now() < deadline {
            if ping(&self.probe_socket).is_some_and(|answer| answer.trim() == want) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(HostError::PhpFpm(format!(
            "reloaded, but after {} s php-fpm does not answer the new config (generation \
             {generation}) on {}: does {} include {}?",
            20 + PROCESS_CONTROL_TIMEOUT_SECS,
            self.probe_socket.display(),
            self.config.display(),
            self.pool_dir.display()
        )))
    }

    fn lock_file(&self) -> PathBuf {
        self.config_dir.join(".lock")
    }

    fn key(&self) -> PathBuf {
        self.config_dir.clone()
    }

    fn committed_dirs(&self) -> Vec<PathBuf> {
        // Only fjord's own temporaries are removed from the pool dir it shares.
        vec![self.pool_dir.clone()]
    }
}

/// Asks a pool's ping page over FastCGI; the body of the answer.
pub fn ping(socket: &std::path::Path) -> Option<String> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = fastcgi_request(&[
        ("SCRIPT_NAME", PING_PATH),
        ("SCRIPT_FILENAME", PING_PATH),
        ("REQUEST_URI", PING_PATH),
        ("REQUEST_METHOD", "GET"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
    ]);
    stream.write_all(&request).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let stdout = fastcgi_stdout(&raw)?;
    let text = String::from_utf8_lossy(&stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if head
        .lines()
        .any(|l| l.starts_with("Status:") && !l.contains("200"))
    {
        return None;
    }
    Some(body.to_string())
}

const FCGI_BEGIN_REQUEST: u8 = 1;
const FCGI_END_REQUEST: u8 = 3;
const FCGI_PARAMS: u8 = 4;
const FCGI_STDIN: u8 = 5;
const FCGI_STDOUT: u8 = 6;

fn record(kind: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len() as u16;
    let mut out = vec![1, kind, 0, 1, (len >> 8) as u8, len as u8, 0, 0];
    out.extend_from_slice(content);
    out
}

fn fastcgi_request(params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = record(FCGI_BEGIN_REQUEST, &[0, 1, 0, 0, 0, 0, 0, 0]);
    let mut encoded = Vec::new();
    for (name, value) in params {
        // Names and values here are short (< 128 bytes): one-byte lengths.
        encoded.push(name.len() as u8);
        encoded.push(value.len() as u8);
        encoded.extend_from_slice(name.as_bytes());
        encoded.extend_from_slice(value.as_bytes());
    }
    out.extend(record(FCGI_PARAMS, &encoded));
    out.extend(record(FCGI_PARAMS, &[]));
    out.extend(record(FCGI_STDIN, &[]));
    out
}

/// The STDOUT stream of a FastCGI response, once it has ended.
fn fastcgi_stdout(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while raw.len() >= 8 {
        let kind = raw[1];
        let len = u16::from_be_bytes([raw[4], raw[5]]) as usize;
        let padding = raw[6] as usize;
        let content = raw.get(8..8 + len)?;
        match kind {
            FCGI_STDOUT => out.extend_from_slice(content),
            FCGI_END_REQUEST => return Some(out),
            _ => {}
        }
        raw = raw.get(8 + len + padding..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_read_across_records_up_to_its_end() {
        let mut raw = record(FCGI_STDOUT, b"Content-type: text/plain\r\n\r\n12");
        raw.extend(record(FCGI_STDOUT, b"34"));
        raw.extend(record(FCGI_END_REQUEST, &[0; 8]));
        assert_eq!(
            fastcgi_stdout(&raw).unwrap(),
            b"Content-type: text/plain\r\n\r\n1234"
        );
        // A response cut before its end is no answer.
        let cut = record(FCGI_STDOUT, b"Content-type: text/plain\r\n\r\n12");
        assert_eq!(fastcgi_stdout(&cut), None);
    }
}
