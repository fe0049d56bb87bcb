//! A ruleset as the matcher reads it, whichever tool printed it: tables of
//! chains of rules, each rule a sequence of matches and actions in the
//! order the kernel runs them, and the named sets rules look up. A match
//! the parsers do not model is kept as `Test::Unsupported` with its text,
//! so the matcher can say which match it could not evaluate.

use crate::events::nfrule::Firewall;
use crate::events::CtState;
use std::collections::HashMap;
use std::net::IpAddr;

/// The address family a table serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Bridge,
    Arp,
    Netdev,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Bridge => "bridge",
            Family::Arp => "arp",
            Family::Netdev => "netdev",
        }
    }

    pub fn from_name(name: &str) -> Option<Family> {
        [
            Family::Ip,
            Family::Ip6,
            Family::Inet,
            Family::Bridge,
            Family::Arp,
            Family::Netdev,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub tables: Vec<Table>,
    /// ipset's sets, by name (iptables `-m set`).
    pub ipsets: HashMap<String, Set>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub firewall: Firewall,
    pub family: Family,
    pub name: String,
    pub chains: Vec<Chain>,
    /// nft's named sets of this table, by name.
    pub sets: HashMap<String, Set>,
}

impl Table {
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// `filter`, or `inet filter` for nft (its families share names).
    pub fn display_name(&self) -> String {
        match self.firewall {
            Firewall::Nft => format!("{} {}", self.family.name(), self.name),
            _ => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Chain {
    pub name: String,
    /// A base chain's policy; None for a user-defined chain that returns
    /// at its end (ebtables' user chains may instead accept or drop).
    pub policy: Option<Verdict>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// As the tool printed it.
    pub text: String,
    /// nft's handle.
    pub handle: Option<u64>,
    pub items: Vec<Item>,
}

/// One step of a rule, in order: a match that may stop it, or an action.
#[derive(Debug, Clone)]
pub enum Item {
    Match(Match),
    Action(Action),
}

#[derive(Debug, Clone)]
pub struct Match {
    pub negate: bool,
    pub test: Test,
    /// As written (`-m conntrack --ctstate NEW`, `ct state new`), for
    /// saying which match could not be evaluated.
    pub text: String,
}

/// Which address or port of the packet a test reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
}

/// A set of values a packet field is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// Addresses with prefix lengths (a host is a /32 or /128).
    Nets(Vec<(IpAddr, u8)>),
    /// Inclusive address ranges.
    AddrRanges(Vec<(IpAddr, IpAddr)>),
    /// Inclusive numeric ranges (ports, protocols, types, lengths).
    Ranges(Vec<(u32, u32)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// The packet's network family (`nfproto`, iptables' own table).
    Family(u8),
    /// The frame's EtherType (ebtables `-p IPv4`).
    EtherType(u16),
    Addr(Dir, Values),
    /// `IPPROTO_*`.
    Proto(Values),
    /// Ports of TCP, UDP, SCTP and UDP-Lite; false for other protocols.
    Port(Dir, Values),
    /// Either port (`multiport --ports`).
    AnyPort(Values),
    /// Interface names; a trailing `+` (iptables) or `*` (nft) is a prefix.
    InIface(Vec<String>),
    OutIface(Vec<String>),
    CtState(Vec<CtState>),
    /// `(skb->mark & mask) == value`.
    Mark {
        value: u32,
        mask: u32,
    },
    /// ICMP (v6 false) or ICMPv6 type, and code when given.
    Icmp {
        v6: bool,
        types: Vec<(u8, Option<u8>)>,
    },
    /// `(flags & mask) == comp`.
    TcpFlags {
        mask: u8,
        comp: u8,
    },
    /// The packet's length (IP header included).
    Length(Values),
    /// A named set's lookup: ipset (`-m set --match-set NAME src,dst`) or
    /// nft (`ip saddr @NAME`); the fields read, in the set's dimensions.
    SetLookup {
        set: String,
        nft: bool,
        keys: Vec<Key>,
    },
    /// A rate limit: true or false depending on the rate of earlier packets.
    Rate,
    /// Always true (comments, counters).
    Always,
    /// A match the model does not evaluate, and why.
    Unsupported(String),
}

/// A packet field a set is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Addr(Dir),
    Port(Dir),
    Proto,
    InIface,
    OutIface,
    Mark,
}

/// A named set: its elements, each one value per key (one key for a plain
/// address or port set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    /// Set types the model cannot evaluate (`hash:mac`), with why.
    pub unsupported: Option<String>,
    pub elements: Vec<Vec<Values>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    /// REJECT (a drop that answers).
    Reject,
    /// Handed to user space (NFQUEUE): what it decides is not known here.
    Queue,
}

impl Verdict {
    /// A chain's policy as the tools print it (`ACCEPT`, `DROP`); None for
    /// anything else (a user chain's `-` or `RETURN`).
    pub fn from_policy(word: &str) -> Option<Verdict> {
        match word {
            "ACCEPT" => Some(Verdict::Accept),
            "DROP" => Some(Verdict::Drop),
            _ => None,
        }
    }

    /// Whether the kernel reports it as NF_DROP.
    pub fn drops(self) -> bool {
        matches!(self, Verdict::Drop | Verdict::Reject)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Verdict(Verdict),
    Jump(String),
    Goto(String),
    Return,
    /// Sets the mark: `mark = (mark & !mask) ^ value` (`MARK --set-xmark`).
    SetMark {
        value: u32,
        mask: u32,
    },
    /// Changes what later matches see in a way the model does not follow
    /// (the mark, from conntrack): the mark becomes unknown.
    ForgetMark,
    /// A target whose effect is not known: it may end the packet's walk
    /// with any verdict, or let it go on.
    Unknown(String),
    /// Logs, counts, or changes nothing the matches read.
    Nothing,
}
