//! What the running kernel lets nettrace do: privileges, BTF, fentry,
//! kprobes, tracepoints, the ring buffer, drop reasons. Each capability is
//! tested by doing the thing (loading a tiny program), not by version
//! numbers, because distributions backport and configure differently.

use super::btf::KernelBtf;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use std::mem::MaybeUninit;
use std::path::Path;

mod caps_skel {
    #![allow(clippy::all, clippy::pedantic, dead_code, unused_imports)]
    include!(concat!(env!("OUT_DIR"), "/caps.skel.rs"));
}

/// Functions almost every kernel has, used as harmless attach targets.
const PROBE_TARGETS: [&str; 3] = ["consume_skb", "kfree_skb_partial", "__kfree_skb"];

/// Whether one capability is there, and if not, why.
pub type Support = Result<(), Unsupported>;

/// Why a capability is missing (or was not tested), as shown by `--check`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

impl From<String> for Unsupported {
    fn from(why: String) -> Unsupported {
        Unsupported(why)
    }
}

impl From<&str> for Unsupported {
    fn from(why: &str) -> Unsupported {
        Unsupported(why.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct Capabilities {
    pub release: String,
    pub btf: bool,
    pub fentry: Support,
    pub kprobe: Support,
    pub tp_btf: Support,
    pub raw_tp: Support,
    pub ringbuf: Support,
    pub drop_reasons: usize,
    /// tp_btf, raw_tp and the ring buffer are taken from BTF, not tested:
    /// the run's own load tests them, and if it fails, the run tests them
    /// and replans (`run/attach.rs`, `load_with_fallback`).
    pub assumed: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        let untested = || Err("not tested".into());
        Capabilities {
            release: String::new(),
            btf: false,
            fentry: untested(),
            kprobe: untested(),
            tp_btf: untested(),
            raw_tp: untested(),
            ringbuf: untested(),
            drop_reasons: 0,
            assumed: false,
        }
    }
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// `major.minor` of a kernel release string (`6.1.0-56-amd64` → (6, 1)).
pub fn release_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// How many arguments fentry/fexit trampolines handle on x86-64: six,
/// and twelve since 6.4 (arguments passed on the stack).
pub fn fentry_max_args(release: &str) -> usize {
    match release_version(release) {
        Some(v) if v >= (6, 4) => 12,
        _ => 6,
    }
}

/// Whether the process may load BPF tracing programs.
pub fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_SYS_ADMIN: u64 = 21;
    const CAP_PERFMON: u64 = 38;
    const CAP_BPF: u64 = 39;
    eff & (1 << CAP_SYS_ADMIN) != 0 || (eff & (1 << CAP_BPF) != 0 && eff & (1 << CAP_PERFMON) != 0)
}

/// Whether the kernel has a kprobe PMU (CONFIG_KPROBES).
fn kprobe_support() -> Support {
    if Path::new("/sys/bus/event_source/devices/kprobe/type").exists() {
        Ok(())
    } else {
        Err("no kprobe PMU (kernel built without CONFIG_KPROBES)".into())
    }
}

fn short(e: &libbpf_rs::Error) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or(&s).to_string()
}

/// Probes the running kernel. Needs privileges for the load tests.
pub fn detect(btf: Option<&KernelBtf>) -> Capabilities {
    detect_with(btf, None, Wanted::ALL)
}

/// Which load tests a run needs. Each costs a BPF object load (about a
/// second of CPU together in the emulated test kernels), so a run skips
/// the ones whose answer cannot change its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Test fentry (functions may attach through it).
    pub fentry: bool,
    /// Test tp_btf and the ring buffer. Untested, a kernel whose BTF
    /// describes tracepoints is taken to load tp_btf programs (5.5+) and
    /// ring buffers (5.8+, older BTF kernels fail the run's load, which
    /// then tests).
    pub tp_btf: bool,
    /// Test raw_tp even when tp_btf loads. When tp_btf loads, raw_tp
    /// (older, same privileges) is taken to load too.
    pub raw_tp: bool,
}

impl Wanted {
    /// Everything, each for real (`--check`).
    pub const ALL: Wanted = Wanted {
        fentry: true,
        tp_btf: true,
        raw_tp: true,
    };

    /// What a trace run needs: fentry only when functions may attach
    /// through it (`fentry_asked`: `--probe-mode fentry`, or no kprobes);
    /// tp_btf not at all, since the run's own load is the test.
    pub fn for_run(fentry_asked: bool) -> Wanted {
        Wanted {
            // Without kprobes, fentry's answer decides what a skip says.
            fentry: fentry_asked || kprobe_support().is_err(),
            tp_btf: false,
            raw_tp: false,
        }
    }

    /// These, with tp_btf and the ring buffer tested for real.
    pub fn tested(self) -> Wanted {
        Wanted {
            tp_btf: true,
            ..self
        }
    }
}

/// Why a capability was not tested.
const FENTRY_NOT_NEEDED: &str = "not tested: functions attach through kprobes in this run";

/// The capability loads for an fentry target.
pub struct ProgramLoads {
    target: &'static str,
    wanted: Wanted,
    fentry: Support,
    tp_btf: Support,
    raw_tp: Support,
}

