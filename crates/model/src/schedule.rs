//! Backup schedules (5-field cron, UTC) and retention policies. Pure: the dispatcher supplies
//! the clock.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// A cron schedule: minute, hour, day of month, month, day of week (0 or 7 = Sunday), each
/// `*`, a number, a range `a-b`, a list `a,b`, or a step `*/n` / `a-b/n` (and croner's
/// extensions: names, `L`, `#`, `W`). Read in UTC; as in Vixie cron, when both day fields are
/// restricted either may match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronSchedule {
    text: String,
    cron: croner::Cron,
}

impl CronSchedule {
    pub fn parse(input: &str) -> Result<CronSchedule, Invalid> {
        let fail = |rule: String| Err(Invalid::new("backup schedule", input, rule));
        let parts: Vec<&str> = input.split_whitespace().collect();
        if parts.len() != 5 {
            return fail(
                "must have 5 fields: minute hour day-of-month month day-of-week (UTC)".into(),
            );
        }
        let text = parts.join(" ");
        let cron = match croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(&text)
        {
            Ok(cron) => cron,
            Err(e) => return fail(e.to_string()),
        };
        let schedule = CronSchedule { text, cron };
        // From any time on it fires again, or never: a search from a fixed date tells.
        if schedule.next_after(946_684_800_000).is_none() {
            return fail(
                "never fires: none of its days of the month exists in its months \
                 (February has at most 29 days; April, June, September and November 30)"
                    .into(),
            );
        }
        Ok(schedule)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time the schedule fires strictly after `after_ms` (UTC).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let utc = jiff::tz::TimeZone::UTC;
        let after = jiff::Timestamp::from_millisecond(after_ms).ok()?;
        let civil = after.to_zoned(utc.clone()).datetime();
        let next = self.cron.find_next_occurrence(&civil, false).ok()?;
        Some(next.to_zoned(utc).ok()?.timestamp().as_millisecond())
    }
}

impl TryFrom<String> for CronSchedule {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        CronSchedule::parse(&s)
    }
}

impl From<CronSchedule> for String {
    fn from(c: CronSchedule) -> String {
        c.text
    }
}

/// Which backups to keep: the newest `last`, plus the newest of each of the last `daily`
/// days and of each of the last `weekly` weeks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub last: u32,
    pub daily: u32,
    pub weekly: u32,
}

impl Retention {
    pub fn parse(input: &str) -> Result<Retention, Invalid> {
        let mut r = Retention {
            last: 0,
            daily: 0,
            weekly: 0,
        };
        for pair in input.split(',').filter(|p| !p.is_empty()) {
            let fail = || {
                Invalid::new(
                    "retention",
                    input,
                    "give last=N,daily=D,weekly=W (each optional, N ≥ 1 in all)",
                )
            };
            let (key, value) = pair.split_once('=').ok_or_else(fail)?;
            let value: u32 = value.parse().map_err(|_| fail())?;
            match key {
                "last" => r.last = value,
                "daily" => r.daily = value,
                "weekly" => r.weekly = value,
                _ => return Err(fail()),
            }
        }
        const MOST: u32 = 100_000;
        if [r.last, r.daily, r.weekly].iter().any(|n| *n > MOST) {
            return Err(Invalid::new(
                "retention",
                input,
                format!("each count is at most {MOST}"),
            ));
        }
        if r.last == 0 && r.daily == 0 && r.weekly == 0 {
            return Err(Invalid::new(
                "retention",
                input,
                "must keep at least one backup (last=1 or more)",
            ));
        }
        Ok(r)
    }

