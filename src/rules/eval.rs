//! Evaluating compiled rules over a packet's lifecycle graph: which rule
//! holds on which event. Rules are evaluated in order; a fallback rule
//! gives its finding only on events no other rule matched.

use super::ast::{CmpOp, Flag, OrderOp};
use super::compile::{Cond, Field, Rule, Val};
use super::graph::LifeGraph;
use crate::catalogue::retnames;
use crate::catalogue::table::PROBES;
use crate::events::Event;
use crate::kernel::kallsyms::Kallsyms;
use crate::vocab::proto::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use std::net::IpAddr;

/// Rule `rule` holds on event `event` (an index into the graph's events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub rule: usize,
    pub event: usize,
}

/// Rules with an index by probe: for each probe, the rules that can hold
/// on its events (most rules name their probes), so an event visits a
/// handful of rules rather than the whole pack. Derefs to the rules.
pub struct RuleSet {
    rules: Vec<Rule>,
    by_probe: Vec<Vec<u32>>,
    /// Rules for events of a probe this build does not know.
    unpinned: Vec<u32>,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        let mut by_probe = vec![Vec::new(); PROBES.len()];
        let mut unpinned = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match &r.on_probes {
                None => {
                    by_probe.iter_mut().for_each(|v| v.push(i as u32));
                    unpinned.push(i as u32);
                }
                Some(probes) => {
                    for p in probes {
                        if let Some(v) = by_probe.get_mut(*p as usize) {
                            v.push(i as u32);
                        }
                    }
                }
            }
        }
        RuleSet {
            rules,
            by_probe,
            unpinned,
        }
    }

    /// Indexes of the rules that can hold on an event of `probe`, in order.
    pub fn candidates(&self, probe: u32) -> &[u32] {
        self.by_probe
            .get(probe as usize)
            .map_or(&self.unpinned, |v| v)
    }
}

impl std::ops::Deref for RuleSet {
    type Target = [Rule];
    fn deref(&self) -> &[Rule] {
        &self.rules
    }
}

/// Every finding of a context, by event then rule order.
pub fn evaluate(rules: &RuleSet, graph: &LifeGraph<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for event in 0..graph.len() {
        let before = out.len();
        let candidates = rules.candidates(graph.events[event].probe);
        for &i in candidates {
            let r = &rules[i as usize];
            if !r.fallback && holds(&r.cond, graph, event) {
                out.push(Finding {
                    rule: i as usize,
                    event,
                });
            }
        }
        if out.len() == before {
            if let Some(&i) = candidates.iter().find(|&&i| {
                let r = &rules[i as usize];
                r.fallback && holds(&r.cond, graph, event)
            }) {
                out.push(Finding {
                    rule: i as usize,
                    event,
                });
            }
        }
    }
    out
}

/// Whether `cond` holds on event `i` of the graph: proven, that is. An
/// order test that finds no matching event is unknown, not false, where
/// the graph may be missing such events (`Gaps`), and so is its negation:
/// a rule never fires on the absence of an event the kernel may have lost
/// or the run may have ended before.
pub fn holds(cond: &Cond, graph: &LifeGraph<'_>, i: usize) -> bool {
    truth(cond, graph, i) == Some(true)
}

