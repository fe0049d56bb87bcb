//! Hand-written events (the `events:` of a rule test, docs/rules.md
//! "Testing rules"): a short YAML list saying which probe saw what, turned
//! into the same `Event`s a kernel would deliver, with a symbol table and
//! drop-reason names made up to match. Omitted fields take defaults that
//! keep tests short: one packet (skb 1), a microsecond between events, and
//! the packet headers of the skb's previous event.

use crate::catalogue::retnames;
use crate::catalogue::table::{Extra, PROBES};
use crate::events::nfrule::{Firewall, NfRule, RuleRef};
use crate::events::{
    flags, CtState, Event, HookDevices, NfFacts, NfSkb, Packet, PacketSource, ShortName,
};
use crate::kernel::btf::DropReasons;
use crate::kernel::kallsyms::Kallsyms;
use crate::vocab::proto::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptEvent {
    /// A probe name of the catalogue.
    pub probe: String,
    /// Which packet buffer (any small number); default 1.
    #[serde(default)]
    pub skb: Option<u64>,
    /// Time in microseconds from the start; default: 1 µs after the previous event.
    #[serde(default)]
    pub t: Option<u64>,
    /// Return value: a number, `true`/`false`, or a name of the probe's
    /// return kind (`NF_DROP`, `-EPERM`, `NULL`; YAML's null reads as NULL).
    #[serde(default, deserialize_with = "ret_value")]
    pub ret: Option<RetValue>,
    /// The packet was dropped, with this drop reason.
    #[serde(default)]
    pub drop: Option<String>,
    /// Drop location, `function+0x12`.
    #[serde(default)]
    pub at: Option<String>,
    /// The reason of the TCP reset sent here (`NO_SOCKET`...; tcp_send_reset).
    #[serde(default)]
    pub rst_reason: Option<String>,
    /// A clone or copy made this skb.
    #[serde(default)]
    pub clone: Option<u64>,
    /// The skb is freed here (default: for the catalogue's free and drop probes).
    #[serde(default)]
    pub free: Option<bool>,
    #[serde(default)]
    pub nf: Option<ScriptNf>,
    #[serde(default)]
    pub pkt: Option<ScriptPacket>,
    /// Interface name.
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub netns: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RetValue {
    Num(i64),
    /// Pointers (`0xffff888004a1e200`).
    Pointer(u64),
    Bool(bool),
    Name(String),
}

/// A present `ret:` (null included: `ret: NULL` means the NULL pointer).
fn ret_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<RetValue>, D::Error> {
    let v = Option::<RetValue>::deserialize(d)?;
    Ok(Some(v.unwrap_or_else(|| RetValue::Name("NULL".into()))))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptNf {
    /// `ipv4`, `ipv6`, `bridge`, `arp`, `inet`, `netdev`.
    #[serde(default)]
    pub family: Option<String>,
    /// `PRE_ROUTING`, `LOCAL_IN`, `FORWARD`, `LOCAL_OUT`, `POST_ROUTING`.
    #[serde(default)]
    pub hook: Option<String>,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub chain: Option<String>,
    #[serde(default)]
    pub nft: bool,
    /// The hook's input and output devices (`""`: none).
    #[serde(default, rename = "in")]
    pub input: Option<String>,
    #[serde(default, rename = "out")]
    pub output: Option<String>,
    /// `skb->mark`.
    #[serde(default)]
    pub mark: Option<u32>,
    /// The conntrack state: `new`, `established`, `related`, `invalid`,
    /// `untracked`.
    #[serde(default)]
    pub ct: Option<String>,
    /// The text of the firewall rule that decided the drop, as `--diag`
    /// names it, and the chain holding it (default: `chain`).
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub rule_chain: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptPacket {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `arp`, or another `-p` protocol.
    pub proto: String,
    /// `10.0.0.1` or `10.0.0.1:80` (`[fd00::1]:80` for IPv6).
    #[serde(default)]
    pub src: Option<String>,
    #[serde(default)]
    pub dst: Option<String>,
    /// TCP flags, as printed (`SA`) or named (`syn,ack`).
    #[serde(default)]
    pub flags: Option<String>,
    #[serde(default)]
    pub seq: Option<u32>,
    #[serde(default)]
    pub ack: Option<u32>,
    /// ICMP type and code (default: echo request).
    #[serde(default)]
    pub icmp_type: Option<u8>,
    #[serde(default)]
    pub icmp_code: Option<u8>,
    #[serde(default)]
    pub len: Option<u32>,
}

/// Events with the symbol table and drop-reason names they refer to.
pub struct Script {
    pub events: Vec<Event>,
    pub kallsyms: Kallsyms,
    pub reasons: DropReasons,
}

/// Drop reasons as a test sees them: every name nettrace knows (6.1, 6.12,
/// 6.18), numbered in that list's order.
pub fn known_reasons() -> DropReasons {
    DropReasons::from_pairs(
        crate::vocab::drop_reasons::known()
            .enumerate()
            .map(|(i, n)| (i as u32, n.to_string())),
    )
    .with_rst(
        crate::vocab::rst_reasons::known()
            .enumerate()
            .map(|(i, n)| (i as u32, n.to_string())),
    )
}

/// Why hand-written events do not build: the event (1-based), its probe
/// and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {n} ({probe}): {problem}")]
pub struct ScriptError {
    pub n: usize,
    pub probe: String,
    pub problem: EventProblem,
}

/// What is wrong with one hand-written event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventProblem {
    #[error("no such probe in probes.yaml")]
    NoProbe,
    #[error("`{0}` is not an address (10.0.0.1) or address:port (10.0.0.1:80)")]
    Endpoint(String),
    #[error("unknown protocol `{0}`; use one of: {names}", names = crate::vocab::proto::names_line())]
    Protocol(String),
    #[error(transparent)]
    TcpFlag(#[from] crate::vocab::tcp::UnknownFlag),
    #[error("unknown netfilter family `{0}`")]
    NfFamily(String),
    #[error("unknown netfilter hook `{0}`")]
    NfHook(String),
    #[error("nf: give both family and hook, or neither")]
    NfHalf,
    #[error(
        "unknown conntrack state `{0}`; use one of: new, established, related, invalid, untracked"
    )]
    CtState(String),
    #[error("`{name}` is not a return value of {probe} ({kind})")]
    RetName {
        name: String,
        probe: &'static str,
        kind: &'static str,
    },
    #[error("unknown drop reason `{0}` (or mixed with `drop: NONE`, a kernel without reasons)")]
    Reason(String),
    #[error("unknown TCP reset reason `{0}`")]
    RstReason(String),
    #[error("bad offset in `{0}` (function+0x12)")]
    Offset(String),
}

/// Where made-up symbols live: each distinct function gets its own 1 MiB.
const SYMBOL_BASE: u64 = 0xffff_ffff_8100_0000;

fn endpoint(s: &str) -> Result<(IpAddr, u16), EventProblem> {
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok((a, 0));
    }
    let sa: std::net::SocketAddr = s
        .parse()
        .map_err(|_| EventProblem::Endpoint(s.to_string()))?;
    Ok((sa.ip(), sa.port()))
}

