//! The disk guard: a dispatcher stops claiming tasks while the data dir's or a platform's file
//! system is over the stop line (90 % used by default), and claims again once every one is
//! below the resume line (85 %). Tasks already running go on.
//!
//! Why not let tasks fail instead: a full disk fails a backup halfway, and its rollback needs
//! space too. A task that waits in the queue loses nothing.
//!
//! The pause is recorded in the state (`claim_pauses`), so that the CLI, a panel and
//! `/metrics` in other processes can tell why tasks wait; a dead dispatcher's rows are
//! ignored (its lock is free), and a live one clears its own when it claims again or ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use host::FileLock;
use model::{Action, Invalid};
use store::ClaimPause;

use crate::acting::Acting;
use crate::{Fjord, Result};

/// How often a dispatcher looks at its file systems (before a claim, no more often).
const LOOK_EVERY: Duration = Duration::from_secs(3);

/// Where claims stop and where they resume, in percent of a file system used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskThresholds {
    stop_percent: u8,
    resume_percent: u8,
}

impl Default for DiskThresholds {
    fn default() -> DiskThresholds {
        DiskThresholds {
            stop_percent: 90,
            resume_percent: 85,
        }
    }
}

impl DiskThresholds {
    /// Refuses a resume line that is not below the stop line, and a stop line over 100 (100
    /// itself turns the guard off: no file system is ever more than full).
    pub fn new(stop_percent: u8, resume_percent: u8) -> std::result::Result<Self, Invalid> {
        if stop_percent > 100 {
            return Err(Invalid::new(
                "disk stop percent",
                &stop_percent.to_string(),
                "must be at most 100",
            ));
        }
        if resume_percent >= stop_percent {
            return Err(Invalid::new(
                "disk resume percent",
                &resume_percent.to_string(),
                format!("must be below the disk stop percent ({stop_percent})"),
            ));
        }
        Ok(DiskThresholds {
            stop_percent,
            resume_percent,
        })
    }

    pub fn stop_percent(&self) -> u8 {
        self.stop_percent
    }

    pub fn resume_percent(&self) -> u8 {
        self.resume_percent
    }

    /// The rule, with hysteresis: claims stop once any file system is over the stop line, and
    /// resume only once every one is below the resume line (between the two, they stay as
    /// they were, so a disk hovering at the line does not flap).
    pub fn holds_claims(&self, paused: bool, used_percents: &[f64]) -> bool {
        if paused {
            used_percents
                .iter()
                .any(|u| *u >= f64::from(self.resume_percent))
        } else {
            used_percents
                .iter()
                .any(|u| *u > f64::from(self.stop_percent))
        }
    }
}

/// How full the file system holding `path` is, in percent (as `df` counts it).
fn used_percent(path: &std::path::Path) -> Option<f64> {
    Some(host::disk_used_share(path).ok()?? * 100.0)
}

/// One dispatcher's guard: whether it holds claims back now, and what it recorded.
pub(super) struct DiskGuard {
    thresholds: DiskThresholds,
    owner: String,
    last_look: Option<Instant>,
    /// Since when (ms) claims have been held back, and what was recorded about it.
    paused: Option<(i64, Vec<ClaimPause>)>,
}

impl DiskGuard {
    pub(super) fn new(thresholds: DiskThresholds, owner: &str) -> DiskGuard {
        DiskGuard {
            thresholds,
            owner: owner.to_string(),
            last_look: None,
            paused: None,
        }
    }

