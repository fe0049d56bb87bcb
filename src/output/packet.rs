//! One-line packet summaries in the original tool's shapes:
//! `TCP: 1.2.3.4:80 -> 5.6.7.8:4000 seq:1, ack:2, flags:AP`,
//! `ICMP: 1.2.3.4 -> 5.6.7.8 ping request, seq: 7`, `UDP: ...`, `ARP: ...`.
//! When the probe saw no usable header the summary says so instead of
//! printing whatever bytes were there.

use super::text::{push_int, push_ip};
use crate::events::{Packet, PacketSource};
use crate::vocab::proto::{
    l4_name, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP,
    IPPROTO_UDP,
};
use crate::vocab::tcp::TCP_FLAGS;
use std::fmt::Write as _;
use std::net::IpAddr;

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

/// The summary of a packet, e.g. `TCP: 127.0.0.1:40392 -> 127.0.0.1:9999 seq:3067626996, ack:0, flags:S`.
pub fn summary(p: &Packet) -> String {
    let mut s = String::new();
    push_summary(&mut s, p);
    s
}

/// Appends the summary of a packet to `s`.
pub fn push_summary(s: &mut String, p: &Packet) {
    push_summary_noting(s, p, true);
}

/// The summary of an event's packet. An event with no skb (a socket-level
/// probe) has its socket's addresses and ports, without the note that a
/// packet's headers are not built yet.
pub fn push_event_summary(s: &mut String, ev: &crate::events::Event) {
    push_summary_noting(s, &ev.pkt, ev.skb != 0);
}

/// `push_event_summary` as a new string.
pub fn event_summary(ev: &crate::events::Event) -> String {
    let mut s = String::new();
    push_event_summary(&mut s, ev);
    s
}

fn push_summary_noting(s: &mut String, p: &Packet, note_socket: bool) {
    if p.sk_family != 0 {
        // `vsock socket (not IP), len 64`: what a non-IP socket's skb is.
        s.push_str(&crate::vocab::family::name(p.sk_family));
        s.push_str(" socket (not IP), len ");
        push_int(s, p.len);
        return;
    }
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
    if p.source == PacketSource::Socket && note_socket {
        s.push_str(" (from socket: headers not built yet)");
    }
}
