//! Flags to a validated `RunSpec`: the one place where the mode is chosen
//! and every flag is checked against it. A flag the chosen mode does not
//! take is refused with exit 2 and a line that names it, never ignored.

use super::args::{Args, FilterFlags, ViewFlags};
use crate::run::error::Fatal;
use crate::spec::{DiagSpec, Mode, MonitorSpec, ProbeSpec, RuleSource, RunSpec, ViewSpec};

/// Flags that choose a mode, as spelled on the command line.
const MODE_FLAGS: [&str; 4] = ["--diag", "--drop", "--basic", "--monitor"];

/// The default `--rate-per-rule` and `--rate-total` (docs/monitor.md).
pub const DEFAULT_RATE_PER_RULE: u32 = 10;
pub const DEFAULT_RATE_TOTAL: u32 = 100;

/// Flags only a live run has: `--hooks`, `--metrics` (absent in replays).
#[derive(Debug, Default, Clone)]
pub struct LiveOnly {
    pub hooks: bool,
    pub metrics: Option<String>,
}

/// The mode the view flags choose, with its options; refuses flags that
/// belong to another mode and combinations of modes.
pub fn mode(view: &ViewFlags, live: &LiveOnly) -> Result<Mode, Fatal> {
    let chosen: Vec<&str> = MODE_FLAGS
        .iter()
        .zip([view.diag, view.drop, view.basic, view.monitor])
        .filter(|(_, on)| *on)
        .map(|(f, _)| *f)
        .collect();
    if let [a, b, ..] = chosen[..] {
        return Err(Fatal::usage(format!(
            "{a} and {b} are different modes; pick one (see --help, \"Modes\")"
        )));
    }
    let rules = RuleSource {
        paths: view.rules.clone(),
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
        Some(_) => Mode::Basic,
        None => Mode::Lifecycle,
    };
    // Each flag that goes with one mode only: (given, flag, its mode).
    let bound: [(bool, &str, bool); 9] = [
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
    Ok(mode)
}

/// How events are printed.
pub fn view(view: &ViewFlags) -> ViewSpec {
    ViewSpec {
        detail: view.detail,
        date: view.date,
        ret: view.ret,
        count: view.count,
        format: view.output,
    }
}

/// The packet filter, checked.
pub fn filter(filters: &FilterFlags) -> Result<crate::abi::nt_filter, Fatal> {
    filters.to_filter().map_err(|e| Fatal::usage(e.to_string()))
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
            _ => {}
        }
    }
    Ok(ProbeSpec {
        selection: crate::load::select::select(args.trace.as_deref()).map_err(Fatal::usage)?,
        probe_mode: args.probe_mode,
        tp_mode: args.tp_mode,
        btf: args.btf.clone(),
    })
}

/// The probe choice of `--check` and `--list`, which attach nothing.
pub fn probes_to_report(args: &Args) -> ProbeSpec {
    ProbeSpec {
        selection: Vec::new(),
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
        },
    )?;
    let probes = probes(args, &mode)?;
    Ok(RunSpec {
        mode,
        filter,
        view: view(&args.view),
        probes,
        record: args.record.clone(),
        rate_kernel: args.rate_kernel,
        progress: args.verbose,
    })
}

/// A replay: the same view flags and filters; probes do not apply.
pub fn replay(args: &super::args::ReplayArgs) -> Result<RunSpec, Fatal> {
    let filter = filter(&args.filters)?;
    let mode = mode(&args.view, &LiveOnly::default())?;
    Ok(RunSpec {
        mode,
        filter,
        view: view(&args.view),
        probes: ProbeSpec {
            selection: Vec::new(),
            probe_mode: Default::default(),
            tp_mode: Default::default(),
            btf: None,
        },
        record: None,
        rate_kernel: 0,
        progress: false,
    })
}
