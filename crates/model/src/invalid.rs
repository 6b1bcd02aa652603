use std::fmt;

/// A refused input: which field, the value as given (escaped so that control characters are
/// visible), and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub value: String,
    pub rule: String,
}

impl Invalid {
    pub fn new(field: &'static str, value: &str, rule: impl Into<String>) -> Invalid {
        Invalid {
            field,
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` on the value escapes newlines, NUL and other invisible characters, which is
        // exactly what a user needs to see when such a character is the problem.
        write!(f, "invalid {} {:?}: {}", self.field, self.value, self.rule)
    }
}

impl std::error::Error for Invalid {}
