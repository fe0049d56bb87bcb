//! Naming the firewall rule of a drop, without a kernel: rulesets printed
//! by the real tools (tests/fixtures/firewall, written by iptables-nft and
//! nft 1.0.6 in a namespace; ebtables-legacy.txt by ebtables-legacy 2.0.11,
//! from ebtables-legacy.sh, in a 6.1 guest) parse into the model, and walking them with a
//! packet's facts names the rule the kernel would have run — through
//! jumps and returns, sets, marks and conntrack states — or says which
//! match it could not evaluate and lists the candidates.

use nettrace::events::nfrule::{Firewall, NfRule};
use nettrace::events::CtState;
use nettrace::firewall::model::{Family, Ruleset, Table, Verdict};
use nettrace::firewall::verdict::{attribute, Facts};
use nettrace::firewall::{ebtables, iptables, nft};
use std::path::Path;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/firewall")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn iptables_nft() -> Ruleset {
    Ruleset {
        tables: iptables::parse_save(
            &fixture("iptables-nft-save.txt"),
            Firewall::IptablesNft,
            Family::Ip,
        ),
        ..Ruleset::default()
    }
}

fn nft_ruleset() -> Ruleset {
    let texts = nft::rule_texts(&fixture("nft.nft"));
    Ruleset {
        tables: nft::parse_json(&fixture("nft.json"), &texts).expect("nft json"),
        ..Ruleset::default()
    }
}

/// A packet as it reached the chain: `proto` 6/17/1, from `src` to `dst`
/// port `dport`, new, on veth0, mark 0.
fn packet(proto: u8, src: &str, dport: u16) -> Facts {
    Facts {
        family: 4,
        ethertype: Some(0x0800),
        saddr: Some(src.parse().unwrap()),
        daddr: Some("10.0.0.1".parse().unwrap()),
        proto: Some(proto),
        sport: matches!(proto, 6 | 17).then_some(40000),
        dport: matches!(proto, 6 | 17).then_some(dport),
        icmp: (proto == 1).then_some((8, 0)),
        tcp_flags: (proto == 6).then_some(0x02),
        len: Some(60),
        input: Some("veth0".into()),
        output: Some(String::new()),
        mark: Some(0),
        ct: Some(CtState::New),
    }
}

fn table<'r>(r: &'r Ruleset, name: &str) -> &'r Table {
    r.tables.iter().find(|t| t.name == name).expect("table")
}

fn named(answer: &NfRule) -> (String, u32, Vec<String>) {
    match answer {
        NfRule::Rule { rule, via, .. } => (rule.chain.clone(), rule.position, via.clone()),
        other => panic!("no rule named: {}", other.describe()),
    }
}

#[test]
fn iptables_save_parses_chains_policies_and_quoted_comments() {
    let r = iptables_nft();
    let t = table(&r, "filter");
    let names: Vec<&str> = t.chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["INPUT", "FORWARD", "OUTPUT", "BLOCK"]);
    assert_eq!(t.chain("INPUT").unwrap().rules.len(), 8);
    assert_eq!(t.chain("BLOCK").unwrap().rules.len(), 2);
    assert!(t.chain("BLOCK").unwrap().policy.is_none());
    let comment = &t.chain("INPUT").unwrap().rules[4].text;
    assert!(
        comment.contains(r#"--comment "allow \"web\" and ssh""#),
        "{comment}"
    );
    assert_eq!(
        iptables::split_args(comment)
            .iter()
            .find(|a| a.contains("web"))
            .unwrap(),
        r#"allow "web" and ssh"#
    );
}

#[test]
fn a_drop_in_a_jumped_to_chain_names_the_rule_and_the_jump() {
    let r = iptables_nft();
    let answer = attribute(
        &r,
        table(&r, "filter"),
        "INPUT",
        &packet(17, "10.0.0.2", 9999),
    );
    assert_eq!(
        named(&answer),
        ("BLOCK".into(), 1, vec!["INPUT rule 4".into()])
    );
    let NfRule::Rule { rule, .. } = &answer else {
        unreachable!()
    };
    assert_eq!(
        rule.text,
        "-A BLOCK -s 10.0.0.2/32 -p udp -m udp --dport 9999 -j DROP"
    );
}

#[test]
fn reject_and_mark_rules_are_named() {
    let r = iptables_nft();
    let t = table(&r, "filter");
    assert_eq!(
        named(&attribute(&r, t, "INPUT", &packet(1, "10.5.5.5", 0))).1,
        3
    );
    let mut marked = packet(6, "10.7.7.7", 5000);
    marked.mark = Some(0x101);
    assert_eq!(named(&attribute(&r, t, "INPUT", &marked)).1, 6);
}

