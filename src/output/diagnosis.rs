//! `--diag` output: a context block with each finding's message appended
//! to its event line (`*packet is dropped by netfilter (NF_DROP)*`), then
//! the seed's `ANALYSIS RESULT` block listing warnings and errors with
//! advice, drop location and drop reason.

use super::lines::{describe_ret, Formatter};
use super::packet::summary;
use crate::catalogue::table::probe_by_id;
use crate::events::Event;
use crate::lifecycle::Context;
use crate::rules::compile::{Level, Part, Placeholder, Rule};
use crate::rules::eval::{evaluate, Finding, RuleSet};
use crate::rules::graph::LifeGraph;
use crate::rules::root::root_cause;
use crate::vocab::proto::{IPPROTO_TCP, IPPROTO_UDP};
use std::fmt::Write as _;

/// A rendered diagnosis of one context.
pub struct Diagnosis {
    pub text: String,
    /// The highest level found (None: no finding).
    pub worst: Option<Level>,
    /// Every finding; events are indexes in time order.
    pub findings: Vec<Finding>,
    /// Index in `findings` of the root cause (`rules::root`).
    pub root: Option<usize>,
}

/// Fills `{field}` placeholders from the event.
pub fn interpolate(fmt: &Formatter<'_>, parts: &[Part], ev: &Event) -> String {
    let mut s = String::new();
    push_interpolated(&mut s, fmt, parts, ev);
    s
}

/// Appends a message with its placeholders filled to `s`. A `[...]`
/// group whose placeholders are not all known is left out; a placeholder
/// outside any group that the event cannot fill says so in words.
pub fn push_interpolated(s: &mut String, fmt: &Formatter<'_>, parts: &[Part], ev: &Event) {
    for part in parts {
        match part {
            Part::Lit(t) => s.push_str(t),
            Part::Field(f) => match field_text(fmt, *f, ev) {
                Some(text) => s.push_str(&text),
                None => {
                    let _ = write!(s, "(unknown {})", f.name());
                }
            },
            Part::Optional(inner) => {
                if all_known(fmt, inner, ev) {
                    push_interpolated(s, fmt, inner, ev);
                }
            }
        }
    }
}

fn all_known(fmt: &Formatter<'_>, parts: &[Part], ev: &Event) -> bool {
    parts.iter().all(|p| match p {
        Part::Lit(_) => true,
        Part::Field(f) => field_text(fmt, *f, ev).is_some(),
        Part::Optional(_) => true,
    })
}

fn field_text(fmt: &Formatter<'_>, field: Placeholder, ev: &Event) -> Option<String> {
    let probe = probe_by_id(ev.probe);
    let p = &ev.pkt;
    let ports = p.l4_proto == IPPROTO_TCP || p.l4_proto == IPPROTO_UDP;
    Some(match field {
        Placeholder::Probe => probe?.name.to_string(),
        Placeholder::Group => probe?.group.to_string(),
        Placeholder::Ret => describe_ret(probe?.ret, ev.ret?),
        Placeholder::Reason => fmt.reasons.event_reason(ev.reason)?,
        Placeholder::RstReason => fmt.reasons.rst_name(ev.rst_reason?),
        Placeholder::Location => fmt.kallsyms.describe(ev.location?),
        Placeholder::Saddr => p.saddr?.to_string(),
        Placeholder::Daddr => p.daddr?.to_string(),
        Placeholder::Sport if ports => p.sport.to_string(),
        Placeholder::Dport if ports => p.dport.to_string(),
        Placeholder::Proto => summary(p).split(':').next()?.to_string(),
        Placeholder::Ifname if !ev.ifname.is_empty() => ev.ifname.to_string(),
        Placeholder::NfFamily => {
            crate::catalogue::nfnames::family_name(ev.nf.as_ref()?.pf_hook?.0).into_owned()
        }
        Placeholder::NfHook => {
            let (pf, hook) = ev.nf.as_ref()?.pf_hook?;
            crate::catalogue::nfnames::hook_name(pf, hook).into_owned()
        }
        Placeholder::NfTable => ev.nf.as_ref()?.table.clone()?,
        Placeholder::NfChain => {
            let nf = ev.nf.as_ref()?;
            let rule_chain = nf.rule.as_ref().and_then(|r| r.chain());
            rule_chain.or_else(|| nf.chain_name())?.to_string()
        }
        Placeholder::NfRule => ev.nf.as_ref()?.rule.as_ref()?.describe(),
        Placeholder::NfVerdict => super::lines::verdict_name(probe?.ret, ev.ret?).into_owned(),
        Placeholder::NfHooks => {
            let nf = ev.nf.as_ref().filter(|nf| !nf.hooks.is_empty())?;
            let names: Vec<String> = nf.hooks.iter().map(|h| fmt.kallsyms.describe(*h)).collect();
            names.join(", ")
        }
        Placeholder::Sport | Placeholder::Dport | Placeholder::Ifname => return None,
    })
}

/// Evaluates the rules on a finished context and renders it.
pub fn diagnose(fmt: &Formatter<'_>, rules: &RuleSet, ctx: &Context) -> Diagnosis {
    diagnose_into(fmt, rules, ctx, String::new())
}

