//! Planning against fixture kernels: symbol presence, signature variants
//! chosen from BTF, and the mechanism per probe mode and capability.

use nettrace::catalogue::table::probe;
use nettrace::kernel::btf::Signature;
use nettrace::load::plan::{
    decide, Decision, KernelView, Mechanism, MechanismSupport, ProbeMode, SkipReason, TpMode,
};
use std::collections::HashMap;

#[derive(Default)]
struct FakeKernel {
    functions: HashMap<&'static str, Option<Signature>>,
    tracepoints: HashMap<&'static str, Signature>,
    release: Option<(u32, u32)>,
}

fn sig(params: &[&str], ret: &str) -> Signature {
    Signature {
        params: params.iter().map(|s| s.to_string()).collect(),
        ret: ret.into(),
        module: None,
    }
}

impl KernelView for FakeKernel {
    fn has_function(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }
    fn function_signature(&self, name: &str) -> Option<Signature> {
        self.functions.get(name).cloned().flatten()
    }
    fn tracepoint_signature(&self, event: &str) -> Option<Signature> {
        self.tracepoints.get(event).cloned()
    }
    fn release(&self) -> Option<(u32, u32)> {
        self.release
    }
}

const ALL: MechanismSupport = MechanismSupport {
    fentry: true,
    fentry_max_args: 6,
    kprobe: true,
    kprobe_multi: false,
    tp_btf: true,
    raw_tp: true,
};
const HOST: MechanismSupport = MechanismSupport {
    fentry: false,
    fentry_max_args: 12,
    kprobe: false,
    kprobe_multi: false,
    tp_btf: true,
    raw_tp: true,
};

const SKB: &str = "struct sk_buff *";

fn kernel_6_1_and_6_18() -> (FakeKernel, FakeKernel) {
    let mut k61 = FakeKernel::default();
    let mut k618 = FakeKernel::default();
    k61.functions.insert(
        "__inet_lookup_listener",
        Some(sig(
            &["struct net *", "struct inet_hashinfo *", SKB, "int"],
            "struct sock *",
        )),
    );
    k618.functions.insert(
        "__inet_lookup_listener",
        Some(sig(&["struct net *", SKB, "int"], "struct sock *")),
    );
    k61.functions
        .insert("ip_route_input_slow", Some(sig(&[SKB, "__be32"], "int")));
    k618.functions.insert(
        "ip_route_input_slow",
        Some(sig(&[SKB, "__be32"], "enum skb_drop_reason")),
    );
    (k61, k618)
}

#[test]
fn variants_follow_the_kernel_signature() {
    let (k61, k618) = kernel_6_1_and_6_18();
    let p = probe("__inet_lookup_listener").unwrap();
    let pick = |k: &FakeKernel| decide(p, k, ALL, ProbeMode::Auto, TpMode::Auto);
    assert_eq!(
        pick(&k61),
        Decision::Attach {
            mechanism: Mechanism::Kprobe,
            target: "__inet_lookup_listener".into(),
            variant: 0
        }
    );
    assert!(matches!(pick(&k618), Decision::Attach { variant: 1, .. }));
    let r = probe("ip_route_input_slow").unwrap();
    assert!(matches!(
        decide(r, &k61, ALL, ProbeMode::Auto, TpMode::Auto),
        Decision::Attach { variant: 0, .. }
    ));
    assert!(matches!(
        decide(r, &k618, ALL, ProbeMode::Auto, TpMode::Auto),
        Decision::Attach { variant: 1, .. }
    ));
}

#[test]
fn without_btf_the_release_chooses_the_variant() {
    // A module's function on a kernel without module BTF (before 5.11).
    let p = probe("ipt_do_table").unwrap();
    let variant_on = |release| {
        let mut k = FakeKernel {
            release,
            ..FakeKernel::default()
        };
        k.functions.insert("ipt_do_table", None);
        match decide(p, &k, ALL, ProbeMode::Auto, TpMode::Auto) {
            Decision::Attach {
                mechanism, variant, ..
            } => {
                assert_eq!(mechanism, Mechanism::Kprobe);
                variant
            }
            d => panic!("not attached: {d:?}"),
        }
    };
    // ipt_do_table(skb, state, table) before 5.16, (priv, skb, state) since.
    assert_eq!(variant_on(Some((5, 10))), 1);
    assert_eq!(p.signatures[1].skb, Some(0));
    assert_eq!(variant_on(Some((5, 16))), 0);
    assert_eq!(variant_on(Some((6, 1))), 0);
    assert_eq!(variant_on(None), 0);
}