#[test]
fn an_unsupported_match_is_named_when_it_alone_can_drop() {
    // Only `-m addrtype` can drop a new TCP packet to port 5000 here: the
    // kernel dropped it, so that rule did, whatever addrtype said.
    let r = iptables_nft();
    let answer = attribute(
        &r,
        table(&r, "filter"),
        "INPUT",
        &packet(6, "10.7.7.7", 5000),
    );
    let NfRule::Rule { rule, assumed, .. } = &answer else {
        panic!("{}", answer.describe())
    };
    assert_eq!(rule.position, 8);
    assert!(
        assumed.iter().any(|a| a.contains("addrtype")),
        "{assumed:?}"
    );
}

#[test]
fn unknown_matches_before_two_drops_leave_candidates() {
    // Without the mark, rule 6 (mark) and rule 8 (addrtype) can both drop.
    let r = iptables_nft();
    let mut p = packet(6, "10.7.7.7", 5000);
    p.mark = None;
    let answer = attribute(&r, table(&r, "filter"), "INPUT", &p);
    let NfRule::Undecided { why, candidates } = &answer else {
        panic!("named a rule it did not prove: {}", answer.describe())
    };
    assert!(why.contains("--mark") && why.contains("addrtype"), "{why}");
    let positions: Vec<u32> = candidates.iter().map(|c| c.position).collect();
    assert_eq!(positions, [6, 8]);
}

#[test]
fn an_established_packet_is_accepted_so_no_rule_dropped_it() {
    let r = iptables_nft();
    let mut p = packet(17, "10.0.0.2", 9999);
    p.ct = Some(CtState::Established);
    let answer = attribute(&r, table(&r, "filter"), "INPUT", &p);
    assert!(
        matches!(&answer, NfRule::Undecided { why, candidates } if candidates.is_empty() && why.contains("accepts")),
        "{}",
        answer.describe()
    );
}

#[test]
fn a_chain_policy_is_named_when_no_rule_matches() {
    let r = iptables_nft();
    let answer = attribute(
        &r,
        table(&r, "filter"),
        "FORWARD",
        &packet(17, "10.0.0.2", 9999),
    );
    let NfRule::Rule { rule, .. } = &answer else {
        panic!("{}", answer.describe())
    };
    assert_eq!((rule.position, rule.text.as_str()), (0, ":FORWARD DROP"));
}

fn ebtables_legacy() -> Ruleset {
    Ruleset {
        tables: ebtables::parse_list(&fixture("ebtables-legacy.txt"))
            .into_iter()
            .collect(),
        ..Ruleset::default()
    }
}

/// A bridged frame's packet: `packet`, on port veth0.
fn frame(proto: u8, src: &str, dport: u16) -> Facts {
    Facts {
        ct: None,
        ..packet(proto, src, dport)
    }
}

#[test]
fn ebtables_listing_parses_chains_and_their_policies() {
    let r = ebtables_legacy();
    let t = table(&r, "filter");
    assert_eq!(
        (t.firewall, t.family),
        (Firewall::EbtablesLegacy, Family::Bridge)
    );
    let chains: Vec<(&str, usize)> = t
        .chains
        .iter()
        .map(|c| (c.name.as_str(), c.rules.len()))
        .collect();
    assert_eq!(
        chains,
        [
            ("INPUT", 0),
            ("FORWARD", 10),
            ("OUTPUT", 0),
            ("NT_BLOCK", 1),
            ("NT_POL", 0)
        ]
    );
    let policy = |n: &str| t.chain(n).unwrap().policy;
    assert_eq!(policy("FORWARD"), Some(Verdict::Accept));
    assert_eq!(policy("NT_BLOCK"), None, "RETURN: back to the caller");
    assert_eq!(policy("NT_POL"), Some(Verdict::Drop));
    assert_eq!(
        t.chain("NT_BLOCK").unwrap().rules[0].text,
        "-A NT_BLOCK -p IPv4 --ip-proto udp --ip-dport 9000 -j DROP"
    );
}

