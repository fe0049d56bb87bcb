//! The shape of `probes.yaml` and the checks it must pass.
//!
//! This file is compiled twice: by `build.rs` (through `#[path]`), which
//! refuses to build a catalogue that fails validation, and by the library,
//! whose tests exercise the same checks. It therefore depends only on serde,
//! serde_yaml and std.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The most arguments a function probe may index: kprobes read arguments
/// from registers, and x86-64 passes six.
pub const MAX_ARG_INDEX: u32 = 5;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub groups: Vec<Group>,
    pub probes: Vec<Probe>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub default: bool,
    #[serde(default)]
    pub children: Vec<Group>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub name: String,
    pub group: String,
    #[serde(default)]
    pub tracepoint: Option<String>,
    #[serde(default)]
    pub symbols: Vec<String>,
    #[serde(default)]
    pub skb: Option<u32>,
    #[serde(default)]
    pub skb_via: Option<SkbVia>,
    #[serde(default)]
    pub sk: Option<u32>,
    #[serde(default)]
    pub sk_via: Option<SkVia>,
    #[serde(default)]
    pub ret: Option<RetKind>,
    #[serde(default)]
    pub extra: Option<Extra>,
    #[serde(default)]
    pub default: Option<bool>,
    #[serde(default)]
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub nf: Option<NfArgs>,
    #[serde(default)]
    pub note: Option<String>,
}

/// Where a netfilter function's facts are: argument indexes of the hook
/// state (family and hook), the iptables or ebtables table, or nftables' packet info
/// (whose `state` is the hook state) and chain (table and chain names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NfArgs {
    #[serde(default)]
    pub state: Option<u32>,
    #[serde(default)]
    pub xt_table: Option<u32>,
    /// `struct ebt_table *`: the ebtables table (its name).
    #[serde(default)]
    pub ebt_table: Option<u32>,
    #[serde(default)]
    pub nft_pkt: Option<u32>,
    #[serde(default)]
    pub nft_chain: Option<u32>,
    /// `struct nf_hook_entries *`: every hook function on this hook, read
    /// for `--hooks`.
    #[serde(default)]
    pub entries: Option<u32>,
}

impl NfArgs {
    pub fn indexes(&self) -> [Option<u32>; 6] {
        [
            self.state,
            self.xt_table,
            self.ebt_table,
            self.nft_pkt,
            self.nft_chain,
            self.entries,
        ]
    }
}

