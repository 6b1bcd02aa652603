//! Following a task until it ends (`--wait`, `task log --follow`): its log lines as they
//! come, a warning while the disk guard holds claims back, and, for `--wait` on a terminal, a
//! status line under the log (queued: where it stands; running: for how long and at which
//! step), redrawn in place and cleared before each log line. Through a pipe nothing is added:
//! scripts and tests read the output.

use std::io::Write;
use std::time::{Duration, Instant};

use engine::model::{Task, TaskStatus};
use engine::{Error, Fjord};

use crate::outln;
use crate::output;
use crate::style::{self, Style};

/// How often the status line is redrawn, and the queue's place and the disk guard read.
const REDRAW_EVERY: Duration = Duration::from_millis(500);
const PAUSE_LOOK_EVERY: Duration = Duration::from_secs(2);

/// Prints a task's log lines as they come until it finishes.
pub(super) fn follow(fjord: &Fjord, id: i64, to_stderr: bool) -> Result<Task, Error> {
    // A dispatcher may be starting beside this command: only a few seconds without any
    // live dispatcher mean that nobody will run the task.
    const NO_DISPATCHER_GRACE: Duration = Duration::from_secs(3);
    let mut after = 0;
    let mut waited = Duration::ZERO;
    let mut hinted = false;
    let mut none_alive_since: Option<Duration> = None;
    let mut status = StatusLine::new(to_stderr && style::stderr_redraws());
    let mut step: Option<String> = None;
    let mut pause = PauseWatch::default();
    loop {
        let task = fjord.task(id)?;
        let lines = fjord.task_log(id, after)?;
        if !lines.is_empty() {
            status.clear();
        }
        for line in lines {
            after = line.id;
            let at = output::log_time(line.at);
            if to_stderr {
                eprintln!("  {}  {}", style::err(&at, Style::Dim), line.line)
            } else {
                outln!("{}  {}", style::out(&at, Style::Dim), line.line)
            }
            step = Some(line.line);
        }
        if task.status.is_finished() {
            status.clear();
            return Ok(task);
        }
        if fjord.dispatcher_alive()? {
            none_alive_since = None;
        } else {
            let since = *none_alive_since.get_or_insert(waited);
            if waited - since >= NO_DISPATCHER_GRACE {
                status.clear();
                return Err(Error::Refused(format!(
                    "no dispatcher is running on {}: task {id} stays {}. Start one with \
                     `fjord serve` (or `fjord dispatch`), then follow the task with \
                     `fjord task log {id} --follow`",
                    fjord.data_dir().display(),
                    task.status.as_str()
                )));
            }
        }
        let queued = task.status == TaskStatus::Queued;
        if queued && let Some(notice) = pause.changed(fjord) {
            status.clear();
            warn_line(&notice);
        }
        if queued && waited > Duration::from_secs(5) && !hinted && !pause.paused() {
            status.clear();
            eprintln!("  (still queued: the dispatchers are busy with other tasks)");
            hinted = true;
        }
        if status.due() {
            let progress = match task.status {
                TaskStatus::Queued => {
                    let place = fjord.queue_place(id)?;
                    // The task it waits for, as the task list names it (gone meanwhile: none).
                    let waits_for = place.waits_for.and_then(|other| {
                        let t = fjord.task(other).ok()?;
                        Some(format!(
                            "task {other} ({} of {})",
                            t.kind.as_str(),
                            t.target_name
                        ))
                    });
                    Progress::Queued {
                        ahead: place.ahead,
                        waits_for,
                        claims_paused: pause.paused(),
                    }
                }
                _ => Progress::Running {
                    elapsed_ms: task
                        .started_at
                        .map_or(0, |at| (output::now_ms() - at).max(0)),
                    step: step.as_deref(),
                },
            };
            status.draw(&status_text(id, &progress, terminal_width()));
        }
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
}

/// Prints, on stderr, why tasks are not claimed, if a dispatcher's disk guard holds them.
pub(super) fn warn_if_claims_paused(fjord: &Fjord) {
    // The list is what was asked for: a state that cannot say is no reason to fail it.
    if let Ok(Some(notice)) = fjord.claim_pause_notice() {
        warn_line(&notice);
    }
}

fn warn_line(notice: &str) {
    eprintln!("{}", style::err(&format!("warning: {notice}"), Style::Warn));
}

/// The disk guard's notice, read now and then while a task waits.
#[derive(Default)]
struct PauseWatch {
    last_look: Option<Instant>,
    notice: Option<String>,
}

impl PauseWatch {
    /// A new notice (once per change), if it is time to look.
    fn changed(&mut self, fjord: &Fjord) -> Option<String> {
        if self
            .last_look
            .is_some_and(|at| at.elapsed() < PAUSE_LOOK_EVERY)
        {
            return None;
        }
        self.last_look = Some(Instant::now());
        let now = fjord.claim_pause_notice().ok().flatten();
        let changed = now.is_some() && now != self.notice;
        self.notice = now;
        changed.then(|| self.notice.clone()).flatten()
    }

    fn paused(&self) -> bool {
        self.notice.is_some()
    }
}

/// What the status line tells.
#[derive(Debug, Clone, PartialEq)]
enum Progress<'a> {
    Queued {
        /// Queued tasks before it.
        ahead: usize,
        /// The task on one of its objects that it runs after, named.
        waits_for: Option<String>,
        claims_paused: bool,
    },
    Running {
        elapsed_ms: i64,
        /// The task's last log line.
        step: Option<&'a str>,
    },
}

