//! Opening, configuring, loading and attaching the generated BPF object
//! according to a plan. Everything not in the plan is switched off before
//! load, so one program this kernel refuses cannot fail the others. Links
//! are kept in one vector: dropping the session detaches everything at once.

use super::error::{step, LoadError};
use super::generic;
use super::plan::{Decision, Mechanism, SkipReason};
use super::session::{AttachReport, Session};
use crate::catalogue::table::{ProbeDef, PROBES};
use crate::codegen::render::prog_name;
use libbpf_rs::{Link, ObjectBuilder};
use std::collections::HashMap;

use crate::abi::{nt_config, nt_filter, Rodata};

/// The compiled BPF objects (codegen::render::OBJECTS): every program;
/// tracepoints, fentry/fexit and the generic kprobes; tracepoints and the
/// generic kprobes.
static OBJECT_FULL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nettrace.bpf.o"));
static OBJECT_FENTRY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nettrace-fentry.bpf.o"));
static OBJECT_KPROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nettrace-kprobe.bpf.o"));
static OBJECT_FENTRY_DIRECT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/nettrace-fentry-direct.bpf.o"));
static OBJECT_KPROBE_DIRECT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/nettrace-kprobe-direct.bpf.o"));

/// One probe to load, as planned.
#[derive(Debug, Clone)]
pub struct PlannedProbe {
    pub probe: &'static ProbeDef,
    pub decision: Decision,
    /// Load the exit program too (return values wanted).
    pub with_exit: bool,
    /// The function's argument count, from BTF (fentry): before 5.17 an
    /// fexit program finds the return value after the arguments.
    pub args: Option<u8>,
}

impl PlannedProbe {
    /// How the probe attaches (None: skipped).
    pub fn mechanism(&self) -> Option<Mechanism> {
        match self.decision {
            Decision::Attach { mechanism, .. } => Some(mechanism),
            Decision::Skip(_) => None,
        }
    }
}

/// Whether any probe of the plan attaches with `mechanism`.
pub fn plan_uses(plan: &[PlannedProbe], mechanism: Mechanism) -> bool {
    plan.iter().any(|p| p.mechanism() == Some(mechanism))
}

/// Run-wide settings written to .rodata before load.
pub struct LoadSettings {
    pub filter: nt_filter,
    pub config: nt_config,
    /// Kernel BTF for CO-RE relocations when not /sys/kernel/btf/vmlinux.
    pub btf_path: Option<std::path::PathBuf>,
    /// The kernel attaches kprobe.multi links (fprobe, 5.18+).
    pub kprobe_multi: bool,
    /// The kernel has bpf_get_attach_cookie (5.15+), which the generic kprobe
    /// programs need; without it they are not tried.
    pub attach_cookie: bool,
    /// Read kernel memory with direct loads (the `-direct` objects): the
    /// kernel has bpf_rdonly_cast. The full object always uses probe reads.
    pub direct_loads: bool,
    /// The event ring buffer's size in bytes (a power of two, at least a
    /// page); its pages are mapped twice, so it counts double in RSS.
    pub ring_bytes: u32,
    /// `--monitor`: (probe, return values 0..=63 as bits) whose exits the
    /// kernel drops instead of sending (`rules::monitor::quiet_returns`).
    pub quiet_returns: Vec<(u32, u64)>,
    /// (probe, `abi::probe_flags`): the probes' roles in the run
    /// (--trace-matcher, --trace-stack, --trace-free).
    pub probe_flags: Vec<(u32, u8)>,
}

/// How kprobe-mode probes are loaded and attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KprobeStyle {
    /// The generic programs, every function through one kprobe.multi link.
    Multi,
    /// The generic programs, one kprobe link (with its cookie) per function.
    Generic,
    /// One program per probe and one link each: the fallback when the
    /// kernel refuses the generic programs.
    PerProbe,
}

