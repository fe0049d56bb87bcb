//! The firewall rule that decided a netfilter drop, as the live loop found
//! it (src/firewall) and as findings, JSON and recordings carry it: either
//! the one rule (or chain policy) the ruleset proves, or why none could be
//! named and which rules remain candidates.

use serde::{Deserialize, Serialize};

/// Which firewall a ruleset belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Firewall {
    IptablesLegacy,
    IptablesNft,
    Nft,
    EbtablesLegacy,
}

impl Firewall {
    pub const ALL: [Firewall; 4] = [
        Firewall::IptablesLegacy,
        Firewall::IptablesNft,
        Firewall::Nft,
        Firewall::EbtablesLegacy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Firewall::IptablesLegacy => "iptables-legacy",
            Firewall::IptablesNft => "iptables-nft",
            Firewall::Nft => "nft",
            Firewall::EbtablesLegacy => "ebtables-legacy",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Firewall> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

/// One rule of a ruleset, as an operator finds it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    pub firewall: Firewall,
    /// `filter`; for nft with its family: `inet filter`.
    pub table: String,
    pub chain: String,
    /// 1-based position in its chain (`iptables -L --line-numbers`); 0 for
    /// the chain's policy.
    pub position: u32,
    /// nft's rule handle (`nft -a list chain`).
    pub handle: Option<u64>,
    /// As the firewall's own tool prints it: `-A FORWARD -s 10.0.0.0/8 -j
    /// DROP`, `ip saddr 10.0.0.0/8 drop`; a policy as `:FORWARD DROP` or
    /// `policy drop`.
    pub text: String,
}

impl RuleRef {
    /// Where the rule is: `iptables-nft filter/FORWARD rule 3`, `nft inet
    /// filter/input handle 7`, `iptables-legacy filter/INPUT policy`.
    pub fn place(&self) -> String {
        let at = if self.position == 0 {
            "policy".to_string()
        } else if let Some(h) = self.handle {
            format!("rule {}, handle {h}", self.position)
        } else {
            format!("rule {}", self.position)
        };
        format!(
            "{} {}/{} {at}",
            self.firewall.name(),
            self.table,
            self.chain
        )
    }
}

/// The deciding rule of a netfilter drop, or why there is none to name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "found", rename_all = "kebab-case")]
pub enum NfRule {
    /// The one rule that can have dropped the packet.
    Rule {
        rule: RuleRef,
        /// The jumps that led to its chain, outermost first: `INPUT rule 5`.
        via: Vec<String>,
        /// Matches the packet's facts could not decide, that every way
        /// they could go still ends at this rule.
        assumed: Vec<String>,
    },
    /// No rule proven: why, and the rules that may have decided it.
    Undecided {
        why: String,
        candidates: Vec<RuleRef>,
    },
}

impl NfRule {
    /// The deciding rule's text, for `nf.rule` tests and `{nf.rule}`.
    pub fn text(&self) -> Option<&str> {
        match self {
            NfRule::Rule { rule, .. } => Some(&rule.text),
            NfRule::Undecided { .. } => None,
        }
    }

    /// The chain holding the deciding rule (a user-defined one when the
    /// packet jumped there).
    pub fn chain(&self) -> Option<&str> {
        match self {
            NfRule::Rule { rule, .. } => Some(&rule.chain),
            NfRule::Undecided { .. } => None,
        }
    }

    /// One line: `` `-A BLOCK -s 10.0.0.2/32 -j DROP` (iptables-nft
    /// filter/BLOCK rule 1, jumped from INPUT rule 2) ``, or why no rule is
    /// named and its candidates.
    pub fn describe(&self) -> String {
        match self {
            NfRule::Rule { rule, via, assumed } => {
                let mut s = format!("`{}` ({}", rule.text, rule.place());
                if !via.is_empty() {
                    s.push_str(", jumped from ");
                    s.push_str(&via.join(", then "));
                }
                if !assumed.is_empty() {
                    s.push_str("; not evaluated: ");
                    s.push_str(&assumed.join(", "));
                    s.push_str(", but no other rule drops here");
                }
                s.push(')');
                s
            }
            NfRule::Undecided { why, candidates } => {
                let mut s = format!("rule not named: {why}");
                if !candidates.is_empty() {
                    s.push_str("; candidates: ");
                    let list: Vec<String> = candidates
                        .iter()
                        .map(|c| format!("`{}` ({})", c.text, c.place()))
                        .collect();
                    s.push_str(&list.join(", "));
                }
                s
            }
        }
    }
}
