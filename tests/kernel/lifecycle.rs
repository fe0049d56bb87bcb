//! The default mode on the running kernel: one block per packet.

use crate::runner::{require_root, start, start_in_netns};
use crate::scenario::{ping, tcp_connect, Netns, TwoHosts};
use std::time::Duration;

#[test]
fn ping_between_namespaces_gives_one_block_per_packet() {
    if !require_root("ping_gives_one_block_per_packet") {
        return;
    }
    let net = TwoHosts::new("life");
    let tracer = start(&["-p", "icmp", "--addr", &net.a_addr]);
    let basic = start(&["--basic", "-p", "icmp", "--addr", &net.a_addr]);
    let other = start(&["-p", "icmp", "--addr", "198.19.255.253"]);
    assert!(ping(&net.a, &net.b_addr, 1));
    let request = format!("ICMP: {} -> {} ping request", net.a_addr, net.b_addr);
    tracer
        .wait_line(Duration::from_secs(30), |l| l.contains(&request))
        .expect("a block for the ping request");
    std::thread::sleep(Duration::from_secs(1));
    let out = tracer.stop().stdout;
    // The block holding the request: a header naming the skb, then events
    // in time order from transmit to receive, ending with the free.
    // Without clone probes (tracepoint-only kernels) the sender's copy of
    // the request can stand in a block of its own: take the fullest block.
    let block_with_request = out
        .split(|l| l.is_empty())
        .filter(|b| b.iter().any(|l| l.contains(&request)))
        .max_by_key(|b| b.len())
        .expect("request block");
    assert!(
        block_with_request[0].starts_with("***************** ")
            && block_with_request[0].ends_with(" ***************"),
        "no context header: {block_with_request:?}"
    );
    let probes: Vec<&str> = block_with_request
        .iter()
        .skip(1)
        .filter_map(|l| l.split('[').nth(2)?.split(']').next())
        .map(str::trim)
        .collect();
    for want in [
        "net_dev_queue",
        "net_dev_xmit",
        "__netif_receive_skb_core",
        "consume_skb",
    ] {
        assert!(
            probes.contains(&want),
            "{want} missing from {block_with_request:?}"
        );
    }
    let pos = |p: &str| probes.iter().position(|x| *x == p).unwrap();
    assert!(
        pos("net_dev_queue") < pos("__netif_receive_skb_core"),
        "{probes:?}"
    );
    // --basic: the same events, no blocks.
    let basic_out = basic.stop().stdout;
    assert!(basic_out
        .iter()
        .any(|l| l.contains(&request) && l.contains("[net_dev_queue")));
    assert!(
        !basic_out.iter().any(|l| l.starts_with("*****")),
        "{basic_out:?}"
    );
    // Another address: nothing.
    let other_out = other.stop().stdout;
    assert!(
        !other_out.iter().any(|l| l.contains(&net.a_addr)),
        "{other_out:?}"
    );
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Events printed by a `--basic` run that name `addr`.
fn lines_with(out: &[String], addr: &str) -> Vec<String> {
    out.iter().filter(|l| l.contains(addr)).cloned().collect()
}

#[test]
fn netns_length_and_tcp_flag_filters() {
    if !require_root("netns_length_and_tcp_flag_filters") {
        return;
    }
    let net = TwoHosts::new("filt");
    let elsewhere = Netns::new("filt-c");
    let base = ["--basic", "--addr", &net.a_addr];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let (a_ns, c_ns) = (net.a.inode(), elsewhere.inode());
    let in_a = with(&["-p", "icmp", "--netns", &a_ns]);
    let in_c = with(&["-p", "icmp", "--netns", &c_ns]);
    let short = with(&["-p", "icmp", "--pkt-len", "1-200"]);
    let long = with(&["-p", "icmp", "--pkt-len", "1000-2000"]);
    let syn = with(&["--tcp-flags", "S"]);
    let runs = [
        start(&args(&in_a)),
        start(&args(&in_c)),
        start_in_netns(
            &net.a.name,
            &args(&with(&["-p", "icmp", "--netns-current"])),
        ),
        start(&args(&short)),
        start(&args(&long)),
        start(&args(&syn)),
    ];
    assert!(ping(&net.a, &net.b_addr, 1));
    // Nothing listens: the SYN is answered by a reset, which the SYN
    // filter must leave out.
    assert!(!tcp_connect(&net.a, &net.b_addr, 9));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let [in_a, in_c, current, short, long, syn] = runs.map(|r| r.stop().stdout);
    let a = &net.a_addr;
    assert!(!lines_with(&in_a, a).is_empty(), "--netns of a: nothing");
    assert!(
        lines_with(&in_c, a).is_empty(),
        "--netns elsewhere: {in_c:?}"
    );
    assert!(
        !lines_with(&current, a).is_empty(),
        "--netns-current in a: nothing"
    );
    // Every event --netns printed came from namespace a's devices: the
    // receive side (in b) is absent.
    assert!(
        !in_a
            .iter()
            .any(|l| l.contains("__netif_receive_skb_core") && l.contains("ping request")),
        "{in_a:?}"
    );
    assert!(
        !lines_with(&short, a).is_empty(),
        "--pkt-len 1-200: nothing"
    );
    assert!(
        lines_with(&long, a).is_empty(),
        "--pkt-len 1000-2000: {long:?}"
    );
    let syn_lines = lines_with(&syn, a);
    assert!(!syn_lines.is_empty(), "--tcp-flags S: nothing");
    for l in &syn_lines {
        let flags = l.split("flags:").nth(1).unwrap_or("");
        assert!(flags.contains('S'), "--tcp-flags S printed {l}");
    }
}
