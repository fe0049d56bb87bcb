//! The whole catalogue against the running kernel: with fentry, and
//! separately with kprobes, every probe `--check` plans must attach; the
//! only probes left out are those whose symbol or signature the kernel
//! lacks. Start-up and detach times are printed as `STARTUP` lines for the
//! closing notes (emulated time in the VMs; a figure, not an assertion).

use crate::runner::{bin, require, start, Cap};
use std::process::Command;
use std::time::Instant;

fn planned(mode: &str) -> (usize, String) {
    let out = Command::new(bin())
        .args(["--check", "--probe-mode", mode])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let total = report
        .lines()
        .find_map(|l| l.strip_prefix("total: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total in --check:\n{report}"));
    (total, report)
}

fn full_catalogue(mode: &str, cap: Cap) {
    if !require(cap) {
        return;
    }
    let (planned, report) = planned(mode);
    let t0 = Instant::now();
    // A filter nothing matches keeps the output quiet; probes still attach.
    let tracer = start(&[
        "--basic",
        "-t",
        "all",
        "--probe-mode",
        mode,
        "-p",
        "udp",
        "--dport",
        "9",
    ]);
    let ready = t0.elapsed();
    let t1 = Instant::now();
    let done = tracer.stop();
    let exit = t1.elapsed();
    let kernel = std::env::var("NETTRACE_KERNEL_NAME").unwrap_or_else(|_| "this kernel".into());
    eprintln!(
        "STARTUP {kernel} {mode}: ready in {:.1} s, exit in {:.2} s, {planned} probes",
        ready.as_secs_f64(),
        exit.as_secs_f64()
    );
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    for line in done.stderr.lines().filter(|l| l.contains("skipped:")) {
        assert!(
            line.contains("symbol not in this kernel")
                || line.contains("tracepoint not in this kernel")
                || line.contains("function not described in BTF")
                || line.contains("signature differs")
                || line.contains("fentry trampolines cannot take it"),
            "a probe --check planned failed to attach: {line}\n{}",
            done.stderr
        );
    }
    let summary = done
        .stderr
        .lines()
        .find(|l| l.starts_with("summary: "))
        .expect("summary line");
    // "summary: ... printed from E events, L lost, N probes attached (...)"
    let attached: usize = summary
        .split(" lost, ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the attached count: {summary}"));
    assert_eq!(attached, planned, "{summary}\n{report}");
    assert!(summary.contains(&format!("{mode}: ")), "{summary}");
    // Far more than the tracepoints alone: the function probes attached.
    assert!(attached > 100, "{summary}");
}

#[test]
fn full_catalogue_attaches_with_fentry() {
    full_catalogue("fentry", Cap::Fentry);
}

#[test]
fn full_catalogue_attaches_with_kprobes() {
    full_catalogue("kprobe", Cap::Kprobe);
}
