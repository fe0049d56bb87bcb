//! Running nettrace under test: start it, wait for its ready line
//! (`begin trace...` on stderr) rather than sleeping, collect its output,
//! stop it with SIGINT as an operator would. Bounds are generous because
//! the VM kernels run under emulation.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const READY_LINE: &str = "begin trace...";
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The nettrace binary under test: `NETTRACE_BIN` when set (tools/vm-test
/// runs a snapshot, so the tree can be rebuilt while a VM runs), else the
/// one cargo built beside this test.
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("NETTRACE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_nettrace").into())
    })
}

/// The running test's name: libtest names each test's thread after it,
/// so a test never spells its own name (which could drift from it).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_string()
}

/// The kernel profile the run declares (NETTRACE_KERNEL_PROFILE): `host`
/// (tracepoints only: every test that needs fentry or kprobes is expected
/// to skip), `vm` (everything: no skip is expected), or none (a developer
/// machine: what `nettrace --check` finds).
fn profile() -> Option<String> {
    std::env::var("NETTRACE_KERNEL_PROFILE").ok()
}

/// Skips the running test with a `SKIPPED:` line (counted by tools/vm-test,
/// which fails on any). `expected`: the declared profile foresees this skip;
/// in CI an unforeseen skip fails the test instead.
pub fn skip(why: &str, expected: bool) {
    let test = test_name();
    assert!(
        expected || std::env::var_os("CI").is_none(),
        "{test}: would skip ({why}), which the kernel profile {:?} does not expect",
        profile()
    );
    eprintln!("SKIPPED: {test} ({why})");
}

/// Whether the running kernel names its drops (enum skb_drop_reason,
/// 5.17+): before that, drop lines and findings carry no reason.
pub fn kernel_has_drop_reasons() -> bool {
    std::fs::read("/sys/kernel/btf/vmlinux")
        .map(|btf| btf.windows(16).any(|w| w == b"skb_drop_reason\0"))
        .unwrap_or(false)
}

/// Whether this process may run kernel tests. Outside CI, a missing
/// privilege skips (returns false) with a note; in CI it fails.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{}: kernel tests must run as root in CI",
        test_name()
    );
    eprintln!("{}: skipped (needs root)", test_name());
    false
}

/// Kernel capabilities a test can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    Fentry,
    Kprobe,
    /// The netem qdisc (`tc qdisc ... netem delay`), to delay packets.
    Netem,
}

impl Cap {
    fn field(self) -> &'static str {
        match self {
            Cap::Fentry => "fentry",
            Cap::Kprobe => "kprobe",
            Cap::Netem => "netem",
        }
    }
}

/// Root plus a capability. A missing capability skips the test: expected
/// under the `host` profile, a failure in CI under any other.
pub fn require(cap: Cap) -> bool {
    if !require_root() {
        return false;
    }
    let present = has(cap);
    if !present {
        let why = format!("this kernel has no {}", cap.field());
        skip(&why, profile().as_deref() == Some("host"));
    }
    present
}

/// Whether the kernel has a capability, for a test that covers more when
/// it does (no `SKIPPED:` line). The expected capabilities come from
/// NETTRACE_KERNEL_PROFILE (`host`: tracepoints only; `vm`: everything)
/// when set, else from `nettrace --check`.
pub fn has(cap: Cap) -> bool {
    match std::env::var("NETTRACE_KERNEL_PROFILE").as_deref() {
        Ok("host") => false,
        Ok("vm") => true,
        _ if cap == Cap::Netem => netem_works(),
        _ => {
            let out = Command::new(bin())
                .arg("--check")
                .output()
                .expect("nettrace --check");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.starts_with(&format!("{}:", cap.field())) && l.contains(" yes"))
        }
    }
}

