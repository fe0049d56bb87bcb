//! nettrace: follow packets through the Linux kernel with eBPF, and say where
//! and why they were dropped.
//!
//! Modules are layered in the order data flows, and each imports only
//! from the layers before it (docs/architecture.md):
//! `vocab` (protocols, TCP flags) and `abi` (the BPF side's types and
//! constants) → `catalogue` (what can be probed) → `codegen` (build time:
//! BPF C and tables) → `kernel` (what the running kernel offers) → `load`
//! (plan, attach) → `events` (decode) → `firewall` (the rule that decided
//! a netfilter drop) → `lifecycle` (contexts per packet)
//! → `record` (recordings and event scripts) → `rules` (diagnosis) →
//! `output` (formatters and sinks) → `spec` (a validated run) →
//! `pipeline` (events through lifecycle and rules into the sinks) → `run`
//! (live runs, replays, checks) → `cli` (flags to a spec, exit codes).

pub mod abi;
pub mod catalogue;
pub mod cli;
pub mod codegen;
pub mod events;
pub mod firewall;
pub mod kernel;
pub mod lifecycle;
pub mod load;
pub mod output;
pub mod pipeline;
pub mod record;
pub mod rules;
pub mod run;
pub mod spec;
pub mod vocab;
