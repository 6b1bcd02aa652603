//! A site's own logs: where they are, reading their last lines (with any login token that
//! reached them taken out), and their rotation by the dispatcher.

use std::path::{Path, PathBuf};

use crate::{Error, Fjord, Result};

/// A site's log dir, named by its Unix user (`fj<installation>-<id>`): the same through a
/// rename or a move, gone with the site.
pub fn site_log_dir(data_dir: &Path, site_user: &str) -> PathBuf {
    data_dir.join("logs").join(site_user)
}

/// Which of a site's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// nginx's access log, in fjord's format.
    #[default]
    Access,
    /// nginx's error log.
    Error,
    /// What the site's PHP logged.
    Php,
}

impl LogKind {
    pub fn file(self) -> &'static str {
        match self {
            LogKind::Access => render::ACCESS_LOG,
            LogKind::Error => render::ERROR_LOG,
            LogKind::Php => render::PHP_ERROR_LOG,
        }
    }

    pub fn parse(value: &str) -> Result<LogKind> {
        match value {
            "access" => Ok(LogKind::Access),
            "error" => Ok(LogKind::Error),
            "php" => Ok(LogKind::Php),
            _ => Err(Error::Invalid(model::Invalid::new(
                "log",
                value,
                "is one of access, error, php",
            ))),
        }
    }
}

/// The most lines one read shows.
pub const MAX_LOG_LINES: usize = 10_000;
/// The most bytes one read takes from the end of a log.
pub const MAX_LOG_BYTES: u64 = 4 << 20;

/// How the dispatcher rotates sites' logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    /// Rotated files kept (`access.log.1` … `access.log.N`).
    pub keep: usize,
    /// A site's logs are rotated once one of them reaches this size.
    pub max_bytes: u64,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation {
            keep: 14,
            max_bytes: 10 << 20,
        }
    }
}

/// Where a follower of a log has read up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCursor {
    offset: u64,
    file: Option<(u64, u64)>,
}

/// A line as fjord shows it: what follows a login token replaced, as nginx's log format does
/// (a line nginx's error log wrote holds the request as it came). Invalid UTF-8 is shown
/// lossily.
pub fn redact_line(line: &str) -> String {
    let mut out = line.to_string();
    let lower = |s: &str| s.to_ascii_lowercase();
    for marker in [
        "fjord-login=",
        "fjord%2dlogin=",
        "pass-reset-token=",
        "user/reset/",
        "user%2freset%2f",
    ] {
        let mut from = 0;
        while let Some(at) = lower(&out[from..]).find(marker) {
            let start = from + at + marker.len();
            let end = out[start..]
                .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '#' | '\''))
                .map_or(out.len(), |e| start + e);
            out.replace_range(start..end, render::REDACTED);
            from = start + render::REDACTED.len();
        }
    }
    out
}

fn shown(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(redact_line)
        .collect()
}

impl Fjord {
    /// A site's log dir, where its vhost and pool write.
    pub fn site_log_dir(&self, site: &model::Site) -> PathBuf {
        self.script_env().site_log_dir(site)
    }

    fn log_dir_of(&self, name: &str) -> Result<PathBuf> {
        let site = self.site(name)?;
        Ok(self.site_log_dir(&site))
    }

    /// The last `lines` lines of one of a site's logs.
    pub fn site_log(&self, name: &str, kind: LogKind, lines: usize) -> Result<Vec<String>> {
        let dir = self.log_dir_of(name)?;
        let lines = lines.clamp(1, MAX_LOG_LINES);
        let (bytes, _) = host::tail_log(&dir, kind.file(), lines, MAX_LOG_BYTES)?;
        Ok(shown(&bytes))
    }

    /// The lines added to a site's log since `cursor` (from its start after a rotation).
    pub fn site_log_since(
        &self,
        name: &str,
        kind: LogKind,
        cursor: LogCursor,
    ) -> Result<(Vec<String>, LogCursor)> {
        let dir = self.log_dir_of(name)?;
        if cursor == LogCursor::default() {
            // Where a follower starts: the end of the log as it is.
            let (_, _, file) = host::read_log_on(&dir, kind.file(), 0, None, 0)?;
            let (_, offset) = host::tail_log(&dir, kind.file(), 1, 0)?;
            return Ok((Vec::new(), LogCursor { offset, file }));
        }
        let (bytes, offset, file) =
            host::read_log_on(&dir, kind.file(), cursor.offset, cursor.file, MAX_LOG_BYTES)?;
        Ok((shown(&bytes), LogCursor { offset, file }))
    }

    /// Rotates every site's logs that reached the size, then has nginx reopen its files (PHP
    /// opens its log by name on every line). Returns how many sites' logs were rotated.
    pub fn rotate_site_logs(&self, rotation: &LogRotation) -> Result<usize> {
        // One rotation at a time: two dispatchers would shift each other's files.
        let Some(_held) = host::FileLock::try_acquire(&self.run_dir().join("log-rotation.lock"))?
        else {
            return Ok(0);
        };
        let env = self.script_env();
        let mut rotated = 0;
        // Each platform read once: a server holds thousands of sites on a few platforms.
        let mut platforms = std::collections::HashMap::new();
        for site in self.sites(None)? {
            let platform = match platforms.entry(site.platform_id) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(new) => {
                    new.insert(self.store().platform(site.platform_id).ok())
                }
            };
            let Some(platform) = platform else {
                continue;
            };
            let logs = env.site_logs(platform, &site);
            match host::rotate_logs(&logs, rotation.keep, rotation.max_bytes) {
                Ok(true) => rotated += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    site = %site.name,
                    error = %e,
                    "rotating the logs of {}: {e}",
                    site.name
                ),
            }
        }
        if rotated > 0 {
            // Site logs are kept on the machine fjord runs on only, so far.
            for server in self.servers()?.iter().filter(|s| !s.is_remote()) {
                env.nginx_ctl(server).reopen_logs()?;
            }
        }
        Ok(rotated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_line_holds_no_login_token() {
        let line = "127.0.0.1 - - [x] \"GET /?fjord-login=abc123&x=1 HTTP/1.1\" 302 0 \
                    \"http://a/user/reset/1/1700000000/hAsH/login\" \"curl\"";
        let shown = redact_line(line);
        assert!(!shown.contains("abc123"), "{shown}");
        assert!(!shown.contains("hAsH"), "{shown}");
        assert!(shown.contains("&x=1"), "{shown}");
        let upper = redact_line("GET /?FJORD-LOGIN=zz9&pass-reset-token=qq7 HTTP/1.1");
        assert!(!upper.contains("zz9") && !upper.contains("qq7"), "{upper}");
        assert_eq!(redact_line("GET /about HTTP/1.1"), "GET /about HTTP/1.1");
    }
}