/// Writes the run's settings into the object's .rodata, whose layout is
/// `Rodata` (checked by size).
fn set_rodata(
    object: &mut libbpf_rs::OpenObject,
    settings: &LoadSettings,
    ret_on: &[u8],
) -> Result<(), LoadError> {
    let mut map = object
        .maps_mut()
        .find(|m| m.name().to_string_lossy().ends_with(".rodata"))
        .ok_or_else(|| LoadError::Object("the BPF object has no .rodata map".into()))?;
    let bytes = map
        .initial_value_mut()
        .ok_or_else(|| LoadError::Object("the .rodata map has no initial value".into()))?;
    if bytes.len() != std::mem::size_of::<Rodata>() {
        return Err(LoadError::Object(format!(
            ".rodata is {} bytes, the layout object says {}: rebuild",
            bytes.len(),
            std::mem::size_of::<Rodata>()
        )));
    }
    // Zeroed first: the struct has padding before QUIET_RET (u64s), and
    // every byte of it is copied into the map below.
    // SAFETY: rodata is plain old data (integers and arrays of them), for
    // which all-zero bytes are a valid value.
    let mut rodata: Rodata = unsafe { std::mem::zeroed() };
    rodata.FILTER = settings.filter;
    rodata.CONFIG = settings.config;
    for (probe, flags) in &settings.probe_flags {
        if let Some(slot) = rodata.PROBE_FLAGS.get_mut(*probe as usize) {
            *slot = *flags;
        }
    }
    for (slot, v) in rodata.RET_ON.iter_mut().zip(ret_on) {
        *slot = *v;
    }
    for &(probe, mask) in &settings.quiet_returns {
        if let Some(slot) = rodata.QUIET_RET.get_mut(probe as usize) {
            *slot = mask;
        }
    }
    // SAFETY: rodata is plain old data of exactly bytes.len() bytes.
    let src = unsafe {
        std::slice::from_raw_parts(
            (&rodata as *const Rodata).cast::<u8>(),
            std::mem::size_of::<Rodata>(),
        )
    };
    bytes.copy_from_slice(src);
    Ok(())
}

