//! Reads legacy ebtables' listing (`ebtables-legacy -t TABLE -L`) into the
//! model. `ebtables-legacy-save` is not used: it lists through whatever
//! `ebtables` points at (ebtables-nft on current distributions) and asks
//! for every table whose module is loaded, which creates that table in
//! the namespace. Each rule's text is written as `ebtables-save` would:
//! `-A CHAIN` and the listed line. Options of matches the model does not
//! evaluate (MAC addresses, VLAN, `--among`) are kept whole as an
//! unsupported match.

use super::iptables::{option_args, parse_value_mask, split_args};
use super::model::{Action, Chain, Dir, Family, Item, Match, Rule, Table, Test, Values, Verdict};
use super::values::{parse_nets, parse_port_ranges, parse_proto};
use crate::events::nfrule::Firewall;
use std::collections::HashMap;

/// Parses one table's listing.
pub fn parse_list(text: &str) -> Option<Table> {
    // User chains are listed after the base chains that jump to them.
    let names: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Bridge chain:"))
        .map(|d| d.split(',').next().unwrap_or_default().trim().to_string())
        .collect();
    let mut table: Option<Table> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("Bridge table:") {
            table = Some(Table {
                firewall: Firewall::EbtablesLegacy,
                family: Family::Bridge,
                name: name.trim().to_string(),
                chains: Vec::new(),
                sets: HashMap::new(),
            });
        } else if let (Some(decl), Some(t)) = (line.strip_prefix("Bridge chain:"), table.as_mut()) {
            // `INPUT, entries: 0, policy: ACCEPT`
            let name = decl
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            let policy = decl
                .rsplit("policy:")
                .next()
                .and_then(|w| Verdict::from_policy(w.trim()));
            t.chains.push(Chain {
                name,
                policy,
                rules: Vec::new(),
            });
        } else if let Some(t) = table.as_mut().filter(|_| !line.is_empty()) {
            if let Some(c) = t.chains.last_mut() {
                let text = format!("-A {} {line}", c.name);
                let rule = parse_rule(&text, &split_args(line), &names);
                c.rules.push(rule);
            }
        }
    }
    table
}

/// `IPv4`, `0x0800`, as /etc/ethertypes names them.
fn ethertype(s: &str) -> Option<u16> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u16::from_str_radix(h, 16).ok();
    }
    let named = [
        ("IPv4", 0x0800),
        ("ARP", 0x0806),
        ("RARP", 0x8035),
        ("IPv6", 0x86dd),
        ("802_1Q", 0x8100),
        ("PPPoE", 0x8864),
        ("PPP_DISC", 0x8863),
        ("MPLS_multi", 0x8848),
        ("MPLS_unicast", 0x8847),
    ];
    named
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, t)| *t)
}

