//! UTC times as fjord shows them (it stores Unix milliseconds), through jiff.

fn utc(ms: i64) -> Option<jiff::civil::DateTime> {
    let ts = jiff::Timestamp::from_millisecond(ms).ok()?;
    Some(ts.to_zoned(jiff::tz::TimeZone::UTC).datetime())
}

fn format(ms: i64, pattern: &str) -> String {
    utc(ms).map_or_else(
        || format!("(time {ms} ms)"),
        |t| t.strftime(pattern).to_string(),
    )
}

/// `2026-11-18 11:06:40`
pub fn utc_display(ms: i64) -> String {
    format(ms, "%Y-%m-%d %H:%M:%S")
}

/// `2026-11-18 11:06:40.123`: task log lines, where steps are often apart by less than a
/// second.
pub fn utc_display_ms(ms: i64) -> String {
    format!("{}.{:03}", utc_display(ms), ms.rem_euclid(1000))
}

/// `20261118T110640Z`, for file names that sort by time.
pub fn utc_stamp(ms: i64) -> String {
    format(ms, "%Y%m%dT%H%M%SZ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::utc_display(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc_display(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(super::utc_stamp(1_795_000_000_000), "20261118T110640Z");
        assert_eq!(super::utc_display(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(
            super::utc_display_ms(1_795_000_000_123),
            "2026-11-18 11:06:40.123"
        );
    }
}
