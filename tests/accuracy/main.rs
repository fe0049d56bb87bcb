//! The diagnosis accuracy matrix (`tools/accuracy`): injected faults and
//! healthy traffic, each in namespaces of its own, traced by
//! `nettrace --diag` and judged against what the case says the root cause
//! is, per kernel.
//!
//!   accuracy                      check cases.yaml against the rule pack (no root)
//!   accuracy run KERNEL OUT [ID]  run the cases (those whose id contains ID) as root,
//!                                 results in OUT/results.jsonl, recordings OUT/<id>.ntrec;
//!                                 ACCURACY_JOBS=N runs N cases at a time
//!   accuracy judge KERNEL OUT     judge OUT's recordings again with this build's
//!                                 rules (no root, no kernel); rewrites OUT/results.jsonl
//!   accuracy report OUT-DIR...    docs/accuracy.md from results (dirs named by kernel)
//!   accuracy fixtures KERNEL OUT  copy passing cases' recordings into
//!                                 tests/fixtures/accuracy/ with their expectations
//!
//! Run without arguments (as `cargo test` does), it only checks the case
//! file: every expected rule exists, every command names a namespace of
//! its topology, and the matrix has its 25 faults and 10 healthy cases.

mod cases;
mod report;
mod run;
#[allow(dead_code)]
#[path = "../kernel/runner.rs"]
mod runner;
mod topology;

use cases::{Expect, Matrix};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn matrix() -> Matrix {
    let path = root().join("tests/accuracy/cases.yaml");
    Matrix::read(&path).unwrap_or_else(|e| fail(&e))
}

fn fail(msg: &str) -> ! {
    eprintln!("accuracy: {msg}");
    std::process::exit(1)
}

fn check() {
    let m = matrix();
    let loaded =
        nettrace::rules::load_for_run(&[], true, None).unwrap_or_else(|e| fail(&e.to_string()));
    let ids: Vec<String> = loaded.rules.into_iter().map(|r| r.id).collect();
    let problems = m.problems(&ids);
    for p in &problems {
        eprintln!("accuracy: tests/accuracy/cases.yaml: {p}");
    }
    if !problems.is_empty() {
        std::process::exit(1);
    }
    let faults = m.cases.iter().filter(|c| c.is_fault()).count();
    println!(
        "accuracy: cases.yaml is consistent ({faults} faults, {} healthy)",
        m.cases.len() - faults
    );
}

fn run_all(kernel: &str, out: &Path, only: Option<&str>, jobs: usize) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        fail("running the matrix needs root (namespaces, BPF)");
    }
    topology::remove_stale();
    // A case that panics is reported with its message; no backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    std::fs::create_dir_all(out).unwrap_or_else(|e| fail(&format!("{}: {e}", out.display())));
    let path = root().join("tests/accuracy/bin");
    let old = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{old}", path.display()));
    let release = String::from_utf8_lossy(&topology::run(&["uname", "-r"]).stdout)
        .trim()
        .to_string();
    let date = String::from_utf8_lossy(&topology::run(&["date", "-u", "+%Y-%m-%d"]).stdout)
        .trim()
        .to_string();
    std::fs::write(
        out.join("kernel.json"),
        serde_json::json!({"kernel": kernel, "release": release, "date": date}).to_string(),
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
    let m = matrix();
    let todo: Vec<(usize, &cases::Case)> = m
        .cases
        .iter()
        .enumerate()
        .filter(|(_, c)| only.is_none_or(|o| o.split(',').any(|part| c.id.contains(part))))
        .collect();
    // Cases share nothing (namespaces, subnets and nettrace of their own),
    // so `jobs` of them run at a time: in the emulated guests most of a
    // case is nettrace starting up on one vCPU.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(i, case)) = todo.get(k) else { break };
                let o = run::run_case(case, i as u32 + 1, kernel, out);
                print_outcome(&o);
                done.lock().unwrap().push((i, o));
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(i, _)| *i);
    let mut lines = String::new();
    let mut outcomes = Vec::new();
    for (_, o) in done {
        let _ = writeln!(lines, "{}", serde_json::to_string(&o).unwrap());
        outcomes.push(o);
    }
    std::fs::write(out.join("results.jsonl"), lines).unwrap_or_else(|e| fail(&e.to_string()));
    let (fp, fr, hp, hr) = report::totals(&outcomes);
    println!("accuracy {kernel} ({release}): faults named {fp}/{fr}, healthy clean {hp}/{hr}");
}

fn print_outcome(o: &run::Outcome) {
    println!(
        "{} {:<28} {:>5.1}s expected {:<40} found {}{}",
        match (&o.blind, o.pass) {
            (Some(_), _) => "BLIND",
            (None, true) => "PASS ",
            (None, false) => "FAIL ",
        },
        o.case,
        o.seconds,
        o.expected,
        o.roots
            .iter()
            .chain(&o.other_findings)
            .map(|r| format!("{}({})", r.rule, r.level))
            .collect::<Vec<_>>()
            .join(" "),
        if o.note.is_empty() {
            String::new()
        } else {
            format!(" -- {}", o.note)
        }
    );
}

