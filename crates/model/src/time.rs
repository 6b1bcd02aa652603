//! UTC calendar formatting without a date crate (fjord stores Unix milliseconds).

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): Howard Hinnant's
/// `civil_from_days`.
pub(crate) fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn parts(ms: i64) -> (i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2026-11-18 11:06:40`
pub fn utc_display(ms: i64) -> String {
    let (y, m, d, h, min, s) = parts(ms);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02}")
}

/// `2026-11-18 11:06:40.123`: task log lines, where steps are often apart by less than a
/// second.
pub fn utc_display_ms(ms: i64) -> String {
    format!("{}.{:03}", utc_display(ms), ms.rem_euclid(1000))
}

/// `20261118T110640Z`, for file names that sort by time.
pub fn utc_stamp(ms: i64) -> String {
    let (y, m, d, h, min, s) = parts(ms);
    format!("{y:04}{m:02}{d:02}T{h:02}{min:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::utc_display(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc_display(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(super::utc_stamp(1_795_000_000_000), "20261118T110640Z");
        assert_eq!(super::utc_display(951_782_400_000), "2000-02-29 00:00:00");
    }
}