    /// Whether claims must wait: looks at the file systems again once [`LOOK_EVERY`] has
    /// passed since the last look, and records, logs and mails a change.
    pub(super) fn holds_claims(&mut self, fjord: &Arc<Fjord>) -> bool {
        if self.last_look.is_some_and(|at| at.elapsed() < LOOK_EVERY) {
            return self.paused.is_some();
        }
        self.last_look = Some(Instant::now());
        let looked = file_systems(fjord);
        let used: Vec<f64> = looked.iter().map(|(_, u)| *u).collect();
        let hold = self.thresholds.holds_claims(self.paused.is_some(), &used);
        match (hold, self.paused.take()) {
            (false, None) => {}
            (false, Some(_)) => {
                eprintln!(
                    "fjord: disk guard: every file system is below {} % used again; claiming \
                     tasks",
                    self.thresholds.resume_percent
                );
                self.record(fjord, &[]);
            }
            (true, was) => {
                let since = was.as_ref().map_or_else(store::now_ms, |(since, _)| *since);
                let pauses: Vec<ClaimPause> = looked
                    .iter()
                    .filter(|(_, u)| *u >= f64::from(self.thresholds.resume_percent))
                    .map(|(path, used_percent)| ClaimPause {
                        owner: self.owner.clone(),
                        path: path.clone(),
                        used_percent: (used_percent * 10.0).round() / 10.0,
                        stop_percent: self.thresholds.stop_percent,
                        resume_percent: self.thresholds.resume_percent,
                        since_ms: since,
                    })
                    .collect();
                let first = was.is_none();
                if was.as_ref().is_none_or(|(_, recorded)| *recorded != pauses) {
                    self.record(fjord, &pauses);
                }
                if first {
                    let notice = pause_notice(&pauses, true)
                        .unwrap_or_else(|| "tasks are not being claimed".into());
                    eprintln!("fjord: disk guard: {notice}; running tasks go on");
                    // On a thread of its own: a slow mail server must not hold the tasks'
                    // ends back.
                    let fjord = fjord.clone();
                    std::thread::spawn(move || fjord.notify_claims_paused(&notice));
                }
                self.paused = Some((since, pauses));
            }
        }
        self.paused.is_some()
    }

    /// Clears this dispatcher's pause from the state as it ends.
    pub(super) fn end(&mut self, fjord: &Fjord) {
        if self.paused.take().is_some() {
            self.record(fjord, &[]);
        }
    }

    fn record(&self, fjord: &Fjord, pauses: &[ClaimPause]) {
        // Not retried: on a full disk the state may refuse the write, and claims wait all the
        // same; the next look records it again.
        if let Err(e) = fjord.store().set_claim_pause(&self.owner, pauses) {
            super::warn("recording the disk guard's pause failed", &e);
        }
    }
}

/// The data dir's and every platform's file system with how full it is (a platform whose
/// directory is gone has none). Every server is this machine today.
fn file_systems(fjord: &Fjord) -> Vec<(String, f64)> {
    let mut paths = vec![fjord.data_dir().to_path_buf()];
    match fjord.store().platforms() {
        Ok(platforms) => paths.extend(platforms.into_iter().map(|p| p.path.as_path().into())),
        Err(e) => super::warn("the disk guard cannot list the platforms", &e),
    }
    paths
        .into_iter()
        .filter_map(|path| Some((path.display().to_string(), used_percent(&path)?)))
        .collect()
}

/// What people are told: "tasks are not being claimed: /srv/www is 93 % full (resumes below
/// 85 %)". Without `show_paths` (for those who may not see the servers) the paths are left
/// out. None when nothing holds claims back.
pub fn pause_notice(pauses: &[ClaimPause], show_paths: bool) -> Option<String> {
    let resume = pauses.iter().map(|p| p.resume_percent).min()?;
    let mut fullest: Vec<(&str, f64)> = Vec::new();
    for p in pauses {
        match fullest.iter_mut().find(|(path, _)| *path == p.path) {
            Some((_, used)) => *used = used.max(p.used_percent),
            None => fullest.push((&p.path, p.used_percent)),
        }
    }
    fullest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let what = if show_paths {
        fullest
            .iter()
            .map(|(path, used)| format!("{path} is {used:.0} % full"))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        format!("a file system is {:.0} % full", fullest[0].1)
    };
    Some(format!(
        "tasks are not being claimed: {what} (resumes below {resume} %)"
    ))
}

