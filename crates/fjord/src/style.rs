//! Colours for people at a terminal: only when the stream is one, never with `NO_COLOR` set
//! (<https://no-color.org>) or on a `dumb` terminal; `CLICOLOR_FORCE` asks for them even
//! through a pipe. clap's help and errors follow the same variables.

use std::io::IsTerminal;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Done as asked: success, installed, ok.
    Good,
    /// Failed, or wants a person.
    Bad,
    /// Done with something to look at, or serving a placeholder.
    Warn,
    /// Not finished yet.
    Busy,
    /// Past or beside the point: cancelled, deleted, timestamps.
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Good => "32",
            Style::Bad => "1;31",
            Style::Warn => "33",
            Style::Busy => "36",
            Style::Dim => "2",
        }
    }

    /// How a status (of a task, a site, a cron run) is shown.
    pub fn of_status(status: &str) -> Option<Style> {
        Some(match status {
            "success" | "installed" | "ok" | "yes" => Style::Good,
            "failed" | "needs-attention" => Style::Bad,
            "warning" | "disabled" => Style::Warn,
            "queued" | "processing" => Style::Busy,
            "cancelled" | "deleted" => Style::Dim,
            _ => return None,
        })
    }
}

/// Whether to colour a stream, from whether it is a terminal and the environment.
pub fn wanted(
    is_terminal: bool,
    no_color: Option<&str>,
    clicolor_force: Option<&str>,
    term: Option<&str>,
) -> bool {
    if no_color.is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if clicolor_force.is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    is_terminal && term != Some("dumb")
}

fn from_env(is_terminal: bool) -> bool {
    let var = |name| std::env::var(name).ok();
    wanted(
        is_terminal,
        var("NO_COLOR").as_deref(),
        var("CLICOLOR_FORCE").as_deref(),
        var("TERM").as_deref(),
    )
}

fn stdout_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| from_env(std::io::stdout().is_terminal()))
}

fn stderr_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| from_env(std::io::stderr().is_terminal()))
}

pub fn paint(text: &str, style: Style, on: bool) -> String {
    if on && !text.is_empty() {
        format!("\x1b[{}m{text}\x1b[0m", style.code())
    } else {
        text.to_string()
    }
}

/// Whether stderr is a terminal that redraws a line in place (`--wait`'s status line): not a
/// pipe, a file or a `dumb` terminal. Colours are another question ([`err`]).
pub fn stderr_redraws() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").as_deref() != Ok("dumb")
}

/// `text` styled for stdout.
pub fn out(text: &str, style: Style) -> String {
    paint(text, style, stdout_on())
}

/// `text` styled for stderr.
pub fn err(text: &str, style: Style) -> String {
    paint(text, style, stderr_on())
}

/// A status styled for stdout by what it says.
pub fn status(text: &str) -> String {
    match Style::of_status(text.trim_end()) {
        Some(style) => out(text, style),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_and_never_with_no_color() {
        assert!(wanted(true, None, None, Some("xterm-256color")));
        assert!(!wanted(false, None, None, Some("xterm")), "a pipe");
        assert!(!wanted(true, Some("1"), None, Some("xterm")), "NO_COLOR");
        assert!(
            wanted(true, Some(""), None, Some("xterm")),
            "an empty NO_COLOR"
        );
        assert!(!wanted(true, None, None, Some("dumb")));
        assert!(wanted(false, None, Some("1"), None), "CLICOLOR_FORCE");
        assert!(!wanted(false, None, Some("0"), None));
        assert!(
            !wanted(true, Some("1"), Some("1"), Some("xterm")),
            "NO_COLOR wins"
        );
    }

    #[test]
    fn a_painted_text_is_the_text_when_colours_are_off() {
        assert_eq!(paint("failed", Style::Bad, false), "failed");
        assert_eq!(paint("failed", Style::Bad, true), "\x1b[1;31mfailed\x1b[0m");
        assert_eq!(paint("", Style::Bad, true), "");
    }
}
