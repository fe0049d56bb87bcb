//! `--output json`: one JSON object per line (an event in `--basic`, a
//! drop in `--drop`, a packet in the lifecycle mode, a diagnosed packet
//! with `--diag`). The types below are the schema (docs/json.md): they
//! serialize the output and, refusing unknown fields, read it back in
//! tests, so the document and the code cannot drift apart silently.

use super::diagnosis::Diagnosis;
use super::lines::{describe_ret, verdict_name, Formatter};
use crate::catalogue::nfnames::{family_name, hook_name};
use crate::catalogue::table::probe_by_id;
use crate::events::{flags, Event, PacketSource};
use crate::lifecycle::Context;
use crate::rules::compile::Rule;
use crate::vocab::proto::l4_name;
use crate::vocab::proto::{IPPROTO_TCP, IPPROTO_UDP};
use crate::vocab::tcp::tcp_flags;
use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning or goes away; new optional fields
/// keep the version.
pub const VERSION: u32 = 1;

/// What a line holds (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Event,
    Drop,
    Packet,
    /// `--monitor`: one finding and its event.
    Finding,
    /// `--latency`: one skb's span, on the event that ended it.
    Latency,
    /// `--func-stats`: hits per probe, for an interval or the whole run.
    FuncStats,
    /// `--latency-summary`: the latency histogram, for an interval or the whole run.
    LatencyHistogram,
    /// `--rtt`: the histogram of srtt at each update, for an interval or the whole run.
    RttHistogram,
}

/// One output line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub version: u32,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// `event`, `drop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<JsonEvent>,
    /// `packet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<JsonPacketLife>,
    /// `finding` (its `event` index is 0: the line's own event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<JsonFinding>,
    /// `func_stats`, `latency_histogram`: when and over how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<JsonCounters>,
}

/// The counters of an aggregating mode.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonCounters {
    /// As the text output prints it.
    pub time: String,
    pub ts_ns: u64,
    /// The interval the counts cover (absent: the whole run, at its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ns: Option<u64>,
    /// `func_stats`: busiest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<Vec<JsonFuncHit>>,
    /// `latency_histogram`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<JsonHistogram>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonFuncHit {
    pub probe: String,
    pub hits: u64,
}

/// A log2 histogram of latencies.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonHistogram {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_ns: Option<u64>,
    /// The whole run's longest (in the end-of-run line only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ns: Option<u64>,
    /// Upper bounds of the slots holding the percentiles (microseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_below_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_below_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_below_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999_below_us: Option<u64>,
    /// Non-empty slots: values in [from_us, to_us).
    pub slots: Vec<JsonHistogramSlot>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonHistogramSlot {
    pub from_us: u64,
    pub to_us: u64,
    pub count: u64,
}

/// `--latency`: an skb's timed life.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSpan {
    pub latency_ns: u64,
    pub first_probe: String,
    pub first_ts_ns: u64,
    pub end_probe: String,
    pub end_ts_ns: u64,
}

/// A packet's lifecycle (one text block).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonPacketLife {
    /// Every skb of the packet (clones and copies too), hex.
    pub skbs: Vec<String>,
    /// Whether every skb was seen freed or dropped.
    pub complete: bool,
    /// Tracing stopped while the packet was active (the run ended, or the
    /// open-packet cap forced it out): later events may be missing.
    #[serde(default)]
    pub cut_short: bool,
    /// The kernel lost events while the packet was traced: any of its
    /// events may be missing, and no finding rests on an event's absence.
    #[serde(default)]
    pub events_lost: bool,
    /// skbs that came back for another packet before their free was seen.
    pub free_unseen: Vec<String>,
    /// Events beyond the per-packet cap, counted but not kept.
    pub events_not_kept: u64,
    /// In time order.
    pub events: Vec<JsonEvent>,
    /// `--diag` only: what the rules found (absent without `--diag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<JsonFinding>>,
    /// `--diag` only, when a finding is a warning or an error: the one to
    /// act on (a copy of that finding; `rules::root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<JsonFinding>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonFinding {
    pub rule: String,
    /// `info`, `warn`, `error`.
    pub level: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// Index into the packet's `events`.
    pub event: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonEvent {
    /// As the text output prints it: seconds since boot, or the date with `--date`.
    pub time: String,
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    pub probe: String,
    pub group: String,
    pub skb: String,
    pub cpu: u32,
    pub pid: u32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    pub netns: u32,
    pub packet: JsonPacket,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<JsonRet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<JsonDrop>,
    /// The skb a clone or copy made, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone: Option<String>,
    /// The skb was freed here (consumed or dropped).
    pub free: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netfilter: Option<JsonNetfilter>,
    /// `--drop-stack`, `--trace-stack`: symbolized frames, innermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<String>,
    /// `--latency-show`: nanoseconds since the packet's previous event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_previous_ns: Option<u64>,
    /// `--latency`: the skb's span (on `latency` lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<JsonSpan>,
    /// `tcp_send_reset` (6.10+): the reset's reason, `NO_SOCKET`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rst_reason: Option<String>,
    /// `--sock`, `--rtt-detail`: the socket's state at this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sock: Option<JsonSock>,
}

