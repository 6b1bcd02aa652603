//! The config file (`/etc/fjord/fjord.toml`) and how its settings meet the environment and
//! the command line: a flag wins over an environment variable, which wins over the file,
//! which wins over the built-in default. Every layer is checked with the same rules (those
//! the flags always had), so a bad value is refused wherever it was written, with the place
//! named: the file's line and column, the variable or the flag.
//!
//! Adding a key is done in this file only: a field in its section's `*File` struct (serde
//! refuses any key that has none), a row in [`KEYS`] (its variable, flag, default and one
//! line for `fjord config check`; a test checks that every section's keys and its struct
//! agree), and its line in [`Config::resolve`] with the rule its values must follow.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use model::{AbsPath, EmailAddress, MailSettings, Name, TrustedProxies};
use serde::Deserialize;
use toml::Spanned;

use crate::auth::{DEFAULT_LISTEN, check_panel_url};

/// Where the config file is read from when neither `--config` nor `FJORD_CONFIG` names one
/// (and only if it exists).
pub const DEFAULT_PATH: &str = "/etc/fjord/fjord.toml";
/// The variable that names the config file.
pub const CONFIG_ENV: &str = "FJORD_CONFIG";

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

const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";
const DEFAULT_LOG_KEEP: usize = 14;
const DEFAULT_LOG_ROTATE_BYTES: u64 = 10 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<Spanned<String>>,
    #[serde(default)]
    panel: PanelFile,
    #[serde(default)]
    dispatcher: DispatcherFile,
    mail: Option<Spanned<MailFile>>,
    #[serde(default)]
    log: LogFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PanelFile {
    listen: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    trusted_proxies: Option<Spanned<Vec<String>>>,
    dispatcher: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DispatcherFile {
    concurrency: Option<Spanned<i64>>,
    log_keep: Option<Spanned<i64>>,
    log_rotate_bytes: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailFile {
    transport: Option<Spanned<String>>,
    relay: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    starttls: Option<Spanned<bool>>,
    sendmail: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {
    format: Option<Spanned<String>>,
    level: Option<Spanned<String>>,
}

/// The values given on the command line (as typed: they are checked here, by the rules the
/// file's values follow).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub url: Option<String>,
    pub panel_server: Option<String>,
    pub trusted_proxies: Vec<String>,
    pub no_dispatcher: bool,
    pub concurrency: Option<String>,
    pub log_keep: Option<String>,
    pub log_rotate_bytes: Option<String>,
    pub log_format: Option<String>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File => f.write_str("file"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The config file in use, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// `--config`, `FJORD_CONFIG`, or the default path, found.
    pub source: Source,
}

/// Every setting, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: Option<ConfigFile>,
    pub data_dir: Setting<PathBuf>,
    pub panel: PanelConfig,
    pub dispatcher: DispatcherConfig,
    /// How the file says fjord sends mail (`None` inside: no mail); `None`: the file has no
    /// `[mail]` table, and `fjord mail` decides.
    pub mail: Option<Option<MailSettings>>,
    pub log: LogConfig,
}

#[derive(Debug, Clone)]
pub struct PanelConfig {
    pub listen: Setting<SocketAddr>,
    pub url: Setting<Option<String>>,
    pub server: Setting<String>,
    pub trusted_proxies: Setting<Vec<String>>,
    pub dispatcher: Setting<bool>,
}

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub concurrency: Setting<usize>,
    pub log_keep: Setting<usize>,
    pub log_rotate_bytes: Setting<u64>,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: Setting<LogFormat>,
    pub level: Setting<String>,
}

/// A setting refused: where it was written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub place: Place,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The file itself (it cannot be read).
    File(PathBuf),
    /// A position in the file, counted from 1.
    At {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Place::File(path) => write!(f, "{}: {}", path.display(), self.message),
            Place::At { path, .. } => write!(f, "{}: {}", path.display(), self.message),
            Place::Env(name) => write!(f, "environment variable {name}: {}", self.message),
            Place::Flag(name) => write!(f, "{name}: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for crate::Error {
    fn from(e: ConfigError) -> crate::Error {
        crate::Error::Refused(e.to_string())
    }
}

/// The file's text, where it came from.
struct Text<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Text<'_> {
    /// Line and column (from 1, in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, column)
    }

    fn error(&self, offset: usize, message: impl fmt::Display) -> ConfigError {
        let (line, column) = self.position(offset);
        ConfigError {
            place: Place::At {
                path: self.path.to_path_buf(),
                line,
                column,
            },
            message: format!("{message}"),
        }
    }

    /// A value the file gives for `key`, checked by `rule`.
    fn value<F, T>(
        &self,
        key: &str,
        given: &Option<Spanned<F>>,
        rule: impl Fn(&F) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError>
    where
        F: fmt::Debug,
    {
        let Some(given) = given else { return Ok(None) };
        rule(given.get_ref()).map(Some).map_err(|why| {
            let (line, column) = self.position(given.span().start);
            self.error(
                given.span().start,
                format!(
                    "`{key}` = {:?} at line {line}, column {column}: {why}",
                    given.get_ref()
                ),
            )
        })
    }

    /// serde's refusal of the file, with its place and, for a key it does not know, the key
    /// in full and the closest ones of its section.
    fn refusal(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = self.position(offset);
        let message = e.message().trim();
        if let Some((typed, expected)) = unknown_field(message) {
            let section = section_of(&expected);
            let full = match section {
                Some("") | None => typed.clone(),
                Some(section) => format!("{section}.{typed}"),
            };
            let near = crate::near::closest(&typed, expected.iter().map(String::as_str));
            let hint = match near.as_slice() {
                [] => String::new(),
                [one] => format!(" (did you mean `{one}`?)"),
                more => format!(
                    " (did you mean {}?)",
                    more.iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            };
            return self.error(
                offset,
                format!("unknown key `{full}` at line {line}, column {column}{hint}"),
            );
        }
        let what = if e.span().is_some() && message.starts_with("invalid type") {
            match key_at(self.text, offset) {
                Some(key) => format!("`{key}` at line {line}, column {column}: {message}"),
                None => format!("line {line}, column {column}: {message}"),
            }
        } else {
            format!("line {line}, column {column}: not valid TOML: {message}")
        };
        self.error(offset, what)
    }
}

/// The name and the expected names of serde's "unknown field `x`, expected one of `a`, `b`".
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (typed, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((typed.to_string(), expected))
}

/// The section whose keys are exactly `expected` ("" for the top level).
fn section_of(expected: &[String]) -> Option<&'static str> {
    let mut wanted: Vec<&str> = expected.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    sections()
        .into_iter()
        .find(|(_, keys)| *keys == wanted)
        .map(|(section, _)| section)
}

/// Each section ("" for the top level) and its keys, sorted, as [`KEYS`] lists them.
fn sections() -> Vec<(&'static str, Vec<&'static str>)> {
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

/// `section.key` of the line holding `offset` (`key = …` under the last `[section]`).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let section = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key.to_string(),
    })
}

