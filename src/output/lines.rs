//! Text lines for single events: the `--drop` line and the per-event line
//! of `--basic` (and, later, of lifecycle blocks).

use super::packet::{event_summary, push_event_summary};
use super::text::{push_hex, push_int, push_int_padded, push_padded};
use super::time::Clock;
use crate::catalogue::table::{RetKind, PROBES};
use crate::events::Event;
use crate::kernel::btf::DropReasons;
use crate::kernel::kallsyms::Kallsyms;
use std::fmt::Write as _;

/// What formatting needs besides the event.
pub struct Formatter<'a> {
    pub clock: Clock,
    pub reasons: &'a DropReasons,
    pub kallsyms: &'a Kallsyms,
    pub detail: bool,
    /// Print return values (`--ret`); exits loaded for the lifecycle alone
    /// also carry one.
    pub show_ret: bool,
    /// `--latency-show`: the time since the packet's previous event.
    pub latency_show: bool,
    /// `--tiny-show`: after a packet's first line, time, probe and skb only.
    pub tiny: bool,
    /// `--color`: levels and drop reasons in ANSI colors.
    pub color: bool,
}

/// ANSI colors of the text output.
pub mod paint {
    pub const ERROR: &str = "\x1b[1;31m";
    pub const WARN: &str = "\x1b[1;33m";
    pub const INFO: &str = "\x1b[36m";
    pub const DROP: &str = "\x1b[31m";
    pub const RESET: &str = "\x1b[0m";
}

/// A duration as people read it: `850ns`, `12.3us`, `4.567ms`, `1.204s`.
pub fn duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}us", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.3}ms", ns as f64 / 1e6),
        _ => format!("{:.3}s", ns as f64 / 1e9),
    }
}

/// ` *sock: ESTABLISHED open, rtt 20.1ms, srtt 20.0ms, minrtt 19.9ms,
/// cwnd 10, ssthresh 7, inflight 3, retrans 1/9, timer retrans, sendq
/// 4096, recvq 0*`: a socket's state on an event line (TCP fields only
/// for TCP; the sample only on `--rtt-detail` lines).
pub fn push_sock_note(s: &mut String, sock: &crate::events::SockFacts) {
    use crate::vocab::tcp::{ca_state_name, state_name, timer_name};
    let _ = write!(s, " *sock: {}", state_name(sock.state));
    if sock.new_state != 0 {
        let _ = write!(s, " -> {}", state_name(sock.new_state));
    }
    if sock.protocol == crate::vocab::proto::IPPROTO_TCP {
        let _ = write!(s, " {}", ca_state_name(sock.ca_state));
        if sock.rtt_us != 0 {
            let _ = write!(s, ", rtt {}", duration(u64::from(sock.rtt_us) * 1000));
        }
        let _ = write!(
            s,
            ", srtt {}, minrtt {}, cwnd {}, ssthresh {}, inflight {}, retrans {}/{}",
            duration(u64::from(sock.srtt_us) * 1000),
            duration(u64::from(sock.minrtt_us) * 1000),
            sock.snd_cwnd,
            // TCP_INFINITE_SSTHRESH: no loss seen yet.
            if sock.ssthresh == 0x7fff_ffff {
                "inf".to_string()
            } else {
                sock.ssthresh.to_string()
            },
            sock.packets_out,
            sock.retrans_out,
            sock.total_retrans
        );
        if sock.retransmits != 0 {
            let _ = write!(s, ", unanswered {}", sock.retransmits);
        }
        if let Some(t) = timer_name(sock.pending) {
            let _ = write!(s, ", timer {t}");
        }
    }
    let _ = write!(
        s,
        ", sendq {}, recvq {}*",
        sock.wmem_queued, sock.rmem_alloc
    );
}

