//! `--pcap` on the running kernel: the dropped packet's real bytes in a
//! pcapng file that tshark reads without a warning, annotated with where
//! and why it died.

use crate::runner::{kernel_has_drop_reasons, require_root, start};
use crate::scenario::{closed_port, send_udp, tcp_connect_refused, TwoHosts};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// tshark on `file` with `args`; its stdout. Fails the test when tshark is
/// missing (tools/setup test installs it), fails or warns.
fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .expect("tshark (tools/setup test installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("Running as user \"root\""))
        .collect();
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(complaints.is_empty(), "tshark warned: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packet count capinfos reports.
fn capinfos_count(file: &Path) -> u64 {
    let out = Command::new("capinfos")
        .args(["-c", "-M"])
        .arg(file)
        .output()
        .expect("capinfos (with tshark)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Number of packets:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no packet count from capinfos: {text}"))
}

#[test]
fn an_iptables_drop_is_in_the_capture_with_its_reason_and_payload() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("pcapdrop");
    net.b.exec(&[
        "iptables", "-A", "INPUT", "-p", "udp", "--dport", "7781", "-j", "DROP",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drops.pcapng");
    let file_arg = file.to_str().unwrap();
    let tracer = start(&["--drop", "-p", "udp", "--dport", "7781", "--pcap", file_arg]);
    send_udp(&net.a, 40002, &net.b_addr, 7781);
    let tuple = format!("UDP: {}:40002 -> {}:7781", net.a_addr, net.b_addr);
    tracer
        .wait_line(WAIT, |l| l.contains(&tuple))
        .unwrap_or_else(|| panic!("no drop line for {tuple}"));
    let done = tracer.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(
        done.stderr
            .contains(&format!("pcap: 1 packets written to {file_arg}")),
        "{}",
        done.stderr
    );
    assert_eq!(capinfos_count(&file), 1);
    let filter = if kernel_has_drop_reasons() {
        "frame.comment contains \"NETFILTER_DROP\""
    } else {
        "frame.comment contains \"dropped at\""
    };
    let fields = tshark(
        &file,
        &[
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "data.data",
            "-e",
            "frame.comment",
        ],
    );
    let row: Vec<&str> = fields.trim().split('\t').collect();
    assert_eq!(row.len(), 6, "one matching packet: {fields}");
    assert_eq!(
        row[..5],
        [
            net.a_addr.as_str(),
            net.b_addr.as_str(),
            "40002",
            "7781",
            // b"nettrace-test", what send_udp sends.
            "6e657474726163652d74657374",
        ],
        "{fields}"
    );
    // The location names a kernel function.
    assert!(
        row[5].contains("drop:") && row[5].contains("+0x"),
        "{}",
        row[5]
    );
}

#[test]
fn a_syn_to_a_closed_port_and_its_reset_are_captured_with_the_path() {
    if !require_root() {
        return;
    }
    let port = closed_port();
    let port_s = port.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reset.pcapng");
    let file_arg = file.to_str().unwrap();
    let tracer = start(&[
        "--diag",
        "--diag-keep",
        "-p",
        "tcp",
        "-P",
        &port_s,
        "--pcap",
        file_arg,
    ]);
    tcp_connect_refused(port);
    tracer
        .wait_line(WAIT, |l| l.contains("ANALYSIS RESULT"))
        .expect("an analysis of the refused SYN");
    let done = tracer.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let text = done.stdout.join("\n");
    let syn = tshark(
        &file,
        &[
            "-Y",
            &format!("tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == {port}"),
            "-T",
            "fields",
            "-e",
            "frame.comment",
        ],
    );
    assert!(!syn.trim().is_empty(), "the SYN is in the capture");
    // Its comment has the path the text printed, and the diagnosis.
    let first = syn.lines().next().unwrap();
    assert!(first.contains("path:"), "{first}");
    for probe in ["tcp_v4_rcv", "kfree_skb"] {
        if text.contains(&format!("[{probe}")) {
            assert!(first.contains(probe), "{probe} missing from {first}");
        }
    }
    assert!(first.contains("ERROR "), "the finding: {first}");
    // Where the kernel says why it reset (6.10 and later), the SYN's
    // comment says so too.
    if text.contains("*rst reason: ") {
        assert!(first.contains("reset reason"), "{first}");
    }
    let resets = tshark(
        &file,
        &[
            "-Y",
            &format!("tcp.flags.reset == 1 && tcp.srcport == {port}"),
        ],
    );
    assert!(
        !resets.trim().is_empty(),
        "the RST is in the capture: {text}"
    );
}

#[test]
fn monitor_writes_the_packets_it_reports_with_their_findings() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("monitor.pcapng");
    let file_arg = file.to_str().unwrap();
    let port = closed_port();
    let port_s = port.to_string();
    let tracer = start(&[
        "--monitor",
        "-p",
        "udp",
        "--dport",
        &port_s,
        "--pcap",
        file_arg,
    ]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"nettrace-monitor", ("127.0.0.1", port))
        .unwrap();
    tracer
        .wait_line(WAIT, |l| l.contains(&format!(":{port}")))
        .expect("a finding on the datagram to the closed port");
    let done = tracer.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let comments = tshark(
        &file,
        &[
            "-Y",
            &format!("udp.dstport == {port}"),
            "-T",
            "fields",
            "-e",
            "frame.comment",
        ],
    );
    let first = comments.lines().next().expect("the reported datagram");
    assert!(first.contains("dropped at"), "{first}");
    assert!(first.contains(" at kfree_skb: "), "the finding: {first}");
}
