//! `fjord doctor`: the machine checked the way a careful operator would, each finding with
//! what to fix. It reads and probes; it changes nothing.

use model::{HttpService, Server};
use serde::Serialize;

use crate::scripts::{ScriptEnv, db_ctl};
use crate::{Fjord, Result};

/// Over this share used (as `df` and the disk guard count it) a file system is a problem: the
/// dispatcher's disk guard stops claiming tasks there by default.
const MAX_USED_PERCENT: f64 = 90.0;

/// php-fpm's `process_control_timeout` fjord sets, below which a reload cuts responses.
const MIN_PROCESS_CONTROL_TIMEOUT_S: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Problem,
}

/// One check's outcome: what was looked at, what was found, and the fix for a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable name: `nginx-include`, `php-fpm-reload`, `database-admin`, `disk`, `claims`,
    /// `clock`, `panel-url`.
    pub check: &'static str,
    pub subject: String,
    pub verdict: Verdict,
    pub said: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, subject: impl Into<String>, said: impl Into<String>) -> Finding {
        Finding {
            check,
            subject: subject.into(),
            verdict: Verdict::Ok,
            said: said.into(),
            fix: None,
        }
    }

    fn problem(
        check: &'static str,
        subject: impl Into<String>,
        said: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            subject: subject.into(),
            verdict: Verdict::Problem,
            said: said.into(),
            fix: Some(fix.into()),
        }
    }
}

impl Fjord {
    /// Every check, for every server (or the one named).
    pub fn doctor(&self, server: Option<&str>) -> Result<Vec<Finding>> {
        let servers = match server {
            Some(name) => vec![self.server(name)?],
            None => self.servers()?,
        };
        let env = self.script_env();
        let mut findings = Vec::new();
        // A remote server's daemons are checked by its verify, on the machine itself.
        for server in servers.iter().filter(|s| !s.is_remote()) {
            findings.push(nginx_include(&env, server));
            for php in &server.php {
                findings.push(php_fpm_reload(&env, server, php));
            }
            for service in &server.db {
                if let Some(f) = database_admin(server, service) {
                    findings.push(f);
                }
            }
        }
        findings.push(disk("data dir", self.data_dir()));
        for platform in self.platforms()? {
            if servers.iter().any(|s| s.id == platform.server_id) {
                findings.push(disk(
                    &format!("platform {}", platform.name),
                    platform.path.as_path(),
                ));
            }
        }
        findings.push(claims(self.claim_pause_notice()?));
        findings.push(clock());
        findings.push(panel_url(&self.panel_url()?));
        Ok(findings)
    }
}

fn nginx_include(env: &ScriptEnv, server: &Server) -> Finding {
    let HttpService::Nginx(nginx) = &server.http;
    let subject = format!("nginx of server {}", server.name);
    let hook = crate::scripts::nginx_hook(server);
    match env.nginx_ctl(server).would_include(&hook) {
        Some(true) => Finding::ok(
            "nginx-include",
            subject,
            format!("{} includes fjord's hook {}", nginx.config, hook.display()),
        ),
        Some(false) => Finding::problem(
            "nginx-include",
            subject,
            format!(
                "{} does not include {}: no site of this server is served",
                nginx.config, nginx.include_dir
            ),
            format!(
                "add `include {}/*.conf;` to the http block of {}, then `fjord server verify {}`",
                nginx.include_dir, nginx.config, server.name
            ),
        ),
        None => Finding::problem(
            "nginx-include",
            subject,
            format!("`{} -T` cannot read {}", nginx.binary, nginx.config),
            format!("run `{} -t` and fix what it says", nginx.binary),
        ),
    }
}

fn php_fpm_reload(env: &ScriptEnv, server: &Server, php: &model::PhpFpmService) -> Finding {
    let subject = format!("php-fpm {} of server {}", php.version, server.name);
    match env.php_ctl(server, php).process_control_timeout() {
        Ok(Some(s)) if s >= MIN_PROCESS_CONTROL_TIMEOUT_S => Finding::ok(
            "php-fpm-reload",
            subject,
            format!("process_control_timeout is {s}s: a reload lets running requests finish"),
        ),
        Ok(Some(s)) => Finding::problem(
            "php-fpm-reload",
            subject,
            format!(
                "process_control_timeout is {s}s: every reload kills the requests PHP is running, on every site"
            ),
            format!(
                "find what sets it to {s} in {} or the files it includes (fjord sets it in its probe pool {}), remove that, and `fjord server verify {}`",
                php.config,
                env.php_ctl(server, php).probe_pool_file().display(),
                server.name
            ),
        ),
        Ok(None) | Err(_) => Finding::problem(
            "php-fpm-reload",
            subject,
            format!("`{} -tt` cannot load {}", php.binary, php.config),
            format!(
                "run `{} -t -y {}` and fix what it says",
                php.binary, php.config
            ),
        ),
    }
}

