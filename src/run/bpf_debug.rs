//! `--bpf-debug`: relays the BPF programs' own account (their `bpf_printk`
//! lines, `NT_DEBUG` in core.bpf.h) from the kernel's trace_pipe to stderr
//! while the run lasts, with probe numbers turned into probe names. The
//! verifier logs of refused programs come through libbpf's print callback
//! (cli/mod.rs); this module owns only the trace_pipe side.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The prefix every `NT_DEBUG` line carries.
const MARK: &str = "nettrace: ";

/// The relay thread; `finish` stops it after a last read.
pub struct Relay {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

/// Opens the trace pipe and starts relaying. An error says why the programs'
/// output cannot be shown (tracefs not mounted, no permission).
pub fn start() -> Result<Relay, String> {
    mount_tracefs();
    let mut last_err = None;
    for dir in crate::kernel::TRACEFS_DIRS {
        let path = format!("{dir}/trace_pipe");
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(pipe) => {
                eprintln!(
                    "bpf-debug: the BPF programs' own decisions follow as `bpf:` lines (from {path}; other tools' lines there are consumed, not shown); a program the kernel refuses prints its verifier log as `libbpf:` lines"
                );
                let stop = Arc::new(AtomicBool::new(false));
                let flag = Arc::clone(&stop);
                let thread = std::thread::spawn(move || relay(pipe, &flag));
                return Ok(Relay { stop, thread });
            }
            Err(e) => last_err = Some(format!("{path}: {e}")),
        }
    }
    Err(format!(
        "cannot read the kernel's trace pipe ({}); mount tracefs: mount -t tracefs nodev /sys/kernel/tracing",
        last_err.unwrap_or_default()
    ))
}

/// Mounts tracefs where the kernel keeps its mount point, when nothing is
/// mounted there (as `bpftool prog tracelog` does); it stays mounted.
fn mount_tracefs() {
    let dir = crate::kernel::TRACEFS_DIRS[0];
    let mounted = crate::kernel::TRACEFS_DIRS
        .iter()
        .any(|d| std::path::Path::new(&format!("{d}/trace_pipe")).exists());
    if mounted || !std::path::Path::new(dir).is_dir() {
        return;
    }
    // SAFETY: NUL-terminated literals; no data argument.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        eprintln!("bpf-debug: mounted tracefs on {dir}");
    }
}

impl Relay {
    /// Stops the relay after what is already in the pipe; returns how many
    /// lines it showed.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

fn relay(mut pipe: std::fs::File, stop: &AtomicBool) -> u64 {
    let mut shown = 0u64;
    let mut pending = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    // One more pass after the stop flag: lines of the last events.
    let mut last_pass = false;
    loop {
        let mut fds = libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        unsafe { libc::poll(&mut fds, 1, 200) };
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                    while let Some(end) = pending.find('\n') {
                        let line: String = pending.drain(..=end).collect();
                        if let Some(shown_line) = present(line.trim_end()) {
                            eprintln!("{shown_line}");
                            shown += 1;
                        }
                    }
                }
                Err(_) => break,
            }
        }
        if last_pass {
            return shown;
        }
        last_pass = stop.load(Ordering::Relaxed);
    }
}

/// A trace_pipe line as shown: `bpf: <task and CPU> <message>` with the
/// probe named, or None for another tool's line.
fn present(line: &str) -> Option<String> {
    let at = line.find(MARK)?;
    let head = line[..at].trim_end();
    // "bpf_trace_printk: " sits between the task columns and the message.
    let head = head
        .strip_suffix("bpf_trace_printk:")
        .unwrap_or(head)
        .trim_end();
    let message = name_probe(&line[at + MARK.len()..]);
    Some(format!("bpf: {} {message}", head.trim_start()))
}

/// `probe 12 skb ...` → `probe ip_rcv skb ...`.
fn name_probe(message: &str) -> String {
    let Some(rest) = message.strip_prefix("probe ") else {
        return message.to_string();
    };
    let (id, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    match id
        .parse::<u32>()
        .ok()
        .and_then(crate::catalogue::table::probe_by_id)
    {
        Some(p) => format!("probe {} {tail}", p.name),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_probe_and_keeps_the_task() {
        let id = crate::catalogue::table::PROBES
            .iter()
            .position(|p| p.name == "kfree_skb")
            .unwrap();
        let line = format!(
            "          <idle>-0       [001] ..s21  1234.5678: bpf_trace_printk: nettrace: probe {id} skb ffff8881: event sent"
        );
        assert_eq!(
            present(&line).unwrap(),
            "bpf: <idle>-0       [001] ..s21  1234.5678: probe kfree_skb skb ffff8881: event sent"
        );
        assert_eq!(
            present("  ping-1 [000] 1.0: bpf_trace_printk: other tool"),
            None
        );
    }
}
