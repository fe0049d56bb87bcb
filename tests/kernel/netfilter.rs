//! Netfilter facts on real packets (function probes: the VM kernels): the
//! hook and family on nf_hook_slow, table and chain on nft_do_chain /
//! ipt_do_table, the verdict, and the findings of the seed's example.

use crate::runner::{require, start, start_in_netns, Cap};
use crate::scenario::{drop_icmp_from, ping, send_udp, Bridge, Netns, Router, TwoHosts};
use std::time::Duration;

/// The router drops ICMP from the client in FORWARD (with `iptables`, the
/// nft flavour, or `iptables-legacy`); `--diag` runs until that error.
fn forward_drop_diagnosis(tag: &str, iptables: &str, extra: &[&str]) -> (Router, String) {
    let net = Router::new(tag);
    net.drop_client_icmp(iptables);
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
    if !require(Cap::Kprobe) {
        return;
    }
    let (net, out) = forward_drop_diagnosis("nffwd", "iptables", &["--hooks"]);
    assert!(out.contains("*ipv4 in chain: FORWARD*"), "{out}");
    // Before 5.11 nft's table and chain types have no BTF to read them by.
    let names = crate::firewall::nft_names_chains();
    assert!(
        !names || out.contains("table:filter, chain:FORWARD*"),
        "{out}"
    );
    assert!(out.contains("*verdict: NF_DROP*"), "{out}");
    // --diag names the rule the scenario wrote.
    if names {
        let rule = format!(
            "packet is dropped by iptables/iptables-nft: `-A FORWARD -s {}/32 -p icmp -j DROP` (iptables-nft filter/FORWARD rule 1)",
            net.client_addr
        );
        assert!(out.contains(&rule), "{rule}\n{out}");
    }
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
        !crate::runner::kernel_has_drop_reasons()
            || out.contains("    drop reason:\n        NETFILTER_DROP"),
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
    if !require(Cap::Kprobe) {
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
    let names = crate::firewall::nft_names_chains();
    assert!(
        !names || out.contains("*nftables table:ntt_site, chain:guard_in*"),
        "{out}"
    );
    if names {
        assert!(
            out.contains("`udp dport 9000 drop` (nft inet ntt_site/guard_in rule 1, handle"),
            "{out}"
        );
    }
    assert!(
        out.contains("ERROR happens in nft_do_chain(nf-core):"),
        "{out}"
    );
}

#[test]
fn masquerade_is_reported_and_both_addresses_are_in_one_block() {
    if !require(Cap::Kprobe) {
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
    if !require(Cap::Kprobe) {
        return;
    }
    let have_legacy = std::process::Command::new("iptables-legacy")
        .arg("-V")
        .output()
        .is_ok();
    // tools/setup installs it (Debian's iptables package): no profile
    // expects this skip, so CI fails without it.
    if !have_legacy {
        crate::runner::skip("no iptables-legacy", false);
        return;
    }
    let (net, out) = forward_drop_diagnosis("nfleg", "iptables-legacy", &[]);
    // The legacy walk needs no table name: every kernel names the rule.
    let rule = format!(
        "`-A FORWARD -s {}/32 -p icmp -j DROP` (iptables-legacy filter/FORWARD rule 1)",
        net.client_addr
    );
    assert!(out.contains(&rule), "{rule}\n{out}");
    assert!(
        out.contains("*iptables table:filter, chain:FORWARD*"),
        "{out}"
    );
    assert!(
        out.contains("ERROR happens in ipt_do_table(nf-core):"),
        "{out}"
    );
}

#[test]
fn bridged_packet_dropped_by_iptables_shows_bridge_and_ipv4_hooks() {
    if !require(Cap::Kprobe) {
        return;
    }
    // br_netfilter (loaded by the VM bench) hands bridged IPv4 to the
    // iptables FORWARD chain of the bridge's namespace.
    let net = Bridge::new("nfbr");
    net.switch
        .exec(&["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"]);
    drop_icmp_from(&net.switch, "iptables", &net.a_addr);
    let tracer = start(&[
        "-t",
        "bridge,netfilter",
        "--diag",
        "-p",
        "icmp",
        "--saddr",
        &net.a_addr,
    ]);
    assert!(!ping(&net.a, &net.b_addr, 1), "the bridge forwarded it");
    let done = tracer
        .wait_exit(Duration::from_secs(60))
        .expect("nettrace --diag did not stop after the error");
    let out = done.stdout.join("\n");
    assert!(out.contains("br_nf_pre_routing"), "{out}");
    assert!(out.contains("*bridge in chain: PRE_ROUTING*"), "{out}");
    // 6.8 merged br_nf_forward_ip and br_nf_forward_arp into br_nf_forward.
    assert!(
        out.contains("br_nf_forward_ip") || out.contains("br_nf_forward "),
        "{out}"
    );
    assert!(out.contains("*bridge in chain: FORWARD*"), "{out}");
    assert!(out.contains("*ipv4 in chain: FORWARD*"), "{out}");
    assert!(
        out.contains("ERROR happens in nf_hook_slow(nf-core):"),
        "{out}"
    );
    if crate::runner::kernel_has_drop_reasons() {
        assert!(
            out.contains("    drop reason:\n        NETFILTER_DROP"),
            "{out}"
        );
    }
}

/// Python run inside a namespace: a loopback TCP connection, then a
/// segment forged on it with a sequence number a gigabyte past what the
/// receiver's window allows (sequence numbers read with TCP_REPAIR).
const OUT_OF_WINDOW: &str = r#"
import socket, struct, sys
port = int(sys.argv[1])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(1)
c = socket.create_connection(("127.0.0.1", port)); s, _ = srv.accept()
c.send(b"x"); s.recv(1); s.send(b"y"); c.recv(1)
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ = 19, 20, 21
c.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
c.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, 2)
snd = c.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ) & 0xffffffff
c.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, 1)
rcv = c.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ) & 0xffffffff
c.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, -1)
lo = socket.inet_aton("127.0.0.1")
payload = b"out-of-window"
seq = (snd + 0x40000000) & 0xffffffff
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
tcp = struct.pack("!HHIIBBHHH", c.getsockname()[1], port, seq, rcv, 5 << 4, 0x18, 512, 0, 0) + payload
pseudo = lo + lo + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, socket.IPPROTO_TCP, 0, lo, lo)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
raw.sendto(ip + tcp, ("127.0.0.1", 0))
"#;