/// Picks a setting's value from its layers, checking every layer that gives one (a bad value
/// is refused even where a higher layer hides it: the file is meant to be right).
struct Layers<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Layers<'_> {
    fn pick<T>(
        &self,
        key: &'static str,
        flag: Option<&str>,
        file: Option<T>,
        rule: impl Fn(&str) -> Result<T, String>,
        default: impl FnOnce() -> T,
    ) -> Result<Setting<T>, ConfigError> {
        let k = known(key);
        let from_env = match k.env.and_then(|name| (self.env)(name).map(|v| (name, v))) {
            Some((name, value)) if !value.is_empty() => Some(
                rule(&value)
                    .map(|v| (v, Source::Env(name)))
                    .map_err(|why| ConfigError {
                        place: Place::Env(name),
                        message: format!("{value:?}: {why}"),
                    })?,
            ),
            _ => None,
        };
        let from_flag = match (flag, k.flag) {
            (Some(value), Some(name)) => Some(
                rule(value)
                    .map(|v| (v, Source::Flag(name)))
                    .map_err(|why| ConfigError {
                        place: Place::Flag(name),
                        message: format!("{value:?}: {why}"),
                    })?,
            ),
            _ => None,
        };
        let (value, source) = from_flag
            .or(from_env)
            .or_else(|| file.map(|v| (v, Source::File)))
            .unwrap_or_else(|| (default(), Source::Default));
        Ok(Setting { value, source })
    }
}