/// Another kernel's signature of the same probe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[serde(default)]
    pub skb: Option<u32>,
    #[serde(default)]
    pub sk: Option<u32>,
    #[serde(default)]
    pub ret: Option<RetKind>,
    /// Netfilter argument indexes of this signature (default: the probe's).
    #[serde(default)]
    pub nf: Option<NfArgs>,
    /// The kernels before this release (`"5.16"`) have this signature:
    /// the choice where BTF cannot tell, as for a module's function
    /// before module BTF (5.11).
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// `major.minor` of a release bound (`"5.16"`).
pub fn parse_release(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkbVia {
    /// The argument is `struct sk_buff **`.
    Deref,
    /// The argument is `struct nft_pktinfo *`.
    NftPktinfo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkVia {
    /// The argument is `struct socket *`.
    Socket,
}

/// What a probe's return value means; drives `--ret` naming and rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetKind {
    None,
    Int,
    Errno,
    Bool,
    Pointer,
    NfVerdict,
    NfHook,
    CtVerdict,
    XdpAction,
    GroResult,
    NetRx,
    NetXmit,
    DropReason,
}

// Compiled rules keep per-kind tables indexed by `kind as usize`
// (rules::compile::Val::RetName): ALL lists the kinds in that order.
const _: () = {
    let mut i = 0;
    while i < RetKind::ALL.len() {
        assert!(RetKind::ALL[i] as usize == i);
        i += 1;
    }
};

impl RetKind {
    pub const ALL: [RetKind; 13] = [
        RetKind::None,
        RetKind::Int,
        RetKind::Errno,
        RetKind::Bool,
        RetKind::Pointer,
        RetKind::NfVerdict,
        RetKind::NfHook,
        RetKind::CtVerdict,
        RetKind::XdpAction,
        RetKind::GroResult,
        RetKind::NetRx,
        RetKind::NetXmit,
        RetKind::DropReason,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetKind::None => "none",
            RetKind::Int => "int",
            RetKind::Errno => "errno",
            RetKind::Bool => "bool",
            RetKind::Pointer => "pointer",
            RetKind::NfVerdict => "nf_verdict",
            RetKind::NfHook => "nf_hook",
            RetKind::CtVerdict => "ct_verdict",
            RetKind::XdpAction => "xdp_action",
            RetKind::GroResult => "gro_result",
            RetKind::NetRx => "net_rx",
            RetKind::NetXmit => "net_xmit",
            RetKind::DropReason => "drop_reason",
        }
    }

    /// The Rust path of the matching generated enum variant.
    pub fn rust_variant(self) -> &'static str {
        match self {
            RetKind::None => "None",
            RetKind::Int => "Int",
            RetKind::Errno => "Errno",
            RetKind::Bool => "Bool",
            RetKind::Pointer => "Pointer",
            RetKind::NfVerdict => "NfVerdict",
            RetKind::NfHook => "NfHook",
            RetKind::CtVerdict => "CtVerdict",
            RetKind::XdpAction => "XdpAction",
            RetKind::GroResult => "GroResult",
            RetKind::NetRx => "NetRx",
            RetKind::NetXmit => "NetXmit",
            RetKind::DropReason => "DropReason",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extra {
    /// Drop reason, location and (optionally) the kernel stack.
    Drop,
    /// The returned skb joins the packet's context.
    Clone,
    /// The skb's life ends here.
    Free,
    /// The function may give the skb a new data buffer (`skb->head`); the
    /// exit program records it, so the packet keeps its identity.
    Rehead,
    /// The probe can fire after the skb was freed (`net_dev_xmit` reports
    /// the driver's return code once the driver has consumed it): in
    /// lifecycle mode it speaks only for a packet already followed, or a
    /// freed skb whose stale bytes still match would open a packet of its
    /// own.
    Followed,
    /// `tcp_ack_update_rtt`: arguments 2 and 4 are the RTT samples
    /// (`seq_rtt_us`, `ca_rtt_us`) the RTT modes read.
    Rtt,
    /// The `tcp_send_reset` tracepoint: the argument after the skb is the
    /// reset's `enum sk_rst_reason` (6.10 and later; the program reads it
    /// only where BTF has the enum).
    RstReason,
    /// The `inet_sock_set_state` tracepoint: the two arguments after the
    /// sk are the old and the new TCP state.
    StateChange,
}

impl Extra {
    pub fn as_str(self) -> &'static str {
        match self {
            Extra::Drop => "drop",
            Extra::Clone => "clone",
            Extra::Free => "free",
            Extra::Rehead => "rehead",
            Extra::Followed => "followed",
            Extra::Rtt => "rtt",
            Extra::RstReason => "rst_reason",
            Extra::StateChange => "state_change",
        }
    }
}

/// A catalogue error, naming the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueError {
    pub entry: String,
    pub message: String,
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "probes.yaml: {}: {}", self.entry, self.message)
    }
}

impl std::error::Error for CatalogueError {}

fn err(entry: &str, message: impl Into<String>) -> CatalogueError {
    CatalogueError {
        entry: entry.to_string(),
        message: message.into(),
    }
}

impl Catalogue {
    /// Parses and validates a catalogue; every problem found is returned.
    pub fn from_yaml(text: &str) -> Result<Catalogue, Vec<CatalogueError>> {
        let cat: Catalogue = serde_yaml::from_str(text).map_err(|e| {
            let place = e
                .location()
                .map(|l| format!("line {} column {}", l.line(), l.column()))
                .unwrap_or_else(|| "document".into());
            vec![err(&place, e.to_string())]
        })?;
        let errors = cat.validate();
        if errors.is_empty() {
            Ok(cat)
        } else {
            Err(errors)
        }
    }

