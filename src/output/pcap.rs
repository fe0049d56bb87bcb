//! pcapng export (`--pcap FILE`): every captured packet as an Enhanced
//! Packet Block that stock Wireshark and tshark open, its comment
//! (`frame.comment`) saying in plain text where the packet went in the
//! kernel, where and why it died, and what the rules found.
//!
//! Interfaces are described once each (one Interface Description Block
//! per interface, network namespace and link type: a packet captured at
//! the network header is LINKTYPE_RAW, one captured at its MAC header
//! LINKTYPE_ETHERNET). Times are wall-clock nanoseconds. docs/pcap.md
//! shows what a capture holds.

use super::diagnosis::{interpolate, Diagnosis};
use super::lines::Formatter;
use crate::catalogue::table::probe_by_id;
use crate::events::bytes::{Captured, Link};
use crate::events::Event;
use crate::lifecycle::Context;
use crate::rules::compile::Rule;
use crate::rules::eval::RuleSet;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

/// `epb_flags` direction bits (pcapng: 01 inbound, 10 outbound).
const INBOUND: u32 = 0b01;
const OUTBOUND: u32 = 0b10;

/// A pcapng file being written.
pub struct PcapWriter<W: Write> {
    out: PcapNgWriter<W>,
    /// Described interfaces, by block id: (ifindex, netns, link type).
    interfaces: Vec<(u32, u32, Link)>,
    /// CLOCK_REALTIME - CLOCK_MONOTONIC (ns): event times are monotonic.
    realtime_offset_ns: i128,
    snaplen: u32,
    /// Enhanced Packet Blocks written.
    pub packets: u64,
    error: Option<std::io::Error>,
}

fn io_error(e: pcap_file::PcapError) -> std::io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

impl<W: Write> PcapWriter<W> {
    /// Starts the file (its Section Header Block).
    pub fn new(out: W, realtime_offset_ns: i128, snaplen: u32) -> std::io::Result<PcapWriter<W>> {
        Ok(PcapWriter {
            out: PcapNgWriter::new(out).map_err(io_error)?,
            interfaces: Vec::new(),
            realtime_offset_ns,
            snaplen,
            packets: 0,
            error: None,
        })
    }

    /// Writes the packet `ev` carries (nothing if it carries none), with
    /// `comment` as its `opt_comment`. A write error is kept for `finish`.
    pub fn packet(&mut self, ev: &Event, comment: &str) {
        let Some(captured) = ev.bytes.as_deref() else {
            return;
        };
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.write_packet(ev, captured, comment) {
            self.error = Some(e);
        }
    }

    fn write_packet(&mut self, ev: &Event, c: &Captured, comment: &str) -> std::io::Result<()> {
        let interface_id = self.interface(ev, c.link)?;
        let wall = (ev.ts as i128 + self.realtime_offset_ns).max(0) as u128;
        let timestamp = Duration::new((wall / 1_000_000_000) as u64, (wall % 1_000_000_000) as u32);
        let data = &c.data[..c.data.len().min(self.snaplen as usize)];
        let mut options = vec![EnhancedPacketOption::Comment(Cow::Borrowed(comment))];
        if let Some(flags) = direction(ev) {
            options.push(EnhancedPacketOption::Flags(flags));
        }
        let block = EnhancedPacketBlock {
            interface_id,
            timestamp,
            original_len: c.orig_len.max(data.len() as u32),
            data: Cow::Borrowed(data),
            options,
        };
        self.out.write_pcapng_block(block).map_err(io_error)?;
        self.packets += 1;
        Ok(())
    }

    /// The block id of `ev`'s interface, described on first use.
    fn interface(&mut self, ev: &Event, link: Link) -> std::io::Result<u32> {
        let key = (ev.ifindex, ev.netns, link);
        if let Some(i) = self.interfaces.iter().position(|k| *k == key) {
            return Ok(i as u32);
        }
        let name = match (ev.ifname.is_empty(), ev.ifindex) {
            (false, _) => ev.ifname.to_string(),
            (true, 0) => "unknown".to_string(),
            (true, i) => format!("ifindex {i}"),
        };
        let mut description = String::from("nettrace");
        if ev.netns != 0 {
            let _ = write!(description, ", netns {}", ev.netns);
        }
        if ev.ifindex != 0 {
            let _ = write!(description, ", ifindex {}", ev.ifindex);
        }
        let block = InterfaceDescriptionBlock {
            linktype: match link {
                Link::Raw => DataLink::RAW,
                Link::Ethernet => DataLink::ETHERNET,
            },
            snaplen: self.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(name)),
                InterfaceDescriptionOption::IfDescription(Cow::Owned(description)),
                // Nanoseconds (10^-9).
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        self.out.write_pcapng_block(block).map_err(io_error)?;
        self.interfaces.push(key);
        Ok(self.interfaces.len() as u32 - 1)
    }

