//! Which packages a Drupal site has enabled, and at which schema version, read from its
//! database: Drupal 7 keeps both in its `system` table; Drupal 8 and later in the
//! `core.extension` config object and the `system.schema` key-value collection, as
//! PHP-serialized values.

use host::{Reads, SiteDb, SiteDbRow};

use super::php_serialized::unserialize;

/// A package enabled on a site: its type, name and the schema version its database is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enabled {
    pub kind: String,
    pub name: String,
    pub schema: Option<i64>,
}

pub const SEVEN_QUERY: &str =
    "SELECT name, type, schema_version FROM system WHERE status = 1 ORDER BY name";
pub const EXTENSION_QUERY: &str =
    "SELECT data FROM config WHERE collection = '' AND name = 'core.extension'";
pub const SCHEMA_QUERY: &str =
    "SELECT name, value FROM key_value WHERE collection = 'system.schema' ORDER BY name";
/// The same on PostgreSQL, where Drupal keeps these values in `bytea` columns.
pub const PG_EXTENSION_QUERY: &str = "SELECT convert_from(data, 'UTF8') FROM config \
     WHERE collection = '' AND name = 'core.extension'";
pub const PG_SCHEMA_QUERY: &str = "SELECT name, convert_from(value, 'UTF8') FROM key_value \
     WHERE collection = 'system.schema' ORDER BY name";

/// More packages than any Drupal site enables; the rest of a longer answer is not read.
const MOST_PACKAGES: usize = 5_000;

/// Reads them from the site's database. The site wrote what comes back, so only what is
/// shaped like a package is kept: a Drupal machine name (`[a-z][a-z0-9_]*`, at most 128
/// characters) of a kind fjord knows.
pub fn enabled(reads: &dyn Reads, db: &SiteDb, major: u32) -> Result<Vec<Enabled>, String> {
    let rows = |sql: &str| reads.site_db_rows(db, sql).map_err(|e| e.to_string());
    let mut enabled = if major == 7 {
        from_system_rows(&rows(SEVEN_QUERY)?)
    } else if db.is_postgresql() {
        from_config_rows(&rows(PG_EXTENSION_QUERY)?, &rows(PG_SCHEMA_QUERY)?)?
    } else {
        from_config_rows(&rows(EXTENSION_QUERY)?, &rows(SCHEMA_QUERY)?)?
    };
    enabled.retain(|e| is_machine_name(&e.name) && KINDS.contains(&e.kind.as_str()));
    enabled.truncate(MOST_PACKAGES);
    Ok(enabled)
}

const KINDS: [&str; 4] = ["module", "theme", "profile", "theme_engine"];

fn is_machine_name(name: &str) -> bool {
    name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn text(row: &SiteDbRow, i: usize) -> Option<String> {
    row.get(i)?
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Drupal 7's `system` rows: name, type, schema_version (-1: never installed).
pub fn from_system_rows(rows: &[SiteDbRow]) -> Vec<Enabled> {
    rows.iter()
        .filter_map(|row| {
            let name = text(row, 0)?;
            let kind = text(row, 1)?;
            let schema = text(row, 2)
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|s| *s >= 0);
            Some(Enabled { kind, name, schema })
        })
        .collect()
}

/// Drupal 8+: `core.extension` (modules with weights, themes, the install profile) and each
/// module's `system.schema` entry.
pub fn from_config_rows(
    extension: &[SiteDbRow],
    schema: &[SiteDbRow],
) -> Result<Vec<Enabled>, String> {
    let data = extension
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .ok_or("the site's database has no core.extension config")?;
    let config = unserialize(&data).map_err(|e| format!("core.extension: {e}"))?;
    let schema_of = |name: &str| {
        schema.iter().find_map(|row| {
            (text(row, 0)? == name)
                .then(|| row.get(1)?.as_ref().and_then(|v| unserialize(v).ok()))
                .flatten()
                .and_then(|v| v.as_int())
        })
    };
    let profile = config
        .get("profile")
        .and_then(|p| p.as_str())
        .map(str::to_string);
    let mut out = Vec::new();
    for (section, kind) in [("module", "module"), ("theme", "theme")] {
        let Some(entries) = config.get(section) else {
            continue;
        };
        for (key, _) in entries.entries() {
            let Some(name) = key.key_text() else {
                continue;
            };
            let kind = if kind == "module" && Some(&name) == profile.as_ref() {
                "profile"
            } else {
                kind
            };
            out.push(Enabled {
                kind: kind.to_string(),
                schema: if kind == "theme" {
                    None
                } else {
                    schema_of(&name)
                },
                name,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
