//! `--check` against what the kernel really offers, and the errors an
//! operator gets without privileges.
//!
//! NETTRACE_KERNEL_PROFILE names the expected capabilities: `host` (this
//! machine kind's 6.18: tracepoints only) or `vm` (the Debian 6.1/6.12
//! kernels: everything). CI sets it; unset, only facts checked
//! independently here are asserted.

use crate::runner::{bin, require_root};
use std::process::Command;

fn field<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no `{name}:` in report:\n{report}"))
        .trim()
}

#[test]
fn check_reports_the_kernels_capabilities() {
    if !require_root() {
        return;
    }
    let out = Command::new(bin()).arg("--check").output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(field(&report, "tp_btf").starts_with("yes"), "{report}");
    assert!(field(&report, "raw_tp").starts_with("yes"), "{report}");
    assert!(field(&report, "ring buffer").starts_with("yes"), "{report}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(field(&report, "kernel"), release.trim());
    let kprobe_pmu = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    assert_eq!(
        field(&report, "kprobe").starts_with("yes"),
        kprobe_pmu,
        "{report}"
    );
    let reasons = field(&report, "drop reasons");
    if crate::runner::kernel_has_drop_reasons() {
        let n: usize = reasons
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap_or(0);
        assert!(n > 60, "{report}");
    } else {
        assert!(reasons.starts_with("none"), "{report}");
    }
    match std::env::var("NETTRACE_KERNEL_PROFILE").as_deref() {
        Ok("host") => {
            assert!(field(&report, "fentry").starts_with("no"), "{report}");
            assert!(field(&report, "kprobe").starts_with("no"), "{report}");
            assert_eq!(field(&report, "kprobe.multi"), "no", "{report}");
            // Tracepoint probes attach; function probes are all skipped.
            let life = report
                .lines()
                .find(|l| l.starts_with("life "))
                .unwrap_or_else(|| panic!("no life group in {report}"));
            assert!(
                life.split_whitespace()
                    .nth(1)
                    .is_some_and(|n| n.starts_with("2/"))
                    && life.ends_with("tp_btf: 2"),
                "{report}"
            );
        }
        Ok("vm") => {
            assert!(field(&report, "fentry").starts_with("yes"), "{report}");
            assert!(field(&report, "kprobe").starts_with("yes"), "{report}");
            // Debian's 6.12 has fprobe, its 6.1 does not.
            let multi = field(&report, "kprobe.multi").starts_with("yes");
            match std::env::var("NETTRACE_KERNEL_NAME").as_deref() {
                Ok("6.12") => assert!(multi, "{report}"),
                Ok("6.1") => assert!(!multi, "{report}"),
                _ => {}
            }
            // Function groups attach through kprobes in auto mode (one
            // kprobe.multi link where there is fprobe, else a link each).
            let ip_in = report
                .lines()
                .find(|l| l.starts_with("ip/ip-in "))
                .unwrap_or_else(|| panic!("{report}"));
            assert!(ip_in.contains("kprobe: "), "{ip_in}");
        }
        _ => {}
    }
    // Per group: attachable counts and how.
    assert!(
        report.contains("group") && report.contains("attachable"),
        "{report}"
    );
    assert!(report.contains("total: "), "{report}");
}

#[test]
fn without_privileges_the_error_says_so() {
    if !require_root() {
        return;
    }
    // Drop to nobody, with no capabilities at all.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(bin())
        .arg("--drop")
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
}

#[test]
fn missing_btf_file_is_exit_4_naming_the_flag() {
    if !require_root() {
        return;
    }
    let out = Command::new(bin())
        .args(["--drop", "--btf", "/nonexistent/vmlinux.btf"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("no BTF file at /nonexistent/vmlinux.btf") && stderr.contains("--btf"),
        "{stderr}"
    );
}
