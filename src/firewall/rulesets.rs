//! The rulesets of the namespaces a run sees netfilter drops in, over
//! time. A namespace is watched from its first drop: its ruleset is read
//! then with the firewall's own tools, and again whenever its
//! fingerprint changes. Each reading is an epoch, known to hold from
//! when its fingerprint was first seen; a drop is judged against the
//! epoch in force at its timestamp, or, when it fell between the last
//! poll that saw the old rules and the first that saw new ones, against
//! both (a rule is named only if both agree).

use super::model::{Family, Ruleset, Table};
use super::netns::{ebtables_modules, Fingerprint, Netns};
use super::verdict::{attribute, Facts};
use super::{ebtables, iptables, nft};
use crate::catalogue::nfnames;
use crate::events::nfrule::{Firewall, NfRule};
use crate::events::{Event, NfFacts};
use std::collections::HashMap;
use std::sync::Arc;

/// One reading of a namespace's rules.
struct Epoch {
    fingerprint: u64,
    /// CLOCK_MONOTONIC ns (the events' clock): the last poll that saw the
    /// previous rules, and the first that saw these.
    changed_after: u64,
    seen_at: u64,
    ruleset: Arc<Ruleset>,
    /// What could not be read (a tool missing), for the answer.
    problems: Vec<String>,
}

struct Watched {
    netns: Netns,
    epochs: Vec<Epoch>,
    last_poll: u64,
    /// Legacy ebtables tables drops showed here (only those are read).
    ebtables: Vec<String>,
}

/// Which kind of table function returned the drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// `ipt_do_table`, `ip6t_do_table`: legacy iptables.
    Xtables,
    /// `ebt_do_table`: legacy ebtables.
    Ebtables,
    /// `nft_do_chain`: nftables, and iptables-nft and ebtables-nft on it.
    Nft,
}

/// Epochs kept per namespace: a drop older than these is judged against
/// the oldest.
const EPOCHS_KEPT: usize = 8;
/// Namespaces watched at most; more are not attributed.
const NAMESPACES_WATCHED: usize = 256;

/// The rulesets of every watched namespace.
#[derive(Default)]
pub struct Rulesets {
    watched: HashMap<u64, Result<Watched, String>>,
    last_poll: u64,
}

/// How often `poll` reads the fingerprints at most.
const POLL_EVERY_NS: u64 = 100_000_000;
/// How often a flood of drops reads a namespace's fingerprint at most.
const DROP_POLL_NS: u64 = 10_000_000;

pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Reads every ruleset the fingerprint says exists, with the tools.
fn read_rulesets(netns: &Netns, fp: &Fingerprint) -> (Ruleset, Vec<String>) {
    let mut ruleset = Ruleset::default();
    let mut problems = Vec::new();
    let mut tables = |r: Result<Vec<Table>, String>, problems: &mut Vec<String>| match r {
        Ok(t) => ruleset.tables.extend(t),
        Err(e) => problems.push(e),
    };
    // `iptables-legacy-save` / `iptables-nft-save`, or where a distribution
    // ships one variant only, plain `iptables-save` if it is that variant
    // (`-V` says `(nf_tables)` for nft; releases before 1.8 are legacy).
    let save = |program: &str, fw: Firewall, family: Family| {
        let plain = if family == Family::Ip {
            "iptables-save"
        } else {
            "ip6tables-save"
        };
        let text = netns.run(program, &[]).or_else(|e| {
            let version = netns.run(plain, &["-V"]).map_err(|_| e.clone())?;
            let nft = version.contains("nf_tables");
            if nft == (fw == Firewall::IptablesNft) {
                netns.run(plain, &[])
            } else {
                Err(e)
            }
        })?;
        Ok(iptables::parse_save(&text, fw, family))
    };
    if fp.legacy.0 {
        tables(
            save("iptables-legacy-save", Firewall::IptablesLegacy, Family::Ip),
            &mut problems,
        );
    }
    if fp.legacy.1 {
        tables(
            save(
                "ip6tables-legacy-save",
                Firewall::IptablesLegacy,
                Family::Ip6,
            ),
            &mut problems,
        );
    }
    if fp.nft {
        // iptables-nft's tables first: where both list a table, its rules
        // are shown as iptables prints them.
        for (program, family) in [
            ("iptables-nft-save", Family::Ip),
            ("ip6tables-nft-save", Family::Ip6),
        ] {
            match save(program, Firewall::IptablesNft, family) {
                Ok(t) => tables(
                    Ok(t.into_iter().filter(|t| !t.chains.is_empty()).collect()),
                    &mut problems,
                ),
                // Without iptables-nft nothing is lost: nft reads those tables too.
                Err(e) if e.ends_with("is not installed") => {}
                Err(e) => problems.push(e),
            }
        }
        let nft = netns
            .run("nft", &["-j", "-a", "-s", "list", "ruleset"])
            .and_then(|json| {
                let text = netns.run("nft", &["-a", "-s", "list", "ruleset"])?;
                nft::parse_json(&json, &nft::rule_texts(&text)).map_err(|e| e.to_string())
            });
        tables(nft, &mut problems);
    }
    for name in &fp.ebtables {
        match netns.run("ebtables-legacy", &["-t", name, "-L"]) {
            Ok(text) => ruleset.tables.extend(ebtables::parse_list(&text)),
            Err(e) => problems.push(e),
        }
    }
    let uses_ipset = ruleset.tables.iter().any(|t| {
        t.firewall != Firewall::Nft
            && t.chains
                .iter()
                .flat_map(|c| &c.rules)
                .any(|r| r.text.contains("--match-set"))
    });
    if uses_ipset {
        match netns.run("ipset", &["save"]) {
            Ok(text) => ruleset.ipsets = iptables::parse_ipset_save(&text),
            Err(e) => problems.push(e),
        }
    }
    (ruleset, problems)
}

