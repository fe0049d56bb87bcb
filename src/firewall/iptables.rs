//! Reads `iptables-save` output (legacy and nft variants print the same
//! syntax) and `ipset save` into the model. Each `-A` line becomes a rule
//! whose text is the line itself; options of matches the model does not
//! evaluate are kept whole as an unsupported match.

use super::model::{
    Action, Chain, Dir, Family, Item, Key, Match, Rule, Set, Table, Test, Values, Verdict,
};
use super::values::{parse_nets, parse_port_ranges, parse_proto};
use crate::events::nfrule::Firewall;
use crate::events::CtState;
use std::collections::HashMap;
use std::net::IpAddr;

/// Splits a line as iptables-save quotes it: double quotes around
/// arguments with spaces, `\"` and `\\` inside them.
pub fn split_args(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Parses one `iptables-save` (family Ip) or `ip6tables-save` (Ip6) dump.
pub fn parse_save(text: &str, firewall: Firewall, family: Family) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut table: Option<Table> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix('*') {
            table = Some(Table {
                firewall,
                family,
                name: name.trim().to_string(),
                chains: Vec::new(),
                sets: HashMap::new(),
            });
        } else if line == "COMMIT" {
            tables.extend(table.take());
        } else if let (Some(decl), Some(t)) = (line.strip_prefix(':'), table.as_mut()) {
            let mut words = decl.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            let policy = words.next().and_then(Verdict::from_policy);
            t.chains.push(Chain {
                name,
                policy,
                rules: Vec::new(),
            });
        } else if let (Some(_), Some(t)) = (line.strip_prefix("-A "), table.as_mut()) {
            let args = split_args(line);
            let Some(chain) = args.get(1).cloned() else {
                continue;
            };
            let chains: Vec<String> = t.chains.iter().map(|c| c.name.clone()).collect();
            let rule = parse_rule(line, &args[2..], family, &chains);
            if let Some(c) = t.chains.iter_mut().find(|c| c.name == chain) {
                c.rules.push(rule);
            }
        }
    }
    tables
}

/// Options of the matches the model evaluates, and how many arguments
/// each takes; any other option makes its match unsupported.
fn known_option(module: &str, opt: &str) -> bool {
    matches!(
        (module, opt),
        (
            "tcp" | "udp" | "sctp" | "udplite",
            "--sport" | "--source-port" | "--dport" | "--destination-port"
        ) | ("tcp", "--tcp-flags" | "--syn")
            | (
                "multiport",
                "--sports" | "--source-ports" | "--dports" | "--destination-ports" | "--ports"
            )
            | ("icmp", "--icmp-type")
            | ("icmp6", "--icmpv6-type")
            | ("conntrack", "--ctstate")
            | ("state", "--state")
            | ("mark", "--mark")
            | ("set", "--match-set")
            | ("comment", "--comment")
            | ("iprange", "--src-range" | "--dst-range")
            | ("length", "--length")
    )
}

/// The arguments of an option, up to the next option (`-x`, `--x`, `!`).
pub(super) fn option_args(args: &[String], from: usize) -> usize {
    let mut n = 0;
    while let Some(a) = args.get(from + n) {
        if a == "!"
            || (a.starts_with('-')
                && a.len() > 1
                && !a[1..].starts_with(|c: char| c.is_ascii_digit()))
        {
            break;
        }
        n += 1;
    }
    n
}

