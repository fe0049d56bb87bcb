//! Walks a base chain with a packet's facts the way the kernel does —
//! rules in order, jumps, gotos, returns, the policy at the end — and
//! names the rule that dropped it. A match the facts cannot decide splits
//! the walk in two; the kernel's own verdict (it dropped the packet) then
//! rules out every branch that accepts, and a rule is named only when
//! every remaining branch ends at it. Otherwise the answer says which
//! matches could not be evaluated and lists the candidates.

use super::model::{
    Action, Chain, Dir, Item, Key, Rule, Ruleset, Set, Table, Test, Values, Verdict,
};
use super::values::{in_net, in_range};
use crate::events::nfrule::{NfRule, RuleRef};
use crate::events::CtState;
use std::net::IpAddr;

/// What a rule can test of the packet, as the chain saw it. None: not
/// known (the event did not carry it).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// 4 or 6.
    pub family: u8,
    /// The frame's EtherType, where the event parsed the headers.
    pub ethertype: Option<u16>,
    pub saddr: Option<IpAddr>,
    pub daddr: Option<IpAddr>,
    pub proto: Option<u8>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub icmp: Option<(u8, u8)>,
    pub tcp_flags: Option<u8>,
    pub len: Option<u32>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub mark: Option<u32>,
    pub ct: Option<CtState>,
}

/// Three-valued: a match the facts cannot decide is `Unknown`, with the
/// match's text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Unknown(String),
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    fn known(v: Option<bool>, what: &str) -> Tri {
        v.map_or_else(|| Tri::Unknown(what.to_string()), Tri::of)
    }
}

const PORT_PROTOS: [u8; 4] = [6, 17, 132, 136];

fn in_ranges(r: &[(u32, u32)], v: u32) -> bool {
    r.iter().any(|(a, b)| (*a..=*b).contains(&v))
}

fn addr_in(values: &Values, a: IpAddr) -> bool {
    match values {
        Values::Nets(n) => n.iter().any(|(net, len)| in_net(a, *net, *len)),
        Values::AddrRanges(r) => r.iter().any(|(lo, hi)| in_range(a, *lo, *hi)),
        Values::Ranges(_) => false,
    }
}

fn num_in(values: &Values, v: u32) -> bool {
    match values {
        Values::Ranges(r) => in_ranges(r, v),
        _ => false,
    }
}

