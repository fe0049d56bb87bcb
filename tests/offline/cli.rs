//! Flags: bad values are refused with one line naming the flag and the
//! fix, exit code 2, before anything touches the kernel.

use crate::support::nettrace;
use nettrace::cli::filter::{
    build_filter, parse_netns, parse_pkt_len, parse_proto, parse_tcp_flags, FilterArgs,
};
use nettrace::vocab::proto::Proto;

#[test]
fn bad_values_exit_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--drop", "-s", "300.1.1.1"],
            "invalid address `300.1.1.1` for --saddr",
        ),
        (
            &["--drop", "-d", "fe80::zz"],
            "invalid address `fe80::zz` for --daddr",
        ),
        (
            &["--drop", "-p", "foo"],
            "unknown protocol `foo` for --proto",
        ),
        (
            &["--drop", "-P", "70000"],
            "invalid port `70000` for --port",
        ),
        (&["--drop", "-S", "-1"], "invalid port `-1` for --sport"),
        (&["--drop", "--pid", "abc"], "invalid pid `abc` for --pid"),
        (&["--hooks"], "--hooks goes with --diag"),
        (
            &["--monitor", "--drop"],
            "--drop and --monitor are different modes; pick one",
        ),
        (
            &["--monitor", "--diag"],
            "--diag and --monitor are different modes; pick one",
        ),
        (&["--journal"], "--journal goes with --monitor"),
        (
            &["--diag", "--rate-per-rule", "5"],
            "--rate-per-rule goes with --monitor",
        ),
        (
            &["--drop", "--rate-total", "5"],
            "--rate-total goes with --monitor",
        ),
        (
            &["--drop", "--metrics", "9100"],
            "--metrics goes with --monitor",
        ),
        (
            &["--drop", "--rules", "x"],
            "--rules/--no-default-rules goes with --diag or --monitor",
        ),
        (&["--drop", "--ret"], "--ret applies to tracing modes"),
        (&["--monitor", "-t", "ip"], "-t applies to tracing modes"),
        (
            &["replay", "x.ntrec", "--journal"],
            "--journal goes with --monitor",
        ),
        (&["replay", "x.ntrec", "--drop", "--basic"], "pick one"),
        (
            &["--drop", "--no-such-flag"],
            "unexpected argument '--no-such-flag'",
        ),
        (&["--drop-stack"], "--drop-stack goes with --drop"),
        (
            &["--basic", "-t", "nosuchgroup"],
            "unknown group or probe `nosuchgroup`",
        ),
        (&["--drop", "--basic"], "pick one"),
        (
            &["--probe-mode", "magic", "--basic"],
            "invalid value 'magic'",
        ),
        (
            &["--drop", "--netns", "abc"],
            "invalid namespace `abc` for --netns",
        ),
        (
            &["--drop", "--netns", "1", "--netns-current"],
            "cannot be used with",
        ),
        (
            &["--drop", "--pkt-len", "10-x"],
            "invalid length `10-x` for --pkt-len",
        ),
        (
            &["--drop", "--pkt-len", "200-100"],
            "minimum is above the maximum",
        ),
        (&["--drop", "--tcp-flags", "SX"], "invalid TCP flag `X`"),
        (&["--latency", "--func-stats"], "pick one"),
        (&["--latency", "--latency-summary"], "pick one"),
        (
            &["--min-latency", "100"],
            "--min-latency goes with --latency",
        ),
        (
            &["--latency-summary", "--min-latency", "100"],
            "--min-latency goes with --latency",
        ),
        (
            &["--latency-free"],
            "--latency-free goes with --latency or --latency-summary",
        ),
        (
            &["--drop", "--latency-show"],
            "--latency-show goes with the modes that print packets",
        ),
        (
            &["--basic", "--tiny-show"],
            "--tiny-show goes with the modes that print packets",
        ),
        (
            &["--trace-free", "ip_rcv"],
            "--trace-free goes with --latency or --latency-summary",
        ),
        (
            &["--basic", "--trace-matcher", "ip_rcv"],
            "--trace-matcher goes with the modes that follow packets",
        ),
        (
            &["--func-stats", "--trace-noclone"],
            "--trace-noclone goes with the modes that follow packets",
        ),
        (
            &["--latency", "--trace-stack", "ip_rcv"],
            "--trace-stack goes with the modes that print events",
        ),
        (
            &["--drop", "--trace-exclude", "ip_rcv"],
            "--trace-exclude goes with the modes that take -t",
        ),
        (
            &["--trace-stack", "no_such_fn"],
            "unknown group or probe `no_such_fn` for --trace-stack",
        ),
        (
            &["--latency", "--ret"],
            "--ret applies to modes that print probe hits",
        ),
        (
            &["--rtt", "--ret"],
            "--ret applies to modes that print probe hits",
        ),
        (
            &["--rtt", "-t", "tcp"],
            "--rtt and --rtt-detail watch tcp_ack_update_rtt only",
        ),
        (
            &["--sock", "--filter-srtt", "10"],
            "--filter-srtt goes with --rtt or --rtt-detail",
        ),
        (
            &["--latency", "--filter-minrtt", "10"],
            "--filter-minrtt goes with --rtt or --rtt-detail",
        ),
        (&["--rtt", "--sock"], "--rtt and --sock are different modes"),
        (
            &[
                "replay",
                "/nonexistent.ntrec",
                "--rtt",
                "--filter-srtt",
                "5",
            ],
            "a replay cannot take updates out of a recorded histogram",
        ),
        (
            &["--rtt", "--detail"],
            "--detail applies to modes that print packets",
        ),
        (
            &["--func-stats", "--detail"],
            "--detail applies to modes that print packets",
        ),
        (&["-t", "all"], "-t all without a filter"),
        (
            &["--basic", "-t", "all"],
            "add a filter (-s/-d/-p/-P...) or --force",
        ),
        (
            &["-t", "link", "--trace-exclude", "link"],
            "no probe is left to attach",
        ),
        (
            &["replay", "x.ntrec", "--func-stats", "--latency-show"],
            "--latency-show goes with",
        ),
        (
            &["--drop", "--tcp-flags", "syn,foo"],
            "invalid TCP flag `foo`",
        ),
        (
            &["--drop", "--snaplen", "100"],
            "--snaplen sets how many bytes --pcap captures",
        ),
        (
            &["--drop", "--pcap", "x.pcapng", "--snaplen", "0"],
            "--snaplen 0: give 1 to 1536 bytes",
        ),
        (
            &["--drop", "--pcap", "x.pcapng", "--snaplen", "9000"],
            "--snaplen 9000: give 1 to 1536 bytes",
        ),
        (
            &["--latency", "--pcap", "x.pcapng"],
            "capture packets in the lifecycle, --diag, --drop, --basic and --monitor modes, not with --latency",
        ),
        (
            &["--func-stats", "--pcap", "x.pcapng"],
            "not with --func-stats",
        ),
        (
            &["--check", "--pcap", "x.pcapng"],
            "--check traces nothing, so --pcap would write nothing",
        ),
        (
            &["--drop", "--record-bytes"],
            "--record-bytes puts the packets' bytes into a recording",
        ),
    ];
    for (args, want) in cases {
        let (code, stdout, stderr) = nettrace(args);
        assert_eq!(code, 2, "{args:?}: exit {code}, stderr {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed data: {stdout}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: not one line: {stderr}"
        );
        assert!(
            stderr.contains(want),
            "{args:?}: {want:?} not in {stderr:?}"
        );
        assert!(stderr.starts_with("nettrace: "), "{stderr}");
    }
}

