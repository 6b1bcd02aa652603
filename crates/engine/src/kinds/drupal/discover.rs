//! What a Drupal code base holds: its version, where it serves from, and its packages
//! (modules, themes, profiles), read from Drupal's own files (`.info`, `.info.yml`,
//! `.install`, `bootstrap.inc`, `Drupal.php`), never by running its code.

use host::Reads;
use std::path::{Path, PathBuf};

use model::WebRoot;

use crate::kinds::Package;

/// A Drupal code base, as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `7`, `8`, `9`, `10`, `11`…
    pub major: u32,
    pub version: String,
    /// Where it serves from inside the code base (composer builds: `web/`).
    pub web_root: Option<WebRoot>,
    /// The code base's own drush (`vendor/bin/drush`), when composer put one there.
    pub drush: Option<PathBuf>,
}

impl Layout {
    pub fn docroot(&self, code: &Path) -> PathBuf {
        WebRoot::docroot(code, self.web_root)
    }
}

/// Finds Drupal in `code` (or in its `web/` or `docroot/`).
pub fn layout(r: &dyn Reads, code: &Path) -> Option<Layout> {
    let roots = [None, Some(WebRoot::Web), Some(WebRoot::Docroot)];
    roots.into_iter().find_map(|web_root| {
        let docroot = WebRoot::docroot(code, web_root);
        let version = modern_version(r, &docroot).or_else(|| seven_version(r, &docroot))?;
        let major = version.split('.').next()?.parse().ok()?;
        let drush = [
            code.join("vendor/bin/drush"),
            docroot.join("vendor/bin/drush"),
        ]
        .into_iter()
        .find(|p| r.is_file(p));
        Some(Layout {
            major,
            version,
            web_root,
            drush,
        })
    })
}

/// Drupal 7: `define('VERSION', '7.98');` in `includes/bootstrap.inc`.
fn seven_version(r: &dyn Reads, docroot: &Path) -> Option<String> {
    let source = r.read_head(&docroot.join("includes/bootstrap.inc"), 1 << 20)?;
    source.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("define('VERSION',")?;
        quoted(rest.trim())
    })
}

/// Drupal 8 and later: `const VERSION = '10.1.5';` in `core/lib/Drupal.php`.
fn modern_version(r: &dyn Reads, docroot: &Path) -> Option<String> {
    let source = r.read_head(&docroot.join("core/lib/Drupal.php"), 1 << 20)?;
    source.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("const VERSION =")?;
        quoted(rest.trim())
    })
}