fn parse_rule(text: &str, args: &[String], chains: &[String]) -> Rule {
    let mut items = Vec::new();
    let mut negate = false;
    let mut limited = false;
    let mut i = 0;
    while i < args.len() {
        let opt = args[i].as_str();
        if opt == "!" {
            negate = true;
            i += 1;
            continue;
        }
        // Legacy ebtables lists an inversion after the option: `-p ! IPv4`.
        let inverted = args.get(i + 1).is_some_and(|v| v == "!");
        let mut neg = negate != inverted;
        let from = i + 1 + usize::from(inverted);
        let n = option_args(args, from);
        let vals = &args[from..from + n];
        let shown = args[i..from + n].join(" ");
        let shown = if negate { format!("! {shown}") } else { shown };
        let first = vals.first().map(String::as_str).unwrap_or_default();
        let bad = || Test::Unsupported(shown.clone());
        let test = match opt {
            "-p" | "--protocol" | "--proto" => match first {
                "LENGTH" => Some(bad()),
                p => Some(ethertype(p).map_or_else(bad, Test::EtherType)),
            },
            "-i" | "--in-interface" | "--in-if" => Some(Test::InIface(vec![first.to_string()])),
            "-o" | "--out-interface" | "--out-if" => Some(Test::OutIface(vec![first.to_string()])),
            "--ip-src" | "--ip-source" | "--ip-dst" | "--ip-destination" | "--ip6-src"
            | "--ip6-source" | "--ip6-dst" | "--ip6-destination" => {
                let dir = if opt.contains("src") || opt.contains("source") {
                    Dir::Src
                } else {
                    Dir::Dst
                };
                Some(parse_nets(first).map_or_else(bad, |nets| Test::Addr(dir, Values::Nets(nets))))
            }
            "--ip-proto" | "--ip-protocol" | "--ip6-proto" | "--ip6-protocol" => Some(
                parse_proto(first).map_or_else(bad, |p| Test::Proto(Values::Ranges(vec![(p, p)]))),
            ),
            "--ip-sport" | "--ip-source-port" | "--ip6-sport" | "--ip6-source-port" => Some(
                parse_port_ranges(first)
                    .map_or_else(bad, |r| Test::Port(Dir::Src, Values::Ranges(r))),
            ),
            "--ip-dport" | "--ip-destination-port" | "--ip6-dport" | "--ip6-destination-port" => {
                Some(
                    parse_port_ranges(first)
                        .map_or_else(bad, |r| Test::Port(Dir::Dst, Values::Ranges(r))),
                )
            }
            // `--mark /MASK`: some bit of MASK is set, the inverse of
            // `(mark & MASK) == 0`.
            "--mark" => match first.strip_prefix('/').map(parse_value_mask) {
                Some(Some((mask, _))) => {
                    neg = !neg;
                    Some(Test::Mark { value: 0, mask })
                }
                Some(None) => Some(bad()),
                None => Some(
                    parse_value_mask(first)
                        .map_or_else(bad, |(value, mask)| Test::Mark { value, mask }),
                ),
            },
            "--limit" | "--limit-burst" => {
                let first_of_module = !limited;
                limited = true;
                first_of_module.then_some(Test::Rate)
            }
            // Watchers log and change nothing the matches read.
            "--log" | "--log-level" | "--log-prefix" | "--log-ip" | "--log-ip6" | "--log-arp" => {
                None
            }
            o if o.starts_with("--nflog") || o.starts_with("--ulog") => None,
            "-c" | "--set-counters" | "--Lc" | "--Ln" => None,
            "-j" | "--jump" => {
                let target = first.to_string();
                let rest = &args[(from + 1).min(args.len())..];
                items.extend(
                    target_actions(&target, rest, chains)
                        .into_iter()
                        .map(Item::Action),
                );
                break;
            }
            _ => Some(bad()),
        };
        if let Some(test) = test {
            items.push(Item::Match(Match {
                negate: neg,
                test,
                text: shown.clone(),
            }));
        }
        negate = false;
        i = from + n;
    }
    Rule {
        text: text.to_string(),
        handle: None,
        items,
    }
}

/// A standard verdict, as a rule's target or an extension's `--X-target`.
fn standard(target: &str, chains: &[String]) -> Option<Action> {
    Some(match target {
        "ACCEPT" => Action::Verdict(Verdict::Accept),
        "DROP" => Action::Verdict(Verdict::Drop),
        "CONTINUE" => Action::Nothing,
        "RETURN" => Action::Return,
        c if chains.iter().any(|x| x == c) => Action::Jump(c.to_string()),
        _ => return None,
    })
}

/// What `-j TARGET OPTIONS` does: ebtables' extension targets change the
/// frame and then give a standard verdict (`--mark-target`, ACCEPT by
/// default).
fn target_actions(target: &str, opts: &[String], chains: &[String]) -> Vec<Action> {
    if let Some(a) = standard(target, chains) {
        return vec![a];
    }
    let opt = |name: &str| {
        opts.iter()
            .position(|o| o == name)
            .and_then(|i| opts.get(i + 1))
            .map(String::as_str)
    };
    let then = |name: &str, default: &str| standard(opt(name).unwrap_or(default), chains);
    let (change, verdict) = match target {
        "mark" => {
            let num = |s: &str| parse_value_mask(s).map(|(v, _)| v);
            // `mark = (mark & !mask) ^ value` for each of the four.
            let change = if let Some(v) = opt("--mark-set").and_then(num) {
                Action::SetMark {
                    value: v,
                    mask: u32::MAX,
                }
            } else if let Some(v) = opt("--mark-or").and_then(num) {
                Action::SetMark { value: v, mask: v }
            } else if let Some(v) = opt("--mark-and").and_then(num) {
                Action::SetMark { value: 0, mask: !v }
            } else if let Some(v) = opt("--mark-xor").and_then(num) {
                Action::SetMark { value: v, mask: 0 }
            } else {
                Action::ForgetMark
            };
            (change, then("--mark-target", "ACCEPT"))
        }
        // They rewrite MAC addresses, which no modelled match reads.
        "snat" => (Action::Nothing, then("--snat-target", "ACCEPT")),
        "dnat" => (Action::Nothing, then("--dnat-target", "ACCEPT")),
        "redirect" => (Action::Nothing, then("--redirect-target", "ACCEPT")),
        "arpreply" => (Action::Nothing, then("--arpreply-target", "DROP")),
        other => return vec![Action::Unknown(format!("-j {other}"))],
    };
    match verdict {
        Some(v) => vec![change, v],
        None => vec![change, Action::Unknown(format!("-j {target}"))],
    }
}
