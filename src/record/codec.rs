//! The event frame of recording format 2: a fixed part of `FIXED` bytes
//! (every field an event always has, at a fixed offset, little-endian;
//! addresses at their full 16 bytes), then the optional fields a presence
//! byte names. Format 1 stored events with postcard; its varints and a
//! serde call per field cost ~1,600 instructions an event, a third of a
//! replay with the default rules (BENCHMARKS.md). The fixed part is read
//! after one length check. The layout is in docs/recording.md; a damaged
//! frame is an error, never a panic or an allocation larger than the frame.

use crate::events::nfrule::{Firewall, NfRule, RuleRef};
use crate::events::{Event, HookDevices, NfFacts, NfSkb, Packet, PacketSource, ShortName};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which optional fields an event frame carries (its presence byte).
mod has {
    pub const RET: u8 = 1 << 0;
    pub const LOCATION: u8 = 1 << 1;
    pub const CLONE: u8 = 1 << 2;
    pub const REASON: u8 = 1 << 3;
    pub const STACK_ID: u8 = 1 << 4;
    pub const NF: u8 = 1 << 5;
    pub const STACK: u8 = 1 << 6;
    /// Format 4: a second presence byte (`more`) follows the first.
    /// (Format 3 had the span here, and no second byte.)
    pub const MORE: u8 = 1 << 7;
}

/// The second presence byte (format 4).
mod more {
    pub const SPAN: u8 = 1 << 0;
    pub const RST_REASON: u8 = 1 << 1;
    pub const SOCK: u8 = 1 << 2;
    pub const SK_FAMILY: u8 = 1 << 3;
    /// Format 5: the packet's bytes (`--pcap`, `--record-bytes`).
    pub const BYTES: u8 = 1 << 4;
}

/// Which optional netfilter facts follow (the netfilter presence byte).
mod nf_has {
    pub const PF_HOOK: u8 = 1 << 0;
    pub const TABLE: u8 = 1 << 1;
    pub const CHAIN: u8 = 1 << 2;
    pub const NFT: u8 = 1 << 3;
    /// Format 6: the hook's devices, the skb's mark and conntrack state.
    pub const DEVICES: u8 = 1 << 4;
    pub const SKB: u8 = 1 << 5;
    /// Format 6: the firewall rule that decided the drop.
    pub const RULE: u8 = 1 << 6;
}