/// `diagnose`, rendering into `text` (cleared first): a caller that reuses
/// one buffer for every packet allocates nothing per packet for text.
pub fn diagnose_into(
    fmt: &Formatter<'_>,
    rules: &RuleSet,
    ctx: &Context,
    mut text: String,
) -> Diagnosis {
    let graph = LifeGraph::of(ctx).with_symbols(fmt.kallsyms);
    let findings = evaluate(rules, &graph);
    let root = root_cause(rules, &graph, &findings);
    text.clear();
    // Findings come by event: walk them beside the event lines.
    let mut next = 0;
    fmt.push_context_block(&mut text, ctx, |s, i| {
        while let Some(f) = findings.get(next).filter(|f| f.event == i) {
            let rule = &rules[f.rule];
            s.push_str(" *");
            if fmt.color {
                s.push_str(level_color(rule.level));
            }
            push_interpolated(s, fmt, &rule.message, graph.events[f.event]);
            if fmt.color {
                s.push_str(crate::output::lines::paint::RESET);
            }
            s.push('*');
            next += 1;
        }
    });
    let reported: Vec<&Finding> = findings
        .iter()
        .filter(|f| rules[f.rule].level >= Level::Warn)
        .collect();
    if !reported.is_empty() {
        // The block ends with a blank line; the analysis goes before it.
        text.pop();
        text.push_str("---------------- ANALYSIS RESULT ---------------------\n");
        if let Some(r) = root.map(|i| &findings[i]) {
            let n = reported.iter().position(|f| *f == r).unwrap_or(0) + 1;
            let ev = graph.events[r.event];
            let rule = &rules[r.rule];
            let _ = write!(text, "ROOT CAUSE [{n}]: ");
            push_interpolated(&mut text, fmt, &rule.message, ev);
            let _ = writeln!(
                text,
                " ({}, rule {})",
                probe_by_id(ev.probe).map_or("?", |p| p.name),
                rule.id
            );
        }
        for (n, f) in reported.iter().enumerate() {
            text.push_str(&analysis_entry(
                fmt,
                n + 1,
                &rules[f.rule],
                graph.events[f.event],
            ));
        }
    }
    Diagnosis {
        text,
        worst: findings.iter().map(|f| rules[f.rule].level).max(),
        findings,
        root,
    }
}

/// The color of a level's label and findings (`--color`).
fn level_color(level: Level) -> &'static str {
    use crate::output::lines::paint;
    match level {
        Level::Error => paint::ERROR,
        Level::Warn => paint::WARN,
        Level::Info => paint::INFO,
    }
}

/// A level's label, painted when coloring.
fn label(fmt: &Formatter<'_>, level: Level) -> String {
    let mut s = String::new();
    fmt.push_painted(&mut s, level_color(level), level.label());
    s
}

fn analysis_entry(fmt: &Formatter<'_>, n: usize, rule: &Rule, ev: &Event) -> String {
    let probe = probe_by_id(ev.probe);
    let mut s = format!(
        "[{n}] {} happens in {}({}):\n        {}\n",
        label(fmt, rule.level),
        probe.map_or("?", |p| p.name),
        probe.map_or("?", |p| p.group),
        interpolate(fmt, &rule.message, ev)
    );
    if let Some(nf) = ev.nf.as_ref().filter(|nf| !nf.hooks.is_empty()) {
        s.push_str("\n    following hook functions are blamed:\n");
        for h in &nf.hooks {
            let name = fmt.kallsyms.describe(*h);
            let _ = writeln!(s, "        {}", name.strip_suffix("+0x0").unwrap_or(&name));
        }
        s.push('\n');
    }
    if ev.is_drop() {
        if let Some(loc) = ev.location {
            let _ = writeln!(s, "    location:\n        {}", fmt.kallsyms.describe(loc));
        }
        if let Some(name) = fmt.reasons.event_reason(ev.reason) {
            let _ = writeln!(s, "    drop reason:\n        {name}");
        }
    }
    if let Some(advice) = &rule.advice {
        let _ = writeln!(
            s,
            "    fix advice:\n        {}",
            interpolate(fmt, advice, ev)
        );
    }
    s.push('\n');
    s
}

/// `--monitor`: one finding on one line, e.g.
/// `[612.480131] ERROR nf.hook-drop: packet is dropped by netfilter (NF_DROP) -- [nf_hook_slow] ICMP: ... -- advice: check your netfilter rule`.
/// With `journal`, a syslog priority prefix (`<3>` error, `<4>` warning,
/// `<6>` info) lets journald keep the level.
pub fn finding_line(fmt: &Formatter<'_>, rule: &Rule, ev: &Event, journal: bool) -> String {
    let mut s = String::new();
    if journal {
        s.push_str(match rule.level {
            Level::Error => "<3>",
            Level::Warn => "<4>",
            Level::Info => "<6>",
        });
    }
    let line = fmt.event_line(ev);
    // The event line starts with its time in brackets: keep it first.
    let (time, rest) = line.split_once("] ").unwrap_or(("", &line));
    let _ = write!(
        s,
        "{time}] {} {}: {} -- {rest}",
        label(fmt, rule.level),
        rule.id,
        interpolate(fmt, &rule.message, ev)
    );
    if ev.is_drop() {
        if let Some(loc) = ev.location {
            let _ = write!(s, " at {}", fmt.kallsyms.describe(loc));
        }
    }
    if let Some(advice) = &rule.advice {
        let _ = write!(s, " -- advice: {}", interpolate(fmt, advice, ev));
    }
    s.push('\n');
    s
}
