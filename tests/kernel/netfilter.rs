//! Netfilter facts on real packets (function probes: the VM kernels): the
//! hook and family on nf_hook_slow, table and chain on nft_do_chain /
//! ipt_do_table, the verdict, and the findings of the seed's example.

use crate::runner::{require, start, Cap};
use crate::scenario::{ping, send_udp, Router, TwoHosts};
use std::time::Duration;

/// The router drops ICMP from the client in FORWARD (with `iptables`, the
/// nft flavour, or `iptables-legacy`); `--diag` runs until that error.
fn forward_drop_diagnosis(tag: &str, iptables: &str, extra: &[&str]) -> (Router, String) {
    let net = Router::new(tag);
    net.router.exec(&[
        iptables,
        "-A",
        "FORWARD",
        "-p",
        "icmp",
        "-s",
        &net.client_addr,
        "-j",
        "DROP",
    ]);
    let mut args = vec![
        "-t",
        "netfilter,ip",
        "--diag",
        "-p",
        "icmp",
        "--saddr",
        &net.client_addr,
    ];
    args.extend_from_slice(extra);
    let tracer = start(&args);
    assert!(!ping(&net.client, &net.server_addr, 1));
    let done = tracer
        .wait_exit(Duration::from_secs(60))
        .expect("nettrace --diag did not stop after the error");
    let out = done.stdout.join("\n");
    (net, out)
}

#[test]
fn forward_drop_names_hook_table_chain_and_verdict() {
    if !require(
        "forward_drop_names_hook_table_chain_and_verdict",
        Cap::Kprobe,
    ) {
        return;
    }
    let (_net, out) = forward_drop_diagnosis("nffwd", "iptables", &["--hooks"]);
    assert!(out.contains("*ipv4 in chain: FORWARD*"), "{out}");
    assert!(out.contains("table:filter, chain:FORWARD*"), "{out}");
    assert!(out.contains("*verdict: NF_DROP*"), "{out}");
    assert!(
        out.contains("ERROR happens in nf_hook_slow(nf-core):"),
        "{out}"
    );
    assert!(
        out.contains("ERROR happens in nft_do_chain(nf-core):")
            || out.contains("ERROR happens in ipt_do_table(nf-core):"),
        "{out}"
    );
    assert!(
        out.contains("    drop reason:\n        NETFILTER_DROP"),
        "{out}"
    );
    assert!(
        out.contains("packet is dropped by netfilter (NF_DROP)"),
        "{out}"
    );
    // --hooks: the iptables/nftables hook function of the family is blamed.
    assert!(
        out.contains("    following hook functions are blamed:\n"),
        "{out}"
    );
    assert!(
        out.contains("        nft_do_chain_ipv4") || out.contains("        iptable_filter_hook"),
        "{out}"
    );
}

#[test]
fn nft_rule_made_with_nft_is_named_as_created() {
    if !require("nft_rule_made_with_nft_is_named_as_created", Cap::Kprobe) {
        return;
    }
    let net = TwoHosts::new("nftin");
    for cmd in [
        "add table inet ntt_site",
        "add chain inet ntt_site guard_in { type filter hook input priority 0 ; }",
        "add rule inet ntt_site guard_in udp dport 9000 drop",
    ] {
        let mut args = vec!["nft"];
        args.extend(cmd.split(' '));
        net.b.exec(&args);
    }
    let tracer = start(&[
        "-t",
        "netfilter",
        "--diag",
        "-p",
        "udp",
        "--addr",
        &net.a_addr,
    ]);
    send_udp(&net.a, 5003, &net.b_addr, 9000);
    let done = tracer
        .wait_exit(Duration::from_secs(60))
        .expect("nettrace --diag did not stop after the error");
    let out = done.stdout.join("\n");
    assert!(
        out.contains("*nftables table:ntt_site, chain:guard_in*"),
        "{out}"
    );
    assert!(
        out.contains("ERROR happens in nft_do_chain(nf-core):"),
        "{out}"
    );
}

#[test]
fn masquerade_is_reported_and_both_addresses_are_in_one_block() {
    if !require("masquerade_is_reported", Cap::Kprobe) {
        return;
    }
    let net = Router::new("nfnat");
    net.masquerade();
    let tracer = start(&[
        "-t",
        "netfilter,ip",
        "--diag",
        "--diag-keep",
        "-p",
        "icmp",
        "--saddr",
        &net.client_addr,
    ]);
    assert!(ping(&net.client, &net.server_addr, 1));
    std::thread::sleep(Duration::from_secs(2));
    let out = tracer.stop().stdout;
    let before = format!(
        "ICMP: {} -> {} ping request",
        net.client_addr, net.server_addr
    );
    let after = format!(
        "ICMP: {} -> {} ping request",
        net.router_outside, net.server_addr
    );
    let block = out
        .split(|l| l.starts_with("*****"))
        .find(|b| b.iter().any(|l| l.contains(&before)))
        .unwrap_or_else(|| panic!("no block for the request: {out:#?}"));
    assert!(block.iter().any(|l| l.contains(&after)), "{block:#?}");
    assert!(
        block
            .iter()
            .any(|l| l.contains("*NAT happens (packet address will change)*")),
        "{block:#?}"
    );
    assert!(
        block
            .iter()
            .any(|l| l.contains("WARNING happens in nf_nat_manip_pkt")),
        "{block:#?}"
    );
}

#[test]
fn iptables_legacy_drop_names_its_table_and_chain() {
    if !require(
        "iptables_legacy_drop_names_its_table_and_chain",
        Cap::Kprobe,
    ) {
        return;
    }
    let have_legacy = std::process::Command::new("iptables-legacy")
        .arg("-V")
        .output()
        .is_ok();
    // tools/setup installs it (Debian's iptables package): CI must have it.
    assert!(
        have_legacy || std::env::var_os("CI").is_none(),
        "iptables-legacy missing in CI"
    );
    if !have_legacy {
        eprintln!("SKIPPED: iptables_legacy_drop_names_its_table_and_chain (no iptables-legacy)");
        return;
    }
    let (_net, out) = forward_drop_diagnosis("nfleg", "iptables-legacy", &[]);
    assert!(
        out.contains("*iptables table:filter, chain:FORWARD*"),
        "{out}"
    );
    assert!(
        out.contains("ERROR happens in ipt_do_table(nf-core):"),
        "{out}"
    );
}
