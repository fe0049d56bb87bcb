//! Running one case: build its namespaces, start its servers, start
//! `nettrace --diag` with its filter (recording the run), make its
//! traffic, stop nettrace, and judge the packets it printed against the
//! case's expectation for this kernel.

use super::cases::{Case, Expect};
use super::runner;
use super::topology::Net;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Warnings that healthy traffic may show: documented informational
/// warnings (the README's NAT example).
pub const ALLOWED_ON_HEALTHY: &[&str] = &["nat.rewrite"];

/// One packet's verdict as nettrace printed it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    pub rule: String,
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub case: String,
    pub title: String,
    pub area: String,
    /// The case's `tracepoints` note (what a tracepoint-only kernel sees).
    #[serde(default)]
    pub tracepoints: String,
    pub fault: bool,
    /// `expected` as the report prints it, or why this kernel is blind.
    pub expected: String,
    pub blind: Option<String>,
    /// Root causes of the packets, each once, in order of appearance.
    pub roots: Vec<Named>,
    /// Warnings and errors that are not root causes (healthy cases: any).
    pub other_findings: Vec<Named>,
    pub packets: usize,
    pub traffic_ok: bool,
    pub pass: bool,
    /// Why it failed, or what went wrong running it.
    pub note: String,
    pub seconds: f64,
    /// nettrace's start (to its ready line) and stop (SIGINT to exit), s.
    #[serde(default)]
    pub start_s: f64,
    #[serde(default)]
    pub stop_s: f64,
    /// It could not run the first time (see run_case) and ran again.
    #[serde(default)]
    pub retried: bool,
}

/// A server that prints `ready` once it listens; killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn start_server(net: &Net, role: &str, cmd: &str) -> Result<Server, String> {
    use std::os::unix::process::CommandExt;
    let mut child = net
        .command(role, cmd)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start `{cmd}`: {e}"))?;
    let out = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| format!("`{cmd}`: {e}"))?;
    if line.trim() != "ready" {
        return Err(format!("`{}` did not start", net.expand(cmd)));
    }
    Ok(server)
}