#[test]
fn a_signature_no_variant_fits_is_skipped_with_the_reason() {
    let mut k = FakeKernel::default();
    k.functions
        .insert("ip_rcv", Some(sig(&["struct net_device *"], "int")));
    let d = decide(
        probe("ip_rcv").unwrap(),
        &k,
        ALL,
        ProbeMode::Auto,
        TpMode::Auto,
    );
    assert_eq!(
        d,
        Decision::Skip(SkipReason::Signature(
            "argument 0 is `struct net_device *`".into()
        ))
    );
}

#[test]
fn mechanisms_per_mode_and_capability() {
    let mut k = FakeKernel::default();
    k.functions.insert("ip_rcv", Some(sig(&[SKB], "int")));
    k.functions.insert("tcp_in_window", None); // in kallsyms, not in BTF
    let ip_rcv = probe("ip_rcv").unwrap();
    let mech = |mode, support| match decide(ip_rcv, &k, support, mode, TpMode::Auto) {
        Decision::Attach { mechanism, .. } => Some(mechanism),
        Decision::Skip(_) => None,
    };
    // Auto prefers kprobes (cheaper per call than fentry, measured), with
    // or without fprobe's kprobe.multi links; fentry where kprobes are out.
    assert_eq!(mech(ProbeMode::Auto, ALL), Some(Mechanism::Kprobe));
    assert_eq!(mech(ProbeMode::Kprobe, ALL), Some(Mechanism::Kprobe));
    let fprobe = MechanismSupport {
        kprobe_multi: true,
        ..ALL
    };
    assert_eq!(mech(ProbeMode::Auto, fprobe), Some(Mechanism::Kprobe));
    assert_eq!(mech(ProbeMode::Fentry, fprobe), Some(Mechanism::Fentry));
    let no_kprobes = MechanismSupport {
        kprobe: false,
        ..ALL
    };
    assert_eq!(mech(ProbeMode::Auto, no_kprobes), Some(Mechanism::Fentry));
    assert_eq!(mech(ProbeMode::Auto, HOST), None);
    // No BTF for the function: kprobe in auto mode, nothing in fentry mode.
    let tiw = probe("tcp_in_window").unwrap();
    assert!(matches!(
        decide(tiw, &k, ALL, ProbeMode::Auto, TpMode::Auto),
        Decision::Attach {
            mechanism: Mechanism::Kprobe,
            ..
        }
    ));
    assert!(matches!(
        decide(tiw, &k, ALL, ProbeMode::Fentry, TpMode::Auto),
        Decision::Skip(SkipReason::Mechanism(_))
    ));
    assert_eq!(
        decide(
            probe("ip_forward").unwrap(),
            &k,
            ALL,
            ProbeMode::Auto,
            TpMode::Auto
        ),
        Decision::Skip(SkipReason::NoSymbol)
    );
}

#[test]
fn alternative_symbols_are_tried_in_order() {
    let mut k = FakeKernel::default();
    k.functions.insert(
        "bpf_prog_run_generic_xdp",
        Some(sig(&[SKB, "struct xdp_buff *"], "u32")),
    );
    let d = decide(
        probe("netif_receive_generic_xdp").unwrap(),
        &k,
        ALL,
        ProbeMode::Auto,
        TpMode::Auto,
    );
    assert!(
        matches!(d, Decision::Attach { ref target, .. } if target == "bpf_prog_run_generic_xdp"),
        "{d:?}"
    );
}

#[test]
fn tracepoints_use_tp_btf_or_raw_tp() {
    let mut k = FakeKernel::default();
    k.tracepoints.insert(
        "kfree_skb",
        sig(
            &[SKB, "void *", "enum skb_drop_reason", "struct sock *"],
            "void",
        ),
    );
    let kfree = probe("kfree_skb").unwrap();
    let mech = |tp| match decide(kfree, &k, HOST, ProbeMode::Auto, tp) {
        Decision::Attach { mechanism, .. } => Some(mechanism),
        Decision::Skip(_) => None,
    };
    assert_eq!(mech(TpMode::Auto), Some(Mechanism::TpBtf));
    assert_eq!(mech(TpMode::Raw), Some(Mechanism::RawTp));
    // 6.1's udp_fail_queue_rcv_skb has no skb argument: the variant fits.
    k.tracepoints.insert(
        "udp_fail_queue_rcv_skb",
        sig(&["int", "struct sock *"], "void"),
    );
    let d = decide(
        probe("udp_fail_queue_rcv_skb").unwrap(),
        &k,
        HOST,
        ProbeMode::Auto,
        TpMode::Auto,
    );
    assert!(matches!(d, Decision::Attach { variant: 1, .. }), "{d:?}");
}