#[test]
fn ebtables_jumps_marks_and_a_user_chains_policy() {
    let r = ebtables_legacy();
    let t = table(&r, "filter");
    let at = |f: &Facts| attribute(&r, t, "FORWARD", f);
    assert_eq!(
        named(&at(&frame(17, "10.0.0.2", 9000))),
        ("NT_BLOCK".into(), 1, vec!["FORWARD rule 1".into()])
    );
    // Rule 2 marks the frame and goes on; rule 3 drops what is marked.
    assert_eq!(named(&at(&frame(17, "10.0.0.3", 9001))).1, 3);
    let NfRule::Rule { rule, .. } = at(&frame(17, "10.0.0.3", 9002)) else {
        panic!("NT_POL's policy not named")
    };
    assert_eq!(
        (rule.chain.as_str(), rule.position, rule.text.as_str()),
        ("NT_POL", 0, ":NT_POL DROP")
    );
    // `--mark /0xf0`: any of those bits.
    let mut marked = frame(17, "10.0.0.3", 1234);
    marked.mark = Some(0x10);
    assert_eq!(named(&at(&marked)).1, 10);
    let mut v6 = frame(6, "fd00::5", 22);
    v6.family = 6;
    v6.ethertype = Some(0x86dd);
    assert_eq!(named(&at(&v6)).1, 8);
    // Not IPv4 from ens3: accepted by rule 7, so nothing here dropped it.
    let mut arp = frame(17, "10.0.0.3", 9000);
    arp.ethertype = Some(0x0806);
    arp.input = Some("ens3".into());
    assert!(
        matches!(at(&arp), NfRule::Undecided { ref candidates, .. } if candidates.is_empty()),
        "{}",
        at(&arp).describe()
    );
}

#[test]
fn ebtables_matches_on_macs_bridges_and_rates_are_not_evaluated() {
    let r = ebtables_legacy();
    let t = table(&r, "filter");
    let at = |f: &Facts| attribute(&r, t, "FORWARD", f);
    for (dport, position, unevaluated) in
        [(9004, 5, "--logical-in br0"), (9005, 6, "-s 2:0:0:0:0:1")]
    {
        let answer = at(&frame(17, "10.0.0.3", dport));
        let NfRule::Rule { rule, assumed, .. } = &answer else {
            panic!("{}", answer.describe())
        };
        assert_eq!(rule.position, position);
        assert!(
            assumed.iter().any(|a| a.contains(unevaluated)),
            "{assumed:?}"
        );
    }
    let mut far = frame(17, "10.0.0.3", 53);
    far.daddr = Some("10.0.1.9".parse().unwrap());
    let answer = at(&far);
    let NfRule::Rule { rule, assumed, .. } = &answer else {
        panic!("{}", answer.describe())
    };
    assert_eq!(rule.position, 9);
    assert!(
        assumed.iter().any(|a| a.contains("depends on rate")),
        "{assumed:?}"
    );
}

#[test]
fn nft_sets_prefixes_and_ranges_match() {
    let r = nft_ruleset();
    let t = table(&r, "filter");
    assert_eq!(t.family, Family::Inet);
    for src in ["10.0.0.7", "10.1.3.4", "10.2.0.3"] {
        let answer = attribute(&r, t, "input", &packet(17, src, 9000));
        let NfRule::Rule { rule, .. } = &answer else {
            panic!("{src}: {}", answer.describe())
        };
        assert_eq!(
            (rule.handle, rule.text.as_str()),
            (Some(9), "ip saddr @blocked counter drop"),
            "{src}"
        );
    }
}

#[test]
fn nft_jump_ct_state_reject_and_policy() {
    let r = nft_ruleset();
    let t = table(&r, "filter");
    let jumped = attribute(&r, t, "input", &packet(17, "10.9.1.1", 7005));
    assert_eq!(
        named(&jumped),
        ("deny".into(), 1, vec!["input rule 7".into()])
    );
    let mut invalid = packet(17, "10.50.0.1", 7005);
    invalid.ct = Some(CtState::Invalid);
    let NfRule::Rule { rule, .. } = attribute(&r, t, "input", &invalid) else {
        panic!()
    };
    assert_eq!(rule.handle, Some(8));
    let NfRule::Rule { rule, .. } = attribute(&r, t, "input", &packet(1, "10.50.0.1", 0)) else {
        panic!()
    };
    assert_eq!(
        rule.text,
        "icmp type echo-request reject with icmp admin-prohibited"
    );
    let NfRule::Rule { rule, .. } = attribute(&r, t, "forward", &packet(17, "10.50.0.1", 53))
    else {
        panic!()
    };
    assert_eq!(rule.text, "policy drop");
}

#[test]
fn nft_mark_mask_and_unsupported_meta() {
    let r = nft_ruleset();
    let t = table(&r, "filter");
    let mut marked = packet(17, "10.50.0.1", 9000);
    marked.mark = Some(0x302);
    assert_eq!(named(&attribute(&r, t, "input", &marked)).1, 6);
    // Only `meta skuid` can drop this one.
    let answer = attribute(&r, t, "input", &packet(17, "10.50.0.1", 9000));
    let NfRule::Rule { rule, assumed, .. } = &answer else {
        panic!("{}", answer.describe())
    };
    assert_eq!(rule.handle, Some(17));
    assert_eq!(assumed, &["meta skuid".to_string()]);
}

