//! Events as user space sees them: decoded from the fixed-size records the
//! BPF side writes (`struct nt_event`, whose Rust twin the skeleton
//! generates), into plain Rust values the rest of the pipeline uses.

pub mod bytes;
pub mod nfrule;
pub mod snapshot;

use crate::abi::{nf_valid, nt_event, pkt_source};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `nt_event.flags` bits.
pub use crate::abi::event_flags as flags;

/// Where the packet summary came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PacketSource {
    /// Nothing usable: headers not built and no socket.
    None,
    Header,
    /// Parsed behind the MAC header (network header not set yet).
    MacHeader,
    /// From the socket: the packet's own headers are not built yet.
    Socket,
}

impl PacketSource {
    /// From its code: the kernel's `NT_SRC_*` (nettrace.h), which
    /// recordings store too. None for a code no source has.
    pub fn from_code(code: u8) -> Option<PacketSource> {
        match code {
            pkt_source::NONE => Some(PacketSource::None),
            pkt_source::HEADER => Some(PacketSource::Header),
            pkt_source::MAC => Some(PacketSource::MacHeader),
            pkt_source::SOCK => Some(PacketSource::Socket),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            PacketSource::None => pkt_source::NONE,
            PacketSource::Header => pkt_source::HEADER,
            PacketSource::MacHeader => pkt_source::MAC,
            PacketSource::Socket => pkt_source::SOCK,
        }
    }
}

/// The packet summary of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    pub source: PacketSource,
    pub l3_proto: u16,
    pub l4_proto: u8,
    pub saddr: Option<IpAddr>,
    pub daddr: Option<IpAddr>,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub arp_op: u16,
    /// IPv4 identification (0 for IPv6 and for DF datagrams of unconnected sockets).
    pub ip_id: u16,
    pub len: u32,
    /// From a socket of another family than IPv4/IPv6 (vsock, netlink,
    /// unix...): its `AF_*`; else 0. (Format 4 recordings and later.)
    #[serde(skip)]
    pub sk_family: u8,
}

/// What a netfilter function saw (bpf-templates/nettrace.h `struct nt_nf`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NfFacts {
    /// NFPROTO_* and the hook number, when the probe saw the hook state.
    pub pf_hook: Option<(u8, u8)>,
    pub table: Option<String>,
    pub chain: Option<String>,
    /// Table and chain are nftables' (else iptables').
    pub nft: bool,
    /// The hook's devices, as firewall rules match them (`-i`/`-o`,
    /// `iifname`/`oifname`). (Format 6 recordings and later.)
    pub devices: Option<HookDevices>,
    /// `skb->mark` and the conntrack attachment (`abi::nfct`) as the chain
    /// saw them. (Format 6 recordings and later.)
    pub skb: Option<NfSkb>,
    /// The firewall rule that decided a netfilter drop (src/firewall),
    /// filled in by the live loop. (Format 6 recordings and later.)
    pub rule: Option<Box<nfrule::NfRule>>,
    /// `--hooks`: the hook functions registered on this hook (addresses),
    /// filled in for drops by the tracing loop.
    pub hooks: Vec<u64>,
}

/// The devices of a netfilter hook; an empty name is no device (no input
/// device on OUTPUT, no output device before routing).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HookDevices {
    pub input: String,
    pub output: String,
}

/// What a firewall rule can test of the skb besides its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NfSkb {
    pub mark: u32,
    /// `abi::nfct`: the `ip_conntrack_info` and whether an entry is attached.
    pub nfct: u8,
}

/// The conntrack state a firewall rule tests (`--ctstate`, `ct state`),
/// as `nf_ct_get` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
    Untracked,
}

