//! One-line packet summaries in the original tool's shapes:
//! `TCP: 1.2.3.4:80 -> 5.6.7.8:4000 seq:1, ack:2, flags:AP`,
//! `ICMP: 1.2.3.4 -> 5.6.7.8 ping request, seq: 7`, `UDP: ...`, `ARP: ...`.
//! When the probe saw no usable header the summary says so instead of
//! printing whatever bytes were there.

use crate::events::{
    Packet, PacketSource, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6,
    IPPROTO_TCP, IPPROTO_UDP,
};
use std::fmt::Write as _;
use std::net::IpAddr;

/// TCP flags: header bit, letter and name, in the order they are printed.
pub const TCP_FLAGS: [(u8, char, &str); 8] = [
    (0x02, 'S', "syn"),
    (0x10, 'A', "ack"),
    (0x08, 'P', "psh"),
    (0x04, 'R', "rst"),
    (0x01, 'F', "fin"),
    (0x20, 'U', "urg"),
    (0x40, 'E', "ece"),
    (0x80, 'C', "cwr"),
];

pub fn tcp_flags(flags: u8) -> String {
    TCP_FLAGS
        .iter()
        .filter(|(bit, _, _)| flags & bit != 0)
        .map(|(_, c, _)| *c)
        .collect()
}

/// Parses TCP flags back into bits: letters as printed (`SA`, `r`) or
/// comma-separated names (`syn,ack`). Err names the first bad flag.
pub fn parse_tcp_flags(s: &str) -> Result<u8, String> {
    let by_name = |n: &str| {
        TCP_FLAGS
            .iter()
            .find(|(_, _, name)| n.trim().eq_ignore_ascii_case(name))
            .map(|f| f.0)
    };
    if s.contains(',') || by_name(s).is_some() {
        return s.split(',').try_fold(0, |bits, n| {
            Ok(bits | by_name(n).ok_or_else(|| n.trim().to_string())?)
        });
    }
    s.chars().try_fold(0, |bits, ch| {
        let up = ch.to_ascii_uppercase();
        TCP_FLAGS
            .iter()
            .find(|(_, c, _)| *c == up)
            .map(|f| bits | f.0)
            .ok_or_else(|| ch.to_string())
    })
}

fn endpoint(addr: Option<IpAddr>, port: u16) -> String {
    match addr {
        Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
        Some(a) => format!("{a}:{port}"),
        None => format!("?:{port}"),
    }
}

fn host(addr: Option<IpAddr>) -> String {
    addr.map(|a| a.to_string()).unwrap_or_else(|| "?".into())
}

fn icmp_name(v6: bool, ty: u8) -> Option<&'static str> {
    Some(match (v6, ty) {
        (false, 8) | (true, 128) => "ping request",
        (false, 0) | (true, 129) => "ping reply",
        (false, 3) => "destination unreachable",
        (false, 11) => "time exceeded",
        (false, 5) => "redirect",
        (true, 1) => "destination unreachable",
        (true, 2) => "packet too big",
        (true, 3) => "time exceeded",
        (true, 133) => "router solicitation",
        (true, 134) => "router advertisement",
        (true, 135) => "neighbour solicitation",
        (true, 136) => "neighbour advertisement",
        _ => return None,
    })
}

pub fn l4_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        IPPROTO_ICMP => "icmp",
        2 => "igmp",
        4 => "ipip",
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        IPPROTO_ICMPV6 => "icmpv6",
        132 => "sctp",
        136 => "udplite",
        _ => return None,
    })
}

/// The summary of a packet, e.g. `TCP: 127.0.0.1:40392 -> 127.0.0.1:9999 seq:3067626996, ack:0, flags:S`.
pub fn summary(p: &Packet) -> String {
    if p.source == PacketSource::None {
        return format!("unknown: no packet headers yet (len {})", p.len);
    }
    let mut s = String::new();
    let v6 = p.l3_proto == ETH_P_IPV6;
    match (p.l3_proto, p.l4_proto) {
        (ETH_P_ARP, _) => {
            let _ = match p.arp_op {
                1 => write!(s, "ARP: who-has {} tell {}", host(p.daddr), host(p.saddr)),
                2 => write!(
                    s,
                    "ARP: {} is-at (reply to {})",
                    host(p.saddr),
                    host(p.daddr)
                ),
                op => write!(s, "ARP: op {op}, {} -> {}", host(p.saddr), host(p.daddr)),
            };
        }
        (ETH_P_IP | ETH_P_IPV6, IPPROTO_TCP) if p.source == PacketSource::Socket => {
            let _ = write!(
                s,
                "TCP: {} -> {}",
                endpoint(p.saddr, p.sport),
                endpoint(p.daddr, p.dport)
            );
        }
        (ETH_P_IP | ETH_P_IPV6, IPPROTO_TCP) => {
            let _ = write!(
                s,
                "TCP: {} -> {} seq:{}, ack:{}, flags:{}",
                endpoint(p.saddr, p.sport),
                endpoint(p.daddr, p.dport),
                p.seq,
                p.ack,
                tcp_flags(p.tcp_flags)
            );
        }
        (ETH_P_IP | ETH_P_IPV6, IPPROTO_UDP) => {
            let _ = write!(
                s,
                "UDP: {} -> {}",
                endpoint(p.saddr, p.sport),
                endpoint(p.daddr, p.dport)
            );
        }
        (ETH_P_IP, IPPROTO_ICMP) | (ETH_P_IPV6, IPPROTO_ICMPV6) => {
            let label = if v6 { "ICMPv6" } else { "ICMP" };
            let _ = write!(s, "{label}: {} -> {} ", host(p.saddr), host(p.daddr));
            let _ = match icmp_name(v6, p.icmp_type) {
                Some(n @ ("ping request" | "ping reply")) => {
                    write!(s, "{n}, seq: {}, id: {}", p.icmp_seq, p.icmp_id)
                }
                Some(n) => write!(s, "{n}, code: {}", p.icmp_code),
                None => write!(s, "type {}, code {}", p.icmp_type, p.icmp_code),
            };
        }
        (ETH_P_IP | ETH_P_IPV6, proto) => {
            let label = if v6 { "IPv6" } else { "IP" };
            let name = l4_name(proto)
                .map(str::to_uppercase)
                .unwrap_or_else(|| format!("proto {proto}"));
            let _ = write!(s, "{label}: {} -> {} {name}", host(p.saddr), host(p.daddr));
        }
        (l3, _) => {
            let _ = write!(s, "ether type {l3:#06x}, len {}", p.len);
        }
    }
    if p.source == PacketSource::Socket {
        s.push_str(" (from socket: headers not built yet)");
    }
    s
}