    /// Flushes the file; Err: the first write that failed.
    pub fn finish(mut self) -> std::io::Result<u64> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.get_mut().flush()?;
        Ok(self.packets)
    }
}

/// The direction a probe's group implies: receive or transmit at a device.
fn direction(ev: &Event) -> Option<u32> {
    match probe_by_id(ev.probe)?.group {
        "link-in" | "pkt-in" => Some(INBOUND),
        "link-out" | "pkt-output" => Some(OUTBOUND),
        _ => None,
    }
}

fn probe_name(ev: &Event) -> &'static str {
    probe_by_id(ev.probe).map_or("?", |p| p.name)
}

/// "drop: reason NETFILTER_DROP, in nf_hook_slow+0x92 (kfree_skb)"
fn push_drop(s: &mut String, fmt: &Formatter<'_>, ev: &Event) {
    s.push_str("drop:");
    if let Some(reason) = fmt.reasons.event_reason(ev.reason) {
        let _ = write!(s, " reason {reason},");
    }
    if let Some(loc) = ev.location {
        let _ = write!(s, " in {}", fmt.kallsyms.describe(loc));
    }
    let _ = writeln!(s, " ({})", probe_name(ev));
}

/// The comment of a packet of the drop monitor or of `--basic`.
pub fn event_comment(fmt: &Formatter<'_>, ev: &Event) -> String {
    let role = if ev.is_drop() { "dropped" } else { "seen" };
    let mut s = format!("nettrace: {role} at {}\n", probe_name(ev));
    if let Some(reason) = ev.rst_reason.map(|r| fmt.reasons.rst_name(r)) {
        let _ = writeln!(s, "reset reason: {reason}");
    }
    if ev.is_drop() {
        push_drop(&mut s, fmt, ev);
        if !ev.stack.is_empty() {
            s.push_str(&fmt.stack_block(&ev.stack));
        }
    }
    s.pop();
    s
}

/// The comment of an event of `--monitor` and the findings it reported.
pub fn findings_comment(fmt: &Formatter<'_>, ev: &Event, rules: &[&Rule]) -> String {
    let mut s = event_comment(fmt, ev);
    for rule in rules {
        s.push('\n');
        push_finding(&mut s, fmt, rule, ev);
    }
    s
}

/// "ERROR nft.drop at nft_do_chain: message | fix: advice"
fn push_finding(s: &mut String, fmt: &Formatter<'_>, rule: &Rule, ev: &Event) {
    let _ = write!(
        s,
        "{} {} at {}: {}",
        rule.level.label(),
        rule.id,
        probe_name(ev),
        interpolate(fmt, &rule.message, ev)
    );
    if let Some(advice) = &rule.advice {
        let _ = write!(s, " | fix: {}", interpolate(fmt, advice, ev));
    }
}

/// The comment of a captured event `at` of a packet's lifecycle: the
/// packet's path with times relative to its first event, its drop, and
/// with `--diag` the findings (rule, level, message, advice) and the root
/// cause.
pub fn context_comment(
    fmt: &Formatter<'_>,
    ctx: &Context,
    at: &Event,
    diag: Option<(&RuleSet, &Diagnosis)>,
) -> String {
    let events = ctx.sorted_events();
    let first = events.first().map_or(at.ts, |e| e.ts);
    let mut s = String::new();
    let role = if at.is_drop() { "dropped" } else { "captured" };
    let _ = writeln!(
        s,
        "nettrace: {role} at {} (+{}us)",
        probe_name(at),
        micros(at.ts - first.min(at.ts))
    );
    s.push_str("path:");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            s.push_str(" >");
        }
        let _ = write!(
            s,
            " {} +{}us",
            probe_name(e),
            micros(e.ts - first.min(e.ts))
        );
        if let Some(ret) = e.ret {
            let _ = write!(s, " (ret {ret})");
        }
        if let Some(reason) = e.rst_reason.map(|r| fmt.reasons.rst_name(r)) {
            let _ = write!(s, " (reset reason {reason})");
        }
    }
    s.push('\n');
    if !ctx.complete {
        s.push_str("end: not seen (the packet was not seen freed or dropped)\n");
    }
    if ctx.events_lost {
        s.push_str("note: events were lost while this packet was traced\n");
    }
    if let Some(drop) = events.iter().find(|e| e.is_drop()) {
        push_drop(&mut s, fmt, drop);
    }
    if let Some((rules, d)) = diag {
        for (n, f) in d.findings.iter().enumerate() {
            push_finding(&mut s, fmt, &rules[f.rule], events[f.event]);
            if d.root == Some(n) {
                s.push_str(" | root cause");
            }
            s.push('\n');
        }
    }
    s.pop();
    s
}

/// Nanoseconds as microseconds with three decimals.
fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}
