//! Reads nftables' ruleset: `nft -j -a list ruleset` for the rules'
//! structure, and `nft -a list ruleset` for their text as `nft -a list
//! chain` prints it, joined by handle. Expressions the model does not
//! evaluate (xt compat matches, `iif` by index, verdict maps) are kept as
//! unsupported matches or unknown actions.

use super::model::{
    Action, Chain, Dir, Family, Item, Key, Match, Rule, Set, Table, Test, Values, Verdict,
};
use super::values::{parse_port_ranges, parse_proto};
use crate::events::nfrule::Firewall;
use crate::events::CtState;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// Why a dump could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nft's JSON output is not a ruleset: {0}")]
pub struct NftJsonError(String);

/// The rule texts of `nft -a list ruleset`, by (family, table, chain, handle).
pub fn rule_texts(text: &str) -> HashMap<(String, String, String, u64), String> {
    let mut out = HashMap::new();
    let mut table: Option<(String, String)> = None;
    let mut chain: Option<String> = None;
    let mut depth = 0usize;
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if depth == 0 {
            if let Some(rest) = line.strip_prefix("table ") {
                let mut w = rest.split_whitespace();
                if let (Some(f), Some(n)) = (w.next(), w.next()) {
                    table = Some((f.to_string(), n.to_string()));
                }
            }
        } else if depth == 1 {
            chain = line
                .strip_prefix("chain ")
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string);
            pending.clear();
        } else if let (2, Some(c), Some((f, t))) = (depth, &chain, &table) {
            if let Some((body, handle)) = line.rsplit_once("# handle ") {
                if let Ok(h) = handle.trim().parse::<u64>() {
                    pending.push_str(body.trim());
                    let text = std::mem::take(&mut pending);
                    if !text.is_empty() {
                        out.insert((f.clone(), t.clone(), c.clone(), h), text);
                    }
                }
            } else if !line.is_empty()
                && !line.contains("hook ")
                && !line.ends_with('{')
                && line != "}"
            {
                pending.push_str(line);
                pending.push(' ');
            }
        }
        depth += line.matches('{').count();
        depth = depth.saturating_sub(line.matches('}').count());
        if depth < 2 {
            pending.clear();
        }
    }
    out
}

