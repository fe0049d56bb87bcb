//! Deciding, per probe, how it attaches on this kernel: which symbol,
//! which signature variant, which mechanism (fentry, kprobe, tp_btf,
//! raw_tp) — or why it is skipped. Pure logic over a `KernelView`, so it
//! is tested without root against fixture kernels.

use crate::catalogue::table::{ProbeDef, ProbeKind, RetKind, SignatureDef, SkVia, SkbVia};
use crate::codegen::render::flavour_prefix;
use crate::kernel::btf::{KernelBtf, Signature};
use crate::kernel::kallsyms::Kallsyms;
use std::fmt;

/// How function probes attach (`--probe-mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeMode {
    /// kprobes (through one kprobe.multi link where the kernel has
    /// fprobe), else fentry/fexit where BTF allows. Measured in the 6.1 and
    /// 6.12 VMs (BENCHMARKS.md), kprobes attach and detach in a fraction of
    /// fentry's time; per call they cost a few percent more.
    #[default]
    Auto,
    /// fentry/fexit only.
    Fentry,
    /// kprobe/kretprobe only.
    Kprobe,
}

/// How tracepoints attach (`--tp-mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TpMode {
    /// tp_btf where BTF describes the tracepoint, else raw_tp.
    #[default]
    Auto,
    /// BTF-typed tracepoints only.
    Btf,
    /// raw tracepoints only.
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    Fentry,
    Kprobe,
    TpBtf,
    RawTp,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Fentry => "fentry",
            Mechanism::Kprobe => "kprobe",
            Mechanism::TpBtf => "tp_btf",
            Mechanism::RawTp => "raw_tp",
        }
    }

    /// Program-name prefix of the entry program (the codegen's table).
    pub fn entry_prefix(self) -> &'static str {
        flavour_prefix(self.as_str())
    }

    /// Program-name prefix of the exit program, for function probes.
    pub fn exit_prefix(self) -> Option<&'static str> {
        match self {
            Mechanism::Fentry => Some(flavour_prefix("fexit")),
            Mechanism::Kprobe => Some(flavour_prefix("kretprobe")),
            _ => None,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe does not attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// No candidate symbol exists in this kernel (inlined, renamed, or its
    /// module is not loaded).
    NoSymbol,
    /// The kernel's BTF shows a signature no variant of the catalogue fits.
    Signature(String),
    /// The mechanism needed is unavailable here.
    Mechanism(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoSymbol => {
                f.write_str("symbol not in this kernel (inlined, renamed, or module not loaded)")
            }
            SkipReason::Signature(s) => write!(f, "signature differs from the catalogue: {s}"),
            SkipReason::Mechanism(s) => f.write_str(s),
        }
    }
}

/// The decision for one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Attach {
        mechanism: Mechanism,
        /// Kernel symbol (functions) or tracepoint event name; for fentry,
        /// `module:function` where a module defines the function.
        target: String,
        variant: usize,
    },
    Skip(SkipReason),
}

/// The facts planning needs about a kernel.
pub trait KernelView {
    fn has_function(&self, name: &str) -> bool;
    fn function_signature(&self, name: &str) -> Option<Signature>;
    fn tracepoint_signature(&self, event: &str) -> Option<Signature>;
    /// Whether the kernel has tracepoint `event`, where it can tell (tracefs
    /// mounted); None when it cannot.
    fn has_tracepoint(&self, _event: &str) -> Option<bool> {
        None
    }
    /// The running kernel's `major.minor`, where known: it chooses among a
    /// probe's signatures when BTF does not describe the function.
    fn release(&self) -> Option<(u32, u32)> {
        None
    }
}

/// A kernel as seen through its BTF and, once read, kallsyms. Without
/// kallsyms a function exists when BTF (vmlinux or a loaded module's)
/// describes it: the same answer for every catalogue symbol of the test
/// kernels, but kallsyms also knows functions BTF leaves out, so a plan
/// made without it is checked against one made with it (run/attach.rs).
pub struct LiveKernel<'a> {
    pub btf: &'a KernelBtf,
    pub kallsyms: Option<&'a Kallsyms>,
}

