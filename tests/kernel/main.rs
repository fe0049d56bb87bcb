//! Tests against the running kernel, as root: real BPF programs, real
//! packets in network namespaces the tests create (or on loopback).
//!
//! Each test states what it needs (`require`). Without root, outside CI, a
//! test skips with a note; in CI (CI=true) a missing requirement that the
//! machine should have fails the test instead.

mod catalogue;
mod diag;
mod drop;
mod firewall;
mod host;
mod lifecycle;
mod modes;
mod monitor;
mod netfilter;
mod pcap;
mod record;
mod runner;
mod scenario;
mod scenarios;
mod sockets;