    /// Of `backups` (id, created at ms), the ids to delete at `now_ms`.
    pub fn prunable(&self, backups: &[(i64, i64)], now_ms: i64) -> Vec<i64> {
        let mut sorted = backups.to_vec();
        sorted.sort_by_key(|(id, at)| std::cmp::Reverse((*at, *id)));
        let mut keep = std::collections::BTreeSet::new();
        keep.extend(sorted.iter().take(self.last as usize).map(|(id, _)| *id));
        let today = now_ms.div_euclid(86_400_000);
        let mut seen_days = std::collections::BTreeSet::new();
        let mut seen_weeks = std::collections::BTreeSet::new();
        for (id, at) in &sorted {
            let day = at.div_euclid(86_400_000);
            if today - day < i64::from(self.daily) && seen_days.insert(day) {
                keep.insert(*id);
            }
            // Weeks start on Monday (1970-01-05 was a Monday).
            let week = (day - 4).div_euclid(7);
            let this_week = (today - 4).div_euclid(7);
            if this_week - week < i64::from(self.weekly) && seen_weeks.insert(week) {
                keep.insert(*id);
            }
        }
        sorted
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !keep.contains(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    // 2026-11-18 11:06:40 UTC, a Wednesday.
    const NOW: i64 = 1_795_000_000_000;

    #[test]
    fn next_fire_times() {
        let daily = CronSchedule::parse("0 3 * * *").unwrap();
        assert_eq!(
            crate::time::utc_display(daily.next_after(NOW).unwrap()),
            "2026-11-19 03:00:00"
        );
        let every_15 = CronSchedule::parse("*/15 * * * *").unwrap();
        assert_eq!(
            crate::time::utc_display(every_15.next_after(NOW).unwrap()),
            "2026-11-18 11:15:00"
        );
        let sundays = CronSchedule::parse("30 2 * * 7").unwrap();
        assert_eq!(
            crate::time::utc_display(sundays.next_after(NOW).unwrap()),
            "2026-11-22 02:30:00"
        );
        let first_of_month = CronSchedule::parse("0 0 1 * *").unwrap();
        assert_eq!(
            crate::time::utc_display(first_of_month.next_after(NOW).unwrap()),
            "2026-12-01 00:00:00"
        );
        let leap_day = CronSchedule::parse("0 12 29 2 *").unwrap();
        assert_eq!(
            crate::time::utc_display(leap_day.next_after(NOW).unwrap()),
            "2028-02-29 12:00:00"
        );
        let friday_13th_or_mondays = CronSchedule::parse("0 0 13 * 1").unwrap();
        assert_eq!(
            crate::time::utc_display(friday_13th_or_mondays.next_after(NOW).unwrap()),
            "2026-11-23 00:00:00"
        );
    }

    #[test]
    fn schedules_that_never_fire_are_refused() {
        for never in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "* * 30-31 2 *"] {
            let error = CronSchedule::parse(never).unwrap_err().to_string();
            assert!(error.contains("never fires"), "{never}: {error}");
        }
        // Restricted weekdays fire on those days whatever the day of the month.
        assert!(CronSchedule::parse("0 0 30 2 1").is_ok());
    }

    #[test]
    fn retention_counts_are_bounded_not_overflowed() {
        let max = u32::MAX.to_string();
        let error = Retention::parse(&format!("last={max},daily={max},weekly=2"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("at most"), "{error}");
    }

    #[test]
    fn bad_schedules() {
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(CronSchedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retention_keeps_last_daily_and_weekly() {
        // One backup a day for 30 days, newest first by id.
        let backups: Vec<(i64, i64)> = (0..30).map(|i| (100 - i, NOW - i * DAY)).collect();
        let prune = Retention {
            last: 3,
            daily: 7,
            weekly: 0,
        }
        .prunable(&backups, NOW);
        assert_eq!(
            backups.len() - prune.len(),
            7,
            "7 daily (which include the last 3)"
        );
        let prune = Retention {
            last: 2,
            daily: 0,
            weekly: 4,
        }
        .prunable(&backups, NOW);
        let kept: Vec<i64> = backups
            .iter()
            .map(|b| b.0)
            .filter(|id| !prune.contains(id))
            .collect();
        assert_eq!(
            kept.len(),
            2 + 3,
            "the last 2 (this week) plus the newest of 3 earlier weeks: {kept:?}"
        );
        assert!(Retention::parse("last=0").is_err());
        assert_eq!(
            Retention::parse("last=7,weekly=4").unwrap(),
            Retention {
                last: 7,
                daily: 0,
                weekly: 4
            }
        );
    }
}