#[test]
fn nft_rule_texts_join_lines_and_drop_handles() {
    let texts = nft::rule_texts(&fixture("nft.nft"));
    let get = |h: u64| {
        texts
            .get(&("inet".into(), "filter".into(), "input".into(), h))
            .cloned()
    };
    assert_eq!(get(14).as_deref(), Some("udp dport { 53, 5353 } accept"));
    assert_eq!(get(6).as_deref(), Some(r#"iifname "lo" accept"#));
    // Set definitions and chain headers are not rules.
    assert_eq!(texts.len(), 14);
}

#[test]
fn ipset_sets_match_addresses_and_ports() {
    let save = "-A INPUT -m set --match-set bad src -j DROP\n-A INPUT -m set --match-set svc dst,dst -j REJECT\n";
    let dump = format!("*filter\n:INPUT ACCEPT [0:0]\n{save}COMMIT\n");
    let ipsets = iptables::parse_ipset_save(
        "create bad hash:net family inet hashsize 1024 maxelem 65536\nadd bad 10.3.0.0/16\n\
         create svc hash:ip,port family inet\nadd svc 10.0.0.1,udp:53\n\
         create macs hash:mac\nadd macs 00:11:22:33:44:55\n",
    );
    assert!(ipsets["macs"].unsupported.is_some());
    let r = Ruleset {
        tables: iptables::parse_save(&dump, Firewall::IptablesLegacy, Family::Ip),
        ipsets,
    };
    let t = table(&r, "filter");
    assert_eq!(
        named(&attribute(&r, t, "INPUT", &packet(6, "10.3.9.9", 80))).1,
        1
    );
    assert_eq!(
        named(&attribute(&r, t, "INPUT", &packet(17, "10.4.0.1", 53))).1,
        2
    );
    let tcp = attribute(&r, t, "INPUT", &packet(6, "10.4.0.1", 53));
    assert!(
        matches!(tcp, NfRule::Undecided { .. }),
        "{}",
        tcp.describe()
    );
}

#[test]
fn rendered_answers() {
    let ipt = iptables_nft();
    let nft = nft_ruleset();
    let mut unmarked = packet(6, "10.7.7.7", 5000);
    unmarked.mark = None;
    let lines: Vec<String> = [
        attribute(
            &ipt,
            table(&ipt, "filter"),
            "INPUT",
            &packet(17, "10.0.0.2", 9999),
        ),
        attribute(
            &ipt,
            table(&ipt, "filter"),
            "INPUT",
            &packet(6, "10.7.7.7", 5000),
        ),
        attribute(&ipt, table(&ipt, "filter"), "INPUT", &unmarked),
        attribute(
            &ipt,
            table(&ipt, "filter"),
            "FORWARD",
            &packet(17, "10.0.0.2", 9999),
        ),
        attribute(
            &nft,
            table(&nft, "filter"),
            "input",
            &packet(17, "10.9.1.1", 7005),
        ),
    ]
    .iter()
    .map(NfRule::describe)
    .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

/// The named rule is on the event line and in the JSON event, with the
/// hook's devices, mark and conntrack state, and reads back as written.
#[test]
fn event_line_and_json_carry_the_rule() {
    use nettrace::record::script::{self, ScriptEvent};
    let yaml = r#"
- {probe: ipt_do_table, ret: NF_DROP, nf: {table: filter, family: ipv4, hook: LOCAL_IN, in: veth0, mark: 7, ct: established, rule: "-A NT_BLOCK -j DROP", rule_chain: NT_BLOCK}, pkt: {proto: udp, src: "10.0.0.2:5000", dst: "10.0.0.1:9000"}}
"#;
    let list: Vec<ScriptEvent> = serde_yaml::from_str(yaml).unwrap();
    let s = script::build(&list).unwrap();
    let fmt = crate::support::plain_formatter(&s.reasons, &s.kallsyms);
    let ev = &s.events[0];
    let line = fmt.event_line(ev);
    assert!(
        line.contains("*`-A NT_BLOCK -j DROP` (iptables-nft filter/NT_BLOCK rule 1)*"),
        "{line}"
    );
    let json = serde_json::to_value(nettrace::output::json::event(&fmt, ev)).unwrap();
    let nf = &json["netfilter"];
    assert_eq!(nf["in_dev"], "veth0");
    assert_eq!(nf["out_dev"], "");
    assert_eq!(nf["mark"], 7);
    assert_eq!(nf["ct_state"], "established");
    assert_eq!(nf["rule"]["found"], "rule");
    assert_eq!(nf["rule"]["rule"]["firewall"], "iptables-nft");
    assert_eq!(nf["rule"]["rule"]["chain"], "NT_BLOCK");
    let back: nettrace::events::nfrule::NfRule =
        serde_json::from_value(nf["rule"].clone()).unwrap();
    assert_eq!(Some(&back), ev.nf.as_ref().unwrap().rule.as_deref());
}
