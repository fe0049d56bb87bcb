//! The rule language without a kernel: the parser's tree for a corpus of
//! every construct, lint diagnostics for a corpus of mistakes (text, JSON
//! and SARIF) and the CLI's SARIF for a small bad file, the default pack
//! linting clean, diagnosis blocks, and a fuzzer that no input may make
//! panic.

use nettrace::kernel::btf::{DropReasons, KernelBtf};
use nettrace::rules::ast::parse_file;
use nettrace::rules::compile::{compile, KernelFacts, Layer, Placeholder};
use nettrace::rules::diag::{render_json, render_sarif, Code, SourceFile};
use std::path::{Path, PathBuf};

fn reasons_618() -> DropReasons {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/btf/enums-6.18.btf");
    KernelBtf::load(Some(&path)).unwrap().drop_reasons()
}

fn layer(rel: &str) -> Layer {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap();
    Layer {
        files: vec![SourceFile::new(Path::new(rel), text)],
    }
}

#[test]
fn parser_tree_of_the_corpus() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules/corpus.rules"),
    )
    .unwrap();
    let rules: Vec<_> = parse_file(&text)
        .into_iter()
        .map(|r| r.expect("corpus parses"))
        .collect();
    assert_eq!(rules.len(), 11);
    insta::assert_yaml_snapshot!("parser_corpus", rules);
}

#[test]
fn lint_reports_every_mistake_of_the_broken_corpus() {
    let reasons = reasons_618();
    let facts = KernelFacts {
        reasons: &reasons,
        have_kernel: true,
    };
    let out = compile(&[layer("tests/fixtures/rules/broken.rules")], &facts);
    let mut diags = out.diagnostics.clone();
    diags.sort_by_key(|d| (d.line, d.col));
    let codes: std::collections::BTreeSet<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    assert!(
        codes.len() >= 20,
        "only {} distinct codes: {codes:?}",
        codes.len()
    );
    // Every mistake is reported, one broken rule does not hide the next:
    // each of the corpus' 30 rules (and the stray line) has a diagnostic.
    let lines: std::collections::BTreeSet<usize> = diags.iter().map(|d| d.line).collect();
    assert!(lines.len() >= 30, "{lines:?}");
    let text: String = diags.iter().map(|d| d.render_text() + "\n").collect();
    insta::assert_snapshot!("lint_broken_text", text);
    insta::assert_snapshot!("lint_broken_json", render_json(&diags, 1, out.parsed));
    insta::assert_snapshot!("lint_broken_sarif", render_sarif(&diags));
    // Every code is documented.
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md"))
        .unwrap();
    for code in Code::ALL {
        let row = format!(
            "| {code} | {} | {} |",
            code.severity().as_str(),
            code.meaning()
        );
        assert!(doc.contains(&row), "docs/rules.md does not list `{row}`");
    }
}

#[test]
fn every_placeholder_is_documented() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md"))
        .unwrap();
    let section = doc
        .split("## Messages")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/rules.md has a Messages section");
    for p in Placeholder::ALL {
        let written = format!("`{{{}}}`", p.name());
        assert!(
            section.contains(&written),
            "docs/rules.md's Messages section does not list {written}"
        );
    }
}

#[test]
fn the_corpus_lints_clean() {
    let reasons = reasons_618();
    let facts = KernelFacts {
        reasons: &reasons,
        have_kernel: true,
    };
    let out = compile(&[layer("tests/fixtures/rules/corpus.rules")], &facts);
    assert!(out.diagnostics.is_empty(), "{:#?}", out.diagnostics);
    assert_eq!(out.rules.len(), 11);
}

#[test]
fn the_default_pack_is_clean_and_covers_every_drop_reason() {
    for kernel in ["6.1", "6.12", "6.18"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/btf/enums-{kernel}.btf"));
        let reasons = KernelBtf::load(Some(&path)).unwrap().drop_reasons();
        let out = compile(
            &[Layer::builtin()],
            &KernelFacts {
                reasons: &reasons,
                have_kernel: true,
            },
        );
        let problems: Vec<String> = out
            .diagnostics
            .iter()
            .filter(|d| d.code != Code::N0302)
            .map(|d| d.render_text())
            .collect();
        assert!(problems.is_empty(), "{kernel}:\n{}", problems.join("\n"));
        for (_, name) in reasons.names() {
            if matches!(name, "MAX" | "SUBSYS_MASK" | "NOT_DROPPED_YET") {
                continue;
            }
            assert!(
                out.rules.iter().any(|r| r.id == format!("drop.{name}")),
                "{kernel}: no rule for drop reason {name}"
            );
        }
    }
}

