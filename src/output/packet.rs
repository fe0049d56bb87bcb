//! One-line packet summaries in the original tool's shapes:
//! `TCP: 1.2.3.4:80 -> 5.6.7.8:4000 seq:1, ack:2, flags:AP`,
//! `ICMP: 1.2.3.4 -> 5.6.7.8 ping request, seq: 7`, `UDP: ...`, `ARP: ...`.
//! When the probe saw no usable header the summary says so instead of
//! printing whatever bytes were there.

use super::text::{push_int, push_ip};
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

fn endpoint(s: &mut String, addr: Option<IpAddr>, port: u16) {
    match addr {
        Some(IpAddr::V6(a)) => {
            s.push('[');
            push_ip(s, IpAddr::V6(a));
            s.push(']');
        }
        Some(a) => push_ip(s, a),
        None => s.push('?'),
    }
    s.push(':');
    push_int(s, port);
}

fn host(s: &mut String, addr: Option<IpAddr>) {
    match addr {
        Some(a) => push_ip(s, a),
        None => s.push('?'),
    }
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
    let mut s = String::new();
    push_summary(&mut s, p);
    s
}

/// Appends the summary of a packet to `s`.
pub fn push_summary(s: &mut String, p: &Packet) {
    if p.source == PacketSource::None {
        s.push_str("unknown: no packet headers yet (len ");
        push_int(s, p.len);
        s.push(')');
        return;
    }
    let v6 = p.l3_proto == ETH_P_IPV6;
    let arrow = |s: &mut String| s.push_str(" -> ");
    match (p.l3_proto, p.l4_proto) {
        (ETH_P_ARP, _) => match p.arp_op {
            1 => {
                s.push_str("ARP: who-has ");
                host(s, p.daddr);
                s.push_str(" tell ");
                host(s, p.saddr);
            }
            2 => {
                s.push_str("ARP: ");
                host(s, p.saddr);
                s.push_str(" is-at (reply to ");
                host(s, p.daddr);
                s.push(')');
            }
            op => {
                s.push_str("ARP: op ");
                push_int(s, op);
                s.push_str(", ");
                host(s, p.saddr);
                arrow(s);
                host(s, p.daddr);
            }
        },
        (ETH_P_IP | ETH_P_IPV6, proto @ (IPPROTO_TCP | IPPROTO_UDP)) => {
            s.push_str(if proto == IPPROTO_TCP {
                "TCP: "
            } else {
                "UDP: "
            });
            endpoint(s, p.saddr, p.sport);
            arrow(s);
            endpoint(s, p.daddr, p.dport);
            if proto == IPPROTO_TCP && p.source != PacketSource::Socket {
                s.push_str(" seq:");
                push_int(s, p.seq);
                s.push_str(", ack:");
                push_int(s, p.ack);
                s.push_str(", flags:");
                for (bit, c, _) in TCP_FLAGS {
                    if p.tcp_flags & bit != 0 {
                        s.push(c);
                    }
                }
            }
        }
        (ETH_P_IP, IPPROTO_ICMP) | (ETH_P_IPV6, IPPROTO_ICMPV6) => {
            s.push_str(if v6 { "ICMPv6: " } else { "ICMP: " });
            host(s, p.saddr);
            arrow(s);
            host(s, p.daddr);
            s.push(' ');
            match icmp_name(v6, p.icmp_type) {
                Some(n @ ("ping request" | "ping reply")) => {
                    s.push_str(n);
                    s.push_str(", seq: ");
                    push_int(s, p.icmp_seq);
                    s.push_str(", id: ");
                    push_int(s, p.icmp_id);
                }
                Some(n) => {
                    s.push_str(n);
                    s.push_str(", code: ");
                    push_int(s, p.icmp_code);
                }
                None => {
                    s.push_str("type ");
                    push_int(s, p.icmp_type);
                    s.push_str(", code ");
                    push_int(s, p.icmp_code);
                }
            }
        }
        (ETH_P_IP | ETH_P_IPV6, proto) => {
            s.push_str(if v6 { "IPv6: " } else { "IP: " });
            host(s, p.saddr);
            arrow(s);
            host(s, p.daddr);
            s.push(' ');
            match l4_name(proto) {
                Some(name) => s.push_str(&name.to_uppercase()),
                None => {
                    s.push_str("proto ");
                    push_int(s, proto);
                }
            }
        }
        (l3, _) => {
            let _ = write!(s, "ether type {l3:#06x}, len {}", p.len);
        }
    }
    if p.source == PacketSource::Socket {
        s.push_str(" (from socket: headers not built yet)");
    }
}
