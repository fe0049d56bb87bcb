//! Flags to a validated `RunSpec`: the one place where the mode is chosen
//! and every flag is checked against it. A flag the chosen mode does not
//! take is refused with exit 2 and a line that names it, never ignored.

use super::args::{Args, FilterFlags, ViewFlags};
use crate::catalogue::table::ProbeDef;
use crate::run::error::Fatal;
use crate::spec::{
    DiagSpec, LatencySpec, Mode, MonitorSpec, ProbeSpec, RttSpec, RuleSource, RunSpec,
    TraceControls, ViewSpec,
};
use std::path::{Path, PathBuf};

/// Flags that choose a mode, as spelled on the command line.
const MODE_FLAGS: [&str; 10] = [
    "--diag",
    "--drop",
    "--basic",
    "--monitor",
    "--latency",
    "--latency-summary",
    "--func-stats",
    "--rtt",
    "--rtt-detail",
    "--sock",
];

/// What `--rtt` and `--rtt-detail` attach: the function where the kernel
/// updates its RTT estimate.
const RTT_PROBES: &str = "tcp_ack_update_rtt";
/// What `--sock` attaches without `-t`: the socket groups, the state
/// change tracepoint that is off by default elsewhere, the zero-window
/// probe timer and the resets a socket sends and receives.
const SOCK_PROBES: &str = "tcp-state,tcp-congestion,tcp-retrans,inet_sock_set_state,\
tcp_probe_timer,tcp_send_probe0,tcp_send_reset,tcp_receive_reset";

/// The default `--rate-per-rule` and `--rate-total` (docs/monitor.md).
pub const DEFAULT_RATE_PER_RULE: u32 = 10;
pub const DEFAULT_RATE_TOTAL: u32 = 100;

/// Flags only a live run has: `--hooks`, `--metrics` (absent in replays).
#[derive(Debug, Default, Clone)]
pub struct LiveOnly {
    pub hooks: bool,
    pub metrics: Option<String>,
    pub latency_free: bool,
}

