//! The proxies in front of the panel whose forwarding headers are believed (`fjord serve
//! --trusted-proxy`, `panel.trusted_proxies` of the config file): one rule for the flag, the
//! environment and the file.

use std::net::IpAddr;

/// The proxies whose forwarding headers are believed: addresses or networks (`ADDR/BITS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Reads `--trusted-proxy` values: `127.0.0.1`, `::1`, `10.0.0.0/8`, `fd00::/8`.
    pub fn parse(values: &[String]) -> Result<TrustedProxies, String> {
        values
            .iter()
            .map(|value| parse_network(value))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0
            .iter()
            .any(|(network, bits)| in_network(address, *network, *bits))
    }

    /// Trusts one more address (the panel's own vhost, which reaches the panel from it).
    pub fn add(&mut self, address: IpAddr) {
        let address = address.to_canonical();
        let bits = if address.is_ipv4() { 32 } else { 128 };
        if !self.contains(address) {
            self.0.push((address, bits));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_network(value: &str) -> Result<(IpAddr, u8), String> {
    let refuse = |rule: &str| {
        Err(format!(
            "invalid trusted proxy {value:?}: {rule} (an IP address, or a network as ADDR/BITS)"
        ))
    };
    let (address, bits) = match value.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (value, None),
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return refuse("not an IP address");
    };
    let address = address.to_canonical();
    let max = if address.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(bits) => match bits.parse::<u8>() {
            Ok(b) if b <= max => b,
            _ => return refuse(&format!("the prefix length must be 0 to {max}")),
        },
    };
    Ok((address, bits))
}

fn in_network(address: IpAddr, network: IpAddr, bits: u8) -> bool {
    let (a, n, width) = match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    a >> shift == n >> shift
}
