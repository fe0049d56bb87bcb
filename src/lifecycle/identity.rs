//! Telling a new packet from an old one at the same skb address.
//!
//! The kernel recycles `sk_buff`s (and often their data buffers) at once.
//! When it frees one through a path no probe sees — the napi cache on
//! 6.18 frees a UDP datagram received on the allocating CPU without any
//! tracepoint — the BPF side still holds the address as tracked, and the
//! next packet to get that skb would join the old packet's context. Two
//! signals show a new packet even so:
//! - the same flow (addresses, ports, protocol) with a field that no NAT or
//!   forwarding step rewrites now different: the IPv4 identification, the
//!   TCP sequence number, the ICMP echo sequence;
//! - a receive in one network namespace followed by the start of a
//!   transmission in another: a packet crosses namespaces on receive (veth),
//!   never by being queued for transmission after it was received.

use crate::catalogue::table::probe_by_id;
use crate::events::{Event, PacketSource};
use crate::vocab::proto::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP};

fn from_headers(ev: &Event) -> bool {
    matches!(
        ev.pkt.source,
        PacketSource::Header | PacketSource::MacHeader
    )
}

fn group(ev: &Event) -> &'static str {
    probe_by_id(ev.probe).map_or("", |p| p.group)
}

/// Whether `ev`, on the skb of `prev` and marked tracked by the kernel, is
/// in fact another packet.
pub fn is_new_packet(prev: &Event, ev: &Event) -> bool {
    same_flow_other_packet(prev, ev) || namespace_jump(prev, ev)
}

fn same_flow_other_packet(prev: &Event, ev: &Event) -> bool {
    if !from_headers(prev) || !from_headers(ev) {
        return false;
    }
    let (a, b) = (&prev.pkt, &ev.pkt);
    let same_flow = a.l3_proto == b.l3_proto
        && a.l4_proto == b.l4_proto
        && a.saddr == b.saddr
        && a.daddr == b.daddr
        && a.sport == b.sport
        && a.dport == b.dport;
    if !same_flow {
        return false;
    }
    (a.ip_id != b.ip_id)
        || (a.l4_proto == IPPROTO_TCP && a.seq != b.seq)
        || (matches!(a.l4_proto, IPPROTO_ICMP | IPPROTO_ICMPV6)
            && a.icmp_type == b.icmp_type
            && a.icmp_seq != b.icmp_seq)
}

fn namespace_jump(prev: &Event, ev: &Event) -> bool {
    prev.netns != 0
        && ev.netns != 0
        && prev.netns != ev.netns
        && group(prev) == "link-in"
        && group(ev) == "link-out"
}