/// Appends the frame of `ev` to `out`.
pub fn encode(ev: &Event, out: &mut Vec<u8>) {
    let mut present = 0;
    for (set, bit) in [
        (ev.ret.is_some(), has::RET),
        (ev.location.is_some(), has::LOCATION),
        (ev.clone.is_some(), has::CLONE),
        (ev.reason.is_some(), has::REASON),
        (ev.stack_id.is_some(), has::STACK_ID),
        (ev.nf.is_some(), has::NF),
        (!ev.stack.is_empty(), has::STACK),
    ] {
        if set {
            present |= bit;
        }
    }
    let mut more = 0;
    for (set, bit) in [
        (ev.span.is_some(), more::SPAN),
        (ev.rst_reason.is_some(), more::RST_REASON),
        (ev.sock.is_some(), more::SOCK),
        (ev.pkt.sk_family != 0, more::SK_FAMILY),
        (ev.bytes.is_some(), more::BYTES),
    ] {
        if set {
            more |= bit;
        }
    }
    if more != 0 {
        present |= has::MORE;
    }
    out.extend_from_slice(&ev.ts.to_le_bytes());
    out.extend_from_slice(&ev.skb.to_le_bytes());
    for v in [ev.probe, ev.flags, ev.pid, ev.cpu, ev.ifindex, ev.netns] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.push(present);
    encode_packet(&ev.pkt, out);
    if more != 0 {
        out.push(more);
    }
    if let Some(v) = ev.ret {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [ev.location, ev.clone].into_iter().flatten() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(v) = ev.reason {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(v) = ev.stack_id {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for name in [&ev.comm, &ev.ifname] {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    if let Some(nf) = &ev.nf {
        encode_nf(nf, out);
    }
    if !ev.stack.is_empty() {
        encode_addresses(&ev.stack, out);
    }
    if let Some(span) = &ev.span {
        out.extend_from_slice(&span.first_ts.to_le_bytes());
        out.extend_from_slice(&span.end_ts.to_le_bytes());
        out.extend_from_slice(&span.first_probe.to_le_bytes());
        out.extend_from_slice(&span.end_probe.to_le_bytes());
    }
    if let Some(r) = ev.rst_reason {
        out.extend_from_slice(&r.to_le_bytes());
    }
    if let Some(s) = &ev.sock {
        out.extend_from_slice(&[
            s.state,
            s.ca_state,
            s.retransmits,
            s.pending,
            s.protocol,
            s.new_state,
        ]);
        for v in [
            s.srtt_us,
            s.minrtt_us,
            s.rtt_us,
            s.snd_cwnd,
            s.ssthresh,
            s.packets_out,
            s.retrans_out,
            s.total_retrans,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [s.wmem_queued, s.rmem_alloc, s.sndbuf, s.rcvbuf] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    if ev.pkt.sk_family != 0 {
        out.push(ev.pkt.sk_family);
    }
    if let Some(b) = &ev.bytes {
        out.push(b.link.code());
        out.extend_from_slice(&b.orig_len.to_le_bytes());
        // At most NT_SNAP_MAX bytes: a u16 holds the count.
        out.extend_from_slice(&(b.data.len() as u16).to_le_bytes());
        out.extend_from_slice(&b.data);
    }
}

/// Bytes of the fixed part: the event's always-present fields (40), the
/// presence byte, the packet summary (65).
pub const FIXED: usize = 40 + 1 + 65;

fn encode_packet(p: &Packet, out: &mut Vec<u8>) {
    out.push(p.source.code());
    out.extend_from_slice(&p.l3_proto.to_le_bytes());
    out.push(p.l4_proto);
    for a in [p.saddr, p.daddr] {
        let mut bytes = [0u8; 16];
        let family = match a {
            None => 0,
            Some(IpAddr::V4(a)) => {
                bytes[..4].copy_from_slice(&a.octets());
                4
            }
            Some(IpAddr::V6(a)) => {
                bytes = a.octets();
                6
            }
        };
        out.push(family);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(&p.sport.to_le_bytes());
    out.extend_from_slice(&p.dport.to_le_bytes());
    out.extend_from_slice(&p.seq.to_le_bytes());
    out.extend_from_slice(&p.ack.to_le_bytes());
    out.extend_from_slice(&[p.tcp_flags, p.icmp_type, p.icmp_code]);
    for v in [p.icmp_id, p.icmp_seq, p.arp_op, p.ip_id] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&p.len.to_le_bytes());
}

fn encode_nf(nf: &NfFacts, out: &mut Vec<u8>) {
    let mut present = 0;
    for (set, bit) in [
        (nf.pf_hook.is_some(), nf_has::PF_HOOK),
        (nf.table.is_some(), nf_has::TABLE),
        (nf.chain.is_some(), nf_has::CHAIN),
        (nf.nft, nf_has::NFT),
        (nf.devices.is_some(), nf_has::DEVICES),
        (nf.skb.is_some(), nf_has::SKB),
        (nf.rule.is_some(), nf_has::RULE),
    ] {
        if set {
            present |= bit;
        }
    }
    out.push(present);
    if let Some((pf, hook)) = nf.pf_hook {
        out.extend_from_slice(&[pf, hook]);
    }
    let devices = nf.devices.iter().flat_map(|d| [&d.input, &d.output]);
    for name in [&nf.table, &nf.chain].into_iter().flatten().chain(devices) {
        encode_text(name, out);
    }
    if let Some(skb) = nf.skb {
        out.extend_from_slice(&skb.mark.to_le_bytes());
        out.push(skb.nfct);
    }
    if let Some(rule) = &nf.rule {
        encode_nf_rule(rule, out);
    }
    encode_addresses(&nf.hooks, out);
}

/// A u16 length and the text: kernel names are far shorter, and a longer
/// text (a rule's) is cut where a u16 length ends.
fn encode_text(text: &str, out: &mut Vec<u8>) {
    let mut end = text.len().min(u16::MAX as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..end]);
}

fn encode_texts(list: &[String], out: &mut Vec<u8>) {
    let n = list.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    for t in &list[..n] {
        encode_text(t, out);
    }
}

fn encode_rule_ref(r: &RuleRef, out: &mut Vec<u8>) {
    out.push(r.firewall.code());
    encode_text(&r.table, out);
    encode_text(&r.chain, out);
    out.extend_from_slice(&r.position.to_le_bytes());
    out.push(u8::from(r.handle.is_some()));
    out.extend_from_slice(&r.handle.unwrap_or(0).to_le_bytes());
    encode_text(&r.text, out);
}

/// Tag 0: a rule, its jumps and assumptions; tag 1: why none, candidates.
fn encode_nf_rule(rule: &NfRule, out: &mut Vec<u8>) {
    match rule {
        NfRule::Rule { rule, via, assumed } => {
            out.push(0);
            encode_rule_ref(rule, out);
            encode_texts(via, out);
            encode_texts(assumed, out);
        }
        NfRule::Undecided { why, candidates } => {
            out.push(1);
            encode_text(why, out);
            let n = candidates.len().min(u16::MAX as usize);
            out.extend_from_slice(&(n as u16).to_le_bytes());
            for c in &candidates[..n] {
                encode_rule_ref(c, out);
            }
        }
    }
}

fn encode_addresses(list: &[u64], out: &mut Vec<u8>) {
    out.extend_from_slice(&(list.len() as u32).to_le_bytes());
    for a in list {
        out.extend_from_slice(&a.to_le_bytes());
    }
}

/// Why an event frame does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("the event ends early")]
    Short,
    #[error("{0} bytes follow the event")]
    Trailing(usize),
    #[error("an address of family {0}")]
    Family(u8),
    #[error("a packet source {0}")]
    Source(u8),
    #[error("a name that is not UTF-8")]
    Utf8,
    #[error("packet bytes of link type {0}")]
    Link(u8),
    #[error("a firewall of code {0}")]
    Firewall(u8),
    #[error("a firewall rule of tag {0}")]
    NfRule(u8),
}

/// Decodes one event frame of the format this nettrace writes.
pub fn decode(frame: &[u8]) -> Result<Event, CodecError> {
    decode_format(frame, super::FORMAT_VERSION)
}

/// Decodes one event frame of recording format `version` (2 or later).
#[inline(always)]
pub fn decode_format(frame: &[u8], version: u16) -> Result<Event, CodecError> {
    let (fixed, rest) = frame
        .split_first_chunk::<FIXED>()
        .ok_or(CodecError::Short)?;
    let mut f = Fixed {
        bytes: fixed,
        at: 0,
    };
    let ts = u64::from_le_bytes(f.take());
    let skb = u64::from_le_bytes(f.take());
    let mut ev = Event::new(ts, skb, u32::from_le_bytes(f.take()));
    ev.flags = u32::from_le_bytes(f.take());
    ev.pid = u32::from_le_bytes(f.take());
    ev.cpu = u32::from_le_bytes(f.take());
    ev.ifindex = u32::from_le_bytes(f.take());
    ev.netns = u32::from_le_bytes(f.take());
    let [present] = f.take();
    ev.pkt = f.packet()?;
    let mut r = Reader { rest };
    let more = match (present & has::MORE != 0, version) {
        (false, _) => 0,
        (true, ..=3) => more::SPAN,
        (true, _) => r.u8()?,
    };
    if present & has::RET != 0 {
        ev.ret = Some(r.u64()? as i64);
    }
    if present & has::LOCATION != 0 {
        ev.location = Some(r.u64()?);
    }
    if present & has::CLONE != 0 {
        ev.clone = Some(r.u64()?);
    }
    if present & has::REASON != 0 {
        ev.reason = Some(r.u32()?);
    }
    if present & has::STACK_ID != 0 {
        ev.stack_id = Some(r.u32()? as i32);
    }
    ev.comm = r.short_name()?;
    ev.ifname = r.short_name()?;
    if present & has::NF != 0 {
        ev.nf = Some(Box::new(r.nf()?));
    }
    if present & has::STACK != 0 {
        ev.stack = r.addresses()?.into();
    }
    if more & more::SPAN != 0 {
        ev.span = Some(Box::new(crate::events::Span {
            first_ts: r.u64()?,
            end_ts: r.u64()?,
            first_probe: r.u32()?,
            end_probe: r.u32()?,
        }));
    }
    if more & more::RST_REASON != 0 {
        ev.rst_reason = Some(r.u32()?);
    }
    if more & more::SOCK != 0 {
        let [state, ca_state, retransmits, pending, protocol, new_state] = r.take::<6>()?;
        ev.sock = Some(Box::new(crate::events::SockFacts {
            state,
            ca_state,
            retransmits,
            pending,
            protocol,
            new_state,
            srtt_us: r.u32()?,
            minrtt_us: r.u32()?,
            rtt_us: r.u32()?,
            snd_cwnd: r.u32()?,
            ssthresh: r.u32()?,
            packets_out: r.u32()?,
            retrans_out: r.u32()?,
            total_retrans: r.u32()?,
            wmem_queued: r.u32()? as i32,
            rmem_alloc: r.u32()? as i32,
            sndbuf: r.u32()? as i32,
            rcvbuf: r.u32()? as i32,
        }));
    }
    if more & more::SK_FAMILY != 0 {
        ev.pkt.sk_family = r.u8()?;
    }
    if more & more::BYTES != 0 {
        let code = r.u8()?;
        let link = crate::events::bytes::Link::from_code(code).ok_or(CodecError::Link(code))?;
        let orig_len = r.u32()?;
        let n = r.u16()? as usize;
        ev.bytes = Some(Box::new(crate::events::bytes::Captured {
            link,
            orig_len,
            data: r.bytes(n)?.into(),
        }));
    }
    match r.rest.len() {
        0 => Ok(ev),
        n => Err(CodecError::Trailing(n)),
    }
}

/// The fixed part, read at offsets the compiler knows: no bounds checks.
struct Fixed<'a> {
    bytes: &'a [u8; FIXED],
    at: usize,
}

impl Fixed<'_> {
    #[inline(always)]
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut v = [0u8; N];
        v.copy_from_slice(&self.bytes[self.at..self.at + N]);
        self.at += N;
        v
    }

    #[inline(always)]
    fn address(&mut self) -> Result<Option<IpAddr>, CodecError> {
        let [family] = self.take();
        let bytes: [u8; 16] = self.take();
        match family {
            0 => Ok(None),
            4 => Ok(Some(IpAddr::V4(Ipv4Addr::new(
                bytes[0], bytes[1], bytes[2], bytes[3],
            )))),
            6 => Ok(Some(IpAddr::V6(Ipv6Addr::from(bytes)))),
            f => Err(CodecError::Family(f)),
        }
    }

    #[inline(always)]
    fn packet(&mut self) -> Result<Packet, CodecError> {
        let [code] = self.take();
        let source = PacketSource::from_code(code).ok_or(CodecError::Source(code))?;
        let l3_proto = u16::from_le_bytes(self.take());
        let [l4_proto] = self.take();
        let saddr = self.address()?;
        let daddr = self.address()?;
        let sport = u16::from_le_bytes(self.take());
        let dport = u16::from_le_bytes(self.take());
        let seq = u32::from_le_bytes(self.take());
        let ack = u32::from_le_bytes(self.take());
        let [tcp_flags, icmp_type, icmp_code] = self.take();
        Ok(Packet {
            source,
            l3_proto,
            l4_proto,
            saddr,
            daddr,
            sport,
            dport,
            seq,
            ack,
            tcp_flags,
            icmp_type,
            icmp_code,
            icmp_id: u16::from_le_bytes(self.take()),
            icmp_seq: u16::from_le_bytes(self.take()),
            arp_op: u16::from_le_bytes(self.take()),
            ip_id: u16::from_le_bytes(self.take()),
            len: u32::from_le_bytes(self.take()),
            sk_family: 0,
        })
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(CodecError::Short)?;
        self.rest = rest;
        Ok(*head)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.rest.len() {
            return Err(CodecError::Short);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        self.take().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        self.take().map(u64::from_le_bytes)
    }

    fn text(&mut self, len: usize) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.bytes(len)?).map_err(|_| CodecError::Utf8)
    }

    fn short_name(&mut self) -> Result<ShortName, CodecError> {
        let len = self.u8()? as usize;
        if len == 0 {
            return Ok(ShortName::default());
        }
        Ok(ShortName::new(self.text(len)?))
    }

    fn nf(&mut self) -> Result<NfFacts, CodecError> {
        let present = self.u8()?;
        let mut nf = NfFacts {
            nft: present & nf_has::NFT != 0,
            ..NfFacts::default()
        };
        if present & nf_has::PF_HOOK != 0 {
            let [pf, hook] = self.take::<2>()?;
            nf.pf_hook = Some((pf, hook));
        }
        if present & nf_has::TABLE != 0 {
            let len = self.u16()? as usize;
            nf.table = Some(self.text(len)?.to_string());
        }
        if present & nf_has::CHAIN != 0 {
            let len = self.u16()? as usize;
            nf.chain = Some(self.text(len)?.to_string());
        }
        if present & nf_has::DEVICES != 0 {
            let len = self.u16()? as usize;
            let input = self.text(len)?.to_string();
            let len = self.u16()? as usize;
            let output = self.text(len)?.to_string();
            nf.devices = Some(HookDevices { input, output });
        }
        if present & nf_has::SKB != 0 {
            let mark = self.u32()?;
            let nfct = self.u8()?;
            nf.skb = Some(NfSkb { mark, nfct });
        }
        if present & nf_has::RULE != 0 {
            nf.rule = Some(Box::new(self.nf_rule()?));
        }
        nf.hooks = self.addresses()?;
        Ok(nf)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let len = self.u16()? as usize;
        Ok(self.text(len)?.to_string())
    }

    fn strings(&mut self) -> Result<Vec<String>, CodecError> {
        let n = self.u16()?;
        (0..n).map(|_| self.string()).collect()
    }

    fn rule_ref(&mut self) -> Result<RuleRef, CodecError> {
        let code = self.u8()?;
        let firewall = Firewall::from_code(code).ok_or(CodecError::Firewall(code))?;
        let table = self.string()?;
        let chain = self.string()?;
        let position = self.u32()?;
        let has_handle = self.u8()? != 0;
        let handle = self.u64()?;
        Ok(RuleRef {
            firewall,
            table,
            chain,
            position,
            handle: has_handle.then_some(handle),
            text: self.string()?,
        })
    }

    fn nf_rule(&mut self) -> Result<NfRule, CodecError> {
        match self.u8()? {
            0 => Ok(NfRule::Rule {
                rule: self.rule_ref()?,
                via: self.strings()?,
                assumed: self.strings()?,
            }),
            1 => {
                let why = self.string()?;
                let n = self.u16()?;
                let candidates = (0..n).map(|_| self.rule_ref()).collect::<Result<_, _>>()?;
                Ok(NfRule::Undecided { why, candidates })
            }
            tag => Err(CodecError::NfRule(tag)),
        }
    }

    fn addresses(&mut self) -> Result<Vec<u64>, CodecError> {
        let count = self.u32()? as usize;
        // Checked before allocating: a damaged count cannot ask for more
        // than the frame holds.
        let bytes = self.bytes(count.checked_mul(8).ok_or(CodecError::Short)?)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_event() -> Event {
        let mut ev = Event::new(1_234_567_890_123, 0xffff_8880_1234_5678, 42);
        ev.flags = 0x23;
        ev.ret = Some(-1);
        ev.location = Some(0xffff_ffff_8100_0000);
        ev.reason = Some(6);
        ev.stack_id = Some(-1);
        ev.pid = 77;
        ev.cpu = 1;
        ev.ifindex = 3;
        ev.netns = 4026531840;
        ev.comm = ShortName::new("iperf3");
        ev.ifname = ShortName::new("veth0");
        ev.pkt = Packet {
            source: PacketSource::MacHeader,
            l3_proto: 0x86dd,
            l4_proto: 6,
            saddr: Some("fd00::1".parse().unwrap()),
            daddr: Some("10.0.0.2".parse().unwrap()),
            sport: 5201,
            dport: 40000,
            seq: 1,
            ack: 2,
            tcp_flags: 0x18,
            icmp_type: 3,
            icmp_code: 4,
            icmp_id: 5,
            icmp_seq: 6,
            arp_op: 7,
            ip_id: 8,
            len: 1500,
            sk_family: 40,
        };
        ev.nf = Some(Box::new(NfFacts {
            pf_hook: Some((2, 2)),
            table: Some("filter".into()),
            chain: None,
            nft: true,
            devices: Some(HookDevices {
                input: "veth0".into(),
                output: String::new(),
            }),
            skb: Some(NfSkb {
                mark: 0xdead_beef,
                nfct: 10,
            }),
            rule: Some(Box::new(NfRule::Rule {
                rule: RuleRef {
                    firewall: Firewall::IptablesNft,
                    table: "filter".into(),
                    chain: "BLOCK".into(),
                    position: 2,
                    handle: Some(7),
                    text: "-A BLOCK -j DROP".into(),
                },
                via: vec!["INPUT rule 4".into()],
                assumed: vec!["-m addrtype".into()],
            })),
            hooks: vec![1, 2, 3],
        }));
        ev.stack = vec![10, 20].into();
        ev.span = Some(Box::new(crate::events::Span {
            first_ts: 5,
            end_ts: 6,
            first_probe: 7,
            end_probe: 8,
        }));
        ev.rst_reason = Some(2);
        ev.sock = Some(Box::new(crate::events::SockFacts {
            state: 1,
            ca_state: 4,
            retransmits: 2,
            pending: 1,
            protocol: 6,
            new_state: 8,
            srtt_us: 20_000,
            minrtt_us: 19_000,
            rtt_us: 21_000,
            snd_cwnd: 10,
            ssthresh: 7,
            packets_out: 3,
            retrans_out: 1,
            total_retrans: 9,
            wmem_queued: 4096,
            rmem_alloc: -1,
            sndbuf: 16384,
            rcvbuf: 131072,
        }));
        ev
    }

    #[test]
    fn every_field_reads_back() {
        let mut minimal = Event::new(1, 2, 3);
        minimal.clone = Some(9);
        for ev in [full_event(), minimal, Event::new(0, 0, 0)] {
            let mut buf = Vec::new();
            encode(&ev, &mut buf);
            assert_eq!(decode(&buf), Ok(ev));
        }
    }

    #[test]
    fn format_3_has_the_span_where_format_4_has_a_second_byte() {
        let mut ev = Event::new(1, 2, 3);
        ev.span = Some(Box::new(crate::events::Span {
            first_ts: 1,
            end_ts: 2,
            first_probe: 3,
            end_probe: 4,
        }));
        let mut buf = Vec::new();
        encode(&ev, &mut buf);
        // Format 3 wrote no second byte: take it out.
        buf.remove(FIXED);
        assert_eq!(decode_format(&buf, 3), Ok(ev));
    }

    #[test]
    fn the_fixed_part_is_what_encode_writes_first() {
        let mut buf = Vec::new();
        encode(&Event::new(0, 0, 0), &mut buf);
        // The fixed part, then two empty names.
        assert_eq!(buf.len(), FIXED + 2);
    }

    #[test]
    fn damage_is_an_error() {
        let mut buf = Vec::new();
        encode(&full_event(), &mut buf);
        for cut in 0..buf.len() {
            assert_eq!(
                decode(&buf[..cut]).err(),
                Some(CodecError::Short),
                "cut at {cut}"
            );
        }
        buf.push(0);
        assert_eq!(decode(&buf).err(), Some(CodecError::Trailing(1)));
    }
}
