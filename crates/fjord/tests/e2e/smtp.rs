//! A tiny SMTP listener on 127.0.0.1 for tests: it accepts every message and keeps it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    /// A sink that fjord sends its mail to, and an administrator `ops` whose address is
    /// `address`: what fjord tells the administrators arrives here.
    pub fn for_administrator(env: &crate::harness::Env, address: &str) -> SmtpSink {
        let sink = SmtpSink::start();
        env.ok(&["mail", "smtp", &sink.relay(), "--from", "fjord@example.com"]);
        env.ok(&[
            "user",
            "add",
            "ops",
            "--role",
            "administrator",
            "--email",
            address,
        ]);
        sink
    }

    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = messages.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    let mut lines = BufReader::new(stream);
                    let _ = out.write_all(b"220 sink ESMTP\r\n");
                    let mut line = String::new();
                    while lines.read_line(&mut line).unwrap_or(0) > 0 {
                        let command = line.trim_end().to_ascii_uppercase();
                        let reply: &[u8] = if command.starts_with("DATA") {
                            let _ = out.write_all(b"354 go on\r\n");
                            let mut message = String::new();
                            let mut data = String::new();
                            while lines.read_line(&mut data).unwrap_or(0) > 0 {
                                if data == ".\r\n" {
                                    break;
                                }
                                message.push_str(&data);
                                data.clear();
                            }
                            kept.lock().unwrap().push(decode_quoted_printable(&message));
                            b"250 kept\r\n"
                        } else if command.starts_with("QUIT") {
                            let _ = out.write_all(b"221 bye\r\n");
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        let _ = out.write_all(reply);
                        line.clear();
                    }
                });
            }
        });
        SmtpSink { port, messages }
    }

    pub fn relay(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for a message whose text contains `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self
                .messages
                .lock()
                .unwrap()
                .iter()
                .find(|m| m.contains(needle))
            {
                return m.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no mail with {needle:?}: {:?}",
                self.messages.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }
}

/// Undoes quoted-printable (soft line breaks and `=XX`), as a mail client shows the text.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