impl Watched {
    /// Polls the fingerprint; reads the rules again if it changed.
    fn poll(&mut self, now: u64) {
        let fp = match self.netns.fingerprint(&self.ebtables) {
            Ok(fp) => fp,
            Err(_) => return,
        };
        let same = self.epochs.last().is_some_and(|e| e.fingerprint == fp.hash);
        if !same {
            let (ruleset, problems) = read_rulesets(&self.netns, &fp);
            // The rules may have changed again while the tools ran: the
            // epoch holds from the fingerprint read before them.
            self.epochs.push(Epoch {
                fingerprint: fp.hash,
                changed_after: self.last_poll,
                seen_at: now,
                ruleset: Arc::new(ruleset),
                problems,
            });
            if self.epochs.len() > EPOCHS_KEPT {
                self.epochs.remove(0);
            }
        }
        self.last_poll = now;
    }

    /// The epochs a drop at `ts` may have met: one, or two around a change.
    fn epochs_at(&self, ts: u64) -> Vec<&Epoch> {
        let mut at: Vec<&Epoch> = Vec::new();
        for (i, e) in self.epochs.iter().enumerate() {
            let next = self.epochs.get(i + 1);
            let before_next = next.is_none_or(|n| ts < n.seen_at);
            let after_start = i == 0 || ts >= e.changed_after;
            if before_next && after_start {
                at.push(e);
            }
        }
        if at.is_empty() {
            at.extend(self.epochs.first());
        }
        at
    }
}

/// The packet's facts as the chain saw them.
pub fn facts_of(ev: &Event, nf: &NfFacts) -> Facts {
    use crate::vocab::proto::{ETH_P_IP, ETH_P_IPV6};
    let p = &ev.pkt;
    let headers = p.source != crate::events::PacketSource::None;
    let family = match (p.l3_proto, nf.pf_hook) {
        (ETH_P_IP, _) | (_, Some((2, _))) => 4,
        (ETH_P_IPV6, _) | (_, Some((10, _))) => 6,
        _ => 0,
    };
    let proto = headers.then_some(p.l4_proto).filter(|_| p.saddr.is_some());
    let ports = matches!(proto, Some(6 | 17 | 132 | 136));
    let icmp = matches!(proto, Some(1 | 58));
    Facts {
        family,
        ethertype: headers.then_some(p.l3_proto),
        saddr: p.saddr,
        daddr: p.daddr,
        proto,
        sport: ports.then_some(p.sport),
        dport: ports.then_some(p.dport),
        icmp: icmp.then_some((p.icmp_type, p.icmp_code)),
        tcp_flags: (proto == Some(6)).then_some(p.tcp_flags),
        len: (headers && family != 0).then_some(p.len),
        input: nf.devices.as_ref().map(|d| d.input.clone()),
        output: nf.devices.as_ref().map(|d| d.output.clone()),
        mark: nf.skb.map(|s| s.mark),
        ct: nf.skb.map(|s| s.ct_state()),
    }
}

