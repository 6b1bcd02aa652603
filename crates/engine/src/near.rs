//! "Did you mean": when a site, platform or server is not found by the name given, the
//! closest names of that kind, drawn only from the names the asker may see (the command line
//! sees everything; a client user of the panel or the API only its client's sites and the
//! platforms its client may use, so no name of another client's leaks through a typo).
//!
//! Lookups record what they missed ([`Missing::named`]) and suggest nothing: a front end
//! adds the suggestions, with the names of its asker ([`Fjord::with_near_names`],
//! `Acting::site` and its kin).

use std::fmt;

use crate::{Error, Fjord, Result};

/// The kinds of object people name on a command line or in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Site,
    Platform,
    Server,
}

impl NameKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::Site => "site",
            NameKind::Platform => "platform",
            NameKind::Server => "server",
        }
    }
}

/// Something looked for and not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What the message names: `site "shop.example"`, `task 12`.
    pub what: String,
    /// The name a lookup by name missed, and its kind.
    pub name: Option<(NameKind, String)>,
    /// The closest names the asker may see, best first (at most [`MAX_NEAR`]).
    pub near: Vec<String>,
}

/// The most names one "did you mean" offers.
pub const MAX_NEAR: usize = 3;

impl Missing {
    /// A lookup by name that found nothing.
    pub fn named(kind: NameKind, name: &str) -> Missing {
        Missing {
            what: format!("{} {name:?}", kind.as_str()),
            name: Some((kind, name.to_string())),
            near: Vec::new(),
        }
    }
}

impl From<String> for Missing {
    fn from(what: String) -> Missing {
        Missing {
            what,
            name: None,
            near: Vec::new(),
        }
    }
}

impl From<&str> for Missing {
    fn from(what: &str) -> Missing {
        what.to_string().into()
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} not found", self.what)?;
        match self.near.as_slice() {
            [] => Ok(()),
            [one] => write!(f, "; did you mean {one}?"),
            [init @ .., last] => write!(f, "; did you mean {} or {last}?", init.join(", ")),
        }
    }
}

/// The names closest to `typed`, best first, at most [`MAX_NEAR`]: those within a few edits
/// of it (a swap of two neighbours counts as one; one edit in a short name, up to three in a
/// long one), and host names whose first label is what was typed (`shop` for
/// `shop.example`).
pub fn closest<'a>(typed: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let typed = typed.to_lowercase();
    let allowed = (typed.chars().count() / 4).clamp(1, 3);
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .filter_map(|name| {
            let lower = name.to_lowercase();
            if lower == typed {
                return None;
            }
            if !typed.contains('.') && lower.split('.').next() == Some(typed.as_str()) {
                return Some((1, name));
            }
            let distance = strsim::damerau_levenshtein(&typed, &lower);
            (distance <= allowed).then_some((distance, name))
        })
        .collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(MAX_NEAR)
        .map(|(_, name)| name.to_string())
        .collect()
}

impl Error {
    /// This error with suggestions, if it is a name not found: the names closest to it
    /// among `names` of its kind (which must hold only names the asker may see). Any other
    /// error, or a failure to list the names, leaves it as it is.
    pub fn with_near_names(self, names: impl FnOnce(NameKind) -> Result<Vec<String>>) -> Error {
        match self {
            Error::NotFound(Missing {
                what,
                name: Some((kind, typed)),
                near: _,
            }) => {
                let near = names(kind)
                    .map(|names| closest(&typed, names.iter().map(String::as_str)))
                    .unwrap_or_default();
                Error::NotFound(Missing {
                    what,
                    name: Some((kind, typed)),
                    near,
                })
            }
            other => other,
        }
    }
}

impl Fjord {
    /// This error with the closest names of every site, platform or server, if it is a name
    /// not found: for the command line, which runs as root and sees everything.
    pub fn with_near_names(&self, e: Error) -> Error {
        e.with_near_names(|kind| self.names_of(kind, |_| true))
    }

    /// The names of every object of a kind (a site's aliases too: a site is found by any of
    /// its names) whose client `sees` allows.
    pub(crate) fn names_of(
        &self,
        kind: NameKind,
        sees: impl Fn(Option<i64>) -> bool,
    ) -> Result<Vec<String>> {
        Ok(match kind {
            NameKind::Site => self
                .store()
                .sites(None)?
                .into_iter()
                .filter(|s| sees(s.client_id))
                .flat_map(|s| {
                    std::iter::once(s.name.to_string())
                        .chain(s.aliases.iter().map(|a| a.to_string()))
                        .collect::<Vec<_>>()
                })
                .collect(),
            NameKind::Platform => self
                .platforms()?
                .into_iter()
                .map(|p| p.name.to_string())
                .collect(),
            NameKind::Server => self
                .servers()?
                .into_iter()
                .map(|s| s.name.to_string())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_names_a_few_edits_away_and_nothing_far() {
        let names = [
            "shop.example",
            "shop.example.org",
            "blog.example",
            "shops.example",
            "web",
            "web2",
        ];
        let near = |typed| closest(typed, names);
        assert_eq!(near("shpo.example"), ["shop.example", "shops.example"]);
        assert_eq!(near("shop.exmaple"), ["shop.example", "shops.example"]);
        assert_eq!(near("wbe"), ["web"]);
        assert_eq!(near("web3"), ["web", "web2"]);
        assert_eq!(near("shop"), ["shop.example", "shop.example.org"]);
        assert_eq!(near("SHOP.EXAMPEL"), ["shop.example", "shops.example"]);
        assert!(
            near("news.example").is_empty(),
            "{:?}",
            near("news.example")
        );
        assert!(near("x").is_empty());
        // The name itself is no suggestion.
        assert_eq!(closest("web", ["web"]), Vec::<String>::new());
    }

    #[test]
    fn at_most_three_names_are_offered_nearest_first() {
        let names = [
            "site11.example",
            "site13.example",
            "site21.example",
            "site12.example",
        ];
        assert_eq!(
            closest("site21.exmaple", names),
            ["site21.example", "site11.example", "site12.example"]
        );
    }

    #[test]
    fn the_message_offers_the_near_names() {
        let mut missing = Missing::named(NameKind::Site, "shpo.example");
        assert_eq!(missing.to_string(), r#"site "shpo.example" not found"#);
        missing.near = vec!["shop.example".into()];
        assert_eq!(
            missing.to_string(),
            r#"site "shpo.example" not found; did you mean shop.example?"#
        );
        missing.near = vec!["a".into(), "b".into(), "c".into()];
        assert_eq!(
            missing.to_string(),
            r#"site "shpo.example" not found; did you mean a, b or c?"#
        );
        assert_eq!(Missing::from("task 12").to_string(), "task 12 not found");
    }
}