fn rejudge_all(kernel: &str, dir: &Path) {
    let results = report::read(dir, kernel).unwrap_or_else(|e| fail(&e));
    let m = matrix();
    let mut lines = String::new();
    let mut outcomes = Vec::new();
    for before in &results.outcomes {
        let o = match m.cases.iter().find(|c| c.id == before.case) {
            Some(case) => run::rejudge(case, kernel, dir, before),
            None => continue,
        };
        print_outcome(&o);
        let _ = writeln!(lines, "{}", serde_json::to_string(&o).unwrap());
        outcomes.push(o);
    }
    std::fs::write(dir.join("results.jsonl"), lines).unwrap_or_else(|e| fail(&e.to_string()));
    let (fp, fr, hp, hr) = report::totals(&outcomes);
    println!("accuracy {kernel} (judged again): faults named {fp}/{fr}, healthy clean {hp}/{hr}");
}

fn write_report(dirs: &[String]) {
    let mut kernels = Vec::new();
    for d in dirs {
        let dir = Path::new(d);
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match report::read(dir, &name) {
            Ok(k) => kernels.push(k),
            Err(e) => eprintln!("accuracy: skipping {d}: {e}"),
        }
    }
    if kernels.is_empty() {
        fail("no results to report");
    }
    let path = root().join("docs/accuracy.md");
    std::fs::write(&path, report::markdown(&kernels))
        .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    println!("accuracy: wrote {}", path.display());
}

/// Copies the recordings of the cases that passed into the fixtures, with
/// a test file that `nettrace rules test` checks on every CI run.
fn fixtures(kernel: &str, out: &Path) {
    let results = report::read(out, kernel).unwrap_or_else(|e| fail(&e));
    let m = matrix();
    let base = root().join("tests/fixtures/accuracy");
    let dir = base.join(kernel);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&e.to_string()));
    let mut yaml = format!(
        "# Recorded by tools/accuracy on kernel {kernel} ({}, {}): the matrix's cases\n\
         # that passed there, with the expectations of tests/accuracy/cases.yaml.\n\
         # Written by `tools/accuracy fixtures`; do not edit by hand.\ntests:\n",
        results.release, results.date
    );
    for o in results.outcomes.iter().filter(|o| o.blind.is_none()) {
        let case = m.cases.iter().find(|c| c.id == o.case);
        let (Some(case), true) = (case, o.pass) else {
            eprintln!(
                "accuracy: {} not kept as a fixture (it did not pass)",
                o.case
            );
            continue;
        };
        let rec = format!("{}.ntrec", o.case);
        std::fs::copy(out.join(&rec), dir.join(&rec))
            .unwrap_or_else(|e| fail(&format!("{rec}: {e}")));
        let _ = writeln!(
            yaml,
            "  - name: \"{}: {}\"\n    recording: {kernel}/{rec}",
            o.case,
            case.title.replace('"', "'"),
        );
        match case.expectation(kernel) {
            Ok(Expect::Root(r)) => {
                let _ = writeln!(
                    yaml,
                    "    root: {{rule: {}, level: {}{}}}",
                    r.root,
                    r.level,
                    if r.also.is_empty() {
                        String::new()
                    } else {
                        format!(", also: [{}]", r.also.join(", "))
                    }
                );
            }
            Ok(Expect::Clean(_)) => {
                let _ = writeln!(
                    yaml,
                    "    clean: true\n    allow: [{}]",
                    run::ALLOWED_ON_HEALTHY.join(", ")
                );
            }
            Err(_) => {}
        }
    }
    let file = base.join(format!("{kernel}.test.yaml"));
    std::fs::write(&file, yaml).unwrap_or_else(|e| fail(&e.to_string()));
    println!("accuracy: wrote {}", file.display());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") if args.len() >= 3 => {
            let jobs = std::env::var("ACCURACY_JOBS")
                .ok()
                .and_then(|j| j.parse().ok())
                .unwrap_or(1);
            run_all(
                &args[1],
                Path::new(&args[2]),
                args.get(3).map(String::as_str),
                jobs,
            )
        }
        Some("report") if args.len() >= 2 => write_report(&args[1..]),
        Some("judge") if args.len() == 3 => rejudge_all(&args[1], Path::new(&args[2])),
        Some("fixtures") if args.len() == 3 => fixtures(&args[1], Path::new(&args[2])),
        Some("run" | "report" | "fixtures" | "judge") => fail(
            "usage: accuracy [run KERNEL OUT [ID] | judge KERNEL OUT | report DIR... | fixtures KERNEL OUT]",
        ),
        // No arguments, or what the test harness passes: check the cases.
        _ => check(),
    }
}
