//! The default mode on the running kernel: one block per packet.

use crate::runner::{
    has, require, require_root, start, start_in_netns, start_with_env, stop_all, Cap,
};
use crate::scenario::{
    ping, send_across_cpus, send_udp, tcp_connect, Netns, PacketTap, Router, TwoHosts,
};
use std::time::Duration;

#[test]
fn ping_between_namespaces_gives_one_block_per_packet() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("life");
    let tracer = start(&["-t", "link", "-p", "icmp", "--addr", &net.a_addr]);
    let basic = start(&["-t", "link", "--basic", "-p", "icmp", "--addr", &net.a_addr]);
    let other = start(&["-t", "link", "-p", "icmp", "--addr", "198.19.255.253"]);
    assert!(ping(&net.a, &net.b_addr, 1));
    let request = format!("ICMP: {} -> {} ping request", net.a_addr, net.b_addr);
    tracer
        .wait_line(Duration::from_secs(30), |l| l.contains(&request))
        .expect("a block for the ping request");
    std::thread::sleep(Duration::from_secs(1));
    let [out, basic_out, other_out] = stop_all([tracer, basic, other]).map(|f| f.stdout);
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
    assert!(basic_out
        .iter()
        .any(|l| l.contains(&request) && l.contains("[net_dev_queue")));
    assert!(
        !basic_out.iter().any(|l| l.starts_with("*****")),
        "{basic_out:?}"
    );
    // Another address: nothing.
    assert!(
        !other_out.iter().any(|l| l.contains(&net.a_addr)),
        "{other_out:?}"
    );
}

/// The BPF side reads kernel memory with direct loads where the kernel
/// allows them (6.2+) and with probe reads elsewhere; NETTRACE_PROBE_READS=1
/// forces the latter. Two tracers see the same hits, so they must print the
/// same events: ICMP over IPv4 and IPv6, TCP with flags, UDP, the device
/// and the namespace (read through skb->dev). On a kernel without direct
/// loads both runs take the same path and the test still checks the parse.
#[test]
fn direct_loads_and_probe_reads_parse_alike() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("reads");
    let a_ns = net.a.inode();
    let flags = ["-t", "link", "--basic", "--detail", "--netns", &a_ns];
    let runs = [
        start(&flags),
        start_with_env(&[("NETTRACE_PROBE_READS", "1")], &flags),
    ];
    assert!(ping(&net.a, &net.b_addr, 1));
    assert!(ping(&net.a, "::1", 1));
    assert!(!tcp_connect(&net.a, &net.b_addr, 9));
    send_udp(&net.a, 4321, &net.b_addr, 9);
    std::thread::sleep(Duration::from_secs(2));
    let [direct, probed] = stop_all(runs);
    assert!(
        probed.stderr.contains("NETTRACE_PROBE_READS=1"),
        "{}",
        probed.stderr
    );
    // Everything but the timestamp: each program reads its own clock. Only
    // the test's own packets, by address: the namespace's IPv6
    // autoconfiguration may send before the second tracer is ready, from a
    // timer, in the name of whatever task that CPU was running.
    let own = |l: &&String| l.contains(net.a_addr.as_str()) || l.contains("::1 -> ::1");
    let events = |out: &[String]| {
        let mut v: Vec<String> = out
            .iter()
            .filter(own)
            .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest.to_string()))
            .collect();
        v.sort();
        v
    };
    let (direct, probed) = (events(&direct.stdout), events(&probed.stdout));
    for want in [
        format!("ICMP: {} -> {} ping request", net.a_addr, net.b_addr),
        "ICMPv6: ::1 -> ::1 ping request".to_string(),
        format!("-> {}:9 seq:", net.b_addr),
        format!("UDP: {}:4321 -> {}:9", net.a_addr, net.b_addr),
        format!("[ns:{a_ns}]"),
    ] {
        assert!(
            direct.iter().any(|l| l.contains(&want)),
            "{want} missing: {direct:#?}"
        );
    }
    assert_eq!(direct, probed);
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
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("filt");
    let elsewhere = Netns::new("filt-c");
    // `-t link`: the tracepoints every kernel has, and a fast start in the VMs.
    let base = ["-t", "link", "--basic", "--addr", &net.a_addr];
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
    let [in_a, in_c, current, short, long, syn] = stop_all(runs).map(|f| f.stdout);
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

