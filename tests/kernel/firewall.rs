//! Naming the firewall rule of a drop, on real rulesets. In the VMs (the
//! netfilter probes need kprobes), one `--diag --diag-keep` run per
//! firewall — iptables-nft, iptables-legacy, native nft — sees six drops
//! in a namespace whose INPUT chain the test wrote: a DROP in a
//! user-defined chain reached through a jump, a REJECT, a conntrack-state
//! match, a set lookup, an unsupported match that alone can drop, and two
//! unsupported matches that leave two candidates; then the rule is
//! replaced while tracing and a seventh drop names the new one. Each
//! finding is checked against the rule text the test wrote (before 5.11,
//! where nft's types have no BTF, the nft findings say that no table or
//! chain was named). On any kernel
//! (root only), the ruleset reader finds a namespace's rules, reads them
//! with the tools inside it, and notices a change.

use crate::runner::{require, require_root, start, Cap, Running};
use crate::scenario::{send_udp, Bridge, Netns, TwoHosts};
use nettrace::events::nfrule::NfRule;
use nettrace::events::{HookDevices, NfSkb};
use nettrace::firewall::{Rulesets, TableKind};
use std::time::Duration;

/// One firewall's way of writing the test's ruleset.
struct Flavour {
    name: &'static str,
    /// Between two hosts on a bridge, the rules in the bridge's namespace
    /// (else in the receiver's).
    bridged: bool,
    /// How the finding's message begins.
    says: &'static str,
    /// Writes the INPUT (bridged: FORWARD) chain of `ns`, dropping what
    /// comes from `peer`.
    setup: fn(&Netns, &str),
    /// Replaces the rule of the jumped-to chain with one that says "second".
    change: fn(&Netns),
    /// What each drop's finding must contain, by destination port.
    expect: &'static [(u16, &'static [&'static str])],
    /// The finding after the change.
    changed: &'static str,
}

fn iptables_setup(iptables: &'static str) -> impl Fn(&Netns, &str) {
    move |ns: &Netns, peer: &str| {
        ns.exec(&["ipset", "create", "nt_bad", "hash:ip"]);
        ns.exec(&["ipset", "add", "nt_bad", peer]);
        let rules: &[&str] = &[
            "-N NT_BLOCK",
            "-A NT_BLOCK -p udp --dport 9000 -j DROP",
            "-A NT_BLOCK -j RETURN",
            "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A INPUT -p udp --dport 9001 -j REJECT",
            "-A INPUT -s PEER -j NT_BLOCK",
            "-A INPUT -m conntrack --ctstate NEW -p udp --dport 9002 -j DROP",
            "-A INPUT -m set --match-set nt_bad src -p udp --dport 9003 -j DROP",
            "-A INPUT -m addrtype --dst-type LOCAL -p udp --dport 9004 -j DROP",
            "-A INPUT -m addrtype --dst-type LOCAL -p udp --dport 9005 -j DROP",
            "-A INPUT -m pkttype --pkt-type unicast -p udp --dport 9005 -j DROP",
        ];
        for r in rules {
            let r = r.replace("PEER", peer);
            let mut args = vec![iptables];
            args.extend(r.split(' '));
            ns.exec(&args);
        }
    }
}

fn iptables_change(iptables: &'static str) -> impl Fn(&Netns) {
    move |ns: &Netns| {
        ns.exec(&[
            iptables,
            "-R",
            "NT_BLOCK",
            "1",
            "-p",
            "udp",
            "--dport",
            "9006",
            "-m",
            "comment",
            "--comment",
            "second",
            "-j",
            "DROP",
        ]);
    }
}

const IPTABLES_EXPECT: &[(u16, &[&str])] = &[
    (
        9000,
        &[
            "`-A NT_BLOCK -p udp -m udp --dport 9000 -j DROP`",
            "filter/NT_BLOCK rule 1, jumped from INPUT rule 3",
        ],
    ),
    (
        9001,
        &[
            "`-A INPUT -p udp -m udp --dport 9001 -j REJECT --reject-with icmp-port-unreachable`",
            "filter/INPUT rule 2",
        ],
    ),
    (
        9002,
        &[
            "`-A INPUT -p udp -m conntrack --ctstate NEW -m udp --dport 9002 -j DROP`",
            "filter/INPUT rule 4",
        ],
    ),
    (
        9003,
        &[
            "`-A INPUT -p udp -m set --match-set nt_bad src -m udp --dport 9003 -j DROP`",
            "filter/INPUT rule 5",
        ],
    ),
    (
        9004,
        &[
            "`-A INPUT -p udp -m addrtype --dst-type LOCAL -m udp --dport 9004 -j DROP`",
            "filter/INPUT rule 6",
            "not evaluated: -m addrtype --dst-type LOCAL",
        ],
    ),
    (
        9005,
        &[
            "rule not named: could not evaluate",
            "-m addrtype --dst-type LOCAL",
            "-m pkttype --pkt-type unicast",
            "filter/INPUT rule 7)",
            "filter/INPUT rule 8)",
        ],
    ),
];

const IPTABLES_SAYS: &str = "packet is dropped by iptables/iptables-nft: ";

const IPTABLES_CHANGED: &str =
    "`-A NT_BLOCK -p udp -m udp --dport 9006 -m comment --comment second -j DROP`";

fn nft_setup(ns: &Netns, peer: &str) {
    let script = format!(
        "table inet ntt {{
  set nt_bad {{ type ipv4_addr; elements = {{ {peer} }} }}
  chain input {{
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    udp dport 9001 reject
    ip saddr {peer} jump block
    ct state new udp dport 9002 drop
    ip saddr @nt_bad udp dport 9003 drop
    fib daddr type local udp dport 9004 drop
    fib daddr type local udp dport 9005 drop
    meta pkttype host udp dport 9005 drop
  }}
  chain block {{
    udp dport 9000 drop
  }}
}}
"
    );
    let path = std::env::temp_dir().join(format!("ntt-{}-{}.nft", std::process::id(), ns.name));
    std::fs::write(&path, script).unwrap();
    ns.exec(&["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(path);
}

fn nft_change(ns: &Netns) {
    ns.exec(&["nft", "flush", "chain", "inet", "ntt", "block"]);
    ns.exec(&[
        "nft",
        "add",
        "rule",
        "inet",
        "ntt",
        "block",
        "udp",
        "dport",
        "9006",
        "drop",
        "comment",
        "\"second\"",
    ]);
}

const NFT_EXPECT: &[(u16, &[&str])] = &[
    (
        9000,
        &[
            "`udp dport 9000 drop` (nft inet ntt/block rule 1, handle",
            "jumped from input rule 3",
        ],
    ),
    (
        9001,
        &["`udp dport 9001 reject` (nft inet ntt/input rule 2, handle"],
    ),
    (
        9002,
        &["`ct state new udp dport 9002 drop` (nft inet ntt/input rule 4, handle"],
    ),
    (
        9003,
        &["`ip saddr @nt_bad udp dport 9003 drop` (nft inet ntt/input rule 5, handle"],
    ),
    (
        9004,
        &[
            "`fib daddr type local udp dport 9004 drop` (nft inet ntt/input rule 6, handle",
            "not evaluated",
        ],
    ),
    (
        9005,
        &[
            "rule not named: could not evaluate",
            "meta pkttype",
            "`fib daddr type local udp dport 9005 drop`",
            "`meta pkttype host udp dport 9005 drop`",
        ],
    ),
];

/// Whether nft_do_chain's events name their table and chain: not before
/// 5.11, where modules have no BTF (the finding then says so instead of
/// guessing). Asked once nf_tables is loaded.
pub fn nft_names_chains() -> bool {
    std::path::Path::new("/sys/kernel/btf/nf_tables").exists()
}

const EBTABLES_EXPECT: &[(u16, &[&str])] = &[
    (
        9000,
        &[
            "--ip-dport 9000 -j DROP`",
            "ebtables-legacy filter/NT_BLOCK rule 1, jumped from FORWARD rule 1",
        ],
    ),
    (
        9001,
        &["`-A FORWARD --mark 0x7 -j DROP`", "filter/FORWARD rule 3"],
    ),
    (9002, &["`:NT_POL DROP`", "filter/NT_POL policy"]),
    (
        9004,
        &[
            "--ip-dport 9004 -j DROP`",
            "filter/FORWARD rule 5",
            "not evaluated: --logical-in br0",
        ],
    ),
    (
        9005,
        &[
            "rule not named: could not evaluate",
            "--logical-in br0",
            "--logical-out br0",
            "filter/FORWARD rule 6)",
            "filter/FORWARD rule 7)",
        ],
    ),
];

/// A user chain reached by source address, a mark set by one rule and
/// tested by the next, a user chain whose own policy drops, and matches
/// on the bridge device (not evaluated).
fn ebtables_setup(ns: &Netns, peer: &str) {
    let udp = "-p IPv4 --ip-proto udp --ip-dport";
    let rules = [
        "-N NT_BLOCK -P RETURN".to_string(),
        format!("-A NT_BLOCK {udp} 9000 -j DROP"),
        "-N NT_POL -P DROP".to_string(),
        format!("-A FORWARD -p IPv4 --ip-src {peer} -j NT_BLOCK"),
        format!("-A FORWARD {udp} 9001 -j mark --mark-set 0x7 --mark-target CONTINUE"),
        "-A FORWARD --mark 0x7 -j DROP".to_string(),
        format!("-A FORWARD {udp} 9002 -j NT_POL"),
        format!("-A FORWARD --logical-in br0 {udp} 9004 -j DROP"),
        format!("-A FORWARD --logical-in br0 {udp} 9005 -j DROP"),
        format!("-A FORWARD --logical-out br0 {udp} 9005 -j DROP"),
    ];
    for r in rules {
        let mut args = vec!["ebtables-legacy"];
        args.extend(r.split(' '));
        ns.exec(&args);
    }
}

fn ebtables_change(ns: &Netns) {
    ns.exec(&["ebtables-legacy", "-D", "NT_BLOCK", "1"]);
    let rule = "-A NT_BLOCK -p IPv4 --ip-proto udp --ip-dport 9006 -j DROP";
    let mut args = vec!["ebtables-legacy"];
    args.extend(rule.split(' '));
    ns.exec(&args);
}

/// Runs the flavour's drops under one tracer and checks every finding.
fn names_every_rule(f: &Flavour) {
    let tag = format!("fw{}", &f.name[..3]);
    // (sender, receiver's address, the firewall's namespace, the sender's
    // address); the topology lives until the end.
    let (_hosts, _bridge);
    let (sender, dst, firewall, src) = if f.bridged {
        _bridge = Bridge::new(&tag);
        let n = &_bridge;
        (&n.a, n.b_addr.clone(), &n.switch, n.a_addr.clone())
    } else {
        _hosts = TwoHosts::new(&tag);
        let n = &_hosts;
        (&n.a, n.b_addr.clone(), &n.b, n.a_addr.clone())
    };
    (f.setup)(firewall, &src);
    let tracer = start(&[
        "-t",
        "netfilter",
        "--diag",
        "--diag-keep",
        "-p",
        "udp",
        "--saddr",
        &src,
    ]);
    // A finding's message line (the event line carries the same text).
    let finding = |tracer: &Running, first: &str| {
        tracer.wait_line(Duration::from_secs(30), |l| {
            l.contains(f.says) && l.contains(first)
        })
    };
    let missing = |tracer: Running, what: String| -> ! {
        let done = tracer.stop();
        panic!(
            "{}: {what}; nettrace printed:\n{}\n{}",
            f.name,
            done.stdout.join("\n"),
            done.stderr
        )
    };
    if !f.name.ends_with("legacy") && !nft_names_chains() {
        send_udp(sender, 40000, &dst, 9000);
        let want = "rule not named: this kernel's nft_do_chain events name no table or chain";
        if finding(&tracer, want).is_none() {
            missing(tracer, format!("no finding with `{want}`"));
        }
        return;
    }
    for (port, wants) in f.expect {
        send_udp(sender, 40000 + port % 1000, &dst, *port);
        let Some(line) = finding(&tracer, wants[0]) else {
            missing(tracer, format!("port {port}: no finding with {}", wants[0]));
        };
        for w in *wants {
            assert!(
                line.contains(w),
                "{}: port {port}: `{w}` missing from\n{line}",
                f.name
            );
        }
    }
    // The rule now drops port 9006 instead. A drop in the tenth of a
    // second before nettrace polls the change could have met either
    // ruleset: the test waits that out.
    (f.change)(firewall);
    std::thread::sleep(Duration::from_millis(500));
    send_udp(sender, 41000, &dst, 9006);
    let Some(line) = finding(&tracer, f.changed) else {
        missing(tracer, "no finding after the change".into());
    };
    assert!(
        line.contains(f.changed),
        "{}: after the change, `{}` missing from\n{line}",
        f.name,
        f.changed
    );
    let done = tracer.stop();
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
}

#[test]
fn iptables_nft_rules_are_named() {
    if !require(Cap::Kprobe) {
        return;
    }
    names_every_rule(&Flavour {
        name: "iptables-nft",
        bridged: false,
        says: IPTABLES_SAYS,
        setup: |ns, peer| iptables_setup("iptables-nft")(ns, peer),
        change: |ns| iptables_change("iptables-nft")(ns),
        expect: IPTABLES_EXPECT,
        changed: IPTABLES_CHANGED,
    });
}

#[test]
fn iptables_legacy_rules_are_named() {
    if !require(Cap::Kprobe) {
        return;
    }
    names_every_rule(&Flavour {
        name: "iptables-legacy",
        bridged: false,
        says: IPTABLES_SAYS,
        setup: |ns, peer| iptables_setup("iptables-legacy")(ns, peer),
        change: |ns| iptables_change("iptables-legacy")(ns),
        expect: IPTABLES_EXPECT,
        changed: IPTABLES_CHANGED,
    });
}

#[test]
fn nft_rules_are_named() {
    if !require(Cap::Kprobe) {
        return;
    }
    names_every_rule(&Flavour {
        name: "nft",
        bridged: false,
        says: IPTABLES_SAYS,
        setup: nft_setup,
        change: nft_change,
        expect: NFT_EXPECT,
        changed: "`udp dport 9006 drop comment \"second\"`",
    });
}

/// Legacy ebtables on a bridge: the frames are dropped in its FORWARD
/// chain, in the bridge's namespace.
#[test]
fn ebtables_legacy_rules_are_named() {
    if !require(Cap::Kprobe) {
        return;
    }
    names_every_rule(&Flavour {
        name: "ebtables-legacy",
        bridged: true,
        says: "packet is dropped by ebtables: ",
        setup: ebtables_setup,
        change: ebtables_change,
        expect: EBTABLES_EXPECT,
        changed: "`-A NT_BLOCK -p IPv4 --ip-proto udp --ip-dport 9006 -j DROP`",
    });
}

/// A drop as ipt_do_table (ip6t_do_table for an IPv6 `src`) reports it in
/// `ns`: UDP from `src` to port 9000.
fn legacy_drop(ns: &Netns, src: &str) -> nettrace::events::Event {
    let v6 = src.contains(':');
    let (probe, family, src, dst) = if v6 {
        ("ip6t_do_table", "ipv6", format!("[{src}]"), "[fd00::1]")
    } else {
        ("ipt_do_table", "ipv4", src.to_string(), "10.0.0.1")
    };
    let yaml = format!(
        "- {{probe: {probe}, ret: NF_DROP, netns: {netns}, \
           nf: {{table: filter, family: {family}, hook: LOCAL_IN, in: veth0, ct: new}}, \
           pkt: {{proto: udp, src: \"{src}:5000\", dst: \"{dst}:9000\"}}}}",
        netns = ns.inode()
    );
    let list: Vec<nettrace::record::script::ScriptEvent> = serde_yaml::from_str(&yaml).unwrap();
    let mut ev = nettrace::record::script::build(&list)
        .unwrap()
        .events
        .remove(0);
    let nf = ev.nf.as_mut().unwrap();
    assert_eq!(
        nf.devices,
        Some(HookDevices {
            input: "veth0".into(),
            output: String::new()
        })
    );
    assert!(matches!(nf.skb, Some(NfSkb { mark: 0, .. })));
    ev.ts = nettrace::firewall::rulesets::monotonic_ns();
    ev
}

#[test]
fn rulesets_are_read_in_the_packets_namespace_and_followed_when_they_change() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("fwread");
    for r in [
        "-N NT_BLOCK",
        "-A NT_BLOCK -p udp --dport 9000 -j DROP",
        "-A INPUT -s 10.0.0.2 -j NT_BLOCK",
    ] {
        let mut args = vec!["iptables-legacy"];
        args.extend(r.split(' '));
        ns.exec(&args);
    }
    let mut rulesets = Rulesets::default();
    let answer = rulesets
        .attribute(&legacy_drop(&ns, "10.0.0.2"), TableKind::Xtables)
        .expect("an answer");
    let NfRule::Rule { rule, via, .. } = &answer else {
        panic!("{}", answer.describe())
    };
    assert_eq!(rule.text, "-A NT_BLOCK -p udp -m udp --dport 9000 -j DROP");
    assert_eq!(via, &["INPUT rule 1".to_string()]);
    // Another source is not dropped by this ruleset: no rule is claimed.
    let other = rulesets
        .attribute(&legacy_drop(&ns, "10.0.0.3"), TableKind::Xtables)
        .unwrap();
    assert!(
        matches!(other, NfRule::Undecided { .. }),
        "{}",
        other.describe()
    );
    // IPv6: ip6tables-legacy's table of the same name.
    ns.exec(&[
        "ip6tables-legacy",
        "-A",
        "INPUT",
        "-s",
        "fd00::2",
        "-p",
        "udp",
        "-j",
        "DROP",
    ]);
    std::thread::sleep(Duration::from_millis(150));
    rulesets.poll();
    let v6 = rulesets
        .attribute(&legacy_drop(&ns, "fd00::2"), TableKind::Xtables)
        .unwrap();
    let NfRule::Rule { rule, .. } = &v6 else {
        panic!("{}", v6.describe())
    };
    assert_eq!(rule.text, "-A INPUT -s fd00::2/128 -p udp -j DROP");
    // A changed rule is read again once a poll has seen the change.
    ns.exec(&[
        "iptables-legacy",
        "-R",
        "NT_BLOCK",
        "1",
        "-p",
        "udp",
        "--dport",
        "9000",
        "-j",
        "REJECT",
    ]);
    std::thread::sleep(Duration::from_millis(150));
    rulesets.poll();
    let changed = rulesets
        .attribute(&legacy_drop(&ns, "10.0.0.2"), TableKind::Xtables)
        .unwrap();
    let NfRule::Rule { rule, .. } = &changed else {
        panic!("{}", changed.describe())
    };
    assert!(
        rule.text
            .ends_with("-j REJECT --reject-with icmp-port-unreachable"),
        "{}",
        rule.text
    );
}
