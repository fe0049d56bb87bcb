//! The running kernel as a run sees it: privileges checked, BTF, kallsyms
//! (read on a thread of its own) and the capabilities probed, and the
//! planning of probes against them.

use super::error::{ExitCode, Fatal};
use crate::catalogue::table::ProbeDef;
use crate::kernel::btf::KernelBtf;
use crate::kernel::caps::{self, Capabilities};
use crate::kernel::kallsyms::Kallsyms;
use crate::load::attach::PlannedProbe;
use crate::load::plan::{self, KernelView, LiveKernel, MechanismSupport, ProbeMode};
use std::path::Path;
use std::time::Instant;

/// The running kernel as nettrace sees it.
pub struct KernelContext {
    pub btf: KernelBtf,
    kallsyms: PendingKallsyms,
    pub caps: Capabilities,
}

/// /proc/kallsyms, read on a thread of its own: the kernel formats every
/// symbol, the slowest read of start-up (over a second under emulation),
/// and planning can start from BTF without it.
struct PendingKallsyms {
    reading: std::sync::Mutex<Option<std::thread::JoinHandle<Kallsyms>>>,
    read: std::sync::OnceLock<Kallsyms>,
}

impl PendingKallsyms {
    fn start() -> PendingKallsyms {
        let reading = std::thread::spawn(|| {
            let t = Instant::now();
            let k = Kallsyms::load().unwrap_or_else(|e| {
                log::warn!(
                    "cannot read /proc/kallsyms ({e}): locations will be shown as addresses"
                );
                Kallsyms::default()
            });
            log::debug!("kallsyms read in {:.2}s", t.elapsed().as_secs_f64());
            k
        });
        PendingKallsyms {
            reading: std::sync::Mutex::new(Some(reading)),
            read: std::sync::OnceLock::new(),
        }
    }

    fn get(&self) -> &Kallsyms {
        self.read.get_or_init(|| {
            let handle = self.reading.lock().ok().and_then(|mut h| h.take());
            handle.and_then(|h| h.join().ok()).unwrap_or_default()
        })
    }
}

/// Checks privileges, loads BTF and kallsyms and probes the capabilities
/// `wanted` names.
pub fn open_kernel(btf: Option<&Path>, wanted: caps::Wanted) -> Result<KernelContext, Fatal> {
    if !caps::privileged() {
        return Err(Fatal::new(
            ExitCode::Privileges,
            "loading BPF programs needs root (or CAP_BPF with CAP_PERFMON); run nettrace with sudo",
        ));
    }
    // kallsyms, BTF and the capability loads side by side: each takes
    // about a second on an emulated machine, and they share nothing.
    let kallsyms = PendingKallsyms::start();
    let (btf, caps) = std::thread::scope(|s| {
        let early = s.spawn(|| {
            let t = Instant::now();
            let loads = caps::early_loads(wanted);
            log::debug!(
                "capability programs loaded in {:.2}s",
                t.elapsed().as_secs_f64()
            );
            loads
        });
        let t = Instant::now();
        let btf =
            KernelBtf::load(btf).map_err(|e| Fatal::new(ExitCode::KernelLacks, e.to_string()));
        log::debug!("BTF read in {:.2}s", t.elapsed().as_secs_f64());
        let early = early.join().ok();
        let t = Instant::now();
        let caps = btf
            .as_ref()
            .ok()
            .map(|b| caps::detect_with(Some(b), early, wanted));
        log::debug!("capabilities probed in {:.2}s", t.elapsed().as_secs_f64());
        (btf, caps)
    });
    let btf = btf?;
    let caps = caps.expect("capabilities are probed when BTF loads");
    Ok(KernelContext {
        btf,
        kallsyms,
        caps,
    })
}

impl KernelContext {
    /// Whether kprobe.multi links attach: they need fprobe, which exists
    /// only when the kernel was configured with it (Debian's 6.1 was not).
    /// BTF answers: fprobe_register is an exported function.
    pub fn kprobe_multi(&self) -> bool {
        self.caps.kprobe.is_ok() && self.btf.has_function("fprobe_register")
    }

    /// The kernel's symbols, waiting for the read to finish.
    pub fn kallsyms(&self) -> &Kallsyms {
        self.kallsyms.get()
    }

    /// Frees what only planning and loading read — the parsed BTF and the
    /// symbols' name index — once the probes are attached: a trace needs
    /// drop reasons (taken before) and address → symbol, nothing by name.
    pub fn release_planning_state(&mut self) {
        self.btf.release();
        if let Some(k) = self.kallsyms.read.get_mut() {
            k.release_name_index();
        }
        // glibc keeps freed heap memory for reuse; hand it back.
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only returns free memory to the kernel.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    pub fn support(&self) -> MechanismSupport {
        MechanismSupport {
            fentry: self.caps.fentry.is_ok(),
            fentry_max_args: crate::kernel::caps::fentry_max_args(&self.caps.release),
            kprobe: self.caps.kprobe.is_ok(),
            kprobe_multi: self.kprobe_multi(),
            tp_btf: self.caps.tp_btf.is_ok(),
            raw_tp: self.caps.raw_tp.is_ok(),
        }
    }

    /// Decides how each probe attaches, with kallsyms.
    pub fn plan(
        &self,
        probes: &[&'static ProbeDef],
        probe_mode: ProbeMode,
        tp_mode: plan::TpMode,
        exits: &Exits,
    ) -> Vec<PlannedProbe> {
        self.plan_with(Some(self.kallsyms()), probes, probe_mode, tp_mode, exits)
    }

    /// Decides how each probe attaches from BTF alone, while kallsyms is
    /// still being read.
    pub fn plan_from_btf(
        &self,
        probes: &[&'static ProbeDef],
        probe_mode: ProbeMode,
        tp_mode: plan::TpMode,
        exits: &Exits,
    ) -> Vec<PlannedProbe> {
        self.plan_with(None, probes, probe_mode, tp_mode, exits)
    }

    fn plan_with(
        &self,
        kallsyms: Option<&Kallsyms>,
        probes: &[&'static ProbeDef],
        probe_mode: ProbeMode,
        tp_mode: plan::TpMode,
        exits: &Exits,
    ) -> Vec<PlannedProbe> {
        let view = LiveKernel {
            btf: &self.btf,
            kallsyms,
        };
        let support = self.support();
        probes
            .iter()
            .map(|p| {
                let decision = plan::decide(p, &view, support, probe_mode, tp_mode);
                let args = match &decision {
                    plan::Decision::Attach {
                        mechanism: plan::Mechanism::Fentry,
                        target,
                        ..
                    } => {
                        // fentry targets may be `module:function`.
                        let symbol = target.rsplit(':').next().unwrap_or(target);
                        view.function_signature(symbol)
                            .and_then(|s| u8::try_from(s.params.len()).ok())
                    }
                    _ => None,
                };
                PlannedProbe {
                    probe: p,
                    decision,
                    with_exit: p.has_ret()
                        && (exits.all
                            || exits.lifecycle && p.exit_feeds_lifecycle()
                            || exits.tested.binary_search(&p.id).is_ok()),
                    args,
                }
            })
            .collect()
    }
}

/// Which exit (fexit/kretprobe) programs a run loads.
#[derive(Debug, Clone, Default)]
pub struct Exits {
    /// Every probe's: return values are shown (`--ret`).
    pub all: bool,
    /// Those the lifecycle needs (clones, new data buffers).
    pub lifecycle: bool,
    /// Those whose return value a diagnosis rule tests (probe ids, sorted).
    pub tested: Vec<u32>,
}
