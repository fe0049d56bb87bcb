//! Loading: choosing probes (`select`), deciding per probe how it attaches
//! on this kernel (`plan`), loading/attaching the BPF object (`attach`,
//! `generic` for the shared kprobe programs), and the attached object while
//! it runs (`session`).

pub mod attach;
pub mod error;
pub mod generic;
pub mod plan;
pub mod select;
pub mod session;

/// Whether developer switch `name` (NETTRACE_PROBE_READS,
/// NETTRACE_VERIFIER_STATS, NETTRACE_LIBBPF_DEBUG, NETTRACE_BENCH_FLOOR)
/// is set to 1.
pub fn env_switch(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

/// `--bpf-debug`: libbpf's warnings, the verifier log of a refused program
/// among them, go to stderr whatever the log level. Set once the
/// capability probes are done (their refusals are expected).
pub static VERIFIER_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
