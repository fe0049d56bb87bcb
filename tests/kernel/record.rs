//! Recording live runs (`--record`) and replaying them (`nettrace replay`):
//! with the live run's flags, the replay prints exactly what the live run
//! printed; with `--output json`, lines that read back into the documented
//! types. On the host kernel (tracepoints) and, with function probes, in
//! the VMs (NAT, FORWARD drop).

use crate::runner::{bin, require, require_root, start, Cap};
use crate::scenario::{closed_port, ping, send_udp, tcp_connect_refused, Router, TwoHosts};
use std::process::Command;
use std::time::Duration;

/// Replays `file` with `flags`; returns stdout lines (and fails on errors).
fn replay(file: &str, flags: &[&str]) -> Vec<String> {
    let out = Command::new(bin())
        .arg("replay")
        .arg(file)
        .args(flags)
        .output()
        .expect("run nettrace replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay {flags:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The live run's flags without the tracing-only ones (`-t`, `--record`).
fn view_flags<'a>(live: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut it = live.iter();
    while let Some(a) = it.next() {
        match *a {
            "-t" | "--record" | "--trace-free" | "--trace-stack" | "--trace-matcher"
            | "--trace-exclude" => {
                it.next();
            }
            "--hooks" | "--latency-free" | "--trace-noclone" | "--force" => {}
            a => out.push(a),
        }
    }
    out
}

/// Asserts that replaying `file` with the live flags prints `live`, and
/// that its JSON form reads back into the schema types. In the VM bench
/// (NETTRACE_REPLAY_DIR set) the recording, the live output and the flags
/// are also saved for tools/vm-test to replay on the host.
fn assert_replay_matches(file: &str, live_args: &[&str], live: &[String]) {
    assert!(!live.is_empty(), "the live run printed nothing");
    let flags = view_flags(live_args);
    if let Some(dir) = std::env::var_os("NETTRACE_REPLAY_DIR") {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        let name = std::path::Path::new(file)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        std::fs::copy(file, dir.join(format!("{name}.ntrec"))).unwrap();
        std::fs::write(dir.join(format!("{name}.out")), live.join("\n") + "\n").unwrap();
        std::fs::write(dir.join(format!("{name}.flags")), flags.join("\n") + "\n").unwrap();
    }
    let replayed = replay(file, &flags);
    assert_eq!(replayed, live, "replay differs from the live run");
    let mut json_flags = flags.clone();
    json_flags.extend(["--output", "json"]);
    let lines = replay(file, &json_flags);
    assert!(!lines.is_empty());
    for l in &lines {
        let parsed: nettrace::output::json::Line =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!(parsed.version, nettrace::output::json::VERSION);
    }
}

#[test]
fn a_recorded_drop_monitor_replays_identically() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drop.ntrec");
    let port = closed_port().to_string();
    let args = [
        "--drop",
        "-p",
        "tcp",
        "--dport",
        &port,
        "--record",
        file.to_str().unwrap(),
    ];
    let tracer = start(&args);
    tcp_connect_refused(port.parse().unwrap());
    tracer
        .wait_line(Duration::from_secs(30), |l| {
            // Before 5.17 a drop line gives the location only.
            l.contains("reason: NO_SOCKET")
                || (!crate::runner::kernel_has_drop_reasons() && l.contains("flags:S"))
        })
        .expect("the drop of the refused SYN");
    let live = tracer.stop();
    assert_eq!(live.code, Some(0), "{}", live.stderr);
    assert_replay_matches(file.to_str().unwrap(), &args, &live.stdout);
}