fn known(name: &str) -> &'static Key {
    KEYS.iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("{name} is not in config::KEYS"))
}

fn listen_rule(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| "must be IP:PORT, for example 127.0.0.1:8470 or [::1]:8470".to_string())
}

fn url_rule(value: &str) -> Result<Option<String>, String> {
    check_panel_url(value)
        .map(|u| Some(u.to_string()))
        .map_err(|e| e.rule)
}

fn server_rule(value: &str) -> Result<String, String> {
    if value == "none" {
        return Ok(value.to_string());
    }
    Name::parse("server", value)
        .map(|n| n.to_string())
        .map_err(|e| format!("{} (or none)", e.rule))
}

fn proxies_rule(values: &[String]) -> Result<Vec<String>, String> {
    TrustedProxies::parse(values)?;
    Ok(values.to_vec())
}

fn count_rule(min: u64) -> impl Fn(&str) -> Result<u64, String> {
    move |value| match value.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("must be a whole number, at least {min}")),
    }
}

fn format_rule(value: &str) -> Result<LogFormat, String> {
    match value {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("must be text or json".into()),
    }
}

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// A level, or directives `LEVEL` and `TARGET=LEVEL` separated by commas (tracing's filter
/// syntax, held to what fjord's logs need, so that a misspelt level is not taken for the
/// name of a target).
fn level_rule(value: &str) -> Result<String, String> {
    let why = || {
        format!(
            "must be a level ({}) or a filter such as info,engine=debug",
            LEVELS.join(", ")
        )
    };
    let is_level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    let directives: Vec<&str> = value.split(',').map(str::trim).collect();
    let ok = directives.iter().all(|d| match d.split_once('=') {
        None => is_level(d),
        Some((target, level)) => {
            !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && is_level(level)
        }
    });
    if ok {
        Ok(value.to_string())
    } else {
        Err(why())
    }
}

fn mail_rule(
    text: &Text<'_>,
    mail: &Spanned<MailFile>,
) -> Result<Option<MailSettings>, ConfigError> {
    let m = mail.get_ref();
    let Some(transport) = &m.transport else {
        return Err(text.error(
            mail.span().start,
            "the [mail] table needs `mail.transport`: smtp, sendmail or off",
        ));
    };
    let at = transport.span().start;
    let only_for = |given: bool, key: &str, which: &str| -> Result<(), ConfigError> {
        if given {
            Err(text.error(
                at,
                format!(
                    "`mail.{key}` is for mail.transport = {which}, not {:?}",
                    transport.get_ref()
                ),
            ))
        } else {
            Ok(())
        }
    };
    let needed = |key: &str| {
        text.error(
            at,
            format!(
                "mail.transport = {:?} needs `mail.{key}`",
                transport.get_ref()
            ),
        )
    };
    let from = |m: &MailFile| -> Result<EmailAddress, ConfigError> {
        text.value("mail.from", &m.from, |f: &String| {
            EmailAddress::parse("mail.from", f).map_err(|e| e.rule)
        })?
        .ok_or_else(|| needed("from"))
    };
    match transport.get_ref().as_str() {
        "smtp" => {
            only_for(m.sendmail.is_some(), "sendmail", "sendmail")?;
            let sender = from(m)?;
            let starttls = m.starttls.as_ref().is_some_and(|s| *s.get_ref());
            let settings = text
                .value("mail.relay", &m.relay, |relay: &String| {
                    MailSettings::smtp(relay, starttls, sender.clone()).map_err(|e| e.rule)
                })?
                .ok_or_else(|| needed("relay"))?;
            Ok(Some(settings))
        }
        "sendmail" => {
            only_for(m.relay.is_some(), "relay", "smtp")?;
            only_for(m.starttls.is_some(), "starttls", "smtp")?;
            let from = from(m)?;
            let path = text
                .value("mail.sendmail", &m.sendmail, |p: &String| {
                    AbsPath::parse("mail.sendmail", p).map_err(|e| e.rule)
                })?
                .map_or_else(|| AbsPath::parse("mail.sendmail", DEFAULT_SENDMAIL), Ok)
                .map_err(|e| text.error(at, e))?;
            Ok(Some(MailSettings::Sendmail { path, from }))
        }
        "off" => {
            for (given, key) in [
                (m.relay.is_some(), "relay"),
                (m.from.is_some(), "from"),
                (m.starttls.is_some(), "starttls"),
                (m.sendmail.is_some(), "sendmail"),
            ] {
                only_for(given, key, "smtp or sendmail")?;
            }
            Ok(None)
        }
        other => Err(text.error(
            at,
            format!("`mail.transport` = {other:?}: must be smtp, sendmail or off"),
        )),
    }
}

