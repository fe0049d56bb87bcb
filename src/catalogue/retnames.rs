//! Names of return values, per return kind of the catalogue: what `--ret`
//! prints after a value and what rules may compare `ret` with. One table
//! serves both, so a name printed is a name a rule accepts.

use super::table::RetKind;

/// A named return value: `lo..=hi` is what the name stands for (one value,
/// or a range such as "any negative errno" for a netfilter hook drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetName {
    pub name: &'static str,
    pub lo: i64,
    pub hi: i64,
}

const fn one(name: &'static str, v: i64) -> RetName {
    RetName { name, lo: v, hi: v }
}

const NF_VERDICT: &[RetName] = &[
    one("NF_DROP", 0),
    one("NF_ACCEPT", 1),
    one("NF_STOLEN", 2),
    one("NF_QUEUE", 3),
    one("NF_REPEAT", 4),
    one("NF_STOP", 5),
];
/// nf_hook_slow: 1 lets the packet continue, 0 means a hook stole or
/// queued it, a negative errno (normally -EPERM) that a hook dropped it.
const NF_HOOK: &[RetName] = &[
    RetName {
        name: "NF_DROP",
        lo: i64::MIN,
        hi: -1,
    },
    one("NF_ACCEPT", 1),
    one("NF_STOLEN", 0),
];
/// A conntrack protocol handler (`nf_conntrack_tcp_packet`): a negative
/// verdict leaves the packet untracked; -NF_ACCEPT means conntrack found
/// it invalid (rules see ctstate INVALID), -NF_REPEAT that an old
/// connection was closed for a new one on the same tuple.
const CT_VERDICT: &[RetName] = &[
    one("NF_DROP", 0),
    one("NF_ACCEPT", 1),
    one("CT_INVALID", -1),
    one("CT_REOPEN", -4),
];
const XDP_ACTION: &[RetName] = &[
    one("XDP_ABORTED", 0),
    one("XDP_DROP", 1),
    one("XDP_PASS", 2),
    one("XDP_TX", 3),
    one("XDP_REDIRECT", 4),
];
/// GRO_DROP (4) was removed in 5.12, when GRO_CONSUMED took its value.
const GRO_RESULT: &[RetName] = &[
    one("GRO_MERGED", 0),
    one("GRO_MERGED_FREE", 1),
    one("GRO_HELD", 2),
    one("GRO_NORMAL", 3),
    one("GRO_CONSUMED", 4),
    one("GRO_DROP", 4),
];
const NET_RX: &[RetName] = &[one("NET_RX_SUCCESS", 0), one("NET_RX_DROP", 1)];
const NET_XMIT: &[RetName] = &[
    one("NET_XMIT_SUCCESS", 0),
    one("NET_XMIT_DROP", 1),
    one("NET_XMIT_CN", 2),
];
const BOOL: &[RetName] = &[one("false", 0), one("true", 1)];
const POINTER: &[RetName] = &[one("NULL", 0)];

/// errno values by name (Linux x86-64 numbering).
pub const ERRNOS: &[(&str, i64)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("EINTR", 4),
    ("EIO", 5),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("EXDEV", 18),
    ("ENODEV", 19),
    ("EINVAL", 22),
    ("ENOSPC", 28),
    ("EPIPE", 32),
    ("EMSGSIZE", 90),
    ("EOPNOTSUPP", 95),
    ("EAFNOSUPPORT", 97),
    ("EADDRINUSE", 98),
    ("EADDRNOTAVAIL", 99),
    ("ENETDOWN", 100),
    ("ENETUNREACH", 101),
    ("ECONNABORTED", 103),
    ("ECONNRESET", 104),
    ("ENOBUFS", 105),
    ("ETIMEDOUT", 110),
    ("ECONNREFUSED", 111),
    ("EHOSTUNREACH", 113),
];

/// The fixed names of a kind (errno names come from `ERRNOS`).
pub fn names(kind: RetKind) -> &'static [RetName] {
    match kind {
        RetKind::NfVerdict => NF_VERDICT,
        RetKind::NfHook => NF_HOOK,
        RetKind::CtVerdict => CT_VERDICT,
        RetKind::XdpAction => XDP_ACTION,
        RetKind::GroResult => GRO_RESULT,
        RetKind::NetRx => NET_RX,
        RetKind::NetXmit => NET_XMIT,
        RetKind::Bool => BOOL,
        RetKind::Pointer => POINTER,
        _ => &[],
    }
}

/// The value a name is compared with: a netfilter verdict keeps its
/// verdict in the low byte and may carry an errno above bit 16. nftables
/// drops with `NF_DROP_REASON`, which frees the skb itself and returns
/// NF_STOLEN plus the errno: that is a drop, and reads as NF_DROP.
pub fn effective(kind: RetKind, ret: i64) -> i64 {
    const NF_STOLEN: i64 = 2;
    match kind {
        RetKind::NfVerdict => {
            let verdict = ret & 0xff;
            if verdict == NF_STOLEN && (ret >> 16) != 0 {
                0
            } else {
                verdict
            }
        }
        _ => ret,
    }
}

/// A netfilter function's return value as an NF_* verdict number:
/// iptables and nftables return one; nf_hook_slow's values are mapped by
/// the name its table gives them (a negative errno is NF_DROP...).
pub fn as_nf_verdict(kind: RetKind, ret: i64) -> Option<i64> {
    let ret = effective(kind, ret);
    if kind == RetKind::NfVerdict {
        return Some(ret);
    }
    let name = names(kind).iter().find(|n| n.lo <= ret && ret <= n.hi)?;
    lookup(RetKind::NfVerdict, name.name).map(|(v, _)| v)
}

/// The errno a netfilter verdict carries above bit 16 (`NF_DROP_ERR`).
pub fn verdict_errno(ret: i64) -> Option<String> {
    let errno = (ret >> 16) & 0xffff;
    (errno != 0).then(|| errno_name(-errno).unwrap_or_else(|| format!("-{errno}")))
}

/// Whether negative values of this kind are errnos.
pub fn takes_errno(kind: RetKind) -> bool {
    matches!(
        kind,
        RetKind::Errno | RetKind::Int | RetKind::NetRx | RetKind::NetXmit | RetKind::NfHook
    )
}

/// `-EPERM` for -1, when known.
pub fn errno_name(ret: i64) -> Option<String> {
    ERRNOS
        .iter()
        .find(|(_, v)| Some(*v) == ret.checked_neg())
        .map(|(n, _)| format!("-{n}"))
}

/// What a name means for a kind: `NF_DROP`, `-EINVAL`, `true`...
pub fn lookup(kind: RetKind, name: &str) -> Option<(i64, i64)> {
    if let Some(n) = names(kind).iter().find(|n| n.name == name) {
        return Some((n.lo, n.hi));
    }
    let errno = name.strip_prefix('-')?;
    if !takes_errno(kind) {
        return None;
    }
    ERRNOS
        .iter()
        .find(|(n, _)| *n == errno)
        .map(|(_, v)| (-v, -v))
}

/// Every name a kind accepts, for "did you mean" and help texts.
pub fn all_names(kind: RetKind) -> Vec<String> {
    let mut v: Vec<String> = names(kind).iter().map(|n| n.name.to_string()).collect();
    if takes_errno(kind) {
        v.extend(ERRNOS.iter().map(|(n, _)| format!("-{n}")));
    }
    v
}