/// iptables' `eth+` and nft's `eth*` (stored as `+`) are prefixes.
fn iface_is(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

impl Facts {
    fn port(&self, dir: Dir) -> Option<u16> {
        match dir {
            Dir::Src => self.sport,
            Dir::Dst => self.dport,
        }
    }

    fn addr(&self, dir: Dir) -> Option<IpAddr> {
        match dir {
            Dir::Src => self.saddr,
            Dir::Dst => self.daddr,
        }
    }

    /// A port test: false for protocols without ports.
    fn port_test(&self, dir: Dir, values: &Values, text: &str) -> Tri {
        match self.proto {
            Some(p) if !PORT_PROTOS.contains(&p) => Tri::No,
            Some(_) => Tri::known(self.port(dir).map(|v| num_in(values, u32::from(v))), text),
            None => Tri::Unknown(text.to_string()),
        }
    }

    fn test(
        &self,
        test: &Test,
        text: &str,
        mark: Option<u32>,
        ruleset: &Ruleset,
        table: &Table,
    ) -> Tri {
        match test {
            Test::Always => Tri::Yes,
            Test::Family(f) => Tri::of(self.family == *f),
            Test::EtherType(t) => Tri::known(self.ethertype.map(|e| e == *t), text),
            Test::Addr(dir, values) => {
                Tri::known(self.addr(*dir).map(|a| addr_in(values, a)), text)
            }
            Test::Proto(values) => {
                Tri::known(self.proto.map(|p| num_in(values, u32::from(p))), text)
            }
            Test::Port(dir, values) => self.port_test(*dir, values, text),
            Test::AnyPort(values) => match (
                self.port_test(Dir::Src, values, text),
                self.port_test(Dir::Dst, values, text),
            ) {
                (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
                (Tri::No, Tri::No) => Tri::No,
                (u, _) => u,
            },
            Test::InIface(names) => {
                Tri::known(self.input.as_deref().map(|n| iface_is(names, n)), text)
            }
            Test::OutIface(names) => {
                Tri::known(self.output.as_deref().map(|n| iface_is(names, n)), text)
            }
            Test::CtState(states) => Tri::known(self.ct.map(|s| states.contains(&s)), text),
            Test::Mark { value, mask } => Tri::known(mark.map(|m| m & mask == *value), text),
            Test::Icmp { v6, types } => {
                let want = if *v6 { 58 } else { 1 };
                match (self.proto, self.icmp) {
                    (Some(p), _) if p != want => Tri::No,
                    (Some(_), Some((t, c))) => Tri::of(types.iter().any(|(tt, cc)| {
                        (*tt == u8::MAX && cc.is_some() || *tt == t) && cc.is_none_or(|cc| cc == c)
                    })),
                    _ => Tri::Unknown(text.to_string()),
                }
            }
            Test::TcpFlags { mask, comp } => match (self.proto, self.tcp_flags) {
                (Some(p), _) if p != 6 => Tri::No,
                // mask 0: any of `comp` (nft's `tcp flags syn,ack`).
                (Some(_), Some(f)) if *mask == 0 => Tri::of(f & comp != 0),
                (Some(_), Some(f)) => Tri::of(f & mask == *comp),
                _ => Tri::Unknown(text.to_string()),
            },
            Test::Length(values) => Tri::known(self.len.map(|l| num_in(values, l)), text),
            Test::SetLookup { set, nft, keys } => {
                let found = if *nft {
                    table.sets.get(set)
                } else {
                    ruleset.ipsets.get(set)
                };
                match found {
                    None => Tri::Unknown(format!("{text} (set `{set}` not found)")),
                    Some(s) => self.set_lookup(s, keys, mark, text),
                }
            }
            Test::Rate => Tri::Unknown(format!("{text} (depends on rate)")),
            Test::Unsupported(why) => Tri::Unknown(why.clone()),
        }
    }

    fn set_lookup(&self, set: &Set, keys: &[Key], mark: Option<u32>, text: &str) -> Tri {
        if let Some(why) = &set.unsupported {
            return Tri::Unknown(why.clone());
        }
        let mut unknown = false;
        for element in &set.elements {
            let mut all = true;
            for (key, values) in keys.iter().zip(element) {
                let v = match key {
                    Key::Addr(d) => self.addr(*d).map(|a| addr_in(values, a)),
                    Key::Port(d) => match (self.proto, self.port(*d)) {
                        // ipset's port dimension keeps the protocol in the high bits.
                        (Some(p), Some(port)) if !set_keyed_by_proto(values) => {
                            Some(PORT_PROTOS.contains(&p) && num_in(values, u32::from(port)))
                        }
                        (Some(p), Some(port)) => {
                            Some(num_in(values, (u32::from(p) << 16) | u32::from(port)))
                        }
                        (Some(p), None) if !PORT_PROTOS.contains(&p) => Some(false),
                        _ => None,
                    },
                    Key::Proto => self.proto.map(|p| num_in(values, u32::from(p))),
                    // Interface-name sets are not modelled: undecided,
                    // never a miss that could prove another rule.
                    Key::InIface | Key::OutIface => None,
                    Key::Mark => mark.map(|m| num_in(values, m)),
                };
                match v {
                    Some(true) => {}
                    Some(false) => {
                        all = false;
                        break;
                    }
                    None => unknown = true,
                }
            }
            if all && !unknown {
                return Tri::Yes;
            }
        }
        if unknown {
            Tri::Unknown(text.to_string())
        } else {
            Tri::No
        }
    }
}

fn set_keyed_by_proto(values: &Values) -> bool {
    matches!(values, Values::Ranges(r) if r.iter().any(|(a, _)| *a > 0xffff))
}

/// One way a walk ended.
#[derive(Debug, Clone)]
struct Ending {
    /// None: a target or queue whose verdict is not known.
    verdict: Option<Verdict>,
    /// The rule (chain name, 0-based index) or the policy (index None).
    chain: String,
    rule: Option<usize>,
    /// The jumps taken to get there: (chain, 0-based index).
    via: Vec<(String, usize)>,
    /// Matches decided by assumption on this branch.
    assumed: Vec<String>,
}

/// A frame of the walk: where to go on after a return.
#[derive(Debug, Clone)]
struct Frame {
    chain: String,
    next: usize,
}

/// How an answer begins when no way through the chain drops the packet.
pub const ACCEPTS: &str = "the ruleset as read accepts this packet here";

/// More branches than this and the walk gives up naming a rule.
const MAX_ENDINGS: usize = 64;
/// Deeper jumps than iptables allows are a broken model, not a ruleset.
const MAX_DEPTH: usize = 64;

struct Walk<'a> {
    ruleset: &'a Ruleset,
    /// The base chain the kernel ran.
    base: String,
    table: &'a Table,
    facts: &'a Facts,
    endings: Vec<Ending>,
    overflow: bool,
}

impl Walk<'_> {
    fn chain(&self, name: &str) -> Option<&Chain> {
        self.table.chain(name)
    }

    /// Runs `chain` from rule `start`, with the return stack `stack`.
    fn run(
        &mut self,
        chain: &str,
        start: usize,
        mut stack: Vec<Frame>,
        mark: Option<u32>,
        via: Vec<(String, usize)>,
        assumed: Vec<String>,
    ) {
        if self.endings.len() >= MAX_ENDINGS || stack.len() > MAX_DEPTH {
            self.overflow = true;
            return;
        }
        // Through a copy of the table reference: the chain borrows the
        // table, not the walk, which the loop below mutates.
        let table: &Table = self.table;
        let Some(c) = table.chain(chain) else {
            self.endings.push(Ending {
                verdict: None,
                chain: chain.to_string(),
                rule: None,
                via,
                assumed: [
                    assumed,
                    vec![format!("chain `{chain}` (not in the ruleset)")],
                ]
                .concat(),
            });
            return;
        };
        let mut mark = mark;
        for (i, rule) in c.rules.iter().enumerate().skip(start) {
            match self.rule(chain, i, rule, &mut stack, mark, &via, &assumed) {
                Some(after) => mark = after,
                None => return,
            }
        }
        // An ebtables user chain with a policy of its own ends there.
        if let (Some(policy), false) = (c.policy, chain == self.base) {
            self.endings.push(Ending {
                verdict: Some(policy),
                chain: chain.to_string(),
                rule: None,
                via,
                assumed,
            });
            return;
        }
        self.chain_end(stack, mark, via, assumed);
    }

    /// The end of a chain: back to the caller, or the base chain's policy.
    fn chain_end(
        &mut self,
        mut stack: Vec<Frame>,
        mark: Option<u32>,
        mut via: Vec<(String, usize)>,
        assumed: Vec<String>,
    ) {
        match stack.pop() {
            Some(f) => {
                via.pop();
                self.run(&f.chain, f.next, stack, mark, via, assumed);
            }
            None => {
                // The end of the base chain, or of a chain it went to with
                // a goto: the base chain's policy.
                let base = self.base.clone();
                let policy = self
                    .chain(&base)
                    .and_then(|c| c.policy)
                    .unwrap_or(Verdict::Accept);
                self.endings.push(Ending {
                    verdict: Some(policy),
                    chain: base,
                    rule: None,
                    via: Vec::new(),
                    assumed,
                });
            }
        }
    }

    /// Runs one rule: None when the walk of this branch went elsewhere or
    /// ended (the caller stops), else the mark to go on with (statements
    /// before a failing match still ran).
    #[allow(clippy::too_many_arguments)]
    fn rule(
        &mut self,
        chain: &str,
        index: usize,
        rule: &Rule,
        stack: &mut Vec<Frame>,
        mut mark: Option<u32>,
        via: &[(String, usize)],
        assumed: &[String],
    ) -> Option<Option<u32>> {
        // A rule that only logs or counts changes nothing its matches
        // could decide: skipping it keeps its undecidable matches (a rate
        // limit on a LOG rule) out of the answer.
        if rule
            .items
            .iter()
            .all(|i| matches!(i, Item::Match(_) | Item::Action(Action::Nothing)))
        {
            return Some(mark);
        }
        // Matches before the first action are one conjunction: one that is
        // known false skips the rule without splitting the walk on the
        // others.
        let leading_fails = rule
            .items
            .iter()
            .map_while(|i| match i {
                Item::Match(m) => Some(m),
                Item::Action(_) => None,
            })
            .any(|m| {
                let t = self
                    .facts
                    .test(&m.test, &m.text, mark, self.ruleset, self.table);
                matches!((t, m.negate), (Tri::No, false) | (Tri::Yes, true))
            });
        if leading_fails {
            return Some(mark);
        }
        let mut assumed = assumed.to_vec();
        for item in &rule.items {
            match item {
                Item::Match(m) => {
                    let t = self
                        .facts
                        .test(&m.test, &m.text, mark, self.ruleset, self.table);
                    let t = match (t, m.negate) {
                        (Tri::Yes, true) => Tri::No,
                        (Tri::No, true) => Tri::Yes,
                        (t, _) => t,
                    };
                    match t {
                        Tri::Yes => {}
                        Tri::No => return Some(mark),
                        Tri::Unknown(what) => {
                            // Branch: the rule stops here (go on with the
                            // next rule), or the match holds.
                            let mut no = assumed.clone();
                            no.push(what.clone());
                            self.run(chain, index + 1, stack.clone(), mark, via.to_vec(), no);
                            assumed.push(what);
                        }
                    }
                }
                Item::Action(a) => match a {
                    Action::Nothing => {}
                    Action::SetMark { value, mask } => mark = mark.map(|m| (m & !mask) ^ value),
                    Action::ForgetMark => mark = None,
                    Action::Verdict(v) => {
                        self.end(Some(*v), chain, index, via, assumed);
                        return None;
                    }
                    Action::Unknown(what) => {
                        // Either it ends the walk with a verdict we do not
                        // know, or the walk goes on.
                        let mut ends = assumed.clone();
                        ends.push(what.clone());
                        self.end(None, chain, index, via, ends);
                        assumed.push(what.clone());
                    }
                    Action::Return => {
                        let via = via.to_vec();
                        self.chain_end(std::mem::take(stack), mark, via, assumed);
                        return None;
                    }
                    Action::Jump(target) | Action::Goto(target) => {
                        let mut stack = std::mem::take(stack);
                        let mut via = via.to_vec();
                        if matches!(a, Action::Jump(_)) {
                            stack.push(Frame {
                                chain: chain.to_string(),
                                next: index + 1,
                            });
                            via.push((chain.to_string(), index));
                        } else if let Some(last) = via.last_mut() {
                            // A goto's chain returns to the caller of this one.
                            *last = (chain.to_string(), index);
                        } else {
                            via.push((chain.to_string(), index));
                        }
                        self.run(target, 0, stack, mark, via, assumed);
                        return None;
                    }
                },
            }
        }
        Some(mark)
    }

    fn end(
        &mut self,
        verdict: Option<Verdict>,
        chain: &str,
        index: usize,
        via: &[(String, usize)],
        assumed: Vec<String>,
    ) {
        if self.endings.len() >= MAX_ENDINGS {
            self.overflow = true;
            return;
        }
        self.endings.push(Ending {
            verdict,
            chain: chain.to_string(),
            rule: Some(index),
            via: via.to_vec(),
            assumed,
        });
    }
}