impl Config {
    /// Reads the config file (`--config`, else `FJORD_CONFIG`, else [`DEFAULT_PATH`] if it
    /// exists) and resolves every setting from the flags, the environment (`env`), the file
    /// and the defaults. `root`: whether fjord runs as root (the data dir's default).
    pub fn load(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
        root: bool,
    ) -> Result<Config, ConfigError> {
        let chosen = match (&flags.config, env(CONFIG_ENV).filter(|v| !v.is_empty())) {
            (Some(path), _) => Some((path.clone(), Source::Flag("--config"))),
            (None, Some(path)) => Some((PathBuf::from(path), Source::Env(CONFIG_ENV))),
            (None, None) => None,
        };
        let (file, text) = match chosen {
            Some((path, source)) => {
                let text = host::read_text_file(&path).map_err(|e| ConfigError {
                    message: format!("cannot read the config file: {e}"),
                    place: Place::File(path.clone()),
                })?;
                (Some(ConfigFile { path, source }), text)
            }
            None => {
                let path = PathBuf::from(DEFAULT_PATH);
                match host::read_text_file_if_exists(&path) {
                    Ok(Some(text)) => (
                        Some(ConfigFile {
                            path,
                            source: Source::Default,
                        }),
                        text,
                    ),
                    Ok(None) => (None, String::new()),
                    Err(e) => {
                        return Err(ConfigError {
                            message: format!("cannot read the config file: {e}"),
                            place: Place::File(path),
                        });
                    }
                }
            }
        };
        let path = file.as_ref().map_or(Path::new(DEFAULT_PATH), |f| &f.path);
        let mut config = Config::resolve(&Text { path, text: &text }, flags, env, root)?;
        config.file = file;
        Ok(config)
    }

