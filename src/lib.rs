//! nettrace: follow packets through the Linux kernel with eBPF, and say where
//! and why they were dropped.
//!
//! Data flows through the modules in this order: `catalogue` (what can be
//! probed) → `codegen` (build time: BPF C and tables) → `kernel` (what the
//! running kernel offers) → `load` (choose, plan, attach) → `events`
//! (decode) → `lifecycle` (contexts per packet) → `rules` (diagnosis) →
//! `output` (text, JSON). `record` keeps a run's events for `replay` and
//! rule tests. `cli` drives a run.

pub mod abi;
pub mod catalogue;
pub mod cli;
pub mod codegen;
pub mod events;
pub mod kernel;
pub mod lifecycle;
pub mod load;
pub mod output;
pub mod record;
pub mod rules;
pub mod vocab;