    /// Leaf groups with their parent, in tree order.
    pub fn leaf_groups(&self) -> Vec<(&Group, Option<&Group>)> {
        let mut out = Vec::new();
        for g in &self.groups {
            if g.children.is_empty() {
                out.push((g, None));
            } else {
                for c in &g.children {
                    out.push((c, Some(g)));
                }
            }
        }
        out
    }

    pub fn validate(&self) -> Vec<CatalogueError> {
        let mut errors = Vec::new();
        let mut group_names = BTreeSet::new();
        for g in &self.groups {
            if !group_names.insert(g.name.as_str()) {
                errors.push(err(&g.name, "duplicate group name"));
            }
            for c in &g.children {
                if !c.children.is_empty() {
                    errors.push(err(&c.name, "groups nest two levels deep at most"));
                }
                if !group_names.insert(c.name.as_str()) {
                    errors.push(err(&c.name, "duplicate group name"));
                }
            }
        }
        let leaves: BTreeSet<&str> = self
            .leaf_groups()
            .iter()
            .map(|(g, _)| g.name.as_str())
            .collect();

        let mut probe_names: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &self.probes {
            *probe_names.entry(p.name.as_str()).or_default() += 1;
            if !is_c_ident(&p.name) {
                errors.push(err(&p.name, "name must be a C identifier"));
            }
            if !leaves.contains(p.group.as_str()) {
                errors.push(err(
                    &p.name,
                    format!("group `{}` is not a leaf group of the tree", p.group),
                ));
            }
            if p.skb.is_none() && p.sk.is_none() {
                errors.push(err(&p.name, "needs an skb or sk argument index"));
            }
            if p.skb_via.is_some() && p.skb.is_none() {
                errors.push(err(&p.name, "skb_via without skb"));
            }
            if p.sk_via.is_some() && p.sk.is_none() {
                errors.push(err(&p.name, "sk_via without sk"));
            }
            let max = if p.tracepoint.is_some() {
                MAX_ARG_INDEX + 6
            } else {
                MAX_ARG_INDEX
            };
            for (what, idx) in [("skb", p.skb), ("sk", p.sk)] {
                if let Some(i) = idx {
                    if i > max {
                        errors.push(err(
                            &p.name,
                            format!("{what} index {i} is out of range (at most {max})"),
                        ));
                    }
                }
            }
            if p.skb.is_some() && p.skb == p.sk {
                errors.push(err(&p.name, "skb and sk cannot be the same argument"));
            }
            if let Some(tp) = &p.tracepoint {
                match tp.split_once('/') {
                    Some((sys, ev)) if is_c_ident(sys) && is_c_ident(ev) => {}
                    _ => errors.push(err(
                        &p.name,
                        format!("tracepoint `{tp}` must be `system/event`"),
                    )),
                }
                if p.ret.is_some() {
                    errors.push(err(&p.name, "tracepoints have no return value"));
                }
                if !p.symbols.is_empty() {
                    errors.push(err(&p.name, "tracepoints take no `symbols`"));
                }
                if p.skb_via.is_some() || p.sk_via.is_some() {
                    errors.push(err(&p.name, "tracepoints take no skb_via/sk_via"));
                }
            } else if p.ret.is_none() {
                errors.push(err(
                    &p.name,
                    "function probes must say what `ret` means (none if void)",
                ));
            }
            if p.extra == Some(Extra::Clone) && p.ret != Some(RetKind::Pointer) {
                errors.push(err(&p.name, "extra: clone needs ret: pointer"));
            }
            if p.nf.is_some() && p.tracepoint.is_some() {
                errors.push(err(&p.name, "nf: argument indexes are for function probes"));
            }
            for sig in p.signatures() {
                if sig
                    .nf
                    .indexes()
                    .iter()
                    .flatten()
                    .any(|&i| i > MAX_ARG_INDEX)
                {
                    errors.push(err(
                        &p.name,
                        format!("nf: argument index above {MAX_ARG_INDEX}"),
                    ));
                }
            }
            if p.extra == Some(Extra::Followed) && p.tracepoint.is_none() {
                errors.push(err(&p.name, "extra: followed is for tracepoints"));
            }
            if p.extra == Some(Extra::RstReason) && (p.tracepoint.is_none() || p.skb.is_none()) {
                errors.push(err(
                    &p.name,
                    "extra: rst_reason is for a tracepoint with an skb argument",
                ));
            }
            if p.extra == Some(Extra::StateChange) && (p.tracepoint.is_none() || p.sk.is_none()) {
                errors.push(err(
                    &p.name,
                    "extra: state_change is for a tracepoint with an sk argument",
                ));
            }
            if p.extra == Some(Extra::Rtt) && (p.tracepoint.is_some() || p.sk.is_none()) {
                errors.push(err(
                    &p.name,
                    "extra: rtt is for a function probe with an sk argument",
                ));
            }
            if p.extra == Some(Extra::Rehead) && (p.tracepoint.is_some() || p.ret.is_none()) {
                errors.push(err(
                    &p.name,
                    "extra: rehead needs a function probe with a `ret`",
                ));
            }
            for s in &p.symbols {
                if !is_c_ident(s) {
                    errors.push(err(&p.name, format!("symbol `{s}` is not a C identifier")));
                }
            }
            for (i, v) in p.variants.iter().enumerate() {
                let label = format!("{} (variant {})", p.name, i + 1);
                if v.skb.is_none() && v.sk.is_none() {
                    errors.push(err(&label, "needs an skb or sk argument index"));
                }
                for (what, idx) in [("skb", v.skb), ("sk", v.sk)] {
                    if let Some(i) = idx {
                        if i > max {
                            errors.push(err(
                                &label,
                                format!("{what} index {i} is out of range (at most {max})"),
                            ));
                        }
                    }
                }
                if v.ret.is_some() && p.tracepoint.is_some() {
                    errors.push(err(&label, "tracepoints have no return value"));
                }
                if let Some(b) = &v.before {
                    if parse_release(b).is_none() {
                        errors.push(err(
                            &label,
                            format!("before: `{b}` is not a kernel release like \"5.16\""),
                        ));
                    }
                }
            }
        }
        for (name, n) in probe_names {
            if n > 1 {
                errors.push(err(name, format!("duplicate probe name ({n} entries)")));
            }
        }
        errors
    }
}

