//! `--diag` on real packets: findings, the ANALYSIS RESULT block, the
//! stop after an error (or not, with --diag-keep), site rules, and broken
//! rules refused before the kernel is touched.

use crate::runner::{kernel_has_drop_reasons, require, require_root, start, Cap};
use crate::scenario::{closed_port, ping, send_udp, tcp_connect_refused, TwoHosts};
use std::time::Duration;

/// Two hosts whose receiver drops UDP in its INPUT chain.
fn input_drop(tag: &str) -> TwoHosts {
    let net = TwoHosts::new(tag);
    net.b
        .exec(&["iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP"]);
    net
}

#[test]
fn input_drop_is_an_error_with_reason_location_and_advice() {
    if !require_root() {
        return;
    }
    let net = input_drop("dgin");
    // -t link: a fast start in the VMs; the drop probes come with the
    // lifecycle mode anyway.
    let tracer = start(&["-t", "link", "--diag", "-p", "udp", "--addr", &net.a_addr]);
    send_udp(&net.a, 5000, &net.b_addr, 9000);
    // Without --diag-keep the run ends by itself after the first error.
    let done = tracer
        .wait_exit(Duration::from_secs(60))
        .expect("nettrace --diag did not stop after the error");
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let out = done.stdout.join("\n");
    assert!(
        out.contains("---------------- ANALYSIS RESULT ---------------------"),
        "{out}"
    );
    assert!(out.contains("ERROR happens in kfree_skb(life):"), "{out}");
    if kernel_has_drop_reasons() {
        assert!(
            out.contains("    drop reason:\n        NETFILTER_DROP"),
            "{out}"
        );
    } else {
        // Nothing to name: no reason section, no made-up name.
        assert!(
            !out.contains("drop reason:") && !out.contains("UNKNOWN_"),
            "{out}"
        );
    }
    assert!(out.contains("    location:\n        "), "{out}");
    assert!(out.contains("    fix advice:\n        "), "{out}");
    assert!(out.contains("analysis finished!"), "{out}");
    // No netfilter function traced (-t link; or a tracepoint-only
    // kernel): the missing detail is stated, not invented. (A kernel
    // without drop reasons gives only the location, nf_hook_slow.)
    if kernel_has_drop_reasons() {
        assert!(out.contains("no netfilter function was traced"), "{out}");
    } else {
        assert!(out.contains("nf_hook_slow+0x"), "{out}");
    }
}

#[test]
fn closed_tcp_port_is_a_no_socket_drop() {
    if !require_root() {
        return;
    }
    let port = closed_port();
    let tracer = start(&[
        "-t",
        "link",
        "--diag",
        "--diag-keep",
        "-p",
        "tcp",
        "--dport",
        &port.to_string(),
    ]);
    tcp_connect_refused(port);
    if kernel_has_drop_reasons() {
        let line = tracer
            .wait_line(Duration::from_secs(30), |l| l.trim() == "NO_SOCKET")
            .expect("a NO_SOCKET drop reason in the analysis");
        assert_eq!(line.trim(), "NO_SOCKET");
    } else {
        // --diag-keep prints no footer per packet: the finding is the sign.
        tracer
            .wait_line(Duration::from_secs(30), |l| {
                l.contains("ERROR happens in kfree_skb(life):")
            })
            .expect("an analysis of the dropped SYN");
    }
    let out = tracer.stop().stdout.join("\n");
    assert!(out.contains("ERROR happens in kfree_skb(life):"), "{out}");
}

#[test]
fn diag_keep_goes_on_and_site_rules_fire() {
    if !require_root() {
        return;
    }
    let net = input_drop("dgkeep");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.rules"),
        "rule site.udp-queued {\n    when probe net_dev_queue and proto == udp and dport == 9000\n    level warn\n    message \"site rule saw UDP to port {dport}\"\n}\n",
    )
    .unwrap();
    let rules = dir.path().to_str().unwrap();
    let tracer = start(&[
        "-t",
        "link",
        "--diag",
        "--diag-keep",
        "--rules",
        rules,
        "-p",
        "udp",
        "--addr",
        &net.a_addr,
    ]);
    send_udp(&net.a, 5001, &net.b_addr, 9000);
    send_udp(&net.a, 5002, &net.b_addr, 9000);
    std::thread::sleep(Duration::from_secs(2));
    let out = tracer.stop();
    let text = out.stdout.join("\n");
    assert_eq!(
        text.matches("ANALYSIS RESULT").count(),
        2,
        "--diag-keep should report both packets: {text}"
    );
    assert!(text.contains("*site rule saw UDP to port 9000*"), "{text}");
    assert!(
        text.contains("WARNING happens in net_dev_queue(link-out):"),
        "{text}"
    );
    assert!(!text.contains("analysis finished!"), "{text}");
}

/// With function probes: the seed's port-not-listened diagnosis, quietly.
#[test]
fn port_not_listened_warns_on_the_listener_lookup() {
    if !require(Cap::Kprobe) {
        return;
    }
    let port = closed_port();
    let tracer = start(&[
        "-t",
        "tcp",
        "--diag",
        "--diag-quiet",
        "-p",
        "tcp",
        "--dport",
        &port.to_string(),
    ]);
    tcp_connect_refused(port);
    let done = tracer
        .wait_exit(Duration::from_secs(60))
        .expect("nettrace --diag did not stop after the error");
    let out = done.stdout.join("\n");
    assert!(
        out.contains("WARNING happens in __inet_lookup_listener(tcp-in):"),
        "{out}"
    );
    assert!(out.contains("        tcp port is not listened"), "{out}");
    assert!(out.contains("ERROR happens in kfree_skb(life):"), "{out}");
    // Quiet: every printed packet has an analysis.
    let blocks = out.matches("*****************").count();
    assert_eq!(blocks, out.matches("ANALYSIS RESULT").count(), "{out}");
}

/// A rule on a return value fires only when the probe returned it.
#[test]
fn return_value_rules_fire_only_on_that_value() {
    if !require(Cap::Kprobe) {
        return;
    }
    let net = TwoHosts::new("dgret");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ret.rules"),
        "rule site.rcv-ok { when probe ip_rcv and ret == NET_RX_SUCCESS level warn message \"ip_rcv said success\" }\n\
         rule site.rcv-drop { when probe ip_rcv and ret == NET_RX_DROP level warn message \"ip_rcv said drop\" }\n",
    )
    .unwrap();
    let tracer = start(&[
        "-t",
        "ip",
        "--diag",
        "--diag-keep",
        "--no-default-rules",
        "--rules",
        dir.path().to_str().unwrap(),
        "-p",
        "icmp",
        "--addr",
        &net.a_addr,
    ]);
    assert!(ping(&net.a, &net.b_addr, 1));
    std::thread::sleep(Duration::from_secs(2));
    let out = tracer.stop().stdout.join("\n");
    assert!(out.contains("*ip_rcv said success*"), "{out}");
    assert!(!out.contains("ip_rcv said drop"), "{out}");
}