/// The (table, base chain) pairs the event's verdict may have come from.
fn base_chains<'r>(
    ruleset: &'r Ruleset,
    nf: &NfFacts,
    kind: TableKind,
) -> Vec<(&'r Table, String)> {
    let (pf, hook) = nf.pf_hook.unwrap_or((0, u8::MAX));
    let families: &[Family] = match pf {
        2 => &[Family::Ip, Family::Inet],
        10 => &[Family::Ip6, Family::Inet],
        7 => &[Family::Bridge],
        3 => &[Family::Arp],
        5 => &[Family::Netdev],
        _ => &[],
    };
    let family_ok = |t: &Table| families.contains(&t.family);
    if kind == TableKind::Nft {
        // nft_do_chain names its base chain: an iptables-nft table of that
        // name comes first, as iptables prints it.
        let (Some(table), Some(chain)) = (&nf.table, &nf.chain) else {
            return Vec::new();
        };
        let named = |fw: Firewall| -> Vec<(&Table, String)> {
            ruleset
                .tables
                .iter()
                .filter(|t| {
                    t.firewall == fw && &t.name == table && family_ok(t) && t.chain(chain).is_some()
                })
                .map(|t| (t, chain.clone()))
                .collect()
        };
        let ipt = named(Firewall::IptablesNft);
        if !ipt.is_empty() {
            return ipt;
        }
        return named(Firewall::Nft);
    }
    // ipt_do_table, ebt_do_table: the table (when the kernel's types
    // named it) and the hook's chain.
    let (firewall, chain) = match kind {
        TableKind::Ebtables => (Firewall::EbtablesLegacy, nfnames::ebtables_chain(hook)),
        _ => (Firewall::IptablesLegacy, nfnames::iptables_chain(hook)),
    };
    let Some(chain) = chain else {
        return Vec::new();
    };
    ruleset
        .tables
        .iter()
        .filter(|t| t.firewall == firewall && family_ok(t) && t.family != Family::Inet)
        .filter(|t| nf.table.as_ref().is_none_or(|n| *n == t.name))
        .filter(|t| t.chain(chain).is_some())
        .map(|t| (t, chain.to_string()))
        .collect()
}

/// Judges the drop against one epoch: every (table, chain) it may have
/// come from, joined as `verdict::attribute` joins branches.
fn judge(epoch: &Epoch, ev: &Event, nf: &NfFacts, kind: TableKind) -> NfRule {
    let bases = base_chains(&epoch.ruleset, nf, kind);
    if bases.is_empty() {
        let what = match (&nf.table, nf.chain_name()) {
            (Some(t), Some(c)) => format!("{t}/{c}"),
            (None, Some(c)) => format!("a table's {c} chain"),
            _ => "the table".to_string(),
        };
        let mut why = format!("{what} is not in the ruleset as read");
        if !epoch.problems.is_empty() {
            why.push_str(&format!(" ({})", epoch.problems.join("; ")));
        }
        return NfRule::Undecided {
            why,
            candidates: Vec::new(),
        };
    }
    let facts = facts_of(ev, nf);
    let answers: Vec<NfRule> = bases
        .iter()
        .map(|(t, c)| attribute(&epoch.ruleset, t, c, &facts))
        .collect();
    join(answers)
}

/// Several answers for one drop (tables on one hook, two epochs): a rule
/// only if exactly one answer names one and the others cannot have
/// dropped the packet.
fn join(answers: Vec<NfRule>) -> NfRule {
    if answers.len() == 1 {
        return answers.into_iter().next().expect("one");
    }
    let accepts = |a: &NfRule| matches!(a, NfRule::Undecided { candidates, .. } if candidates.is_empty() && a_accepts(a));
    let mut named: Vec<&NfRule> = answers
        .iter()
        .filter(|a| matches!(a, NfRule::Rule { .. }))
        .collect();
    named.dedup();
    let undecided = answers
        .iter()
        .filter(|a| !matches!(a, NfRule::Rule { .. }) && !accepts(a))
        .count();
    if named.len() == 1 && undecided == 0 {
        return named[0].clone();
    }
    if named.is_empty() && undecided == 0 {
        return answers.into_iter().next().expect("some");
    }
    let mut candidates = Vec::new();
    let mut whys = Vec::new();
    for a in &answers {
        match a {
            NfRule::Rule { rule, .. } => {
                if !candidates.contains(rule) {
                    candidates.push(rule.clone());
                }
            }
            NfRule::Undecided { why, candidates: c } => {
                if !accepts(a) && !whys.contains(why) {
                    whys.push(why.clone());
                }
                for r in c {
                    if !candidates.contains(r) {
                        candidates.push(r.clone());
                    }
                }
            }
        }
    }
    if whys.is_empty() {
        whys.push("more than one rule can have dropped it".into());
    }
    NfRule::Undecided {
        why: whys.join("; "),
        candidates,
    }
}

