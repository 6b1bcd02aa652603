use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// A site's URL host or one of its aliases: lowercase, ASCII, internationalized names stored as
/// punycode (`xn--…`), RFC 1123 labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hostname(String);

pub const HOSTNAME_MAX: usize = 253;
pub const LABEL_MAX: usize = 63;

impl Hostname {
    pub fn parse(field: &'static str, input: &str) -> Result<Hostname, Invalid> {
        let fail = |rule: &str| Err(Invalid::new(field, input, rule));
        if input.is_empty() {
            return fail("must not be empty");
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return fail(&format!(
                "must not contain spaces or control characters (found {c:?})"
            ));
        }
        if input.contains("://") || input.contains('/') {
            return fail("is a host name, not a URL: give it without scheme or path");
        }
        if let Some(c) = input
            .chars()
            .find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
        {
            return fail(&format!(
                "may contain only letters, digits, '-' and '.' (found {c:?})"
            ));
        }
        if input.starts_with('.') || input.ends_with('.') {
            return fail("must not start or end with a dot");
        }
        let lower = input.to_lowercase();
        let ascii = if lower.is_ascii() {
            lower.clone()
        } else {
            check_look_alikes(field, input, &lower)?;
            let ascii = idna::domain_to_ascii_strict(&lower).map_err(|_| {
                Invalid::new(
                    field,
                    input,
                    "is not a valid internationalized domain name (UTS 46)",
                )
            })?;
            // IDNA silently maps some characters to others (fullwidth letters, ideographic
            // dots, ligatures, invisible joiners). A name that does not survive the round trip
            // unchanged looks like one name and is another, so it is refused.
            let (back, errors) = idna::domain_to_unicode(&ascii);
            if errors.is_err() || back != lower {
                return fail(
                    "contains characters that IDNA maps to other characters \
                     (look-alikes such as fullwidth forms or invisible characters)",
                );
            }
            ascii
        };
        if ascii.len() > HOSTNAME_MAX {
            return fail(&format!(
                "must be at most {HOSTNAME_MAX} characters in its ASCII form"
            ));
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        for label in &labels {
            if label.is_empty() {
                return fail("must not contain an empty label (..)");
            }
            if label.len() > LABEL_MAX {
                return fail(&format!(
                    "each label must be at most {LABEL_MAX} characters"
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return fail("labels must not start or end with '-'");
            }
            if label.len() >= 4 && &label[2..4] == "--" && !label.starts_with("xn--") {
                return fail(
                    "labels must not have '--' in 3rd and 4th position unless they are xn-- (punycode)",
                );
            }
        }
        // A name given in punycode must be exactly what its Unicode form encodes to, and that
        // form must pass every rule above (look-alikes included).
        if lower.is_ascii() && labels.iter().any(|l| l.starts_with("xn--")) {
            let (unicode, errors) = idna::domain_to_unicode(&ascii);
            let canonical = errors.is_ok()
                && unicode != ascii
                && Hostname::parse(field, &unicode).is_ok_and(|h| h.0 == ascii);
            if !canonical {
                return fail(
                    "contains an xn-- label that is not the canonical punycode of a valid name",
                );
            }
        }
        let tld = labels[labels.len() - 1];
        if tld.bytes().all(|b| b.is_ascii_digit()) {
            return fail("must not be an IP address or end in a numeric label");
        }
        if tld == "invalid" {
            return fail(
                "the .invalid top-level domain is reserved (RFC 6761) and used by fjord itself",
            );
        }
        Ok(Hostname(ascii))
    }

    /// Why this name is not a public host name, if it is not: a name whose answer is decided
    /// on this machine or its network, not by the public DNS, so that claiming it catches
    /// requests meant for something else (the machine's own services, a neighbour on the
    /// LAN). Names reserved for tests and documentation (`.test`, `.example`, RFC 6761 §6.2
    /// and §6.5) resolve nowhere and catch nothing, so they stay allowed; IP literals and
    /// `.invalid` never parse at all.
    pub fn private_use(&self) -> Option<&'static str> {
        let name = self.0.as_str();
        let tld = name.rsplit('.').next().unwrap_or(name);
        if name == "localhost" || tld == "localhost" {
            Some("localhost and *.localhost name this machine's loopback (RFC 6761 §6.3)")
        } else if !name.contains('.') {
            Some(
                "a single label is not a public name: resolvers complete it with the local search domains",
            )
        } else if tld == "local" {
            Some("*.local names are answered by multicast DNS on the local link (RFC 6762)")
        } else if tld == "internal" {
            Some("*.internal is reserved for private networks (ICANN, 2024)")
        } else if name == "home.arpa" || name.ends_with(".home.arpa") {
            Some("*.home.arpa names a home network (RFC 8375)")
        } else if tld == "arpa" {
            Some("*.arpa holds the DNS's own infrastructure (reverse lookups), not sites")
        } else if tld == "onion" {
            Some("*.onion names are Tor's, not the DNS's (RFC 7686)")
        } else if tld == "alt" {
            Some("*.alt is reserved for names outside the DNS (RFC 9476)")
        } else {
            None
        }
    }

    /// Refuses a name that is not a public host name ([`Hostname::private_use`]).
    pub fn check_public(&self, field: &'static str) -> Result<(), Invalid> {
        match self.private_use() {
            Some(why) => Err(Invalid::new(
                field,
                &self.0,
                format!(
                    "is not a public host name: {why}; only an administrator may claim it \
                     (--allow-private-name)"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The stored, ASCII form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as people read it: `xn--` labels decoded.
    pub fn to_unicode(&self) -> String {
        idna::domain_to_unicode(&self.0).0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Letters of scripts that have characters indistinguishable from Latin ones. A label that
/// mixes them with Latin letters is how phishing names are built ("pаypal" with a Cyrillic а).
fn is_latin_look_alike_script(c: char) -> bool {
    matches!(c as u32,
        0x0370..=0x03FF   // Greek
        | 0x0400..=0x052F // Cyrillic
        | 0x0530..=0x058F // Armenian
        | 0x13A0..=0x13FF // Cherokee
        | 0x1D00..=0x1DBF // phonetic extensions, small capitals
        | 0x2100..=0x214F // letterlike symbols (K as Kelvin, ℮)
    )
}

fn check_look_alikes(field: &'static str, input: &str, lower: &str) -> Result<(), Invalid> {
    if let Some(c) = lower
        .chars()
        .find(|c| !c.is_ascii() && !c.is_alphanumeric())
    {
        return Err(Invalid::new(
            field,
            input,
            format!(
                "contains {c:?} (U+{:04X}), which is not a letter or digit",
                c as u32
            ),
        ));
    }
    for label in lower.split('.') {
        let has_latin = label.chars().any(|c| c.is_ascii_alphabetic());
        if has_latin && label.chars().any(is_latin_look_alike_script) {
            return Err(Invalid::new(
                field,
                input,
                format!(
                    "label {label:?} mixes Latin letters with look-alike letters of another script"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a site's alias list against its main name: no alias twice, none equal to the main
/// name. Uniqueness across sites needs the state and is checked by the engine.
pub fn validate_aliases(main: &Hostname, aliases: &[Hostname]) -> Result<(), Invalid> {
    let mut seen = BTreeSet::new();
    for alias in aliases {
        if alias == main {
            return Err(Invalid::new(
                "alias",
                alias.as_str(),
                "is the site's own main name",
            ));
        }
        if !seen.insert(alias) {
            return Err(Invalid::new(
                "alias",
                alias.as_str(),
                "is given more than once",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        Hostname::parse("host name", s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .0
    }

    #[test]
    fn accepts_and_normalizes() {
        assert_eq!(ok("Example.COM"), "example.com");
        assert_eq!(ok("www.example.com"), "www.example.com");
        assert_eq!(ok("bücher.example"), "xn--bcher-kva.example");
        assert_eq!(ok("xn--bcher-kva.example"), "xn--bcher-kva.example");
        assert_eq!(ok("пример.рф"), "xn--e1afmkfd.xn--p1ai");
        assert_eq!(ok("localhost"), "localhost");
        assert_eq!(ok(&format!("{}.com", "a".repeat(63))).len(), 67);
    }

    #[test]
    fn refuses() {
        let long = format!("{}.com", "a".repeat(64));
        let total = vec!["a".repeat(60); 5].join(".");
        for bad in [
            "",
            " ",
            "a b.com",
            "a\nb.com",
            "a\0.com",
            ".a.com",
            "a.com.",
            "a..com",
            "-a.com",
            "a-.com",
            "a_b.com",
            "a;b.com",
            "a{b}.com",
            "$x.com",
            "\"a.com",
            "http://a.com",
            "a.com/x",
            "1.2.3.4",
            "ab--cd.com",
            "xn--zz.com",
            "xn--zz-invalid.example",
            "pаypal.com",
            "ｅxample.com",
            "a\u{200b}b.com",
            "x.invalid",
            &long,
            &total,
        ] {
            let e = Hostname::parse("host name", bad).expect_err(bad);
            assert!(e.to_string().starts_with("invalid host name"), "{e}");
        }
    }

    #[test]
    fn names_a_machine_or_its_network_decides_are_not_public() {
        for private in [
            "localhost",
            "LocalHost",
            "a.localhost",
            "x.y.localhost",
            "intranet",
            "printer.local",
            "db.internal",
            "home.arpa",
            "nas.home.arpa",
            "4.3.2.1.in-addr.arpa",
            "abc.onion",
            "x.alt",
        ] {
            let host = Hostname::parse("alias", private).unwrap();
            let e = host.check_public("alias").expect_err(private);
            assert!(e.to_string().contains("is not a public host name"), "{e}");
        }
        for public in [
            "example.com",
            "a.example",
            "shop.d7.test",
            "localhost.example.com",
            "local.example",
            "xn--bcher-kva.example",
            "arpa.example",
        ] {
            let host = Hostname::parse("alias", public).unwrap();
            assert_eq!(host.private_use(), None, "{public}");
        }
    }

    #[test]
    fn aliases() {
        let main = Hostname::parse("h", "a.com").unwrap();
        let b = Hostname::parse("h", "b.com").unwrap();
        assert!(validate_aliases(&main, std::slice::from_ref(&b)).is_ok());
        assert!(validate_aliases(&main, &[b.clone(), b]).is_err());
        assert!(validate_aliases(&main, std::slice::from_ref(&main)).is_err());
    }
}
