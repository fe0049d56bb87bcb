//! Choosing and attaching a run's probes: the probes its mode needs, the
//! settings written before load, and the load with its fallbacks (untested
//! tracepoint support, kallsyms changing the plan, fentry refused).

use super::error::{ExitCode, Fatal};
use super::kernel::{Exits, KernelContext};
use crate::catalogue::table::{Extra, ProbeDef, ProbeKind, PROBES};
use crate::kernel::caps;
use crate::load::attach::{self, LoadSettings, PlannedProbe};
use crate::load::plan::{Mechanism, ProbeMode, SkipReason};
use crate::load::session::Session;
use crate::spec::{Mode, ProbeSpec, TraceControls};
use std::collections::BTreeMap;
use std::time::Instant;

/// Summarizes skipped probes by reason, for one stderr line each.
pub fn skip_summary(skipped: &[(u32, SkipReason)]) -> Vec<String> {
    let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (id, reason) in skipped {
        let is_fn = PROBES
            .get(*id as usize)
            .is_some_and(|p| p.kind == ProbeKind::Function);
        let e = by.entry(reason.to_string()).or_default();
        if is_fn {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    by.into_iter()
        .map(|(why, (f, t))| {
            let what = match (f, t) {
                (f, 0) => format!("{f} function probe{}", if f == 1 { "" } else { "s" }),
                (0, t) => format!("{t} tracepoint{}", if t == 1 { "" } else { "s" }),
                (f, t) => format!("{f} function probes and {t} tracepoints"),
            };
            format!("{what} skipped: {why}")
        })
        .collect()
}

/// Loads the planned probes. Where tracepoint support was taken from BTF
/// untested and the load fails, tests it and, if that changes the plan,
/// loads again.
pub fn load_with_fallback(
    kernel: &mut KernelContext,
    probes: &ProbeSpec,
    selection: &[&'static ProbeDef],
    settings: &LoadSettings,
    exits: &Exits,
) -> Result<Session, Fatal> {
    match load_with_replan(kernel, probes, selection, settings, exits) {
        Err(e) if kernel.caps.assumed => {
            log::debug!("the load failed with untested tracepoint support: testing it");
            let wanted = caps::Wanted::for_run(probes.probe_mode == ProbeMode::Fentry).tested();
            let tested = caps::detect_with(Some(&kernel.btf), None, wanted);
            let changed = tested.tp_btf.is_err();
            kernel.caps = tested;
            if !changed {
                return Err(e);
            }
            log::info!(
                "tp_btf programs are refused ({}): loading again with raw tracepoints",
                kernel
                    .caps
                    .tp_btf
                    .as_ref()
                    .err()
                    .map_or("", |u| u.0.as_str())
            );
            load_with_replan(kernel, probes, selection, settings, exits)
        }
        r => r,
    }
}

/// Loads the plan BTF gives, then checks it against kallsyms and loads
/// again if kallsyms changes it.
fn load_with_replan(
    kernel: &KernelContext,
    probes: &ProbeSpec,
    selection: &[&'static ProbeDef],
    settings: &LoadSettings,
    exits: &Exits,
) -> Result<Session, Fatal> {
    let t = Instant::now();
    // The running kernel's BTF (modules included) can plan while kallsyms
    // is read; a --btf file describes no modules.
    let early = probes.btf.is_none();
    let planned = if early {
        kernel.plan_from_btf(selection, probes.probe_mode, probes.tp_mode, exits)
    } else {
        kernel.plan(selection, probes.probe_mode, probes.tp_mode, exits)
    };
    log::debug!(
        "{} probes planned in {:.2}s",
        planned.len(),
        t.elapsed().as_secs_f64()
    );
    let session = load_planned(kernel, probes, selection, settings, exits, &planned)?;
    if !early {
        return Ok(session);
    }
    let exact = kernel.plan(selection, probes.probe_mode, probes.tp_mode, exits);
    let same = planned.len() == exact.len()
        && planned
            .iter()
            .zip(&exact)
            .all(|(a, b)| a.decision == b.decision && a.with_exit == b.with_exit);
    if same {
        return Ok(session);
    }
    log::info!("kallsyms knows functions BTF does not describe: loading again with them");
    drop(session);
    load_planned(kernel, probes, selection, settings, exits, &exact)
}

fn load_planned(
    kernel: &KernelContext,
    probes: &ProbeSpec,
    selection: &[&'static ProbeDef],
    settings: &LoadSettings,
    exits: &Exits,
    planned: &[PlannedProbe],
) -> Result<Session, Fatal> {
    match attach::load(planned, settings) {
        Ok(s) => Ok(s),
        Err(e) => {
            let uses_fentry = attach::plan_uses(planned, Mechanism::Fentry);
            if probes.probe_mode == ProbeMode::Auto && uses_fentry && kernel.caps.kprobe.is_ok() {
                log::warn!("loading with fentry failed ({e}); retrying with kprobes");
                let planned = kernel.plan(selection, ProbeMode::Kprobe, probes.tp_mode, exits);
                return attach::load(&planned, settings).map_err(|e| {
                    Fatal::new(ExitCode::LoadRefused, format!("the kernel refused the BPF programs: {e:#} (run with --debug for the verifier log)"))
                });
            }
            Err(Fatal::new(
                ExitCode::LoadRefused,
                format!("the kernel refused the BPF programs: {e:#} (run with --debug for the verifier log)"),
            ))
        }
    }
}

/// Whether the BPF side reads kernel memory with direct loads: where the
/// kernel has bpf_rdonly_cast (6.2+; core.bpf.h, `NT_DIRECT_LOADS`).
/// `NETTRACE_PROBE_READS=1` keeps probe reads: for benchmarks comparing the
/// two, and for the test that both readers parse packets alike.
pub fn direct_loads(btf: &crate::kernel::btf::KernelBtf) -> bool {
    if crate::load::env_switch("NETTRACE_PROBE_READS") {
        log::warn!("NETTRACE_PROBE_READS=1: kernel memory is read with probe reads");
        return false;
    }
    let direct = btf.has_vmlinux_function("bpf_rdonly_cast");
    log::debug!(
        "kernel memory read with {}",
        if direct {
            "direct loads (bpf_rdonly_cast)"
        } else {
            "probe reads (no bpf_rdonly_cast)"
        }
    );
    direct
}

/// `NETTRACE_BENCH_FLOOR=1`: every BPF program returns before it reads
/// anything. `tools/bench-vm-overhead` runs this as its "floor" mode: what
/// the attachments alone cost, under the programs' own work.
pub fn bench_floor() -> bool {
    let floor = crate::load::env_switch("NETTRACE_BENCH_FLOOR");
    if floor {
        log::warn!("NETTRACE_BENCH_FLOOR=1: the probes attach but report nothing");
    }
    floor
}

/// A packet's life ends at a free or drop and spans its clones: the
/// lifecycle mode adds the probes that see those (`extra` in the
/// catalogue) to whatever `-t` chose, or contexts could never end.
fn with_life_probes(
    mut selection: Vec<&'static ProbeDef>,
    excluded: &[&'static ProbeDef],
) -> Vec<&'static ProbeDef> {
    let added: Vec<&'static ProbeDef> = PROBES
        .iter()
        .filter(|p| p.extra.is_some() && p.default_on)
        .filter(|p| !excluded.iter().any(|x| x.id == p.id))
        .filter(|p| !selection.iter().any(|s| s.id == p.id))
        .collect();
    if !added.is_empty() {
        let names: Vec<&str> = added.iter().map(|p| p.name).collect();
        log::info!(
            "lifecycle mode adds the probes that end or split a packet's life: {}",
            names.join(", ")
        );
    }
    selection.extend(added);
    selection.sort_by_key(|p| p.id);
    selection
}

/// The probes a run of `mode` attaches: `--drop` the drop tracepoint,
/// `--monitor` those its rules need (`monitor_probes`), the lifecycle
/// and latency modes `-t`'s choice with the probes that end or split a
/// packet's life, `--basic` and `--func-stats` `-t`'s choice alone.
pub fn select(mode: &Mode, probes: &ProbeSpec, monitor_probes: &[u32]) -> Vec<&'static ProbeDef> {
    match mode {
        Mode::Drop { .. } => PROBES
            .iter()
            .filter(|p| p.extra == Some(Extra::Drop))
            .collect(),
        Mode::Monitor(_) => monitor_probes
            .iter()
            .filter_map(|id| PROBES.get(*id as usize))
            .collect(),
        Mode::Lifecycle | Mode::Diag(_) | Mode::Latency(_) => {
            with_life_probes(probes.selection.clone(), &probes.trace.exclude)
        }
        Mode::Basic | Mode::FuncStats | Mode::Rtt(_) | Mode::Sock => probes.selection.clone(),
    }
}

/// The roles the `--trace-*` flags give probes, for `PROBE_FLAGS`.
pub fn probe_flags(trace: &TraceControls) -> Vec<(u32, u8)> {
    use crate::abi::probe_flags as pf;
    let mut flags: BTreeMap<u32, u8> = BTreeMap::new();
    for (list, bit) in [
        (&trace.matcher, pf::MATCHER),
        (&trace.stack, pf::STACK),
        (&trace.end, pf::END),
    ] {
        for p in list {
            *flags.entry(p.id).or_default() |= bit;
        }
    }
    flags.into_iter().collect()
}
