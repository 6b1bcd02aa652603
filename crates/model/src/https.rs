//! How a site is served over HTTPS, and the listen addresses of a server's web edge.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{AbsPath, Invalid};

/// Whether a site answers over HTTPS, once it has a certificate (without one it is served
/// over HTTP whatever its mode: a site is never left unreachable waiting for its certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpsMode {
    /// HTTP only.
    Off,
    /// HTTP and HTTPS both serve the site.
    #[default]
    On,
    /// HTTP answers 301 to the HTTPS canonical address, except ACME's challenge path.
    Required,
}

impl HttpsMode {
    pub const ALL: [HttpsMode; 3] = [HttpsMode::Off, HttpsMode::On, HttpsMode::Required];

    pub fn parse(input: &str) -> Result<HttpsMode, Invalid> {
        HttpsMode::ALL
            .into_iter()
            .find(|m| m.as_str() == input)
            .ok_or_else(|| Invalid::new("https", input, "must be off, on or required"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpsMode::Off => "off",
            HttpsMode::On => "on",
            HttpsMode::Required => "required",
        }
    }
}

impl fmt::Display for HttpsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A site's HTTPS settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SiteHttps {
    #[serde(default)]
    pub mode: HttpsMode,
    /// Strict-Transport-Security on its HTTPS responses (opt-in: browsers remember it).
    #[serde(default)]
    pub hsts: bool,
}

impl SiteHttps {
    /// Whether HTTPS is served, given whether the site has a certificate.
    pub fn serves_https(self, has_certificate: bool) -> bool {
        has_certificate && self.mode != HttpsMode::Off
    }
}

/// The certificate chain and key files of a site's TLS vhost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    /// The leaf certificate followed by its chain (PEM).
    pub cert: AbsPath,
    /// The private key (PEM), readable by root only.
    pub key: AbsPath,
}

/// Parses a list of listen addresses (`IP:PORT`, `[IPv6]:PORT`): none twice.
pub fn parse_listens(field: &'static str, inputs: &[String]) -> Result<Vec<SocketAddr>, Invalid> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for input in inputs {
        let addr = input.trim().parse::<SocketAddr>().map_err(|_| {
            Invalid::new(
                field,
                input,
                "must be IP:PORT, for example 127.0.0.1:8080 or [::1]:8080",
            )
        })?;
        if out.contains(&addr) {
            return Err(Invalid::new(field, input, "is given twice"));
        }
        out.push(addr);
    }
    Ok(out)
}