/// The capability loads, run before the kernel's BTF is parsed (they do
/// not need it, and start-up waits for the slower of the two): the fentry
/// load targets the function almost every kernel has; `detect_with` runs
/// them again for another target where this kernel's BTF lacks it.
pub fn early_loads(wanted: Wanted) -> ProgramLoads {
    program_loads(PROBE_TARGETS[0], wanted)
}

fn program_loads(target: &'static str, wanted: Wanted) -> ProgramLoads {
    // Independent loads (each parses the kernel's BTF in libbpf, and the
    // fentry detach waits for the kernel): side by side.
    let (fentry, tp_btf, raw_tp) = std::thread::scope(|s| {
        let fentry = wanted
            .fentry
            .then(|| s.spawn(|| try_load(Some(target), Which::Fentry)));
        let raw_tp = wanted
            .raw_tp
            .then(|| s.spawn(|| try_load(Some("consume_skb"), Which::RawTp)));
        // Not wanted: taken to load (and raw_tp with it, below); the run's
        // own load is the test (`Capabilities::assumed`).
        let tp_btf = if wanted.tp_btf {
            try_load(Some("consume_skb"), Which::TpBtf)
        } else {
            Ok(())
        };
        let joined = |h: std::thread::ScopedJoinHandle<'_, Support>| {
            h.join()
                .unwrap_or_else(|_| Err("the probe thread panicked".into()))
        };
        let fentry = fentry.map_or_else(|| Err(FENTRY_NOT_NEEDED.into()), joined);
        let raw_tp = match raw_tp {
            Some(h) => joined(h),
            None if tp_btf.is_ok() => Ok(()),
            None => try_load(Some("consume_skb"), Which::RawTp),
        };
        (fentry, tp_btf, raw_tp)
    });
    ProgramLoads {
        target,
        wanted,
        fentry,
        tp_btf,
        raw_tp,
    }
}

/// The capabilities, reusing `early` when it loaded the target this
/// kernel's BTF chooses.
pub fn detect_with(
    btf: Option<&KernelBtf>,
    early: Option<ProgramLoads>,
    wanted: Wanted,
) -> Capabilities {
    let mut caps = Capabilities {
        release: kernel_release(),
        btf: btf.is_some(),
        kprobe: kprobe_support(),
        drop_reasons: btf.map(|b| b.drop_reasons().len()).unwrap_or(0),
        ..Default::default()
    };
    let target = btf.and_then(|b| {
        PROBE_TARGETS
            .iter()
            .find(|t| b.function_params(t, None).is_some())
            .copied()
    });
    let unavailable = |why: &str| Err(Unsupported::from(why));
    let Some(target) = target else {
        let why = "no kernel BTF";
        caps.fentry = unavailable(why);
        caps.tp_btf = unavailable(why);
        caps.raw_tp = try_load(None, Which::RawTp);
        caps.ringbuf = caps.raw_tp.clone();
        return caps;
    };
    let loads = match early {
        Some(l) if l.target == target && l.wanted == wanted => l,
        _ => program_loads(target, wanted),
    };
    caps.fentry = loads.fentry;
    caps.assumed = !wanted.tp_btf;
    // Both the tp_btf and the raw_tp program write to a ring buffer.
    caps.ringbuf = if loads.tp_btf.is_ok() {
        Ok(())
    } else {
        loads.raw_tp.clone()
    };
    caps.tp_btf = loads.tp_btf;
    caps.raw_tp = loads.raw_tp;
    caps
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Fentry,
    TpBtf,
    RawTp,
}

/// Loads and attaches one capability program, then detaches it.
fn try_load(target: Option<&str>, which: Which) -> Support {
    let t = std::time::Instant::now();
    let r = try_load_inner(target, which);
    log::debug!(
        "capability {} tested in {:.2}s",
        which.name(),
        t.elapsed().as_secs_f64()
    );
    r
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Fentry => "fentry",
            Which::TpBtf => "tp_btf",
            Which::RawTp => "raw_tp",
        }
    }
}

fn try_load_inner(target: Option<&str>, which: Which) -> Support {
    let mut storage = MaybeUninit::uninit();
    let builder = caps_skel::CapsSkelBuilder::default();
    let mut open = builder.open(&mut storage).map_err(|e| short(&e))?;
    {
        let progs = &mut open.progs;
        progs.caps_fentry.set_autoload(which == Which::Fentry);
        progs.caps_tp_btf.set_autoload(which == Which::TpBtf);
        progs.caps_raw_tp.set_autoload(which == Which::RawTp);
        let t = target.unwrap_or("consume_skb").to_string();
        match which {
            Which::Fentry => progs
                .caps_fentry
                .set_attach_target(0, Some(t))
                .map_err(|e| short(&e))?,
            Which::TpBtf => progs
                .caps_tp_btf
                .set_attach_target(0, Some(t))
                .map_err(|e| short(&e))?,
            Which::RawTp => {}
        }
    }
    let skel = open
        .load()
        .map_err(|e| Unsupported(format!("load refused: {}", short(&e))))?;
    let link = match which {
        Which::Fentry => skel.progs.caps_fentry.attach(),
        Which::TpBtf => skel.progs.caps_tp_btf.attach(),
        Which::RawTp => skel
            .progs
            .caps_raw_tp
            .attach_raw_tracepoint(target.unwrap_or("consume_skb")),
    };
    link.map(drop)
        .map_err(|e| Unsupported(format!("attach refused: {}", short(&e))))
}