/// A socket's state (`events::SockFacts`); the TCP fields only for TCP.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSock {
    /// `ESTABLISHED`, `SYN-SENT`... (as `ss` names them).
    pub state: String,
    /// `inet_sock_set_state`: the state it changes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_state: Option<String>,
    pub protocol: u8,
    pub send_queue_bytes: i32,
    pub recv_queue_bytes: i32,
    pub sndbuf: i32,
    pub rcvbuf: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<JsonSockTcp>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSockTcp {
    /// Congestion-avoidance state: `open`, `disorder`, `cwr`, `recovery`, `loss`.
    pub ca_state: String,
    pub srtt_us: u32,
    pub minrtt_us: u32,
    /// `--rtt-detail`: this ACK's RTT sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<u32>,
    pub snd_cwnd: u32,
    pub ssthresh: u32,
    pub packets_out: u32,
    pub retrans_out: u32,
    pub total_retrans: u32,
    /// Unanswered retransmissions of the head segment.
    pub retransmits: u8,
    /// The armed timer: `retrans`, `delack`, `probe0`, `loss-probe`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonRet {
    pub value: i64,
    /// `NF_DROP`, `-EINVAL`... when the value has a name.
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonDrop {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub reason_code: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonNetfilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// Table and chain are nftables' (else iptables').
    pub nft: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// `--hooks`: the hook functions registered on the hook.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<String>,
    /// The hook's devices (`""`: none), as firewall rules match them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_dev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_dev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<u32>,
    /// The conntrack state a rule would test: `new`, `established`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ct_state: Option<String>,
    /// `--diag`: the firewall rule that decided a drop, or why none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<crate::events::nfrule::NfRule>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonPacket {
    /// The one-line summary of the text output.
    pub summary: String,
    /// `header`, `mac_header`, `socket` or `none` (no usable headers).
    pub source: String,
    pub l3_proto: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saddr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daddr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<JsonTcp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<JsonIcmp>,
    pub ip_id: u16,
    pub len: u32,
    /// A non-IP socket's address family (`vsock`, `netlink`...; `--non-ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_family: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonTcp {
    pub seq: u32,
    pub ack: u32,
    /// Letters as the text output prints them (`SA`).
    pub flags: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonIcmp {
    #[serde(rename = "type")]
    pub kind: u8,
    pub code: u8,
    pub id: u16,
    pub seq: u16,
}

fn hex(v: u64) -> String {
    format!("{v:x}")
}

fn packet(ev: &Event) -> JsonPacket {
    let p = &ev.pkt;
    let ports = p.l4_proto == IPPROTO_TCP || p.l4_proto == IPPROTO_UDP;
    let icmp = matches!(p.l4_proto, 1 | 58) && p.saddr.is_some();
    JsonPacket {
        summary: crate::output::packet::event_summary(ev),
        source: match p.source {
            PacketSource::None => "none",
            PacketSource::Header => "header",
            PacketSource::MacHeader => "mac_header",
            PacketSource::Socket => "socket",
        }
        .to_string(),
        l3_proto: p.l3_proto,
        l4: p.saddr.map(|_| {
            l4_name(p.l4_proto)
                .map(str::to_string)
                .unwrap_or_else(|| p.l4_proto.to_string())
        }),
        saddr: p.saddr.map(|a| a.to_string()),
        daddr: p.daddr.map(|a| a.to_string()),
        sport: ports.then_some(p.sport),
        dport: ports.then_some(p.dport),
        tcp: (p.l4_proto == IPPROTO_TCP && p.source != PacketSource::Socket).then(|| JsonTcp {
            seq: p.seq,
            ack: p.ack,
            flags: tcp_flags(p.tcp_flags),
        }),
        icmp: icmp.then_some(JsonIcmp {
            kind: p.icmp_type,
            code: p.icmp_code,
            id: p.icmp_id,
            seq: p.icmp_seq,
        }),
        ip_id: p.ip_id,
        len: p.len,
        socket_family: (p.sk_family != 0)
            .then(|| crate::vocab::family::name(p.sk_family).into_owned()),
    }
}

/// One event as JSON.
pub fn event(fmt: &Formatter<'_>, ev: &Event) -> JsonEvent {
    let probe = probe_by_id(ev.probe);
    let describe = |a: u64| {
        let s = fmt.kallsyms.describe(a);
        s.strip_suffix("+0x0").map(str::to_string).unwrap_or(s)
    };
    JsonEvent {
        time: fmt.clock.format(ev.ts),
        ts_ns: ev.ts,
        probe: probe.map_or("?", |p| p.name).to_string(),
        group: probe.map_or("?", |p| p.group).to_string(),
        skb: hex(ev.skb),
        cpu: ev.cpu,
        pid: ev.pid,
        comm: ev.comm.to_string(),
        ifname: (!ev.ifname.is_empty()).then(|| ev.ifname.to_string()),
        netns: ev.netns,
        packet: packet(ev),
        ret: ev.ret.map(|value| JsonRet {
            value,
            text: probe.map_or_else(|| value.to_string(), |p| describe_ret(p.ret, value)),
        }),
        drop: ev.is_drop().then(|| JsonDrop {
            reason: fmt.reasons.event_reason(ev.reason),
            reason_code: ev.reason.unwrap_or(0),
            location: ev.location.map(|l| fmt.kallsyms.describe(l)),
        }),
        clone: ev.clone.map(hex),
        free: ev.flags & flags::FREE != 0,
        netfilter: ev.nf.as_ref().map(|nf| JsonNetfilter {
            family: nf.pf_hook.map(|(pf, _)| family_name(pf).into_owned()),
            hook: nf.pf_hook.map(|(pf, h)| hook_name(pf, h).into_owned()),
            table: nf.table.clone(),
            chain: nf.chain_name().map(str::to_string),
            nft: nf.nft,
            verdict: match (probe, ev.ret) {
                (Some(p), Some(r)) if p.shows_verdict() => {
                    Some(verdict_name(p.ret, r).into_owned())
                }
                _ => None,
            },
            hooks: nf.hooks.iter().map(|h| describe(*h)).collect(),
            in_dev: nf.devices.as_ref().map(|d| d.input.clone()),
            out_dev: nf.devices.as_ref().map(|d| d.output.clone()),
            mark: nf.skb.map(|s| s.mark),
            ct_state: nf.skb.map(|s| s.ct_state().name().to_string()),
            rule: nf.rule.as_deref().cloned(),
        }),
        stack: ev.stack.iter().map(|a| fmt.kallsyms.describe(*a)).collect(),
        since_previous_ns: None,
        span: ev.span.as_deref().map(|s| {
            let name = |id: u32| probe_by_id(id).map_or("?", |p| p.name).to_string();
            JsonSpan {
                latency_ns: s.ns(),
                first_probe: name(s.first_probe),
                first_ts_ns: s.first_ts,
                end_probe: name(s.end_probe),
                end_ts_ns: s.end_ts,
            }
        }),
        rst_reason: ev.rst_reason.map(|r| fmt.reasons.rst_name(r)),
        sock: ev.sock.as_deref().map(sock),
    }
}

fn sock(s: &crate::events::SockFacts) -> JsonSock {
    use crate::vocab::tcp::{ca_state_name, state_name, timer_name};
    JsonSock {
        state: state_name(s.state).into_owned(),
        new_state: (s.new_state != 0).then(|| state_name(s.new_state).into_owned()),
        protocol: s.protocol,
        send_queue_bytes: s.wmem_queued,
        recv_queue_bytes: s.rmem_alloc,
        sndbuf: s.sndbuf,
        rcvbuf: s.rcvbuf,
        tcp: (s.protocol == IPPROTO_TCP).then(|| JsonSockTcp {
            ca_state: ca_state_name(s.ca_state).into_owned(),
            srtt_us: s.srtt_us,
            minrtt_us: s.minrtt_us,
            rtt_us: (s.rtt_us != 0).then_some(s.rtt_us),
            snd_cwnd: s.snd_cwnd,
            ssthresh: s.ssthresh,
            packets_out: s.packets_out,
            retrans_out: s.retrans_out,
            total_retrans: s.total_retrans,
            retransmits: s.retransmits,
            timer: timer_name(s.pending).map(|t| t.into_owned()),
        }),
    }
}

fn counters_line(kind: Kind, counters: JsonCounters) -> String {
    to_line(&Line {
        version: VERSION,
        kind,
        event: None,
        packet: None,
        finding: None,
        counters: Some(counters),
    })
}

/// A `func_stats` line.
pub fn func_stats_line(
    fmt: &Formatter<'_>,
    ts: u64,
    interval_ns: Option<u64>,
    functions: Vec<JsonFuncHit>,
) -> String {
    counters_line(
        Kind::FuncStats,
        JsonCounters {
            time: fmt.clock.format(ts),
            ts_ns: ts,
            interval_ns,
            functions: Some(functions),
            histogram: None,
        },
    )
}

/// A `latency_histogram` or `rtt_histogram` line.
pub fn histogram_line(
    kind: Kind,
    fmt: &Formatter<'_>,
    ts: u64,
    interval_ns: Option<u64>,
    histogram: JsonHistogram,
) -> String {
    counters_line(
        kind,
        JsonCounters {
            time: fmt.clock.format(ts),
            ts_ns: ts,
            interval_ns,
            functions: None,
            histogram: Some(histogram),
        },
    )
}

fn to_line(line: &Line) -> String {
    let mut s = serde_json::to_string(line).expect("JSON output types serialize");
    s.push('\n');
    s
}

/// An `event` or `drop` line.
pub fn line(kind: Kind, fmt: &Formatter<'_>, ev: &Event) -> String {
    to_line(&Line {
        version: VERSION,
        kind,
        event: Some(event(fmt, ev)),
        packet: None,
        finding: None,
        counters: None,
    })
}

fn finding(fmt: &Formatter<'_>, rule: &Rule, ev: &Event, index: usize) -> JsonFinding {
    JsonFinding {
        rule: rule.id.clone(),
        level: rule.level.name().to_string(),
        message: super::diagnosis::interpolate(fmt, &rule.message, ev),
        advice: rule
            .advice
            .as_ref()
            .map(|a| super::diagnosis::interpolate(fmt, a, ev)),
        event: index,
    }
}

/// A `finding` line (monitor mode).
pub fn finding_line(fmt: &Formatter<'_>, rule: &Rule, ev: &Event) -> String {
    to_line(&Line {
        version: VERSION,
        kind: Kind::Finding,
        event: Some(event(fmt, ev)),
        packet: None,
        finding: Some(finding(fmt, rule, ev, 0)),
        counters: None,
    })
}

/// A `packet` line; with `--diag`, its findings.
pub fn context_line(
    fmt: &Formatter<'_>,
    ctx: &Context,
    diag: Option<(&[Rule], &Diagnosis)>,
) -> String {
    let events = ctx.sorted_events();
    let findings: Option<Vec<JsonFinding>> = diag.map(|(rules, d)| {
        d.findings
            .iter()
            .map(|f| finding(fmt, &rules[f.rule], events[f.event], f.event))
            .collect()
    });
    let root_cause = diag
        .and_then(|(_, d)| d.root)
        .and_then(|i| findings.as_ref()?.get(i).cloned());
    to_line(&Line {
        version: VERSION,
        kind: Kind::Packet,
        event: None,
        finding: None,
        counters: None,
        packet: Some(JsonPacketLife {
            skbs: ctx.skbs.iter().map(|s| hex(*s)).collect(),
            complete: ctx.complete,
            cut_short: ctx.cut_short,
            events_lost: ctx.events_lost,
            free_unseen: ctx.free_unseen.iter().map(|s| hex(*s)).collect(),
            events_not_kept: ctx.truncated,
            events: {
                let mut previous: Option<u64> = None;
                events
                    .iter()
                    .map(|e| {
                        let mut j = event(fmt, e);
                        if fmt.latency_show {
                            j.since_previous_ns =
                                Some(previous.map_or(0, |p| e.ts.saturating_sub(p)));
                        }
                        previous = Some(e.ts);
                        j
                    })
                    .collect()
            },
            findings,
            root_cause,
        }),
    })
}
