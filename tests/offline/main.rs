//! Tests that need no root, no BPF and no particular kernel: catalogue and
//! code generation, flag parsing, planning against fixture kernels,
//! drop-reason decoding from BTF fixtures, and output formatting.

mod btf;
mod catalogue;
mod cli;
mod filter_parity;
mod firewall;
mod format;
mod lifecycle;
mod monitor;
mod pcap;
mod plan;
mod record;
mod rules;
mod support;
