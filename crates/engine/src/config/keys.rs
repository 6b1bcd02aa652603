//! The keys of the config file, each with its variable, flag, default and description.

use crate::auth::DEFAULT_LISTEN;

/// One key of the file, as `fjord config check` and the README describe it.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// `section.key` (`data_dir` has no section).
    pub name: &'static str,
    pub env: Option<&'static str>,
    pub flag: Option<&'static str>,
    pub default: &'static str,
    pub about: &'static str,
}

const fn key(
    name: &'static str,
    env: Option<&'static str>,
    flag: Option<&'static str>,
    default: &'static str,
    about: &'static str,
) -> Key {
    Key {
        name,
        env,
        flag,
        default,
        about,
    }
}

/// Every key the file may hold, in the file's order.
pub const KEYS: &[Key] = &[
    key(
        "data_dir",
        Some("FJORD_DATA_DIR"),
        Some("--data-dir"),
        "/var/lib/fjord as root, $XDG_DATA_HOME/fjord otherwise",
        "where fjord keeps its state, config and journals",
    ),
    key(
        "panel.listen",
        Some("FJORD_PANEL_LISTEN"),
        Some("--listen"),
        DEFAULT_LISTEN,
        "where the panel listens: IP:PORT",
    ),
    key(
        "panel.url",
        Some("FJORD_PANEL_URL"),
        Some("--url"),
        "http://LISTEN",
        "the panel's address as its users reach it (a host name makes it a site of its own)",
    ),
    key(
        "panel.server",
        Some("FJORD_PANEL_SERVER"),
        Some("--panel-server"),
        "local",
        "the server whose nginx serves the panel's site; none: a proxy of your own",
    ),
    key(
        "panel.trusted_proxies",
        Some("FJORD_TRUSTED_PROXIES"),
        Some("--trusted-proxy"),
        "none",
        "proxies whose forwarding headers are believed: addresses or ADDR/BITS",
    ),
    key(
        "panel.dispatcher",
        None,
        Some("--no-dispatcher"),
        "true",
        "whether `fjord serve` runs a dispatcher beside the panel",
    ),
    key(
        "dispatcher.concurrency",
        Some("FJORD_CONCURRENCY"),
        Some("--concurrency"),
        "number of cores",
        "tasks run at once",
    ),
    key(
        "dispatcher.log_keep",
        None,
        Some("--log-keep"),
        "14",
        "rotated files kept of each site's log",
    ),
    key(
        "dispatcher.log_rotate_bytes",
        None,
        Some("--log-rotate-bytes"),
        "10485760",
        "a site's logs are rotated once one of them reaches this many bytes",
    ),
    key(
        "dispatcher.disk_stop_percent",
        None,
        Some("--disk-stop-percent"),
        "90",
        "no task is claimed while the data dir's or a platform's file system is more than \
         this full (percent; 100 turns the guard off)",
    ),
    key(
        "dispatcher.disk_resume_percent",
        None,
        Some("--disk-resume-percent"),
        "85",
        "claims resume once every one of those file systems is below this (percent)",
    ),
    key(
        "dispatcher.monitor_interval",
        None,
        Some("--monitor-interval"),
        "5",
        "seconds between the monitor's probes of every monitored server's nginx, php-fpm \
         masters and database servers (0: no monitor in this dispatcher)",
    ),
    key(
        "mail.transport",
        None,
        None,
        "none: `fjord mail` sets it",
        "smtp, sendmail or off; with a [mail] table the file decides how fjord sends mail",
    ),
    key(
        "mail.relay",
        None,
        None,
        "none",
        "the SMTP relay, HOST:PORT (smtp)",
    ),
    key(
        "mail.from",
        None,
        None,
        "none",
        "the sender of fjord's mail (smtp, sendmail)",
    ),
    key(
        "mail.starttls",
        None,
        None,
        "false",
        "upgrade the SMTP connection with STARTTLS (smtp)",
    ),
    key(
        "mail.sendmail",
        None,
        None,
        "/usr/sbin/sendmail",
        "the sendmail program (sendmail)",
    ),
    key(
        "log.format",
        Some("FJORD_LOG_FORMAT"),
        Some("--log-format"),
        "text",
        "how serve and dispatch log on stderr: text or json (one object a line)",
    ),
    key(
        "log.level",
        Some("FJORD_LOG"),
        None,
        "info",
        "a level (error, warn, info, debug, trace) or a filter such as info,engine=debug",
    ),
];

/// The section whose keys are exactly `expected` ("" for the top level).
pub(super) fn section_of(expected: &[String]) -> Option<&'static str> {
    let mut wanted: Vec<&str> = expected.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    sections()
        .into_iter()
        .find(|(_, keys)| *keys == wanted)
        .map(|(section, _)| section)
}

/// Each section ("" for the top level) and its keys, sorted, as [`KEYS`] lists them.
pub(super) fn sections() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for k in KEYS {
        let (section, name) = k.name.split_once('.').unwrap_or(("", k.name));
        if !section.is_empty() {
            add_key(&mut out, "", section);
        }
        add_key(&mut out, section, name);
    }
    for (_, keys) in &mut out {
        keys.sort_unstable();
    }
    out
}

fn add_key(
    out: &mut Vec<(&'static str, Vec<&'static str>)>,
    section: &'static str,
    name: &'static str,
) {
    match out.iter_mut().find(|(s, _)| *s == section) {
        Some((_, keys)) if keys.contains(&name) => {}
        Some((_, keys)) => keys.push(name),
        None => out.push((section, vec![name])),
    }
}

pub(super) fn known(name: &str) -> &'static Key {
    KEYS.iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("{name} is not in config::KEYS"))
}