/// The mode the view flags choose, with its options; refuses flags that
/// belong to another mode and combinations of modes.
pub fn mode(view: &ViewFlags, live: &LiveOnly) -> Result<Mode, Fatal> {
    let chosen: Vec<&str> = MODE_FLAGS
        .iter()
        .zip([
            view.diag,
            view.drop,
            view.basic,
            view.monitor,
            view.latency,
            view.latency_summary,
            view.func_stats,
            view.rtt,
            view.rtt_detail,
            view.sock,
        ])
        .filter(|(_, on)| *on)
        .map(|(f, _)| *f)
        .collect();
    if let [a, b, ..] = chosen[..] {
        return Err(Fatal::usage(format!(
            "{a} and {b} are different modes; pick one (see --help, \"Modes\")"
        )));
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    if !view.no_site_rules {
        paths.extend(site_rules(Path::new(SITE_RULES_DIR)));
    }
    paths.extend(view.rules.iter().cloned());
    let rules = RuleSource {
        paths,
        defaults: !view.no_default_rules,
    };
    let rules_given = !view.rules.is_empty() || view.no_default_rules;
    let mode = match chosen.first().copied() {
        Some("--diag") => Mode::Diag(DiagSpec {
            rules,
            quiet: view.diag_quiet,
            keep: view.diag_keep,
            hooks: live.hooks,
        }),
        Some("--monitor") => Mode::Monitor(MonitorSpec {
            rules,
            rate_per_rule: view.rate_per_rule.unwrap_or(DEFAULT_RATE_PER_RULE),
            rate_total: view.rate_total.unwrap_or(DEFAULT_RATE_TOTAL),
            journal: view.journal,
            metrics: live.metrics.clone(),
        }),
        Some("--drop") => Mode::Drop {
            stack: view.drop_stack,
        },
        Some(flag @ ("--latency" | "--latency-summary")) => Mode::Latency(LatencySpec {
            summary: flag == "--latency-summary",
            min_ns: view.min_latency.unwrap_or(0).saturating_mul(1000),
            free: live.latency_free,
        }),
        Some("--func-stats") => Mode::FuncStats,
        Some(flag @ ("--rtt" | "--rtt-detail")) => Mode::Rtt(RttSpec {
            detail: flag == "--rtt-detail",
            min_srtt_us: view.filter_srtt.unwrap_or(0).saturating_mul(1000),
            min_minrtt_us: view.filter_minrtt.unwrap_or(0).saturating_mul(1000),
        }),
        Some("--sock") => Mode::Sock,
        Some(_) => Mode::Basic,
        None => Mode::Lifecycle,
    };
    let spans = matches!(mode, Mode::Latency(LatencySpec { summary: false, .. }));
    // Each flag that goes with one mode only: (given, flag, its mode).
    let rtt = matches!(mode, Mode::Rtt(_));
    let bound: [(bool, &str, bool); 15] = [
        (view.filter_srtt.is_some(), "--filter-srtt", rtt),
        (view.filter_minrtt.is_some(), "--filter-minrtt", rtt),
        (view.min_latency.is_some(), "--min-latency", spans),
        (
            live.latency_free,
            "--latency-free",
            matches!(mode, Mode::Latency(_)),
        ),
        (view.latency_show, "--latency-show", mode.contexts()),
        (view.tiny_show, "--tiny-show", mode.contexts()),
        (
            view.drop_stack,
            "--drop-stack",
            matches!(mode, Mode::Drop { .. }),
        ),
        (
            view.diag_quiet,
            "--diag-quiet",
            matches!(mode, Mode::Diag(_)),
        ),
        (view.diag_keep, "--diag-keep", matches!(mode, Mode::Diag(_))),
        (live.hooks, "--hooks", matches!(mode, Mode::Diag(_))),
        (view.journal, "--journal", matches!(mode, Mode::Monitor(_))),
        (
            view.rate_per_rule.is_some(),
            "--rate-per-rule",
            matches!(mode, Mode::Monitor(_)),
        ),
        (
            view.rate_total.is_some(),
            "--rate-total",
            matches!(mode, Mode::Monitor(_)),
        ),
        (
            live.metrics.is_some(),
            "--metrics",
            matches!(mode, Mode::Monitor(_)),
        ),
        (
            rules_given,
            "--rules/--no-default-rules",
            mode.rules().is_some(),
        ),
    ];
    if let Some((_, flag, _)) = bound.iter().find(|(given, _, fits)| *given && !fits) {
        let owner = match *flag {
            "--drop-stack" => "--drop",
            "--diag-quiet" | "--diag-keep" | "--hooks" => "--diag",
            "--rules/--no-default-rules" => "--diag or --monitor",
            "--min-latency" => "--latency",
            "--filter-srtt" | "--filter-minrtt" => "--rtt or --rtt-detail",
            "--latency-free" => "--latency or --latency-summary",
            "--latency-show" | "--tiny-show" => {
                "the modes that print packets (the default and --diag)"
            }
            _ => "--monitor",
        };
        return Err(Fatal::usage(format!("{flag} goes with {owner}")));
    }
    if view.ret && matches!(mode, Mode::Drop { .. } | Mode::Monitor(_)) {
        return Err(Fatal::usage(format!(
            "--ret applies to tracing modes; {} chooses its own probes",
            if mode.rules().is_some() {
                "--monitor"
            } else {
                "--drop"
            }
        )));
    }
    if view.ret && matches!(mode, Mode::Latency(_) | Mode::FuncStats | Mode::Rtt(_)) {
        return Err(Fatal::usage(
            "--ret applies to modes that print probe hits; latency, RTT and function statistics print none",
        ));
    }
    if view.detail && mode.aggregates() {
        return Err(Fatal::usage(
            "--detail applies to modes that print packets; --latency-summary, --rtt and --func-stats print counts",
        ));
    }
    Ok(mode)
}

/// How events are printed.
pub fn view(view: &ViewFlags) -> ViewSpec {
    ViewSpec {
        detail: view.detail,
        date: view.date,
        ret: view.ret,
        count: view.count,
        latency_show: view.latency_show,
        tiny: view.tiny_show,
        color: view.color.enabled(view.output),
        format: view.output,
    }
}

/// The packet filter, checked.
pub fn filter(filters: &FilterFlags) -> Result<crate::abi::nt_filter, Fatal> {
    filters.to_filter().map_err(|e| Fatal::usage(e.to_string()))
}

/// Resolves a `--trace-*` list of probe names (and groups).
fn named(list: Option<&str>, flag: &str) -> Result<Vec<&'static ProbeDef>, Fatal> {
    match list {
        None => Ok(Vec::new()),
        Some(l) => crate::load::select::named(l, flag).map_err(Fatal::usage),
    }
}

