//! Renders the catalogue into BPF C (through the minijinja templates in
//! `bpf-templates/`) and into the Rust probe table.
//!
//! Like the catalogue schema, this file is compiled both by `build.rs` and by
//! the library (so the generated C can be snapshot-tested on a fixture
//! catalogue); it uses only minijinja, serde and the schema module.

use crate::catalogue::schema::{Catalogue, RetKind};
use minijinja::{context, Environment, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Program-name prefixes per attach flavour. The loader derives program
/// names with the same table (see `prog_name`).
pub const FLAVOUR_PREFIXES: [(&str, &str); 6] = [
    ("fentry", "fe"),
    ("fexit", "fx"),
    ("kprobe", "kp"),
    ("kretprobe", "kr"),
    ("tp_btf", "tb"),
    ("raw_tp", "rt"),
];

/// The program-name prefix of an attach flavour (`fentry` → `fe`).
pub fn flavour_prefix(flavour: &str) -> &'static str {
    FLAVOUR_PREFIXES
        .iter()
        .find(|(f, _)| *f == flavour)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("unknown flavour {flavour}"))
}

/// How a return value is widened to 64 bits, by C type: the casts of the
/// per-probe exit programs, and the classes the kprobe-multi exit program
/// switches on (its cookie's `RET` field).
pub const RET_CASTS: [&str; 4] = [
    "(long long)",
    "(long long)(int)",
    "(long long)(u32)",
    "(long long)(u8)",
];

/// The index in `RET_CASTS` of a return kind.
pub fn ret_class(kind: RetKind) -> u8 {
    match kind {
        RetKind::None | RetKind::Pointer => 0,
        RetKind::Int
        | RetKind::Errno
        | RetKind::NetRx
        | RetKind::NetXmit
        | RetKind::NfHook
        | RetKind::CtVerdict => 1,
        RetKind::NfVerdict | RetKind::XdpAction | RetKind::GroResult | RetKind::DropReason => 2,
        RetKind::Bool => 3,
    }
}

fn ret_cast(kind: RetKind) -> &'static str {
    RET_CASTS[ret_class(kind) as usize]
}

/// The attach cookie of a kprobe-multi function: what the per-probe
/// programs have as constants, packed in 64 bits (name, first bit, width).
/// Argument fields hold an index 0..=5, or `COOKIE_NONE`. The generated C
/// gets `NT_CK_<NAME>(cookie)` readers from this same table.
pub const COOKIE_FIELDS: [(&str, u32, u32); 15] = [
    ("PROBE", 0, 16),
    ("SKB", 16, 4),
    ("SKB_VIA", 20, 2),
    ("SK", 22, 4),
    ("SK_VIA", 26, 1),
    ("KIND", 27, 2),
    ("EXIT", 29, 2),
    ("RET", 31, 2),
    ("NF_STATE", 33, 4),
    ("NF_NFT_PKT", 37, 4),
    ("NF_XT_TABLE", 41, 4),
    ("NF_NFT_CHAIN", 45, 4),
    ("NF_ENTRIES", 49, 4),
    ("VALID", 53, 1),
    ("NF_EBT_TABLE", 54, 4),
];

/// The values of the cookie's enumerated fields (0 is the plain case):
/// `#define NT_CK_<NAME>` in the generated C, these constants in Rust.
pub const CK_SKB_VIA_DEREF: u64 = 1;
pub const CK_SKB_VIA_NFT_PKTINFO: u64 = 2;
pub const CK_KIND_FREE: u64 = 1;
pub const CK_KIND_NF: u64 = 2;
pub const CK_KIND_RTT: u64 = 3;
pub const CK_EXIT_CLONE: u64 = 1;
pub const CK_EXIT_REHEAD: u64 = 2;
const COOKIE_VALUES: [(&str, u64); 7] = [
    ("SKB_VIA_DEREF", CK_SKB_VIA_DEREF),
    ("SKB_VIA_NFT_PKTINFO", CK_SKB_VIA_NFT_PKTINFO),
    ("KIND_FREE", CK_KIND_FREE),
    ("KIND_NF", CK_KIND_NF),
    ("KIND_RTT", CK_KIND_RTT),
    ("EXIT_CLONE", CK_EXIT_CLONE),
    ("EXIT_REHEAD", CK_EXIT_REHEAD),
];

/// log2 of the kprobe.multi cookie table's slots (`km_cookies`, filled by
/// load::generic::cookie_table): 4096 slots of 16 bytes.
pub const KM_SLOT_BITS: u32 = 12;

/// An absent argument in a cookie's argument field.
pub const COOKIE_NONE: u64 = 15;

/// `#define NT_CK_<NAME>(c)` readers for the cookie fields.
fn cookie_readers() -> String {
    let mut s = String::new();
    for (name, shift, width) in COOKIE_FIELDS {
        let _ = writeln!(
            s,
            "#define NT_CK_{name}(c) ((u32)(((c) >> {shift}) & {:#x}))",
            (1u64 << width) - 1
        );
    }
    let _ = writeln!(s, "#define NT_CK_NONE {COOKIE_NONE}");
    for (name, value) in COOKIE_VALUES {
        let _ = writeln!(s, "#define NT_CK_{name} {value}");
    }
    s
}