/// The rule of `table` that dropped a packet with these facts in base
/// chain `chain`.
pub fn attribute(ruleset: &Ruleset, table: &Table, chain: &str, facts: &Facts) -> NfRule {
    let mut walk = Walk {
        ruleset,
        base: chain.to_string(),
        table,
        facts,
        endings: Vec::new(),
        overflow: false,
    };
    walk.run(chain, 0, Vec::new(), facts.mark, Vec::new(), Vec::new());
    let rule_ref = |e: &Ending| -> RuleRef {
        let c = table.chain(&e.chain);
        match e.rule {
            Some(i) => {
                let r = c.and_then(|c| c.rules.get(i));
                RuleRef {
                    firewall: table.firewall,
                    table: table.display_name(),
                    chain: e.chain.clone(),
                    position: i as u32 + 1,
                    handle: r.and_then(|r| r.handle),
                    text: r.map(|r| r.text.clone()).unwrap_or_default(),
                }
            }
            None => RuleRef {
                firewall: table.firewall,
                table: table.display_name(),
                chain: e.chain.clone(),
                position: 0,
                handle: None,
                text: policy_text(table, &e.chain, e.verdict),
            },
        }
    };
    // The kernel dropped it: branches that accept did not happen.
    let possible: Vec<&Ending> = walk
        .endings
        .iter()
        .filter(|e| e.verdict.is_none_or(Verdict::drops))
        .collect();
    let mut deciders: Vec<(String, Option<usize>)> =
        possible.iter().map(|e| (e.chain.clone(), e.rule)).collect();
    deciders.sort();
    deciders.dedup();
    let unknown_verdict = possible.iter().any(|e| e.verdict.is_none());
    let assumed: Vec<String> = {
        let mut a: Vec<String> = walk
            .endings
            .iter()
            .flat_map(|e| e.assumed.iter().cloned())
            .collect();
        a.sort();
        a.dedup();
        a
    };
    if walk.overflow {
        return NfRule::Undecided {
            why: format!("too many ways through the ruleset to follow (more than {MAX_ENDINGS}); could not evaluate: {}", assumed.join(", ")),
            candidates: Vec::new(),
        };
    }
    match (deciders.len(), unknown_verdict) {
        (1, false) => {
            let e = possible[0];
            let via = e
                .via
                .iter()
                .map(|(c, i)| format!("{c} rule {}", i + 1))
                .collect();
            NfRule::Rule {
                rule: rule_ref(e),
                via,
                assumed: e.assumed.clone(),
            }
        }
        (0, _) => NfRule::Undecided {
            why: format!("{ACCEPTS}: it changed, or the packet differed from what was traced"),
            candidates: Vec::new(),
        },
        _ => {
            let mut candidates: Vec<RuleRef> = Vec::new();
            for e in &possible {
                let r = rule_ref(e);
                if !candidates.contains(&r) {
                    candidates.push(r);
                }
            }
            // In the order the ruleset lists them, policies last.
            let chain_index = |c: &str| table.chains.iter().position(|x| x.name == c);
            candidates.sort_by_key(|r| (chain_index(&r.chain), r.position == 0, r.position));
            NfRule::Undecided {
                why: format!("could not evaluate {}", assumed.join(", ")),
                candidates,
            }
        }
    }
}

/// A policy as the tool prints it: `:FORWARD DROP`, `policy drop`.
fn policy_text(table: &Table, chain: &str, verdict: Option<Verdict>) -> String {
    let name = match verdict {
        Some(Verdict::Drop) => "drop",
        _ => "accept",
    };
    match table.firewall {
        crate::events::nfrule::Firewall::Nft => format!("policy {name}"),
        _ => format!(":{chain} {}", name.to_ascii_uppercase()),
    }
}