/// The contents of a leading `'…'` or `"…"`.
fn quoted(text: &str) -> Option<String> {
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &text[1..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// Where a code base keeps its packages, relative to its docroot, in Drupal's order of
/// precedence (the first of two packages of one name is the one Drupal uses).
pub fn package_dirs(major: u32) -> &'static [&'static str] {
    if major == 7 {
        &[
            "sites/all/modules",
            "sites/all/themes",
            "profiles",
            "modules",
            "themes",
        ]
    } else {
        &[
            "modules",
            "themes",
            "profiles",
            "sites/all/modules",
            "sites/all/themes",
            "core/profiles",
            "core/modules",
            "core/themes",
        ]
    }
}

/// Directories that hold no package Drupal would use on a site: test modules (Drupal skips
/// them outside its test runs), dependencies, dot dirs.
fn skipped(dir: &str) -> bool {
    dir.starts_with('.')
        || matches!(
            dir,
            "tests" | "node_modules" | "vendor" | "bower_components" | "files"
        )
}

const MAX_DEPTH: usize = 8;

/// The packages under `dirs` of `docroot`, the first of each name kept. `core_version`
/// stands in for `VERSION` (what core's own packages say).
pub fn packages(
    r: &dyn Reads,
    docroot: &Path,
    dirs: &[&str],
    major: u32,
    core_version: &str,
) -> Vec<Package> {
    let mut found: Vec<Package> = Vec::new();
    for dir in dirs {
        let mut here = Vec::new();
        walk(
            r,
            &docroot.join(dir),
            dir,
            0,
            major,
            core_version,
            &mut here,
        );
        here.sort_by(|a, b| a.name.cmp(&b.name));
        for package in here {
            if !found.iter().any(|p| p.name == package.name) {
                found.push(package);
            }
        }
    }
    found.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    found
}

fn walk(
    r: &dyn Reads,
    dir: &Path,
    rel: &str,
    depth: usize,
    major: u32,
    core: &str,
    out: &mut Vec<Package>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let suffix = if major == 7 { ".info" } else { ".info.yml" };
    for file in r.list_files(dir) {
        let Some(name) = file.strip_suffix(suffix) else {
            continue;
        };
        if !is_machine_name(name) {
            continue;
        }
        if let Some(package) = read_package(r, dir, rel, name, major, core) {
            out.push(package);
        }
    }
    for sub in r.list_subdirs(dir).unwrap_or_default() {
        if !skipped(&sub) {
            walk(
                r,
                &dir.join(&sub),
                &format!("{rel}/{sub}"),
                depth + 1,
                major,
                core,
                out,
            );
        }
    }
}

fn is_machine_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The `key = value` (7) or `key: value` (8+) pairs of an info file; the last of a key wins
/// (drupal.org's packaging appends `version` and `project` at the end).
pub fn info_values(text: &str, major: u32) -> Vec<(String, String)> {
    let separator = if major == 7 { '=' } else { ':' };
    text.lines()
        .filter(|l| !l.starts_with([' ', '\t', ';', '#', '-']))
        .filter_map(|line| {
            let (key, value) = line.split_once(separator)?;
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            let value = value.trim();
            // A YAML comment after the value.
            let value = match value.find(" #") {
                Some(i) if major != 7 && !value.starts_with(['\'', '"']) => value[..i].trim(),
                _ => value,
            };
            let value = quoted(value).unwrap_or_else(|| value.to_string());
            Some((key.to_string(), value))
        })
        .collect()
}

fn read_package(
    r: &dyn Reads,
    dir: &Path,
    rel: &str,
    name: &str,
    major: u32,
    core: &str,
) -> Option<Package> {
    let suffix = if major == 7 { "info" } else { "info.yml" };
    let text = r.read_head(&dir.join(format!("{name}.{suffix}")), 1 << 16)?;
    let values = info_values(&text, major);
    let get = |key: &str| {
        values
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let kind = if major == 7 {
        if r.is_file(&dir.join(format!("{name}.module"))) {
            "module"
        } else if r.is_file(&dir.join(format!("{name}.profile"))) {
            "profile"
        } else if get("engine").is_some() || rel.split('/').any(|c| c == "themes") {
            "theme"
        } else {
            return None;
        }
    } else {
        match get("type")?.as_str() {
            "module" => "module",
            "theme" => "theme",
            "profile" => "profile",
            "theme_engine" => "theme_engine",
            _ => return None,
        }
    };
    let in_core = if major == 7 {
        [
            "modules/",
            "themes/",
            "profiles/minimal",
            "profiles/standard",
            "profiles/testing",
        ]
        .iter()
        .any(|p| rel.starts_with(p))
    } else {
        rel.starts_with("core/")
    };
    let version = get("version").map(|v| if v == "VERSION" { core.to_string() } else { v });
    let version = version.or_else(|| in_core.then(|| core.to_string()));
    Some(Package {
        kind: kind.into(),
        name: name.to_string(),
        version,
        project: get("project").or_else(|| in_core.then(|| "drupal".to_string())),
        core: get("core_version_requirement").or_else(|| get("core")),
        schema: schema_in_code(r, dir, name),
        path: Some(rel.to_string()),
        site_local: false,
    })
}

/// The highest `hook_update_N` a package's `.install` file defines: the schema version its
/// code brings a database to.
pub fn schema_in_code(r: &dyn Reads, dir: &Path, name: &str) -> Option<i64> {
    let text = r.read_head(&dir.join(format!("{name}.install")), 8 << 20)?;
    let prefix = format!("function {name}_update_");
    text.lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix(&prefix)?;
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let after = rest[digits.len()..].trim_start();
            (!digits.is_empty() && after.starts_with('(')).then(|| digits.parse().ok())?
        })
        .max()
}
