//! The self-healing monitor's vocabulary: how a server's daemon is started again when it is
//! found down, and the events the monitor records.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// How a daemon is brought back, beyond what its record already says: a start command of the
/// administrator's (absolute, run without a shell) and the service manager's unit that runs
/// it. Both optional: without them the monitor restarts the standard daemon through systemd
/// (when it runs) and any other from the command its record names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

impl Restart {
    pub fn is_empty(&self) -> bool {
        self.start.is_none() && self.unit.is_none()
    }
}

/// A start command: an absolute program and its arguments, split on white space, run without
/// a shell (so nothing a shell would read is allowed).
pub fn parse_start_command(field: &'static str, input: &str) -> Result<Vec<String>, Invalid> {
    let argv: Vec<String> = input.split_whitespace().map(str::to_string).collect();
    let Some(program) = argv.first() else {
        return Err(Invalid::new(
            field,
            input,
            "give the command that starts it",
        ));
    };
    if !program.starts_with('/') {
        return Err(Invalid::new(
            field,
            input,
            "a start command must start with an absolute path to the program",
        ));
    }
    if input
        .chars()
        .any(|c| c.is_control() || "\"'`$;|&<>\\".contains(c))
    {
        return Err(Invalid::new(
            field,
            input,
            "is run without a shell: quotes, $, ;, |, &, <, > and \\ are not allowed",
        ));
    }
    Ok(argv)
}

/// A systemd unit name: letters, digits and `@._:-`, at most 128 characters.
pub fn parse_unit(field: &'static str, input: &str) -> Result<String, Invalid> {
    let valid = !input.is_empty()
        && input.len() <= 128
        && !input.starts_with('-')
        && input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c));
    if valid {
        Ok(input.to_string())
    } else {
        Err(Invalid::new(
            field,
            input,
            "a unit name is 1-128 letters, digits and @._:- (for example nginx.service)",
        ))
    }
}

/// What the monitor saw happen to a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceEventKind {
    /// Two probes in a row failed.
    #[serde(rename = "down")]
    Down,
    /// Its start (or restart) command succeeded.
    #[serde(rename = "restarted")]
    Restarted,
    /// Its start command failed, or there is none to run.
    #[serde(rename = "restart failed")]
    RestartFailed,
    /// A probe passed again after it was down.
    #[serde(rename = "back")]
    Back,
}

impl ServiceEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceEventKind::Down => "down",
            ServiceEventKind::Restarted => "restarted",
            ServiceEventKind::RestartFailed => "restart failed",
            ServiceEventKind::Back => "back",
        }
    }

    pub fn parse(input: &str) -> Option<ServiceEventKind> {
        [
            ServiceEventKind::Down,
            ServiceEventKind::Restarted,
            ServiceEventKind::RestartFailed,
            ServiceEventKind::Back,
        ]
        .into_iter()
        .find(|k| k.as_str() == input)
    }
}

impl fmt::Display for ServiceEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of one of a server's daemons (`service`: `nginx`, `php-fpm-8.2`, `mysql`,
/// `postgresql`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub server_id: i64,
    pub service: String,
    pub event: ServiceEventKind,
    pub detail: String,
    /// Unix milliseconds.
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_command_is_absolute_and_shell_free() {
        assert_eq!(
            parse_start_command("start", "/usr/sbin/nginx -c /etc/nginx/nginx.conf").unwrap(),
            ["/usr/sbin/nginx", "-c", "/etc/nginx/nginx.conf"]
        );
        for bad in [
            "",
            "nginx -c x",
            "/bin/sh -c 'a'",
            "/bin/x;reboot",
            "/bin/x $HOME",
        ] {
            assert!(parse_start_command("start", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_unit("unit", "php8.2-fpm.service").unwrap(),
            "php8.2-fpm.service"
        );
        for bad in ["", "-x", "a b", "a/b", &"u".repeat(129)] {
            assert!(parse_unit("unit", bad).is_err(), "{bad:?}");
        }
        for kind in ["down", "restarted", "restart failed", "back"] {
            assert_eq!(ServiceEventKind::parse(kind).unwrap().as_str(), kind);
        }
    }
}
