//! `nettrace --drop` on the running kernel: real drops, real reasons.

use crate::runner::{kernel_has_drop_reasons, require_root, start, stop_all};
use crate::scenario::{closed_port, send_udp, tcp_connect_refused, TwoHosts};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn location_ok(line: &str) -> bool {
    // ..., reason: NAME, symbol+0xoff
    let loc = line.rsplit(", ").next().unwrap_or("");
    let (sym, off) = loc.split_once("+0x").unwrap_or(("", ""));
    !sym.is_empty()
        && sym
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !off.is_empty()
        && off.chars().all(|c| c.is_ascii_hexdigit())
}

/// The running kernel's BTF copied to a file, removed when dropped (also
/// when the test fails).
struct BtfCopy(std::path::PathBuf);

impl BtfCopy {
    fn new(tag: &str) -> BtfCopy {
        let path = std::env::temp_dir().join(format!("nettrace-{tag}-{}.btf", std::process::id()));
        std::fs::copy("/sys/kernel/btf/vmlinux", &path).expect("copy kernel BTF");
        BtfCopy(path)
    }
}

impl Drop for BtfCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn iptables_drop_of_udp_is_reported_with_netfilter_drop() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("udp");
    net.b.exec(&[
        "iptables", "-A", "INPUT", "-p", "udp", "--dport", "7777", "-j", "DROP",
    ]);
    let matching = start(&["--drop", "-p", "udp"]);
    let other = start(&["--drop", "-p", "udp", "--saddr", "198.19.255.254"]);
    send_udp(&net.a, 40001, &net.b_addr, 7777);
    let tuple = format!("UDP: {}:40001 -> {}:7777", net.a_addr, net.b_addr);
    let line = matching
        .wait_line(WAIT, |l| l.contains(&tuple))
        .unwrap_or_else(|| panic!("no drop line for {tuple}"));
    if kernel_has_drop_reasons() {
        assert!(line.contains("reason: NETFILTER_DROP"), "{line}");
    } else {
        assert!(!line.contains("reason:"), "{line}");
    }
    assert!(location_ok(&line), "location is not symbol+0xoff: {line}");
    assert!(line.starts_with('['), "{line}");
    let [finished, done] = stop_all([other, matching]);
    assert!(
        !finished.stdout.iter().any(|l| l.contains(&tuple)),
        "a non-matching filter printed the drop: {:?}",
        finished.stdout
    );
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stderr.contains("end trace..."), "{}", done.stderr);
    assert!(done.stderr.contains("0 lost"), "{}", done.stderr);
}

#[test]
fn tcp_to_a_closed_port_is_no_socket() {
    if !require_root() {
        return;
    }
    let port = closed_port();
    let port_s = port.to_string();
    for tp_mode in ["auto", "raw"] {
        let tracer = start(&[
            "--drop",
            "-p",
            "tcp",
            "--dport",
            &port_s,
            "--tp-mode",
            tp_mode,
        ]);
        tcp_connect_refused(port);
        let line = tracer
            .wait_line(WAIT, |l| l.contains(&format!("-> 127.0.0.1:{port} ")))
            .unwrap_or_else(|| panic!("no drop line for port {port} with --tp-mode {tp_mode}"));
        if kernel_has_drop_reasons() {
            assert!(line.contains("reason: NO_SOCKET"), "{line}");
        } else {
            assert!(!line.contains("reason:"), "{line}");
        }
        assert!(line.contains("flags:S"), "{line}");
        assert!(location_ok(&line), "{line}");
        tracer.stop();
    }
}

#[test]
fn drop_stack_prints_kernel_frames() {
    if !require_root() {
        return;
    }
    let port = closed_port();
    let tracer = start(&[
        "--drop",
        "--drop-stack",
        "-p",
        "tcp",
        "--dport",
        &port.to_string(),
    ]);
    tcp_connect_refused(port);
    tracer
        .wait_line(WAIT, |l| l.contains(&format!("127.0.0.1:{port} ")))
        .expect("drop line");
    std::thread::sleep(Duration::from_millis(500));
    let out = tracer.stop().stdout;
    let at = out
        .iter()
        .position(|l| l == "Call Stack:")
        .expect("Call Stack: block");
    let frames: Vec<&String> = out[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("    -> "))
        .collect();
    assert!(frames.len() >= 3, "{out:?}");
    for f in &frames {
        let loc = f.trim_start_matches("    -> ");
        assert!(
            loc.contains("+0x") && !loc.starts_with("0x"),
            "not a kernel symbol: {loc}"
        );
    }
    assert!(
        frames.iter().any(|f| f.contains("tcp_v4_rcv")),
        "{frames:?}"
    );
}

#[test]
fn btf_from_a_file_is_used() {
    if !require_root() {
        return;
    }
    let copy = BtfCopy::new("test");
    let port = closed_port();
    let tracer = start(&[
        "--drop",
        "-p",
        "tcp",
        "--dport",
        &port.to_string(),
        "--btf",
        copy.0.to_str().unwrap(),
    ]);
    tcp_connect_refused(port);
    let line = tracer.wait_line(WAIT, |l| l.contains(&format!("127.0.0.1:{port} ")));
    tracer.stop();
    let line = line.expect("drop line");
    assert!(
        line.contains("reason: NO_SOCKET") || !kernel_has_drop_reasons(),
        "{line}"
    );
}

/// A kernel whose /sys/kernel/btf/vmlinux is missing (hidden here by an
/// empty tmpfs in a private mount namespace): nettrace says so and exits
/// 4, and runs with the kernel's BTF given as a file.
#[test]
fn hidden_kernel_btf_is_an_error_and_btf_file_replaces_it() {
    if !require_root() {
        return;
    }
    let copy = BtfCopy::new("hidden");
    let hidden = |extra: &str| {
        let mut c = std::process::Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c"]).arg(format!(
            "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" --drop -p tcp --dport \"$1\" {extra}"
        ));
        c
    };
    let port = closed_port();
    let port_s = port.to_string();
    let refused = hidden("")
        .args([crate::runner::bin(), &port_s])
        .output()
        .expect("run nettrace without BTF");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("--btf"),
        "the error names the fix: {stderr}"
    );
    let mut with_file = hidden(&format!("--btf {}", copy.0.display()));
    with_file.args([crate::runner::bin(), &port_s]);
    let tracer = crate::runner::start_command(&mut with_file, &["--drop", "--btf"]);
    tcp_connect_refused(port);
    let line = tracer.wait_line(WAIT, |l| l.contains(&format!("127.0.0.1:{port} ")));
    let done = tracer.stop();
    assert!(
        line.is_some(),
        "no drop line with --btf FILE: {}",
        done.stderr
    );
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}

#[test]
fn bpf_debug_relays_the_programs_decisions() {
    if !require_root() {
        return;
    }
    let port = closed_port();
    let port_s = port.to_string();
    let tracer = start(&["--drop", "--bpf-debug", "-p", "tcp", "--dport", &port_s]);
    tcp_connect_refused(port);
    tracer
        .wait_line(WAIT, |l| l.contains(&format!("-> 127.0.0.1:{port} ")))
        .unwrap_or_else(|| panic!("no drop line for port {port}"));
    let done = tracer.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let sent: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.starts_with("bpf: ") && l.ends_with(": event sent"))
        .collect();
    // The drop's event, named by its probe (kfree_skb is the drop
    // monitor's probe on every kernel).
    assert!(
        sent.iter().any(|l| l.contains(" probe kfree_skb skb ")),
        "no `event sent` line from the kfree_skb program:\n{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("lines from the BPF programs"),
        "{}",
        done.stderr
    );
}