impl Probe {
    pub fn is_tracepoint(&self) -> bool {
        self.tracepoint.is_some()
    }

    /// Kernel symbols to try, in order.
    pub fn symbol_candidates(&self) -> Vec<&str> {
        if self.symbols.is_empty() {
            vec![self.name.as_str()]
        } else {
            self.symbols.iter().map(String::as_str).collect()
        }
    }

    pub fn ret_kind(&self) -> RetKind {
        self.ret.unwrap_or(RetKind::None)
    }

    /// The primary signature followed by the variants, each fully resolved.
    pub fn signatures(&self) -> Vec<Signature> {
        let mut out = vec![Signature {
            skb: self.skb,
            sk: self.sk,
            ret: self.ret_kind(),
            nf: self.nf.unwrap_or_default(),
            before: None,
        }];
        for v in &self.variants {
            out.push(Signature {
                skb: v.skb,
                sk: v.sk,
                ret: v.ret.unwrap_or(self.ret_kind()),
                nf: v.nf.or(self.nf).unwrap_or_default(),
                before: v.before.as_deref().and_then(parse_release),
            });
        }
        out
    }
}

/// One way to read a probe's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub skb: Option<u32>,
    pub sk: Option<u32>,
    pub ret: RetKind,
    pub nf: NfArgs,
    /// Kernels before this release have it (variants only).
    pub before: Option<(u32, u32)>,
}

fn is_c_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}
