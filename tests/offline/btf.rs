//! Kernel enums come from BTF and differ between kernels: fixtures made by
//! tools/make-btf-fixture from Debian 6.1, 6.12 and the 6.18 host.

use nettrace::kernel::btf::{DropReasons, KernelBtf, Signature};
use std::path::PathBuf;

fn fixture(kernel: &str) -> DropReasons {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/btf/enums-{kernel}.btf"));
    KernelBtf::load(Some(&path))
        .expect("fixture loads")
        .drop_reasons()
}

#[test]
fn netfilter_drop_numbering_differs_between_kernels() {
    let (k61, k612, k618) = (fixture("6.1"), fixture("6.12"), fixture("6.18"));
    assert_eq!(k61.value_of("NETFILTER_DROP"), Some(7));
    assert_eq!(k612.value_of("NETFILTER_DROP"), Some(11));
    assert_eq!(k618.value_of("NETFILTER_DROP"), Some(12));
    assert_eq!(k61.name(7), "NETFILTER_DROP");
    assert_eq!(k618.name(12), "NETFILTER_DROP");
    assert_eq!(k618.name(3), "NO_SOCKET");
    assert_eq!(k61.name(2), "NO_SOCKET");
    assert_eq!(k618.name(0), "NOT_DROPPED_YET");
    assert!(k618.len() > k61.len());
}

#[test]
fn unknown_and_subsystem_reasons_are_named_not_invented() {
    let r = fixture("6.18");
    assert_eq!(r.name(60_000), "UNKNOWN_60000");
    assert_eq!(r.name((3 << 16) | 5), "SUBSYS_3:5");
    assert!(DropReasons::default().is_empty());
}

#[test]
fn missing_btf_names_the_fix() {
    let err = KernelBtf::load(Some(std::path::Path::new("/nonexistent/vmlinux")))
        .err()
        .expect("missing file is an error")
        .to_string();
    assert!(err.contains("no BTF file at /nonexistent/vmlinux"), "{err}");
    assert!(err.contains("--btf"), "{err}");
}

fn signatures() -> KernelBtf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/btf/signatures.btf");
    KernelBtf::load(Some(&path)).expect("fixture loads")
}

fn spelled(params: &[&str], ret: &str) -> Option<Signature> {
    Some(Signature {
        params: params.iter().map(|p| p.to_string()).collect(),
        ret: ret.to_string(),
        module: None,
    })
}

#[test]
fn function_signatures_are_spelled_like_c_without_qualifiers() {
    let btf = signatures();
    assert_eq!(
        btf.function_params("tcp_v4_rcv", None),
        spelled(&["struct sk_buff *"], "int")
    );
    assert_eq!(
        btf.function_params("ip_rcv", None),
        spelled(
            &[
                "struct sk_buff *",
                "struct net_device *",
                "u32 *",
                "union nf_inet_addr *"
            ],
            "int"
        )
    );
    assert_eq!(
        btf.function_params("kfree_skb_reason", None),
        spelled(&["struct sk_buff *", "enum skb_drop_reason"], "void")
    );
    assert_eq!(btf.function_params("ip_rcv_finish", None), None);
    // A module name does not help when there is no module BTF directory.
    assert_eq!(btf.function_params("nft_do_chain", Some("nf_tables")), None);
}

#[test]
fn tracepoint_signatures_drop_the_context_argument() {
    let btf = signatures();
    assert_eq!(
        btf.tracepoint_params("kfree_skb"),
        spelled(
            &["struct sk_buff *", "void *", "enum skb_drop_reason"],
            "void"
        )
    );
    assert_eq!(btf.tracepoint_params("consume_skb"), None);
    let reasons = btf.drop_reasons();
    assert_eq!(reasons.value_of("NO_SOCKET"), Some(2));
    assert_eq!(reasons.name(0), "NOT_DROPPED_YET");
}

#[test]
fn a_file_that_is_not_btf_is_refused_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("nettrace-btf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.btf");
    std::fs::write(&junk, b"ELF\x7f not btf at all").unwrap();
    let err = KernelBtf::load(Some(&junk))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("not a BTF blob"), "{err}");
    let mut truncated = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/btf/signatures.btf"),
    )
    .unwrap();
    truncated.truncate(100);
    std::fs::write(&junk, &truncated).unwrap();
    let err = KernelBtf::load(Some(&junk))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("past the end"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The return-value names nettrace keeps for `enum gro_result` and `enum
/// xdp_action` are the kernels' own: every member of each kernel's enum is
/// in the table with its value, and a table name no kernel has is one
/// that older kernels had (GRO_DROP, gone in 5.12).
#[test]
fn gro_and_xdp_names_are_the_kernels_own() {
    use nettrace::catalogue::retnames::names;
    use nettrace::catalogue::table::RetKind;
    let removed = ["GRO_DROP"];
    for (enum_name, kind) in [
        ("gro_result", RetKind::GroResult),
        ("xdp_action", RetKind::XdpAction),
    ] {
        let table = names(kind);
        let mut seen = std::collections::HashSet::new();
        for kernel in ["6.1", "6.12", "6.18"] {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/fixtures/btf/enums-{kernel}.btf"));
            let btf = KernelBtf::load(Some(&path)).expect("fixture loads");
            let members = btf.enum_members(enum_name);
            assert!(!members.is_empty(), "{kernel}: no enum {enum_name}");
            for (name, value) in members {
                let entry = table.iter().find(|n| n.name == name);
                assert!(
                    entry.is_some_and(|n| n.lo == i64::from(value) && n.hi == n.lo),
                    "{kernel}: {name} = {value} is not in the {enum_name} table as such"
                );
                seen.insert(name);
            }
        }
        for n in table {
            assert!(
                seen.contains(n.name) || removed.contains(&n.name),
                "{}: no tested kernel has it, and it is not listed as removed",
                n.name
            );
        }
    }
}

/// `src/vocab/known-drop-reasons.txt` (what lint accepts on any kernel) is
/// exactly the union of the tested kernels' drop reasons: regenerate it
/// with tools/known-drop-reasons when a kernel is added.
#[test]
fn known_drop_reasons_are_the_tested_kernels_union() {
    let mut union: Vec<String> = ["6.1", "6.12", "6.18"]
        .iter()
        .flat_map(|k| {
            fixture(k)
                .names()
                .into_iter()
                .map(|(_, n)| n.to_string())
                .collect::<Vec<_>>()
        })
        // As tools/known-drop-reasons: markers, not reasons.
        .filter(|n| !matches!(n.as_str(), "NOT_DROPPED_YET" | "MAX" | "SUBSYS_MASK"))
        .collect();
    union.sort();
    union.dedup();
    let mut known: Vec<String> = nettrace::vocab::drop_reasons::known()
        .map(str::to_string)
        .collect();
    known.sort();
    let missing: Vec<_> = union.iter().filter(|n| !known.contains(n)).collect();
    let extra: Vec<_> = known.iter().filter(|n| !union.contains(n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "known-drop-reasons.txt is stale: missing {missing:?}, not in any tested kernel {extra:?} (tools/known-drop-reasons)"
    );
}
