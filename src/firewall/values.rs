//! Value syntax both firewalls' tools print: addresses with prefixes or
//! dotted masks, port ranges, protocol names.

use std::net::{IpAddr, Ipv4Addr};

/// `10.0.0.0/8`, `10.0.0.1`, `10.0.0.0/255.0.0.0`, `fd00::/64`; several
/// separated by commas. None if any part is not an address.
pub fn parse_nets(s: &str) -> Option<Vec<(IpAddr, u8)>> {
    s.split(',').map(parse_net).collect()
}

fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => full,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= full => n,
            Ok(_) => return None,
            Err(_) => {
                // A dotted mask: only a contiguous one is a prefix.
                let mask = u32::from(l.parse::<Ipv4Addr>().ok()?);
                let ones = mask.leading_ones();
                if mask.checked_shl(ones).unwrap_or(0) != 0 {
                    return None;
                }
                ones as u8
            }
        },
    };
    Some((addr, len))
}

/// `22`, `1000:2000`, `:1024`, `1024:`, `22,80,1000:2000`.
pub fn parse_port_ranges(s: &str) -> Option<Vec<(u32, u32)>> {
    s.split(',')
        .map(|part| {
            let num = |t: &str, default: u32| -> Option<u32> {
                if t.is_empty() {
                    Some(default)
                } else {
                    t.parse::<u16>().ok().map(u32::from)
                }
            };
            match part.split_once(':') {
                Some((a, b)) => Some((num(a, 0)?, num(b, 65535)?)),
                None => {
                    let p = num(part, 0).filter(|_| !part.is_empty())?;
                    Some((p, p))
                }
            }
        })
        .collect()
}

/// An IP protocol by name or number.
pub fn parse_proto(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u8>() {
        return Some(u32::from(n));
    }
    match crate::vocab::proto::by_name(s)? {
        crate::vocab::proto::Proto::L4(n) => Some(u32::from(n)),
        crate::vocab::proto::Proto::L3(_) => None,
    }
}

/// Whether `addr` is in `net/len`.
pub fn in_net(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Whether `addr` is in `lo..=hi` (same family).
pub fn in_range(addr: IpAddr, lo: IpAddr, hi: IpAddr) -> bool {
    match (addr, lo, hi) {
        (IpAddr::V4(a), IpAddr::V4(l), IpAddr::V4(h)) => (l..=h).contains(&a),
        (IpAddr::V6(a), IpAddr::V6(l), IpAddr::V6(h)) => (l..=h).contains(&a),
        _ => false,
    }
}
