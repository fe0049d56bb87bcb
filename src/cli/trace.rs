//! A tracing run: open the kernel's facts, plan and attach the probes,
//! then read events until Ctrl-C/SIGTERM or `--count`, printing them in the
//! chosen mode, and finish with a summary on stderr.

use super::args::Args;
use super::exit::{ExitCode, Fatal};
use crate::abi::{nt_config, nt_filter};
use crate::catalogue::table::{ProbeDef, ProbeKind};
use crate::events::Event;
use crate::kernel::btf::KernelBtf;
use crate::kernel::caps::{self, Capabilities};
use crate::kernel::kallsyms::Kallsyms;
use crate::load::attach::{self, LoadSettings, PlannedProbe, Session};
use crate::load::plan::{self, LiveKernel, Mechanism, MechanismSupport, ProbeMode, SkipReason};
use crate::output::lines::Formatter;
use crate::output::pipeline::{DiagMode, Limiter, Mode, MonitorMode, Pipeline};
use crate::output::time::Clock;
use crate::record::write::Recorder;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
pub fn open_kernel(args: &Args, wanted: caps::Wanted) -> Result<KernelContext, Fatal> {
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
        let btf = KernelBtf::load(args.btf.as_deref())
            .map_err(|e| Fatal::new(ExitCode::KernelLacks, e.to_string()));
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
            .map(|p| PlannedProbe {
                probe: p,
                decision: plan::decide(p, &view, support, probe_mode, tp_mode),
                with_exit: p.has_ret()
                    && (exits.all
                        || exits.lifecycle && p.exit_feeds_lifecycle()
                        || exits.tested.binary_search(&p.id).is_ok()),
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

/// Summarizes skipped probes by reason, for one stderr line each.
pub fn skip_summary(skipped: &[(u32, SkipReason)]) -> Vec<String> {
    let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (id, reason) in skipped {
        let is_fn = crate::catalogue::table::PROBES
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
fn load_with_fallback(
    kernel: &mut KernelContext,
    args: &Args,
    selection: &[&'static ProbeDef],
    settings: &LoadSettings,
    exits: &Exits,
) -> Result<Session, Fatal> {
    match load_with_replan(kernel, args, selection, settings, exits) {
        Err(e) if kernel.caps.assumed => {
            log::debug!("the load failed with untested tracepoint support: testing it");
            let wanted =
                caps::Wanted::for_run(args.probe_mode == crate::load::plan::ProbeMode::Fentry)
                    .tested();
            let tested = caps::detect_with(Some(&kernel.btf), None, wanted);
            let changed = tested.tp_btf.is_err();
            kernel.caps = tested;
            if !changed {
                return Err(e);
            }
            log::info!(
                "tp_btf programs are refused ({}): loading again with raw tracepoints",
                kernel.caps.tp_btf.as_ref().err().map_or("", String::as_str)
            );
            load_with_replan(kernel, args, selection, settings, exits)
        }
        r => r,
    }
}

/// Loads the plan BTF gives, then checks it against kallsyms and loads
/// again if kallsyms changes it.
fn load_with_replan(
    kernel: &KernelContext,
    args: &Args,
    selection: &[&'static ProbeDef],
    settings: &LoadSettings,
    exits: &Exits,
) -> Result<Session, Fatal> {
    let t = Instant::now();
    // The running kernel's BTF (modules included) can plan while kallsyms
    // is read; a --btf file describes no modules.
    let early = args.btf.is_none();
    let planned = if early {
        kernel.plan_from_btf(selection, args.probe_mode, args.tp_mode, exits)
    } else {
        kernel.plan(selection, args.probe_mode, args.tp_mode, exits)
    };
    log::debug!(
        "{} probes planned in {:.2}s",
        planned.len(),
        t.elapsed().as_secs_f64()
    );
    let session = load_planned(kernel, args, selection, settings, exits, &planned)?;
    if !early {
        return Ok(session);
    }
    let exact = kernel.plan(selection, args.probe_mode, args.tp_mode, exits);
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
    load_planned(kernel, args, selection, settings, exits, &exact)
}

fn load_planned(
    kernel: &KernelContext,
    args: &Args,
    selection: &[&'static ProbeDef],
    settings: &LoadSettings,
    exits: &Exits,
    planned: &[PlannedProbe],
) -> Result<Session, Fatal> {
    match attach::load(planned, settings) {
        Ok(s) => Ok(s),
        Err(e) => {
            let uses_fentry = attach::plan_uses(planned, Mechanism::Fentry);
            if args.probe_mode == ProbeMode::Auto && uses_fentry && kernel.caps.kprobe.is_ok() {
                log::warn!("loading with fentry failed ({e}); retrying with kprobes");
                let planned = kernel.plan(selection, ProbeMode::Kprobe, args.tp_mode, exits);
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

/// How often `-v` reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Completes a decoded event with what only the live kernel can tell:
/// `--hooks` (the hook functions of the hook that dropped it) and
/// `--drop-stack` (the frames in the stack map).
fn enrich(ev: &mut Event, session: &Session, hooks: bool, drop_stack: bool) {
    if hooks {
        if let Some(probe) = crate::catalogue::table::PROBES.get(ev.probe as usize) {
            let dropped = probe.ret == crate::catalogue::table::RetKind::NfHook
                && ev.ret.is_some_and(|r| r < 0);
            if let (true, Some(nf)) = (dropped, ev.nf.as_mut()) {
                if let Some((pf, hook)) = nf.pf_hook {
                    nf.hooks = session.hook_functions(pf, hook);
                }
            }
        }
    }
    if drop_stack {
        if let Some(id) = ev.stack_id {
            ev.stack = session.take_stack(id).into();
        }
    }
}

/// Whether the BPF side reads kernel memory with direct loads: where the
/// kernel has bpf_rdonly_cast (6.2+; core.bpf.h, `NT_DIRECT_LOADS`).
/// `NETTRACE_PROBE_READS=1` keeps probe reads: for benchmarks comparing the
/// two, and for the test that both readers parse packets alike.
fn direct_loads(btf: &crate::kernel::btf::KernelBtf) -> bool {
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
fn bench_floor() -> bool {
    let floor = crate::load::env_switch("NETTRACE_BENCH_FLOOR");
    if floor {
        log::warn!("NETTRACE_BENCH_FLOOR=1: the probes attach but report nothing");
    }
    floor
}

/// A packet's life ends at a free or drop and spans its clones: the
/// lifecycle mode adds the probes that see those (`extra` in the
/// catalogue) to whatever `-t` chose, or contexts could never end.
fn with_life_probes(mut selection: Vec<&'static ProbeDef>) -> Vec<&'static ProbeDef> {
    let added: Vec<&'static ProbeDef> = crate::catalogue::table::PROBES
        .iter()
        .filter(|p| p.extra.is_some() && p.default_on)
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

/// Runs the lifecycle mode (default), `--diag`, `--drop`, `--basic` or `--monitor`.
pub fn run(
    args: &Args,
    filter: nt_filter,
    selection: Vec<&'static ProbeDef>,
) -> anyhow::Result<()> {
    // The metrics address is taken before anything touches the kernel.
    let metrics = match &args.metrics {
        Some(addr) => {
            let addr = if addr.parse::<u16>().is_ok() {
                format!("127.0.0.1:{addr}")
            } else {
                addr.clone()
            };
            let shared = crate::output::metrics::Shared::default();
            let bound =
                crate::output::metrics::serve(&addr, shared.clone()).map_err(Fatal::usage)?;
            log::info!("metrics at http://{bound}/metrics");
            Some(shared)
        }
        None => None,
    };
    let mut kernel = open_kernel(
        args,
        caps::Wanted::for_run(args.probe_mode == crate::load::plan::ProbeMode::Fentry),
    )?;
    let lifecycle = !args.view.drop && !args.view.basic && !args.view.monitor;
    let reasons = kernel.btf.drop_reasons();
    let rules = super::view_rules(&args.view, &reasons)?;
    let monitor_plan = args.view.monitor.then(|| {
        let (kept, probes) = crate::rules::monitor::plan(&rules);
        log::info!(
            "monitor mode runs {} of {} rules, on {} probes",
            kept.len(),
            rules.len(),
            probes.len()
        );
        (kept, probes)
    });
    let selection: Vec<&'static ProbeDef> = if args.view.drop {
        crate::catalogue::table::PROBES
            .iter()
            .filter(|p| p.extra == Some(crate::catalogue::table::Extra::Drop))
            .collect()
    } else if let Some((_, ids)) = &monitor_plan {
        ids.iter()
            .filter_map(|id| crate::catalogue::table::PROBES.get(*id as usize))
            .collect()
    } else if lifecycle {
        with_life_probes(selection)
    } else {
        selection
    };
    let tested_rets = crate::rules::compile::ret_tested_probes(match &monitor_plan {
        Some((kept, _)) => kept,
        None => &rules,
    });
    let diag = if args.view.diag {
        log::info!("{} diagnosis rules loaded", rules.len());
        Some(DiagMode {
            rules: crate::rules::eval::RuleSet::new(rules),
            quiet: args.view.diag_quiet,
            keep: args.view.diag_keep,
        })
    } else {
        None
    };
    let settings = LoadSettings {
        filter,
        config: nt_config {
            track: u8::from(lifecycle),
            detail: u8::from(args.view.detail),
            drop_stack: u8::from(args.view.drop_stack),
            hooks: u8::from(args.hooks),
            bench_floor: u8::from(bench_floor()),
            wake_bytes: 64 * 1024,
            rate_limit: args.rate_kernel,
        },
        btf_path: args.btf.clone(),
        kprobe_multi: kernel.kprobe_multi(),
        direct_loads: direct_loads(&kernel.btf),
        quiet_returns: match &monitor_plan {
            Some((kept, probes)) => crate::rules::monitor::quiet_returns(kept, probes),
            None => Vec::new(),
        },
    };
    let started = Instant::now();
    let exits = Exits {
        all: args.view.ret,
        lifecycle,
        tested: tested_rets,
    };
    let session = load_with_fallback(&mut kernel, args, &selection, &settings, &exits)?;
    match session.fill_multi_cookies(kernel.kallsyms()) {
        Ok(Some(table)) => log::debug!(
            "kprobe.multi cookie table: {} functions in their own slots, {} left to the kernel's search",
            table.slots.len(),
            table.collisions
        ),
        Ok(None) => {}
        // The programs keep asking the kernel: slower, never wrong.
        Err(e) => log::warn!("cannot fill the kprobe.multi cookie table ({e:#}): the kernel's cookie search answers instead"),
    }
    let report = session.report.clone();
    for line in skip_summary(&report.skipped) {
        log::warn!("{line}");
    }
    if report.attached.is_empty() {
        return Err(Fatal::new(
            ExitCode::KernelLacks,
            "no probe could be attached on this kernel (see the reasons above; `nettrace --check` reports what is available)",
        )
        .into());
    }
    let by_mech: Vec<String> = report
        .count_by_mechanism()
        .iter()
        .map(|(m, n)| format!("{m}: {n}"))
        .collect();
    log::info!(
        "{} probes attached ({}) in {:.2}s",
        report.attached.len(),
        by_mech.join(", "),
        started.elapsed().as_secs_f64()
    );
    if args.view.drop && reasons.is_empty() {
        log::warn!("this kernel has no drop reasons (before 5.17): lines carry no `reason:`");
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }

    // One realtime offset for --date and the recording, so that a replay
    // prints the same times.
    let realtime_offset = Clock::new(true).offset_ns().unwrap_or(0);
    let fmt = Formatter {
        clock: if args.view.date {
            Clock::local(realtime_offset)
        } else {
            Clock::monotonic()
        },
        reasons: &reasons,
        kallsyms: kernel.kallsyms(),
        detail: args.view.detail,
        show_ret: args.view.ret,
    };
    let recorder = match &args.record {
        Some(path) => Some(
            Recorder::create(path, &record_header(&kernel, &reasons, realtime_offset))
                .map_err(Fatal::usage)?,
        ),
        None => None,
    };
    let mut pipeline = stdout_pipeline(&args.view, fmt, diag);
    if let Some((kept, _)) = monitor_plan {
        if let Some(m) = &metrics {
            if let Ok(mut mx) = m.lock() {
                mx.probes_attached = report.attached.len() as u64;
            }
        }
        pipeline = pipeline.with_monitor(monitor_mode(&args.view, kept, metrics.clone()));
    }
    let pipeline = std::cell::RefCell::new(pipeline);
    let recorder_cell = std::cell::RefCell::new(recorder);
    let undecodable = std::cell::Cell::new(0u64);
    let events = session
        .map("events")
        .ok_or_else(|| anyhow::anyhow!("the BPF object has no events map"))?;
    let mut builder = libbpf_rs::RingBufferBuilder::new();
    builder.add(&events, |data: &[u8]| {
        let mut p = pipeline.borrow_mut();
        if p.finished() {
            return 1;
        }
        let mut ev = match Event::decode(data) {
            Ok(ev) => ev,
            Err(e) => {
                if undecodable.get() == 0 {
                    log::warn!("skipping an undecodable event: {e}");
                }
                undecodable.set(undecodable.get() + 1);
                return 0;
            }
        };
        enrich(&mut ev, &session, args.hooks, args.view.drop_stack);
        if let Some(r) = recorder_cell.borrow_mut().as_mut() {
            r.event(&ev, kernel.kallsyms());
        }
        p.event(ev);
        0
    })?;
    let ring = builder.build()?;

    eprintln!("begin trace...");
    let mut last_report = Instant::now();
    let mut lost_reported = 0;
    loop {
        // Events are queued without wake-ups until a threshold; the short
        // poll timeout bounds latency, consume() drains what is queued.
        let _ = ring.poll(Duration::from_millis(100));
        let _ = ring.consume();
        {
            let now = crate::output::time::monotonic_now();
            if let Some(r) = recorder_cell.borrow_mut().as_mut() {
                r.tick(now);
            }
            let mut p = pipeline.borrow_mut();
            p.tick(now);
            p.flush();
            if p.finished() {
                break;
            }
        }
        if let Some(m) = &metrics {
            let (lost, limited) = (session.lost_events(), session.rate_limited_events());
            if let Ok(mut mx) = m.lock() {
                (mx.lost, mx.kernel_limited) = (lost, limited);
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if args.verbose && last_report.elapsed() >= PROGRESS_EVERY {
            let lost = session.lost_events();
            let p = pipeline.borrow();
            let open = p.open_contexts();
            log::info!(
                "progress: {} events received, {} printed, {open} open contexts, {lost} lost",
                p.events,
                p.printed
            );
            if lost > lost_reported {
                log::warn!("{} events lost so far (ring buffer full)", lost);
                lost_reported = lost;
            }
            last_report = Instant::now();
        }
    }
    pipeline.borrow_mut().finish();
    let (printed, received, incomplete, suppressed) = {
        let p = pipeline.borrow();
        (p.printed, p.events, p.expired(), p.suppressed())
    };
    let lost = session.lost_events();
    let rate_limited = session.rate_limited_events();
    if let Some(misses) = session.multi_cookie_misses() {
        log::debug!("kprobe.multi cookie table misses (answered by the kernel's search): {misses}");
    }
    drop(ring);
    let recorded = recorder_cell.into_inner().map(|r| {
        r.finish(&crate::record::End {
            events: received,
            lost,
        })
    });
    let detach_start = Instant::now();
    let links = session.links();
    drop(pipeline);
    drop(session);
    eprintln!("end trace...");
    eprintln!(
        "summary: {printed} {} printed from {received} events{}, {lost} lost, {} probes attached ({}; {links} links), detached in {:.0} ms",
        if args.view.drop {
            "drops"
        } else if args.view.monitor {
            "findings"
        } else if lifecycle {
            "packets"
        } else {
            "events"
        },
        if lifecycle {
            format!(" ({incomplete} expired incomplete)")
        } else {
            String::new()
        },
        report.attached.len(),
        by_mech.join(", "),
        detach_start.elapsed().as_secs_f64() * 1000.0
    );
    if lost > 0 {
        log::warn!("{lost} events were lost because the ring buffer was full");
    }
    if rate_limited > 0 {
        log::warn!("{rate_limited} events were not sent by the kernel (--rate-kernel)");
    }
    if !suppressed.is_empty() {
        let total: u64 = suppressed.iter().map(|(_, n)| n).sum();
        let by: Vec<String> = suppressed
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        log::warn!(
            "{total} findings suppressed by the rate limits ({})",
            by.join(", ")
        );
    }
    if undecodable.get() > 0 {
        log::warn!(
            "{} events could not be decoded and were skipped",
            undecodable.get()
        );
    }
    match recorded {
        Some(Err(e)) => Err(Fatal::new(ExitCode::Runtime, e).into()),
        Some(Ok(())) => {
            if let Some(p) = &args.record {
                log::info!("recording written to {}", p.display());
            }
            Ok(())
        }
        None => Ok(()),
    }
}

/// The pipeline these flags ask for, printing to stdout.
pub fn stdout_pipeline<'a>(
    view: &super::args::ViewFlags,
    fmt: Formatter<'a>,
    diag: Option<DiagMode>,
) -> Pipeline<'a> {
    Pipeline::new(
        fmt,
        view_mode(view),
        diag,
        view.count,
        view.output,
        // 64 KiB: a write(2) per ~400 event lines instead of per ~50. The
        // tracing loop flushes on every tick, so output still trails the
        // packets by at most the tick.
        Box::new(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout().lock(),
        )),
    )
}

/// Monitor mode's state for these flags.
pub fn monitor_mode(
    view: &super::args::ViewFlags,
    rules: Vec<crate::rules::compile::Rule>,
    metrics: Option<crate::output::metrics::Shared>,
) -> MonitorMode {
    MonitorMode {
        limiter: Limiter::new(rules.len(), view.rate_per_rule, view.rate_total),
        rules: crate::rules::eval::RuleSet::new(rules),
        journal: view.journal,
        metrics,
    }
}

/// What the pipeline prints for these flags.
pub fn view_mode(view: &super::args::ViewFlags) -> Mode {
    if view.monitor {
        Mode::Monitor
    } else if view.drop {
        Mode::Drop {
            stack: view.drop_stack,
        }
    } else if view.basic {
        Mode::Basic
    } else {
        Mode::Lifecycle
    }
}

fn record_header(
    kernel: &KernelContext,
    reasons: &crate::kernel::btf::DropReasons,
    realtime_offset_ns: i128,
) -> crate::record::Header {
    crate::record::Header {
        nettrace: env!("CARGO_PKG_VERSION").to_string(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        kernel: kernel.caps.release.clone(),
        command: std::env::args().collect(),
        probes: crate::catalogue::table::PROBES
            .iter()
            .map(|p| p.name.to_string())
            .collect(),
        drop_reasons: reasons.pairs(),
        realtime_offset_ns: realtime_offset_ns as i64,
    }
}