#[test]
fn a_recorded_diagnosis_replays_identically() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("rcdiag");
    net.b
        .exec(&["iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("diag.ntrec");
    let args = [
        "-t",
        "link",
        "--diag",
        "-p",
        "udp",
        "--addr",
        &net.a_addr,
        "--record",
        file.to_str().unwrap(),
    ];
    let tracer = start(&args);
    send_udp(&net.a, 5000, &net.b_addr, 9000);
    let live = tracer
        .wait_exit(Duration::from_secs(60))
        .expect("nettrace --diag did not stop after the error");
    assert_eq!(live.code, Some(0), "{}", live.stderr);
    assert!(live.stdout.iter().any(|l| l == "analysis finished!"));
    assert_replay_matches(file.to_str().unwrap(), &args, &live.stdout);
    // Better rules later: the same recording with a site rule added.
    let rules = dir.path().join("site.rules");
    std::fs::write(
        &rules,
        "rule site.udp-9000 {\n    when drop and dport == 9000\n    level error\n    message \"site: UDP 9000 is blocked here\"\n}\n",
    )
    .unwrap();
    let out = replay(
        file.to_str().unwrap(),
        &["--diag", "--rules", rules.to_str().unwrap()],
    )
    .join("\n");
    assert!(out.contains("site: UDP 9000 is blocked here"), "{out}");
}

#[test]
fn a_recorded_forward_drop_and_nat_replay_identically() {
    if !require(Cap::Kprobe) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // FORWARD drop, with the hook functions blamed.
    let net = Router::new("rcfwd");
    net.drop_client_icmp("iptables");
    let file = dir.path().join("fwd.ntrec");
    let args = [
        "-t",
        "netfilter,ip",
        "--diag",
        "--hooks",
        "-p",
        "icmp",
        "--saddr",
        &net.client_addr,
        "--record",
        file.to_str().unwrap(),
    ];
    let tracer = start(&args);
    assert!(!ping(&net.client, &net.server_addr, 1));
    let live = tracer
        .wait_exit(Duration::from_secs(60))
        .expect("nettrace --diag did not stop after the error");
    let text = live.stdout.join("\n");
    assert!(
        text.contains("following hook functions are blamed:"),
        "{text}"
    );
    assert_replay_matches(file.to_str().unwrap(), &args, &live.stdout);
    drop(net);

    // MASQUERADE: both addresses in one block, replayed.
    let net = Router::new("rcnat");
    net.masquerade();
    let file = dir.path().join("nat.ntrec");
    let args = [
        "-t",
        "netfilter,ip",
        "--diag",
        "--diag-keep",
        "-p",
        "icmp",
        "--saddr",
        &net.client_addr,
        "--record",
        file.to_str().unwrap(),
    ];
    let tracer = start(&args);
    assert!(ping(&net.client, &net.server_addr, 1));
    std::thread::sleep(Duration::from_secs(2));
    let live = tracer.stop();
    let text = live.stdout.join("\n");
    assert!(text.contains("NAT happens"), "{text}");
    assert_replay_matches(file.to_str().unwrap(), &args, &live.stdout);
}

/// The kernel-side modes: latency spans, the latency histogram and the
/// function statistics (counter snapshots) replay as they printed live.
#[test]
fn recorded_latency_and_counters_replay_identically() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("rclat");
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = ["spans", "histogram", "hits"]
        .iter()
        .map(|n| {
            dir.path()
                .join(format!("{n}.ntrec"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let filter = ["-t", "link", "-p", "icmp", "--addr", &net.a_addr];
    let runs: Vec<Vec<&str>> = [
        ("--latency", &files[0]),
        ("--latency-summary", &files[1]),
        ("--func-stats", &files[2]),
    ]
    .iter()
    .map(|(mode, file)| {
        let mut v = vec![*mode, "--record", file.as_str()];
        v.extend_from_slice(&filter);
        v
    })
    .collect();
    let tracers = [start(&runs[0]), start(&runs[1]), start(&runs[2])];
    assert!(ping(&net.a, &net.b_addr, 3));
    std::thread::sleep(Duration::from_millis(1500));
    let finished = crate::runner::stop_all(tracers);
    for ((args, file), live) in runs.iter().zip(&files).zip(&finished) {
        assert_eq!(live.code, Some(0), "{}", live.stderr);
        assert_replay_matches(file, args, &live.stdout);
    }
}

/// `--sock` everywhere, and `--rtt-detail` and `--rtt` where kprobes or
/// fentry reach tcp_ack_update_rtt: a live run and its replay print the
/// same bytes (socket states, reset reasons and RTT histograms included).
#[test]
fn recorded_socket_modes_replay_identically() {
    if !require_root() {
        return;
    }
    let net = TwoHosts::new("rcsock");
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let (sock, detail, hist) = (file("sock.ntrec"), file("detail.ntrec"), file("rtt.ntrec"));
    let a = net.a_addr.as_str();
    let mut runs: Vec<Vec<&str>> =
        vec![vec!["--sock", "--record", &sock, "--addr", a, "-P", "7400"]];
    let mut files = vec![&sock];
    if crate::runner::has(crate::runner::Cap::Kprobe) {
        for (mode, f) in [("--rtt-detail", &detail), ("--rtt", &hist)] {
            runs.push(vec![mode, "--record", f, "-p", "tcp", "--addr", a]);
            files.push(f);
        }
    }
    let tracers: Vec<_> = runs.iter().map(|r| start(r)).collect();
    let sent = crate::scenario::tcp_stream(&net.a, &net.b, &net.b_addr, 7400, 5, 1000, 50);
    assert!(sent.contains("sent 5000"), "{sent}");
    std::thread::sleep(Duration::from_millis(1500));
    for ((args, file), tracer) in runs.iter().zip(files).zip(tracers) {
        let live = tracer.stop();
        assert_eq!(live.code, Some(0), "{}", live.stderr);
        assert!(!live.stdout.is_empty(), "{args:?} printed nothing");
        assert_replay_matches(file, args, &live.stdout);
    }
}