/// `cond` on event `i`, in three values: None when the graph cannot tell.
fn truth(cond: &Cond, graph: &LifeGraph<'_>, i: usize) -> Option<bool> {
    let ev = graph.events[i];
    Some(match cond {
        Cond::Const(b) => *b,
        // Kleene logic: a false item decides And, a true one decides Or.
        Cond::And(items) => return fold(items, graph, i, false),
        Cond::Or(items) => return fold(items, graph, i, true),
        Cond::Not(c) => !truth(c, graph, i)?,
        Cond::Order(op, c) => {
            let (others, may_miss) = match op {
                OrderOp::After => (graph.earlier(i), graph.gaps.earlier()),
                OrderOp::Before => (graph.later(i), graph.gaps.later()),
                OrderOp::Seen => (
                    (0..graph.len()).collect(),
                    graph.gaps.earlier() || graph.gaps.later(),
                ),
            };
            let mut unknown = may_miss;
            for j in others {
                match truth(c, graph, j) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            return if unknown { None } else { Some(false) };
        }
        Cond::Probes(ids) => ids.binary_search(&ev.probe).is_ok(),
        Cond::Flag(Flag::Drop) => ev.is_drop(),
        Cond::Flag(Flag::Free) => ev.flags & crate::events::flags::FREE != 0,
        Cond::Flag(Flag::Clone) => ev.clone.is_some(),
        Cond::Test(field, op, vals) => test(ev, *field, *op, vals, graph.symbols),
    })
}

/// And (`decisive` false) or Or (`decisive` true) of `items`.
fn fold(items: &[Cond], graph: &LifeGraph<'_>, i: usize, decisive: bool) -> Option<bool> {
    let mut unknown = false;
    for c in items {
        match truth(c, graph, i) {
            Some(b) if b == decisive => return Some(decisive),
            Some(_) => {}
            None => unknown = true,
        }
    }
    if unknown {
        None
    } else {
        Some(!decisive)
    }
}

/// Whether `cond` holds on an event of which only the probe and the
/// return value are known (`ev`): Some when those decide it, None when it
/// depends on anything else (packet fields, drop reason, order...).
/// Monitor mode asks this to find the return values no rule reports on.
pub fn decided_by_ret(cond: &Cond, ev: &Event) -> Option<bool> {
    match cond {
        Cond::Const(b) => Some(*b),
        Cond::And(items) => decided_by_any(items, ev, false),
        Cond::Or(items) => decided_by_any(items, ev, true),
        Cond::Not(c) => decided_by_ret(c, ev).map(|b| !b),
        Cond::Order(..) => None,
        Cond::Probes(ids) => Some(ids.binary_search(&ev.probe).is_ok()),
        Cond::Flag(f) => match PROBES.get(ev.probe as usize) {
            Some(p) if !crate::rules::compile::flag_possible(*f, p) => Some(false),
            _ => None,
        },
        Cond::Test(field @ (Field::Ret | Field::NfVerdict), op, vals) => {
            Some(test(ev, *field, *op, vals, None))
        }
        Cond::Test(..) => None,
    }
}

/// `decided_by_ret` of a conjunction (`decisive` false: one false part
/// decides it) or a disjunction (`decisive` true: one true part does).
fn decided_by_any(items: &[Cond], ev: &Event, decisive: bool) -> Option<bool> {
    let mut open = false;
    for c in items {
        match decided_by_ret(c, ev) {
            Some(b) if b == decisive => return Some(decisive),
            None => open = true,
            Some(_) => {}
        }
    }
    (!open).then_some(!decisive)
}

/// What an event carries for a field; None makes every test false.
enum Have<'e> {
    Int(i64),
    Ip(Option<IpAddr>, Option<IpAddr>),
    Text(&'e str),
}

fn test(ev: &Event, field: Field, op: CmpOp, vals: &[Val], symbols: Option<&Kallsyms>) -> bool {
    let p = &ev.pkt;
    match field {
        Field::Proto => return proto_test(ev, op, vals),
        Field::Port => {
            let l4_ports = p.l4_proto == IPPROTO_TCP || p.l4_proto == IPPROTO_UDP;
            return l4_ports
                && (test_int(p.sport.into(), ev, op, vals)
                    || test_int(p.dport.into(), ev, op, vals));
        }
        _ => {}
    }
    let have = match field {
        Field::Location | Field::LocationGroup => ev
            .location
            .filter(|_| ev.is_drop())
            .and_then(|a| symbols?.resolve(a))
            .map(|l| Have::Text(l.symbol)),
        _ => have_of(ev, field),
    };
    match have {
        None => false,
        Some(Have::Int(x)) => test_int(x, ev, op, vals),
        Some(Have::Ip(a, b)) => {
            let hit = |v: &Val| match v {
                Val::Net(net, len) => [a, b]
                    .into_iter()
                    .flatten()
                    .any(|x| in_prefix(x, *net, *len)),
                _ => false,
            };
            match op {
                CmpOp::Ne => !vals.iter().any(hit),
                _ => vals.iter().any(hit),
            }
        }
        Some(Have::Text(t)) => {
            let hit = |v: &Val| match v {
                Val::Str(s) if op == CmpOp::Contains => t.contains(s.as_str()),
                Val::Str(s) => s == t,
                Val::Names(names) => names.binary_search(&t).is_ok(),
                _ => false,
            };
            match op {
                CmpOp::Ne => !vals.iter().any(hit),
                _ => vals.iter().any(hit),
            }
        }
    }
}

/// A netfilter probe's verdict as an NF_* number.
fn verdict(ev: &Event) -> Option<i64> {
    let probe = PROBES.get(ev.probe as usize).filter(|p| p.is_netfilter())?;
    retnames::as_nf_verdict(probe.ret, ev.ret?)
}

/// What the event carries for a field (not `proto`, `port`).
fn have_of(ev: &Event, field: Field) -> Option<Have<'_>> {
    let p = &ev.pkt;
    let l4_ports = p.l4_proto == IPPROTO_TCP || p.l4_proto == IPPROTO_UDP;
    match field {
        Field::Ret => {
            let kind = PROBES.get(ev.probe as usize).map(|p| p.ret);
            ev.ret
                .map(|r| Have::Int(kind.map_or(r, |k| retnames::effective(k, r))))
        }
        Field::Reason => ev
            .reason
            .filter(|_| ev.is_drop())
            .map(|r| Have::Int(r.into())),
        Field::RstReason => ev.rst_reason.map(|r| Have::Int(r.into())),
        Field::Saddr => p.saddr.map(|a| Have::Ip(Some(a), None)),
        Field::Daddr => p.daddr.map(|a| Have::Ip(Some(a), None)),
        Field::Addr => {
            (p.saddr.is_some() || p.daddr.is_some()).then_some(Have::Ip(p.saddr, p.daddr))
        }
        Field::Sport => l4_ports.then_some(Have::Int(p.sport.into())),
        Field::Dport => l4_ports.then_some(Have::Int(p.dport.into())),
        Field::TcpFlags => (p.l4_proto == IPPROTO_TCP).then_some(Have::Int(p.tcp_flags.into())),
        Field::Len => Some(Have::Int(p.len.into())),
        Field::Ifname => (!ev.ifname.is_empty()).then_some(Have::Text(&ev.ifname)),
        Field::NfFamily => ev.nf.as_ref()?.pf_hook.map(|(pf, _)| Have::Int(pf.into())),
        Field::NfHook => ev.nf.as_ref()?.pf_hook.map(|(_, h)| Have::Int(h.into())),
        Field::NfTable => ev.nf.as_ref()?.table.as_deref().map(Have::Text),
        // The chain of the deciding rule when one is named (a user-defined
        // chain the packet jumped to), else the chain the hook ran.
        Field::NfChain => {
            let nf = ev.nf.as_ref()?;
            nf.rule
                .as_ref()
                .and_then(|r| r.chain())
                .or_else(|| nf.chain_name())
                .map(Have::Text)
        }
        Field::NfRule => ev.nf.as_ref()?.rule.as_ref()?.text().map(Have::Text),
        Field::NfVerdict => verdict(ev).map(Have::Int),
        Field::IcmpType | Field::IcmpCode => {
            let icmp = matches!(p.l4_proto, IPPROTO_ICMP | IPPROTO_ICMPV6) && p.saddr.is_some();
            icmp.then(|| {
                Have::Int(if field == Field::IcmpType {
                    p.icmp_type.into()
                } else {
                    p.icmp_code.into()
                })
            })
        }
        Field::Proto | Field::Port | Field::Location | Field::LocationGroup => None,
    }
}

