//! One dispatcher's link to one remote machine: an OpenSSH session running `fjord agent`
//! there, shared by every task on that machine (calls are numbered, and answered in any
//! order). The agent's binary is the dispatcher's own, copied to the machine, checked by its
//! SHA-256 as it arrives and only then named by it; a link finds it there, or copies it
//! first. (What guards it afterwards is the remote dir's owner and modes.)

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::process::{ChildStdin, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::calls::Call;
use super::wire::{self, Down, Frame, PROTOCOL, Up};
use super::{Endpoint, SshKeys, ssh};
use crate::journal::{Journal, JournalRecord};
use crate::{HostError, Result};

/// Calls in flight on one link at most: each is a thread on the agent, and a dispatcher with
/// thousands of tasks on one server queues them here rather than there.
const MOST_IN_FLIGHT: usize = 32;

/// How long a new link waits for the agent's hello (ssh's own connect timeout is 10 s).
const HELLO_BOUND: Duration = Duration::from_secs(30);

/// The exit status of a remote command its shell cannot find: the agent is not there yet.
const NOT_FOUND: i32 = 127;

pub struct Link {
    endpoint: Endpoint,
    writer: Mutex<ChildStdin>,
    calls: Arc<Mutex<HashMap<u64, mpsc::SyncSender<Incoming>>>>,
    next_id: AtomicU64,
    /// Why the session ended, once it has.
    ended: Arc<Mutex<Option<String>>>,
    /// The machine's own name, as its agent said.
    pub hostname: String,
    /// The dispatcher's machine's address as this machine sees it.
    pub peer: Option<String>,
    in_flight: Mutex<usize>,
    call_ended: std::sync::Condvar,
}

impl Link {
    /// Opens a link: starts the agent, copying it to the machine first if it is not there.
    pub fn open(endpoint: &Endpoint, keys: &SshKeys) -> Result<Link> {
        match Link::start(endpoint, keys)? {
            Started::Link(link) => Ok(*link),
            Started::NoAgent => {
                install_agent(endpoint, keys)?;
                match Link::start(endpoint, keys)? {
                    Started::Link(link) => Ok(*link),
                    Started::NoAgent => Err(HostError::Refused(format!(
                        "server {}: the agent copied to {} does not run there",
                        endpoint.name,
                        agent_path(endpoint)?
                    ))),
                }
            }
        }
    }

    /// Whether the session still runs.
    pub fn is_up(&self) -> bool {
        self.ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn start(endpoint: &Endpoint, keys: &SshKeys) -> Result<Started> {
        let remote = format!(
            "exec {} agent --dir {}",
            agent_path(endpoint)?,
            endpoint.shell_dir()?
        );
        let mut cmd = keys.command(endpoint, &remote)?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let calls: Arc<Mutex<HashMap<u64, mpsc::SyncSender<Incoming>>>> = Arc::default();
        let ended: Arc<Mutex<Option<String>>> = Arc::default();
        let endpoint_for_reader = endpoint.clone();
        let (calls_r, ended_r) = (calls.clone(), ended.clone());
        // The session is started on the thread that reads it: `child_command`'s processes
        // die with the thread that started them, and this one lives as long as the session.
        std::thread::Builder::new()
            .name(format!("link-{}", endpoint.name))
            .spawn(move || {
                let spawned = cmd
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn();
                let mut child = match spawned {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = ready_tx.send(Err(HostError::io(std::path::Path::new("ssh"), e)));
                        return;
                    }
                };
                let stdin = child.stdin.take().expect("piped");
                let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
                let mut stderr = child.stderr.take().expect("piped");
                // A session that says nothing (a login script that hangs) is ended after the
                // bound, so that its ssh and this thread do not stay behind the caller.
                let child = Arc::new(Mutex::new(child));
                let greeted = Arc::new(std::sync::atomic::AtomicBool::new(false));
                {
                    let (child, greeted) = (child.clone(), greeted.clone());
                    std::thread::spawn(move || {
                        let deadline = std::time::Instant::now() + HELLO_BOUND;
                        while std::time::Instant::now() < deadline {
                            if greeted.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        if !greeted.load(Ordering::SeqCst) {
                            let _ = child.lock().unwrap_or_else(|p| p.into_inner()).kill();
                        }
                    });
                }
                let stderr_text = std::thread::spawn(move || {
                    let mut text = String::new();
                    let _ = (&mut stderr).take(64 << 10).read_to_string(&mut text);
                    text
                });
                let hello: Option<Up> = wire::receive(&mut stdout).ok().flatten();
                greeted.store(true, Ordering::SeqCst);
                let end = || {
                    let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = child.kill();
                    child.wait()
                };
                match hello {
                    Some(Up::Hello {
                        protocol,
                        hostname,
                        peer,
                        ..
                    }) if protocol == PROTOCOL => {
                        let _ = ready_tx.send(Ok((stdin, hostname, peer)));
                    }
                    Some(Up::Hello { .. }) => {
                        // Another agent under our name: it is replaced.
                        drop(stdin);
                        let _ = end();
                        let _ = ready_tx.send(Err(HostError::Refused("no-agent".into())));
                        return;
                    }
                    _ => {
                        drop(stdin);
                        let status = child.lock().unwrap_or_else(|p| p.into_inner()).wait();
                        let said = stderr_text.join().unwrap_or_default();
                        let error = match status.ok().and_then(|s| s.code()) {
                            Some(NOT_FOUND) => HostError::Refused("no-agent".into()),
                            _ => ssh::unreachable(&endpoint_for_reader, &said),
                        };
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                }
                while let Ok(Some(frame)) = wire::receive_frame::<Up>(&mut stdout) {
                    let (id, incoming) = match frame {
                        Frame::Data { id, bytes } => (id, Incoming::Data(bytes)),
                        Frame::Message(message) => match &message {
                            Up::Done { id, .. }
                            | Up::Record { id, .. }
                            | Up::Log { id, .. }
                            | Up::StepMade { id, .. }
                            | Up::SendData { id } => (*id, Incoming::Up(message)),
                            Up::Hello { .. } => continue,
                        },
                    };
                    let call = calls_r
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&id)
                        .cloned();
                    // Outside the lock: a call slow to take its stream's bytes holds up the
                    // session's other calls, never the map they register in.
                    if let Some(call) = call {
                        let _ = call.send(incoming);
                    }
                }
                let _ = end();
                let said = stderr_text.join().unwrap_or_default();
                let why = ssh::unreachable(&endpoint_for_reader, &said).to_string();
                *ended_r.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                // Every call waiting on the session learns that it ended.
                calls_r.lock().unwrap_or_else(|p| p.into_inner()).clear();
            })
            .map_err(|e| HostError::Refused(format!("cannot start a thread: {e}")))?;
        match ready_rx.recv_timeout(HELLO_BOUND) {
            Ok(Ok((writer, hostname, peer))) => Ok(Started::Link(Box::new(Link {
                endpoint: endpoint.clone(),
                writer: Mutex::new(writer),
                calls,
                next_id: AtomicU64::new(1),
                ended,
                hostname,
                peer,
                in_flight: Mutex::new(0),
                call_ended: std::sync::Condvar::new(),
            }))),
            Ok(Err(HostError::Refused(m))) if m == "no-agent" => Ok(Started::NoAgent),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(HostError::Unreachable(format!(
                "server {} ({}) did not answer within {} s",
                endpoint.name,
                endpoint.target(),
                HELLO_BOUND.as_secs()
            ))),
        }
    }

    /// Makes `call` on the machine: journals its undos through `journal` before the agent
    /// makes each step, logs its lines there, and returns its value.
    pub fn call(&self, call: Call, journal: &dyn Journal) -> Result<serde_json::Value> {
        self.call_streaming(call, journal, None, None)
    }

    /// [`Link::call`] with a stream: `input` sent when the agent asks for it (a backup
    /// archive to extract there), and what the agent streams back written to `output` (a
    /// backup archive it writes).
    pub fn call_streaming(
        &self,
        call: Call,
        journal: &dyn Journal,
        input: Option<&mut dyn Read>,
        output: Option<&mut dyn std::io::Write>,
    ) -> Result<serde_json::Value> {
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            while *in_flight >= MOST_IN_FLIGHT {
                in_flight = self
                    .call_ended
                    .wait(in_flight)
                    .unwrap_or_else(|p| p.into_inner());
            }
            *in_flight += 1;
        }
        let result = self.call_counted(call, journal, input, output);
        *self.in_flight.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.call_ended.notify_one();
        result
    }

    fn call_counted(
        &self,
        call: Call,
        journal: &dyn Journal,
        input: Option<&mut dyn Read>,
        output: Option<&mut dyn std::io::Write>,
    ) -> Result<serde_json::Value> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        // Bounded: a stream arriving faster than it is written waits in the kernel's
        // buffers and ssh's, not in memory here.
        let (tx, rx) = mpsc::sync_channel(16);
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let result = self.run(id, call, &rx, journal, input, output);
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        result
    }

    fn run(
        &self,
        id: u64,
        call: Call,
        rx: &mpsc::Receiver<Incoming>,
        journal: &dyn Journal,
        mut input: Option<&mut dyn Read>,
        mut output: Option<&mut dyn std::io::Write>,
    ) -> Result<serde_json::Value> {
        self.send(&Down::Call {
            id,
            call,
            verdicts: journal.wants_verdicts(),
        })?;
        // A failure here (a stream's file that cannot be written or read) does not end the
        // call at once: the agent may still be making its step, and a rollback sent now
        // would race it. Its undos are refused and its stream cut, and the call ends with
        // this failure once the agent says it is done.
        let mut failed: Option<HostError> = None;
        loop {
            let Ok(incoming) = rx.recv() else {
                return Err(failed.unwrap_or_else(|| self.gone()));
            };
            let message = match incoming {
                Incoming::Up(message) => message,
                Incoming::Data(_) if failed.is_some() => continue,
                Incoming::Data(bytes) => {
                    let written = match output.as_mut() {
                        None => Err(HostError::Refused(
                            "the agent streamed bytes no one asked for".into(),
                        )),
                        Some(out) => out.write_all(&bytes).map_err(|e| {
                            HostError::io(std::path::Path::new("the stream from the agent"), e)
                        }),
                    };
                    if let Err(e) = written {
                        failed = Some(e);
                    }
                    continue;
                }
            };
            match message {
                Up::Done { result, .. } => {
                    return match failed {
                        Some(e) => Err(e),
                        None => result.map_err(HostError::from),
                    };
                }
                Up::Log { line, .. } => journal.log(&line),
                Up::Record { entries, .. } => {
                    let result = match &failed {
                        Some(e) => Err(HostError::Journal(format!(
                            "the dispatcher gave up this call: {e}"
                        ))),
                        None => {
                            let records: Vec<JournalRecord<'_>> = entries
                                .iter()
                                .map(|e| JournalRecord {
                                    seq: 0,
                                    step: e.step.clone(),
                                    undo: &e.undo,
                                    saved: e.saved.as_deref(),
                                })
                                .collect();
                            journal.record_all(&records)
                        }
                    };
                    self.answer(id, &result)?;
                }
                Up::StepMade { what, waits, .. } => {
                    let verdict = journal.step_made(&what);
                    if waits {
                        self.answer(id, &verdict)?;
                    } else if let Err(e) = verdict {
                        // No fault was to fire: the journal's own trouble, logged; the step is
                        // made and journaled all the same.
                        journal.log(&format!("after a step made on the server: {e}"));
                    }
                }
                Up::SendData { .. } => {
                    let streamed = match input.take() {
                        Some(input) if failed.is_none() => self.stream(id, input),
                        _ => Err(HostError::Refused(
                            "the agent asked for a stream no one gave".into(),
                        )),
                    };
                    if let Err(e) = streamed {
                        // The stream ends here, short: the agent's reading of it fails.
                        self.end_stream(id)?;
                        failed.get_or_insert(e);
                    }
                }
                Up::Hello { .. } => {}
            }
        }
    }

    /// Ends call `id`'s stream (an empty data frame).
    fn end_stream(&self, id: u64) -> Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        wire::send_data(&mut *writer, id, &[]).map_err(|_| self.gone())
    }

    /// Sends `input` as call `id`'s stream, then the empty frame that ends it.
    fn stream(&self, id: u64, input: &mut dyn Read) -> Result<()> {
        let mut chunk = vec![0u8; wire::DATA_CHUNK];
        loop {
            let n = input
                .read(&mut chunk)
                .map_err(|e| HostError::io(std::path::Path::new("the stream to the agent"), e))?;
            let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            wire::send_data(&mut *writer, id, &chunk[..n]).map_err(|_| self.gone())?;
            if n == 0 {
                return Ok(());
            }
        }
    }

    fn answer(&self, id: u64, result: &Result<()>) -> Result<()> {
        self.send(&Down::Answer {
            id,
            result: result.as_ref().map(|_| ()).map_err(Into::into),
        })
    }

    fn send(&self, message: &Down) -> Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        wire::send(&mut *writer, message).map_err(|_| self.gone())
    }

    /// Why the session is gone, as an error.
    fn gone(&self) -> HostError {
        // The reader records why once ssh has ended; a write that failed may come first.
        for _ in 0..50 {
            if let Some(why) = self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                return HostError::Unreachable(why);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        HostError::Unreachable(format!(
            "server {} ({}): the SSH session ended",
            self.endpoint.name,
            self.endpoint.target()
        ))
    }
}

