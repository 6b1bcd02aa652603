use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// The name of a server, platform or client: what users type on the command line and what
/// fjord uses in file names, so it is kept to a conservative alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(String);

pub const NAME_MAX: usize = 64;

impl Name {
    pub fn parse(field: &'static str, input: &str) -> Result<Name, Invalid> {
        let fail = |rule: &str| Err(Invalid::new(field, input, rule));
        if input.is_empty() {
            return fail("must not be empty");
        }
        if input.len() > NAME_MAX {
            return fail(&format!("must be at most {NAME_MAX} characters"));
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return fail(&format!(
                "may contain only lowercase letters a-z, digits, '-' and '_' (found {c:?})"
            ));
        }
        let first = input.as_bytes()[0];
        let last = input.as_bytes()[input.len() - 1];
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return fail("must start and end with a letter or digit");
        }
        Ok(Name(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "web-1", "prod_d10", "0"] {
            assert!(Name::parse("name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a b",
            "a/b",
            "a.b",
            "ä",
            &"x".repeat(65),
        ] {
            assert!(Name::parse("name", bad).is_err(), "{bad}");
        }
    }
}
