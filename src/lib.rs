//! nettrace: follow packets through the Linux kernel with eBPF, and say where
//! and why they were dropped.
//!
//! Data flows through the modules in this order: `catalogue` (what can be
//! probed) → `codegen` (build time: BPF C and tables) → `kernel` (what the
//! running kernel offers) → `load` (attach) → `events` (decode) → `output`.

pub mod catalogue;
pub mod codegen;