impl CtState {
    /// The names iptables and nft both print, lower case.
    pub const NAMES: [(&'static str, CtState); 5] = [
        ("new", CtState::New),
        ("established", CtState::Established),
        ("related", CtState::Related),
        ("invalid", CtState::Invalid),
        ("untracked", CtState::Untracked),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }

    pub fn from_name(name: &str) -> Option<CtState> {
        let name = name.to_ascii_lowercase();
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
    }
}

/// `enum ip_conntrack_info` values (include/uapi/linux/netfilter/nf_conntrack_common.h).
const IP_CT_UNTRACKED: u8 = 7;
const IP_CT_IS_REPLY: u8 = 3;

impl NfSkb {
    pub fn ct_state(&self) -> CtState {
        let info = self.nfct & crate::abi::nfct::INFO;
        if self.nfct & crate::abi::nfct::ENTRY == 0 {
            return if info == IP_CT_UNTRACKED {
                CtState::Untracked
            } else {
                CtState::Invalid
            };
        }
        match info % IP_CT_IS_REPLY {
            0 => CtState::Established,
            1 => CtState::Related,
            _ => CtState::New,
        }
    }

    /// The `nfct` byte of a packet in `state`, as a script writes it.
    pub fn nfct_of(state: CtState) -> u8 {
        let entry = crate::abi::nfct::ENTRY;
        match state {
            CtState::Established => entry,
            CtState::Related => entry | 1,
            CtState::New => entry | 2,
            CtState::Invalid => 0,
            CtState::Untracked => IP_CT_UNTRACKED,
        }
    }
}

impl NfFacts {
    /// The chain the packet ran: nftables names it; for iptables it is the
    /// chain of the hook (`FORWARD`, `PREROUTING`...).
    pub fn chain_name(&self) -> Option<&str> {
        self.chain.as_deref().or_else(|| {
            self.pf_hook
                .and_then(|(_, h)| crate::catalogue::nfnames::iptables_chain(h))
        })
    }
}

/// One probe hit. (Written whole into recordings: a field added here is a
/// new recording version and a change to `record::codec`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Nanoseconds since boot (CLOCK_MONOTONIC).
    pub ts: u64,
    pub skb: u64,
    pub probe: u32,
    pub flags: u32,
    pub ret: Option<i64>,
    /// Drop location (for drops).
    pub location: Option<u64>,
    /// The skb a clone/copy produced.
    pub clone: Option<u64>,
    pub reason: Option<u32>,
    pub stack_id: Option<i32>,
    pub pid: u32,
    pub cpu: u32,
    pub ifindex: u32,
    pub netns: u32,
    pub comm: ShortName,
    pub ifname: ShortName,
    pub pkt: Packet,
    /// Netfilter facts, for netfilter probes (boxed: most events have none).
    pub nf: Option<Box<NfFacts>>,
    /// `--drop-stack`: the kernel call stack (addresses, innermost first),
    /// filled in by the tracing loop from the stack map.
    pub stack: Frames,
    /// `--latency`: the skb's timed life, on the event that ended it.
    /// (Not in format 1 recordings, which predate it. Boxed: one event a
    /// packet at most has one.)
    #[serde(skip)]
    pub span: Option<Box<Span>>,
    /// `tcp_send_reset` on 6.10 and later: the reset's `enum
    /// sk_rst_reason` value. (Format 4 recordings and later.)
    #[serde(skip)]
    pub rst_reason: Option<u32>,
    /// `--sock`, `--rtt-detail`: the socket's state at this event.
    /// (Format 4 recordings and later. Boxed: most events have none.)
    #[serde(skip)]
    pub sock: Option<Box<SockFacts>>,
    /// `--pcap`, `--record-bytes`: the packet's bytes at this event (the
    /// first event of a packet and its drop). (Format 5 recordings.)
    #[serde(skip)]
    pub bytes: Option<Box<bytes::Captured>>,
}

/// Kernel stack frames behind one thin pointer (none: no allocation). An
/// `Event` then stays within 256 bytes, the most glibc's memmove copies
/// without a loop: events are moved several times each, and at 264 bytes
/// a replay took a tenth longer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
// A boxed Vec on purpose: one thin pointer, where `Box<[u64]>` is two words.
#[allow(clippy::box_collection)]
pub struct Frames(Option<Box<Vec<u64>>>);

