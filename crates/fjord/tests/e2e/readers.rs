//! Readers that check the status and the whole body of every response while the tests move,
//! restore, verify and reload what serves them (`reloads`, `served_restore`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::harness::host_header;

/// One thing a reader asks for, again and again.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub path: String,
    pub whole: Whole,
}

/// What makes a body whole.
#[derive(Clone, Copy)]
pub enum Whole {
    /// Exactly so many bytes.
    Len(usize),
    /// A page this function finds whole.
    Page(fn(&str) -> bool),
}

/// How readers use connections.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// One keep-alive connection per reader, used again while the server keeps it open.
    KeepAlive,
    /// A new connection for every request (`Connection: close`).
    OnePerRequest,
}

/// Readers on one nginx port, each asking for its target again and again until stopped, and
/// checking that every response is a 200 with the whole body.
///
/// A response cut anywhere (a short body, a chunked body without its last chunk, a read
/// error or a reset, any status but 200) is a failure. A reused keep-alive connection closed
/// before any byte of the answer is not: the server may close an idle keep-alive connection
/// at any moment (nginx does on every reload), and a client then retries a GET on a new
/// connection (RFC 9112, 9.3.1); those are counted apart. A new connection closed before any
/// answer is a failure.
pub struct BodyCheckingReaders {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tally: Arc<Mutex<Tally>>,
}

#[derive(Default, Debug, Clone)]
pub struct Tally {
    /// Whole responses, per target (`host path`).
    pub whole: BTreeMap<String, u64>,
    /// Idle keep-alive connections closed under a reader (retried).
    pub idle_closed: u64,
    /// Every cut or failed response, described, with the time of day it ended.
    pub failures: Vec<String>,
}

impl Tally {
    /// Responses read, whole or not.
    pub fn responses(&self) -> u64 {
        self.whole.values().sum::<u64>() + self.failures.len() as u64
    }
}

impl BodyCheckingReaders {
    pub fn start(
        port: u16,
        targets: &[Target],
        readers_per_target: usize,
        connections: Connections,
    ) -> BodyCheckingReaders {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut threads = Vec::new();
        for target in targets {
            for _ in 0..readers_per_target {
                let (stop, tally, target) = (stop.clone(), tally.clone(), target.clone());
                threads.push(std::thread::spawn(move || {
                    read_until(port, &target, connections, &stop, &tally)
                }));
            }
        }
        BodyCheckingReaders {
            stop,
            threads,
            tally,
        }
    }

    /// What the readers found so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// Stops the readers (each finishes the response it reads) and returns what they found.
    pub fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        self.tally.lock().unwrap().clone()
    }
}

/// The time of day (UTC), to set a failure beside a task's log.
pub fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// How one request on a connection went.
enum Outcome {
    Whole {
        keep_alive: bool,
    },
    /// The connection was closed before any byte of the answer.
    ClosedBeforeAnswer,
    Failed(String),
}

