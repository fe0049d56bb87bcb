//! The socket-level modes on real TCP connections: RTT (the kernel's
//! estimate at each update, against a netem delay), socket tracing
//! (state changes, a transfer, retransmissions under netem loss, the
//! close), and the reasons of the resets the stack sends.

use crate::runner::{has, require, require_root, start, stop_all, Cap};
use crate::scenario::{netem_delay, netem_loss, tcp_connect_refused, tcp_stream, TwoHosts};
use std::time::Duration;

/// `srtt 20.123ms` → nanoseconds (the value after `key `).
fn duration_after(line: &str, key: &str) -> Option<f64> {
    let text = line.split(&format!(" {key} ")).nth(1)?;
    crate::runner::duration_ns(text.split([',', '*', ' ']).next()?)
}

/// Whether the running kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// netem delays a's transmit by 20 ms: every RTT sample and srtt of the
/// connection covers it; --filter-srtt above it leaves nothing, and the
/// histogram has its updates in the 16-33 ms slot.
#[test]
fn rtt_covers_a_netem_delay() {
    if !require(Cap::Kprobe) || !require(Cap::Netem) {
        return;
    }
    let net = TwoHosts::new("rtt");
    netem_delay(&net.a, &net.a_if, 20);
    let a = net.a_addr.as_str();
    let filter = ["-p", "tcp", "--addr", a];
    let with = |extra: &[&'static str]| [extra, &filter[..]].concat();
    let runs = [
        start(&with(&["--rtt"])),
        start(&with(&["--rtt-detail"])),
        start(&with(&["--rtt-detail", "--output", "json"])),
        start(&with(&["--rtt-detail", "--filter-srtt", "1000"])),
        start(&with(&["--rtt-detail", "--filter-minrtt", "10"])),
    ];
    let sent = tcp_stream(&net.a, &net.b, &net.b_addr, 7100, 10, 2000, 100);
    assert!(sent.contains("sent 20000"), "{sent}");
    std::thread::sleep(Duration::from_millis(1500));
    let [hist, detail, json, high, low] = stop_all(runs);
    let updates: Vec<&String> = detail
        .stdout
        .iter()
        .filter(|l| l.contains("[tcp_ack_update_rtt"))
        .collect();
    let client = format!("TCP: {a}:");
    assert!(
        updates
            .iter()
            .any(|l| l.contains(&client) && l.contains(&format!("-> {}:7100", net.b_addr))),
        "no update of the client's socket: {:#?}",
        detail.stdout
    );
    for l in &updates {
        let rtt = duration_after(l, "rtt").unwrap_or_else(|| panic!("no sample in {l}"));
        let srtt = duration_after(l, "srtt").unwrap_or_else(|| panic!("no srtt in {l}"));
        assert!(rtt >= 20e6 && srtt >= 20e6, "under the 20 ms delay: {l}");
    }
    // Filters in the kernel: no srtt reaches 1 s; every minimum is above 10 ms.
    assert!(
        !high
            .stdout
            .iter()
            .any(|l| l.contains("[tcp_ack_update_rtt")),
        "{:#?}",
        high.stdout
    );
    let low_updates = low
        .stdout
        .iter()
        .filter(|l| l.contains("[tcp_ack_update_rtt"))
        .count();
    assert!(low_updates > 0, "{:#?}", low.stdout);
    // JSON: the sample and the estimate, in microseconds.
    let events: Vec<serde_json::Value> = json
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["type"] == "event")
        .collect();
    assert!(!events.is_empty(), "{:#?}", json.stdout);
    for v in &events {
        let tcp = &v["event"]["sock"]["tcp"];
        assert!(tcp["rtt_us"].as_u64().unwrap() >= 20_000, "{v}");
        assert!(tcp["srtt_us"].as_u64().unwrap() >= 20_000, "{v}");
    }
    // The histogram: the run's updates, in the 16-33 ms slot or above.
    let total = hist
        .stdout
        .iter()
        .find(|l| l.starts_with("TCP srtt in all"))
        .unwrap_or_else(|| panic!("no summary: {:#?}", hist.stdout));
    assert!(!total.contains(": 0 updates"), "{total}");
    assert!(
        hist.stdout
            .iter()
            .any(|l| l.trim_start().starts_with("16384 -> 32767")),
        "{:#?}",
        hist.stdout
    );
}

