//! The probe catalogue: the shipped probes.yaml is valid and complete, bad
//! catalogues are rejected naming the entry, and code generation for a
//! small fixture catalogue is pinned by snapshots.

use nettrace::catalogue::schema::Catalogue;
use nettrace::catalogue::table::{ProbeKind, GROUPS, PROBES};
use nettrace::codegen::render::{render_bpf, render_rust};

fn repo(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn shipped_catalogue_is_valid_and_complete() {
    let cat = Catalogue::from_yaml(&repo("probes.yaml")).expect("probes.yaml validates");
    assert!(cat.probes.len() >= 160, "only {} probes", cat.probes.len());
    // The generated table mirrors the YAML one to one.
    assert_eq!(PROBES.len(), cat.probes.len());
    for (p, y) in PROBES.iter().zip(&cat.probes) {
        assert_eq!(p.name, y.name);
        assert_eq!(p.signatures.len(), 1 + y.variants.len());
    }
    for top in [
        "link",
        "packet",
        "netfilter",
        "ip",
        "tcp",
        "udp",
        "icmp",
        "socket",
        "life",
    ] {
        assert!(GROUPS.iter().any(|g| g.name == top), "group {top} missing");
    }
    let off: Vec<_> = GROUPS
        .iter()
        .filter(|g| !g.default_on)
        .map(|g| g.name)
        .collect();
    assert_eq!(off, ["ipvlan", "bridge", "conntrack"]);
    // Every probe point of the original's catalogue is there (its
    // ipt_do_table_legacy became a signature variant of ipt_do_table).
    let reference = include_str!("../fixtures/catalogue/reference-probe-points.txt");
    let names: Vec<&str> = reference
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(names.len() > 150, "{} reference probe points", names.len());
    for name in names {
        assert!(
            PROBES.iter().any(|p| p.name == name),
            "{name} missing from probes.yaml"
        );
    }
    let kfree = nettrace::catalogue::table::probe("kfree_skb").unwrap();
    assert_eq!(
        kfree.kind,
        ProbeKind::Tracepoint {
            system: "skb",
            event: "kfree_skb"
        }
    );
}

fn errors_of(yaml: &str) -> Vec<String> {
    match Catalogue::from_yaml(yaml) {
        Ok(_) => vec![],
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

const GROUPS_YAML: &str = "groups:\n  - name: g\n    children:\n      - name: leaf\n";

#[test]
fn bad_catalogues_are_rejected_naming_the_entry() {
    let cases = [
        ("    foo: 1\n", "unknown field `foo`"),
        ("    skb: 9\n", "ip_rcv: skb index 9 is out of range"),
        ("    skb_via: deref\n", "ip_rcv: skb_via without skb"),
    ];
    for (extra, want) in cases {
        let yaml = format!(
            "{GROUPS_YAML}probes:\n  - name: ip_rcv\n    group: leaf\n    ret: int\n{extra}"
        );
        let errs = errors_of(&yaml);
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{want:?} not in {errs:?}"
        );
    }
    let dup = format!(
        "{GROUPS_YAML}probes:\n  - {{name: a, group: leaf, skb: 0, ret: int}}\n  - {{name: a, group: leaf, skb: 0, ret: int}}\n"
    );
    assert!(errors_of(&dup)
        .iter()
        .any(|e| e.contains("a: duplicate probe name")));
    let unknown_group =
        format!("{GROUPS_YAML}probes:\n  - {{name: a, group: nope, skb: 0, ret: int}}\n");
    assert!(errors_of(&unknown_group)
        .iter()
        .any(|e| e.contains("group `nope` is not a leaf")));
    let no_ret = format!("{GROUPS_YAML}probes:\n  - {{name: a, group: leaf, skb: 0}}\n");
    assert!(errors_of(&no_ret)
        .iter()
        .any(|e| e.contains("must say what `ret` means")));
    let no_arg = format!("{GROUPS_YAML}probes:\n  - {{name: a, group: leaf, ret: none}}\n");
    assert!(errors_of(&no_arg)
        .iter()
        .any(|e| e.contains("needs an skb or sk")));
    let tp_ret = format!(
        "{GROUPS_YAML}probes:\n  - {{name: a, group: leaf, tracepoint: x/y, skb: 0, ret: int}}\n"
    );
    assert!(errors_of(&tp_ret)
        .iter()
        .any(|e| e.contains("tracepoints have no return value")));
    let bad_tp =
        format!("{GROUPS_YAML}probes:\n  - {{name: a, group: leaf, tracepoint: nope, skb: 0}}\n");
    assert!(errors_of(&bad_tp)
        .iter()
        .any(|e| e.contains("must be `system/event`")));
    let bad_ret =
        format!("{GROUPS_YAML}probes:\n  - {{name: a, group: leaf, skb: 0, ret: maybe}}\n");
    assert!(errors_of(&bad_ret)
        .iter()
        .any(|e| e.contains("unknown variant `maybe`")));
    let clone = format!(
        "{GROUPS_YAML}probes:\n  - {{name: a, group: leaf, skb: 0, ret: int, extra: clone}}\n"
    );
    assert!(errors_of(&clone)
        .iter()
        .any(|e| e.contains("extra: clone needs ret: pointer")));
}

#[test]
fn generated_c_for_fixture_catalogue() {
    let cat = Catalogue::from_yaml(&repo("tests/fixtures/catalogue/small.yaml")).unwrap();
    let c = render_bpf(
        &cat,
        &repo("bpf-templates/nettrace.bpf.c.j2"),
        &nettrace::codegen::render::OBJECTS[0],
    )
    .unwrap();
    insta::assert_snapshot!("fixture_bpf_c", c);
}

/// The smaller objects hold only their flavours (the full one is above).
#[test]
fn smaller_objects_hold_only_their_programs() {
    let cat = Catalogue::from_yaml(&repo("tests/fixtures/catalogue/small.yaml")).unwrap();
    let template = repo("bpf-templates/nettrace.bpf.c.j2");
    let [full, fentry, kprobe] = nettrace::codegen::render::OBJECTS;
    let c = |o| render_bpf(&cat, &template, &o).unwrap();
    let (full, fentry, kprobe) = (c(full), c(fentry), c(kprobe));
    for (text, want, not) in [
        (
            &full,
            &[
                "SEC(\"fentry\")",
                "SEC(\"kprobe\")\nint kp__",
                "SEC(\"kprobe.multi\")",
                "SEC(\"raw_tp\")",
            ][..],
            &[][..],
        ),
        (
            &fentry,
            &["SEC(\"fentry\")", "SEC(\"fexit\")", "SEC(\"kprobe.multi\")"][..],
            &["int kp__", "int kr__", "SEC(\"raw_tp\")"][..],
        ),
        (
            &kprobe,
            &["SEC(\"tp_btf\")", "SEC(\"kprobe.multi\")", "int kg__entry"][..],
            &[
                "SEC(\"fentry\")",
                "int kp__",
                "int kr__",
                "SEC(\"fexit\")",
                "SEC(\"raw_tp\")",
            ][..],
        ),
    ] {
        for w in want {
            assert!(text.contains(w), "missing {w}");
        }
        for n in not {
            assert!(!text.contains(n), "unexpected {n}");
        }
    }
}

#[test]
fn generated_rust_table_for_fixture_catalogue() {
    let cat = Catalogue::from_yaml(&repo("tests/fixtures/catalogue/small.yaml")).unwrap();
    insta::assert_snapshot!("fixture_probe_table", render_rust(&cat));
}
