//! Names the firewall rule that decided a netfilter drop, without touching
//! the firewall. The kernel tells which hook, table and base chain dropped
//! the packet (the netfilter probes' events), and with the devices, mark
//! and conntrack state what the chain saw; the ruleset is read with the
//! firewall's own tools (`iptables-save`, `nft -j list ruleset`, `ipset
//! save`, `ebtables-legacy -L`) in the packet's namespace, and the chain is walked with the
//! packet's facts (`verdict`). A rule is named only when the walk proves
//! it; otherwise the answer says which matches could not be evaluated and
//! which rules remain. docs/firewall.md says why this, and not a kernel
//! probe, finds the rule.

pub mod ebtables;
pub mod iptables;
pub mod model;
pub mod netns;
pub mod nft;
pub mod rulesets;
pub mod values;
pub mod verdict;

pub use rulesets::{Rulesets, TableKind};
