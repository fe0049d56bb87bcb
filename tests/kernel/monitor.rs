//! `--monitor` on real packets: one finding per dropped packet up to the
//! rate limit, the rest counted; the Prometheus endpoint scraped with curl,
//! its drop counter equal to the packets sent; malformed requests answered
//! with an error while monitoring goes on; and (function probes) a
//! return-value rule firing without lifecycle tracking.

use crate::runner::{kernel_has_drop_reasons, require, require_root, start, Cap};
use crate::scenario::{closed_port, must, tcp_connect_refused, Netns, TwoHosts};
use std::io::{Read, Write};
use std::time::Duration;

/// A free TCP port on loopback for the metrics endpoint.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn scrape(port: u16) -> String {
    must(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            &format!("http://127.0.0.1:{port}/metrics"),
        ],
    )
}

/// The value of the sample whose line starts with `prefix` (summed when
/// several series match).
fn sample(metrics: &str, prefix: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Sends `n` UDP datagrams from `ns` to `dst:9000` in one burst.
fn send_burst(ns: &Netns, dst: &str, n: u32) {
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for i in range({n}): s.sendto(b'nettrace-monitor-%d' % i, ('{dst}', 9000))"
    );
    ns.exec(&["python3", "-c", &script]);
}

#[test]
fn monitor_reports_drops_up_to_the_limit_and_counts_them_in_metrics() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("mon");
    net.b
        .exec(&["iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP"]);
    let port = free_port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let tracer = start(&[
        "--monitor",
        "--metrics",
        &metrics_addr,
        "--rate-per-rule",
        "3",
        "-p",
        "udp",
        "--addr",
        &net.a_addr,
    ]);
    let sent = 5;
    send_burst(&net.a, &net.b_addr, sent);
    // Where drops carry reasons, the reason's rule reports them; before
    // 5.17 the netfilter rule of the drop's function does.
    let reasons = kernel_has_drop_reasons();
    let first = tracer
        .wait_line(Duration::from_secs(30), |l| {
            if reasons {
                l.contains("ERROR drop.NETFILTER_DROP:")
            } else {
                l.contains("ERROR ") && l.contains(&format!("UDP: {}:", net.a_addr))
            }
        })
        .expect("a finding for the dropped datagram");
    assert!(first.contains(&format!("UDP: {}:", net.a_addr)), "{first}");
    assert!(first.contains(" -- advice: "), "{first}");
    let rule = first
        .split("ERROR ")
        .nth(1)
        .and_then(|l| l.split(':').next())
        .expect("... ERROR rule: message");
    // The counters arrive with the events; give the loop a tick or two.
    let drops = if reasons {
        "nettrace_drops_total{reason=\"NETFILTER_DROP\""
    } else {
        "nettrace_drops_total{"
    };
    let mut m = String::new();
    for _ in 0..50 {
        m = scrape(port);
        if sample(&m, drops) >= u64::from(sent) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(sample(&m, drops), u64::from(sent), "{m}");
    assert_eq!(
        sample(
            &m,
            &format!("nettrace_findings_total{{rule=\"{rule}\",level=\"error\"}}")
        ),
        3,
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            &format!("nettrace_findings_suppressed_total{{rule=\"{rule}\"}}")
        ),
        u64::from(sent) - 3,
        "{m}"
    );
    assert!(sample(&m, "nettrace_probes_attached") >= 1, "{m}");
    assert!(m.contains("# TYPE nettrace_drops_total counter"), "{m}");

    // Not HTTP at all: an error response, and the monitor goes on.
    let mut raw = std::net::TcpStream::connect(&metrics_addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(b"\x16\x03\x01garbage that is not a request\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer:?}");
    let status = must(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            &format!("http://{metrics_addr}/nothing-here"),
        ],
    );
    assert_eq!(status, "404");
    std::thread::sleep(Duration::from_millis(1100));
    send_burst(&net.a, &net.b_addr, 1);
    let mut later = String::new();
    for _ in 0..50 {
        later = scrape(port);
        if sample(&later, drops) > u64::from(sent) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(sample(&later, drops), u64::from(sent) + 1, "{later}");
    let done = tracer.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let findings = done
        .stdout
        .iter()
        .filter(|l| l.contains(&format!("ERROR {rule}:")))
        .count();
    assert_eq!(
        findings, 4,
        "3 in the first second, 1 later: {:#?}",
        done.stdout
    );
    // With function probes, nf.hook-drop and nft.drop fire too and are
    // limited the same way; the line lists each rule's count.
    let suppressed = done
        .stderr
        .lines()
        .find(|l| l.contains("findings suppressed by the rate limits ("))
        .unwrap_or_else(|| panic!("no suppression report: {}", done.stderr));
    assert!(suppressed.contains(&format!("{rule}: 2")), "{suppressed}");
}

#[test]
fn monitor_fires_a_return_value_rule_without_lifecycles() {
    if !require(Cap::Kprobe) {
        return;
    }
    let port = closed_port();
    let tracer = start(&[
        "--monitor",
        "--output",
        "json",
        "-p",
        "tcp",
        "--dport",
        &port.to_string(),
    ]);
    tcp_connect_refused(port);
    let line = tracer
        .wait_line(Duration::from_secs(30), |l| {
            l.contains("\"rule\":\"tcp.port-not-listened\"")
        })
        .expect("the port-not-listened finding from __inet_lookup_listener's return value");
    let parsed: nettrace::output::json::Line = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed.kind, nettrace::output::json::Kind::Finding);
    let f = parsed.finding.unwrap();
    assert_eq!(f.level, "warn");
    let ev = parsed.event.unwrap();
    assert_eq!(ev.probe, "__inet_lookup_listener");
    assert_eq!(ev.ret.map(|r| r.value), Some(0));
    let done = tracer.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    // Monitor mode counts findings, not packets: no lifecycle was built.
    assert!(
        done.stderr.contains(" findings printed from "),
        "{}",
        done.stderr
    );
}