fn database_admin(server: &Server, service: &model::DbService) -> Option<Finding> {
    let ctl = db_ctl(service)?;
    let subject = format!("{} of server {}", service.engine, server.name);
    Some(match ctl.passwordless_admin_doors() {
        Ok(doors) if doors.is_empty() => Finding::ok(
            "database-admin",
            subject,
            format!("{} needs a password or the socket's owner", ctl.admin_user),
        ),
        Ok(doors) => Finding::problem(
            "database-admin",
            subject,
            format!(
                "any local user, so any site's code, signs in as {} without a password through {}: every site's database is open to every site",
                ctl.admin_user,
                doors.join("; ")
            ),
            match service.engine {
                model::DbEngine::Postgresql => "replace `trust` by `peer` (local) or `scram-sha-256` (host) on those lines of pg_hba.conf, then `SELECT pg_reload_conf()`".to_string(),
                _ => format!(
                    "give {} socket authentication only: `ALTER USER {}@localhost IDENTIFIED VIA unix_socket;` and drop any {}@127.0.0.1 or {}@'%' with an empty password",
                    ctl.admin_user, ctl.admin_user, ctl.admin_user, ctl.admin_user
                ),
            },
        ),
        Err(e) => Finding::problem(
            "database-admin",
            subject,
            format!("fjord cannot sign in as its administrator: {e}"),
            format!("check the service with `fjord server show {}`", server.name),
        ),
    })
}

fn disk(subject: &str, path: &std::path::Path) -> Finding {
    let space = host::disk_space(path).and_then(|(free, total)| {
        let used = host::disk_used_share(path)?.map_or(0.0, |share| share * 100.0);
        Ok((free, total, used))
    });
    match space {
        Ok((free, total, used)) if used <= MAX_USED_PERCENT => Finding::ok(
            "disk",
            subject,
            format!(
                "{} free of {} on {} ({used:.0}% used)",
                human_bytes(free),
                human_bytes(total),
                path.display()
            ),
        ),
        Ok((free, total, used)) => Finding::problem(
            "disk",
            subject,
            format!(
                "only {} free of {} on {} ({used:.0}% used): tasks stop being claimed over \
                 {MAX_USED_PERCENT}% used (`--disk-stop-percent` of the dispatcher)",
                human_bytes(free),
                human_bytes(total),
                path.display(),
            ),
            "free space there (old backups: `fjord site backups`, `fjord backup prune`) or grow the file system",
        ),
        Err(e) => Finding::problem("disk", subject, e.to_string(), "check the path exists"),
    }
}

/// Whether a live dispatcher's disk guard holds claims back.
fn claims(notice: Option<String>) -> Finding {
    match notice {
        None => Finding::ok(
            "claims",
            "disk guard",
            "no dispatcher holds task claims back for a full disk",
        ),
        Some(notice) => Finding::problem(
            "claims",
            "disk guard",
            notice,
            "free space there (old backups: `fjord site backups`, `fjord backup prune`) or grow \
             the file system; claims resume by themselves, and running tasks go on meanwhile",
        ),
    }
}

fn clock() -> Finding {
    match host::clock_synchronised() {
        Ok(true) => Finding::ok("clock", "system clock", "synchronised with NTP"),
        Ok(false) => Finding::problem(
            "clock",
            "system clock",
            "not synchronised: certificates, renewals, backups' ages and login links' expiry all read it",
            "enable NTP (`timedatectl set-ntp true`, or install chrony)",
        ),
        Err(tried) => Finding::problem(
            "clock",
            "system clock",
            format!("nothing keeps it synchronised ({tried})"),
            "install systemd-timesyncd or chrony",
        ),
    }
}

fn panel_url(url: &str) -> Finding {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
        || url.contains("://[::1]");
    if url.starts_with("https://") || loopback {
        Finding::ok("panel-url", "panel", format!("reached at {url}"))
    } else {
        Finding::problem(
            "panel-url",
            "panel",
            format!("reached at {url}: passwords and sessions cross the network unencrypted"),
            "serve it over HTTPS: `fjord serve --url https://NAME` (see README, the panel and the API)",
        )
    }
}

/// Bytes in binary units, to one decimal.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panel_over_plain_http_is_a_problem_unless_it_is_on_loopback() {
        assert_eq!(panel_url("https://panel.example").verdict, Verdict::Ok);
        assert_eq!(panel_url("http://127.0.0.1:8470").verdict, Verdict::Ok);
        assert_eq!(panel_url("http://localhost:8470").verdict, Verdict::Ok);
        assert_eq!(panel_url("http://[::1]:8470").verdict, Verdict::Ok);
        assert_eq!(panel_url("http://panel.example").verdict, Verdict::Problem);
        assert_eq!(
            panel_url("http://127.example.com").verdict,
            Verdict::Problem
        );
    }

    #[test]
    fn sizes_are_told_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(human_bytes(20 << 30), "20.0 GiB");
    }
}
