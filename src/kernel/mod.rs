//! Facts about the running kernel: BTF (types, drop reasons), kallsyms
//! (symbols, modules, symbolization) and capabilities (what can attach).

pub mod btf;
pub mod btf_blob;
pub mod caps;
pub mod kallsyms;

/// The hash both name indexes (BTF, kallsyms) sort by: they keep
/// (hash, index) pairs instead of a map of owned names.
pub(crate) fn name_hash(name: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(name);
    h.finish()
}

/// Where tracefs is mounted, the kernel's own mount point first.
pub const TRACEFS_DIRS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