/// What the session's reader hands a call.
enum Incoming {
    Up(Up),
    Data(Vec<u8>),
}

enum Started {
    Link(Box<Link>),
    NoAgent,
}

/// The SHA-256 of the running fjord, in hex: the agent a remote machine runs is this very
/// binary.
fn own_sha256() -> Result<&'static str> {
    static SHA: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    SHA.get_or_init(|| {
        use sha2::Digest;
        let mut file = std::fs::File::open("/proc/self/exe").map_err(|e| e.to_string())?;
        let mut hasher = sha2::Sha256::new();
        std::io::copy(&mut file, &mut hasher).map_err(|e| e.to_string())?;
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    })
    .as_ref()
    .map(String::as_str)
    .map_err(|e| HostError::Refused(format!("cannot read fjord's own binary: {e}")))
}

/// Where the agent is on the machine: named by its SHA-256, in fjord's dir there.
fn agent_path(endpoint: &Endpoint) -> Result<String> {
    Ok(format!(
        "{}/bin/fjord-{}",
        endpoint.shell_dir()?,
        &own_sha256()?[..32]
    ))
}

/// Copies the running fjord to the machine, checks what arrived by its SHA-256, and only
/// then names it as the agent: a copy cut short is never run.
fn install_agent(endpoint: &Endpoint, keys: &SshKeys) -> Result<()> {
    let sha = own_sha256()?;
    let dir = endpoint.shell_dir()?;
    let path = agent_path(endpoint)?;
    let script = format!(
        "umask 077 && mkdir -p {dir}/bin && t={dir}/bin/.upload.$$ && cat > $t && \
         if [ \"$(sha256sum < $t)\" = \"{sha}  -\" ]; then chmod 700 $t && mv -f $t {path}; \
         else rm -f $t; echo 'the copy arrived damaged' >&2; exit 3; fi"
    );
    let exe = std::fs::File::open("/proc/self/exe")
        .map_err(|e| HostError::io(std::path::Path::new("/proc/self/exe"), e))?;
    let out = keys
        .command(endpoint, &script)?
        .stdin(exe)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| HostError::io(std::path::Path::new("ssh"), e))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(255) | None => Err(ssh::unreachable(endpoint, &said)),
        _ => Err(HostError::Refused(format!(
            "server {}: cannot copy fjord's agent to {path}: {}",
            endpoint.name,
            said.trim()
        ))),
    }
}