/// The probe names of a block's event lines, in order.
fn probes_of(block: &[String]) -> Vec<&str> {
    block
        .iter()
        .filter(|l| l.starts_with('['))
        .filter_map(|l| l.split('[').nth(2)?.split(']').next())
        .map(str::trim)
        .collect()
}

/// Blocks of lifecycle output: header line, then event lines.
fn blocks(out: &[String]) -> Vec<Vec<String>> {
    out.split(|l| l.is_empty())
        .filter(|b| b.first().is_some_and(|h| h.starts_with("*****")))
        .map(|b| b.to_vec())
        .collect()
}

fn block_with<'a>(blocks: &'a [Vec<String>], needle: &str) -> &'a Vec<String> {
    blocks
        .iter()
        .filter(|b| b.iter().any(|l| l.contains(needle)))
        .max_by_key(|b| b.len())
        .unwrap_or_else(|| panic!("no block with {needle:?} in {blocks:#?}"))
}

/// A function-probe kernel: a ping shows its path through the IP and
/// ICMP functions in order, a packet socket's clone joins the block, and
/// `--ret` (only it) shows return values.
#[test]
fn function_path_clones_and_return_values() {
    if !require(Cap::Kprobe) {
        return;
    }
    let net = TwoHosts::new("fnpath");
    let _tap = PacketTap::open(&net.b, &net.b_if);
    let plain = start(&["-t", "ip,icmp", "-p", "icmp", "--addr", &net.a_addr]);
    let with_ret = start(&[
        "-t",
        "ip,icmp",
        "--ret",
        "--debug",
        "-p",
        "icmp",
        "--addr",
        &net.a_addr,
    ]);
    // The kernel's cookie search (kprobe.multi without the address
    // table) must give the same path.
    let searched = start_with_env(
        &[("NETTRACE_COOKIE_SEARCH", "1")],
        &[
            "-t",
            "ip,icmp",
            "--debug",
            "-p",
            "icmp",
            "--addr",
            &net.a_addr,
        ],
    );
    assert!(ping(&net.a, &net.b_addr, 1));
    std::thread::sleep(Duration::from_secs(2));
    let [plain, with_ret, searched] = stop_all([plain, with_ret, searched]);
    // kprobe.multi (6.12): the programs took every cookie from the
    // address table, none from the kernel's search.
    let debug = &with_ret.stderr;
    if std::env::var("NETTRACE_KERNEL_NAME").as_deref() == Ok("6.12") {
        assert!(debug.contains("functions through kprobe.multi"), "{debug}");
    }
    if debug.contains("functions through kprobe.multi") {
        let filled = debug
            .lines()
            .find_map(|l| {
                l.split_once("kprobe.multi cookie table: ")?
                    .1
                    .split(' ')
                    .next()
            })
            .unwrap_or_else(|| panic!("no cookie table in {debug}"));
        assert!(filled.parse::<u32>().is_ok_and(|n| n > 0), "{debug}");
        assert!(
            debug.contains("cookie table misses (answered by the kernel's search): 0\n"),
            "{debug}"
        );
        assert!(
            !searched.stderr.contains("kprobe.multi cookie table: "),
            "{}",
            searched.stderr
        );
        assert!(
            !searched
                .stderr
                .contains("cookie table misses (answered by the kernel's search): 0\n"),
            "every hit went to the kernel's search: {}",
            searched.stderr
        );
    }
    let (plain, with_ret) = (plain.stdout, with_ret.stdout);
    let request = format!("ICMP: {} -> {} ping request", net.a_addr, net.b_addr);
    // Sorted: each tracer reads its own clock, so events of two CPUs
    // close in time may order differently.
    let path = |out: &[String]| {
        let all = blocks(out);
        let mut probes: Vec<String> = probes_of(block_with(&all, &request))
            .into_iter()
            .map(String::from)
            .collect();
        probes.sort();
        probes
    };
    assert_eq!(
        path(&searched.stdout),
        path(&plain),
        "the kernel's cookie search gave another path"
    );
    let all = blocks(&plain);
    let block = block_with(&all, &request);
    let probes = probes_of(block);
    let want = ["ip_rcv", "ip_local_deliver", "icmp_rcv", "consume_skb"];
    let mut at = 0;
    for w in want {
        let pos = probes[at..]
            .iter()
            .position(|p| *p == w)
            .unwrap_or_else(|| panic!("{w} missing or out of order in {block:#?}"));
        at += pos;
    }
    // The packet socket on b's interface got a clone: two skbs in the
    // header, and the clone event in the block.
    let skbs: Vec<&str> = block[0]
        .trim_matches(|c| c == '*' || c == ' ')
        .split(',')
        .collect();
    assert!(skbs.len() >= 2, "no clone in the header: {block:#?}");
    assert!(
        probes.iter().any(|p| p.starts_with("skb_clone")),
        "{block:#?}"
    );
    assert!(
        !plain.iter().any(|l| l.contains("*return:")),
        "return values without --ret"
    );
    let ret_blocks = blocks(&with_ret);
    let ret_block = block_with(&ret_blocks, &request);
    let ip_rcv = ret_block
        .iter()
        .find(|l| l.contains("[ip_rcv "))
        .unwrap_or_else(|| panic!("no ip_rcv in {ret_block:#?}"));
    assert!(ip_rcv.contains("*return: 0"), "{ip_rcv}");
}

