//! The modes beyond the lifecycle: latency (per packet and as a
//! histogram), function statistics and the trace controls, on real
//! traffic with real delay.

use crate::runner::{require, require_root, start, stop_all, Cap};
use crate::scenario::{netem_delay, ping, udp_left_in_queue, TwoHosts};
use std::time::Duration;

/// `latency: 31.204ms (net_dev_queue -> ...)` → nanoseconds.
fn latency_ns(line: &str) -> Option<f64> {
    crate::runner::duration_ns(line.split("latency: ").nth(1)?.split(' ').next()?)
}

/// netem delays a's transmit by 30 ms: every request's span covers it,
/// and `--min-latency` keeps the undelayed replies out.
#[test]
fn latency_covers_a_netem_delay() {
    if !require(Cap::Netem) {
        return;
    }
    let net = TwoHosts::new("lat");
    netem_delay(&net.a, &net.a_if, 30);
    let a = &net.a_addr;
    let all = start(&["--latency", "-p", "icmp", "--addr", a]);
    let slow = start(&[
        "--latency",
        "-p",
        "icmp",
        "--addr",
        a,
        "--min-latency",
        "20000",
    ]);
    let summary = start(&["--latency-summary", "-p", "icmp", "--addr", a]);
    assert!(ping(&net.a, &net.b_addr, 3));
    std::thread::sleep(Duration::from_secs(2));
    let [all, slow, summary] = stop_all([all, slow, summary]);
    let request = format!("ICMP: {a} -> {} ping request", net.b_addr);
    let reply = format!("ICMP: {} -> {a} ping reply", net.b_addr);
    let requests: Vec<f64> = all
        .stdout
        .iter()
        .filter(|l| l.contains(&request))
        .filter_map(|l| latency_ns(l))
        .collect();
    assert!(requests.len() >= 3, "{:#?}", all.stdout);
    assert!(
        requests.iter().all(|ns| *ns >= 30e6),
        "a request faster than the 30 ms delay: {:#?}",
        all.stdout
    );
    assert!(
        all.stdout.iter().any(|l| l.contains(&reply)),
        "no reply span: {:#?}",
        all.stdout
    );
    // --min-latency 20 ms: the requests, not the replies.
    assert!(slow.stdout.iter().any(|l| l.contains(&request)));
    assert!(
        slow.stdout
            .iter()
            .filter_map(|l| latency_ns(l))
            .all(|ns| ns >= 20e6),
        "{:#?}",
        slow.stdout
    );
    assert!(
        !slow.stdout.iter().any(|l| l.contains(&reply)),
        "{:#?}",
        slow.stdout
    );
    // The histogram: the requests in the 32-65 ms slot (30 ms and the
    // rest of the path), the whole run's maximum above 30 ms.
    let total = summary
        .stdout
        .iter()
        .find(|l| l.starts_with("packet latency in all"))
        .unwrap_or_else(|| panic!("no summary: {:#?}", summary.stdout));
    let max = total
        .split("max ")
        .nth(1)
        .and_then(|m| latency_ns(&format!("latency: {}", m.split(',').next().unwrap())))
        .unwrap_or_else(|| panic!("no max in {total}"));
    assert!(max >= 30e6, "{total}");
    assert!(
        summary
            .stdout
            .iter()
            .any(|l| l.trim_start().starts_with("16384 -> 32767")
                || l.trim_start().starts_with("32768 -> 65535")),
        "{:#?}",
        summary.stdout
    );
}

/// Datagrams left 400 ms in a socket's receive queue, then dropped when
/// the socket closes: their spans end at their last event before the drop
/// (the receive), or, with --latency-free, at the drop, after the wait.
/// Runs on tracepoints alone.
#[test]
fn latency_ends_before_the_free_or_at_it() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("latq");
    let filter = ["-p", "udp", "--addr", &net.a_addr, "--dport", "7001"];
    let mut spans = vec!["--latency"];
    spans.extend_from_slice(&filter);
    let mut to_free = spans.clone();
    to_free.push("--latency-free");
    let runs = [start(&spans), start(&to_free)];
    udp_left_in_queue(&net.a, &net.b, &net.b_addr, 7001, 2, 400);
    std::thread::sleep(Duration::from_secs(1));
    let [spans, to_free] = stop_all(runs);
    let udp = format!("UDP: {}:4000 -> {}:7001", net.a_addr, net.b_addr);
    let lines = |run: &crate::runner::Finished| -> Vec<(String, f64)> {
        run.stdout
            .iter()
            .filter(|l| l.contains(&udp))
            .filter_map(|l| Some((l.clone(), latency_ns(l)?)))
            .collect()
    };
    let (spans, to_free) = (lines(&spans), lines(&to_free));
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert_eq!(to_free.len(), 2, "{to_free:#?}");
    assert!(spans.iter().all(|(_, ns)| *ns < 300e6), "{spans:#?}");
    assert!(
        to_free
            .iter()
            .all(|(l, ns)| *ns >= 300e6 && l.contains("-> kfree_skb), dropped")),
        "{to_free:#?}"
    );
}