impl std::ops::Deref for Frames {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl From<Vec<u64>> for Frames {
    fn from(frames: Vec<u64>) -> Frames {
        Frames((!frames.is_empty()).then(|| Box::new(frames)))
    }
}

/// As a sequence of addresses, as `Box<[u64]>` was (format 1 recordings).
impl Serialize for Frames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Frames {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Frames, D::Error> {
        Vec::<u64>::deserialize(d).map(Frames::from)
    }
}

/// A socket's state as one event saw it (`struct nt_sock`). The TCP
/// fields are 0 for other protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SockFacts {
    /// `TCP_ESTABLISHED`... (`sk_state`).
    pub state: u8,
    /// `TCP_CA_Open`... (`icsk_ca_state`).
    pub ca_state: u8,
    /// Unanswered retransmissions of the head segment (`icsk_retransmits`).
    pub retransmits: u8,
    /// The armed `ICSK_TIME_*` timer, 0 for none (`icsk_pending`).
    pub pending: u8,
    /// `IPPROTO_*`.
    pub protocol: u8,
    /// `inet_sock_set_state`: the state `state` changes to (0: no change).
    pub new_state: u8,
    pub srtt_us: u32,
    pub minrtt_us: u32,
    /// `--rtt-detail`: this ACK's RTT sample (0 elsewhere).
    pub rtt_us: u32,
    pub snd_cwnd: u32,
    pub ssthresh: u32,
    pub packets_out: u32,
    pub retrans_out: u32,
    pub total_retrans: u32,
    pub wmem_queued: i32,
    pub rmem_alloc: i32,
    pub sndbuf: i32,
    pub rcvbuf: i32,
}

impl SockFacts {
    fn from_raw(s: &crate::abi::nt_sock) -> SockFacts {
        SockFacts {
            state: s.state,
            ca_state: s.ca_state,
            retransmits: s.retransmits,
            pending: s.pending,
            protocol: s.protocol,
            new_state: s.new_state,
            srtt_us: s.srtt_us,
            // ~0: no sample yet.
            minrtt_us: if s.minrtt_us == u32::MAX {
                0
            } else {
                s.minrtt_us
            },
            rtt_us: s.rtt_us,
            snd_cwnd: s.snd_cwnd,
            ssthresh: s.ssthresh,
            packets_out: s.packets_out,
            retrans_out: s.retrans_out,
            total_retrans: s.total_retrans,
            wmem_queued: s.wmem_queued,
            rmem_alloc: s.rmem_alloc,
            sndbuf: s.sndbuf,
            rcvbuf: s.rcvbuf,
        }
    }
}

/// One skb's timed life (`struct nt_span`): from its first matched event
/// to the event that ended the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub first_ts: u64,
    pub end_ts: u64,
    pub first_probe: u32,
    pub end_probe: u32,
}

impl Span {
    /// The span's length in nanoseconds.
    pub fn ns(&self) -> u64 {
        self.end_ts.saturating_sub(self.first_ts)
    }
}

/// The text of a NUL-terminated kernel buffer (borrowed when valid UTF-8).
fn c_str(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
}

fn c_string(bytes: &[u8]) -> String {
    c_str(bytes).into_owned()
}

/// A short kernel name kept inline: a task's command or an interface name
/// (at most 15 bytes in the kernel). Every event carries two, and as heap
/// strings they were most of an event's allocations. Longer text (a
/// hand-written event, invalid bytes made into U+FFFD) is cut at a
/// character boundary. Serialized as a string, like the `String` it
/// replaced, so recordings are unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ShortName {
    len: u8,
    bytes: [u8; ShortName::CAPACITY],
}

impl ShortName {
    pub const CAPACITY: usize = 15;