#[test]
fn help_explains_modes_and_exit_codes() {
    let (code, stdout, _) = nettrace(&["--help"]);
    assert_eq!(code, 0);
    for want in [
        "--drop",
        "--drop-stack",
        "--saddr",
        "--check",
        "Exit codes",
        "--btf",
        "--rtt",
        "--sock",
    ] {
        assert!(stdout.contains(want), "--help lacks {want}");
    }
}

#[test]
fn version_names_the_commit_libbpf_and_the_bpf_objects() {
    let (code, stdout, _) = nettrace(&["--version"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("nettrace {}", env!("CARGO_PKG_VERSION")));
    let value = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no `{key}` in {stdout}"))
    };
    let rev = value("git revision: ");
    assert!(
        rev == "unknown" || (rev.len() == 12 && rev.chars().all(|c| c.is_ascii_hexdigit())),
        "{rev}"
    );
    let (major, minor) = value("libbpf: ").split_once('.').unwrap();
    assert!(major.parse::<u32>().unwrap() >= 1 && minor.parse::<u32>().is_ok());
    let objects = value("BPF objects: ");
    let (hash, probes) = objects.split_once(' ').unwrap();
    assert!(hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        probes,
        format!("({} probes)", nettrace::catalogue::table::PROBES.len())
    );
}