fn read_until(
    port: u16,
    target: &Target,
    connections: Connections,
    stop: &AtomicBool,
    tally: &Mutex<Tally>,
) {
    let key = format!("{} {}", target.host, target.path);
    let fail = |why: String| {
        tally
            .lock()
            .unwrap()
            .failures
            .push(format!("{} {key}: {why}", now()))
    };
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::SeqCst) {
        let reused = conn.is_some();
        let mut c = match conn.take() {
            Some(c) => c,
            None => match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    BufReader::new(s)
                }
                Err(e) => {
                    fail(format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        match request(&mut c, port, target, connections) {
            Outcome::Whole { keep_alive } => {
                *tally.lock().unwrap().whole.entry(key.clone()).or_default() += 1;
                if keep_alive && connections == Connections::KeepAlive {
                    conn = Some(c);
                }
            }
            Outcome::ClosedBeforeAnswer if reused => tally.lock().unwrap().idle_closed += 1,
            Outcome::ClosedBeforeAnswer => {
                fail("a new connection closed before any answer".to_string())
            }
            Outcome::Failed(why) => fail(why),
        }
    }
}

fn request(
    c: &mut BufReader<TcpStream>,
    port: u16,
    target: &Target,
    connections: Connections,
) -> Outcome {
    let close = match connections {
        Connections::KeepAlive => "",
        Connections::OnePerRequest => "Connection: close\r\n",
    };
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: fjord-body-checker\r\n{close}\r\n",
        target.path,
        host_header(&target.host, port)
    );
    if c.get_mut().write_all(req.as_bytes()).is_err() {
        return Outcome::ClosedBeforeAnswer;
    }
    let mut status = String::new();
    match c.read_line(&mut status) {
        Ok(0) | Err(_) => return Outcome::ClosedBeforeAnswer,
        Ok(_) => {}
    }
    let code: u16 = status
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        match c.read_line(&mut line) {
            Ok(0) => return Outcome::Failed(format!("cut in the headers after {status:?}")),
            Err(e) => {
                return Outcome::Failed(format!("cut in the headers after {status:?}: {e}"));
            }
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let keep_alive = headers
        .get("connection")
        .is_none_or(|v| !v.eq_ignore_ascii_case("close"));
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        read_chunked(c)
    } else if let Some(len) = headers.get("content-length").and_then(|l| l.parse().ok()) {
        let mut body = vec![0; len];
        let mut got = 0;
        let mut error = None;
        while got < len {
            match c.read(&mut body[got..]) {
                Ok(0) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
                Ok(n) => got += n,
            }
        }
        match error {
            _ if got == len => Ok(body),
            Some(e) => Err(format!("cut after {got} of {len} bytes: {e}")),
            None => Err(format!("cut after {got} of {len} bytes")),
        }
    } else {
        let mut body = Vec::new();
        match c.read_to_end(&mut body) {
            Ok(_) => Ok(body),
            Err(e) => Err(format!("cut after {} bytes: {e}", body.len())),
        }
    };
    match body {
        Err(why) => Outcome::Failed(format!("status {code}: body {why}")),
        Ok(body) if code != 200 => Outcome::Failed(format!(
            "status {code} ({} bytes): {}",
            body.len(),
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
        Ok(body) => match target.whole {
            Whole::Len(len) if body.len() != len => {
                Outcome::Failed(format!("a body of {} bytes, not {len}", body.len()))
            }
            Whole::Page(whole) if !whole(&String::from_utf8_lossy(&body)) => {
                Outcome::Failed(format!(
                    "not the whole page ({} bytes): {}",
                    body.len(),
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ))
            }
            _ => Outcome::Whole { keep_alive },
        },
    }
}

/// A chunked body up to its last chunk; `Err` says where it was cut.
fn read_chunked(c: &mut BufReader<TcpStream>) -> Result<Vec<u8>, String> {
    let cut = |body: &[u8], e: Option<std::io::Error>| {
        let why = e.map(|e| format!(": {e}")).unwrap_or_default();
        format!("cut after {} bytes (chunked){why}", body.len())
    };
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        match c.read_line(&mut size) {
            Ok(0) => return Err(cut(&body, None)),
            Err(e) => return Err(cut(&body, Some(e))),
            Ok(_) => {}
        }
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| format!("{} (a chunk size of {size:?})", cut(&body, None)))?;
        if size == 0 {
            // The trailer section ends with an empty line.
            loop {
                let mut line = String::new();
                match c.read_line(&mut line) {
                    Ok(0) => return Err(cut(&body, None)),
                    Err(e) => return Err(cut(&body, Some(e))),
                    Ok(_) if line.trim_end().is_empty() => return Ok(body),
                    Ok(_) => {}
                }
            }
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        if let Err(e) = c.read_exact(&mut body[start..]) {
            body.truncate(start);
            return Err(cut(&body, Some(e)));
        }
        body.truncate(start + size);
    }
}
