//! Who is at the other end: the client's real address, read from a proxy's `Forwarded` or
//! `X-Forwarded-For` only when the connection comes from a proxy the operator named
//! (`fjord serve --trusted-proxy`). Anyone else could write any address there, and a login
//! throttle that believed it could be walked around, or made to hold someone else's address.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::AppState;
pub use model::TrustedProxies;

/// The address of the client a request comes from: the connection's peer, or, when the peer
/// is a trusted proxy, the nearest address in the forwarding chain that is not a trusted
/// proxy (each proxy appends the address it was reached from, so the entries on the right
/// are written by proxies and those on the left by whoever sent the request).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    for hop in chain.iter().rev() {
        match hop {
            Some(address) if trusted.contains(*address) => continue,
            Some(address) => return *address,
            // An entry a trusted proxy would not write: nothing left of it can be believed.
            None => return peer,
        }
    }
    peer
}

/// The `for` addresses of `Forwarded` (RFC 7239) if the request has one, else those of
/// `X-Forwarded-For`, in order; `None` for an entry that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, node)| parse_node(node))
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .flat_map(|v| v.split(','))
        .map(parse_node)
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse::<IpAddr>().ok();
    }
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    node.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// The client's address, as [`client_address`] finds it, for a handler.
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientAddress(client_address(
            peer,
            &parts.headers,
            &state.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
        let trusted = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let forged = headers(&[("x-forwarded-for", "198.51.100.1")]);
        // From anyone else the header is the sender's own words.
        assert_eq!(
            client_address(ip("203.0.113.5"), &forged, &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), &forged, &trusted),
            ip("198.51.100.1")
        );
        // What a client wrote on the left is passed over: the proxy appended the real one.
        let appended = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.1.2.3")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &appended, &trusted),
            ip("203.0.113.7")
        );
        let split = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "203.0.113.8"),
        ]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &split, &trusted),
            ip("203.0.113.8")
        );
        // A proxy that sends no header, or garbage where its entry should be: the proxy.
        assert_eq!(
            client_address(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, nonsense")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &garbage, &trusted),
            ip("127.0.0.1")
        );
        // Nobody is trusted unless named.
        assert_eq!(
            client_address(ip("127.0.0.1"), &forged, &TrustedProxies::default()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_standard_forwarded_header_comes_first() {
        let trusted = TrustedProxies::parse(&["::1".into()]).unwrap();
        let h = headers(&[
            (
                "forwarded",
                "for=198.51.100.1;proto=https, for=\"[2001:db8:cafe::17]:4711\";by=x",
            ),
            ("x-forwarded-for", "203.0.113.1"),
        ]);
        assert_eq!(
            client_address(ip("::1"), &h, &trusted),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[("forwarded", "for=192.0.2.43:8080")]);
        assert_eq!(client_address(ip("::1"), &h, &trusted), ip("192.0.2.43"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_address(ip("::1"), &h, &trusted), ip("::1"));
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let t = TrustedProxies::parse(&["192.168.0.0/16".into(), "fd00::/8".into()]).unwrap();
        assert!(t.contains(ip("192.168.4.5")));
        assert!(t.contains(ip("::ffff:192.168.4.5")));
        assert!(!t.contains(ip("192.169.0.1")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "1.2.3.4/x",
            "1.2.3",
        ] {
            let e = TrustedProxies::parse(&[bad.into()]).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
