//! `fjord agent`: the dispatcher's hands on a remote machine. Started by the dispatcher over
//! OpenSSH, it reads calls on its standard input and answers on its standard output (see
//! `wire`), each call on a thread of its own, so that the steps of many tasks on one server
//! are made side by side and their config changes group-committed as on the dispatcher's own
//! machine. It keeps nothing: every undo is journaled by the dispatcher, in its state, before
//! the agent makes the step.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::calls::Streams;
use super::wire::{self, Down, Frame, PROTOCOL, Up, WireError, WireRecord, WireResult};
use crate::commit::Committers;
use crate::journal::{Journal, JournalRecord, Undo};
use crate::{HostError, Result};

/// How long a step waits for the dispatcher to journal its undo (or to give its verdict)
/// before it gives up unmade: a link cut in the middle must not leave a step waiting for
/// ever, holding a committer's lock that the next dispatcher's rollback needs.
const ANSWER_BOUND: Duration = Duration::from_secs(60);

type Answers = Arc<Mutex<HashMap<u64, mpsc::Sender<WireResult<()>>>>>;
/// Where the bytes of each call's incoming stream go.
type Inputs = Arc<Mutex<HashMap<u64, mpsc::SyncSender<Vec<u8>>>>>;
type Output = Arc<Mutex<Box<dyn Write + Send>>>;

/// Serves calls from `input` until it ends (the dispatcher went away or the link was cut),
/// then returns once the calls running are done or given up. `dir` is fjord's dir on this
/// machine, made as fjord's data dir is: others may pass through it (nginx to a pool's
/// socket) but not list it; the tasks' scratch dirs (database dumps) are root's alone.
pub fn serve(
    dir: &std::path::Path,
    input: impl std::io::Read,
    output: impl Write + Send + 'static,
) -> Result<()> {
    crate::ensure_unlisted_dir(dir)?;
    crate::ensure_unlisted_dir(&dir.join("config"))?;
    crate::ensure_private_dir(&dir.join("journal"))?;
    crate::ensure_private_dir(&dir.join("bin"))?;
    let out: Output = Arc::new(Mutex::new(Box::new(output)));
    send(
        &out,
        &Up::Hello {
            protocol: PROTOCOL,
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            peer: std::env::var("SSH_CONNECTION")
                .ok()
                .and_then(|c| c.split_whitespace().next().map(str::to_string)),
        },
    )?;
    let answers: Answers = Arc::default();
    let inputs: Inputs = Arc::default();
    let committers = Arc::new(Committers::default());
    let mut input = std::io::BufReader::new(input);
    let mut running = Vec::new();
    loop {
        let frame: Option<Frame<Down>> = wire::receive_frame(&mut input)
            .map_err(|e| HostError::Refused(format!("reading the dispatcher's call: {e}")))?;
        let message = match frame {
            None => break,
            Some(Frame::Data { id, bytes }) => {
                let stream = inputs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id)
                    .cloned();
                if let Some(stream) = stream {
                    let _ = stream.send(bytes);
                }
                continue;
            }
            Some(Frame::Message(message)) => Some(message),
        };
        match message {
            None => break,
            Some(Down::Answer { id, result }) => {
                if let Some(waiting) = answers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id)
                {
                    let _ = waiting.send(result);
                }
            }
            Some(Down::Call { id, call, verdicts }) => {
                let journal = WireJournal {
                    id,
                    verdicts,
                    out: out.clone(),
                    answers: answers.clone(),
                    inputs: inputs.clone(),
                };
                let committers = committers.clone();
                running.push(std::thread::spawn(move || {
                    let result = call
                        .make(&journal, &journal, &committers)
                        .map_err(|e| WireError::from(&e));
                    journal
                        .inputs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    let _ = send(&journal.out, &Up::Done { id, result });
                }));
                running.retain(|t| !t.is_finished());
            }
        }
    }
    // The dispatcher is gone: what runs gives up at its next journal entry, or at the end
    // of the stream it reads.
    answers.lock().unwrap_or_else(|p| p.into_inner()).clear();
    inputs.lock().unwrap_or_else(|p| p.into_inner()).clear();
    for t in running {
        let _ = t.join();
    }
    Ok(())
}

fn send(out: &Output, message: &Up) -> Result<()> {
    let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
    wire::send(&mut *out, message)
        .map_err(|e| HostError::Unreachable(format!("answering the dispatcher: {e}")))
}

/// A call's journal: its entries and log lines go to the dispatcher, which writes them to the
/// task's journal in its state and answers before the step is made.
struct WireJournal {
    id: u64,
    /// Whether a step made waits for the task's verdict.
    verdicts: bool,
    out: Output,
    answers: Answers,
    inputs: Inputs,
}

impl WireJournal {
    /// Sends `message` and waits for the dispatcher's answer to it.
    fn ask(&self, message: &Up) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.id, tx);
        send(&self.out, message)?;
        match rx.recv_timeout(ANSWER_BOUND) {
            Ok(result) => result.map_err(HostError::from),
            Err(_) => {
                self.answers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&self.id);
                Err(HostError::Unreachable(
                    "the dispatcher did not answer: the step is not made".into(),
                ))
            }
        }
    }
}

impl Streams for WireJournal {
    fn input(&self) -> Result<Box<dyn Read + Send + '_>> {
        let (tx, rx) = mpsc::sync_channel(16);
        self.inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.id, tx);
        send(&self.out, &Up::SendData { id: self.id })?;
        Ok(Box::new(DataIn {
            rx,
            chunk: Vec::new(),
            at: 0,
            ended: false,
        }))
    }

    fn output(&self) -> Box<dyn Write + Send + '_> {
        Box::new(std::io::BufWriter::with_capacity(
            wire::DATA_CHUNK,
            DataOut {
                id: self.id,
                out: &self.out,
            },
        ))
    }
}

/// A call's incoming stream, as the dispatcher sends it.
struct DataIn {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Read for DataIn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv_timeout(ANSWER_BOUND) {
                Ok(chunk) if chunk.is_empty() => self.ended = true,
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Err(_) => {
                    return Err(std::io::Error::other(
                        "the dispatcher's stream stopped before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A call's outgoing stream: data frames to the dispatcher.
struct DataOut<'a> {
    id: u64,
    out: &'a Output,
}

impl Write for DataOut<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(wire::DATA_CHUNK);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        wire::send_data(&mut *out, self.id, &buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Journal for WireJournal {
    fn record(&self, seq: i64, step: &str, undo: &Undo, saved: Option<&[u8]>) -> Result<()> {
        self.record_all(&[JournalRecord {
            seq,
            step: step.to_string(),
            undo,
            saved,
        }])
    }

    fn record_all(&self, entries: &[JournalRecord<'_>]) -> Result<()> {
        let entries = entries
            .iter()
            .map(|e| WireRecord {
                step: e.step.clone(),
                undo: e.undo.clone(),
                saved: e.saved.map(<[u8]>::to_vec),
            })
            .collect();
        self.ask(&Up::Record {
            id: self.id,
            entries,
        })
    }

    fn log(&self, line: &str) {
        let _ = send(
            &self.out,
            &Up::Log {
                id: self.id,
                line: line.to_string(),
            },
        );
    }

    fn step_made(&self, what: &str) -> Result<()> {
        let made = Up::StepMade {
            id: self.id,
            what: what.to_string(),
            waits: self.verdicts,
        };
        if self.verdicts {
            self.ask(&made)
        } else {
            send(&self.out, &made)
        }
    }
}