pub struct Running {
    child: Child,
    lines: Receiver<String>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

pub struct Finished {
    pub code: Option<i32>,
    pub stdout: Vec<String>,
    pub stderr: String,
}

/// Starts nettrace and waits until it is tracing.
pub fn start(args: &[&str]) -> Running {
    start_command(Command::new(bin()).args(args), args)
}

/// Starts nettrace with extra environment variables.
pub fn start_with_env(env: &[(&str, &str)], args: &[&str]) -> Running {
    start_command(
        Command::new(bin()).envs(env.iter().copied()).args(args),
        args,
    )
}

/// Starts nettrace inside the named network namespace (`ip netns exec`).
pub fn start_in_netns(netns: &str, args: &[&str]) -> Running {
    start_command(
        Command::new("ip")
            .args(["netns", "exec", netns, bin()])
            .args(args),
        args,
    )
}

pub fn start_command(cmd: &mut Command, args: &[&str]) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nettrace");
    let (tx, rx) = channel();
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let out = child.stdout.take().unwrap();
    let (stdout2, tx2) = (Arc::clone(&stdout), tx.clone());
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            stdout2.lock().unwrap().push(line.clone());
            let _ = tx2.send(line);
        }
    });
    let err = child.stderr.take().unwrap();
    let (ready_tx, ready_rx) = channel();
    let stderr2 = Arc::clone(&stderr);
    thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            stderr2.lock().unwrap().push_str(&format!("{line}\n"));
            if line == READY_LINE {
                let _ = ready_tx.send(());
            }
        }
    });
    let mut running = Running {
        child,
        lines: rx,
        stdout,
        stderr,
    };
    let started = Instant::now();
    loop {
        if ready_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
            return running;
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            thread::sleep(Duration::from_millis(200));
            panic!(
                "nettrace {args:?} exited ({status}) before tracing:\n{}",
                running.stderr.lock().unwrap()
            );
        }
        if started.elapsed() > READY_TIMEOUT {
            panic!(
                "nettrace {args:?} not ready after {READY_TIMEOUT:?}:\n{}",
                running.stderr.lock().unwrap()
            );
        }
    }
}

impl Running {
    /// Waits for a stdout line satisfying `pred`; None after `timeout`.
    pub fn wait_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return Some(l),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Waits for nettrace to end by itself (None after `timeout`).
    pub fn wait_exit(mut self, timeout: Duration) -> Option<Finished> {
        let deadline = Instant::now() + timeout;
        let code = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s.code(),
                _ if Instant::now() > deadline => return None,
                _ => thread::sleep(Duration::from_millis(50)),
            }
        };
        thread::sleep(Duration::from_millis(100));
        Some(
            Finished {
                code,
                stdout: self.stdout.lock().unwrap().clone(),
                stderr: self.stderr.lock().unwrap().clone(),
            }
            .loaded_at_once(),
        )
    }

    /// Stops nettrace with SIGINT and collects everything it printed.
    pub fn stop(self) -> Finished {
        self.interrupt();
        self.collect()
    }

    /// Sends SIGINT without waiting.
    fn interrupt(&self) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
    }

    /// Waits for the exit SIGINT asked for and collects the output.
    fn collect(mut self) -> Finished {
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s.code(),
                _ if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    panic!("nettrace did not exit within 60 s of SIGINT");
                }
                _ => thread::sleep(Duration::from_millis(50)),
            }
        };
        thread::sleep(Duration::from_millis(100));
        Finished {
            code,
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
        .loaded_at_once()
    }
}

impl Finished {
    /// Every run loads its programs once: the kprobe style chosen from the
    /// kernel's features must load, since a fallback loads everything a
    /// second time (6.1's verifier once refused the generic programs in
    /// some modes, and start-up took four times as long).
    fn loaded_at_once(self) -> Finished {
        assert!(
            !self
                .stderr
                .lines()
                .any(|l| l.contains("kprobes as ") && l.contains("; trying ")),
            "the first kprobe style failed to load:\n{}",
            self.stderr
        );
        self
    }
}

/// Stops several tracers: all are signalled first, so their detaches (a
/// kernel wait per link) overlap instead of adding up.
pub fn stop_all<const N: usize>(runs: [Running; N]) -> [Finished; N] {
    runs.iter().for_each(Running::interrupt);
    runs.map(Running::collect)
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this kernel has the netem qdisc: tried on the loopback of a
/// namespace made for it.
fn netem_works() -> bool {
    let name = format!("ntt-{}-netem-probe", std::process::id());
    let ip = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ip(&["netns", "add", &name]) {
        return false;
    }
    let works = ip(&[
        "netns", "exec", &name, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
    ]);
    ip(&["netns", "del", &name]);
    works
}

/// A duration as nettrace prints it (`850ns`, `12.3us`, `31.204ms`,
/// `1.2s`), in nanoseconds.
pub fn duration_ns(text: &str) -> Option<f64> {
    let unit_at = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = text.split_at(unit_at);
    let value: f64 = value.parse().ok()?;
    Some(
        value
            * match unit {
                "ns" => 1.0,
                "us" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                _ => return None,
            },
    )
}