fn tp_arg(idx: Option<u32>, ty: &str) -> String {
    match idx {
        Some(i) => format!("({ty} *)ctx[{i}]"),
        None => "NULL".into(),
    }
}

/// The template context describing every probe and variant.
fn probe_values(cat: &Catalogue) -> Vec<Value> {
    cat.probes
        .iter()
        .enumerate()
        .map(|(id, p)| {
            let variants: Vec<Value> = p
                .signatures()
                .iter()
                .enumerate()
                .map(|(index, s)| {
                    context! {
                        index => index,
                        skb => s.skb,
                        sk => s.sk,
                        skb_via => p.skb_via.map(|v| match v {
                            crate::catalogue::schema::SkbVia::Deref => "deref",
                            crate::catalogue::schema::SkbVia::NftPktinfo => "nft_pktinfo",
                        }),
                        sk_via => p.sk_via.map(|_| "socket"),
                        ret => s.ret.as_str(),
                        skb_expr_tp => tp_arg(s.skb, "struct sk_buff"),
                        sk_expr_tp => tp_arg(s.sk, "struct sock"),
                        nf_any => s.nf.indexes().iter().any(Option::is_some),
                        nf_state => s.nf.state,
                        nf_xt_table => s.nf.xt_table,
                        nf_ebt_table => s.nf.ebt_table,
                        nf_nft_pkt => s.nf.nft_pkt,
                        nf_nft_chain => s.nf.nft_chain,
                        nf_entries => s.nf.entries,
                    }
                })
                .collect();
            context! {
                id => id,
                name => p.name,
                group => p.group,
                tracepoint => p.tracepoint,
                note => p.note,
                extra => p.extra.map(|e| e.as_str()),
                has_ret => p.signatures().iter().any(|s| s.ret != RetKind::None),
                variants => variants,
            }
        })
        .collect()
}

/// One BPF object built from the template: which function-probe flavours
/// it holds, and whether it has the generic kprobe programs. Opening an
/// object costs time in proportion to its programs (about 3 s for every
/// flavour on an emulated machine), so a run opens the smallest object
/// that has what its plan attaches.
#[derive(Debug, Clone, Copy)]
pub struct ObjectSpec {
    pub name: &'static str,
    /// How its tracepoints attach: tp_btf, and raw_tp for kernels whose
    /// BTF does not describe a tracepoint (or `--tp-mode raw`).
    pub tracepoint_flavours: &'static [&'static str],
    pub function_flavours: &'static [&'static str],
    pub generic: bool,
    /// Also built with `NT_DIRECT_LOADS=1` as `{name}-direct`, for kernels
    /// with bpf_rdonly_cast (6.2+; core.bpf.h). The full object serves
    /// kernels older than that, which read with probe reads anyway.
    pub direct_variant: bool,
}

/// The objects build.rs compiles, smallest last. `nettrace` has every
/// program: the per-probe kprobes are the fallback for kernels that refuse
/// the generic ones (before 5.15, no attach cookies), and the raw_tp
/// programs the fallback for tracepoints BTF does not describe. The
/// smaller ones leave both out: a program costs open time whether or not
/// it loads (raw_tp was 40% of the kprobe object's code).
pub const OBJECTS: [ObjectSpec; 3] = [
    ObjectSpec {
        name: "nettrace",
        tracepoint_flavours: &["tp_btf", "raw_tp"],
        function_flavours: &["fentry", "kprobe"],
        generic: true,
        direct_variant: false,
    },
    ObjectSpec {
        name: "nettrace-fentry",
        tracepoint_flavours: &["tp_btf"],
        function_flavours: &["fentry"],
        generic: true,
        direct_variant: true,
    },
    ObjectSpec {
        name: "nettrace-kprobe",
        tracepoint_flavours: &["tp_btf"],
        function_flavours: &[],
        generic: true,
        direct_variant: true,
    },
];

/// Renders the BPF C source of one object for `cat` from the template text.
pub fn render_bpf(
    cat: &Catalogue,
    template: &str,
    object: &ObjectSpec,
) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.set_trim_blocks(false);
    env.add_template("nettrace.bpf.c", template)?;
    let flavour_prefix: BTreeMap<&str, &str> = FLAVOUR_PREFIXES.into_iter().collect();
    let ctx_type: BTreeMap<&str, &str> = [("fentry", "u64"), ("kprobe", "struct pt_regs")]
        .into_iter()
        .collect();
    // Argument readers: the template appends "(index)".
    let arg: BTreeMap<&str, &str> = [("fentry", "NT_FENTRY_ARG"), ("kprobe", "NT_KPROBE_ARG")]
        .into_iter()
        .collect();
    let ret_casts: BTreeMap<&str, &str> = RetKind::ALL
        .iter()
        .map(|k| (k.as_str(), ret_cast(*k)))
        .collect();
    env.get_template("nettrace.bpf.c")?.render(context! {
        probes => probe_values(cat),
        flavour_prefix => flavour_prefix,
        ctx_type => ctx_type,
        arg => arg,
        ret_cast => ret_casts,
        cookie_readers => cookie_readers(),
        ret_casts => RET_CASTS,
        km_slot_bits => KM_SLOT_BITS,
        object => object.name,
        tracepoint_flavours => object.tracepoint_flavours,
        function_flavours => object.function_flavours,
        generic => object.generic,
    })
}

