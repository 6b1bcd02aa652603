//! What a dispatcher and a remote machine's agent say to each other over the agent's standard
//! input and output (one OpenSSH session): frames of a 4-byte big-endian length and a JSON
//! message. Calls are numbered; the agent answers each with `Done`, and on the way asks the
//! dispatcher to journal an undo before it makes its step (`Record`, answered before the step
//! is made), logs (`Log`), and tells each step made (`StepMade`, answered with the task's
//! verdict: an injected fault fails it there).

use std::io::{Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::calls::Call;
use crate::journal::Undo;
use crate::{HostError, Result};

/// A frame larger than this is refused: a config file, a dump's path, a PHP run's output fit
/// many times over; bulk data (archives, trees) goes through streams of its own.
const MAX_FRAME: u32 = 256 << 20;

/// The protocol's version: an agent of another version is replaced before it is used.
pub const PROTOCOL: u32 = 4;

/// The first byte of a data frame's body (a message's is `{`): then the call's id (8 bytes,
/// big-endian) and the bytes. An empty data frame ends a call's stream.
const DATA: u8 = 0;

/// The most a data frame carries.
pub const DATA_CHUNK: usize = 1 << 20;

/// A frame: a message, or bytes of a call's stream (a backup archive on its way).
pub enum Frame<T> {
    Message(T),
    Data { id: u64, bytes: Vec<u8> },
}

/// From the dispatcher to the agent (no Debug: a call may carry a database password).
#[derive(Serialize, Deserialize)]
pub enum Down {
    Call {
        id: u64,
        call: Call,
        /// Whether each step made waits for the task's verdict (`Up::StepMade`'s answer).
        verdicts: bool,
    },
    /// The answer to the agent's `Record` or `StepMade` of call `id`.
    Answer { id: u64, result: WireResult<()> },
}

/// From the agent to the dispatcher.
#[derive(Serialize, Deserialize)]
pub enum Up {
    /// The agent's first message: who it is.
    Hello {
        protocol: u32,
        version: String,
        hostname: String,
        /// The dispatcher's machine's address as this machine sees it (from sshd's
        /// `SSH_CONNECTION`): where a database user of a site on that machine connects from.
        #[serde(default)]
        peer: Option<String>,
    },
    /// Call `id` ended; its value as JSON.
    Done {
        id: u64,
        result: WireResult<serde_json::Value>,
    },
    /// Journal these entries (step, undo, saved content) before the step is made.
    Record {
        id: u64,
        entries: Vec<WireRecord>,
    },
    Log {
        id: u64,
        line: String,
    },
    StepMade {
        id: u64,
        what: String,
        /// Whether the agent waits for an answer (else the step is only told).
        waits: bool,
    },
    /// Stream call `id`'s input now (data frames, then an empty one).
    SendData {
        id: u64,
    },
}

#[derive(Serialize, Deserialize)]
pub struct WireRecord {
    pub step: String,
    pub undo: Undo,
    pub saved: Option<Vec<u8>>,
}

pub type WireResult<T> = std::result::Result<T, WireError>;

/// A [`HostError`] as it crosses the wire: its kind kept, so that the dispatcher treats a
/// remote failure as it treats a local one (an injected fault, a lost undo, a full disk).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireError {
    Io {
        path: PathBuf,
        message: String,
    },
    Command {
        program: String,
        status: String,
        output: String,
    },
    NginxRejected(String),
    Nginx(String),
    PhpFpmRejected(String),
    PhpFpm(String),
    Mail(String),
    Commit(String),
    Injected(String),
    Journal(String),
    Refused(String),
    NoSpace(String),
    UndoDataLost(String),
    Unreachable(String),
}

impl From<&HostError> for WireError {
    fn from(e: &HostError) -> WireError {
        match e {
            HostError::Io { path, source } => WireError::Io {
                path: path.clone(),
                message: source.to_string(),
            },
            HostError::Command {
                program,
                status,
                output,
            } => WireError::Command {
                program: program.clone(),
                status: status.clone(),
                output: output.clone(),
            },
            HostError::NginxRejected(m) => WireError::NginxRejected(m.clone()),
            HostError::Nginx(m) => WireError::Nginx(m.clone()),
            HostError::PhpFpmRejected(m) => WireError::PhpFpmRejected(m.clone()),
            HostError::PhpFpm(m) => WireError::PhpFpm(m.clone()),
            HostError::Mail(m) => WireError::Mail(m.clone()),
            HostError::Commit(m) => WireError::Commit(m.clone()),
            HostError::Injected(m) => WireError::Injected(m.clone()),
            HostError::Journal(m) => WireError::Journal(m.clone()),
            HostError::Refused(m) => WireError::Refused(m.clone()),
            HostError::NoSpace(m) => WireError::NoSpace(m.clone()),
            HostError::UndoDataLost(m) => WireError::UndoDataLost(m.clone()),
            HostError::Unreachable(m) => WireError::Unreachable(m.clone()),
        }
    }
}