fn packet(p: &ScriptPacket) -> Result<Packet, EventProblem> {
    use crate::vocab::proto::{self, Proto};
    let mut pkt = Packet::empty();
    pkt.source = PacketSource::Header;
    let src = p.src.as_deref().map(endpoint).transpose()?;
    let dst = p.dst.as_deref().map(endpoint).transpose()?;
    let v6 = src.or(dst).is_some_and(|(a, _)| a.is_ipv6());
    let known = proto::by_name(&p.proto).ok_or_else(|| EventProblem::Protocol(p.proto.clone()))?;
    match known {
        Proto::L3(l3) => pkt.l3_proto = l3,
        Proto::L4(l4) => {
            pkt.l3_proto = if v6 { ETH_P_IPV6 } else { ETH_P_IP };
            pkt.l4_proto = l4;
        }
    }
    if pkt.l3_proto == ETH_P_ARP {
        pkt.arp_op = 1;
    }
    if let Some((a, port)) = src {
        pkt.saddr = Some(a);
        pkt.sport = port;
    }
    if let Some((a, port)) = dst {
        pkt.daddr = Some(a);
        pkt.dport = port;
    }
    if let Some(f) = &p.flags {
        pkt.tcp_flags = crate::vocab::tcp::parse_tcp_flags(f)?;
    }
    pkt.seq = p.seq.unwrap_or(0);
    pkt.ack = p.ack.unwrap_or(0);
    pkt.icmp_type = p.icmp_type.unwrap_or(if v6 { 128 } else { 8 });
    pkt.icmp_code = p.icmp_code.unwrap_or(0);
    pkt.len = p.len.unwrap_or(84);
    Ok(pkt)
}