fn parse_rule(line: &str, args: &[String], family: Family, chains: &[String]) -> Rule {
    let mut items = Vec::new();
    let mut negate = false;
    let mut module = String::new();
    let mut i = 0;
    while i < args.len() {
        let opt = args[i].as_str();
        let n = option_args(args, i + 1);
        let vals = &args[i + 1..i + 1 + n];
        let text = {
            let mut t = if negate {
                "! ".to_string()
            } else {
                String::new()
            };
            t.push_str(&args[i..i + 1 + n].join(" "));
            if !module.is_empty() && opt.starts_with("--") && !matches!(opt, "--jump" | "--goto") {
                t = format!("-m {module} {t}");
            }
            t
        };
        let mut push = |test: Test, negate: bool| {
            items.push(Item::Match(Match {
                negate,
                test,
                text: text.clone(),
            }))
        };
        match opt {
            "!" => {
                negate = true;
                i += 1;
                continue;
            }
            "-s" | "--source" | "-d" | "--destination" => {
                let dir = if opt.starts_with("-s") || opt == "--source" {
                    Dir::Src
                } else {
                    Dir::Dst
                };
                match vals.first().and_then(|v| parse_nets(v)) {
                    Some(nets) => push(Test::Addr(dir, Values::Nets(nets)), negate),
                    None => push(
                        Test::Unsupported(format!("address `{}`", vals.join(" "))),
                        negate,
                    ),
                }
            }
            "-p" | "--protocol" => match vals.first().map(|v| v.as_str()) {
                Some("all") | Some("0") => push(Test::Always, negate),
                Some(p) => match parse_proto(p) {
                    Some(num) => push(Test::Proto(Values::Ranges(vec![(num, num)])), negate),
                    None => push(Test::Unsupported(format!("protocol `{p}`")), negate),
                },
                None => {}
            },
            "-i" | "--in-interface" => push(Test::InIface(vals.to_vec()), negate),
            "-o" | "--out-interface" => push(Test::OutIface(vals.to_vec()), negate),
            "-f" | "--fragment" => push(Test::Unsupported("fragments (-f)".into()), negate),
            "-m" | "--match" => {
                module = vals.first().cloned().unwrap_or_default();
                if module == "limit" || module == "hashlimit" {
                    push(Test::Rate, false);
                }
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                let target = vals.first().cloned().unwrap_or_default();
                let rest = &args[(i + 2).min(args.len())..];
                let goto = opt == "-g" || opt == "--goto";
                items.push(Item::Action(target_action(&target, rest, goto, chains)));
                break;
            }
            "-c" | "--set-counters" => {}
            o if o.starts_with("--") => {
                if module == "limit" || module == "hashlimit" {
                    // The whole module is one `Rate` match, pushed at `-m`.
                } else if !known_option(&module, o) {
                    push(Test::Unsupported(text.clone()), negate);
                } else {
                    push(module_test(&module, o, vals, family), negate);
                }
            }
            _ => push(Test::Unsupported(text.clone()), negate),
        }
        negate = false;
        i += 1 + n;
    }
    Rule {
        text: line.to_string(),
        handle: None,
        items,
    }
}

