//! Facts about the running kernel: BTF (types, drop reasons), kallsyms
//! (symbols, modules, symbolization) and capabilities (what can attach).

pub mod btf;
pub mod btf_blob;
pub mod caps;
pub mod kallsyms;
