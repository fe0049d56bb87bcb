//! Loading: choosing probes (`select`), deciding per probe how it attaches
//! on this kernel (`plan`), and loading/attaching the BPF object (`attach`).

pub mod attach;
pub mod generic;
pub mod plan;
pub mod select;

/// Whether developer switch `name` (NETTRACE_PROBE_READS,
/// NETTRACE_VERIFIER_STATS, NETTRACE_LIBBPF_DEBUG, NETTRACE_BENCH_FLOOR)
/// is set to 1.
pub fn env_switch(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}