/// Loads the object with the planned programs and attaches them. Kprobes
/// use the generic programs (kprobe.multi where the kernel has it); if the
/// kernel refuses those, the per-probe programs are tried.
pub fn load(plan: &[PlannedProbe], settings: &LoadSettings) -> Result<Session, LoadError> {
    if !plan_uses(plan, Mechanism::Kprobe) {
        // No kprobe program loads: the smaller objects serve.
        return load_as(plan, settings, KprobeStyle::Generic);
    }
    // Each style falls back to the next: a kernel may refuse kprobe.multi
    // for one of the functions, or the generic programs altogether.
    // NETTRACE_KPROBE_STYLE (multi, generic, per-probe) starts the chain
    // elsewhere: tools/bench compares the styles' start-up with it.
    let all = [
        KprobeStyle::Multi,
        KprobeStyle::Generic,
        KprobeStyle::PerProbe,
    ];
    let default = if settings.kprobe_multi {
        0
    } else if settings.attach_cookie {
        1
    } else {
        2
    };
    let first = match std::env::var("NETTRACE_KPROBE_STYLE").as_deref() {
        Ok("per-probe") => 2,
        Ok("generic") => 1,
        Ok("multi") | Err(_) => default,
        Ok(other) => {
            log::warn!(
                "NETTRACE_KPROBE_STYLE={other} is none of multi, generic, per-probe: ignored"
            );
            default
        }
    };
    let styles = &all[first..];
    let mut last = None;
    for (i, style) in styles.iter().enumerate() {
        match load_as(plan, settings, *style) {
            Ok(s) => return Ok(s),
            Err(e) => {
                if let Some(next) = styles.get(i + 1) {
                    log::warn!("kprobes as {style:?} failed ({e:#}); trying {next:?}");
                }
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least one style was tried"))
}

fn load_as(
    plan: &[PlannedProbe],
    settings: &LoadSettings,
    style: KprobeStyle,
) -> Result<Session, LoadError> {
    let t = std::time::Instant::now();
    let mut builder = ObjectBuilder::default();
    builder
        .name("nettrace")
        .map_err(step("naming the object"))?;
    if let Some(p) = &settings.btf_path {
        builder
            .btf_custom_path(p)
            .map_err(step(format!("using BTF from {}", p.display())))?;
    }
    let generic = style != KprobeStyle::PerProbe;
    let raw_tp = plan_uses(plan, Mechanism::RawTp);
    let fentry = plan_uses(plan, Mechanism::Fentry);
    let (object_name, bytes) = match (generic && !raw_tp, fentry, settings.direct_loads) {
        (false, _, _) => ("nettrace", OBJECT_FULL),
        (true, true, true) => ("nettrace-fentry-direct", OBJECT_FENTRY_DIRECT),
        (true, true, false) => ("nettrace-fentry", OBJECT_FENTRY),
        (true, false, true) => ("nettrace-kprobe-direct", OBJECT_KPROBE_DIRECT),
        (true, false, false) => ("nettrace-kprobe", OBJECT_KPROBE),
    };
    let mut open = builder
        .open_memory(bytes)
        .map_err(step(format!("opening {object_name}")))?;
    log::debug!(
        "BPF object {object_name} opened in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let (entry_prog, exit_prog) = match style {
        KprobeStyle::Multi => (generic::MULTI_ENTRY, generic::MULTI_EXIT),
        _ => (generic::SINGLE_ENTRY, generic::SINGLE_EXIT),
    };

    // program name -> attach target (None: the target is given at attach)
    let mut wanted: HashMap<String, Option<String>> = HashMap::new();
    let mut ret_on = vec![0u8; PROBES.len()];
    for p in plan {
        let Decision::Attach {
            mechanism,
            target,
            variant,
        } = &p.decision
        else {
            continue;
        };
        let exit = p.with_exit && mechanism.exit_prefix().is_some();
        if exit {
            // Nonzero: the exit is loaded; for fexit, 1 + the argument
            // count (nt_fexit_ret in core.bpf.h).
            ret_on[p.probe.id as usize] = match (mechanism, p.args) {
                (Mechanism::Fentry, Some(n)) => n.saturating_add(1),
                _ => 1,
            };
        }
        if generic && *mechanism == Mechanism::Kprobe {
            wanted.insert(entry_prog.into(), None);
            if exit {
                wanted.insert(exit_prog.into(), None);
            }
            continue;
        }
        let preset =
            matches!(mechanism, Mechanism::Fentry | Mechanism::TpBtf).then(|| target.clone());
        wanted.insert(
            prog_name(mechanism.entry_prefix(), p.probe.name, *variant),
            preset.clone(),
        );
        if let (true, Some(prefix)) = (exit, mechanism.exit_prefix()) {
            wanted.insert(prog_name(prefix, p.probe.name, *variant), preset);
        }
    }
    set_rodata(&mut open, settings, &ret_on)?;
    if let Some(mut ring) = open
        .maps_mut()
        .find(|m| m.name().to_string_lossy() == "events")
    {
        ring.set_max_entries(settings.ring_bytes)
            .map_err(step("sizing the event ring buffer"))?;
    }
    // NETTRACE_VERIFIER_STATS=1: the verifier's statistics per program
    // (instructions processed, states, time) in the --debug log, for
    // BENCHMARKS.md's start-up profile.
    let verifier_stats = super::env_switch("NETTRACE_VERIFIER_STATS");
    let t = std::time::Instant::now();
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        match wanted.get(&name) {
            Some(target) => {
                prog.set_autoload(true);
                if verifier_stats {
                    // BPF_LOG_STATS
                    prog.set_log_level(4);
                }
                if let Some(t) = target {
                    prog.set_attach_target(0, Some(t.clone()))
                        .map_err(step(format!("setting the target of {name}")))?;
                }
            }
            None => prog.set_autoload(false),
        }
    }
    log::debug!(
        "programs chosen and targets set in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let t = std::time::Instant::now();
    let object = open.load().map_err(step("loading the programs"))?;
    log::debug!(
        "BPF object loaded in {:.2}s ({} programs, kprobes: {style:?})",
        t.elapsed().as_secs_f64(),
        wanted.len()
    );
    let t = std::time::Instant::now();

    let mut links = Vec::new();
    let mut report = AttachReport::default();
    let mut multi_cookies = Vec::new();
    {
        let progs: HashMap<String, libbpf_rs::ProgramMut<'_>> = object
            .progs_mut()
            .filter(|p| wanted.contains_key(p.name().to_string_lossy().as_ref()))
            .map(|p| (p.name().to_string_lossy().into_owned(), p))
            .collect();
        let mut multi: Vec<&PlannedProbe> = Vec::new();
        for p in plan {
            let (mechanism, target, variant) = match &p.decision {
                Decision::Attach {
                    mechanism,
                    target,
                    variant,
                } => (*mechanism, target.as_str(), *variant),
                Decision::Skip(r) => {
                    report.skipped.push((p.probe.id, r.clone()));
                    continue;
                }
            };
            if style == KprobeStyle::Multi && mechanism == Mechanism::Kprobe {
                multi.push(p);
                continue;
            }
            let prog_of = |name: &str| {
                progs
                    .get(name)
                    .ok_or_else(|| format!("program {name} missing"))
            };
            let attach_one = |prefix: &str, ret: bool| -> Result<Link, String> {
                let r = match mechanism {
                    Mechanism::Kprobe if generic => {
                        let prog = prog_of(if ret { exit_prog } else { entry_prog })?;
                        let opts = libbpf_rs::KprobeOpts {
                            cookie: generic::cookie(p.probe, variant),
                            ..Default::default()
                        };
                        prog.attach_kprobe_with_opts(ret, target, opts)
                    }
                    _ => {
                        let prog = prog_of(&prog_name(prefix, p.probe.name, variant))?;
                        match mechanism {
                            Mechanism::Fentry | Mechanism::TpBtf => prog.attach(),
                            Mechanism::Kprobe => prog.attach_kprobe(ret, target),
                            Mechanism::RawTp => prog.attach_raw_tracepoint(target),
                        }
                    }
                };
                r.map_err(|e| {
                    let s = e.to_string();
                    format!(
                        "{} attach failed: {}",
                        mechanism,
                        s.lines().next().unwrap_or(&s)
                    )
                })
            };
            let mut result = attach_one(mechanism.entry_prefix(), false).map(|l| vec![l]);
            if let (Ok(ls), true, Some(prefix)) =
                (&mut result, p.with_exit, mechanism.exit_prefix())
            {
                match attach_one(prefix, true) {
                    Ok(l) => ls.push(l),
                    Err(e) => result = Err(e),
                }
            }
            match result {
                Ok(ls) => {
                    links.extend(ls);
                    report.attached.push((p.probe.id, mechanism));
                }
                Err(e) => report.skipped.push((p.probe.id, SkipReason::Mechanism(e))),
            }
        }
        if !multi.is_empty() {
            multi_cookies = attach_multi(&progs, &multi, &mut links, &mut report)?;
        }
    }
    log::debug!(
        "{} links attached in {:.2}s",
        links.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(Session {
        object,
        links,
        report,
        multi_cookies,
    })
}

/// Attaches every kprobe of the plan through one kprobe.multi link for the
/// entries and one for the exits, and returns each function's (symbol,
/// cookie). The kernel takes or refuses a link as a whole: on a refusal
/// the caller loads again with one generic kprobe link per function, which
/// reports each function that fails on its own.
fn attach_multi(
    progs: &HashMap<String, libbpf_rs::ProgramMut<'_>>,
    probes: &[&PlannedProbe],
    links: &mut Vec<Link>,
    report: &mut AttachReport,
) -> Result<Vec<(String, u64)>, LoadError> {
    let target_of = |p: &PlannedProbe| match &p.decision {
        Decision::Attach {
            target, variant, ..
        } => (target.clone(), generic::cookie(p.probe, *variant)),
        Decision::Skip(_) => unreachable!("only attached probes are here"),
    };
    let multi = |name: &str, ret: bool, ps: &[&PlannedProbe]| -> Result<Link, LoadError> {
        let prog = progs
            .get(name)
            .ok_or_else(|| LoadError::Object(format!("program {name} missing")))?;
        let (symbols, cookies): (Vec<String>, Vec<u64>) = ps.iter().map(|p| target_of(p)).unzip();
        prog.attach_kprobe_multi_with_opts(libbpf_rs::KprobeMultiOpts {
            symbols,
            cookies,
            retprobe: ret,
            ..Default::default()
        })
        .map_err(step(format!(
            "kprobe.multi refused the {} functions",
            ps.len()
        )))
    };
    let exits: Vec<&PlannedProbe> = probes.iter().copied().filter(|p| p.with_exit).collect();
    let entry = multi(generic::MULTI_ENTRY, false, probes);
    let exit = if exits.is_empty() {
        Ok(None)
    } else {
        multi(generic::MULTI_EXIT, true, &exits).map(Some)
    };
    match (entry, exit) {
        (Ok(e), Ok(x)) => {
            links.push(e);
            links.extend(x);
            for p in probes {
                report.attached.push((p.probe.id, Mechanism::Kprobe));
            }
            log::debug!(
                "{} functions through kprobe.multi ({} with exits)",
                probes.len(),
                exits.len()
            );
            Ok(probes.iter().map(|p| target_of(p)).collect())
        }
        (e, x) => Err(e.err().or(x.err()).expect("one attach failed")),
    }
}
