//! The site cron queue. Every dispatcher runs the crons that are due (never run first, then
//! the longest overdue), several at once, each as its site's user. A run is not a task: a
//! thousand sites' crons a day would drown the task list; each run's time and result are
//! recorded on its site instead (`fjord site show`).

use model::{Invalid, PlatformKind, Target};
use store::SiteCron;

use crate::{Error, Fjord, Result, kinds};

/// How often a site's cron runs unless it or the installation says otherwise.
pub const DEFAULT_CRON_INTERVAL_S: i64 = 3600;

const SETTING: &str = "cron_interval_s";

/// Parses an interval such as `90s`, `15m`, `2h` or `1d` (at least a minute, at most a week).
pub fn parse_interval(input: &str) -> Result<i64> {
    let invalid = || {
        Error::Invalid(Invalid::new(
            "cron interval",
            input,
            "must be a number with s, m, h or d (for example 15m), from 1m to 7d",
        ))
    };
    let split = input.len().saturating_sub(1);
    let (number, unit) = (input.get(..split).ok_or_else(invalid)?, &input[split..]);
    let n: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(invalid()),
    };
    if !(60..=7 * 86400).contains(&seconds) {
        return Err(invalid());
    }
    Ok(seconds)
}

/// The kinds whose sites have a cron.
fn cron_kinds() -> Vec<&'static str> {
    PlatformKind::ALL
        .into_iter()
        .filter(|k| kinds::of(*k).has_cron())
        .map(PlatformKind::as_str)
        .collect()
}

/// A run's output for the site's record: the lines where PHP says what went wrong (an
/// application may print a whole HTML error page before them), then the last lines.
fn summary(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("PHP ") || l.contains("Fatal error") || l.contains("Uncaught"))
        .take(3)
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    let mut picked: Vec<&str> = errors;
    for line in tail {
        if !picked.contains(line) {
            picked.push(line);
        }
    }
    picked.join("\n").chars().take(2000).collect()
}

impl Fjord {
    pub fn cron_default_interval(&self) -> Result<i64> {
        Ok(self
            .store()
            .setting(SETTING)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_CRON_INTERVAL_S))
    }

    pub fn set_cron_default_interval(&self, interval: &str) -> Result<()> {
        let seconds = parse_interval(interval)?;
        Ok(self
            .store()
            .set_setting(SETTING, Some(&seconds.to_string()))?)
    }

    /// A site's own interval (`default` follows the installation's); the next run moves to
    /// one interval from now.
    pub fn set_site_cron_interval(&self, name: &str, interval: &str) -> Result<SiteCron> {
        let site = self.site(name)?;
        let own = match interval {
            "default" => None,
            other => Some(parse_interval(other)?),
        };
        let every = own.unwrap_or(self.cron_default_interval()?);
        let next = store::now_ms() + every * 1000;
        self.store().set_site_cron(site.id, own, Some(next))?;
        Ok(self.store().site_cron(site.id)?)
    }

    pub fn site_cron(&self, name: &str) -> Result<SiteCron> {
        let site = self.site(name)?;
        Ok(self.store().site_cron(site.id)?)
    }

    /// Makes a site's cron due at once and wakes the dispatchers.
    pub fn run_cron_now(&self, name: &str) -> Result<SiteCron> {
        let site = self.site(name)?;
        let platform = self.store().platform(site.platform_id)?;
        if !kinds::of(platform.kind).has_cron() {
            return Err(Error::Refused(format!(
                "site {} is a {} site: it has no cron",
                site.name, platform.kind
            )));
        }
        if site.status != model::SiteStatus::Installed {
            return Err(Error::Refused(format!(
                "site {} is {}: its cron runs only while it is installed",
                site.name,
                site.status.as_str()
            )));
        }
        let cron = self.store().site_cron(site.id)?;
        self.store()
            .set_site_cron(site.id, cron.own_interval_s, None)?;
        self.notify_dispatchers();
        Ok(cron)
    }

    /// Runs the crons due at `now_ms` for dispatcher `owner`, at most `parallel` at once,
    /// until none is due; returns how many ran. A site that a task holds or waits for is
    /// skipped until it is done; a run holds its site as a task does (see
    /// `Store::take_due_cron`), so no task on the site is claimed until it is recorded.
    pub fn run_due_crons(&self, owner: &str, now_ms: i64, parallel: usize) -> Result<usize> {
        let kinds = cron_kinds();
        let default = self.cron_default_interval()?;
        let mut ran = 0;
        let mut skipped = std::collections::HashSet::new();
        loop {
            let due: Vec<i64> = self
                .store()
                .due_crons(now_ms, &kinds, parallel.max(1) + skipped.len())?
                .into_iter()
                .filter(|id| !skipped.contains(id))
                .take(parallel.max(1))
                .collect();
            if due.is_empty() {
                return Ok(ran);
            }
            let results: Vec<(i64, Result<bool>)> = std::thread::scope(|scope| {
                let handles: Vec<_> = due
                    .iter()
                    .map(|id| {
                        (
                            *id,
                            scope.spawn(move || self.run_site_cron(*id, default, owner)),
                        )
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|(id, h)| (id, h.join().unwrap_or(Ok(false))))
                    .collect()
            });
            for (id, result) in results {
                match result {
                    Ok(true) => ran += 1,
                    Ok(false) => {
                        skipped.insert(id);
                    }
                    Err(e) => {
                        skipped.insert(id);
                        tracing::warn!(site_id = id, error = %e, "the cron of site {id} could not run: {e}");
                    }
                }
            }
        }
    }

    /// One site's cron run; false if it was not this dispatcher's to run (taken by another,
    /// or a task is under way on the site).
    fn run_site_cron(&self, site_id: i64, default_interval: i64, owner: &str) -> Result<bool> {
        let store = self.store();
        let cron = store.site_cron(site_id)?;
        let started = store::now_ms();
        let every = cron.own_interval_s.unwrap_or(default_interval);
        if !store.take_due_cron(site_id, cron.next_at, started + every * 1000, owner)? {
            return Ok(false);
        }
        // From here the run holds the site: whatever happens, its outcome is recorded, which
        // ends the hold.
        let env = self.script_env();
        let outcome = (|| {
            let objects = self.objects(
                model::TaskKind::SiteVerify,
                Target::Site(site_id),
                &model::TaskArgs::None,
            )?;
            let app = env.site_app(&objects)?;
            let run = kinds::of(app.platform.kind)
                .cron(&app)
                .ok_or_else(|| Error::Refused("the site has no cron, or runs no PHP".into()))?;
            Ok::<String, Error>(run.run()?)
        })();
        let (ok, message) = match outcome {
            Ok(output) => (true, summary(&output)),
            Err(e) => (false, summary(&e.to_string())),
        };
        crate::dispatch::retry_transient(|| {
            store.record_cron(site_id, owner, started, ok, &message)
        })?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_read_with_their_unit_and_bounded() {
        assert_eq!(parse_interval("15m").unwrap(), 900);
        assert_eq!(parse_interval("2h").unwrap(), 7200);
        assert_eq!(parse_interval("1d").unwrap(), 86400);
        for bad in [
            "",
            "m",
            "15",
            "0m",
            "30s",
            "8d",
            "-5m",
            "1.5h",
            "15 m",
            "99999999999999999999h",
        ] {
            let err = parse_interval(bad).unwrap_err().to_string();
            assert!(err.contains("cron interval"), "{bad}: {err}");
        }
    }
}