/// How long a traffic command may take: under emulation, with per-probe
/// kprobes attached (6.1), a Python program alone can take half a minute
/// to start.
const TRAFFIC_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a traffic command, bounded by TRAFFIC_TIMEOUT, its output appended
/// to `log`; whether it succeeded.
fn traffic(net: &Net, role: &str, cmd: &str, log: &Path) -> bool {
    let started = Instant::now();
    let Ok(out) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    else {
        return false;
    };
    let Ok(err) = out.try_clone() else {
        return false;
    };
    use std::os::unix::process::CommandExt;
    let mut child = match net
        .command(role, cmd)
        .process_group(0)
        .stdout(out)
        .stderr(err)
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    let deadline = Instant::now() + TRAFFIC_TIMEOUT;
    let ok = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.success();
        }
        if Instant::now() > deadline {
            // The whole group: `ip netns exec` and `sh` start the program
            // as a child, which must not outlive the case's namespaces.
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(log) {
        use std::io::Write as _;
        let _ = writeln!(
            f,
            "[{role}] {} -> {} in {:.1}s",
            net.expand(cmd),
            if ok { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
    }
    ok
}

pub fn run_case(case: &Case, n: u32, kernel: &str, out_dir: &Path) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        case: case.id.clone(),
        title: case.title.clone(),
        area: case.area.clone(),
        tracepoints: case.tracepoints.clone(),
        fault: case.is_fault(),
        expected: String::new(),
        blind: None,
        roots: Vec::new(),
        other_findings: Vec::new(),
        packets: 0,
        traffic_ok: false,
        pass: false,
        note: String::new(),
        seconds: 0.0,
        start_s: 0.0,
        stop_s: 0.0,
        retried: false,
    };
    let expect = match case.expectation(kernel) {
        Ok(e) => e.clone(),
        Err(why) => {
            outcome.expected = "not visible".into();
            outcome.blind = Some(why.to_string());
            outcome.pass = true;
            return outcome;
        }
    };
    outcome.expected = expect.describe();
    // A case that could not run as written (a setup command or nettrace
    // failed, or healthy traffic did not get through) runs once more: a
    // slow emulated guest is not a wrong diagnosis. A wrong diagnosis is
    // never retried.
    for attempt in 0..2 {
        outcome.retried = attempt > 0;
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(case, n, out_dir)));
        let could_not_run = match result {
            Ok(Ok(Traced {
                packets,
                traffic_ok,
                start_s,
                stop_s,
            })) => {
                outcome.traffic_ok = traffic_ok;
                outcome.start_s = start_s;
                outcome.stop_s = stop_s;
                judge(&mut outcome, &expect, &packets);
                !case.is_fault() && !traffic_ok
            }
            Ok(Err(e)) => {
                outcome.note = e;
                true
            }
            Err(panic) => {
                outcome.note = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "the case panicked".into());
                true
            }
        };
        if !could_not_run {
            break;
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

/// A packet as the matrix reads it from nettrace's JSON line.
pub struct Packet {
    pub root: Option<Named>,
    pub findings: Vec<Named>,
}

/// What tracing a case gave.
struct Traced {
    packets: Vec<Packet>,
    /// Every traffic command succeeded.
    traffic_ok: bool,
    start_s: f64,
    stop_s: f64,
}

/// Sets the case up and traces it.
fn execute(case: &Case, n: u32, out_dir: &Path) -> Result<Traced, String> {
    let mut net = Net::new(case.topology, n);
    net.var("out", out_dir.to_str().unwrap());
    net.var(
        "assets",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/accuracy/assets"),
    );
    for cmd in &case.setup {
        let (role, c) = cmd.parts();
        net.exec(role, c);
    }
    let mut servers = Vec::new();
    for cmd in &case.serve {
        let (role, c) = cmd.parts();
        servers.push(start_server(&net, role, c)?);
    }
    let record = out_dir.join(format!("{}.ntrec", case.id));
    let _ = std::fs::remove_file(&record);
    let filter = net.expand(&case.trace);
    let mut args = vec![
        "--diag",
        "--diag-keep",
        "--output",
        "json",
        "--record",
        record.to_str().unwrap(),
    ];
    args.extend(filter.split_whitespace());
    let t0 = Instant::now();
    let tracer = runner::start(&args);
    let start_s = t0.elapsed().as_secs_f64();
    let mut traffic_ok = true;
    let log = out_dir.join(format!("{}.traffic", case.id));
    let _ = std::fs::remove_file(&log);
    for cmd in &case.traffic {
        let (role, c) = cmd.parts();
        traffic_ok &= traffic(&net, role, c, &log);
    }
    std::thread::sleep(Duration::from_secs_f64(case.settle));
    let t0 = Instant::now();
    let done = tracer.stop();
    let stop_s = t0.elapsed().as_secs_f64();
    drop(servers);
    std::fs::write(
        out_dir.join(format!("{}.stderr", case.id)),
        done.stderr.as_bytes(),
    )
    .ok();
    std::fs::write(
        out_dir.join(format!("{}.flags", case.id)),
        filter.replace(' ', "\n"),
    )
    .ok();
    if done.code != Some(0) {
        return Err(format!(
            "nettrace exited with {:?}: {}",
            done.code,
            done.stderr.lines().last().unwrap_or("")
        ));
    }
    let packets = parse_packets(&done.stdout)?;
    Ok(Traced {
        packets,
        traffic_ok,
        start_s,
        stop_s,
    })
}

/// The packets of nettrace's `--output json` lines.
pub fn parse_packets(lines: &[String]) -> Result<Vec<Packet>, String> {
    let mut packets = Vec::new();
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        let Some(p) = v.get("packet") else { continue };
        let named = |f: &serde_json::Value| Named {
            rule: f["rule"].as_str().unwrap_or("").to_string(),
            level: f["level"].as_str().unwrap_or("").to_string(),
        };
        packets.push(Packet {
            root: p.get("root_cause").map(named),
            findings: p["findings"]
                .as_array()
                .map(|a| a.iter().map(named).collect())
                .unwrap_or_default(),
        });
    }
    Ok(packets)
}

