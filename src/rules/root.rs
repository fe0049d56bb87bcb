//! The root cause of a packet's diagnosis: of its warnings and errors, the
//! one finding an operator should act on; the others are its
//! consequences (`nf_hook_slow` NF_DROP, `nft_do_chain` NF_DROP and
//! `kfree_skb` NETFILTER_DROP are one firewall decision seen three
//! times).
//!
//! A finding is a consequence when another finding of the packet is of a
//! rule that `explains` it. Of the findings left, the root cause is the
//! one of the highest level; then one on a function that decided the
//! packet's fate over one on the drop record itself (the function says
//! more than the drop reason); then the latest such decision (events are
//! in entry order, so the innermost function: `nft_do_chain` inside
//! `nf_hook_slow`); then the rule that comes first in the pack.

use super::compile::{Level, Rule};
use super::eval::Finding;
use super::graph::LifeGraph;

/// Index in `findings` of the root cause; None when the packet has no
/// warning or error.
pub fn root_cause(rules: &[Rule], graph: &LifeGraph<'_>, findings: &[Finding]) -> Option<usize> {
    let candidates: Vec<usize> = (0..findings.len())
        .filter(|&i| rules[findings[i].rule].level >= Level::Warn)
        .collect();
    let explained = |i: usize| {
        let rule = &rules[findings[i].rule];
        candidates
            .iter()
            .any(|&j| rules[findings[j].rule].explains(rule))
    };
    let mut unexplained: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| !explained(i))
        .collect();
    // Findings that explain each other (a cycle) leave nothing: then all
    // of them are candidates again.
    if unexplained.is_empty() {
        unexplained = candidates;
    }
    unexplained.into_iter().max_by_key(|&i| {
        let f = findings[i];
        (
            rules[f.rule].level,
            !graph.events[f.event].is_drop(),
            f.event,
            std::cmp::Reverse(f.rule),
        )
    })
}