/// The program name of one probe variant in one flavour.
pub fn prog_name(flavour_prefix: &str, probe: &str, variant: usize) -> String {
    format!("{flavour_prefix}__{probe}__{variant}")
}

fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

fn rust_opt_u32(v: Option<u32>) -> String {
    match v {
        Some(i) => format!("Some({i})"),
        None => "None".into(),
    }
}

/// Renders the Rust probe table (`include!`d by `catalogue::table`).
pub fn render_rust(cat: &Catalogue) -> String {
    let mut out = String::new();
    out.push_str("// GENERATED by build.rs from probes.yaml. Do not edit.\n\n");
    out.push_str("pub static GROUPS: &[GroupDef] = &[\n");
    for g in &cat.groups {
        let _ = writeln!(
            out,
            "    GroupDef {{ name: {}, parent: None, description: {}, default_on: {} }},",
            rust_str(&g.name),
            rust_str(&g.description),
            g.default
        );
        for c in &g.children {
            let _ = writeln!(
                out,
                "    GroupDef {{ name: {}, parent: Some({}), description: {}, default_on: {} }},",
                rust_str(&c.name),
                rust_str(&g.name),
                rust_str(&c.description),
                c.default && g.default
            );
        }
    }
    out.push_str("];\n\n");
    out.push_str("pub static PROBES: &[ProbeDef] = &[\n");
    let group_default: BTreeMap<&str, bool> = cat
        .leaf_groups()
        .iter()
        .map(|(g, parent)| {
            (
                g.name.as_str(),
                g.default && parent.is_none_or(|p| p.default),
            )
        })
        .collect();
    for (id, p) in cat.probes.iter().enumerate() {
        let kind = match &p.tracepoint {
            Some(tp) => {
                let (sys, ev) = tp.split_once('/').unwrap_or(("", tp));
                format!(
                    "ProbeKind::Tracepoint {{ system: {}, event: {} }}",
                    rust_str(sys),
                    rust_str(ev)
                )
            }
            None => "ProbeKind::Function".into(),
        };
        let symbols: Vec<String> = p.symbol_candidates().iter().map(|s| rust_str(s)).collect();
        let sigs: Vec<String> = p
            .signatures()
            .iter()
            .map(|s| {
                format!(
                    "SignatureDef {{ skb: {}, sk: {}, ret: RetKind::{}, nf: NfArgsDef {{ state: {}, xt_table: {}, ebt_table: {}, nft_pkt: {}, nft_chain: {}, entries: {} }}, before: {} }}",
                    rust_opt_u32(s.skb),
                    rust_opt_u32(s.sk),
                    s.ret.rust_variant(),
                    rust_opt_u32(s.nf.state),
                    rust_opt_u32(s.nf.xt_table),
                    rust_opt_u32(s.nf.ebt_table),
                    rust_opt_u32(s.nf.nft_pkt),
                    rust_opt_u32(s.nf.nft_chain),
                    rust_opt_u32(s.nf.entries),
                    s.before
                        .map_or("None".to_string(), |(major, minor)| format!("Some(({major}, {minor}))"))
                )
            })
            .collect();
        let extra = match p.extra {
            Some(e) => format!("Some(Extra::{e:?})"),
            None => "None".into(),
        };
        let default_on = p
            .default
            .unwrap_or_else(|| group_default.get(p.group.as_str()).copied().unwrap_or(true));
        let _ = writeln!(
            out,
            "    ProbeDef {{ id: {id}, name: {}, group: {}, kind: {kind}, symbols: &[{}], skb_via: {}, sk_via: {}, ret: RetKind::{}, extra: {extra}, default_on: {default_on}, signatures: &[{}], note: {} }},",
            rust_str(&p.name),
            rust_str(&p.group),
            symbols.join(", "),
            match p.skb_via {
                Some(crate::catalogue::schema::SkbVia::Deref) => "Some(SkbVia::Deref)",
                Some(crate::catalogue::schema::SkbVia::NftPktinfo) => "Some(SkbVia::NftPktinfo)",
                None => "None",
            },
            if p.sk_via.is_some() { "Some(SkVia::Socket)" } else { "None" },
            p.ret_kind().rust_variant(),
            sigs.join(", "),
            match &p.note {
                Some(n) => format!("Some({})", rust_str(n)),
                None => "None".into(),
            }
        );
    }
    out.push_str("];\n");
    out
}