    /// Every setting from `text` (the file's, possibly empty), the flags and `env`.
    fn resolve(
        text: &Text<'_>,
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
        root: bool,
    ) -> Result<Config, ConfigError> {
        let f: FileConfig = toml::from_str(text.text).map_err(|e| text.refusal(&e))?;
        let layers = Layers { env };
        let string = |s: &String| Ok::<_, String>(s.clone());
        let number = |n: &i64| Ok::<_, String>(n.to_string());

        let data_dir_file = text.value("data_dir", &f.data_dir, |d: &String| {
            AbsPath::parse("data_dir", d)
                .map(|p| PathBuf::from(p.as_str()))
                .map_err(|e| e.rule)
        })?;
        let data_dir = layers.pick(
            "data_dir",
            flags.data_dir.as_deref().and_then(Path::to_str),
            data_dir_file,
            |d| Ok(PathBuf::from(d)),
            || crate::default_data_dir(root),
        )?;

        let p = &f.panel;
        let listen = layers.pick(
            "panel.listen",
            flags.listen.as_deref(),
            text.value("panel.listen", &p.listen, |v: &String| listen_rule(v))?,
            listen_rule,
            || DEFAULT_LISTEN.parse().expect("the default listen address"),
        )?;
        let url = layers.pick(
            "panel.url",
            flags.url.as_deref(),
            text.value("panel.url", &p.url, |v: &String| url_rule(v))?,
            url_rule,
            || None,
        )?;
        let server = layers.pick(
            "panel.server",
            flags.panel_server.as_deref(),
            text.value("panel.server", &p.server, |v: &String| server_rule(v))?,
            server_rule,
            || "local".to_string(),
        )?;
        let proxies_file = text.value("panel.trusted_proxies", &p.trusted_proxies, |v| {
            proxies_rule(v)
        })?;
        let joined = (!flags.trusted_proxies.is_empty()).then(|| flags.trusted_proxies.join(","));
        let trusted_proxies = layers.pick(
            "panel.trusted_proxies",
            joined.as_deref(),
            proxies_file,
            |v| {
                let list: Vec<String> = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                proxies_rule(&list)
            },
            Vec::new,
        )?;
        let dispatcher = layers.pick(
            "panel.dispatcher",
            flags.no_dispatcher.then_some("false"),
            p.dispatcher.as_ref().map(|d| *d.get_ref()),
            |v| Ok(v == "true"),
            || true,
        )?;

        let d = &f.dispatcher;
        let concurrency = layers.pick(
            "dispatcher.concurrency",
            flags.concurrency.as_deref(),
            text.value("dispatcher.concurrency", &d.concurrency, |n| {
                number(n).and_then(|n| count_rule(1)(&n))
            })?,
            count_rule(1),
            || {
                std::thread::available_parallelism()
                    .map(|n| n.get() as u64)
                    .unwrap_or(2)
            },
        )?;
        let log_keep = layers.pick(
            "dispatcher.log_keep",
            flags.log_keep.as_deref(),
            text.value("dispatcher.log_keep", &d.log_keep, |n| {
                number(n).and_then(|n| count_rule(0)(&n))
            })?,
            count_rule(0),
            || DEFAULT_LOG_KEEP as u64,
        )?;
        let log_rotate_bytes = layers.pick(
            "dispatcher.log_rotate_bytes",
            flags.log_rotate_bytes.as_deref(),
            text.value("dispatcher.log_rotate_bytes", &d.log_rotate_bytes, |n| {
                number(n).and_then(|n| count_rule(1)(&n))
            })?,
            count_rule(1),
            || DEFAULT_LOG_ROTATE_BYTES,
        )?;

        let mail = f.mail.as_ref().map(|m| mail_rule(text, m)).transpose()?;

        let l = &f.log;
        let format = layers.pick(
            "log.format",
            flags.log_format.as_deref(),
            text.value("log.format", &l.format, |v| {
                string(v).and_then(|v| format_rule(&v))
            })?,
            format_rule,
            || LogFormat::Text,
        )?;
        let level = layers.pick(
            "log.level",
            None,
            text.value("log.level", &l.level, |v| {
                string(v).and_then(|v| level_rule(&v))
            })?,
            level_rule,
            || "info".to_string(),
        )?;

        Ok(Config {
            file: None,
            data_dir,
            panel: PanelConfig {
                listen,
                url,
                server,
                trusted_proxies,
                dispatcher,
            },
            dispatcher: DispatcherConfig {
                concurrency: as_usize(concurrency),
                log_keep: as_usize(log_keep),
                log_rotate_bytes,
            },
            mail,
            log: LogConfig { format, level },
        })
    }