fn nf_facts(n: &ScriptNf) -> Result<NfFacts, EventProblem> {
    use crate::catalogue::nfnames::{hook_by_name, FAMILIES};
    let pf_hook = match (&n.family, &n.hook) {
        (Some(f), Some(h)) => {
            let pf = FAMILIES
                .iter()
                .find(|(name, _)| name == f)
                .map(|(_, v)| *v)
                .ok_or_else(|| EventProblem::NfFamily(f.clone()))?;
            let hook = hook_by_name(h).ok_or_else(|| EventProblem::NfHook(h.clone()))?;
            Some((pf, hook))
        }
        (None, None) => None,
        _ => return Err(EventProblem::NfHalf),
    };
    let devices = (n.input.is_some() || n.output.is_some()).then(|| HookDevices {
        input: n.input.clone().unwrap_or_default(),
        output: n.output.clone().unwrap_or_default(),
    });
    let nfct = match &n.ct {
        Some(name) => {
            let state =
                CtState::from_name(name).ok_or_else(|| EventProblem::CtState(name.clone()))?;
            Some(NfSkb::nfct_of(state))
        }
        None => None,
    };
    let skb = (n.mark.is_some() || nfct.is_some()).then(|| NfSkb {
        mark: n.mark.unwrap_or(0),
        nfct: nfct.unwrap_or(0),
    });
    Ok(NfFacts {
        pf_hook,
        table: n.table.clone(),
        chain: n.chain.clone(),
        nft: n.nft,
        devices,
        skb,
        rule: n.rule.as_ref().map(|text| {
            Box::new(NfRule::Rule {
                rule: RuleRef {
                    firewall: if n.nft {
                        Firewall::Nft
                    } else {
                        Firewall::IptablesNft
                    },
                    table: n.table.clone().unwrap_or_default(),
                    chain: n
                        .rule_chain
                        .clone()
                        .or_else(|| n.chain.clone())
                        .unwrap_or_default(),
                    position: 1,
                    handle: None,
                    text: text.clone(),
                },
                via: Vec::new(),
                assumed: Vec::new(),
            })
        }),
        hooks: Vec::new(),
    })
}