/// Judges a case again from its recording, with this build's rules: the
/// same verdicts a live run would give, without a kernel.
pub fn rejudge(case: &Case, kernel: &str, dir: &Path, before: &Outcome) -> Outcome {
    let mut outcome = Outcome {
        roots: Vec::new(),
        other_findings: Vec::new(),
        packets: 0,
        pass: false,
        note: String::new(),
        ..before.clone()
    };
    let Ok(expect) = case.expectation(kernel) else {
        return before.clone();
    };
    outcome.expected = expect.describe();
    let rec = dir.join(format!("{}.ntrec", case.id));
    let out = std::process::Command::new(runner::bin())
        .args([
            "replay",
            rec.to_str().unwrap(),
            "--diag",
            "--diag-keep",
            "--output",
            "json",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(String::from)
                .collect();
            match parse_packets(&lines) {
                Ok(packets) => judge(&mut outcome, expect, &packets),
                Err(e) => outcome.note = e,
            }
        }
        Ok(o) => {
            outcome.note = format!(
                "replay failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )
        }
        Err(e) => outcome.note = format!("replay failed: {e}"),
    }
    outcome
}

fn push_once(list: &mut Vec<Named>, n: &Named) {
    if !list.contains(n) {
        list.push(n.clone());
    }
}

/// Fault: some packet's root cause is the expected one, and every other
/// packet's root cause is the expected one or a listed consequence.
/// Healthy: the traffic worked and no warning or error was found but the
/// documented informational ones.
pub fn judge(outcome: &mut Outcome, expect: &Expect, packets: &[Packet]) {
    outcome.packets = packets.len();
    for p in packets {
        if let Some(r) = &p.root {
            push_once(&mut outcome.roots, r);
        }
        for f in &p.findings {
            let reported = f.level == "warn" || f.level == "error";
            if reported && p.root.as_ref() != Some(f) {
                push_once(&mut outcome.other_findings, f);
            }
        }
    }
    match expect {
        Expect::Root(want) => {
            let found = outcome
                .roots
                .iter()
                .any(|r| r.rule == want.root && r.level == want.level);
            let strays: Vec<String> = outcome
                .roots
                .iter()
                .filter(|r| r.rule != want.root && !want.also.contains(&r.rule))
                .map(|r| format!("{} ({})", r.rule, r.level))
                .collect();
            outcome.pass = found && strays.is_empty();
            outcome.note = if !found {
                if packets.is_empty() {
                    "no packet was traced".into()
                } else {
                    "the expected root cause was not named".into()
                }
            } else if !strays.is_empty() {
                format!("also blamed: {}", strays.join(", "))
            } else {
                String::new()
            };
        }
        Expect::Clean(_) => {
            let alarms: Vec<String> = outcome
                .roots
                .iter()
                .chain(&outcome.other_findings)
                .filter(|f| !ALLOWED_ON_HEALTHY.contains(&f.rule.as_str()))
                .map(|f| format!("{} ({})", f.rule, f.level))
                .collect();
            outcome.pass = outcome.traffic_ok && alarms.is_empty() && !packets.is_empty();
            outcome.note = if !outcome.traffic_ok {
                "the traffic itself failed".into()
            } else if packets.is_empty() {
                "no packet was traced".into()
            } else if !alarms.is_empty() {
                format!("false alarm: {}", alarms.join(", "))
            } else {
                String::new()
            };
        }
    }
}