/// An older state kept one listen address where there are now several.
pub(crate) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(SocketAddr),
        Many(Vec<SocketAddr>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(addr) => vec![addr],
        OneOrMany::Many(addrs) => addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_refuse_with_the_rule() {
        assert_eq!(HttpsMode::parse("required"), Ok(HttpsMode::Required));
        let err = HttpsMode::parse("always").unwrap_err().to_string();
        assert!(
            err.contains("always") && err.contains("off, on or required"),
            "{err}"
        );
        assert_eq!(SiteHttps::default().mode, HttpsMode::On);
        assert!(!SiteHttps::default().serves_https(false));
    }

    #[test]
    fn the_canonical_address_is_https_only_for_a_required_site_with_a_certificate() {
        let mut server: crate::Server = serde_json::from_value(serde_json::json!({
            "id": 1, "name": "s", "db": [],
            "http": {"type": "nginx", "binary": "/usr/sbin/nginx",
                "config": "/etc/nginx/nginx.conf", "prefix": null,
                "include_dir": "/etc/nginx/conf.d", "listen": "0.0.0.0:8080",
                "reload": "signal", "files_owner": null}
        }))
        .unwrap();
        let mut site: crate::Site = serde_json::from_value(serde_json::json!({
            "id": 1, "name": "example.com", "platform_id": 1, "aliases": [],
            "redirect_aliases": false, "status": "installed", "client_id": null,
            "database": null
        }))
        .unwrap();
        // An old state's one address reads as a list of one; HTTPS is on by default.
        assert_eq!(site.https, SiteHttps::default());
        assert_eq!(server.site_url_of(&site, true), "http://example.com:8080");
        site.https.mode = HttpsMode::Required;
        assert_eq!(server.site_url_of(&site, false), "http://example.com:8080");
        // No HTTPS address on the server: HTTP still.
        assert_eq!(server.site_url_of(&site, true), "http://example.com:8080");
        let crate::HttpService::Nginx(nginx) = &mut server.http;
        nginx.https_listen = vec!["0.0.0.0:443".parse().unwrap(), "[::]:8443".parse().unwrap()];
        assert_eq!(server.site_url_of(&site, true), "https://example.com");
        nginx_listen_check(&server);
    }

    fn nginx_listen_check(server: &crate::Server) {
        let crate::HttpService::Nginx(nginx) = &server.http;
        assert!(nginx.check_listens().is_ok());
        let mut both = nginx.clone();
        both.https_listen.push(both.listen[0]);
        let err = both.check_listens().unwrap_err().to_string();
        assert!(
            err.contains("0.0.0.0:8080") && err.contains("one protocol"),
            "{err}"
        );
    }

    #[test]
    fn listen_lists_refuse_a_repeated_or_malformed_address() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_listens("listen address", &list(&["127.0.0.1:80", "[::1]:80"]))
                .unwrap()
                .len(),
            2
        );
        let err = parse_listens("listen address", &list(&["127.0.0.1:80", "127.0.0.1:80"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice"), "{err}");
        let err = parse_listens("https listen address", &list(&["localhost:443"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("https listen address") && err.contains("localhost:443"),
            "{err}"
        );
    }
}

/// When a certificate is renewed (Unix seconds), for fjord's dispatcher.
///
/// Before two thirds of its life have passed (Let's Encrypt advises renewing at two thirds:
/// <https://letsencrypt.org/docs/integration-guide/#when-to-renew>), moved earlier by up to a
/// twelfth of its life, by an amount `spread_key` (the site's id) fixes: certificates issued
/// together (a thousand sites switched to HTTPS in one afternoon) are not all renewed in one
/// burst. After `attempts` orders since the last success, the next waits 1 hour, doubling each
/// time up to a day, after the last one: far below Let's Encrypt's 5 failed authorizations per
/// name and account per hour (<https://letsencrypt.org/docs/rate-limits/>), and a CA that is
/// down for a week is asked a few times a day.
pub fn renewal_due_at(
    not_before: i64,
    not_after: i64,
    spread_key: i64,
    attempts: u32,
    last_attempt_at: Option<i64>,
) -> i64 {
    let life = (not_after - not_before).max(0);
    let window = life / 12;
    let spread = if window > 0 {
        // A multiplicative hash spreads consecutive ids over the whole window.
        ((spread_key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as i64 % window
    } else {
        0
    };
    let due = not_before + life * 2 / 3 - spread;
    match (attempts, last_attempt_at) {
        (0, _) | (_, None) => due,
        (n, Some(last)) => {
            let backoff = (RETRY_FIRST_S << (n - 1).min(16)).min(RETRY_MAX_S);
            due.max(last + backoff)
        }
    }
}

/// The first wait after a failed renewal, and the longest.
pub const RETRY_FIRST_S: i64 = 3_600;
pub const RETRY_MAX_S: i64 = 86_400;

/// How many orders one ACME account may place in [`ORDERS_WINDOW_S`]: Let's Encrypt's "New
/// Orders per Account" limit (<https://letsencrypt.org/docs/rate-limits/>); the dispatcher
/// queues no more renewals than leave room under it.
pub const ORDERS_PER_WINDOW: usize = 300;
pub const ORDERS_WINDOW_S: i64 = 3 * 3_600;

/// How many orders fjord lets the account place in [`ORDERS_WINDOW_S`]: Let's Encrypt's
/// limit at a CA reached through the system's roots (Let's Encrypt, or a public CA whose
/// limits fjord does not know); none at a private CA, one whose root the administrator gave
/// (`https account --ca-root`), whose limits are its operator's.
pub fn orders_limit(private_ca: bool) -> Option<usize> {
    (!private_ca).then_some(ORDERS_PER_WINDOW)
}

#[cfg(test)]
mod renewal_tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_certificate_is_renewed_before_two_thirds_of_its_life_spread_by_site() {
        let (from, to) = (1_800_000_000, 1_800_000_000 + 90 * DAY);
        let two_thirds = from + 60 * DAY;
        let dues: Vec<i64> = (1..=1000)
            .map(|id| renewal_due_at(from, to, id, 0, None))
            .collect();
        assert!(
            dues.iter()
                .all(|&d| d <= two_thirds && d > two_thirds - 8 * DAY)
        );
        // Spread over the window: no day of it takes more than a fifth of the sites.
        let mut per_day = std::collections::BTreeMap::new();
        for d in &dues {
            *per_day.entry((two_thirds - d) / DAY).or_insert(0) += 1;
        }
        assert!(per_day.len() >= 7, "{per_day:?}");
        assert!(per_day.values().all(|&n| n < 200), "{per_day:?}");
        assert_eq!(
            renewal_due_at(from, to, 7, 0, None),
            dues[6],
            "one site, one time"
        );
    }

    #[test]
    fn a_failed_renewal_is_tried_again_after_an_hour_doubling_up_to_a_day() {
        let (from, to) = (1_800_000_000, 1_800_000_000 + 90 * DAY);
        let due = renewal_due_at(from, to, 1, 0, None);
        let last = due + 10;
        assert_eq!(renewal_due_at(from, to, 1, 1, Some(last)), last + 3_600);
        assert_eq!(renewal_due_at(from, to, 1, 2, Some(last)), last + 7_200);
        assert_eq!(renewal_due_at(from, to, 1, 6, Some(last)), last + 86_400);
        assert_eq!(renewal_due_at(from, to, 1, 40, Some(last)), last + 86_400);
        // An attempt long before the due time (a manual order) does not delay it.
        assert_eq!(renewal_due_at(from, to, 1, 1, Some(from)), due);
    }
}