impl From<WireError> for HostError {
    fn from(e: WireError) -> HostError {
        match e {
            WireError::Io { path, message } => HostError::Io {
                path,
                source: std::io::Error::other(message),
            },
            WireError::Command {
                program,
                status,
                output,
            } => HostError::Command {
                program,
                status,
                output,
            },
            WireError::NginxRejected(m) => HostError::NginxRejected(m),
            WireError::Nginx(m) => HostError::Nginx(m),
            WireError::PhpFpmRejected(m) => HostError::PhpFpmRejected(m),
            WireError::PhpFpm(m) => HostError::PhpFpm(m),
            WireError::Mail(m) => HostError::Mail(m),
            WireError::Commit(m) => HostError::Commit(m),
            WireError::Injected(m) => HostError::Injected(m),
            WireError::Journal(m) => HostError::Journal(m),
            WireError::Refused(m) => HostError::Refused(m),
            WireError::NoSpace(m) => HostError::NoSpace(m),
            WireError::UndoDataLost(m) => HostError::UndoDataLost(m),
            WireError::Unreachable(m) => HostError::Unreachable(m),
        }
    }
}

/// Writes one message as a frame, and flushes it.
pub fn send<T: Serialize>(out: &mut impl Write, message: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("a message over 256 MiB"))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(&body)?;
    out.flush()
}

/// Writes bytes of call `id`'s stream as one data frame (empty: the stream ends).
pub fn send_data(out: &mut impl Write, id: u64, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(1 + 8 + bytes.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("a data frame over 256 MiB"))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(&[DATA])?;
    out.write_all(&id.to_be_bytes())?;
    out.write_all(bytes)?;
    out.flush()
}

/// Reads one frame; None at a clean end of the stream (between frames).
pub fn receive_frame<T: for<'de> Deserialize<'de>>(
    input: &mut impl Read,
) -> std::io::Result<Option<Frame<T>>> {
    let Some(body) = receive_body(input)? else {
        return Ok(None);
    };
    if body.first() == Some(&DATA) {
        if body.len() < 9 {
            return Err(std::io::Error::other("a data frame without its call"));
        }
        let id = u64::from_be_bytes(body[1..9].try_into().expect("8 bytes"));
        return Ok(Some(Frame::Data {
            id,
            bytes: body[9..].to_vec(),
        }));
    }
    serde_json::from_slice(&body)
        .map(|m| Some(Frame::Message(m)))
        .map_err(|e| std::io::Error::other(format!("an unreadable message: {e}")))
}

/// Reads one frame's message; None at a clean end of the stream (between frames).
pub fn receive<T: for<'de> Deserialize<'de>>(input: &mut impl Read) -> std::io::Result<Option<T>> {
    match receive_frame(input)? {
        None => Ok(None),
        Some(Frame::Message(m)) => Ok(Some(m)),
        Some(Frame::Data { .. }) => Err(std::io::Error::other("data where a message was due")),
    }
}

fn receive_body(input: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "a frame of {len} bytes, over the 256 MiB bound"
        )));
    }
    let mut body = vec![0u8; len as usize];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// A call's value, read back from its JSON.
pub fn value_of<T: for<'de> Deserialize<'de>>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|e| HostError::Refused(format!("the agent answered in another form: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        send(
            &mut buf,
            &Up::Log {
                id: 7,
                line: "step 1".into(),
            },
        )
        .unwrap();
        let back: Up = receive(&mut buf.as_slice()).unwrap().unwrap();
        assert!(matches!(back, Up::Log { id: 7, .. }));
        assert!(receive::<Up>(&mut [].as_slice()).unwrap().is_none());
        let huge = (MAX_FRAME + 1).to_be_bytes();
        assert!(receive::<Up>(&mut huge.as_slice()).is_err());
    }

    #[test]
    fn errors_keep_their_kind_across_the_wire() {
        let e = HostError::UndoDataLost("the dump is gone".into());
        let back = HostError::from(WireError::from(&e));
        assert!(matches!(back, HostError::UndoDataLost(m) if m == "the dump is gone"));
    }
}
