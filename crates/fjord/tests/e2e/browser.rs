//! A minimal HTTP/1.0 client with a cookie jar, enough to log in to an application and use
//! it as a person would (follow a login link, post a form or JSON).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Why the response ended before the server closed it in order (a reset, a timeout),
    /// or why it is not whole (a body shorter than its `Content-Length`).
    pub error: Option<String>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Browser {
    pub port: u16,
    pub host: String,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(port: u16, host: &str) -> Browser {
        Browser {
            port,
            host: host.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.request("POST", path, headers, body)
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            crate::harness::host_header(&self.host, self.port),
            body.len()
        );
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        let started = std::time::Instant::now();
        let mut error = stream.read_to_end(&mut raw).err().map(|e| {
            format!(
                "{e} ({:?}) after {} bytes and {} ms",
                e.kind(),
                raw.len(),
                started.elapsed().as_millis()
            )
        });
        let body_len = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |at| raw.len() - at - 4);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie")
                && let Some((name, value)) = v.split(';').next().and_then(|c| c.split_once('='))
            {
                if value == "deleted" || value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let response = Response {
            status,
            headers,
            body: body.to_string(),
            error: None,
        };
        if error.is_none()
            && let Some(len) = response.header("Content-Length")
            && len.parse::<usize>().ok() != Some(body_len)
        {
            error = Some(format!(
                "a body of {body_len} bytes, not its Content-Length {len}"
            ));
        }
        Response { error, ..response }
    }
}

/// The path and query of a URL on the site (`http://host/x?y` → `/x?y`).
pub fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/')
        .map_or("/".to_string(), |i| rest[i..].to_string())
}
