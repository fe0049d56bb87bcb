//! Protocols by number and by name: one table read by the `-p` filter, the
//! rule language's `proto` field, event scripts, and the packet summaries.

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;

/// A protocol as a filter or a rule names it: an ethertype (L3) or an IP
/// protocol number (L4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    L3(u16),
    L4(u8),
}

/// Every protocol nettrace names: the printed name first, then the
/// aliases accepted on input.
const PROTOCOLS: &[(Proto, &[&str])] = &[
    (Proto::L3(ETH_P_IP), &["ip", "ipv4"]),
    (Proto::L3(ETH_P_IPV6), &["ipv6", "ip6"]),
    (Proto::L3(ETH_P_ARP), &["arp"]),
    (Proto::L4(IPPROTO_TCP), &["tcp"]),
    (Proto::L4(IPPROTO_UDP), &["udp"]),
    (Proto::L4(IPPROTO_ICMP), &["icmp"]),
    (Proto::L4(IPPROTO_ICMPV6), &["icmpv6", "icmp6", "ipv6-icmp"]),
    (Proto::L4(2), &["igmp"]),
    (Proto::L4(4), &["ipip"]),
    (Proto::L4(47), &["gre"]),
    (Proto::L4(50), &["esp"]),
    (Proto::L4(51), &["ah"]),
    (Proto::L4(132), &["sctp"]),
    (Proto::L4(136), &["udplite"]),
];

/// The accepted names, for help texts and error messages.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROTOCOLS.iter().map(|(_, names)| names[0])
}

/// `ip, ipv6, arp, tcp, ...`: the accepted names as one line.
pub fn names_line() -> String {
    names().collect::<Vec<_>>().join(", ")
}

/// A protocol by any of its names, case-insensitive.
pub fn by_name(s: &str) -> Option<Proto> {
    PROTOCOLS
        .iter()
        .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(s)))
        .map(|(p, _)| *p)
}

/// The name of an IP protocol number. IPv6-in-IPv4 (41) is shown as `ipv6`
/// although `-p ipv6` filters the ethertype.
pub fn l4_name(proto: u8) -> Option<&'static str> {
    if proto == 41 {
        return Some("ipv6");
    }
    PROTOCOLS
        .iter()
        .find(|(p, _)| *p == Proto::L4(proto))
        .map(|(_, names)| names[0])
}