/// The status line, at most `width - 1` characters (a line that wraps cannot be redrawn in
/// place).
fn status_text(id: i64, progress: &Progress, width: usize) -> String {
    let text = match progress {
        Progress::Queued {
            ahead,
            waits_for,
            claims_paused,
        } => {
            let place = match (waits_for, ahead) {
                (Some(other), _) => format!("waiting for {other}"),
                (None, 0) => "next to run".to_string(),
                (None, 1) => "1 task queued before it".to_string(),
                (None, n) => format!("{n} tasks queued before it"),
            };
            let paused = if *claims_paused {
                "; claims are paused (disk nearly full)"
            } else {
                ""
            };
            format!("task {id} queued: {place}{paused}")
        }
        Progress::Running { elapsed_ms, step } => {
            let took = output::duration(*elapsed_ms - elapsed_ms % 1000);
            match step {
                Some(step) => format!("task {id} running for {took}: {step}"),
                None => format!("task {id} running for {took}"),
            }
        }
    };
    let max = width.saturating_sub(1).max(10);
    if text.chars().count() <= max {
        text
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

/// The terminal's width as the shell tells it (`COLUMNS`), else 80.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w > 0)
        .unwrap_or(80)
}

/// A line at the bottom of stderr, redrawn in place; off when stderr does not redraw. Drawn
/// with a carriage return and spaces over what it replaces: no escape sequence (`NO_COLOR`
/// leaves it plain, and any terminal understands it).
struct StatusLine {
    on: bool,
    /// The width of the line shown, in characters (0: none is).
    shown: usize,
    last_draw: Option<Instant>,
}

impl StatusLine {
    fn new(on: bool) -> StatusLine {
        StatusLine {
            on,
            shown: 0,
            last_draw: None,
        }
    }

    fn due(&self) -> bool {
        self.on && self.last_draw.is_none_or(|at| at.elapsed() >= REDRAW_EVERY)
    }

    fn draw(&mut self, text: &str) {
        self.last_draw = Some(Instant::now());
        let width = text.chars().count();
        let rest = " ".repeat(self.shown.saturating_sub(width));
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}{rest}", style::err(text, Style::Busy));
        let _ = err.flush();
        self.shown = width;
    }

    fn clear(&mut self) {
        if self.shown > 0 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(self.shown));
            let _ = err.flush();
            self.shown = 0;
            // Drawn again at once under what was printed.
            self.last_draw = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_task_says_where_it_stands_and_a_running_one_its_time_and_step() {
        let queued = |ahead, waits_for: Option<&str>, claims_paused| Progress::Queued {
            ahead,
            waits_for: waits_for.map(String::from),
            claims_paused,
        };
        assert_eq!(
            status_text(7, &queued(0, None, false), 80),
            "task 7 queued: next to run"
        );
        assert_eq!(
            status_text(7, &queued(3, None, false), 80),
            "task 7 queued: 3 tasks queued before it"
        );
        assert_eq!(
            status_text(
                7,
                &queued(3, Some("task 4 (site-verify of shop.example)"), true),
                120
            ),
            "task 7 queued: waiting for task 4 (site-verify of shop.example); claims are paused \
             (disk nearly full)"
        );
        let running = Progress::Running {
            elapsed_ms: 75_400,
            step: Some("write /srv/www/a/settings.php"),
        };
        assert_eq!(
            status_text(7, &running, 80),
            "task 7 running for 1 min 15 s: write /srv/www/a/settings.php"
        );
        // Never as wide as the terminal: a wrapped line cannot be redrawn in place.
        let cut = status_text(7, &running, 30);
        assert_eq!(cut.chars().count(), 29);
        assert!(cut.ends_with('…'), "{cut}");
    }
}
