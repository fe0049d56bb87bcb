//! The contract between the BPF programs and user space, taken from the
//! BPF side rather than typed again: the record and settings structs and
//! the flag enums of bpf-templates/nettrace.h arrive through BTF in the
//! layout object's skeleton (libbpf-cargo), and the kprobe cookie layout
//! comes from the codegen table that also writes the C readers. Every
//! other module names these constants through here.

/// The skeleton of the small layout object (bpf-templates/layout.bpf.c):
/// its `types` are nettrace.h's structs and enums and the `.rodata`
/// layout of the main object.
pub mod layout {
    #![allow(
        clippy::all,
        clippy::pedantic,
        dead_code,
        unused_imports,
        non_snake_case,
        non_camel_case_types
    )]
    include!(concat!(env!("OUT_DIR"), "/layout.skel.rs"));
}

use layout::types as t;
pub use layout::types::{
    nt_bytes, nt_config, nt_event, nt_filter, nt_hist, nt_pkt, nt_sock, nt_span, nt_span_state,
};

/// `nt_event.flags` (`enum nt_event_flags`).
pub mod event_flags {
    use super::t::nt_event_flags as F;
    pub const RET: u32 = F::NT_EV_RET.0;
    pub const DROP: u32 = F::NT_EV_DROP.0;
    pub const CLONE: u32 = F::NT_EV_CLONE.0;
    pub const FREE: u32 = F::NT_EV_FREE.0;
    pub const TRACKED: u32 = F::NT_EV_TRACKED.0;
    pub const STACK: u32 = F::NT_EV_STACK.0;
    pub const REUSED: u32 = F::NT_EV_REUSED.0;
    pub const SPAN: u32 = F::NT_EV_SPAN.0;
    pub const SOCK: u32 = F::NT_EV_SOCK.0;
    pub const RST: u32 = F::NT_EV_RST.0;
}

/// `PROBE_FLAGS[probe]` (`enum nt_probe_flags`): a probe's roles in a run.
pub mod probe_flags {
    use super::t::nt_probe_flags as F;
    pub const MATCHER: u8 = F::NT_PROBE_MATCHER.0 as u8;
    pub const STACK: u8 = F::NT_PROBE_STACK.0 as u8;
    pub const END: u8 = F::NT_PROBE_END.0 as u8;
}

/// `nt_config.latency` (`enum nt_latency_mode`).
pub mod latency_mode {
    use super::t::nt_latency_mode as F;
    pub const OFF: u8 = F::NT_LATENCY_OFF.0 as u8;
    pub const SPANS: u8 = F::NT_LATENCY_SPANS.0 as u8;
    pub const HISTOGRAM: u8 = F::NT_LATENCY_HISTOGRAM.0 as u8;
}

/// `nt_config.rtt` (`enum nt_rtt_mode`).
pub mod rtt_mode {
    use super::t::nt_rtt_mode as F;
    pub const OFF: u8 = F::NT_RTT_OFF.0 as u8;
    pub const HISTOGRAM: u8 = F::NT_RTT_HISTOGRAM.0 as u8;
    pub const DETAIL: u8 = F::NT_RTT_DETAIL.0 as u8;
}

/// Slots of the kernel's log2 histograms (`struct nt_hist`): slot k counts
/// values in [2^k, 2^(k+1)) microseconds, slot 0 also 0.
pub const HIST_SLOTS: usize = t::nt_hist_size::NT_HIST_SLOTS.0 as usize;

/// `nt_filter.flags` (`enum nt_filter_flags`): which filters are active.
pub mod filter_flags {
    use super::t::nt_filter_flags as F;
    pub const SADDR: u32 = F::NT_F_SADDR.0;
    pub const DADDR: u32 = F::NT_F_DADDR.0;
    pub const ADDR: u32 = F::NT_F_ADDR.0;
    pub const SPORT: u32 = F::NT_F_SPORT.0;
    pub const DPORT: u32 = F::NT_F_DPORT.0;
    pub const PORT: u32 = F::NT_F_PORT.0;
    pub const L3: u32 = F::NT_F_L3.0;
    pub const L4: u32 = F::NT_F_L4.0;
    pub const PID: u32 = F::NT_F_PID.0;
    pub const NETNS: u32 = F::NT_F_NETNS.0;
    pub const LEN: u32 = F::NT_F_LEN.0;
    pub const TCP_FLAGS: u32 = F::NT_F_TCP_FLAGS.0;
    /// Not a filter: `--non-ip` lets the skbs of non-IP sockets through.
    pub const NON_IP: u32 = F::NT_F_NON_IP.0;
    /// The bits that narrow what is reported.
    pub const NARROWING: u32 = !NON_IP;
}

/// `nt_nf.valid` (`enum nt_nf_valid`): which netfilter facts an event has.
pub mod nf_valid {
    use super::t::nt_nf_valid as F;
    pub const HOOK: u8 = F::NT_NF_HOOK.0 as u8;
    pub const TABLE: u8 = F::NT_NF_TABLE.0 as u8;
    pub const CHAIN: u8 = F::NT_NF_CHAIN.0 as u8;
    pub const NFT: u8 = F::NT_NF_NFT.0 as u8;
    pub const DEVS: u8 = F::NT_NF_DEVS.0 as u8;
    pub const SKB: u8 = F::NT_NF_SKB.0 as u8;
}

/// `nt_nf.nfct` (`enum nt_nfct`): the packet's conntrack attachment.
pub mod nfct {
    use super::t::nt_nfct as F;
    /// `enum ip_conntrack_info`.
    pub const INFO: u8 = F::NT_NFCT_INFO.0 as u8;
    /// A conntrack entry is attached.
    pub const ENTRY: u8 = F::NT_NFCT_ENTRY.0 as u8;
}

/// `nt_pkt.source` (`enum nt_pkt_source`): where a packet summary came from.
pub mod pkt_source {
    use super::t::nt_pkt_source as F;
    pub const NONE: u8 = F::NT_SRC_NONE.0 as u8;
    pub const HEADER: u8 = F::NT_SRC_HEADER.0 as u8;
    pub const MAC: u8 = F::NT_SRC_MAC.0 as u8;
    pub const SOCK: u8 = F::NT_SRC_SOCK.0 as u8;
}

/// `nt_bytes.link` (`enum nt_link`): where captured bytes start.
pub mod link {
    use super::t::nt_link as F;
    pub const RAW: u8 = F::NT_LINK_RAW.0 as u8;
    pub const ETH: u8 = F::NT_LINK_ETH.0 as u8;
}

/// Bytes captured per packet at most (`NT_SNAP_MAX`).
pub const SNAP_MAX: u32 = t::nt_snap::NT_SNAP_MAX.0;

/// The `nf_hooks` map slot of family `pf`'s `hook`, as the BPF side
/// computes it.
pub fn hook_slot(pf: u8, hook: u8) -> u32 {
    u32::from(pf) * t::nt_hook_slots::NT_NF_HOOKS_PER_PF.0 + u32::from(hook)
}

/// The `.rodata` of the main object: the settings written before load.
pub type Rodata = t::rodata;
