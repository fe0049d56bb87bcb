//! Names of netfilter families and hooks, as the kernel numbers them
//! (NFPROTO_*, NF_INET_*), for event lines and for rules (`nf.family`,
//! `nf.hook`). One table serves both.

use std::borrow::Cow;

/// NFPROTO_* values and their names.
pub const FAMILIES: &[(&str, u8)] = &[
    ("inet", 1),
    ("ipv4", 2),
    ("arp", 3),
    ("netdev", 5),
    ("bridge", 7),
    ("ipv6", 10),
];

/// NF_INET_* hooks: (hook name, iptables chain name).
pub const HOOKS: &[(&str, &str)] = &[
    ("PRE_ROUTING", "PREROUTING"),
    ("LOCAL_IN", "INPUT"),
    ("FORWARD", "FORWARD"),
    ("LOCAL_OUT", "OUTPUT"),
    ("POST_ROUTING", "POSTROUTING"),
];

const NETDEV_HOOKS: &[&str] = &["INGRESS", "EGRESS"];
const NFPROTO_NETDEV: u8 = 5;
const NFPROTO_BRIDGE: u8 = 7;
/// NF_BR_BROUTING: the bridge family's sixth hook (ebtables' broute table).
const BR_BROUTING: u8 = 5;

// Names are borrowed: the event lines of every netfilter probe carry them.
pub fn family_name(pf: u8) -> Cow<'static, str> {
    FAMILIES
        .iter()
        .find(|(_, v)| *v == pf)
        .map(|(n, _)| Cow::Borrowed(*n))
        .unwrap_or_else(|| Cow::Owned(format!("family {pf}")))
}

pub fn hook_name(pf: u8, hook: u8) -> Cow<'static, str> {
    let name = if pf == NFPROTO_NETDEV {
        NETDEV_HOOKS.get(hook as usize).copied()
    } else if pf == NFPROTO_BRIDGE && hook == BR_BROUTING {
        Some("BROUTING")
    } else {
        HOOKS.get(hook as usize).map(|(n, _)| *n)
    };
    name.map(Cow::Borrowed)
        .unwrap_or_else(|| Cow::Owned(format!("hook {hook}")))
}

/// The ebtables chain a bridge hook runs: iptables' names, and BROUTING.
pub fn ebtables_chain(hook: u8) -> Option<&'static str> {
    match hook {
        BR_BROUTING => Some("BROUTING"),
        h => iptables_chain(h),
    }
}

/// The iptables chain a hook runs (`PREROUTING`...).
pub fn iptables_chain(hook: u8) -> Option<&'static str> {
    HOOKS.get(hook as usize).map(|(_, c)| *c)
}

/// A hook number by name (`FORWARD`, `PRE_ROUTING`; iptables' `PREROUTING`
/// too), for rules.
pub fn hook_by_name(name: &str) -> Option<u8> {
    let up = name.to_ascii_uppercase();
    HOOKS
        .iter()
        .position(|(h, c)| *h == up || *c == up)
        .or_else(|| NETDEV_HOOKS.iter().position(|h| *h == up))
        .map(|i| i as u8)
        .or_else(|| (up == "BROUTING").then_some(BR_BROUTING))
}

pub fn family_by_name(name: &str) -> Option<u8> {
    FAMILIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}