fn lint(args: &[&str]) -> (i32, String) {
    let all: Vec<&str> = ["rules", "lint"].iter().chain(args).copied().collect();
    let (code, stdout, stderr) = crate::support::nettrace(&all);
    (code, stdout + &stderr)
}

#[test]
fn lint_exit_codes_and_formats() {
    let (code, out) = lint(&["rules.d"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 errors, 0 warnings"), "{out}");
    let (code, out) = lint(&["--no-default-rules", "tests/fixtures/rules/broken.rules"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("error[E0110]: unknown probe `nf_hok_slow`"),
        "{out}"
    );
    let (code, out) = lint(&[
        "--format",
        "json",
        "--no-default-rules",
        "tests/fixtures/rules/broken.rules",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(v["errors"].as_u64().unwrap() >= 20);
    let (code, out) = lint(&[
        "--format",
        "sarif",
        "--no-default-rules",
        "tests/fixtures/rules/broken.rules",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("sarif");
    assert_eq!(v["version"], "2.1.0");
    // Warnings fail only with --deny-warnings.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.rules"),
        "rule w.x { when drop level error message \"m\" }\n",
    )
    .unwrap();
    let p = dir.path().to_str().unwrap();
    assert_eq!(lint(&[p]).0, 0);
    assert_eq!(lint(&["--deny-warnings", p]).0, 1);
    let (code, out) = lint(&["/nonexistent/rules"]);
    assert_eq!(code, 2, "{out}");
    assert!(lint(&["--explain"]).1.contains("E0113"));
}

/// The CLI's SARIF output for a small file with an error of the checker,
/// one of the message templates and a warning of the analyses.
#[test]
fn lint_sarif_of_a_small_bad_file() {
    let (code, stdout, stderr) = crate::support::nettrace(&[
        "rules",
        "lint",
        "--format",
        "sarif",
        "--no-default-rules",
        "--btf",
        "tests/fixtures/btf/enums-6.18.btf",
        "tests/fixtures/rules/small-bad.rules",
    ]);
    assert_eq!(code, 1, "{stderr}");
    insta::assert_snapshot!("lint_small_bad_sarif_cli", stdout);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const TOKENS: &[&str] = &[
        "rule",
        "r.id",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ",",
        "when",
        "level",
        "message",
        "advice",
        "tags",
        "see",
        "fallback",
        "and",
        "or",
        "not",
        "in",
        "probe",
        "group",
        "drop",
        "free",
        "clone",
        "after",
        "before",
        "seen",
        "ret",
        "reason",
        "saddr",
        "tcp.flags",
        "==",
        "!=",
        "<",
        ">=",
        "has",
        "NF_DROP",
        "-1",
        "10.0.0.0/8",
        "\"msg {reason}\"",
        "\"",
        "#",
        "\n",
        "error",
        "warn",
        "nf_hook_slow",
        "ip_rcv",
        "netfilter",
        "NO_SOCKET",
        "{{",
        "é",
        "\\",
    ];

    fn check(text: &str) {
        let reasons = DropReasons::default();
        let _ = compile(
            &[Layer {
                files: vec![SourceFile::new(Path::new("fuzz.rules"), text.to_string())],
            }],
            &KernelFacts {
                reasons: &reasons,
                have_kernel: false,
            },
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(TOKENS), 0..60)) {
            check(&toks.join(" "));
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            check(&s);
        }

        #[test]
        fn mutated_corpus_never_panics(cut in 0usize..2000, insert in prop::sample::select(TOKENS)) {
            let corpus = include_str!("../fixtures/rules/corpus.rules");
            let mut at = cut.min(corpus.len());
            while !corpus.is_char_boundary(at) { at -= 1; }
            check(&format!("{}{insert}{}", &corpus[..at], &corpus[at..]));
        }
    }
}

mod diagnosis {
    use super::*;
    use nettrace::catalogue::table::probe;
    use nettrace::events::{flags, Event, NfFacts, Packet, PacketSource};
    use nettrace::kernel::kallsyms::Kallsyms;
    use nettrace::lifecycle::Tracker;
    use nettrace::output::diagnosis::diagnose;
    use nettrace::output::lines::Formatter;
    use nettrace::output::time::Clock;

    fn ev(ts: u64, name: &str, fl: u32, ret: Option<i64>, pkt: &Packet) -> Event {
        Event {
            flags: fl,
            ret,
            pkt: pkt.clone(),
            ..Event::new(ts, 0xffff889fb3c64f00, probe(name).unwrap().id)
        }
    }

    fn context(events: Vec<Event>) -> nettrace::lifecycle::Context {
        let mut t = Tracker::new();
        for e in events {
            t.push(e);
        }
        t.drain().pop().expect("a finished context")
    }

    /// The seed's two shapes: a forwarded ping dropped by an iptables rule,
    /// and a SYN to a port nobody listens on.
    #[test]
    fn rendered_diagnoses() {
        let reasons = reasons_618();
        let out = compile(
            &[Layer::builtin()],
            &KernelFacts {
                reasons: &reasons,
                have_kernel: true,
            },
        );
        let ksyms =
            Kallsyms::parse("ffffffff81a00000 T nf_hook_slow\nffffffff81b00000 T tcp_v4_rcv\n");
        let fmt = Formatter {
            clock: Clock::monotonic(),
            reasons: &reasons,
            kallsyms: &ksyms,
            detail: false,
            show_ret: false,
            latency_show: false,
            tiny: false,
            color: false,
        };
        let mut ping = Packet::empty();
        ping.source = PacketSource::Header;
        (ping.l3_proto, ping.l4_proto, ping.icmp_type, ping.icmp_seq) = (0x0800, 1, 8, 0);
        ping.saddr = Some("192.168.122.8".parse().unwrap());
        ping.daddr = Some("10.123.119.98".parse().unwrap());
        let t = flags::TRACKED;
        let mut drop = ev(
            4_049_295_711_000,
            "kfree_skb",
            t | flags::DROP | flags::FREE,
            None,
            &ping,
        );
        (drop.reason, drop.location) =
            (reasons.value_of("NETFILTER_DROP"), Some(0xffffffff81a00096));
        let forward_drop = context(vec![
            ev(
                4_049_295_546_000,
                "__netif_receive_skb_core",
                0,
                None,
                &ping,
            ),
            ev(4_049_295_624_000, "ip_rcv", t, None, &ping),
            ev(4_049_295_683_000, "ip_forward", t, None, &ping),
            Event {
                nf: Some(Box::new(NfFacts {
                    pf_hook: Some((2, 2)),
                    ..NfFacts::default()
                })),
                ..ev(
                    4_049_295_687_000,
                    "nf_hook_slow",
                    t | flags::RET,
                    Some(-1),
                    &ping,
                )
            },
            Event {
                nf: Some(Box::new(NfFacts {
                    pf_hook: Some((2, 2)),
                    table: Some("filter".into()),
                    chain: Some("FORWARD".into()),
                    nft: true,
                    ..NfFacts::default()
                })),
                ..ev(
                    4_049_295_695_000,
                    "nft_do_chain",
                    t | flags::RET,
                    Some(65538), // NF_DROP_REASON: NF_STOLEN | -EPERM << 16
                    &ping,
                )
            },
            drop,
        ]);
        let mut syn = Packet::empty();
        syn.source = PacketSource::Header;
        (
            syn.l3_proto,
            syn.l4_proto,
            syn.sport,
            syn.dport,
            syn.seq,
            syn.tcp_flags,
        ) = (0x0800, 6, 40392, 9999, 3067626996, 0x02);
        syn.saddr = Some("127.0.0.1".parse().unwrap());
        syn.daddr = syn.saddr;
        let mut drop = ev(
            365_673_326_125_000,
            "kfree_skb",
            t | flags::DROP | flags::FREE,
            None,
            &syn,
        );
        (drop.reason, drop.location) = (reasons.value_of("NO_SOCKET"), Some(0xffffffff81b0004a));
        let not_listened = context(vec![
            ev(365_673_326_078_000, "tcp_v4_rcv", 0, None, &syn),
            ev(
                365_673_326_084_000,
                "__inet_lookup_listener",
                t | flags::RET,
                Some(0),
                &syn,
            ),
            ev(365_673_326_090_000, "tcp_v4_send_reset", t, None, &syn),
            drop,
        ]);
        let set = nettrace::rules::eval::RuleSet::new(out.rules.clone());
        let a = diagnose(&fmt, &set, &forward_drop);
        let b = diagnose(&fmt, &set, &not_listened);
        assert_eq!(a.worst, Some(nettrace::rules::compile::Level::Error));
        insta::assert_snapshot!("diagnosis_blocks", format!("{}{}", a.text, b.text));
    }
}

/// `rules` (alone) compiled for the kernel facts of `events`, and the one
/// packet those events make.
fn one_packet(
    rules: &str,
    events: &str,
) -> (
    nettrace::rules::eval::RuleSet,
    nettrace::lifecycle::Context,
    nettrace::kernel::kallsyms::Kallsyms,
) {
    use nettrace::record::script::{self, ScriptEvent};
    let built = script::build(&serde_yaml::from_str::<Vec<ScriptEvent>>(events).unwrap())
        .expect("events build");
    let out = compile(
        &[Layer {
            files: vec![SourceFile::new(Path::new("t.rules"), rules.to_string())],
        }],
        &KernelFacts {
            reasons: &built.reasons,
            have_kernel: true,
        },
    );
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    let mut t = nettrace::lifecycle::Tracker::new();
    for ev in built.events {
        t.push(ev);
    }
    let ctx = t.drain().pop().expect("one packet");
    (
        nettrace::rules::eval::RuleSet::new(out.rules),
        ctx,
        built.kallsyms,
    )
}

/// The root cause among a packet's findings (`rules::root`): what
/// `explains` removes, then level, the deciding function over the drop
/// record, the innermost function, and pack order.
mod root_cause {
    use nettrace::rules::eval::evaluate;
    use nettrace::rules::graph::LifeGraph;
    use nettrace::rules::root::root_cause;

    /// The root cause's rule id when `rules` (alone) judge `events`.
    fn root(rules: &str, events: &str) -> Option<String> {
        let (set, ctx, kallsyms) = super::one_packet(rules, events);
        let graph = LifeGraph::of(&ctx).with_symbols(&kallsyms);
        let findings = evaluate(&set, &graph);
        root_cause(&set, &graph, &findings).map(|i| set[findings[i].rule].id.clone())
    }

    const EVENTS: &str = r#"
- {probe: nf_hook_slow, ret: NF_DROP, nf: {family: ipv4, hook: FORWARD}, pkt: {proto: icmp, src: 10.0.0.1, dst: 10.0.1.2}}
- {probe: nft_do_chain, ret: NF_DROP, nf: {table: filter, chain: FORWARD, nft: true}}
- {probe: kfree_skb, drop: NETFILTER_DROP, at: nf_hook_slow+0x92}
"#;

    #[test]
    fn the_innermost_deciding_function_wins_a_tie() {
        let rules = r#"
rule hook { when probe nf_hook_slow and ret == NF_DROP level error message "hook" advice "a" }
rule chain { when probe nft_do_chain and ret == NF_DROP level error message "chain" advice "a" }
rule reason { when drop and reason == NETFILTER_DROP level error message "reason" advice "a" }
"#;
        assert_eq!(root(rules, EVENTS).as_deref(), Some("chain"));
    }

    #[test]
    fn a_higher_level_wins_over_the_deciding_function() {
        let rules = r#"
rule chain { when probe nft_do_chain and ret == NF_DROP level warn message "chain" }
rule reason { when drop and reason == NETFILTER_DROP level error message "reason" advice "a" }
"#;
        assert_eq!(root(rules, EVENTS).as_deref(), Some("reason"));
    }

    #[test]
    fn an_explained_finding_is_not_the_root_cause() {
        let rules = r#"
rule hook { when probe nf_hook_slow and ret == NF_DROP level error message "hook" advice "a" }
rule chain { when probe nft_do_chain and ret == NF_DROP level warn message "chain" }
rule reason { when drop and reason == NETFILTER_DROP level error message "reason" advice "a" explains hook, chain }
"#;
        assert_eq!(root(rules, EVENTS).as_deref(), Some("reason"));
        // A prefix covers every rule it starts.
        let rules = r#"
rule nf.hook { when probe nf_hook_slow and ret == NF_DROP level error message "hook" advice "a" }
rule nf.chain { when probe nft_do_chain and ret == NF_DROP level error message "chain" advice "a" }
rule site.reason { when drop level warn message "reason" explains nf.* }
"#;
        assert_eq!(root(rules, EVENTS).as_deref(), Some("site.reason"));
    }

    #[test]
    fn findings_that_explain_each_other_fall_back_to_the_order() {
        let rules = r#"
rule a { when probe nf_hook_slow level error message "a" advice "a" explains b }
rule b { when probe nft_do_chain level error message "b" advice "a" explains a }
"#;
        assert_eq!(root(rules, EVENTS).as_deref(), Some("b"));
    }

    #[test]
    fn on_one_event_the_earlier_rule_wins_and_info_is_never_the_root() {
        let rules = r#"
rule first { when drop level error message "first" advice "a" }
rule second { when drop and reason == NETFILTER_DROP level error message "second" advice "a" }
rule note { when probe nft_do_chain level info message "note" }
"#;
        assert_eq!(root(rules, EVENTS).as_deref(), Some("first"));
        let only_info = r#"rule note { when probe nft_do_chain level info message "note" }"#;
        assert_eq!(root(only_info, EVENTS), None);
    }
}

/// Messages never show a hole: a `[...]` group whose placeholder has no
/// value is left out, and a bare placeholder says what it lacks.
#[test]
fn missing_fields_are_phrased_away() {
    use nettrace::events::{Event, Packet, PacketSource};
    use nettrace::kernel::kallsyms::Kallsyms;
    use nettrace::output::diagnosis::interpolate;
    use nettrace::output::lines::Formatter;
    use nettrace::output::time::Clock;
    let reasons = reasons_618();
    let out = compile(
        &[Layer {
            files: vec![SourceFile::new(
                Path::new("t.rules"),
                "rule t { when drop level info message \"nothing listens on {proto}[ port {dport}][ ({ifname})]; bare {sport}\" }".into(),
            )],
        }],
        &KernelFacts {
            reasons: &reasons,
            have_kernel: true,
        },
    );
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    let ksyms = Kallsyms::parse("");
    let fmt = Formatter {
        clock: Clock::monotonic(),
        reasons: &reasons,
        kallsyms: &ksyms,
        detail: false,
        show_ret: false,
        latency_show: false,
        tiny: false,
        color: false,
    };
    let mut icmp = Packet::empty();
    icmp.source = PacketSource::Header;
    (icmp.l3_proto, icmp.l4_proto, icmp.icmp_type) = (0x0800, 1, 0);
    icmp.saddr = Some("10.0.0.1".parse().unwrap());
    icmp.daddr = Some("10.0.0.2".parse().unwrap());
    let mut udp = icmp.clone();
    (udp.l4_proto, udp.sport, udp.dport) = (17, 5000, 53);
    let ev = |pkt: &Packet| Event {
        pkt: pkt.clone(),
        ..Event::new(
            1,
            1,
            nettrace::catalogue::table::probe("kfree_skb").unwrap().id,
        )
    };
    let msg = &out.rules[0].message;
    assert_eq!(
        interpolate(&fmt, msg, &ev(&icmp)),
        "nothing listens on ICMP; bare (unknown sport)"
    );
    assert_eq!(
        interpolate(&fmt, msg, &ev(&udp)),
        "nothing listens on UDP port 53; bare 5000"
    );
    // The interface name is known only with --detail: the pack names it
    // in groups only.
    for f in Layer::builtin().files {
        let outside: String = f
            .text
            .split('[')
            .map(|part| part.split_once(']').map_or(part, |(_, rest)| rest))
            .collect();
        assert!(
            !outside.contains("{ifname}"),
            "{}: {{ifname}} outside a [...] group",
            f.path.display()
        );
    }
}

/// Order tests on a packet that may be missing events: a found event is
/// proof, an absence is unknown, and `and`/`or` follow three-valued logic.
mod absence {
    use nettrace::rules::eval::evaluate;
    use nettrace::rules::graph::LifeGraph;

    const RULES: &str = r#"
rule never-consumed { when probe nf_hook_slow and not before(probe consume_skb) level warn message "m" }
rule dropped-later { when probe nf_hook_slow and before(drop) level warn message "m" }
rule or-decided { when probe nf_hook_slow and (ret == NF_DROP or not before(probe consume_skb)) level warn message "m" }
rule and-decided { when probe nf_hook_slow and not before(probe consume_skb) and ret == NF_ACCEPT level warn message "m" }
rule nothing-earlier { when drop and not after(probe consume_skb) level warn message "m" }
"#;

    /// The rules that fire on the netfilter drop, with the context's gaps.
    fn fired(lost: bool, cut_short: bool) -> Vec<String> {
        let events = r#"
- {probe: nf_hook_slow, ret: NF_DROP, nf: {family: ipv4, hook: FORWARD}, pkt: {proto: icmp, src: 10.0.0.1, dst: 10.0.1.2}}
- {probe: kfree_skb, drop: NETFILTER_DROP, at: nf_hook_slow+0x92}
"#;
        let (set, mut ctx, kallsyms) = super::one_packet(RULES, events);
        (ctx.events_lost, ctx.cut_short) = (lost, cut_short);
        let graph = LifeGraph::of(&ctx).with_symbols(&kallsyms);
        let mut ids: Vec<String> = evaluate(&set, &graph)
            .iter()
            .map(|f| set[f.rule].id.clone())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn an_absence_is_proof_only_where_nothing_can_be_missing() {
        assert_eq!(
            fired(false, false),
            [
                "dropped-later",
                "never-consumed",
                "nothing-earlier",
                "or-decided"
            ]
        );
        // Later events may be missing: `not before` is unknown, `not
        // after` still proven.
        assert_eq!(
            fired(false, true),
            ["dropped-later", "nothing-earlier", "or-decided"]
        );
        // Any event may be missing: no absence is proven.
        assert_eq!(fired(true, false), ["dropped-later", "or-decided"]);
    }
}

/// `nf.rule` tests the text of the firewall rule `--diag` named, with
/// `contains`; `nf.chain` is the chain holding that rule (a user-defined
/// one the packet jumped to); `{nf.rule}` says where the rule is.
#[test]
fn firewall_rule_fields_and_placeholder() {
    use nettrace::rules::eval::evaluate;
    use nettrace::rules::graph::LifeGraph;
    let rules = r#"
rule site.logged-drop { when nf.rule contains "--log-prefix" level warn message "logged: {nf.rule}" }
rule site.block-chain { when nf.chain == NT_BLOCK and nf.verdict == NF_DROP level error message "blocked in {nf.chain}" advice "a" }
rule site.no-rule { when probe ipt_do_table and not nf.rule contains "-j" level info message "unnamed" }
"#;
    let events = r#"
- {probe: ipt_do_table, ret: NF_DROP, nf: {table: filter, family: ipv4, hook: LOCAL_IN, chain: INPUT, rule: "-A NT_BLOCK -s 10.0.0.1/32 -j DROP", rule_chain: NT_BLOCK}, pkt: {proto: udp, src: "10.0.0.1:5000", dst: "10.0.0.2:9000"}}
"#;
    let (set, ctx, kallsyms) = one_packet(rules, events);
    let graph = LifeGraph::of(&ctx).with_symbols(&kallsyms);
    let fired: Vec<String> = evaluate(&set, &graph)
        .iter()
        .map(|f| set[f.rule].id.clone())
        .collect();
    assert_eq!(fired, ["site.block-chain"]);
    let logged = events.replace("-j DROP", "-j LOG --log-prefix drop");
    let (set, ctx, kallsyms) = one_packet(rules, &logged);
    let graph = LifeGraph::of(&ctx).with_symbols(&kallsyms);
    let fired: Vec<String> = evaluate(&set, &graph)
        .iter()
        .map(|f| set[f.rule].id.clone())
        .collect();
    assert_eq!(fired, ["site.logged-drop", "site.block-chain"]);
    let ev = &ctx.events[0];
    assert_eq!(
        ev.nf.as_ref().unwrap().rule.as_ref().unwrap().describe(),
        "`-A NT_BLOCK -s 10.0.0.1/32 -j LOG --log-prefix drop` (iptables-nft filter/NT_BLOCK rule 1)"
    );
}
