//! The file's text: where a refused value stands in it (line and column), and serde's
//! refusals told with the key in full.

use std::fmt;
use std::path::Path;

use toml::Spanned;

use super::keys::section_of;
use super::{ConfigError, Place};

/// The file's text, where it came from.
pub(super) struct Text<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Text<'_> {
    /// Line and column (from 1, in characters) of a byte offset.
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, column)
    }

    pub(super) fn error(&self, offset: usize, message: impl fmt::Display) -> ConfigError {
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
    pub(super) fn value<F, T>(
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
    pub(super) fn refusal(&self, e: &toml::de::Error) -> ConfigError {
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