/// Names a return value when its meaning is known (`catalogue::retnames`).
pub fn describe_ret(kind: RetKind, ret: i64) -> String {
    use crate::catalogue::retnames::{errno_name, names, takes_errno};
    let named = match kind {
        // nf_hook_slow's values read better as what happened to the packet.
        RetKind::NfHook => match ret {
            1 => Some("continue".to_string()),
            0 => Some("stolen or queued".to_string()),
            r if r < 0 => errno_name(r).map(|e| format!("dropped, {e}")),
            _ => None,
        },
        RetKind::Pointer if ret != 0 => return format!("{:#x}", ret as u64),
        RetKind::NfVerdict => {
            let name = verdict_name(kind, ret);
            Some(match crate::catalogue::retnames::verdict_errno(ret) {
                Some(e) => format!("{name}, {e}"),
                None => name.into_owned(),
            })
        }
        RetKind::Bool => Some(if ret != 0 { "true" } else { "false" }.to_string()),
        _ => names(kind)
            .iter()
            .find(|n| n.lo <= ret && ret <= n.hi)
            .map(|n| n.name.to_string())
            .or_else(|| {
                (ret < 0 && takes_errno(kind))
                    .then(|| errno_name(ret))
                    .flatten()
            }),
    };
    match named {
        Some(n) => format!("{ret} ({n})"),
        None => ret.to_string(),
    }
}

/// Appends the netfilter note of an event line to `s`:
/// ` *ipv4 in chain: FORWARD*`, ` *iptables table:filter, chain:FORWARD*`.
pub fn push_netfilter_note(s: &mut String, nf: &crate::events::NfFacts) {
    use crate::catalogue::nfnames::{family_name, hook_name};
    match (&nf.table, nf.pf_hook) {
        (Some(table), _) => {
            s.push_str(if nf.nft {
                " *nftables table:"
            } else {
                " *iptables table:"
            });
            s.push_str(table);
            s.push_str(", chain:");
            s.push_str(nf.chain_name().unwrap_or("?"));
            s.push('*');
        }
        (None, Some((pf, hook))) => {
            s.push_str(" *");
            s.push_str(&family_name(pf));
            s.push_str(" in chain: ");
            s.push_str(&hook_name(pf, hook));
            s.push('*');
        }
        (None, None) => {}
    }
    // --diag: the rule that decided a drop.
    if let Some(rule) = &nf.rule {
        s.push_str(" *");
        s.push_str(&rule.describe());
        s.push('*');
    }
}

/// A netfilter return value as a verdict name (`NF_DROP`, `NF_ACCEPT`).
pub fn verdict_name(kind: RetKind, ret: i64) -> std::borrow::Cow<'static, str> {
    let ret = crate::catalogue::retnames::effective(kind, ret);
    crate::catalogue::retnames::names(kind)
        .iter()
        .find(|n| n.lo <= ret && ret <= n.hi)
        .map(|n| std::borrow::Cow::Borrowed(n.name))
        .unwrap_or_else(|| std::borrow::Cow::Owned(ret.to_string()))
}

/// A probe's name padded to its column (20 characters), made once per
/// probe: the column is on every event line. An index past the table
/// prints `?` (the last entry).
fn probe_column(probe: u32) -> &'static str {
    static COLUMNS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let columns = COLUMNS.get_or_init(|| {
        let names = PROBES.iter().map(|p| p.name).chain(["?"]);
        names
            .map(|name| {
                let mut s = String::new();
                push_padded(&mut s, name, 20);
                s
            })
            .collect()
    });
    let unknown = columns.len() - 1;
    columns[(probe as usize).min(unknown)].as_str()
}