/// The man page and the completions name every long flag of --help, and
/// the bash completion parses.
#[test]
fn generated_man_page_and_completions_follow_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = nettrace(&["generate", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let (man, bash, zsh, fish) = (
        read("nettrace.8"),
        read("nettrace.bash"),
        read("_nettrace"),
        read("nettrace.fish"),
    );
    assert!(
        man.starts_with(".ie") || man.contains(".TH nettrace 8"),
        "{man}"
    );
    assert!(man.contains("Exit codes"));
    let (_, help, _) = nettrace(&["--help"]);
    let flags: std::collections::BTreeSet<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches([',', '.', ')', ';']))
        .filter(|w| w[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    assert!(flags.contains("--sock") && flags.contains("--rtt-detail"));
    for flag in &flags {
        let name = &flag[2..];
        assert!(
            man.contains(&format!("\\-\\-{}", name.replace('-', "\\-"))),
            "man page lacks {flag}"
        );
        assert!(bash.contains(*flag), "bash lacks {flag}");
        assert!(zsh.contains(*flag), "zsh lacks {flag}");
        assert!(fish.contains(&format!("-l {name}")), "fish lacks {flag}");
    }
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(dir.path().join("nettrace.bash"))
        .status()
        .unwrap();
    assert!(syntax.success());
    let rules = read("nettrace-rules.5");
    assert!(rules.contains(".TH NETTRACE-RULES 5"), "{rules}");
    assert!(
        rules.contains("rules lint"),
        "the page carries docs/rules.md"
    );
    let reasons = read("nettrace-drop-reasons.7");
    assert!(reasons.contains(".B NETFILTER_DROP\n("), "{reasons}");
    // Where groff is installed (CI's package test installs it), every
    // page formats without a warning.
    if let Ok(out) = std::process::Command::new("groff")
        .args(["-t", "-man", "-ww", "-z"])
        .args(
            ["nettrace.8", "nettrace-rules.5", "nettrace-drop-reasons.7"]
                .map(|f| dir.path().join(f)),
        )
        .output()
    {
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `drop-reasons` with a kernel's BTF lists that kernel's reasons, each
/// explained by the pack.
#[test]
fn drop_reasons_lists_a_kernels_reasons_with_the_packs_explanation() {
    let btf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/btf/enums-6.1.btf"
    );
    let (code, stdout, stderr) = nettrace(&["drop-reasons", "--btf", btf]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\nNETFILTER_DROP ("), "{stdout}");
    assert!(!stdout.contains("NOT_DROPPED_YET"), "{stdout}");
    let (code, _, stderr) = nettrace(&["drop-reasons", "--btf", "/nonexistent.btf"]);
    assert_eq!(code, 4, "{stderr}");
}

#[test]
fn list_works_without_root_and_marks_default_off() {
    let (code, stdout, _) = nettrace(&["-t", "?"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("conntrack: connection tracking internals [off by default]"));
    assert!(stdout.contains("tracepoint kfree_skb"));
}

#[test]
fn filter_values_reach_the_bpf_filter() {
    let f = build_filter(&FilterArgs {
        saddr: Some("10.1.2.3"),
        daddr: Some("fd00::1"),
        port: Some("53"),
        proto: Some("udp"),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(&f.saddr[..4], &[10, 1, 2, 3]);
    assert_eq!(f.saddr_family, 4);
    assert_eq!(f.daddr_family, 6);
    assert_eq!(f.daddr[0], 0xfd);
    assert_eq!(f.daddr[15], 1);
    assert_eq!(f.port, 53);
    assert_eq!(f.l4_proto, 17);
    assert_eq!(f.flags, 1 | 2 | (1 << 5) | (1 << 7));
    assert_eq!(parse_proto("ARP"), Ok(Proto::L3(0x0806)));
    assert_eq!(parse_proto("icmpv6"), Ok(Proto::L4(58)));
    assert_eq!(build_filter(&FilterArgs::default()).unwrap().flags, 0);
}

#[test]
fn trace_selection() {
    use nettrace::catalogue::table::PROBES;
    use nettrace::load::select::select;
    let all = select(Some("all")).unwrap();
    assert_eq!(all.len(), PROBES.len());
    let default = select(None).unwrap();
    assert!(default.len() < all.len());
    assert!(!default
        .iter()
        .any(|p| p.group == "conntrack" && p.name != "tcp_in_window"));
    let named = select(Some("conntrack,ip_rcv")).unwrap();
    assert!(named.iter().any(|p| p.name == "nf_conntrack_in"));
    assert!(named.iter().any(|p| p.name == "ip_rcv"));
    assert!(!named.iter().any(|p| p.name == "ip_output"));
    // Naming a parent group keeps its default-off children off.
    let netfilter = select(Some("netfilter")).unwrap();
    assert!(netfilter.iter().any(|p| p.name == "nf_hook_slow"));
    assert!(!netfilter.iter().any(|p| p.name == "nf_conntrack_in"));
}

#[test]
fn netns_length_and_tcp_flag_filters() {
    assert_eq!(parse_netns("4026531840"), Ok(4026531840));
    assert_eq!(parse_netns("net:[4026532281]"), Ok(4026532281));
    assert!(parse_netns("0").is_err());
    assert_eq!(parse_pkt_len("84"), Ok((84, 84)));
    assert_eq!(parse_pkt_len("64-1500"), Ok((64, 1500)));
    assert_eq!(parse_tcp_flags("S"), Ok(0x02));
    assert_eq!(parse_tcp_flags("SA"), Ok(0x12));
    assert_eq!(parse_tcp_flags("syn,ack"), Ok(0x12));
    assert_eq!(parse_tcp_flags("rst"), Ok(0x04));
    assert_eq!(parse_tcp_flags("FPU"), Ok(0x29));
    let f = build_filter(&FilterArgs {
        netns_current: Some(7),
        pkt_len: Some("100-200"),
        tcp_flags: Some("R"),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (f.netns, f.len_min, f.len_max, f.tcp_flags),
        (7, 100, 200, 4)
    );
    assert_eq!(f.flags, (1 << 9) | (1 << 10) | (1 << 11));
}

/// Broken rules stop a `--diag` run before anything touches the kernel:
/// exit 2 naming the mistake, with or without privileges.
#[test]
fn broken_rules_stop_the_run_before_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.rules"),
        "rule bad.one { when probe nf_hok_slow level info message \"m\" }\n",
    )
    .unwrap();
    let (code, _, stderr) = nettrace(&["--diag", "--rules", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("E0110") && stderr.contains("nf_hok_slow"),
        "{stderr}"
    );
    assert!(!stderr.contains("begin trace"), "{stderr}");
}