fn a_accepts(a: &NfRule) -> bool {
    matches!(a, NfRule::Undecided { why, .. } if why.starts_with(super::verdict::ACCEPTS))
}

impl Rulesets {
    /// Starts watching a namespace (first sight only: its rules are read
    /// then).
    pub fn watch(&mut self, netns: u64) {
        if self.watched.contains_key(&netns) || self.watched.len() >= NAMESPACES_WATCHED {
            return;
        }
        let w = Netns::open(netns).map(|netns| Watched {
            netns,
            epochs: Vec::new(),
            last_poll: 0,
            ebtables: Vec::new(),
        });
        let w = w.map(|mut w| {
            w.poll(monotonic_ns());
            w
        });
        self.watched.insert(netns, w.map_err(|e| e.to_string()));
    }

    /// Polls every watched namespace (the run loop's tick), so that a
    /// change is dated to within one tick.
    pub fn poll(&mut self) {
        let now = monotonic_ns();
        if now.saturating_sub(self.last_poll) < POLL_EVERY_NS {
            return;
        }
        self.last_poll = now;
        for w in self.watched.values_mut().flatten() {
            w.poll(now);
        }
    }

    /// The rule that decided a table function's NF_DROP.
    pub fn attribute(&mut self, ev: &Event, kind: TableKind) -> Option<NfRule> {
        if kind == TableKind::Nft && !ev.nf.as_ref().is_some_and(|nf| nf.nft) {
            // Its chain is a module type: before 5.11 no BTF relocates it.
            return Some(NfRule::Undecided {
                why: "this kernel's nft_do_chain events name no table or chain (no module BTF)"
                    .into(),
                candidates: Vec::new(),
            });
        }
        let nf = ev.nf.as_deref()?;
        // ebtables' broute table: its DROP routes the frame, no rule dropped it.
        if kind == TableKind::Ebtables && nf.pf_hook == Some((7, 5)) {
            return None;
        }
        if nf.table.is_none() && nf.pf_hook.is_none() {
            return Some(NfRule::Undecided {
                why: "the event names neither the table nor the hook".into(),
                candidates: Vec::new(),
            });
        }
        let netns = u64::from(ev.netns);
        self.watch(netns);
        let now = monotonic_ns();
        let w = match self.watched.get_mut(&netns)? {
            Ok(w) => w,
            Err(e) => {
                return Some(NfRule::Undecided {
                    why: format!("could not read the ruleset: {e}"),
                    candidates: Vec::new(),
                })
            }
        };
        // An ebtables table first seen here: read from now on. The epochs
        // so far lack it, so they start again (older drops are judged
        // against the first epoch).
        if kind == TableKind::Ebtables {
            let names = match &nf.table {
                Some(t) if w.ebtables.contains(t) => Vec::new(),
                Some(t) => vec![t.clone()],
                // The first time, then not per drop of a flood: at the
                // drops' poll rate.
                None if w.ebtables.is_empty()
                    || now.saturating_sub(w.last_poll) >= DROP_POLL_NS =>
                {
                    ebtables_modules()
                }
                None => Vec::new(),
            };
            let new: Vec<String> = names
                .into_iter()
                .filter(|n| !w.ebtables.contains(n))
                .collect();
            if !new.is_empty() {
                w.ebtables.extend(new);
                w.epochs.clear();
                w.poll(now);
            }
        }
        // A drop newer than the last poll asks again (a flood of them at
        // most once per DROP_POLL_NS: a change that close before a drop
        // can be missed).
        if ev.ts > w.last_poll && now.saturating_sub(w.last_poll) >= DROP_POLL_NS {
            w.poll(now);
        }
        let epochs = w.epochs_at(ev.ts);
        if epochs.is_empty() {
            return Some(NfRule::Undecided {
                why: "could not read the namespace's rulesets (their fingerprint did not answer)"
                    .into(),
                candidates: Vec::new(),
            });
        }
        let answers: Vec<NfRule> = epochs.iter().map(|e| judge(e, ev, nf, kind)).collect();
        let changed = answers.len() > 1;
        let answer = join(answers.clone());
        if changed {
            if let NfRule::Undecided { why, candidates } = answer {
                return Some(NfRule::Undecided {
                    why: format!("the ruleset changed at the time of the drop ({why})"),
                    candidates,
                });
            }
        }
        Some(answer)
    }
}
