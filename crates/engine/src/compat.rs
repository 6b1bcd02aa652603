//! The migrate compatibility check: each package a site has enabled, compared with what the
//! target platform's code holds. A package the target lacks, or holds at a lower version or
//! a lower schema than the site's database is at, refuses the move (Aegir disables a missing
//! module silently; fjord never does). Packages in the site's own directory travel with it.

use std::cmp::Ordering;

use serde::Serialize;

use crate::kinds::Package;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The same version on both sides.
    Same,
    /// A newer version at the target: its database updates run after the move.
    Upgrade,
    /// Versions that cannot be ordered (development snapshots): allowed, shown.
    Changed,
    /// In the site's own directory: it moves with the site.
    TravelsWithSite,
    /// An older version at the target, or code whose schema is below the site's database:
    /// refused.
    Downgrade,
    /// Not in the target's code: refused, unless forced.
    Missing,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Upgrade => "upgrade",
            Verdict::Changed => "changed",
            Verdict::TravelsWithSite => "travels-with-site",
            Verdict::Downgrade => "downgrade",
            Verdict::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub kind: String,
    pub name: String,
    pub site_version: Option<String>,
    /// The schema version the site's database is at.
    pub site_schema: Option<i64>,
    pub target_version: Option<String>,
    /// The highest schema version the target's code knows.
    pub target_schema: Option<i64>,
    pub verdict: Verdict,
}

/// The whole check: a row per package the site has, and whether the move may go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub forced: bool,
}

