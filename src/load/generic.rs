//! The generic kprobe programs (`km__*` with kprobe.multi, `kg__*` with
//! one kprobe link per function): one entry and one exit program for every
//! function probe. Loading 2 programs instead of 2 per probe is most of the
//! start-up saved in kprobe mode; this module packs what differs between
//! probes into each attachment's cookie, in the layout the generated C
//! reads (`COOKIE_FIELDS`, shared with build.rs through codegen::render).
//! With kprobe.multi it also lays out the address → cookie table the
//! programs read instead of the kernel's cookie search (`km_cookies`).

use crate::catalogue::table::{Extra, ProbeDef, SkbVia};
use crate::codegen::render::{
    ret_class, CK_EXIT_CLONE, CK_EXIT_REHEAD, CK_KIND_FREE, CK_KIND_NF, CK_KIND_RTT,
    CK_SKB_VIA_DEREF, CK_SKB_VIA_NFT_PKTINFO, COOKIE_FIELDS, COOKIE_NONE, KM_SLOT_BITS,
};

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
            Some(SkbVia::Deref) => CK_SKB_VIA_DEREF,
            Some(SkbVia::NftPktinfo) => CK_SKB_VIA_NFT_PKTINFO,
        },
    );
    put(&mut c, "SK", arg(sig.sk));
    put(&mut c, "SK_VIA", probe.sk_via.is_some().into());
    let nf = &sig.nf;
    let nf_any = [
        nf.state,
        nf.xt_table,
        nf.ebt_table,
        nf.nft_pkt,
        nf.nft_chain,
        nf.entries,
    ]
    .iter()
    .any(Option::is_some);
    let kind = match probe.extra {
        Some(Extra::Free) => CK_KIND_FREE,
        Some(Extra::Rtt) => CK_KIND_RTT,
        _ if nf_any => CK_KIND_NF,
        _ => 0,
    };
    put(&mut c, "KIND", kind);
    put(
        &mut c,
        "EXIT",
        match probe.extra {
            Some(Extra::Clone) => CK_EXIT_CLONE,
            Some(Extra::Rehead) => CK_EXIT_REHEAD,
            _ => 0,
        },
    );
    put(&mut c, "RET", ret_class(sig.ret).into());
    put(&mut c, "NF_STATE", arg(sig.nf.state));
    put(&mut c, "NF_NFT_PKT", arg(sig.nf.nft_pkt));
    put(&mut c, "NF_XT_TABLE", arg(sig.nf.xt_table));
    put(&mut c, "NF_EBT_TABLE", arg(sig.nf.ebt_table));
    put(&mut c, "NF_NFT_CHAIN", arg(sig.nf.nft_chain));
    put(&mut c, "NF_ENTRIES", arg(sig.nf.entries));
    c
}

/// Slots of the kprobe.multi cookie table (the map has one more, the
/// multiplier's).
pub const KM_SLOTS: usize = 1 << KM_SLOT_BITS;

/// The slot of function address `ip` under multiplier `mul`, as the
/// generated C computes it (`km_cookie`).
pub fn km_slot(ip: u64, mul: u64) -> u32 {
    (ip.wrapping_mul(mul) >> (64 - KM_SLOT_BITS)) as u32
}

/// The kprobe.multi cookie table: (slot, address, cookie) for each
/// function that got a slot of its own under `mul`; `collisions` lost
/// theirs and are answered by the kernel's search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieTable {
    pub mul: u64,
    pub slots: Vec<(u32, u64, u64)>,
    pub collisions: usize,
}

/// Multipliers tried before settling for the one with fewest collisions.
const KM_TRIES: u64 = 4096;

/// Lays out (address, cookie) pairs, searching odd multipliers (a fixed
/// sequence, so a run is reproducible) for one that gives every address a
/// slot of its own: with ~150 functions in 4096 slots about one in ten
/// does.
pub fn cookie_table(functions: &[(u64, u64)]) -> CookieTable {
    let mut taken = vec![0u64; KM_SLOTS / 64];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut best: Option<(usize, u64)> = None;
    for _ in 0..KM_TRIES {
        let mul = splitmix64(&mut seed) | 1;
        let collisions = place(functions, mul, &mut taken, |_| {});
        if best.is_none_or(|(c, _)| collisions < c) {
            best = Some((collisions, mul));
        }
        if collisions == 0 {
            break;
        }
    }
    let Some((_, mul)) = best else {
        unreachable!("KM_TRIES > 0");
    };
    let mut slots = Vec::with_capacity(functions.len());
    let collisions = place(functions, mul, &mut taken, |slot| slots.push(slot));
    CookieTable {
        mul,
        slots,
        collisions,
    }
}

/// Places each (address, cookie) in its slot under `mul`, first come first
/// served, handing the placed ones to `placed`; returns how many found
/// their slot taken.
fn place(
    functions: &[(u64, u64)],
    mul: u64,
    taken: &mut [u64],
    mut placed: impl FnMut((u32, u64, u64)),
) -> usize {
    taken.fill(0);
    let mut collisions = 0;
    for &(ip, cookie) in functions {
        let s = km_slot(ip, mul);
        let (word, bit) = (s as usize / 64, 1u64 << (s % 64));
        if taken[word] & bit != 0 {
            collisions += 1;
        } else {
            taken[word] |= bit;
            placed((s, ip, cookie));
        }
    }
    collisions
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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

    /// Function-like addresses: 16-byte aligned, spread over a 16 MiB text.
    fn addresses(n: u64, seed: u64) -> Vec<(u64, u64)> {
        let mut state = seed;
        (0..n)
            .map(|i| {
                let off = (splitmix64(&mut state) % (16 << 20)) & !0xf;
                (0xffff_ffff_8100_0000 + off, i + 1)
            })
            .collect()
    }

    #[test]
    fn the_catalogue_size_gets_a_slot_each() {
        for seed in 0..20 {
            let fns = addresses(PROBES.len() as u64, seed);
            let table = cookie_table(&fns);
            assert_eq!(table.collisions, 0, "seed {seed}");
            assert_eq!(table.slots.len(), fns.len());
            for (ip, cookie) in &fns {
                let s = km_slot(*ip, table.mul);
                assert!((s as usize) < KM_SLOTS);
                let hit = table.slots.iter().find(|e| e.0 == s).unwrap();
                assert_eq!((hit.1, hit.2), (*ip, *cookie));
            }
        }
    }

    #[test]
    fn too_many_functions_leave_collisions_to_the_kernel() {
        let fns = addresses(KM_SLOTS as u64 + 10, 7);
        let table = cookie_table(&fns);
        assert!(table.collisions >= 10);
        assert_eq!(table.slots.len() + table.collisions, fns.len());
        let mut seen: Vec<u32> = table.slots.iter().map(|e| e.0).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), table.slots.len(), "one function a slot");
        assert_eq!(table.mul & 1, 1);
    }
}