/// The range a value stands for on this event.
fn range(v: &Val, ev: &Event) -> Option<(i64, i64)> {
    match v {
        Val::Range(lo, hi) => Some((*lo, *hi)),
        Val::RetName(_, by_kind) => {
            let probe = PROBES.get(ev.probe as usize)?;
            probe
                .signatures
                .iter()
                .find_map(|s| by_kind[s.ret as usize])
                .or(by_kind[probe.ret as usize])
        }
        Val::Reason(_, r) | Val::RstReason(_, r) => r.map(|r| (r.into(), r.into())),
        Val::Flags(f) => Some((i64::from(*f), i64::from(*f))),
        Val::IcmpType(v4, v6) => {
            let t = if ev.pkt.l4_proto == IPPROTO_ICMPV6 {
                v6
            } else {
                v4
            };
            t.map(|t| (t.into(), t.into()))
        }
        _ => None,
    }
}

fn test_int(x: i64, ev: &Event, op: CmpOp, vals: &[Val]) -> bool {
    let within = |v: &Val| range(v, ev).is_some_and(|(lo, hi)| lo <= x && x <= hi);
    match op {
        CmpOp::Eq | CmpOp::In => vals.iter().any(within),
        CmpOp::Ne => vals.iter().all(|v| range(v, ev).is_some() && !within(v)),
        CmpOp::Contains => false,
        CmpOp::Has => vals
            .iter()
            .all(|v| matches!(v, Val::Flags(f) if x & i64::from(*f) == i64::from(*f))),
        CmpOp::Lt => vals
            .iter()
            .all(|v| range(v, ev).is_some_and(|(lo, _)| x < lo)),
        CmpOp::Le => vals
            .iter()
            .all(|v| range(v, ev).is_some_and(|(_, hi)| x <= hi)),
        CmpOp::Gt => vals
            .iter()
            .all(|v| range(v, ev).is_some_and(|(_, hi)| x > hi)),
        CmpOp::Ge => vals
            .iter()
            .all(|v| range(v, ev).is_some_and(|(lo, _)| x >= lo)),
    }
}

fn proto_test(ev: &Event, op: CmpOp, vals: &[Val]) -> bool {
    let p = &ev.pkt;
    if p.l3_proto == 0 {
        return false;
    }
    let hit = |v: &Val| match v {
        Val::L3(x) => p.l3_proto == *x,
        Val::L4(x) => p.saddr.is_some() && p.l4_proto == *x,
        _ => false,
    };
    match op {
        CmpOp::Ne => !vals.iter().any(hit),
        _ => vals.iter().any(hit),
    }
}

fn in_prefix(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}