/// The `--trace-*` controls, checked against the mode.
fn trace_controls(args: &Args, mode: &Mode) -> Result<TraceControls, Fatal> {
    let given = |v: &Option<String>| v.is_some();
    // (given, flag, the mode takes it, which modes do)
    let checks = [
        (
            given(&args.trace_matcher),
            "--trace-matcher",
            mode.lifecycle(),
            "the modes that follow packets (the default, --diag, --latency)",
        ),
        (
            args.trace_noclone,
            "--trace-noclone",
            mode.lifecycle(),
            "the modes that follow packets (the default, --diag, --latency)",
        ),
        (
            given(&args.trace_stack),
            "--trace-stack",
            matches!(mode, Mode::Lifecycle | Mode::Diag(_) | Mode::Basic),
            "the modes that print events (the default, --diag, --basic)",
        ),
        (
            given(&args.trace_free),
            "--trace-free",
            matches!(mode, Mode::Latency(_)),
            "--latency or --latency-summary",
        ),
        (
            given(&args.trace_exclude),
            "--trace-exclude",
            !matches!(mode, Mode::Drop { .. } | Mode::Monitor(_)),
            "the modes that take -t",
        ),
    ];
    if let Some((_, flag, _, owner)) = checks.iter().find(|(g, _, fits, _)| *g && !fits) {
        return Err(Fatal::usage(format!("{flag} goes with {owner}")));
    }
    Ok(TraceControls {
        matcher: named(args.trace_matcher.as_deref(), "--trace-matcher")?,
        stack: named(args.trace_stack.as_deref(), "--trace-stack")?,
        end: named(args.trace_free.as_deref(), "--trace-free")?,
        exclude: named(args.trace_exclude.as_deref(), "--trace-exclude")?,
        noclone: args.trace_noclone,
    })
}

/// `-t all` with no filter sends every packet of every layer through
/// user space: asked for with `--force`, refused without it.
fn check_force(args: &Args, mode: &Mode, filter: &crate::abi::nt_filter) -> Result<(), Fatal> {
    let all = args
        .trace
        .as_deref()
        .is_some_and(|t| t.split(',').any(|x| x.trim() == "all"));
    let sends_events = matches!(
        mode,
        Mode::Lifecycle
            | Mode::Diag(_)
            | Mode::Basic
            | Mode::Latency(LatencySpec { summary: false, .. })
    );
    let narrowed = filter.flags & crate::abi::filter_flags::NARROWING != 0;
    if all && sends_events && !narrowed && !args.force {
        return Err(Fatal::usage(
            "-t all without a filter traces every packet through every probe, which can slow the host and flood the output; add a filter (-s/-d/-p/-P...) or --force",
        ));
    }
    Ok(())
}

/// The probe choice of a live run; `-t` is refused where the mode picks
/// the probes itself.
pub fn probes(args: &Args, mode: &Mode) -> Result<ProbeSpec, Fatal> {
    if args.trace.is_some() {
        match mode {
            Mode::Drop { .. } => {
                return Err(Fatal::usage(
                    "--drop watches the kfree_skb tracepoint only; -t applies to tracing modes",
                ))
            }
            Mode::Monitor(_) => {
                return Err(Fatal::usage(
                    "--monitor attaches the probes its rules need; -t applies to tracing modes",
                ))
            }
            Mode::Rtt(_) => return Err(Fatal::usage(
                "--rtt and --rtt-detail watch tcp_ack_update_rtt only; -t applies to tracing modes",
            )),
            _ => {}
        }
    }
    let trace = trace_controls(args, mode)?;
    let list = match mode {
        Mode::Rtt(_) => Some(RTT_PROBES),
        Mode::Sock if args.trace.is_none() => Some(SOCK_PROBES),
        _ => args.trace.as_deref(),
    };
    let mut selection = crate::load::select::select(list).map_err(Fatal::usage)?;
    selection.retain(|p| !trace.exclude.iter().any(|x| x.id == p.id));
    // A probe given a role is attached, whatever -t chose.
    for p in trace.matcher.iter().chain(&trace.stack).chain(&trace.end) {
        if !selection.iter().any(|s| s.id == p.id) {
            selection.push(p);
        }
    }
    selection.sort_by_key(|p| p.id);
    if selection.is_empty() {
        return Err(Fatal::usage(
            "no probe is left to attach (--trace-exclude removed every probe -t chose)",
        ));
    }
    Ok(ProbeSpec {
        selection,
        trace,
        probe_mode: args.probe_mode,
        tp_mode: args.tp_mode,
        btf: args.btf.clone(),
    })
}