/// Whether tracefs lists tracepoint `event` (under any subsystem); None
/// when tracefs is not mounted.
fn tracefs_has_event(event: &str) -> Option<bool> {
    crate::kernel::TRACEFS_DIRS
        .iter()
        .find_map(|dir| std::fs::read_dir(format!("{dir}/events")).ok())
        .map(|systems| {
            systems
                .filter_map(Result::ok)
                .any(|sys| sys.path().join(event).is_dir())
        })
}

impl KernelView for LiveKernel<'_> {
    fn has_tracepoint(&self, event: &str) -> Option<bool> {
        tracefs_has_event(event)
    }
    fn release(&self) -> Option<(u32, u32)> {
        crate::kernel::caps::release_version(&crate::kernel::caps::kernel_release())
    }
    fn has_function(&self, name: &str) -> bool {
        match self.kallsyms {
            Some(k) if !k.is_empty() => k.has_function(name),
            _ => self.btf.has_function(name),
        }
    }
    fn function_signature(&self, name: &str) -> Option<Signature> {
        if let Some(sig) = self.btf.function_params(name, None) {
            return Some(sig);
        }
        let module = match self.kallsyms {
            Some(k) if !k.is_empty() => k.module_of(name).map(str::to_string),
            _ => self.btf.function_module(name),
        };
        self.btf.function_params(name, module.as_deref())
    }
    fn tracepoint_signature(&self, event: &str) -> Option<Signature> {
        self.btf.tracepoint_params(event)
    }
}

/// What the kernel can do, as far as planning is concerned.
#[derive(Debug, Clone, Copy)]
pub struct MechanismSupport {
    pub fentry: bool,
    /// Most arguments an fentry trampoline handles (x86: 6 before 6.4, then 12).
    pub fentry_max_args: usize,
    pub kprobe: bool,
    /// kprobe.multi links (fprobe): one link for every function.
    pub kprobe_multi: bool,
    pub tp_btf: bool,
    pub raw_tp: bool,
}

fn param_is(
    params: &[String],
    idx: Option<u32>,
    accept: impl Fn(&str) -> bool,
) -> Result<(), String> {
    match idx {
        None => Ok(()),
        Some(i) => match params.get(i as usize) {
            Some(t) if accept(t) => Ok(()),
            Some(t) => Err(format!("argument {i} is `{t}`")),
            None => Err(format!("there is no argument {i}")),
        },
    }
}

/// Whether one catalogue signature fits the kernel's BTF signature.
pub fn signature_fits(probe: &ProbeDef, sig: &SignatureDef, btf: &Signature) -> Result<(), String> {
    let skb_ok = |t: &str| match probe.skb_via {
        None => t == "struct sk_buff *",
        Some(SkbVia::Deref) => t == "struct sk_buff * *",
        Some(SkbVia::NftPktinfo) => t == "struct nft_pktinfo *",
    };
    let sk_ok = |t: &str| match probe.sk_via {
        None => t == "struct sock *",
        Some(SkVia::Socket) => t == "struct socket *",
    };
    param_is(&btf.params, sig.skb, skb_ok)?;
    param_is(&btf.params, sig.sk, sk_ok)?;
    // Netfilter arguments: `void *priv` is how ipt_do_table and
    // nft_do_chain take their table and chain.
    let ptr_to = |what: &'static str| move |t: &str| t.contains(what) || t == "void *";
    param_is(&btf.params, sig.nf.state, ptr_to("nf_hook_state *"))?;
    param_is(&btf.params, sig.nf.xt_table, ptr_to("xt_table *"))?;
    param_is(&btf.params, sig.nf.ebt_table, ptr_to("ebt_table *"))?;
    param_is(&btf.params, sig.nf.nft_pkt, ptr_to("nft_pktinfo *"))?;
    param_is(&btf.params, sig.nf.nft_chain, ptr_to("nft_chain *"))?;
    param_is(&btf.params, sig.nf.entries, ptr_to("nf_hook_entries *"))?;
    let drop_reason_ret = btf.ret.contains("skb_drop_reason");
    if (sig.ret == RetKind::DropReason) != drop_reason_ret && probe.signatures.len() > 1 {
        return Err(format!("it returns `{}`", btf.ret));
    }
    Ok(())
}