    pub fn new(text: &str) -> ShortName {
        let mut end = text.len().min(Self::CAPACITY);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; Self::CAPACITY];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        ShortName {
            len: end as u8,
            bytes,
        }
    }

    /// From a NUL-terminated kernel buffer.
    pub fn from_c(bytes: &[u8]) -> ShortName {
        // Without --detail the kernel leaves both names empty: every
        // event decodes two of them.
        if bytes.first().is_none_or(|b| *b == 0) {
            return ShortName::default();
        }
        ShortName::new(&c_str(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only whole characters of a str are ever copied in.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

impl std::ops::Deref for ShortName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for ShortName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::fmt::Debug for ShortName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for ShortName {
    fn from(text: &str) -> ShortName {
        ShortName::new(text)
    }
}

impl Serialize for ShortName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ShortName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ShortName, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = ShortName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ShortName, E> {
                Ok(ShortName::new(v))
            }
        }
        d.deserialize_str(Visit)
    }
}

fn addr(family: u8, bytes: &[u8; 16]) -> Option<IpAddr> {
    match family {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        6 => Some(IpAddr::V6(Ipv6Addr::from(*bytes))),
        _ => None,
    }
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("event record of {got} bytes, expected at least {want}")]
    Size { got: usize, want: usize },
}

impl Event {
    /// Decodes one ring-buffer record. A record ends early when its last
    /// sections are empty (the netfilter facts, the `--detail` names:
    /// `struct nt_event`); what it leaves off reads as zero.
    pub fn decode(data: &[u8]) -> Result<Event, DecodeError> {
        let full = std::mem::size_of::<nt_event>();
        let least = std::mem::offset_of!(nt_event, nf);
        if data.len() < least {
            return Err(DecodeError::Size {
                got: data.len(),
                want: least,
            });
        }
        let mut raw = nt_event::default();
        // SAFETY: nt_event is plain old data (integers and byte arrays), so
        // any bytes are a valid value; at most size_of::<nt_event>() bytes
        // are copied, from a slice that holds them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (&mut raw as *mut nt_event).cast::<u8>(),
                data.len().min(full),
            );
        }
        Ok(Event::from_raw(&raw))
    }

    pub fn from_raw(raw: &nt_event) -> Event {
        let p = &raw.pkt;
        let source = PacketSource::from_code(p.source).unwrap_or(PacketSource::None);
        let f = raw.flags;
        let n = &raw.nf;
        let nf = (n.valid != 0).then(|| {
            Box::new(NfFacts {
                pf_hook: (n.valid & nf_valid::HOOK != 0).then_some((n.pf, n.hook)),
                table: (n.valid & nf_valid::TABLE != 0)
                    .then(|| c_string(&n.table.map(|c| c as u8))),
                chain: (n.valid & nf_valid::CHAIN != 0)
                    .then(|| c_string(&n.chain.map(|c| c as u8))),
                nft: n.valid & nf_valid::NFT != 0,
                devices: (n.valid & nf_valid::DEVS != 0).then(|| HookDevices {
                    input: c_string(&n.in_dev.map(|c| c as u8)),
                    output: c_string(&n.out_dev.map(|c| c as u8)),
                }),
                skb: (n.valid & nf_valid::SKB != 0).then_some(NfSkb {
                    mark: n.mark,
                    nfct: n.nfct,
                }),
                rule: None,
                hooks: Vec::new(),
            })
        });
        Event {
            ts: raw.ts,
            skb: raw.skb,
            probe: raw.probe,
            flags: f,
            ret: (f & flags::RET != 0).then_some(raw.ret),
            location: (f & flags::DROP != 0).then_some(raw.aux),
            clone: (f & flags::CLONE != 0).then_some(raw.aux),
            reason: (f & flags::DROP != 0).then_some(raw.reason),
            stack_id: (f & flags::STACK != 0).then_some(raw.stack_id),
            pid: raw.pid,
            cpu: raw.cpu,
            ifindex: raw.ifindex,
            netns: raw.netns,
            comm: ShortName::from_c(&raw.comm.map(|c| c as u8)),
            ifname: ShortName::from_c(&raw.ifname.map(|c| c as u8)),
            pkt: Packet {
                source,
                l3_proto: p.l3_proto,
                l4_proto: p.l4_proto,
                saddr: addr(p.family, &p.saddr),
                daddr: addr(p.family, &p.daddr),
                sport: p.sport,
                dport: p.dport,
                seq: p.seq,
                ack: p.ack,
                tcp_flags: p.tcp_flags,
                icmp_type: p.icmp_type,
                icmp_code: p.icmp_code,
                icmp_id: p.icmp_id,
                icmp_seq: p.icmp_seq,
                arp_op: p.arp_op,
                ip_id: p.ip_id,
                len: p.len,
                sk_family: p.sk_family,
            },
            nf,
            stack: Frames::default(),
            span: (f & flags::SPAN != 0).then(|| {
                Box::new(Span {
                    first_ts: raw.span.first_ts,
                    end_ts: raw.span.end_ts,
                    first_probe: raw.span.first_probe,
                    end_probe: raw.span.end_probe,
                })
            }),
            rst_reason: (f & flags::RST != 0).then_some(raw.reason),
            sock: (f & flags::SOCK != 0).then(|| Box::new(SockFacts::from_raw(&raw.sock))),
            bytes: None,
        }
    }

    /// An event with nothing but its time, skb and probe (tests, replay).
    pub fn new(ts: u64, skb: u64, probe: u32) -> Event {
        Event {
            ts,
            skb,
            probe,
            flags: 0,
            ret: None,
            location: None,
            clone: None,
            reason: None,
            stack_id: None,
            pid: 0,
            cpu: 0,
            ifindex: 0,
            netns: 0,
            comm: ShortName::default(),
            ifname: ShortName::default(),
            pkt: Packet::empty(),
            nf: None,
            stack: Frames::default(),
            span: None,
            rst_reason: None,
            sock: None,
            bytes: None,
        }
    }

    pub fn is_drop(&self) -> bool {
        self.flags & flags::DROP != 0
    }
}

