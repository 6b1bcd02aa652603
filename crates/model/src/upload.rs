//! How large a file a site takes in one upload: one limit that nginx and PHP agree on.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// The largest file a site takes in one upload, in MiB. nginx takes request bodies up to the
/// limit plus [`UploadLimit::FORM_ALLOWANCE_MB`] (the form's other fields and the multipart
/// framing around the file), PHP's `post_max_size` is the same and its `upload_max_filesize`
/// the limit itself: a file of the limit is taken, a request well over it is refused by nginx
/// with 413 before PHP reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UploadLimit(u32);

impl UploadLimit {
    /// A site's limit when neither it nor its platform sets one.
    pub const DEFAULT: UploadLimit = UploadLimit(64);
    /// The most a site may take (a request body is held in the site's tmp dir while it is
    /// read).
    pub const MAX_MB: u32 = 4096;
    /// What a request body may carry beside the file.
    pub const FORM_ALLOWANCE_MB: u32 = 1;

    /// `64`, `64M`, `64MB`, `64MiB` (MiB) or `2G` (GiB); 1 MiB to 4 GiB.
    pub fn parse(input: &str) -> Result<UploadLimit, Invalid> {
        let rule = || {
            Invalid::new(
                "upload limit",
                input,
                format!(
                    "must be a whole number of MiB from 1 to {} (for example 64, 64M or 1G)",
                    Self::MAX_MB
                ),
            )
        };
        let trimmed = input.trim();
        let digits_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(digits_end);
        if number.is_empty() || number.len() > 7 {
            return Err(rule());
        }
        let number: u32 = number.parse().map_err(|_| rule())?;
        let factor = match unit.to_ascii_lowercase().as_str() {
            "" | "m" | "mb" | "mib" => 1,
            "g" | "gb" | "gib" => 1024,
            _ => return Err(rule()),
        };
        let mb = number.checked_mul(factor).ok_or_else(rule)?;
        UploadLimit::from_mb(mb).ok_or_else(rule)
    }

    /// A limit of `mb` MiB, if it is within the bounds (as read back from the state).
    pub fn from_mb(mb: u32) -> Option<UploadLimit> {
        (1..=Self::MAX_MB).contains(&mb).then_some(UploadLimit(mb))
    }

    pub fn mb(self) -> u32 {
        self.0
    }

    /// The largest request body (nginx's `client_max_body_size`, PHP's `post_max_size`), MiB.
    pub fn body_mb(self) -> u32 {
        self.0 + Self::FORM_ALLOWANCE_MB
    }

    /// A site's limit: its own, else its platform's, else [`UploadLimit::DEFAULT`].
    pub fn of(site: Option<UploadLimit>, platform: Option<UploadLimit>) -> UploadLimit {
        site.or(platform).unwrap_or(Self::DEFAULT)
    }
}

impl fmt::Display for UploadLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}M", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_mib_within_bounds() {
        for (input, mb) in [
            ("64", 64),
            ("64M", 64),
            ("64mb", 64),
            ("8MiB", 8),
            ("1G", 1024),
            ("4g", 4096),
            ("1", 1),
        ] {
            assert_eq!(UploadLimit::parse(input).unwrap().mb(), mb, "{input}");
        }
        for input in [
            "",
            "0",
            "4097",
            "5G",
            "-1",
            "1.5G",
            "64K",
            "64 M x",
            "M",
            "99999999999",
            "1e3",
            "64;",
            "８",
        ] {
            let err = UploadLimit::parse(input).unwrap_err();
            assert_eq!(err.field, "upload limit", "{input}");
            assert!(err.rule.contains("from 1 to 4096"), "{input}: {err}");
        }
        assert_eq!(UploadLimit::parse("64").unwrap().to_string(), "64M");
        assert_eq!(UploadLimit::parse("64").unwrap().body_mb(), 65);
    }

    #[test]
    fn a_sites_own_limit_wins_over_its_platforms_and_the_default() {
        let l = |mb| UploadLimit::from_mb(mb);
        assert_eq!(UploadLimit::of(l(8), l(16)), l(8).unwrap());
        assert_eq!(UploadLimit::of(None, l(16)), l(16).unwrap());
        assert_eq!(UploadLimit::of(None, None), UploadLimit::DEFAULT);
    }
}