/// Picks the first variant that fits `btf`. Without BTF (a module's
/// function before module BTF, 5.11), the variant of the oldest kernels
/// the release is still before, else the primary.
fn choose_variant(
    probe: &ProbeDef,
    btf: Option<&Signature>,
    kernel: &dyn KernelView,
) -> Result<usize, SkipReason> {
    let Some(btf) = btf else {
        let by_release = kernel.release().and_then(|r| {
            probe
                .signatures
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.before.filter(|b| r < *b).map(|b| (b, i)))
                .min()
        });
        return Ok(by_release.map_or(0, |(_, i)| i));
    };
    let mut first_err = None;
    for (i, sig) in probe.signatures.iter().enumerate() {
        match signature_fits(probe, sig, btf) {
            Ok(()) => return Ok(i),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(SkipReason::Signature(first_err.unwrap_or_default()))
}

/// Decides how `probe` attaches.
pub fn decide(
    probe: &ProbeDef,
    kernel: &dyn KernelView,
    support: MechanismSupport,
    probe_mode: ProbeMode,
    tp_mode: TpMode,
) -> Decision {
    match probe.kind {
        ProbeKind::Tracepoint { event, .. } => {
            let btf = kernel.tracepoint_signature(event);
            let variant = match choose_variant(probe, btf.as_ref(), kernel) {
                Ok(v) => v,
                Err(e) => return Decision::Skip(e),
            };
            // Every tracepoint of a kernel with BTF has its btf_trace_
            // typedef there, except a module's before module BTF (5.11):
            // where tracefs lists the events, one it lacks is not there.
            if btf.is_none() && kernel.has_tracepoint(event) == Some(false) {
                return Decision::Skip(SkipReason::Mechanism(
                    "tracepoint not in this kernel".into(),
                ));
            }
            let use_btf = btf.is_some() && support.tp_btf && tp_mode != TpMode::Raw;
            let mechanism = if use_btf {
                Mechanism::TpBtf
            } else if tp_mode == TpMode::Btf {
                return Decision::Skip(SkipReason::Mechanism(if btf.is_none() {
                    "tracepoint not described in BTF (tp_btf impossible; try --tp-mode raw)".into()
                } else {
                    "tp_btf programs are refused by this kernel".into()
                }));
            } else if support.raw_tp {
                Mechanism::RawTp
            } else {
                return Decision::Skip(SkipReason::Mechanism(
                    "raw tracepoints are refused by this kernel".into(),
                ));
            };
            Decision::Attach {
                mechanism,
                target: event.to_string(),
                variant,
            }
        }
        ProbeKind::Function => {
            let Some(symbol) = probe.symbols.iter().find(|s| kernel.has_function(s)) else {
                return Decision::Skip(SkipReason::NoSymbol);
            };
            let btf = kernel.function_signature(symbol);
            let variant = match choose_variant(probe, btf.as_ref(), kernel) {
                Ok(v) => v,
                Err(e) => return Decision::Skip(e),
            };
            let too_many_args = btf
                .as_ref()
                .is_some_and(|s| s.params.len() > support.fentry_max_args);
            let fentry_ok = support.fentry && btf.is_some() && !too_many_args;
            let mechanism = match probe_mode {
                ProbeMode::Fentry if fentry_ok => Mechanism::Fentry,
                ProbeMode::Fentry => {
                    return Decision::Skip(SkipReason::Mechanism(if !support.fentry {
                        "fentry programs are refused by this kernel".into()
                    } else if too_many_args {
                        format!(
                            "more than {} arguments: this kernel's fentry trampolines cannot take it",
                            support.fentry_max_args
                        )
                    } else {
                        "function not described in BTF (fentry impossible)".into()
                    }))
                }
                ProbeMode::Kprobe | ProbeMode::Auto if support.kprobe => Mechanism::Kprobe,
                ProbeMode::Auto if fentry_ok => Mechanism::Fentry,
                _ => {
                    return Decision::Skip(SkipReason::Mechanism(if support.fentry {
                        "no kprobe support and the function is not in BTF".into()
                    } else {
                        "neither fentry nor kprobes available in this kernel".into()
                    }))
                }
            };
            // fentry's target names its module: libbpf then searches that
            // module's BTF alone, not vmlinux's and every module's before it
            // (0.4-0.8 s a function under emulation).
            let target = match btf.and_then(|s| s.module) {
                Some(module) if mechanism == Mechanism::Fentry => format!("{module}:{symbol}"),
                _ => symbol.to_string(),
            };
            Decision::Attach {
                mechanism,
                target,
                variant,
            }
        }
    }
}