#[test]
fn conntrack_window_failure_is_diagnosed() {
    if !require(Cap::Kprobe) {
        return;
    }
    let ns = Netns::new("ctwin");
    let port = "9411";
    // Dropping ctstate INVALID is what makes a window failure lose packets.
    ns.exec(&[
        "iptables",
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        port,
        "-m",
        "conntrack",
        "--ctstate",
        "INVALID",
        "-j",
        "DROP",
    ]);
    let tracer = start_in_netns(
        &ns.name,
        &[
            "-t",
            "conntrack,netfilter",
            "--diag",
            "--netns-current",
            "-p",
            "tcp",
            "--dport",
            port,
        ],
    );
    ns.exec(&["python3", "-c", OUT_OF_WINDOW, port]);
    let done = tracer
        .wait_exit(Duration::from_secs(60))
        .expect("nettrace --diag did not stop after the INVALID drop");
    let out = done.stdout.join("\n");
    assert!(
        out.contains("[nf_conntrack_tcp_packet] TCP: 127.0.0.1:")
            && out.contains("*verdict: CT_INVALID*"),
        "{out}"
    );
    assert!(
        out.contains("WARNING happens in nf_conntrack_tcp_packet(conntrack):"),
        "{out}"
    );
    assert!(
        out.contains("leaves it untracked: ctstate INVALID"),
        "{out}"
    );
    assert!(
        !crate::runner::kernel_has_drop_reasons()
            || out.contains("    drop reason:\n        NETFILTER_DROP"),
        "{out}"
    );
}