impl Packet {
    /// An empty summary, for tests and hand-made events.
    pub fn empty() -> Packet {
        Packet {
            source: PacketSource::None,
            l3_proto: 0,
            l4_proto: 0,
            saddr: None,
            daddr: None,
            sport: 0,
            dport: 0,
            seq: 0,
            ack: 0,
            tcp_flags: 0,
            icmp_type: 0,
            icmp_code: 0,
            icmp_id: 0,
            icmp_seq: 0,
            arp_op: 0,
            ip_id: 0,
            len: 0,
            sk_family: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_record_may_leave_its_empty_sections_off() {
        use super::{nf_valid, DecodeError, Event};
        use crate::abi::nt_event;
        use std::mem::{offset_of, size_of};
        let mut raw = nt_event {
            skb: 0xffff_8880_0000_1000,
            ..Default::default()
        };
        raw.nf.valid = nf_valid::HOOK;
        raw.nf.pf = 2;
        raw.nf.hook = 1;
        raw.comm[0] = b'x' as _;
        // SAFETY: nt_event is plain old data; the slice covers it exactly.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&raw as *const nt_event).cast::<u8>(),
                size_of::<nt_event>(),
            )
        };
        let whole = Event::decode(bytes).unwrap();
        assert_eq!(whole.comm.as_str(), "x");
        assert_eq!(whole.nf.as_ref().and_then(|n| n.pf_hook), Some((2, 1)));
        let without_names = Event::decode(&bytes[..offset_of!(nt_event, comm)]).unwrap();
        assert_eq!(without_names.comm.as_str(), "");
        assert_eq!(without_names.nf, whole.nf);
        let without_nf = Event::decode(&bytes[..offset_of!(nt_event, nf)]).unwrap();
        assert!(without_nf.nf.is_none());
        assert_eq!(without_nf.skb, raw.skb);
        let short = offset_of!(nt_event, nf) - 1;
        assert_eq!(
            Event::decode(&bytes[..short]),
            Err(DecodeError::Size {
                got: short,
                want: offset_of!(nt_event, nf)
            })
        );
    }

    /// Events are held by the hundred thousand (a packet waits out its grace
    /// period) and moved several times each: keep them within 256 bytes
    /// (`Frames`).
    #[test]
    fn an_event_stays_small() {
        let size = std::mem::size_of::<super::Event>();
        assert!(size <= 256, "Event is {size} bytes");
    }
}