/// Builds the events; Err names the event (1-based) and the problem.
pub fn build(list: &[ScriptEvent]) -> Result<Script, ScriptError> {
    // `drop: NONE` is a drop on a kernel without drop reasons (before
    // 5.17): the whole script then runs as on one.
    let no_reasons = list
        .iter()
        .any(|s| s.drop.as_deref() == Some(crate::kernel::btf::NO_REASONS));
    let reasons = if no_reasons {
        DropReasons::default()
    } else {
        known_reasons()
    };
    let mut symbols: Vec<String> = Vec::new();
    let mut last_pkt: HashMap<u64, Packet> = HashMap::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut events = Vec::new();
    let mut ts = 1_000_000_000u64;
    for (i, s) in list.iter().enumerate() {
        let fail = |problem: EventProblem| ScriptError {
            n: i + 1,
            probe: s.probe.clone(),
            problem,
        };
        let probe = PROBES
            .iter()
            .find(|p| p.name == s.probe)
            .ok_or_else(|| fail(EventProblem::NoProbe))?;
        ts = match s.t {
            Some(us) => 1_000_000_000 + us * 1000,
            None => ts + 1000,
        };
        let skb = s.skb.unwrap_or(1);
        let mut ev = Event::new(ts, skb, probe.id);
        if !seen.insert(skb) {
            ev.flags |= flags::TRACKED;
        }
        ev.pkt = match &s.pkt {
            Some(p) => packet(p).map_err(fail)?,
            None => last_pkt.get(&skb).cloned().unwrap_or_else(Packet::empty),
        };
        last_pkt.insert(skb, ev.pkt.clone());
        if let Some(r) = &s.ret {
            ev.flags |= flags::RET;
            ev.ret = Some(match r {
                RetValue::Num(n) => *n,
                RetValue::Bool(b) => i64::from(*b),
                RetValue::Pointer(p) => *p as i64,
                RetValue::Name(name) => probe
                    .signatures
                    .iter()
                    .find_map(|sig| retnames::lookup(sig.ret, name))
                    // A range ("any negative errno") stands for its top value.
                    .map(|(lo, hi)| if lo == i64::MIN { hi } else { lo })
                    .ok_or_else(|| {
                        fail(EventProblem::RetName {
                            name: name.clone(),
                            probe: probe.name,
                            kind: probe.ret.as_str(),
                        })
                    })?,
            });
        }
        if let Some(reason) = &s.drop {
            ev.flags |= flags::DROP;
            ev.reason = Some(
                reasons
                    .rule_value_of(reason)
                    .ok_or_else(|| fail(EventProblem::Reason(reason.clone())))?,
            );
        }
        if let Some(reason) = &s.rst_reason {
            ev.flags |= flags::RST;
            ev.rst_reason = Some(
                reasons
                    .rst_value_of(reason)
                    .ok_or_else(|| fail(EventProblem::RstReason(reason.clone())))?,
            );
        }
        if let Some(at) = &s.at {
            let (name, off) = match at.split_once('+') {
                Some((n, o)) => (
                    n,
                    u64::from_str_radix(o.trim_start_matches("0x"), 16)
                        .map_err(|_| fail(EventProblem::Offset(at.clone())))?,
                ),
                None => (at.as_str(), 0),
            };
            let idx = match symbols.iter().position(|s| s == name) {
                Some(i) => i,
                None => {
                    symbols.push(name.to_string());
                    symbols.len() - 1
                }
            };
            ev.location = Some(SYMBOL_BASE + ((idx as u64) << 20) + off);
            ev.flags |= flags::DROP;
        }
        if let Some(child) = s.clone {
            ev.flags |= flags::CLONE;
            ev.clone = Some(child);
            seen.insert(child);
            last_pkt.insert(child, ev.pkt.clone());
        }
        let frees = matches!(probe.extra, Some(Extra::Free | Extra::Drop));
        if s.free.unwrap_or(frees) {
            ev.flags |= flags::FREE;
        }
        if let Some(nf) = &s.nf {
            ev.nf = Some(Box::new(nf_facts(nf).map_err(fail)?));
        }
        ev.ifname = ShortName::new(s.dev.as_deref().unwrap_or_default());
        ev.netns = s.netns.unwrap_or(0);
        events.push(ev);
    }
    let table: String = symbols
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{:x} t {n}\n", SYMBOL_BASE + ((i as u64) << 20)))
        .collect();
    Ok(Script {
        events,
        kallsyms: Kallsyms::parse(&table),
        reasons,
    })
}
