//! What the kernel would have sent, decided again in user space for
//! replays: the packet filter (`filter_pkt` in bpf-templates/filter.bpf.h,
//! plus --pid and --netns) and the tracked-skb map. A packet is kept when
//! its first event matches, and its later events (clones too) follow it.

use crate::abi::{filter_flags as bits, nt_filter};
use crate::events::{flags, Event};
use rustc_hash::FxHashSet as HashSet;
use std::net::IpAddr;

/// The kernel's tracked-skb map, replayed: which skbs passed the filter.
pub struct Admission {
    filter: nt_filter,
    track: bool,
    admitted: HashSet<u64>,
}

impl Admission {
    /// Admission for this filter; `track`: the lifecycle modes, where a
    /// packet's later events follow its first.
    pub fn new(filter: nt_filter, track: bool) -> Admission {
        Admission {
            filter,
            track,
            admitted: HashSet::default(),
        }
    }

    /// Whether the kernel would have sent this event.
    pub fn admit(&mut self, ev: &Event) -> bool {
        let tracked =
            self.track && ev.flags & flags::TRACKED != 0 && self.admitted.contains(&ev.skb);
        let keep = tracked || matches(&self.filter, ev);
        if keep && self.track {
            // As the kernel's tracked map: a freed skb leaves it, so the
            // set stays bounded on long recordings.
            if ev.flags & flags::FREE != 0 {
                self.admitted.remove(&ev.skb);
            } else {
                self.admitted.insert(ev.skb);
            }
            if let Some(child) = ev.clone {
                self.admitted.insert(child);
            }
        }
        keep
    }
}

/// Whether a decoded event passes the filter: the user-space twin of the
/// BPF side's `filter_pkt` (bpf-templates/filter.bpf.h), for replays; the
/// offline test `filter_parity` holds the two together.
pub fn matches(f: &nt_filter, ev: &Event) -> bool {
    use crate::vocab::proto::{IPPROTO_TCP, IPPROTO_UDP};
    let p = &ev.pkt;
    let fl = f.flags;
    if p.sk_family != 0 && fl & bits::NON_IP == 0 {
        return false;
    }
    let addr_is = |want: &[u8; 16], family: u8, have: Option<IpAddr>| match (family, have) {
        (4, Some(IpAddr::V4(a))) => a.octets() == want[..4],
        (6, Some(IpAddr::V6(a))) => a.octets() == *want,
        _ => false,
    };
    if fl & bits::L3 != 0 && p.l3_proto != f.l3_proto {
        return false;
    }
    if fl & bits::L4 != 0 && (p.saddr.is_none() || p.l4_proto != f.l4_proto) {
        return false;
    }
    if fl & bits::SADDR != 0 && !addr_is(&f.saddr, f.saddr_family, p.saddr) {
        return false;
    }
    if fl & bits::DADDR != 0 && !addr_is(&f.daddr, f.daddr_family, p.daddr) {
        return false;
    }
    if fl & bits::ADDR != 0
        && !addr_is(&f.addr, f.addr_family, p.saddr)
        && !addr_is(&f.addr, f.addr_family, p.daddr)
    {
        return false;
    }
    if fl & (bits::SPORT | bits::DPORT | bits::PORT | bits::TCP_FLAGS) != 0 {
        if p.l4_proto != IPPROTO_TCP && p.l4_proto != IPPROTO_UDP {
            return false;
        }
        if fl & bits::SPORT != 0 && p.sport != f.sport
            || fl & bits::DPORT != 0 && p.dport != f.dport
            || fl & bits::PORT != 0 && p.sport != f.port && p.dport != f.port
        {
            return false;
        }
        if fl & bits::TCP_FLAGS != 0
            && (p.l4_proto != IPPROTO_TCP || p.tcp_flags & f.tcp_flags != f.tcp_flags)
        {
            return false;
        }
    }
    if fl & bits::PID != 0 && ev.pid != f.pid {
        return false;
    }
    if fl & bits::NETNS != 0 && ev.netns != f.netns {
        return false;
    }
    if fl & bits::LEN != 0 && (p.len < f.len_min || p.len > f.len_max) {
        return false;
    }
    true
}
