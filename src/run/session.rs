//! A live run of a `RunSpec`: open the kernel's facts, compile the mode's
//! rules, attach the probes, then read the ring buffer into the pipeline
//! until Ctrl-C/SIGTERM, `--count` or `--diag`'s first error, and finish
//! with a summary on stderr. Dropping the session detaches everything.

use super::attach::{self as run_attach, bench_floor, direct_loads, load_with_fallback};
use super::error::{ExitCode, Fatal};
use super::kernel::{open_kernel, Exits, KernelContext};
use crate::abi::{latency_mode, nt_config, rtt_mode};
use crate::catalogue::table::{RetKind, PROBES};
use crate::events::Event;
use crate::kernel::btf::DropReasons;
use crate::kernel::caps;
use crate::load::attach::LoadSettings;
use crate::load::plan::ProbeMode;
use crate::load::session::{AttachReport, Session};
use crate::output::lines::Formatter;
use crate::output::metrics;
use crate::output::time::Clock;
use crate::pipeline::Pipeline;
use crate::record::write::{RecordError, Recorder};
use crate::rules::compile::Rule;
use crate::rules::Loaded;
use crate::spec::{Mode, RttSpec, RunSpec};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the aggregating modes read and print the kernel's counters.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// How often `-v` reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// The rules of a `--diag` or `--monitor` run (none otherwise), compiled
/// once, before anything touches the kernel: broken rules stop the run
/// there. Overrides of built-in rules are noted on stderr. The events'
/// drop-reason numbering is bound later (`Loaded::bound_to`).
pub fn load_rules(mode: &Mode) -> Result<Option<Loaded>, Fatal> {
    let Some(source) = mode.rules() else {
        return Ok(None);
    };
    let loaded = crate::rules::load_for_run(&source.paths, source.defaults, None)
        .map_err(|e| Fatal::usage(e.to_string()))?;
    for n in loaded.override_notes() {
        log::warn!("{n}");
    }
    if matches!(mode, Mode::Diag(_)) {
        log::info!("{} diagnosis rules loaded", loaded.rules.len());
    }
    Ok(Some(loaded))
}

/// `--metrics`: the server, started before anything touches the kernel
/// (a bare port listens on 127.0.0.1).
fn serve_metrics(mode: &Mode) -> Result<Option<metrics::Shared>, Fatal> {
    let Mode::Monitor(m) = mode else {
        return Ok(None);
    };
    let Some(addr) = &m.metrics else {
        return Ok(None);
    };
    let addr = if addr.parse::<u16>().is_ok() {
        format!("127.0.0.1:{addr}")
    } else {
        addr.clone()
    };
    let shared = metrics::Shared::default();
    let bound = metrics::serve(&addr, shared.clone()).map_err(|e| Fatal::usage(e.to_string()))?;
    log::info!("metrics at http://{bound}/metrics");
    Ok(Some(shared))
}

