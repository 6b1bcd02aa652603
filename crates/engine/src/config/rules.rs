//! The rules a setting's value must follow, the same wherever it is given: these are the
//! rules the flags always had (`model`'s for names, paths, addresses and mail).

use std::net::SocketAddr;

use model::{AbsPath, EmailAddress, MailSettings, Name, TrustedProxies};
use toml::Spanned;

use super::text::Text;
use super::{ConfigError, LogFormat, MailFile};
use crate::auth::check_panel_url;

const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

pub(super) fn listen_rule(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| "must be IP:PORT, for example 127.0.0.1:8470 or [::1]:8470".to_string())
}

pub(super) fn url_rule(value: &str) -> Result<Option<String>, String> {
    check_panel_url(value)
        .map(|u| Some(u.to_string()))
        .map_err(|e| e.rule)
}

pub(super) fn server_rule(value: &str) -> Result<String, String> {
    if value == "none" {
        return Ok(value.to_string());
    }
    Name::parse("server", value)
        .map(|n| n.to_string())
        .map_err(|e| format!("{} (or none)", e.rule))
}

pub(super) fn proxies_rule(values: &[String]) -> Result<Vec<String>, String> {
    TrustedProxies::parse(values)?;
    Ok(values.to_vec())
}

pub(super) fn count_rule(min: u64) -> impl Fn(&str) -> Result<u64, String> {
    move |value| match value.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("must be a whole number, at least {min}")),
    }
}

pub(super) fn percent_rule(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if n <= 100 => Ok(n),
        _ => Err("must be a whole number of percent, at most 100".into()),
    }
}

pub(super) fn format_rule(value: &str) -> Result<LogFormat, String> {
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
pub(super) fn level_rule(value: &str) -> Result<String, String> {
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

pub(super) fn mail_rule(
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