/// The probe choice of `--check` and `--list`, which attach nothing.
pub fn probes_to_report(args: &Args) -> ProbeSpec {
    ProbeSpec {
        selection: Vec::new(),
        trace: TraceControls::default(),
        probe_mode: args.probe_mode,
        tp_mode: args.tp_mode,
        btf: args.btf.clone(),
    }
}

/// A live run.
pub fn live(args: &Args) -> Result<RunSpec, Fatal> {
    let filter = filter(&args.filters)?;
    let mode = mode(
        &args.view,
        &LiveOnly {
            hooks: args.hooks,
            metrics: args.metrics.clone(),
            latency_free: args.latency_free,
        },
    )?;
    check_force(args, &mode, &filter)?;
    let probes = probes(args, &mode)?;
    if args.record_bytes && args.record.is_none() {
        return Err(Fatal::usage(
            "--record-bytes puts the packets' bytes into a recording: give --record FILE",
        ));
    }
    let snaplen = snaplen(&args.view, &mode, args.record_bytes)?;
    Ok(RunSpec {
        mode,
        filter,
        view: view(&args.view),
        probes,
        record: args.record.clone(),
        pcap: args.view.pcap.clone(),
        snaplen,
        rate_kernel: args.rate_kernel,
        progress: args.verbose,
        bpf_debug: args.bpf_debug,
    })
}

/// A replay: the same view flags and filters; probes do not apply.
pub fn replay(args: &super::args::ReplayArgs) -> Result<RunSpec, Fatal> {
    let filter = filter(&args.filters)?;
    let mode = mode(&args.view, &LiveOnly::default())?;
    let snaplen = snaplen(&args.view, &mode, false)?;
    if matches!(mode, Mode::Rtt(RttSpec { detail: false, min_srtt_us, min_minrtt_us }) if min_srtt_us > 0 || min_minrtt_us > 0)
    {
        return Err(Fatal::usage(
            "--filter-srtt and --filter-minrtt shape an --rtt histogram in the kernel; a replay cannot take updates out of a recorded histogram (--rtt-detail recordings can be filtered)",
        ));
    }
    Ok(RunSpec {
        mode,
        filter,
        view: view(&args.view),
        probes: ProbeSpec {
            selection: Vec::new(),
            trace: TraceControls::default(),
            probe_mode: Default::default(),
            tp_mode: Default::default(),
            btf: None,
        },
        pcap: args.view.pcap.clone(),
        snaplen,
        record: None,
        rate_kernel: 0,
        progress: false,
        bpf_debug: false,
    })
}

/// Bytes captured per packet: `--snaplen` (default 256) when `--pcap` or
/// `--record-bytes` asks for bytes, in a mode that prints packets.
fn snaplen(view: &ViewFlags, mode: &Mode, record_bytes: bool) -> Result<u32, Fatal> {
    let wanted = view.pcap.is_some() || record_bytes;
    if !wanted {
        return match view.snaplen {
            Some(_) => Err(Fatal::usage(
                "--snaplen sets how many bytes --pcap captures: give --pcap FILE (or --record FILE --record-bytes)",
            )),
            None => Ok(0),
        };
    }
    if !matches!(
        mode,
        Mode::Lifecycle | Mode::Diag(_) | Mode::Drop { .. } | Mode::Basic | Mode::Monitor(_)
    ) {
        return Err(Fatal::usage(format!(
            "--pcap and --record-bytes capture packets in the lifecycle, --diag, --drop, --basic and --monitor modes, not with {}",
            mode.flag()
        )));
    }
    let max = crate::abi::SNAP_MAX;
    match view.snaplen.unwrap_or(DEFAULT_SNAPLEN) {
        n @ 1.. if n <= max => Ok(n),
        n => Err(Fatal::usage(format!(
            "--snaplen {n}: give 1 to {max} bytes"
        ))),
    }
}

/// `--snaplen` when not given.
pub const DEFAULT_SNAPLEN: u32 = 256;

/// Where packages install site rules; read after the built-in pack and
/// before `--rules`, by every run that evaluates rules, when it exists.
pub const SITE_RULES_DIR: &str = "/etc/nettrace/rules.d";

/// The site rule directory if it exists (a missing one is the normal case on
/// a host without a package installed, not an error).
fn site_rules(dir: &Path) -> Option<PathBuf> {
    dir.is_dir().then(|| dir.to_path_buf())
}
