//! Runs: everything between a validated `RunSpec` and the pipeline. A live
//! run opens the kernel's facts (`kernel`), chooses and attaches probes with
//! their fallbacks (`attach`), and reads events into the pipeline until it
//! ends (`session`); `replay` feeds a recording to the same pipeline;
//! `check` reports what the kernel supports; `bpf_debug` relays the
//! programs' own output for `--bpf-debug`. Every failure is a typed
//! `error::Fatal` carrying its exit code.

pub mod attach;
pub mod bpf_debug;
pub mod check;
pub mod counters;
pub mod error;
pub mod kernel;
pub mod replay;
pub mod session;
