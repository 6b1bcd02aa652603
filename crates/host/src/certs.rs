//! Checks of a certificate chain and its key before fjord serves them: the key is the leaf's,
//! every name the site answers to is covered, and the certificate is valid now. Pure over the
//! PEM text ([`check_pem`]); [`check_files`] reads the two files first.
//!
//! Names are matched as RFC 6125 says: against the leaf's DNS subject alternative names only
//! (never its common name), case-insensitively, a wildcard standing for exactly one whole
//! left-most label (`*.example.com` covers `www.example.com`, not `example.com` nor
//! `a.b.example.com`).

use std::path::Path;

use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::{HostError, Result};

/// The largest certificate chain or key file read: far beyond any real one.
const MAX_PEM: u64 = 1 << 20;

/// What a checked certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The leaf's DNS names (subject alternative names), as written in it.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// The leaf's issuer, as a distinguished name.
    pub issuer: String,
}

/// Reads a certificate chain file and its key file (each bounded in size).
pub fn read_pair(chain_file: &Path, key_file: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    Ok((read_limited(chain_file)?, read_limited(key_file)?))
}

/// Reads `chain_file` and `key_file` and checks them as [`check_pem`] does.
pub fn check_files(
    chain_file: &Path,
    key_file: &Path,
    required: &[String],
    now: i64,
) -> Result<CertInfo> {
    let chain = read_limited(chain_file)?;
    let key = read_limited(key_file)?;
    check_pem(
        &chain,
        &chain_file.display().to_string(),
        &key,
        &key_file.display().to_string(),
        required,
        now,
    )
}

