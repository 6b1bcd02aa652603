use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// An absolute, normalized path that is safe to write into config files unquoted and to use
/// as a platform root: no `.` or `..` components, no doubled or trailing slashes, and only
/// characters that no config syntax gives a meaning to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AbsPath(String);

pub const PATH_MAX: usize = 1024;

impl AbsPath {
    pub fn parse(field: &'static str, input: &str) -> Result<AbsPath, Invalid> {
        let fail = |rule: &str| Err(Invalid::new(field, input, rule));
        if input.is_empty() {
            return fail("must not be empty");
        }
        if input.len() > PATH_MAX {
            return fail(&format!("must be at most {PATH_MAX} bytes"));
        }
        if let Some(c) = input.chars().find(|c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@'))
        }) {
            return fail(&format!(
                "may contain only ASCII letters, digits and / . _ - + @ (found {c:?})"
            ));
        }
        if !input.starts_with('/') {
            return fail("must be absolute (start with /)");
        }
        if input == "/" {
            return fail("must not be the root directory");
        }
        if input.ends_with('/') {
            return fail("must not end with /");
        }
        for component in input[1..].split('/') {
            match component {
                "" => return fail("must not contain an empty component (//)"),
                "." | ".." => return fail("must not contain . or .. components"),
                c if c.starts_with('-') => return fail("no component may start with '-'"),
                _ => {}
            }
        }
        Ok(AbsPath(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Why this path cannot hold sites, if it is a system directory: one of the machine's
    /// own trees (or inside one), or a top-level directory that holds more than a platform.
    pub fn system_dir(path: &Path) -> Option<String> {
        const SYSTEM_TREES: [&str; 12] = [
            "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot",
            "/dev", "/proc", "/sys",
        ];
        const NOT_THEMSELVES: [&str; 13] = [
            "/", "/var", "/var/lib", "/var/www", "/home", "/srv", "/opt", "/tmp", "/root", "/mnt",
            "/media", "/run", "/var/tmp",
        ];
        if let Some(tree) = SYSTEM_TREES.iter().find(|t| path.starts_with(t)) {
            return Some(format!("must not be in the system directory {tree}"));
        }
        if path.starts_with("/run") {
            return Some("must not be in /run (emptied at boot)".into());
        }
        NOT_THEMSELVES
            .iter()
            .find(|t| path == Path::new(t))
            .map(|t| format!("must be a directory of its own, not {t} itself"))
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    pub fn join(&self, rest: &str) -> PathBuf {
        Path::new(&self.0).join(rest)
    }

    /// True when `self` is `other` or lies below it.
    pub fn is_within(&self, other: &AbsPath) -> bool {
        self.0 == other.0 || self.0.starts_with(&format!("{}/", other.0))
    }
}

impl fmt::Display for AbsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in ["/srv/www", "/var/aegir/platforms/d10-1.2", "/a"] {
            assert!(AbsPath::parse("path", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/",
            "srv",
            "/srv/",
            "/srv//x",
            "/srv/../etc",
            "/./x",
            "/a b",
            "/a;b",
            "/-x",
        ] {
            assert!(AbsPath::parse("path", bad).is_err(), "{bad}");
        }
        let a = AbsPath::parse("p", "/srv/a").unwrap();
        assert!(a.is_within(&AbsPath::parse("p", "/srv").unwrap()));
        assert!(!a.is_within(&AbsPath::parse("p", "/sr").unwrap()));
    }
}