/// Parses the JSON dump; `texts` gives each rule its printed form.
pub fn parse_json(
    json: &str,
    texts: &HashMap<(String, String, String, u64), String>,
) -> Result<Vec<Table>, NftJsonError> {
    let doc: Value = serde_json::from_str(json).map_err(|e| NftJsonError(e.to_string()))?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| NftJsonError("no `nftables` array".into()))?;
    let mut tables: Vec<Table> = Vec::new();
    let find = |tables: &mut Vec<Table>, family: &str, name: &str| -> Option<usize> {
        let f = Family::from_name(family)?;
        tables.iter().position(|t| t.family == f && t.name == name)
    };
    for item in items {
        let Some((kind, obj)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let Some(obj) = obj.as_object() else {
            continue;
        };
        let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
        match kind.as_str() {
            "table" => {
                if let Some(family) = Family::from_name(s("family")) {
                    tables.push(Table {
                        firewall: Firewall::Nft,
                        family,
                        name: s("name").to_string(),
                        chains: Vec::new(),
                        sets: HashMap::new(),
                    });
                }
            }
            "chain" => {
                if let Some(i) = find(&mut tables, s("family"), s("table")) {
                    let policy = obj.get("hook").map(|_| match s("policy") {
                        "drop" => Verdict::Drop,
                        _ => Verdict::Accept,
                    });
                    tables[i].chains.push(Chain {
                        name: s("name").to_string(),
                        policy,
                        rules: Vec::new(),
                    });
                }
            }
            "set" => {
                if let Some(i) = find(&mut tables, s("family"), s("table")) {
                    tables[i].sets.insert(s("name").to_string(), parse_set(obj));
                }
            }
            "rule" => {
                let Some(i) = find(&mut tables, s("family"), s("table")) else {
                    continue;
                };
                let handle = obj.get("handle").and_then(Value::as_u64);
                let key = (
                    s("family").to_string(),
                    s("table").to_string(),
                    s("chain").to_string(),
                    handle.unwrap_or(u64::MAX),
                );
                let text = texts.get(&key).cloned().unwrap_or_else(|| {
                    format!(
                        "(rule handle {})",
                        handle.map_or("?".into(), |h| h.to_string())
                    )
                });
                let exprs = obj
                    .get("expr")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let items = exprs.iter().flat_map(parse_expr).collect();
                if let Some(c) = tables[i].chains.iter_mut().find(|c| c.name == s("chain")) {
                    c.rules.push(Rule {
                        text,
                        handle,
                        items,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(tables)
}

fn parse_set(obj: &serde_json::Map<String, Value>) -> Set {
    let kind = obj.get("type").cloned().unwrap_or(Value::Null);
    let Some(kind) = kind.as_str() else {
        return Set {
            unsupported: Some(format!(
                "set `{}` keyed on a concatenation",
                obj.get("name").and_then(Value::as_str).unwrap_or_default()
            )),
            elements: Vec::new(),
        };
    };
    let mut set = Set::default();
    for e in obj
        .get("elem")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // An element with options (`timeout`, `counter`) is {"elem": {"val": ...}}.
        let e = e.get("elem").and_then(|x| x.get("val")).unwrap_or(e);
        match values_of(kind, e) {
            Some(v) => set.elements.push(vec![v]),
            None => {
                set.unsupported = Some(format!("set element `{e}` of type {kind}"));
                break;
            }
        }
    }
    set
}

/// One value, prefix or range of a field of this set type (or payload).
fn values_of(kind: &str, v: &Value) -> Option<Values> {
    let addr = kind.ends_with("_addr");
    if let Some(p) = v.get("prefix") {
        let a: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
        let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
        return Some(Values::Nets(vec![(a, len)]));
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        if addr {
            let a: IpAddr = r.first()?.as_str()?.parse().ok()?;
            let b: IpAddr = r.get(1)?.as_str()?.parse().ok()?;
            return Some(Values::AddrRanges(vec![(a, b)]));
        }
        let a = number(kind, r.first()?)?;
        let b = number(kind, r.get(1)?)?;
        return Some(Values::Ranges(vec![(a, b)]));
    }
    if addr {
        let a: IpAddr = v.as_str()?.parse().ok()?;
        let len = if a.is_ipv4() { 32 } else { 128 };
        return Some(Values::Nets(vec![(a, len)]));
    }
    let n = number(kind, v)?;
    Some(Values::Ranges(vec![(n, n)]))
}

/// A number, or a name nft prints for one (`ssh`, `tcp`, `echo-request`).
fn number(kind: &str, v: &Value) -> Option<u32> {
    if let Some(n) = v.as_u64() {
        return u32::try_from(n).ok();
    }
    let s = v.as_str()?;
    match kind {
        "inet_proto" => parse_proto(s),
        "inet_service" => parse_port_ranges(s)
            .and_then(|r| r.first().map(|x| x.0))
            .or_else(|| service_port(s)),
        "icmp_type" => icmp_type_number(s, false),
        "icmpv6_type" => icmp_type_number(s, true),
        _ => s.parse().ok(),
    }
}

/// Service names nft prints for well-known ports.
fn service_port(s: &str) -> Option<u32> {
    const SERVICES: &[(&str, u32)] = &[
        ("ftp", 21),
        ("ssh", 22),
        ("telnet", 23),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("pop3", 110),
        ("ntp", 123),
        ("imap", 143),
        ("snmp", 161),
        ("https", 443),
    ];
    SERVICES.iter().find(|(n, _)| *n == s).map(|(_, p)| *p)
}

fn icmp_type_number(s: &str, v6: bool) -> Option<u32> {
    let v4: &[(&str, u32)] = &[
        ("echo-reply", 0),
        ("destination-unreachable", 3),
        ("source-quench", 4),
        ("redirect", 5),
        ("echo-request", 8),
        ("router-advertisement", 9),
        ("router-solicitation", 10),
        ("time-exceeded", 11),
        ("parameter-problem", 12),
    ];
    let v6t: &[(&str, u32)] = &[
        ("destination-unreachable", 1),
        ("packet-too-big", 2),
        ("time-exceeded", 3),
        ("parameter-problem", 4),
        ("echo-request", 128),
        ("echo-reply", 129),
        ("nd-router-solicit", 133),
        ("nd-router-advert", 134),
        ("nd-neighbor-solicit", 135),
        ("nd-neighbor-advert", 136),
    ];
    let table = if v6 { v6t } else { v4 };
    table
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .or_else(|| s.parse().ok())
}

/// What a left-hand expression reads: the test to build, given the
/// right-hand values, and the set type its values are written in.
enum Field {
    Addr(Dir),
    Port(Dir, Option<u8>),
    Proto,
    InIface,
    OutIface,
    Mark(u32),
    CtState,
    TcpFlags(u8),
    Icmp(bool, bool),
    Length,
    Nfproto,
}

fn field_of(left: &Value) -> Result<Field, String> {
    if let Some(and) = left.get("&").and_then(Value::as_array) {
        let inner = and.first().ok_or("`&` without operands")?;
        let mask = and.get(1).ok_or("`&` without a mask")?;
        return match field_of(inner)? {
            Field::Mark(_) => Ok(Field::Mark(
                u32::try_from(mask.as_u64().ok_or("a mark mask that is not a number")?)
                    .map_err(|e| e.to_string())?,
            )),
            Field::TcpFlags(_) => Ok(Field::TcpFlags(
                tcp_flag_bits(mask).ok_or("unknown TCP flags")?,
            )),
            _ => Err(format!("a bitwise `&` on {inner}")),
        };
    }
    if let Some(p) = left.get("payload") {
        let proto = p
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let field = p.get("field").and_then(Value::as_str).unwrap_or_default();
        return match (proto, field) {
            ("ip" | "ip6", "saddr") => Ok(Field::Addr(Dir::Src)),
            ("ip" | "ip6", "daddr") => Ok(Field::Addr(Dir::Dst)),
            ("ip", "protocol") | ("ip6", "nexthdr") => Ok(Field::Proto),
            ("ip", "length") => Ok(Field::Length),
            ("tcp" | "udp" | "udplite" | "sctp" | "th", "sport" | "dport") => {
                let dir = if field == "sport" { Dir::Src } else { Dir::Dst };
                let l4 = match proto {
                    "th" => None,
                    p => parse_proto(p).map(|n| n as u8),
                };
                Ok(Field::Port(dir, l4))
            }
            ("tcp", "flags") => Ok(Field::TcpFlags(0xff)),
            ("icmp", "type") => Ok(Field::Icmp(false, false)),
            ("icmp", "code") => Ok(Field::Icmp(false, true)),
            ("icmpv6", "type") => Ok(Field::Icmp(true, false)),
            ("icmpv6", "code") => Ok(Field::Icmp(true, true)),
            _ => Err(format!("{proto} {field}")),
        };
    }
    if let Some(m) = left.get("meta") {
        let key = m.get("key").and_then(Value::as_str).unwrap_or_default();
        return match key {
            "l4proto" => Ok(Field::Proto),
            "iifname" => Ok(Field::InIface),
            "oifname" => Ok(Field::OutIface),
            "mark" => Ok(Field::Mark(u32::MAX)),
            "nfproto" => Ok(Field::Nfproto),
            "length" => Ok(Field::Length),
            k => Err(format!("meta {k}")),
        };
    }
    if let Some(c) = left.get("ct") {
        let key = c.get("key").and_then(Value::as_str).unwrap_or_default();
        return match key {
            "state" => Ok(Field::CtState),
            k => Err(format!("ct {k}")),
        };
    }
    Err(expr_words(left))
}

/// An expression as words (`fib daddr type`), for saying which could not
/// be evaluated.
fn expr_words(v: &Value) -> String {
    match v {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| match v {
                Value::Null => k.clone(),
                v if v.is_object() && o.len() == 1 => format!("{k} {}", expr_words(v)),
                v => {
                    let words = expr_words(v);
                    if o.len() == 1 {
                        format!("{k} {words}")
                    } else {
                        words
                    }
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(a) => a.iter().map(expr_words).collect::<Vec<_>>().join(","),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn tcp_flag_bits(v: &Value) -> Option<u8> {
    let one = |s: &str| crate::vocab::tcp::parse_tcp_flags(s).ok();
    match v {
        Value::String(s) => one(s),
        Value::Number(n) => u8::try_from(n.as_u64()?).ok(),
        Value::Array(a) => a
            .iter()
            .try_fold(0u8, |acc, x| Some(acc | tcp_flag_bits(x)?)),
        _ => None,
    }
}

/// The right-hand values as one list (anonymous sets and lists flattened).
fn right_values(kind: &str, right: &Value) -> Option<Vec<Values>> {
    if let Some(set) = right.get("set").and_then(Value::as_array) {
        return set.iter().map(|e| values_of(kind, e)).collect();
    }
    if let Some(list) = right.as_array() {
        return list.iter().map(|e| values_of(kind, e)).collect();
    }
    Some(vec![values_of(kind, right)?])
}

/// Joins values of one kind into one.
fn merge(list: Vec<Values>) -> Values {
    let mut nets = Vec::new();
    let mut addr_ranges = Vec::new();
    let mut ranges = Vec::new();
    for v in list {
        match v {
            Values::Nets(n) => nets.extend(n),
            Values::AddrRanges(r) => addr_ranges.extend(r),
            Values::Ranges(r) => ranges.extend(r),
        }
    }
    if !addr_ranges.is_empty() {
        addr_ranges.extend(nets.into_iter().filter_map(|(a, len)| {
            // A prefix as a range (only reached with mixed sets).
            let full = if a.is_ipv4() { 32 } else { 128 };
            (len == full).then_some((a, a))
        }));
        Values::AddrRanges(addr_ranges)
    } else if !nets.is_empty() {
        Values::Nets(nets)
    } else {
        Values::Ranges(ranges)
    }
}

/// One match expression as a test, with its negation.
fn match_test(m: &Value) -> Result<(Test, bool), String> {
    let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
    let left = m.get("left").ok_or("no left side")?;
    let right = m.get("right").ok_or("no right side")?;
    let field = field_of(left)?;
    let negate = op == "!=";
    if let Some(name) = right.as_str().and_then(|s| s.strip_prefix('@')) {
        let key = match field {
            Field::Addr(d) => Key::Addr(d),
            Field::Port(d, _) => Key::Port(d),
            Field::Proto => Key::Proto,
            Field::InIface => Key::InIface,
            Field::OutIface => Key::OutIface,
            Field::Mark(u32::MAX) => Key::Mark,
            _ => return Err(format!("a set lookup of {left}")),
        };
        return Ok((
            Test::SetLookup {
                set: name.to_string(),
                nft: true,
                keys: vec![key],
            },
            negate,
        ));
    }
    let ordered = |n: u32| -> Option<(u32, u32)> {
        match op {
            "<" => n.checked_sub(1).map(|m| (0, m)),
            "<=" => Some((0, n)),
            ">" => Some((n + 1, u32::MAX)),
            ">=" => Some((n, u32::MAX)),
            _ => Some((n, n)),
        }
    };
    let numeric = |kind: &str| -> Result<Values, String> {
        if matches!(op, "<" | ">" | "<=" | ">=") {
            let n = number(kind, right).ok_or_else(|| format!("value {right}"))?;
            return Ok(Values::Ranges(ordered(n).into_iter().collect()));
        }
        right_values(kind, right)
            .map(merge)
            .ok_or_else(|| format!("value {right}"))
    };
    let names = || -> Result<Vec<String>, String> {
        let list = match right.get("set").and_then(Value::as_array) {
            Some(s) => s.clone(),
            None => vec![right.clone()],
        };
        list.iter()
            .map(|v| {
                v.as_str()
                    .map(|s| s.replace('*', "+"))
                    .ok_or_else(|| format!("interface {v}"))
            })
            .collect()
    };
    let test = match field {
        Field::Addr(d) => Test::Addr(d, numeric("ipv4_addr")?),
        Field::Port(d, _) => Test::Port(d, numeric("inet_service")?),
        Field::Proto => Test::Proto(numeric("inet_proto")?),
        Field::Length => Test::Length(numeric("integer")?),
        Field::InIface => Test::InIface(names()?),
        Field::OutIface => Test::OutIface(names()?),
        Field::Mark(mask) => {
            let value = right
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| format!("mark {right}"))?;
            Test::Mark { value, mask }
        }
        Field::CtState => {
            let list = match right {
                Value::Array(a) => a.clone(),
                v => match v.get("set").and_then(Value::as_array) {
                    Some(s) => s.clone(),
                    None => vec![v.clone()],
                },
            };
            let states: Option<Vec<CtState>> = list
                .iter()
                .map(|v| v.as_str().and_then(CtState::from_name))
                .collect();
            Test::CtState(states.ok_or_else(|| format!("ct state {right}"))?)
        }
        Field::TcpFlags(mask) => {
            let bits = tcp_flag_bits(right).ok_or_else(|| format!("tcp flags {right}"))?;
            match (op, mask) {
                // `tcp flags syn,ack`: any of them.
                ("in", 0xff) => Test::TcpFlags {
                    mask: 0,
                    comp: bits,
                },
                _ => Test::TcpFlags { mask, comp: bits },
            }
        }
        Field::Icmp(v6, code) => {
            let kind = if v6 { "icmpv6_type" } else { "icmp_type" };
            let kind = if code { "integer" } else { kind };
            let vals = right_values(kind, right)
                .map(merge)
                .ok_or_else(|| format!("icmp {right}"))?;
            let Values::Ranges(r) = vals else {
                return Err(format!("icmp {right}"));
            };
            let mut types = Vec::new();
            for (a, b) in r {
                for t in a..=b.min(255) {
                    types.push(if code {
                        (u8::MAX, Some(t as u8))
                    } else {
                        (t as u8, None)
                    });
                }
            }
            Test::Icmp { v6, types }
        }
        Field::Nfproto => {
            let fam = match right.as_str() {
                Some("ipv4") => 4,
                Some("ipv6") => 6,
                _ => return Err(format!("meta nfproto {right}")),
            };
            Test::Family(fam)
        }
    };
    Ok((test, negate))
}

/// One expression of a rule: a match, or a statement.
fn parse_expr(e: &Value) -> Vec<Item> {
    let Some((kind, body)) = e.as_object().and_then(|o| o.iter().next()) else {
        return vec![Item::Action(Action::Unknown(e.to_string()))];
    };
    let text = || nft_text(kind, body);
    let unsupported = |why: String| {
        Item::Match(Match {
            negate: false,
            test: Test::Unsupported(why),
            text: text(),
        })
    };
    let item = match kind.as_str() {
        "match" => {
            // `tcp dport 22` also requires TCP: a separate test, so that a
            // `!=` applies to the port only.
            let l4 = body
                .get("left")
                .and_then(|l| field_of(l).ok())
                .and_then(|f| match f {
                    Field::Port(_, Some(p)) => Some(p),
                    _ => None,
                });
            match match_test(body) {
                Ok((test, negate)) => {
                    let mut items = Vec::new();
                    if let Some(p) = l4 {
                        let p = u32::from(p);
                        items.push(Item::Match(Match {
                            negate: false,
                            test: Test::Proto(Values::Ranges(vec![(p, p)])),
                            text: text(),
                        }));
                    }
                    items.push(Item::Match(Match {
                        negate,
                        test,
                        text: text(),
                    }));
                    return items;
                }
                Err(why) => unsupported(why),
            }
        }
        "accept" => Item::Action(Action::Verdict(Verdict::Accept)),
        "drop" => Item::Action(Action::Verdict(Verdict::Drop)),
        "reject" => Item::Action(Action::Verdict(Verdict::Reject)),
        "queue" => Item::Action(Action::Verdict(Verdict::Queue)),
        "return" => Item::Action(Action::Return),
        "continue" | "counter" | "log" | "notrack" | "set" | "ct helper" | "ct timeout" => {
            Item::Action(Action::Nothing)
        }
        "jump" | "goto" => {
            let target = body
                .get("target")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Item::Action(if kind == "jump" {
                Action::Jump(target)
            } else {
                Action::Goto(target)
            })
        }
        "limit" | "quota" => Item::Match(Match {
            negate: false,
            test: Test::Rate,
            text: text(),
        }),
        "mangle" => {
            let is_mark = body
                .get("key")
                .and_then(|k| k.get("meta"))
                .and_then(|m| m.get("key"))
                .and_then(Value::as_str)
                == Some("mark");
            match (is_mark, body.get("value").and_then(Value::as_u64)) {
                (true, Some(v)) => Item::Action(Action::SetMark {
                    value: v as u32,
                    mask: u32::MAX,
                }),
                (true, None) => Item::Action(Action::ForgetMark),
                // Header rewrites later matches might read: not followed.
                _ => Item::Action(Action::Unknown(text())),
            }
        }
        "xt" => {
            let name = body.get("name").and_then(Value::as_str).unwrap_or("?");
            match body.get("type").and_then(Value::as_str) {
                Some("match") => unsupported(format!("iptables match `{name}` in nft")),
                _ => Item::Action(super::iptables::target_action(name, &[], false, &[])),
            }
        }
        _ => Item::Action(Action::Unknown(text())),
    };
    vec![item]
}

/// A short text for an expression, for "could not evaluate" notes.
fn nft_text(kind: &str, body: &Value) -> String {
    format!("{kind} {body}")
}
