//! The generic kprobe programs (`km__*` with kprobe.multi, `kg__*` with
//! one kprobe link per function): one entry and one exit program for every
//! function probe. Loading 2 programs instead of 2 per probe is most of the
//! start-up saved in kprobe mode; this module packs what differs between
//! probes into each attachment's cookie, in the layout the generated C
//! reads (`COOKIE_FIELDS`, shared with build.rs through codegen::render).

use crate::catalogue::table::{Extra, ProbeDef, SkbVia};
use crate::codegen::render::{ret_class, COOKIE_FIELDS, COOKIE_NONE};

/// Program names: kprobe.multi entry/exit, per-function kprobe entry/exit.
pub const MULTI_ENTRY: &str = "km__entry";
pub const MULTI_EXIT: &str = "km__exit";
pub const SINGLE_ENTRY: &str = "kg__entry";
pub const SINGLE_EXIT: &str = "kg__exit";

fn put(cookie: &mut u64, field: &str, value: u64) {
    let (_, shift, width) = COOKIE_FIELDS
        .iter()
        .find(|(name, _, _)| *name == field)
        .unwrap_or_else(|| panic!("no cookie field {field}"));
    let mask = (1u64 << width) - 1;
    debug_assert!(value <= mask, "{field} = {value} does not fit {width} bits");
    *cookie |= (value & mask) << shift;
}

fn arg(i: Option<u32>) -> u64 {
    i.map_or(COOKIE_NONE, u64::from)
}

/// The cookie of one probe variant: the probe id, where its skb, socket
/// and netfilter facts are, what its exit does and how its return value
/// widens.
pub fn cookie(probe: &ProbeDef, variant: usize) -> u64 {
    let sig = &probe.signatures[variant];
    let mut c = 0;
    put(&mut c, "VALID", 1);
    put(&mut c, "PROBE", probe.id.into());
    put(&mut c, "SKB", arg(sig.skb));
    put(
        &mut c,
        "SKB_VIA",
        match probe.skb_via {
            None => 0,
            Some(SkbVia::Deref) => 1,
            Some(SkbVia::NftPktinfo) => 2,
        },
    );
    put(&mut c, "SK", arg(sig.sk));
    put(&mut c, "SK_VIA", probe.sk_via.is_some().into());
    let nf = &sig.nf;
    let nf_any = [nf.state, nf.xt_table, nf.nft_pkt, nf.nft_chain, nf.entries]
        .iter()
        .any(Option::is_some);
    let kind = match probe.extra {
        Some(Extra::Free) => 1,
        _ if nf_any => 2,
        _ => 0,
    };
    put(&mut c, "KIND", kind);
    put(
        &mut c,
        "EXIT",
        match probe.extra {
            Some(Extra::Clone) => 1,
            Some(Extra::Rehead) => 2,
            _ => 0,
        },
    );
    put(&mut c, "RET", ret_class(sig.ret).into());
    put(&mut c, "NF_STATE", arg(sig.nf.state));
    put(&mut c, "NF_NFT_PKT", arg(sig.nf.nft_pkt));
    put(&mut c, "NF_XT_TABLE", arg(sig.nf.xt_table));
    put(&mut c, "NF_NFT_CHAIN", arg(sig.nf.nft_chain));
    put(&mut c, "NF_ENTRIES", arg(sig.nf.entries));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::table::PROBES;

    fn get(c: u64, field: &str) -> u64 {
        let (_, shift, width) = COOKIE_FIELDS.iter().find(|f| f.0 == field).unwrap();
        (c >> shift) & ((1 << width) - 1)
    }

    #[test]
    fn fields_do_not_overlap_and_fit_64_bits() {
        let mut used = 0u64;
        for (name, shift, width) in COOKIE_FIELDS {
            assert!(shift + width <= 64, "{name}");
            let mask = ((1u64 << width) - 1) << shift;
            assert_eq!(used & mask, 0, "{name} overlaps");
            used |= mask;
        }
    }

    #[test]
    fn every_function_probe_round_trips() {
        for p in PROBES.iter().filter(|p| !p.is_tracepoint()) {
            for (v, sig) in p.signatures.iter().enumerate() {
                let c = cookie(p, v);
                assert_eq!(get(c, "PROBE"), u64::from(p.id), "{}", p.name);
                assert_eq!(get(c, "SKB"), arg(sig.skb), "{}", p.name);
                assert_eq!(get(c, "SK"), arg(sig.sk), "{}", p.name);
                assert_eq!(get(c, "NF_STATE"), arg(sig.nf.state), "{}", p.name);
                assert_eq!(get(c, "NF_ENTRIES"), arg(sig.nf.entries), "{}", p.name);
                assert_eq!(get(c, "RET"), u64::from(ret_class(sig.ret)), "{}", p.name);
                assert_eq!(get(c, "VALID"), 1);
            }
        }
    }
}