/// Checks a PEM chain (leaf first) and a PEM private key (PKCS#8), named `chain_name` and
/// `key_name` in refusals: the key must be the leaf's, each of `required` covered by the leaf,
/// and `now` (Unix seconds) within its validity.
pub fn check_pem(
    chain: &[u8],
    chain_name: &str,
    key: &[u8],
    key_name: &str,
    required: &[String],
    now: i64,
) -> Result<CertInfo> {
    let refuse = |file: &str, rule: String| HostError::Refused(format!("{file}: {rule}"));
    let mut pems = Vec::new();
    for pem in Pem::iter_from_buffer(chain) {
        let pem = pem.map_err(|e| refuse(chain_name, format!("not PEM ({e})")))?;
        if pem.label == "CERTIFICATE" {
            pems.push(pem);
        }
    }
    let leaf_pem = pems.first().ok_or_else(|| {
        refuse(
            chain_name,
            "holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks, the site's first)"
                .into(),
        )
    })?;
    let leaf = leaf_pem.parse_x509().map_err(|e| {
        refuse(
            chain_name,
            format!("its first certificate cannot be read: {e}"),
        )
    })?;

    let key_text = std::str::from_utf8(key)
        .map_err(|_| refuse(key_name, "is not a PEM private key (not text)".into()))?;
    let key_pair = rcgen::KeyPair::from_pem(key_text).map_err(|e| {
        refuse(
            key_name,
            format!("is not a PEM private key fjord can read (PKCS#8, `BEGIN PRIVATE KEY`): {e}"),
        )
    })?;
    if rcgen::PublicKeyData::subject_public_key_info(&key_pair) != leaf.public_key().raw {
        return Err(refuse(
            key_name,
            format!("is not the key of the certificate in {chain_name} (their public keys differ)"),
        ));
    }

    let mut names = Vec::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push(dns.to_string());
            }
        }
    }
    let uncovered: Vec<&str> = required
        .iter()
        .filter(|want| !names.iter().any(|have| covers(have, want)))
        .map(String::as_str)
        .collect();
    if !uncovered.is_empty() {
        return Err(refuse(
            chain_name,
            format!(
                "does not cover {} (its DNS names: {})",
                uncovered.join(", "),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }

    let not_before = leaf.validity().not_before.timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    if now < not_before {
        return Err(refuse(
            chain_name,
            format!(
                "is not valid yet (valid from {})",
                leaf.validity().not_before
            ),
        ));
    }
    if now > not_after {
        return Err(refuse(
            chain_name,
            format!("has expired (valid until {})", leaf.validity().not_after),
        ));
    }
    Ok(CertInfo {
        names,
        not_before,
        not_after,
        issuer: leaf.issuer().to_string(),
    })
}

/// Whether the certificate name `have` covers the host name `want` (RFC 6125 section 6.4).
pub fn covers(have: &str, want: &str) -> bool {
    let have = have.trim_end_matches('.').to_ascii_lowercase();
    let want = want.trim_end_matches('.').to_ascii_lowercase();
    match have.strip_prefix("*.") {
        Some(parent) => match want.split_once('.') {
            Some((label, rest)) => {
                !label.is_empty() && rest == parent && parent.contains('.') && !label.contains('*')
            }
            None => false,
        },
        None => have == want,
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| HostError::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| HostError::io(path, e))?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(HostError::Refused(format!(
            "{}: larger than {MAX_PEM} bytes: not a certificate or key",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Day = (i32, u8, u8);
    const TODAY: Day = (2027, 1, 15);
    const YESTERDAY: Day = (2027, 1, 14);
    const TOMORROW: Day = (2027, 1, 16);
    const LAST_MONTH: Day = (2026, 12, 15);
    const NEXT_MONTH: Day = (2027, 2, 15);

    fn day((y, m, d): Day) -> i64 {
        rcgen::date_time_ymd(y, m, d).unix_timestamp()
    }

    fn make(names: &[&str], from: Day, until: Day) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn required(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn wildcards_stand_for_one_whole_left_most_label() {
        assert!(covers("*.example.com", "www.example.com"));
        assert!(covers("*.Example.com", "WWW.example.com."));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.com", "example.com"));
        assert!(!covers("w*.example.com", "www.example.com"));
        assert!(covers("example.com", "EXAMPLE.com"));
        assert!(!covers("example.com", "www.example.com"));
    }

    #[test]
    fn a_matching_current_certificate_for_every_name_is_accepted() {
        let (chain, key) = make(&["shop.example", "*.shop.example"], YESTERDAY, NEXT_MONTH);
        let info = check_pem(
            chain.as_bytes(),
            "c.pem",
            key.as_bytes(),
            "k.pem",
            &required(&["shop.example", "www.shop.example"]),
            day(TODAY),
        )
        .unwrap();
        assert_eq!(info.names, ["shop.example", "*.shop.example"]);
        assert_eq!(info.not_after, day(NEXT_MONTH));
    }

    #[test]
    fn another_certificates_key_is_refused_naming_the_key_file() {
        let (chain, _) = make(&["shop.example"], YESTERDAY, NEXT_MONTH);
        let (_, other_key) = make(&["shop.example"], YESTERDAY, NEXT_MONTH);
        let err = check_pem(
            chain.as_bytes(),
            "c.pem",
            other_key.as_bytes(),
            "k.pem",
            &required(&["shop.example"]),
            day(TODAY),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("k.pem: is not the key of the certificate in c.pem"),
            "{err}"
        );
    }

    #[test]
    fn a_name_not_covered_is_refused_and_named() {
        let (chain, key) = make(&["shop.example"], YESTERDAY, NEXT_MONTH);
        let err = check_pem(
            chain.as_bytes(),
            "c.pem",
            key.as_bytes(),
            "k.pem",
            &required(&["shop.example", "www.shop.example"]),
            day(TODAY),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "c.pem: does not cover www.shop.example (its DNS names: shop.example)"
        );
    }

    #[test]
    fn an_expired_or_future_certificate_is_refused() {
        let (chain, key) = make(&["shop.example"], LAST_MONTH, YESTERDAY);
        let err = check_pem(
            chain.as_bytes(),
            "c.pem",
            key.as_bytes(),
            "k.pem",
            &required(&["shop.example"]),
            day(TODAY),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.pem: has expired"), "{err}");
        let (chain, key) = make(&["shop.example"], TOMORROW, NEXT_MONTH);
        let err = check_pem(
            chain.as_bytes(),
            "c.pem",
            key.as_bytes(),
            "k.pem",
            &required(&["shop.example"]),
            day(TODAY),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.pem: is not valid yet"), "{err}");
    }

    #[test]
    fn something_that_is_no_certificate_is_refused() {
        let (_, key) = make(&["shop.example"], YESTERDAY, NEXT_MONTH);
        let err = check_pem(b"hello", "c.pem", key.as_bytes(), "k.pem", &[], day(TODAY))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.pem: holds no certificate"), "{err}");
    }
}