/// The test of an option `known_option` accepts.
fn module_test(module: &str, opt: &str, vals: &[String], family: Family) -> Test {
    let first = vals.first().map(|s| s.as_str()).unwrap_or_default();
    let bad = || Test::Unsupported(format!("-m {module} {opt} {}", vals.join(" ")));
    match (module, opt) {
        (_, "--sport" | "--source-port" | "--sports" | "--source-ports") => {
            parse_port_ranges(first).map_or_else(bad, |r| Test::Port(Dir::Src, Values::Ranges(r)))
        }
        (_, "--dport" | "--destination-port" | "--dports" | "--destination-ports") => {
            parse_port_ranges(first).map_or_else(bad, |r| Test::Port(Dir::Dst, Values::Ranges(r)))
        }
        (_, "--ports") => {
            parse_port_ranges(first).map_or_else(bad, |r| Test::AnyPort(Values::Ranges(r)))
        }
        (_, "--syn") => Test::TcpFlags {
            mask: 0x17,
            comp: 0x02,
        },
        (_, "--tcp-flags") => {
            let flags = |s: &str| -> Option<u8> {
                if s == "ALL" {
                    return Some(0x3f);
                }
                if s == "NONE" {
                    return Some(0);
                }
                crate::vocab::tcp::parse_tcp_flags(&s.to_ascii_lowercase()).ok()
            };
            match (
                vals.first().and_then(|m| flags(m)),
                vals.get(1).and_then(|c| flags(c)),
            ) {
                (Some(mask), Some(comp)) => Test::TcpFlags { mask, comp },
                _ => bad(),
            }
        }
        (_, "--icmp-type" | "--icmpv6-type") => {
            let v6 = family == Family::Ip6;
            match parse_icmp_type(first, v6) {
                Some(t) => Test::Icmp { v6, types: vec![t] },
                None if first == "any" => {
                    Test::Proto(Values::Ranges(vec![if v6 { (58, 58) } else { (1, 1) }]))
                }
                None => bad(),
            }
        }
        (_, "--ctstate" | "--state") => {
            let states: Option<Vec<CtState>> = first.split(',').map(CtState::from_name).collect();
            match states {
                Some(s) => Test::CtState(s),
                // SNAT and DNAT read the entry's status: not modelled.
                None => bad(),
            }
        }
        (_, "--mark") => {
            parse_value_mask(first).map_or_else(bad, |(value, mask)| Test::Mark { value, mask })
        }
        (_, "--match-set") => {
            let keys: Option<Vec<Key>> = vals
                .get(1)
                .map(|d| {
                    d.split(',')
                        .enumerate()
                        .map(|(i, dir)| {
                            let dir = match dir {
                                "src" => Dir::Src,
                                "dst" => Dir::Dst,
                                _ => return None,
                            };
                            // ipset's dimensions: an address first, then a port.
                            Some(if i == 0 {
                                Key::Addr(dir)
                            } else {
                                Key::Port(dir)
                            })
                        })
                        .collect()
                })
                .unwrap_or(None);
            match keys {
                Some(keys) if vals.len() == 2 => Test::SetLookup {
                    set: first.to_string(),
                    nft: false,
                    keys,
                },
                _ => bad(),
            }
        }
        (_, "--comment") => Test::Always,
        (_, "--src-range" | "--dst-range") => {
            let dir = if opt == "--src-range" {
                Dir::Src
            } else {
                Dir::Dst
            };
            let range = first
                .split_once('-')
                .and_then(|(a, b)| Some((a.parse::<IpAddr>().ok()?, b.parse::<IpAddr>().ok()?)));
            range.map_or_else(bad, |r| Test::Addr(dir, Values::AddrRanges(vec![r])))
        }
        (_, "--length") => {
            parse_port_ranges(first).map_or_else(bad, |r| Test::Length(Values::Ranges(r)))
        }
        _ => bad(),
    }
}

/// `8`, `8/0`, or a name iptables accepts, as (type, code).
fn parse_icmp_type(s: &str, v6: bool) -> Option<(u8, Option<u8>)> {
    if let Some((t, c)) = s.split_once('/') {
        return Some((t.parse().ok()?, Some(c.parse().ok()?)));
    }
    if let Ok(t) = s.parse() {
        return Some((t, None));
    }
    let named: &[(&str, u8, Option<u8>)] = if v6 {
        &[
            ("echo-request", 128, None),
            ("echo-reply", 129, None),
            ("destination-unreachable", 1, None),
            ("packet-too-big", 2, None),
            ("time-exceeded", 3, None),
            ("neighbour-solicitation", 135, None),
            ("neighbour-advertisement", 136, None),
        ]
    } else {
        &[
            ("echo-request", 8, None),
            ("echo-reply", 0, None),
            ("destination-unreachable", 3, None),
            ("network-unreachable", 3, Some(0)),
            ("host-unreachable", 3, Some(1)),
            ("protocol-unreachable", 3, Some(2)),
            ("port-unreachable", 3, Some(3)),
            ("time-exceeded", 11, None),
            ("redirect", 5, None),
        ]
    };
    named
        .iter()
        .find(|(n, _, _)| *n == s)
        .map(|(_, t, c)| (*t, *c))
}