#[test]
fn functions_with_many_arguments_use_kprobes_where_fentry_cannot() {
    let mut k = FakeKernel::default();
    let eight = sig(
        &[
            SKB,
            "__be32",
            "__be32",
            "u8",
            "int",
            "struct net_device *",
            "struct in_device *",
            "u32 *",
        ],
        "int",
    );
    k.functions.insert("fib_validate_source", Some(eight));
    let p = probe("fib_validate_source").unwrap();
    assert!(matches!(
        decide(p, &k, ALL, ProbeMode::Auto, TpMode::Auto),
        Decision::Attach {
            mechanism: Mechanism::Kprobe,
            ..
        }
    ));
    let d = decide(p, &k, ALL, ProbeMode::Fentry, TpMode::Auto);
    assert!(
        matches!(&d, Decision::Skip(SkipReason::Mechanism(m)) if m.contains("more than 6 arguments")),
        "{d:?}"
    );
    let newer = MechanismSupport {
        fentry_max_args: 12,
        ..ALL
    };
    assert!(matches!(
        decide(p, &k, newer, ProbeMode::Fentry, TpMode::Auto),
        Decision::Attach {
            mechanism: Mechanism::Fentry,
            ..
        }
    ));
    assert_eq!(nettrace::kernel::caps::fentry_max_args("6.1.0-56-amd64"), 6);
    assert_eq!(
        nettrace::kernel::caps::fentry_max_args("6.12.117+deb12-amd64"),
        12
    );
}

/// Before kallsyms is read, a function exists when BTF describes it; once
/// read, kallsyms decides, and also knows functions BTF leaves out (the
/// start-up plan is checked against this one in run/attach.rs).
#[test]
fn live_kernel_plans_from_btf_until_kallsyms_is_read() {
    use nettrace::kernel::btf::KernelBtf;
    use nettrace::kernel::kallsyms::Kallsyms;
    use nettrace::load::plan::LiveKernel;
    let btf = KernelBtf::load(Some(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/btf/signatures.btf"),
    ))
    .unwrap();
    let kallsyms =
        Kallsyms::parse("ffffffff81a00000 T tcp_v4_rcv\nffffffff81a10000 T ip_rcv_core\n");
    let early = LiveKernel {
        btf: &btf,
        kallsyms: None,
    };
    let read = LiveKernel {
        btf: &btf,
        kallsyms: Some(&kallsyms),
    };
    let plan = |k: &LiveKernel<'_>, name: &str| {
        decide(probe(name).unwrap(), k, ALL, ProbeMode::Auto, TpMode::Auto)
    };
    // In BTF and kallsyms: the same decision either way.
    assert_eq!(plan(&early, "tcp_v4_rcv"), plan(&read, "tcp_v4_rcv"));
    assert!(matches!(
        plan(&early, "tcp_v4_rcv"),
        Decision::Attach { .. }
    ));
    // In kallsyms only: found once kallsyms is read, attached by kprobe.
    assert_eq!(
        plan(&early, "ip_rcv_core"),
        Decision::Skip(SkipReason::NoSymbol)
    );
    assert!(matches!(
        plan(&read, "ip_rcv_core"),
        Decision::Attach {
            mechanism: Mechanism::Kprobe,
            ..
        }
    ));
    // In BTF but not in kallsyms: kallsyms decides.
    assert!(matches!(plan(&early, "ip_rcv"), Decision::Attach { .. }));
    assert_eq!(plan(&read, "ip_rcv"), Decision::Skip(SkipReason::NoSymbol));
}

#[test]
fn fentry_targets_in_modules_name_their_module() {
    let mut k = FakeKernel::default();
    let mut in_module = sig(
        &["void *", SKB, "const struct nf_hook_state *"],
        "unsigned int",
    );
    in_module.module = Some("nf_conntrack".into());
    k.functions.insert("ipv4_conntrack_in", Some(in_module));
    k.functions.insert(
        "ip_rcv",
        Some(sig(
            &[
                SKB,
                "struct net_device *",
                "struct packet_type *",
                "struct net_device *",
            ],
            "int",
        )),
    );
    let target = |name: &str, mode: ProbeMode| match decide(
        probe(name).unwrap(),
        &k,
        ALL,
        mode,
        TpMode::Auto,
    ) {
        Decision::Attach { target, .. } => target,
        d => panic!("{name} not attached: {d:?}"),
    };
    // libbpf searches only the named module's BTF for `module:function`.
    assert_eq!(
        target("ipv4_conntrack_in", ProbeMode::Fentry),
        "nf_conntrack:ipv4_conntrack_in"
    );
    assert_eq!(target("ip_rcv", ProbeMode::Fentry), "ip_rcv");
    // Kprobes resolve symbols through kallsyms, modules included.
    assert_eq!(
        target("ipv4_conntrack_in", ProbeMode::Kprobe),
        "ipv4_conntrack_in"
    );
}