impl Fjord {
    /// The pauses of live dispatchers (a dead one's rows are left over, and ignored).
    pub fn claim_pauses(&self) -> Result<Vec<ClaimPause>> {
        let mut live = Vec::new();
        for pause in self.store().claim_pauses()? {
            let lock = self
                .run_dir()
                .join(format!("dispatcher-{}.lock", pause.owner));
            if FileLock::is_held(&lock)? {
                live.push(pause);
            }
        }
        Ok(live)
    }

    /// The notice of [`pause_notice`] for whoever may see every path.
    pub fn claim_pause_notice(&self) -> Result<Option<String>> {
        Ok(pause_notice(&self.claim_pauses()?, true))
    }
}

impl Acting<'_> {
    /// The live pauses, for whoever may see the tasks; the paths only for those who may see
    /// the servers (they name where platforms live).
    pub fn claim_pauses(&self) -> Result<Vec<ClaimPause>> {
        self.require(Action::ViewTasks)?;
        let show_paths = self.actor().may(Action::ViewServers);
        let mut pauses = self.fjord().claim_pauses()?;
        if !show_paths {
            for p in &mut pauses {
                p.path = "a file system".into();
            }
        }
        Ok(pauses)
    }

    /// The panel's banner: None when claims go on, or when the actor may not see the tasks.
    pub fn claim_pause_notice(&self) -> Result<Option<String>> {
        if !self.actor().may(Action::ViewTasks) {
            return Ok(None);
        }
        let show_paths = self.actor().may(Action::ViewServers);
        Ok(pause_notice(&self.fjord().claim_pauses()?, show_paths))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_stop_over_the_stop_line_and_resume_only_below_the_resume_line() {
        let t = DiskThresholds::default();
        // Claiming: only over the stop line stops.
        assert!(!t.holds_claims(false, &[]));
        assert!(!t.holds_claims(false, &[50.0, 90.0]));
        assert!(t.holds_claims(false, &[50.0, 90.1]));
        // Paused: between the lines stays paused; every file system below resume resumes.
        assert!(t.holds_claims(true, &[89.0]));
        assert!(t.holds_claims(true, &[10.0, 85.0]));
        assert!(!t.holds_claims(true, &[10.0, 84.9]));
        assert!(!t.holds_claims(true, &[]));
        // A hovering disk does not flap: 88 % stays as it was either way.
        assert!(!t.holds_claims(false, &[88.0]));
        assert!(t.holds_claims(true, &[88.0]));
    }

    #[test]
    fn thresholds_are_refused_unless_resume_is_below_stop_and_stop_at_most_100() {
        assert!(DiskThresholds::new(90, 85).is_ok());
        let off = DiskThresholds::new(100, 95).unwrap();
        assert!(!off.holds_claims(false, &[100.0]));
        let e = DiskThresholds::new(85, 90).unwrap_err().to_string();
        assert!(e.contains("90") && e.contains("below"), "{e}");
        assert!(DiskThresholds::new(90, 90).is_err());
        let e = DiskThresholds::new(101, 85).unwrap_err().to_string();
        assert!(e.contains("101") && e.contains("at most 100"), "{e}");
    }

    #[test]
    fn the_notice_names_the_fullest_file_systems_once_or_none() {
        let pause = |owner: &str, path: &str, used_percent| ClaimPause {
            owner: owner.into(),
            path: path.into(),
            used_percent,
            stop_percent: 90,
            resume_percent: 85,
            since_ms: 0,
        };
        assert_eq!(pause_notice(&[], true), None);
        let pauses = [
            pause("a", "/var/lib/fjord", 91.2),
            pause("a", "/srv/www", 93.0),
            pause("b", "/srv/www", 92.6),
        ];
        assert_eq!(
            pause_notice(&pauses, true).unwrap(),
            "tasks are not being claimed: /srv/www is 93 % full, /var/lib/fjord is 91 % full \
             (resumes below 85 %)"
        );
        assert_eq!(
            pause_notice(&pauses, false).unwrap(),
            "tasks are not being claimed: a file system is 93 % full (resumes below 85 %)"
        );
    }
}