/// `0x1`, `0x1/0xff`, `5`.
pub fn parse_value_mask(s: &str) -> Option<(u32, u32)> {
    let num = |s: &str| match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    };
    match s.split_once('/') {
        Some((v, m)) => Some((num(v)?, num(m)?)),
        None => Some((num(s)?, u32::MAX)),
    }
}

/// What `-j TARGET OPTIONS` (or `-g CHAIN`) does to the walk.
pub fn target_action(target: &str, opts: &[String], goto: bool, chains: &[String]) -> Action {
    if chains.iter().any(|c| c == target) {
        return if goto {
            Action::Goto(target.to_string())
        } else {
            Action::Jump(target.to_string())
        };
    }
    let opt = |name: &str| {
        opts.iter()
            .position(|o| o == name)
            .and_then(|i| opts.get(i + 1))
    };
    match target {
        "ACCEPT" => Action::Verdict(Verdict::Accept),
        "DROP" => Action::Verdict(Verdict::Drop),
        "REJECT" => Action::Verdict(Verdict::Reject),
        "RETURN" => Action::Return,
        "QUEUE" => Action::Verdict(Verdict::Queue),
        // With a bypass or a fanout the queue's verdict is still user space's.
        "NFQUEUE" => Action::Verdict(Verdict::Queue),
        "MARK" => match opt("--set-xmark").and_then(|v| parse_value_mask(v)) {
            Some((value, mask)) => Action::SetMark { value, mask },
            None => Action::ForgetMark,
        },
        "CONNMARK" if opts.iter().any(|o| o == "--restore-mark") => Action::ForgetMark,
        "LOG" | "NFLOG" | "ULOG" | "TRACE" | "AUDIT" | "CONNMARK" | "CLASSIFY" | "DSCP" | "TOS"
        | "TTL" | "HL" | "TCPMSS" | "ECN" | "NOTRACK" | "CT" | "SET" | "CHECKSUM" | "IDLETIMER"
        | "LED" | "SECMARK" | "CONNSECMARK" => Action::Nothing,
        other => Action::Unknown(format!("-j {other}")),
    }
}

/// Parses `ipset save`: `create NAME TYPE ...` and `add NAME ENTRY` lines.
pub fn parse_ipset_save(text: &str) -> HashMap<String, Set> {
    let mut sets: HashMap<String, Set> = HashMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["create", name, kind, ..] => {
                let supported = matches!(
                    *kind,
                    "hash:ip" | "hash:net" | "hash:ip,port" | "hash:net,port"
                );
                sets.insert(
                    name.to_string(),
                    Set {
                        unsupported: (!supported).then(|| format!("ipset `{name}` of type {kind}")),
                        elements: Vec::new(),
                    },
                );
            }
            ["add", name, entry, ..] => {
                let Some(set) = sets.get_mut(*name) else {
                    continue;
                };
                if set.unsupported.is_some() {
                    continue;
                }
                match parse_ipset_entry(entry) {
                    Some(e) => set.elements.push(e),
                    None => set.unsupported = Some(format!("ipset `{name}` entry `{entry}`")),
                }
            }
            _ => {}
        }
    }
    sets
}

/// `10.0.0.1`, `10.0.0.0/24`, `10.0.0.1,tcp:80`, `10.0.0.0/24,udp:53`.
fn parse_ipset_entry(entry: &str) -> Option<Vec<Values>> {
    let (addr, port) = match entry.split_once(',') {
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    let mut dims = vec![Values::Nets(parse_nets(addr)?)];
    if let Some(p) = port {
        let (proto, port) = p.split_once(':').unwrap_or(("tcp", p));
        let proto = parse_proto(proto)?;
        let ranges = parse_port_ranges(&port.replace('-', ":"))?;
        // A port dimension matches only packets of its protocol: kept as
        // the protocol in the high bits of the value (see `verdict`).
        let keyed = ranges
            .into_iter()
            .map(|(a, b)| ((proto << 16) | a, (proto << 16) | b))
            .collect();
        dims.push(Values::Ranges(keyed));
    }
    Some(dims)
}