impl Formatter<'_> {
    /// Appends `text` to `s`, in `color` when coloring.
    pub fn push_painted(&self, s: &mut String, color: &str, text: &str) {
        if self.color {
            s.push_str(color);
            s.push_str(text);
            s.push_str(paint::RESET);
        } else {
            s.push_str(text);
        }
    }

    /// `[142.097193] TCP: ... flags:S, reason: NO_SOCKET, tcp_v4_rcv+0x81`
    pub fn drop_line(&self, ev: &Event) -> String {
        let mut s = format!("[{}] {}", self.clock.format(ev.ts), event_summary(ev));
        if let Some(name) = self.reasons.event_reason(ev.reason) {
            s.push_str(", reason: ");
            self.push_painted(&mut s, paint::DROP, &name);
        }
        if let Some(loc) = ev.location {
            let _ = write!(s, ", {}", self.kallsyms.describe(loc));
        }
        s
    }

    /// The `Call Stack:` block printed under a drop with `--drop-stack`.
    pub fn stack_block(&self, frames: &[u64]) -> String {
        let mut s = String::from("Call Stack:\n");
        // The innermost frames are the BPF program and the tracepoint
        // trampoline that ran it: not part of the kernel's path to the drop.
        let is_tracing = |a: &u64| {
            self.kallsyms.resolve(*a).is_none_or(|l| {
                l.symbol.starts_with("bpf_trace_run")
                    || l.symbol.starts_with("__bpf_trace_")
                    || l.symbol.starts_with("bpf_prog_")
                    || l.symbol.starts_with("__traceiter_")
            })
        };
        let skip = frames.iter().take_while(|a| is_tracing(a)).count();
        let skip = if skip >= frames.len() { 0 } else { skip };
        for f in &frames[skip..] {
            let _ = writeln!(s, "    -> {}", self.kallsyms.describe(*f));
        }
        s
    }

    /// A finished context: the header naming its skbs, then its events in
    /// time order, then a blank line.
    pub fn context_block(&self, ctx: &crate::lifecycle::Context) -> String {
        let mut s = String::new();
        self.push_context_block(&mut s, ctx, |_, _| {});
        s
    }

    /// Appends a context block; `note(s, i)` appends to the i-th event line
    /// (in time order) what the diagnosis says of it.
    pub fn push_context_block(
        &self,
        s: &mut String,
        ctx: &crate::lifecycle::Context,
        mut note: impl FnMut(&mut String, usize),
    ) {
        s.push_str("***************** ");
        for (i, skb) in ctx.skbs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            push_hex(s, *skb);
        }
        s.push_str(" ***************\n");
        // Most events of a packet show the same headers: their summary is
        // copied from the previous line instead of formatted again
        // (formatting it was over half the cost of a block: callgrind).
        let mut last: Option<(&crate::events::Packet, bool)> = None;
        let mut summary = String::with_capacity(128);
        let mut previous_ts: Option<u64> = None;
        for (i, ev) in ctx.sorted_events().into_iter().enumerate() {
            if self.tiny && i > 0 {
                s.push('[');
                self.clock.push(s, ev.ts);
                s.push_str("] [");
                s.push_str(probe_column(ev.probe));
                s.push_str("] ");
                push_hex(s, ev.skb);
            } else {
                self.push_event_head(s, ev);
                if last != Some((&ev.pkt, ev.skb == 0)) {
                    summary.clear();
                    push_event_summary(&mut summary, ev);
                    last = Some((&ev.pkt, ev.skb == 0));
                }
                s.push_str(&summary);
                self.push_event_tail(s, ev);
            }
            if self.latency_show {
                let since = previous_ts.map_or(0, |p| ev.ts.saturating_sub(p));
                s.push_str(" *latency: ");
                s.push_str(&duration(since));
                s.push('*');
            }
            previous_ts = Some(ev.ts);
            note(s, i);
            s.push('\n');
            if !ev.stack.is_empty() {
                s.push_str(&self.stack_block(&ev.stack));
            }
        }
        if ctx.truncated > 0 {
            let _ = writeln!(
                s,
                "({} more events of this packet not kept: a context holds at most {})",
                ctx.truncated,
                crate::lifecycle::MAX_EVENTS
            );
        }
        if !ctx.free_unseen.is_empty() {
            let skbs: Vec<String> = ctx.free_unseen.iter().map(|s| format!("{s:x}")).collect();
            let _ = writeln!(
                s,
                "(end not seen: {} came back for another packet; no probe here sees the path that freed it)",
                skbs.join(",")
            );
        }
        if ctx.events_lost {
            s.push_str("(events were lost while this packet was traced: some of its events may be missing, and no finding rests on an event's absence)\n");
        }
        if ctx.cut_short {
            s.push_str("(incomplete: tracing stopped while the packet was still active)\n");
        } else if !ctx.complete {
            s.push_str("(incomplete: the packet was not seen freed or dropped)\n");
        }
        s.push('\n');
    }

    /// `[ts] [probe_name          ] summary` (with `--detail`, the skb,
    /// cpu, interface, pid, command and netns in brackets first).
    pub fn event_line(&self, ev: &Event) -> String {
        let mut s = String::new();
        self.push_event_line(&mut s, ev);
        s
    }

    /// Appends an event line (without its newline) to `s`.
    pub fn push_event_line(&self, s: &mut String, ev: &Event) {
        self.push_event_head(s, ev);
        push_event_summary(s, ev);
        self.push_event_tail(s, ev);
    }

    /// `--latency`: the line of an skb's span, at its first event's time:
    /// `[ts] TCP: ... latency: 12.345ms (ip_rcv -> tcp_v4_rcv)`, with the
    /// drop reason when the skb was dropped. None for an event without one.
    pub fn span_line(&self, ev: &Event) -> Option<String> {
        let span = ev.span.as_deref()?;
        let name = |id: u32| crate::catalogue::table::probe_by_id(id).map_or("?", |p| p.name);
        let mut s = format!(
            "[{}] {}, latency: {} ({} -> {})",
            self.clock.format(span.first_ts),
            event_summary(ev),
            duration(span.ns()),
            name(span.first_probe),
            name(span.end_probe)
        );
        if ev.is_drop() {
            s.push_str(", dropped");
            if let Some(name) = self.reasons.event_reason(ev.reason) {
                let _ = write!(s, ": {name}");
            }
            if let Some(loc) = ev.location {
                let _ = write!(s, " at {}", self.kallsyms.describe(loc));
            }
        }
        if self.detail {
            let _ = write!(s, ", skb {:x}, cpu {}, pid {}", ev.skb, ev.cpu, ev.pid);
        }
        Some(s)
    }

    /// The part of an event line before the packet summary.
    fn push_event_head(&self, s: &mut String, ev: &Event) {
        s.push('[');
        self.clock.push(s, ev.ts);
        s.push_str("] [");
        if self.detail {
            let ifname = if ev.ifname.is_empty() {
                "-"
            } else {
                &ev.ifname
            };
            push_hex(s, ev.skb);
            s.push_str("][");
            s.push_str(probe_column(ev.probe));
            s.push_str("][cpu:");
            push_int_padded(s, ev.cpu, 3);
            s.push_str("][");
            push_padded(s, ifname, 5);
            s.push_str("][pid:");
            push_int_padded(s, ev.pid, 7);
            s.push_str("][");
            push_padded(s, &ev.comm, 12);
            s.push_str("][ns:");
            push_int(s, ev.netns);
            s.push_str("] ");
        } else {
            s.push_str(probe_column(ev.probe));
            s.push_str("] ");
        }
    }

    /// The part of an event line after the packet summary: the drop
    /// reason, netfilter note and return value.
    fn push_event_tail(&self, s: &mut String, ev: &Event) {
        let probe = crate::catalogue::table::probe_by_id(ev.probe);
        if let Some(name) = self
            .reasons
            .event_reason(ev.reason.filter(|_| ev.is_drop()))
        {
            s.push_str(" *reason: ");
            self.push_painted(s, paint::DROP, &name);
            s.push('*');
        }
        if let Some(r) = ev.rst_reason {
            s.push_str(" *rst reason: ");
            s.push_str(&self.reasons.rst_name(r));
            s.push('*');
        }
        if let Some(nf) = &ev.nf {
            push_netfilter_note(s, nf);
        }
        if let Some(sock) = &ev.sock {
            push_sock_note(s, sock);
        }
        match (probe, ev.ret) {
            (Some(p), Some(ret)) if self.show_ret => {
                let _ = write!(s, " *return: {}*", describe_ret(p.ret, ret));
            }
            // Netfilter verdicts show without --ret: they are the point.
            (Some(p), Some(ret)) if p.shows_verdict() => {
                let _ = write!(s, " *verdict: {}*", verdict_name(p.ret, ret));
            }
            _ => {}
        }
    }
}
