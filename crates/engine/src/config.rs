//! The config file (`/etc/fjord/fjord.toml`) and how its settings meet the environment and
//! the command line: a flag wins over an environment variable, which wins over the file,
//! which wins over the built-in default. Every layer is checked with the same rules (those
//! the flags always had), so a bad value is refused wherever it was written, with the place
//! named: the file's line and column, the variable or the flag.
//!
//! Adding a key is done in this module only: a field in its section's `*File` struct below
//! (serde refuses any key that has none), a row in [`KEYS`] (`keys.rs`: its variable, flag,
//! default and one line for `fjord config check`; a test checks that every section's keys and
//! its struct agree), its line in [`Config::resolve`] with the rule its values must follow
//! (`rules.rs`), and its value in [`Config::effective`].

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use model::{AbsPath, MailSettings, TrustedProxies};
use serde::Deserialize;
use toml::Spanned;

mod keys;
mod rules;
mod text;

pub use keys::{KEYS, Key};

use crate::auth::DEFAULT_LISTEN;
use keys::known;
use rules::{
    count_rule, format_rule, level_rule, listen_rule, mail_rule, percent_rule, proxies_rule,
    server_rule, url_rule,
};
use text::Text;

/// Where the config file is read from when neither `--config` nor `FJORD_CONFIG` names one
/// (and only if it exists).
pub const DEFAULT_PATH: &str = "/etc/fjord/fjord.toml";
/// The variable that names the config file.
pub const CONFIG_ENV: &str = "FJORD_CONFIG";

const DEFAULT_LOG_KEEP: usize = 14;
const DEFAULT_LOG_ROTATE_BYTES: u64 = 10 << 20;
const DEFAULT_DISK_STOP_PERCENT: u64 = 90;
const DEFAULT_DISK_RESUME_PERCENT: u64 = 85;
const DEFAULT_MONITOR_INTERVAL: u64 = 5;

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
    disk_stop_percent: Option<Spanned<i64>>,
    disk_resume_percent: Option<Spanned<i64>>,
    monitor_interval: Option<Spanned<i64>>,
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

impl MailFile {
    fn is_empty(&self) -> bool {
        self.transport.is_none()
            && self.relay.is_none()
            && self.from.is_none()
            && self.starttls.is_none()
            && self.sendmail.is_none()
    }
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
    pub disk_stop_percent: Option<String>,
    pub disk_resume_percent: Option<String>,
    pub monitor_interval: Option<String>,
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
    /// The disk guard's lines, checked together (resume below stop).
    pub disk: Setting<crate::dispatch::DiskThresholds>,
    /// Seconds between the monitor's probes; 0: no monitor.
    pub monitor_interval: Setting<u64>,
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
        let data_dir = layers
            .pick(
                "data_dir",
                flags
                    .data_dir
                    .as_ref()
                    .map(|d| d.to_string_lossy())
                    .as_deref(),
                data_dir_file,
                |d| Ok(PathBuf::from(d)),
                || crate::default_data_dir(root),
            )
            .map(|mut setting| {
                // The flag's path as given, even one that is not UTF-8.
                if let (Source::Flag(_), Some(dir)) = (&setting.source, &flags.data_dir) {
                    setting.value = dir.clone();
                }
                setting
            })?;

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

        let percent = |key: &'static str, flag: Option<&str>, file, default: u64| {
            layers.pick(
                key,
                flag,
                text.value(key, file, |n| number(n).and_then(|n| percent_rule(&n)))?,
                percent_rule,
                || default,
            )
        };
        let stop = percent(
            "dispatcher.disk_stop_percent",
            flags.disk_stop_percent.as_deref(),
            &d.disk_stop_percent,
            DEFAULT_DISK_STOP_PERCENT,
        )?;
        let resume = percent(
            "dispatcher.disk_resume_percent",
            flags.disk_resume_percent.as_deref(),
            &d.disk_resume_percent,
            DEFAULT_DISK_RESUME_PERCENT,
        )?;
        // The pair is checked together; a refusal names the one given last in precedence.
        let (source, given) = if resume.source == Source::Default {
            (stop.source, &d.disk_stop_percent)
        } else {
            (resume.source, &d.disk_resume_percent)
        };
        let thresholds = crate::dispatch::DiskThresholds::new(stop.value as u8, resume.value as u8)
            .map_err(|e| match (&source, given) {
                (Source::File, Some(given)) => text.error(given.span().start, &e),
                (Source::Flag(name), _) | (Source::Env(name), _) => ConfigError {
                    place: Place::Flag(name),
                    message: e.to_string(),
                },
                _ => ConfigError {
                    place: Place::File(text.path.to_path_buf()),
                    message: e.to_string(),
                },
            })?;
        let disk = Setting {
            value: thresholds,
            source,
        };
        let monitor_interval = layers.pick(
            "dispatcher.monitor_interval",
            flags.monitor_interval.as_deref(),
            text.value("dispatcher.monitor_interval", &d.monitor_interval, |n| {
                number(n).and_then(|n| count_rule(0)(&n))
            })?,
            count_rule(0),
            || DEFAULT_MONITOR_INTERVAL,
        )?;

        // An empty `[mail]` (the packaged file's, every key commented out) says nothing.
        let mail = f
            .mail
            .as_ref()
            .filter(|m| !m.get_ref().is_empty())
            .map(|m| mail_rule(text, m))
            .transpose()?;

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
                disk,
                monitor_interval,
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
            (
                "dispatcher.disk_stop_percent",
                of(d.disk.value.stop_percent().to_string(), &d.disk.source),
            ),
            (
                "dispatcher.disk_resume_percent",
                of(d.disk.value.resume_percent().to_string(), &d.disk.source),
            ),
            (
                "dispatcher.monitor_interval",
                of(
                    d.monitor_interval.value.to_string(),
                    &d.monitor_interval.source,
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