/// A connection's life on its socket: the state changes of both ends, and
/// where the kernel has function probes, the close and the data's ACKs.
#[test]
fn sock_follows_a_connection() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("sock");
    let filter = ["--addr", net.a_addr.as_str(), "-P", "7200"];
    let runs = [
        start(&[&["--sock"], &filter[..]].concat()),
        start(&[&["--sock", "--output", "json"], &filter[..]].concat()),
    ];
    let sent = tcp_stream(&net.a, &net.b, &net.b_addr, 7200, 5, 1000, 50);
    assert!(sent.contains("sent 5000"), "{sent}");
    std::thread::sleep(Duration::from_millis(1500));
    let [text, json] = stop_all(runs);
    let client = format!("TCP: {}:", net.a_addr);
    for change in [
        "CLOSE -> SYN-SENT",
        "SYN-SENT -> ESTABLISHED",
        "ESTABLISHED -> FIN-WAIT-1",
    ] {
        assert!(
            text.stdout
                .iter()
                .any(|l| l.contains("[inet_sock_set_state") && l.contains(change)),
            "no {change}: {:#?}",
            text.stdout
        );
    }
    // The server's end: its child socket established, then closed by the peer.
    assert!(
        text.stdout
            .iter()
            .any(|l| l.contains(&format!("TCP: {}:7200", net.b_addr))
                && l.contains("ESTABLISHED -> CLOSE-WAIT")),
        "{:#?}",
        text.stdout
    );
    assert!(text.stdout.iter().all(|l| !l.contains("headers not built")));
    if has(Cap::Kprobe) {
        // The client's close, the ACKs of its data, the end of both sockets.
        assert!(
            text.stdout
                .iter()
                .any(|l| l.contains("[tcp_close") && l.contains(&client)),
            "{:#?}",
            text.stdout
        );
        for probe in ["[tcp_ack_update_rtt", "[tcp_v4_destroy_sock"] {
            assert!(
                text.stdout.iter().any(|l| l.contains(probe)),
                "no {probe}: {:#?}",
                text.stdout
            );
        }
    }
    let changes: Vec<serde_json::Value> = json
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"]["probe"] == "inet_sock_set_state")
        .collect();
    assert!(
        changes
            .iter()
            .any(|v| v["event"]["sock"]["state"] == "SYN-SENT"
                && v["event"]["sock"]["new_state"] == "ESTABLISHED"),
        "{:#?}",
        json.stdout
    );
}

/// netem drops 30% of a's packets: the sender retransmits, and the
/// socket lines show it (tcp_retransmit_skb, the counters).
#[test]
fn sock_sees_retransmissions_under_loss() {
    if !require(Cap::Kprobe) || !require(Cap::Netem) {
        return;
    }
    let net = TwoHosts::new("sockl");
    // Segments leave in GSO batches, a few per write: 30 writes make some
    // 40 packets, and at 30% loss the chance that none is lost is 1e-6.
    // The loss must not take ARP: a's requests for b, or a's replies to
    // b's requests (three lost replies leave b's entry FAILED, and b's
    // SYN-ACKs and ACKs are dropped until the client times out). Both
    // sides know each other for good before the loss starts.
    for (from, to_addr, to, to_if, from_if) in [
        (&net.a, &net.b_addr, &net.b, &net.b_if, &net.a_if),
        (&net.b, &net.a_addr, &net.a, &net.a_if, &net.b_if),
    ] {
        let mac = to.exec(&["cat", &format!("/sys/class/net/{to_if}/address")]);
        from.exec(&[
            "ip",
            "neigh",
            "replace",
            to_addr,
            "lladdr",
            mac.trim(),
            "dev",
            from_if,
            "nud",
            "permanent",
        ]);
    }
    netem_loss(&net.a, &net.a_if, 30);
    let run = start(&["--sock", "--addr", &net.a_addr, "-P", "7300"]);
    let sent = tcp_stream(&net.a, &net.b, &net.b_addr, 7300, 30, 10_000, 20);
    assert!(sent.contains("sent 300000"), "{sent}");
    std::thread::sleep(Duration::from_millis(1500));
    let [run] = stop_all([run]);
    let retransmits: Vec<&String> = run
        .stdout
        .iter()
        .filter(|l| l.contains("[tcp_retransmit_skb"))
        .collect();
    assert!(!retransmits.is_empty(), "{:#?}", run.stdout);
    // The socket's total grows past zero on its later lines.
    assert!(
        run.stdout.iter().any(|l| l
            .split(" retrans ")
            .nth(1)
            .is_some_and(|r| { r.split(['/', ',']).nth(1).is_some_and(|t| t.trim() != "0") })),
        "{:#?}",
        run.stdout
    );
}

