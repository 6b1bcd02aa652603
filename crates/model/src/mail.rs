//! Mail: addresses, and how fjord sends the mail it sends (login links after an install,
//! task-failure notices to a site's client).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AbsPath, Hostname, Invalid};

/// An email address: ASCII, a local part of letters, digits and `. _ % + -`, and a domain
/// with a dot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(field: &'static str, input: &str) -> Result<EmailAddress, Invalid> {
        let ok = input.len() <= 254
            && input.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && local
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
                    && domain.contains('.')
                    && Hostname::parse("email domain", domain).is_ok_and(|h| h.as_str() == domain)
            });
        if ok {
            Ok(EmailAddress(input.to_string()))
        } else {
            Err(Invalid::new(
                field,
                input,
                "must be an address like name@example.com (ASCII, a domain with a dot)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        EmailAddress::parse("email address", &s)
    }
}

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How fjord sends mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "lowercase")]
pub enum MailSettings {
    /// An SMTP relay, plain or with STARTTLS.
    Smtp {
        host: String,
        port: u16,
        starttls: bool,
        from: EmailAddress,
    },
    /// The machine's sendmail.
    Sendmail { path: AbsPath, from: EmailAddress },
}

impl MailSettings {
    /// `HOST:PORT` of an SMTP relay: a host name or an IP address, and a port.
    pub fn smtp(relay: &str, starttls: bool, from: EmailAddress) -> Result<MailSettings, Invalid> {
        let invalid = || {
            Invalid::new(
                "SMTP relay",
                relay,
                "must be HOST:PORT, for example mail.example.com:587 or 127.0.0.1:25",
            )
        };
        let (host, port) = relay.rsplit_once(':').ok_or_else(invalid)?;
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(invalid)?;
        let host_ok = host.parse::<std::net::IpAddr>().is_ok()
            || Hostname::parse("SMTP host", host).is_ok_and(|h| h.as_str() == host);
        if !host_ok {
            return Err(invalid());
        }
        Ok(MailSettings::Smtp {
            host: host.to_string(),
            port,
            starttls,
            from,
        })
    }

    pub fn from(&self) -> &EmailAddress {
        match self {
            MailSettings::Smtp { from, .. } | MailSettings::Sendmail { from, .. } => from,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            MailSettings::Smtp {
                host,
                port,
                starttls,
                from,
            } => format!(
                "SMTP relay {host}:{port}{}, from {from}",
                if *starttls { " with STARTTLS" } else { "" }
            ),
            MailSettings::Sendmail { path, from } => format!("sendmail {path}, from {from}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_relays_follow_their_rules() {
        assert!(EmailAddress::parse("e", "me@example.com").is_ok());
        for bad in [
            "",
            "me",
            "@example.com",
            "me@localhost",
            "a b@example.com",
            "me@exa mple.com",
            "me@EXAMPLE.com",
            "me@example.com\n",
        ] {
            assert!(EmailAddress::parse("e", bad).is_err(), "{bad:?}");
        }
        let from = EmailAddress::parse("e", "fjord@example.com").unwrap();
        assert!(MailSettings::smtp("127.0.0.1:2525", false, from.clone()).is_ok());
        assert!(MailSettings::smtp("mail.example.com:587", true, from.clone()).is_ok());
        for bad in [
            "mail.example.com",
            "mail.example.com:0",
            "a;b:25",
            ":25",
            "mail.example.com:99999",
        ] {
            assert!(
                MailSettings::smtp(bad, false, from.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