/// Hits per probe, counted in the kernel: at least one per ping on each
/// side's transmit, with a filter (parsed) and without (not parsed).
#[test]
fn func_stats_counts_probe_hits() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("fstat");
    let args = [
        "--func-stats",
        "-t",
        "link",
        "-p",
        "icmp",
        "--addr",
        &net.a_addr,
    ];
    let filtered = start(&args);
    let json = start(&[&args[..], &["--output", "json"]].concat());
    let unfiltered = start(&["--func-stats", "-t", "link"]);
    assert!(ping(&net.a, &net.b_addr, 5));
    std::thread::sleep(Duration::from_millis(1500));
    let [filtered, json, unfiltered] = stop_all([filtered, json, unfiltered]);
    let total_of = |out: &[String], probe: &str| -> u64 {
        let at = out
            .iter()
            .position(|l| l.starts_with("probe hits in all"))
            .unwrap_or_else(|| panic!("no totals: {out:#?}"));
        out[at..]
            .iter()
            .find(|l| l.split_whitespace().next() == Some(probe))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    // 5 requests and 5 replies cross the veth pair.
    let hits = total_of(&filtered.stdout, "net_dev_queue");
    assert!((10..=12).contains(&hits), "{hits}: {:#?}", filtered.stdout);
    assert!(total_of(&unfiltered.stdout, "net_dev_queue") >= 10);
    assert!(filtered
        .stdout
        .iter()
        .any(|l| l.contains("probe hits in the last")));
    // JSON: the same total, in the end-of-run line (no interval).
    let last: serde_json::Value = serde_json::from_str(json.stdout.last().unwrap()).unwrap();
    assert_eq!(last["type"], "func_stats");
    assert!(last["counters"]["interval_ns"].is_null());
    let queued = last["counters"]["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["probe"] == "net_dev_queue")
        .unwrap()["hits"]
        .as_u64()
        .unwrap();
    assert_eq!(queued, hits, "{:#?}", json.stdout);
}

/// --trace-stack, --tiny-show, --latency-show, --trace-exclude and
/// --trace-matcher on one ping.
#[test]
fn trace_controls_shape_the_packets() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("ctl");
    let a = &net.a_addr;
    let base = ["-t", "link", "-p", "icmp", "--addr", a.as_str()];
    let with = |extra: &[&'static str]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let runs = [
        start(&with(&["--trace-stack", "net_dev_queue"])),
        start(&with(&["--tiny-show"])),
        start(&with(&["--latency-show"])),
        start(&with(&["--trace-exclude", "net_dev_xmit"])),
        start(&with(&["--trace-matcher", "__netif_receive_skb_core"])),
    ];
    assert!(ping(&net.a, &net.b_addr, 1));
    std::thread::sleep(Duration::from_secs(2));
    let [stack, tiny, shown, excluded, matcher] = stop_all(runs).map(|f| f.stdout);
    let request = format!("ICMP: {a} -> {} ping request", net.b_addr);
    // A stack under each net_dev_queue line, from the transmit path.
    let at = stack
        .iter()
        .position(|l| l.contains("[net_dev_queue") && l.contains(&request))
        .unwrap_or_else(|| panic!("{stack:#?}"));
    assert_eq!(stack[at + 1], "Call Stack:", "{stack:#?}");
    assert!(
        stack[at + 2..]
            .iter()
            .take_while(|l| l.starts_with("    -> "))
            .any(|l| l.contains("dev_queue_xmit")),
        "{stack:#?}"
    );
    // Tiny: the packet's first line in full, then time, probe and skb.
    // (Without clone probes the sender's copy of the request can stand in
    // a block of its own: the fullest block is the packet's path.)
    let block: Vec<&String> = tiny
        .split(|l| l.is_empty())
        .filter(|b| b.iter().any(|l| l.contains(&request)))
        .max_by_key(|b| b.len())
        .unwrap_or_else(|| panic!("{tiny:#?}"))
        .iter()
        .collect();
    assert!(block[1].contains(&request), "{block:#?}");
    assert!(
        block.len() > 3 && block[2..].iter().all(|l| !l.contains("ICMP")),
        "{block:#?}"
    );
    // Latency shown on every line of the packet; 0 on its first.
    let block: Vec<&String> = shown
        .split(|l| l.is_empty())
        .filter(|b| b.iter().any(|l| l.contains(&request)))
        .max_by_key(|b| b.len())
        .unwrap()
        .iter()
        .collect();
    assert!(block[1].ends_with("*latency: 0ns*"), "{block:#?}");
    assert!(
        block[1..].iter().all(|l| l.contains("*latency: ")),
        "{block:#?}"
    );
    // Excluded: never attached.
    assert!(excluded.iter().any(|l| l.contains("[net_dev_queue")));
    assert!(
        !excluded.iter().any(|l| l.contains("[net_dev_xmit")),
        "{excluded:#?}"
    );
    // Matcher: packets start at the receive, never at the transmit.
    let first_lines: Vec<&String> = matcher
        .split(|l| l.is_empty())
        .filter_map(|b| b.get(1))
        .collect();
    assert!(!first_lines.is_empty(), "{matcher:#?}");
    assert!(
        first_lines
            .iter()
            .all(|l| l.contains("[__netif_receive_skb_core")),
        "{matcher:#?}"
    );
}