impl Report {
    /// Why the move is refused, if it is: a downgrade always; a missing package unless
    /// forced.
    pub fn refusal(&self) -> Option<String> {
        let listed = |verdict: Verdict| -> Vec<&str> {
            self.rows
                .iter()
                .filter(|r| r.verdict == verdict)
                .map(|r| r.name.as_str())
                .collect()
        };
        let (down, missing) = (
            names(&listed(Verdict::Downgrade)),
            names(&listed(Verdict::Missing)),
        );
        let mut why = Vec::new();
        if !down.is_empty() {
            why.push(format!(
                "the target platform holds older code than the site runs for: {down} (a \
                 database cannot be moved back to older code)"
            ));
        }
        if !missing.is_empty() && !self.forced {
            why.push(format!(
                "the target platform lacks packages the site has enabled: {missing} (add them \
                 to the platform, or pass --force to move without them)"
            ));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }

    /// The report as a table, for the CLI and the task log.
    pub fn table(&self) -> String {
        let mut lines = vec![[
            "TYPE".to_string(),
            "NAME".into(),
            "SITE".into(),
            "TARGET".into(),
            "SCHEMA".into(),
            "VERDICT".into(),
        ]];
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let schema = |v: Option<i64>| v.map_or("-".to_string(), |n| n.to_string());
        for row in &self.rows {
            lines.push([
                row.kind.clone(),
                row.name.clone(),
                or_dash(&row.site_version),
                or_dash(&row.target_version),
                format!("{}→{}", schema(row.site_schema), schema(row.target_schema)),
                row.verdict.as_str().to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        lines
            .iter()
            .map(|l| {
                let cells: Vec<String> = l
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                cells.join("  ").trim_end().to_string() + "\n"
            })
            .collect()
    }
}

/// Names for a message: all of a few, the first ten of many.
fn names(list: &[&str]) -> String {
    const SHOWN: usize = 10;
    if list.len() <= SHOWN {
        return list.join(", ");
    }
    format!(
        "{} and {} more (see the table)",
        list[..SHOWN].join(", "),
        list.len() - SHOWN
    )
}

/// Compares the site's packages (as its verify recorded them) with the target's.
pub fn check(site: &[Package], target: &[Package], forced: bool) -> Report {
    let rows = site
        .iter()
        .map(|p| {
            let found = target.iter().find(|t| t.name == p.name);
            let verdict = match found {
                _ if p.site_local => Verdict::TravelsWithSite,
                None => Verdict::Missing,
                Some(t) => verdict(p, t),
            };
            Row {
                kind: p.kind.clone(),
                name: p.name.clone(),
                site_version: p.version.clone(),
                site_schema: p.schema,
                target_version: found.and_then(|t| t.version.clone()),
                target_schema: found.and_then(|t| t.schema),
                verdict,
            }
        })
        .collect();
    Report { rows, forced }
}

fn verdict(site: &Package, target: &Package) -> Verdict {
    // The database is ahead of the target's code: its updates cannot be undone.
    if let (Some(db), Some(code)) = (site.schema, target.schema)
        && code < db
    {
        return Verdict::Downgrade;
    }
    match (&site.version, &target.version) {
        (Some(a), Some(b)) if a == b => Verdict::Same,
        (Some(a), Some(b)) => match compare_versions(a, b) {
            Some(Ordering::Less) => Verdict::Upgrade,
            Some(Ordering::Greater) => Verdict::Downgrade,
            Some(Ordering::Equal) => Verdict::Same,
            None => Verdict::Changed,
        },
        (None, None) => Verdict::Same,
        _ => Verdict::Changed,
    }
}

/// A version as Drupal and WordPress write them: `7.98`, `10.1.5`, `7.x-2.3`, `8.x-1.0-beta2`,
/// `2.1.0-rc1`; `None` for what cannot be ordered (`1.x-dev`, a date).
fn parse_version(version: &str) -> Option<(Vec<u64>, u8, u64)> {
    // The core prefix of Drupal's contrib versions (7.x-, 8.x-) says nothing of the release.
    let version = match version.split_once(".x-") {
        Some((core, rest)) if core.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => version,
    };
    let (numbers, stage) = match version.split_once(['-', '+']) {
        Some((n, s)) => (n, s.to_ascii_lowercase()),
        None => (version, String::new()),
    };
    let numbers: Vec<u64> = numbers
        .split('.')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let (rank, n) = if stage.is_empty() {
        (4, 0)
    } else {
        let name: String = stage
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let n = stage[name.len()..].parse().unwrap_or(0);
        let rank = match name.as_str() {
            "alpha" => 1,
            "beta" => 2,
            "rc" => 3,
            _ => return None,
        };
        (rank, n)
    };
    Some((numbers, rank, n))
}

pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse_version(a)?, parse_version(b)?);
    let len = a.0.len().max(b.0.len());
    let pad = |v: &[u64]| {
        let mut v = v.to_vec();
        v.resize(len, 0);
        v
    };
    Some((pad(&a.0), a.1, a.2).cmp(&(pad(&b.0), b.1, b.2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, version: Option<&str>, schema: Option<i64>) -> Package {
        Package {
            schema,
            ..Package::named("module", name.into(), version.map(str::to_string))
        }
    }

    #[test]
    fn versions_order_as_releases_do() {
        let order = |a, b| compare_versions(a, b);
        assert_eq!(order("7.98", "7.103"), Some(Ordering::Less));
        assert_eq!(order("10.1.5", "10.1"), Some(Ordering::Greater));
        assert_eq!(order("7.x-2.3", "7.x-2.10"), Some(Ordering::Less));
        assert_eq!(order("8.x-1.0-beta2", "8.x-1.0"), Some(Ordering::Less));
        assert_eq!(order("2.1.0-rc1", "2.1.0-beta3"), Some(Ordering::Greater));
        assert_eq!(order("7.x-1.x-dev", "7.x-1.2"), None);
        assert_eq!(order("1.0", "1.0.0"), Some(Ordering::Equal));
    }

    #[test]
    fn each_verdict_on_constructed_cases() {
        let site = vec![
            package("node", Some("7.98"), Some(7016)),
            package("views", Some("7.x-3.20"), Some(7301)),
            package("token", Some("7.x-1.9"), Some(7001)),
            package("gone", Some("1.0"), None),
            package("pathauto", Some("7.x-1.3"), Some(7006)),
            package("devel", Some("7.x-1.x-dev"), None),
            Package {
                site_local: true,
                ..package("mysite", Some("1.0"), Some(7001))
            },
        ];
        let target = vec![
            package("node", Some("7.103"), Some(7016)),
            package("views", Some("7.x-3.20"), Some(7301)),
            package("token", Some("7.x-1.8"), Some(7001)),
            // Same version string, but older code than the site's database.
            package("pathauto", Some("7.x-1.3"), Some(7005)),
            package("devel", Some("7.x-1.7"), None),
        ];
        let report = check(&site, &target, false);
        let verdicts: Vec<(&str, Verdict)> = report
            .rows
            .iter()
            .map(|r| (r.name.as_str(), r.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("node", Verdict::Upgrade),
                ("views", Verdict::Same),
                ("token", Verdict::Downgrade),
                ("gone", Verdict::Missing),
                ("pathauto", Verdict::Downgrade),
                ("devel", Verdict::Changed),
                ("mysite", Verdict::TravelsWithSite),
            ]
        );
        let refusal = report.refusal().unwrap();
        assert!(refusal.contains("token, pathauto"), "{refusal}");
        assert!(
            refusal.contains("lacks packages the site has enabled: gone"),
            "{refusal}"
        );
        // --force lets a missing package go, never a downgrade.
        let forced = check(&site, &target, true).refusal().unwrap();
        assert!(!forced.contains("gone"), "{forced}");
        assert!(forced.contains("token"), "{forced}");
        // Without the downgrades, forced is allowed.
        let fine = check(&site[..1], &target, false);
        assert_eq!(fine.refusal(), None);
        assert!(check(&site[3..4], &target, true).refusal().is_none());
        assert!(report.table().contains("node"));
    }
}
