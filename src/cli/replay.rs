//! `nettrace replay FILE`: a recording through the same output pipeline
//! as a live run, with the recording's kernel facts (drop-reason names,
//! symbols, clock offset), without root or BPF. Filters apply as in the
//! kernel: a packet is kept when its first event matches, and its later
//! events (clones too) follow it.

use super::args::ReplayArgs;
use super::exit::{ExitCode, Fatal};
use crate::abi::nt_filter;
use crate::events::{flags, Event};
use crate::output::lines::Formatter;
use crate::output::pipeline::{DiagMode, Mode};
use crate::output::time::Clock;
use crate::record::read::{Input, Recording};
use rustc_hash::FxHashSet as HashSet;

/// The kernel's tracked-skb map, replayed: which skbs passed the filter.
struct Admission {
    filter: nt_filter,
    track: bool,
    admitted: HashSet<u64>,
}

impl Admission {
    fn admit(&mut self, ev: &Event) -> bool {
        let tracked =
            self.track && ev.flags & flags::TRACKED != 0 && self.admitted.contains(&ev.skb);
        let keep = tracked || crate::cli::filter::matches(&self.filter, ev);
        if keep && self.track {
            // As the kernel's tracked map: a freed skb leaves it, so the
            // set stays bounded on long recordings.
            if ev.flags & flags::FREE != 0 {
                self.admitted.remove(&ev.skb);
            } else {
                self.admitted.insert(ev.skb);
            }
            if let Some(child) = ev.clone {
                self.admitted.insert(child);
            }
        }
        keep
    }
}

pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let filter = args.filters.to_filter().map_err(Fatal::usage)?;
    super::check_view(&args.view, false)?;
    let rec = Recording::open(&args.file).map_err(|e| Fatal::usage(e.to_string()))?;
    log::info!(
        "recording of nettrace {} on kernel {}, made {}: {}",
        rec.header.nettrace,
        rec.header.kernel,
        rec.header.created,
        rec.header.command.join(" ")
    );
    let rules = super::view_rules(&args.view, &rec.reasons)?;
    let monitor = args.view.monitor.then(|| {
        let (kept, _) = crate::rules::monitor::plan(&rules);
        super::trace::monitor_mode(&args.view, kept, None)
    });
    let diag = args.view.diag.then_some(DiagMode {
        rules: crate::rules::eval::RuleSet::new(rules),
        quiet: args.view.diag_quiet,
        keep: args.view.diag_keep,
    });
    let fmt = Formatter {
        clock: if args.view.date {
            Clock::local(rec.header.realtime_offset_ns.into())
        } else {
            Clock::monotonic()
        },
        reasons: &rec.reasons,
        kallsyms: &rec.kallsyms,
        detail: args.view.detail,
        show_ret: args.view.ret,
    };
    let mode = super::trace::view_mode(&args.view);
    let mut pipeline = super::trace::stdout_pipeline(&args.view, fmt, diag);
    if let Some(m) = monitor {
        pipeline = pipeline.with_monitor(m);
    }
    let mut admission = Admission {
        filter,
        track: mode == Mode::Lifecycle,
        admitted: HashSet::default(),
    };
    let mut inputs = rec.inputs().map_err(|e| Fatal::usage(e.to_string()))?;
    let mut damage = None;
    for input in inputs.by_ref() {
        if pipeline.finished() {
            break;
        }
        match input {
            Ok(Input::Event(ev)) => {
                if admission.admit(&ev) {
                    pipeline.event(ev);
                }
            }
            Ok(Input::Tick(now)) => pipeline.tick(now),
            Err(e) => {
                damage = Some(e);
                break;
            }
        }
    }
    pipeline.finish();
    if inputs.unknown_probe > 0 {
        log::warn!(
            "{} events of probes this nettrace does not know were skipped",
            inputs.unknown_probe
        );
    }
    if let Some(end) = &rec.end {
        if end.lost > 0 {
            log::warn!("the live run lost {} events (ring buffer full)", end.lost);
        }
    }
    if let Some(e) = damage.or(rec.damage.clone()) {
        return Err(Fatal::new(
            ExitCode::Runtime,
            format!("{e}; everything before it was replayed"),
        )
        .into());
    }
    if rec.end.is_none() {
        log::warn!(
            "{}: the recording has no end frame: the run was killed before it finished writing",
            rec.path.display()
        );
    }
    Ok(())
}