    /// The proxies the panel believes.
    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::parse(&self.panel.trusted_proxies.value)
            .expect("checked when the config was resolved")
    }

    /// Every key with its effective value and where it came from, in [`KEYS`]' order (the
    /// mail keys its transport does not use left out).
    pub fn effective(&self) -> Vec<(&'static Key, String, Source)> {
        let p = &self.panel;
        let d = &self.dispatcher;
        let l = &self.log;
        let [transport, relay, from, starttls, sendmail]: [String; 5] = match &self.mail {
            None => [
                "not set: `fjord mail` decides".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
            ],
            Some(None) => ["off".into(), "".into(), "".into(), "".into(), "".into()],
            Some(Some(MailSettings::Smtp {
                host,
                port,
                starttls,
                from,
            })) => [
                "smtp".into(),
                format!("{host}:{port}"),
                from.to_string(),
                starttls.to_string(),
                "".into(),
            ],
            Some(Some(MailSettings::Sendmail { path, from })) => [
                "sendmail".into(),
                "".into(),
                from.to_string(),
                "".into(),
                path.to_string(),
            ],
        };
        let mail = if self.mail.is_some() {
            Source::File
        } else {
            Source::Default
        };
        let of = |value: String, source: &Source| (value, source.clone());
        let values: Vec<(&str, (String, Source))> = vec![
            (
                "data_dir",
                of(
                    self.data_dir.value.display().to_string(),
                    &self.data_dir.source,
                ),
            ),
            (
                "panel.listen",
                of(p.listen.value.to_string(), &p.listen.source),
            ),
            (
                "panel.url",
                of(
                    p.url
                        .value
                        .clone()
                        .unwrap_or_else(|| format!("http://{}", p.listen.value)),
                    &p.url.source,
                ),
            ),
            ("panel.server", of(p.server.value.clone(), &p.server.source)),
            (
                "panel.trusted_proxies",
                of(
                    if p.trusted_proxies.value.is_empty() {
                        "none".to_string()
                    } else {
                        p.trusted_proxies.value.join(", ")
                    },
                    &p.trusted_proxies.source,
                ),
            ),
            (
                "panel.dispatcher",
                of(p.dispatcher.value.to_string(), &p.dispatcher.source),
            ),
            (
                "dispatcher.concurrency",
                of(d.concurrency.value.to_string(), &d.concurrency.source),
            ),
            (
                "dispatcher.log_keep",
                of(d.log_keep.value.to_string(), &d.log_keep.source),
            ),
            (
                "dispatcher.log_rotate_bytes",
                of(
                    d.log_rotate_bytes.value.to_string(),
                    &d.log_rotate_bytes.source,
                ),
            ),
            ("mail.transport", of(transport, &mail)),
            ("mail.relay", of(relay, &mail)),
            ("mail.from", of(from, &mail)),
            ("mail.starttls", of(starttls, &mail)),
            ("mail.sendmail", of(sendmail, &mail)),
            (
                "log.format",
                of(l.format.value.as_str().to_string(), &l.format.source),
            ),
            ("log.level", of(l.level.value.clone(), &l.level.source)),
        ];
        KEYS.iter()
            .filter_map(|k| {
                let (value, source) = values
                    .iter()
                    .find(|(name, _)| *name == k.name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| panic!("{} has no value in Config::effective", k.name));
                (!value.is_empty()).then_some((k, value, source))
            })
            .collect()
    }

    /// Refuses a change of how mail is sent while the file decides it: the file would undo
    /// the change at the next start of `fjord serve` or `fjord dispatch`.
    pub fn refuse_mail_change(&self) -> crate::Result<()> {
        match (&self.mail, &self.file) {
            (Some(_), Some(file)) => Err(crate::Error::Refused(format!(
                "mail is set by the [mail] table of {}: change it there (it is applied when \
                 `fjord serve` or `fjord dispatch` starts), or remove the table to set it with \
                 `fjord mail`",
                file.path.display()
            ))),
            _ => Ok(()),
        }
    }
}

fn as_usize(s: Setting<u64>) -> Setting<usize> {
    Setting {
        value: usize::try_from(s.value).unwrap_or(usize::MAX),
        source: s.source,
    }
}

impl crate::Fjord {
    /// Puts the file's `[mail]` into the state, if it has one and the state differs: the
    /// file decides how a dispatcher sends mail. Returns whether it changed anything.
    pub fn apply_config_mail(&self, config: &Config) -> crate::Result<bool> {
        let Some(wanted) = &config.mail else {
            return Ok(false);
        };
        if self.mail_settings()? == *wanted {
            return Ok(false);
        }
        self.set_mail(wanted.as_ref())?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