/// A SYN to a closed port: the stack's reset names its reason where the
/// kernel has reset reasons (6.10+), and --diag reports it. (Before 6.10
/// the tracepoint fires only for resets of an existing socket.)
#[test]
fn reset_reason_of_a_closed_port() {
    if !require_root() {
        return;
    }
    let port = crate::scenario::closed_port();
    let p = port.to_string();
    let runs = [
        start(&["-p", "tcp", "-P", &p, "-t", "tcp_send_reset"]),
        start(&["--diag", "-p", "tcp", "-P", &p, "--output", "json"]),
    ];
    tcp_connect_refused(port);
    std::thread::sleep(Duration::from_secs(1));
    let [text, diag] = stop_all(runs);
    let reset = text.stdout.iter().find(|l| l.contains("[tcp_send_reset"));
    let findings: Vec<String> = diag
        .stdout
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .flat_map(|v| {
            v["packet"]["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|f| f["rule"].as_str().unwrap_or("").to_string())
        .collect();
    if kernel_at_least(6, 10) {
        let reset = reset.unwrap_or_else(|| panic!("no reset: {:#?}", text.stdout));
        assert!(reset.ends_with("*rst reason: NO_SOCKET*"), "{reset}");
        assert!(
            findings.iter().any(|r| r == "tcp.reset-no-socket"),
            "{findings:?}: {:#?}",
            diag.stdout
        );
    } else {
        // Before 6.10 the tracepoint fires only for a reset on a socket,
        // and names no reason.
        assert!(
            !text.stdout.iter().any(|l| l.contains("rst reason")),
            "{reset:?}"
        );
        assert!(!findings.iter().any(|r| r.starts_with("tcp.reset-")));
    }
}

/// The skbs of non-IP sockets (here netlink, from `ip link` in a
/// namespace): left out and counted per family by default, named with
/// --non-ip. Runs on tracepoints alone.
#[test]
fn non_ip_sockets_are_counted_or_named() {
    if !require_root() {
        return;
    }
    let ns = crate::scenario::Netns::new("nonip");
    let inode = ns.inode();
    let base = ["--basic", "-t", "consume_skb", "--netns", inode.as_str()];
    let runs = [start(&base), start(&[&base[..], &["--non-ip"]].concat())];
    for _ in 0..5 {
        ns.exec(&["ip", "link", "show"]);
    }
    std::thread::sleep(Duration::from_millis(500));
    let [quiet, shown] = stop_all(runs);
    assert!(
        !quiet.stdout.iter().any(|l| l.contains("netlink")),
        "{:#?}",
        quiet.stdout
    );
    assert!(
        quiet
            .stderr
            .lines()
            .any(|l| l.starts_with("left out: ") && l.contains("netlink ")),
        "{}",
        quiet.stderr
    );
    assert!(
        shown
            .stdout
            .iter()
            .any(|l| l.contains("[consume_skb") && l.contains("netlink socket (not IP)")),
        "{:#?}",
        shown.stdout
    );
}