/// A function's exit is paired with its entry even when the task returns
/// on another CPU: a blocking TCP send sleeps in tcp_sendmsg_locked and is
/// moved to the second CPU before it can finish. Its event, with the
/// return value (the bytes sent), must still be printed, in kprobe and in
/// fentry mode.
#[test]
fn return_on_another_cpu_is_paired() {
    if !require(Cap::Kprobe) {
        return;
    }
    let ns = Netns::new("migr");
    let port = 5998;
    let port_arg = port.to_string();
    let flags = [
        "-t", "tcp-out", "--ret", "--basic", "-p", "tcp", "--port", &port_arg,
    ];
    let mut runs = vec![start(&flags)];
    if has(Cap::Fentry) {
        let mut fentry = flags.to_vec();
        fentry.extend(["--probe-mode", "fentry"]);
        runs.push(start(&fentry));
    }
    let bytes = 4_000_000;
    let report = send_across_cpus(&ns, port, bytes);
    assert_eq!(report.trim(), format!("sent {bytes}"), "{report}");
    std::thread::sleep(Duration::from_secs(2));
    for run in runs {
        let done = run.stop();
        let want = format!("*return: {bytes}");
        assert!(
            done.stdout
                .iter()
                .any(|l| l.contains("[tcp_sendmsg_locked") && l.contains(&want)),
            "no tcp_sendmsg_locked event returning {bytes}: {:#?}",
            done.stdout
                .iter()
                .filter(|l| l.contains("tcp_sendmsg_locked"))
                .collect::<Vec<_>>()
        );
    }
}

/// SNAT: the packet stays tracked after its source is rewritten, and its
/// block shows both addresses.
#[test]
fn snat_keeps_the_packet_tracked() {
    if !require(Cap::Kprobe) {
        return;
    }
    let net = Router::new("lsnat");
    net.masquerade();
    let tracer = start(&["-t", "ip", "-p", "icmp", "--saddr", &net.client_addr]);
    assert!(
        ping(&net.client, &net.server_addr, 1),
        "no reply through NAT"
    );
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
    let all = blocks(&out);
    let block = block_with(&all, &before);
    assert!(
        block.iter().any(|l| l.contains(&after)),
        "the rewritten packet is not in the block: {block:#?}"
    );
    let first_after = block.iter().position(|l| l.contains(&after)).unwrap();
    let last_before = block.iter().rposition(|l| l.contains(&before)).unwrap();
    assert!(last_before < first_after, "{block:#?}");
}

/// `-t` limits the probes to the chosen group.
#[test]
fn trace_group_limits_the_probes() {
    if !require(Cap::Kprobe) {
        return;
    }
    use nettrace::catalogue::table::probe;
    let net = TwoHosts::new("tgrp");
    let tracer = start(&["--basic", "-t", "icmp", "-p", "icmp", "--addr", &net.a_addr]);
    assert!(ping(&net.a, &net.b_addr, 1));
    std::thread::sleep(Duration::from_secs(1));
    let out = tracer.stop().stdout;
    let names = probes_of(&out);
    assert!(names.contains(&"icmp_rcv"), "{out:#?}");
    for n in names {
        let group = probe(n).map(|p| p.group).unwrap_or("?");
        assert!(
            group.starts_with("icmp"),
            "{n} ({group}) traced with -t icmp"
        );
    }
}
