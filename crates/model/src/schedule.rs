//! Backup schedules (5-field cron, UTC) and retention policies. Pure: the dispatcher supplies
//! the clock.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// A cron schedule: minute, hour, day of month, month, day of week (0 or 7 = Sunday), each
/// `*`, a number, a range `a-b`, a list `a,b`, or a step `*/n` / `a-b/n`. Read in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronSchedule {
    text: String,
    fields: [Vec<bool>; 5],
}

const RANGES: [(u32, u32, &str); 5] = [
    (0, 59, "minute"),
    (0, 23, "hour"),
    (1, 31, "day of month"),
    (1, 12, "month"),
    (0, 7, "day of week"),
];

impl CronSchedule {
    pub fn parse(input: &str) -> Result<CronSchedule, Invalid> {
        let fail = |rule: String| Err(Invalid::new("backup schedule", input, rule));
        let parts: Vec<&str> = input.split_whitespace().collect();
        if parts.len() != 5 {
            return fail(
                "must have 5 fields: minute hour day-of-month month day-of-week (UTC)".into(),
            );
        }
        let mut fields: [Vec<bool>; 5] = Default::default();
        for (i, part) in parts.iter().enumerate() {
            let (lo, hi, name) = RANGES[i];
            let mut set = vec![false; hi as usize + 1];
            for item in part.split(',') {
                let (range, step) = match item.split_once('/') {
                    Some((r, s)) => match s.parse::<u32>() {
                        Ok(s) if s > 0 => (r, s),
                        _ => return fail(format!("{name}: step {s:?} must be a positive number")),
                    },
                    None => (item, 1),
                };
                let (a, b) = if range == "*" {
                    (lo, hi)
                } else if let Some((a, b)) = range.split_once('-') {
                    match (a.parse::<u32>(), b.parse::<u32>()) {
                        (Ok(a), Ok(b)) if a <= b => (a, b),
                        _ => return fail(format!("{name}: {range:?} is not a range a-b")),
                    }
                } else {
                    match range.parse::<u32>() {
                        Ok(n) => (n, if step > 1 { hi } else { n }),
                        Err(_) => return fail(format!("{name}: {range:?} is not a number")),
                    }
                };
                if a < lo || b > hi {
                    return fail(format!("{name} must be within {lo}-{hi}"));
                }
                for v in (a..=b).step_by(step as usize) {
                    set[v as usize] = true;
                }
            }
            fields[i] = set;
        }
        // Sunday is both 0 and 7.
        if fields[4][7] {
            fields[4][0] = true;
        }
        let schedule = CronSchedule {
            text: parts.join(" "),
            fields,
        };
        if !schedule.ever_fires() {
            return fail(
                "never fires: none of its days of the month exists in its months \
                 (February has at most 29 days; April, June, September and November 30)"
                    .into(),
            );
        }
        Ok(schedule)
    }

    /// Whether some day matches: with the day of the week restricted, some day always does
    /// (either field may match); else a day of the month must exist in one of the months.
    fn ever_fires(&self) -> bool {
        const LONGEST: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let dow_any = self.fields[4].iter().all(|b| *b);
        if !dow_any {
            return true;
        }
        (1..=12).any(|m| {
            self.fields[3][m as usize]
                && (1..=LONGEST[m as usize]).any(|d| self.fields[2][d as usize])
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches(&self, minute_ms: i64) -> bool {
        let mins = minute_ms.div_euclid(60_000);
        let (minute, hour) = (
            mins.rem_euclid(60) as usize,
            mins.div_euclid(60).rem_euclid(24) as usize,
        );
        let days = mins.div_euclid(1440);
        let (_, month, day) = crate::time::civil(days);
        let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday.
        let dom_any = self.fields[2].iter().skip(1).all(|b| *b);
        let dow_any = self.fields[4].iter().all(|b| *b);
        // As in cron: when both day fields are restricted, either may match.
        let day_ok = match (dom_any, dow_any) {
            (false, false) => self.fields[2][day as usize] || self.fields[4][weekday],
            _ => self.fields[2][day as usize] && self.fields[4][weekday],
        };
        self.fields[0][minute] && self.fields[1][hour] && self.fields[3][month as usize] && day_ok
    }

    /// The first time the schedule fires strictly after `after_ms`, within about four years
    /// (a February 29th comes in four). Days and hours that cannot match are skipped whole.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        const MINUTE: i64 = 60_000;
        const HOUR: i64 = 60 * MINUTE;
        const DAY: i64 = 24 * HOUR;
        let mut t = (after_ms.div_euclid(MINUTE) + 1) * MINUTE;
        let limit = t + 4 * 366 * DAY;
        while t < limit {
            if !self.day_matches(t) {
                t = (t.div_euclid(DAY) + 1) * DAY;
            } else if !self.fields[1][t.div_euclid(HOUR).rem_euclid(24) as usize] {
                t = (t.div_euclid(HOUR) + 1) * HOUR;
            } else if self.matches(t) {
                return Some(t);
            } else {
                t += MINUTE;
            }
        }
        None
    }

    fn day_matches(&self, ms: i64) -> bool {
        let days = ms.div_euclid(86_400_000);
        let (_, month, day) = crate::time::civil(days);
        let weekday = (days + 4).rem_euclid(7) as usize;
        let dom_any = self.fields[2].iter().skip(1).all(|b| *b);
        let dow_any = self.fields[4].iter().all(|b| *b);
        let day_ok = match (dom_any, dow_any) {
            (false, false) => self.fields[2][day as usize] || self.fields[4][weekday],
            _ => self.fields[2][day as usize] && self.fields[4][weekday],
        };
        day_ok && self.fields[3][month as usize]
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