/// Completes a decoded event with what only the live kernel can tell:
/// `--hooks` (the hook functions of the hook that dropped it) and
/// `--drop-stack` (the frames in the stack map).
fn enrich(ev: &mut Event, session: &Session, hooks: bool, drop_stack: bool) {
    if hooks {
        if let Some(probe) = crate::catalogue::table::probe_by_id(ev.probe) {
            let dropped = probe.ret == RetKind::NfHook && ev.ret.is_some_and(|r| r < 0);
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

/// `--diag`: names the firewall rule of a netfilter table's NF_DROP. A
/// namespace's ruleset is first read at its first such drop (the tools it
/// runs take a moment; a healthy namespace never pays for them), and
/// followed from then on.
fn name_firewall_rule(ev: &mut Event, rulesets: &mut crate::firewall::Rulesets) {
    let Some(probe) = crate::catalogue::table::probe_by_id(ev.probe) else {
        return;
    };
    // NF_DROP, also as nft's NF_DROP_REASON (an errno above the verdict).
    let dropped = ev
        .ret
        .is_some_and(|r| crate::catalogue::retnames::effective(probe.ret, r) == 0);
    if !(probe.runs_a_ruleset() && dropped) {
        return;
    }
    use crate::firewall::TableKind;
    let kind = if probe.signatures.iter().any(|s| s.nf.nft_chain.is_some()) {
        TableKind::Nft
    } else if probe.signatures.iter().any(|s| s.nf.ebt_table.is_some()) {
        TableKind::Ebtables
    } else {
        TableKind::Xtables
    };
    let rule = rulesets.attribute(ev, kind);
    // An event without netfilter facts (nft_do_chain before 5.11: its
    // argument types have no BTF) still carries why no rule is named.
    if let Some(rule) = rule {
        ev.nf.get_or_insert_with(Default::default).rule = Some(Box::new(rule));
    }
}

/// The event ring's size. Its pages count twice in the process's memory.
/// One event per dropped packet (`--drop`, `--monitor`) takes 1 MiB: user
/// space is woken whenever 64 KiB are pending, so that is sixteen wake-ups
/// of slack (some 5000 events); every packet event (lifecycle, diagnosis)
/// or captured bytes take 4 MiB. A full ring loses events, which are
/// counted and reported.
fn ring_bytes(spec: &RunSpec) -> u32 {
    let sparse = matches!(spec.mode, Mode::Drop { .. } | Mode::Monitor(_));
    if sparse && spec.snaplen == 0 {
        1 << 20
    } else {
        4 << 20
    }
}

/// What attaching left: the session, its report, and the rules the
/// pipeline evaluates.
struct Attached {
    session: Session,
    report: AttachReport,
    rules: Vec<Rule>,
    /// The attach summary, `fentry: 3, tp_btf: 2`.
    by_mechanism: String,
}

/// Compiles the mode's rules, chooses the probes, and loads and attaches
/// them.
fn attach(
    spec: &RunSpec,
    loaded: Option<&Loaded>,
    kernel: &mut KernelContext,
) -> Result<Attached, Fatal> {
    let reasons = kernel.btf.drop_reasons();
    let mut rules = loaded.map_or_else(Vec::new, |l| l.bound_to(&reasons));
    let mut monitor_probes = Vec::new();
    let mut quiet_returns = Vec::new();
    if matches!(spec.mode, Mode::Monitor(_)) {
        let (kept, probes) = crate::rules::monitor::plan(&rules);
        log::info!(
            "monitor mode runs {} of {} rules, on {} probes",
            kept.len(),
            rules.len(),
            probes.len()
        );
        quiet_returns = crate::rules::monitor::quiet_returns(&kept, &probes);
        (rules, monitor_probes) = (kept, probes);
    }
    let selection = run_attach::select(&spec.mode, &spec.probes, &monitor_probes);
    let lifecycle = spec.mode.lifecycle();
    let settings = LoadSettings {
        filter: spec.filter,
        config: nt_config {
            track: u8::from(lifecycle),
            // --pcap names each packet's interface and namespace.
            detail: u8::from(spec.view.detail || spec.snaplen > 0),
            snaplen: spec.snaplen,
            drop_stack: u8::from(spec.mode.drop_stack()),
            hooks: u8::from(spec.mode.hooks()),
            bench_floor: u8::from(bench_floor()),
            latency: match spec.mode {
                Mode::Latency(l) if l.summary => latency_mode::HISTOGRAM,
                Mode::Latency(_) => latency_mode::SPANS,
                _ => latency_mode::OFF,
            },
            latency_free: u8::from(matches!(spec.mode, Mode::Latency(l) if l.free)),
            func_stats: u8::from(spec.mode == Mode::FuncStats),
            noclone: u8::from(spec.probes.trace.noclone),
            matcher: u8::from(!spec.probes.trace.matcher.is_empty()),
            min_latency_ns: match spec.mode {
                Mode::Latency(l) => l.min_ns,
                _ => 0,
            },
            rtt: match spec.mode {
                Mode::Rtt(r) if r.detail => rtt_mode::DETAIL,
                Mode::Rtt(_) => rtt_mode::HISTOGRAM,
                _ => rtt_mode::OFF,
            },
            sock: u8::from(matches!(
                spec.mode,
                Mode::Sock | Mode::Rtt(RttSpec { detail: true, .. })
            )),
            min_srtt_us: match spec.mode {
                Mode::Rtt(r) => r.min_srtt_us,
                _ => 0,
            },
            min_minrtt_us: match spec.mode {
                Mode::Rtt(r) => r.min_minrtt_us,
                _ => 0,
            },
            debug: u8::from(spec.bpf_debug),
            wake_bytes: 64 * 1024,
            rate_limit: spec.rate_kernel,
            // Padding the skeleton names.
            ..Default::default()
        },
        btf_path: spec.probes.btf.clone(),
        kprobe_multi: kernel.kprobe_multi(),
        attach_cookie: kernel
            .btf
            .enum_members("bpf_func_id")
            .iter()
            .any(|(name, _)| name == "BPF_FUNC_get_attach_cookie"),
        direct_loads: direct_loads(&kernel.btf),
        ring_bytes: ring_bytes(spec),
        quiet_returns,
        probe_flags: run_attach::probe_flags(&spec.probes.trace),
    };
    let exits = Exits {
        all: spec.view.ret,
        lifecycle,
        tested: crate::rules::compile::ret_tested_probes(&rules),
    };
    let started = Instant::now();
    // After the capability probes, whose refusals are answers, not news.
    crate::load::VERIFIER_LOGS.store(spec.bpf_debug, std::sync::atomic::Ordering::Relaxed);
    let session = load_with_fallback(kernel, &spec.probes, &selection, &settings, &exits)?;
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
    for line in run_attach::skip_summary(&report.skipped) {
        log::warn!("{line}");
    }
    if report.attached.is_empty() {
        return Err(Fatal::new(
            ExitCode::KernelLacks,
            if matches!(spec.mode, Mode::Rtt(_)) {
                "--rtt needs tcp_ack_update_rtt, a kernel function, and this kernel lets nettrace attach neither kprobes nor fentry there (see the reason above; `nettrace --check` reports what is available)"
            } else {
                "no probe could be attached on this kernel (see the reasons above; `nettrace --check` reports what is available)"
            },
        ));
    }
    let by_mechanism = report
        .count_by_mechanism()
        .iter()
        .map(|(m, n)| format!("{m}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    log::info!(
        "{} probes attached ({by_mechanism}) in {:.2}s",
        report.attached.len(),
        started.elapsed().as_secs_f64()
    );
    if matches!(spec.mode, Mode::Drop { .. }) && reasons.is_empty() {
        log::warn!("this kernel has no drop reasons (before 5.17): lines carry no `reason:`");
    }
    Ok(Attached {
        session,
        report,
        rules,
        by_mechanism,
    })
}

/// What the event loop counted, for the summary.
struct Counts {
    printed: u64,
    received: u64,
    incomplete: u64,
    suppressed: Vec<(String, u64)>,
    undecodable: u64,
    /// `--pcap`: packets written, or why the file is incomplete.
    pcap: Option<std::io::Result<u64>>,
    /// `--pcap`: bytes records whose event never came.
    unpaired_bytes: u64,
}

/// Runs `spec` on the live kernel, with the mode's rules (`load_rules`).
pub fn run(spec: &RunSpec, loaded: Option<&Loaded>) -> Result<(), Fatal> {
    let metrics = serve_metrics(&spec.mode)?;
    let fentry_asked = spec.probes.probe_mode == ProbeMode::Fentry;
    let mut kernel = open_kernel(
        spec.probes.btf.as_deref(),
        caps::Wanted::for_run(fentry_asked),
    )?;
    let attached = attach(spec, loaded, &mut kernel)?;
    let reasons = kernel.btf.drop_reasons();
    kernel.release_planning_state();
    if let Some(m) = &metrics {
        if let Ok(mut mx) = m.lock() {
            mx.probes_attached = attached.report.attached.len() as u64;
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Fatal::new(ExitCode::Runtime, format!("cannot handle signals: {e}")))?;
    }
    // One realtime offset for --date and the recording, so that a replay
    // prints the same times.
    let realtime_offset = Clock::new(true).offset_ns().unwrap_or(0);
    let fmt = Formatter {
        clock: if spec.view.date {
            Clock::local(realtime_offset)
        } else {
            Clock::monotonic()
        },
        reasons: &reasons,
        kallsyms: kernel.kallsyms(),
        detail: spec.view.detail,
        show_ret: spec.view.ret,
        latency_show: spec.view.latency_show,
        tiny: spec.view.tiny,
        color: spec.view.color,
    };
    let recorder = match &spec.record {
        Some(path) => Some(
            Recorder::create(path, &record_header(&kernel, &reasons, realtime_offset))
                .map_err(|e| Fatal::usage(e.to_string()))?,
        ),
        None => None,
    };
    let Attached {
        session,
        report,
        rules,
        by_mechanism,
    } = attached;
    let mut pipeline = Pipeline::stdout(fmt, &spec.mode, &spec.view, rules, metrics.clone());
    if let Some(path) = &spec.pcap {
        pipeline = pipeline.with_pcap(open_pcap(path, realtime_offset, spec.snaplen)?);
    }
    let relay = if spec.bpf_debug {
        Some(crate::run::bpf_debug::start().map_err(|e| Fatal::new(ExitCode::Runtime, e))?)
    } else {
        None
    };
    let (counts, recorded) =
        read_events(spec, &kernel, &session, pipeline, recorder, metrics, &stop)?;
    if let Some(relay) = relay {
        eprintln!("bpf-debug: {} lines from the BPF programs", relay.finish());
    }

    let lost = session.lost_events();
    let rate_limited = session.rate_limited_events();
    let unended = session.unended_spans();
    let non_ip = session.non_ip_skbs();
    let still_open = if matches!(spec.mode, Mode::Latency(_)) {
        session.open_spans(1 << 17)
    } else {
        0
    };
    if let Some(misses) = session.multi_cookie_misses() {
        log::debug!("kprobe.multi cookie table misses (answered by the kernel's search): {misses}");
    }
    let detach_start = Instant::now();
    let links = session.links();
    drop(session);
    eprintln!("end trace...");
    eprintln!(
        "summary: {} {} printed from {} events{}, {lost} lost, {} probes attached ({by_mechanism}; {links} links), detached in {:.0} ms",
        counts.printed,
        spec.mode.unit(),
        counts.received,
        if spec.mode.contexts() {
            format!(" ({} expired incomplete)", counts.incomplete)
        } else {
            String::new()
        },
        report.attached.len(),
        detach_start.elapsed().as_secs_f64() * 1000.0
    );
    warn_losses(lost, rate_limited, &counts);
    if !non_ip.is_empty() {
        let total: u64 = non_ip.iter().map(|(_, n)| n).sum();
        let by_family: Vec<String> = non_ip
            .iter()
            .map(|(af, n)| format!("{} {n}", crate::vocab::family::name(*af)))
            .collect();
        eprintln!(
            "left out: {total} skbs of non-IP sockets ({}); --non-ip shows them",
            by_family.join(", ")
        );
    }
    if matches!(spec.mode, Mode::Latency(_)) && unended + still_open > 0 {
        log::warn!(
            "{} packets have no span: {unended} had an skb come back for another packet before any probe saw it freed (its free path has no probe on this kernel), {still_open} were not seen freed by the end of the run",
            unended + still_open
        );
    }
    if counts.unpaired_bytes > 0 {
        log::debug!(
            "--pcap: {} captures whose event never came (lost, or dropped at the function's exit)",
            counts.unpaired_bytes
        );
    }
    pcap_outcome(spec.pcap.as_deref(), counts.pcap)?;
    match recorded {
        Some(Err(e)) => Err(Fatal::new(ExitCode::Runtime, e.to_string())),
        Some(Ok(())) => {
            if let Some(p) = &spec.record {
                log::info!("recording written to {}", p.display());
            }
            Ok(())
        }
        None => Ok(()),
    }
}

/// The event loop: ring buffer → enrich → recorder and pipeline, with the
/// pipeline's clock ticks, `-v` progress and the metrics' loss counters.
fn read_events(
    spec: &RunSpec,
    kernel: &KernelContext,
    session: &Session,
    pipeline: Pipeline<'_>,
    recorder: Option<Recorder>,
    metrics: Option<metrics::Shared>,
    stop: &AtomicBool,
) -> Result<(Counts, Option<Result<(), RecordError>>), Fatal> {
    let hooks = spec.mode.hooks();
    let stacks = spec.mode.drop_stack() || !spec.probes.trace.stack.is_empty();
    let pipeline = RefCell::new(pipeline);
    let recorder = RefCell::new(recorder);
    let undecodable = Cell::new(0u64);
    let pairing = RefCell::new(crate::events::bytes::Pairing::new());
    let firewall = matches!(spec.mode, Mode::Diag(_))
        .then(|| RefCell::new(crate::firewall::Rulesets::default()));
    let attached_ids: Vec<u32> = session.report.attached.iter().map(|(id, _)| *id).collect();
    let mut last_snapshot = Instant::now();
    let take_snapshot = |now: u64| {
        if let Some(snap) = super::counters::read(session, &spec.mode, &attached_ids, now) {
            if let Some(r) = recorder.borrow_mut().as_mut() {
                r.snapshot(&snap);
            }
            pipeline.borrow_mut().snapshot(snap);
        }
    };
    let events = session
        .map("events")
        .ok_or_else(|| Fatal::new(ExitCode::Runtime, "the BPF object has no events map"))?;
    let mut builder = libbpf_rs::RingBufferBuilder::new();
    builder
        .add(&events, |data: &[u8]| {
            let mut p = pipeline.borrow_mut();
            if p.finished() {
                return 1;
            }
            if crate::events::bytes::is_bytes_record(data) {
                match crate::events::bytes::decode(data) {
                    Some(r) => pairing.borrow_mut().push(r),
                    None => undecodable.set(undecodable.get() + 1),
                }
                return 0;
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
            if spec.snaplen > 0 {
                ev.bytes = pairing.borrow_mut().take(ev.ts, ev.skb).map(Box::new);
            }
            enrich(&mut ev, session, hooks, stacks);
            if let Some(fw) = &firewall {
                name_firewall_rule(&mut ev, &mut fw.borrow_mut());
            }
            if let Some(r) = recorder.borrow_mut().as_mut() {
                r.event(&ev, kernel.kallsyms());
            }
            p.event(ev);
            0
        })
        .map_err(ring_error)?;
    let ring = builder.build().map_err(ring_error)?;

    eprintln!("begin trace...");
    take_snapshot(crate::output::time::monotonic_now());
    let mut last_report = Instant::now();
    let mut lost_reported = 0;
    let lost_seen = Cell::new(0);
    let note_losses = |now: u64| {
        let lost = session.lost_events();
        if lost > lost_seen.get() {
            lost_seen.set(lost);
            if let Some(r) = recorder.borrow_mut().as_mut() {
                r.lost(now, lost);
            }
            pipeline.borrow_mut().events_lost(now);
        }
    };
    loop {
        // Events are queued without wake-ups until a threshold; the short
        // poll timeout bounds latency, consume() drains what is queued.
        let _ = ring.poll(Duration::from_millis(100));
        let _ = ring.consume();
        {
            let now = crate::output::time::monotonic_now();
            // Read once the ring is drained, and before the tick prints
            // packets: those traced while events were lost are marked.
            note_losses(now);
            if let Some(r) = recorder.borrow_mut().as_mut() {
                r.tick(now);
            }
            if let Some(fw) = &firewall {
                fw.borrow_mut().poll();
            }
            if last_snapshot.elapsed() >= SNAPSHOT_EVERY {
                take_snapshot(now);
                last_snapshot = Instant::now();
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
        if spec.progress && last_report.elapsed() >= PROGRESS_EVERY {
            let lost = session.lost_events();
            let p = pipeline.borrow();
            log::info!(
                "progress: {} events received, {} printed, {} open contexts, {lost} lost",
                p.events,
                p.printed,
                p.open_contexts()
            );
            if lost > lost_reported {
                log::warn!("{lost} events lost so far (ring buffer full)");
                lost_reported = lost;
            }
            last_report = Instant::now();
        }
    }
    // What the kernel queued before the stop is part of the run: without
    // this, a packet whose last events were still in the ring would end
    // cut short.
    let _ = ring.consume();
    note_losses(crate::output::time::monotonic_now());
    drop(ring);
    take_snapshot(crate::output::time::monotonic_now());
    let mut p = pipeline.into_inner();
    p.finish();
    let counts = Counts {
        printed: p.printed,
        received: p.events,
        incomplete: p.expired(),
        suppressed: p.suppressed(),
        undecodable: undecodable.get(),
        pcap: p.pcap_result.take(),
        unpaired_bytes: pairing.borrow().unpaired,
    };
    let recorded = recorder.into_inner().map(|r| {
        r.finish(&crate::record::End {
            events: counts.received,
            lost: session.lost_events(),
        })
    });
    Ok((counts, recorded))
}

/// The `--pcap` file, started (its section header written).
pub fn open_pcap(
    path: &std::path::Path,
    realtime_offset_ns: i128,
    snaplen: u32,
) -> Result<crate::output::pcap::PcapWriter<Box<dyn std::io::Write>>, Fatal> {
    let cannot = |e: std::io::Error| {
        Fatal::usage(format!(
            "cannot write --pcap {}: {e}; give a file in a writable directory",
            path.display()
        ))
    };
    let file = std::fs::File::create(path).map_err(cannot)?;
    let out: Box<dyn std::io::Write> = Box::new(std::io::BufWriter::new(file));
    crate::output::pcap::PcapWriter::new(out, realtime_offset_ns, snaplen).map_err(cannot)
}

/// Reports how the `--pcap` file ended; Err when writing it failed.
pub fn pcap_outcome(
    path: Option<&std::path::Path>,
    result: Option<std::io::Result<u64>>,
) -> Result<(), Fatal> {
    match (path, result) {
        (Some(p), Some(Ok(n))) => {
            eprintln!("pcap: {n} packets written to {}", p.display());
            Ok(())
        }
        (Some(p), Some(Err(e))) => Err(Fatal::new(
            ExitCode::Runtime,
            format!("writing --pcap {} failed: {e}", p.display()),
        )),
        _ => Ok(()),
    }
}

fn ring_error(e: libbpf_rs::Error) -> Fatal {
    Fatal::new(
        ExitCode::Runtime,
        format!("cannot read the ring buffer: {e}"),
    )
}

/// Losses of every kind, one warning each: never silent.
fn warn_losses(lost: u64, rate_limited: u64, counts: &Counts) {
    if lost > 0 {
        log::warn!("{lost} events were lost because the ring buffer was full");
    }
    if rate_limited > 0 {
        log::warn!("{rate_limited} events were not sent by the kernel (--rate-kernel)");
    }
    if !counts.suppressed.is_empty() {
        let total: u64 = counts.suppressed.iter().map(|(_, n)| n).sum();
        let by: Vec<String> = counts
            .suppressed
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        log::warn!(
            "{total} findings suppressed by the rate limits ({})",
            by.join(", ")
        );
    }
    if counts.undecodable > 0 {
        log::warn!(
            "{} events could not be decoded and were skipped",
            counts.undecodable
        );
    }
}

fn record_header(
    kernel: &KernelContext,
    reasons: &DropReasons,
    realtime_offset_ns: i128,
) -> crate::record::Header {
    crate::record::Header {
        nettrace: env!("CARGO_PKG_VERSION").to_string(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        kernel: kernel.caps.release.clone(),
        command: std::env::args().collect(),
        probes: PROBES.iter().map(|p| p.name.to_string()).collect(),
        drop_reasons: reasons.pairs(),
        rst_reasons: reasons.rst_pairs(),
        realtime_offset_ns: realtime_offset_ns as i64,
    }
}
