//! `nettrace replay FILE`: a recording through the same pipeline as a
//! live run, with the recording's kernel facts (drop-reason names, symbols,
//! clock offset), without root or BPF. The kernel's filter and tracked-skb
//! map are replayed by `pipeline::admission`.

use super::error::{ExitCode, Fatal};
use super::session::load_rules;
use crate::output::lines::Formatter;
use crate::output::time::Clock;
use crate::pipeline::admission::Admission;
use crate::pipeline::Pipeline;
use crate::record::read::{Input, Recording};
use crate::spec::{Mode, RunSpec};
use std::path::Path;

/// Replays the recording at `file` under `spec`.
pub fn run(spec: &RunSpec, file: &Path) -> Result<(), Fatal> {
    let rec = Recording::open(file).map_err(|e| Fatal::usage(e.to_string()))?;
    log::info!(
        "recording of nettrace {} on kernel {}, made {}: {}",
        rec.header.nettrace,
        rec.header.kernel,
        rec.header.created,
        rec.header.command.join(" ")
    );
    let loaded = load_rules(&spec.mode)?;
    let mut rules = loaded.map_or_else(Vec::new, |l| l.bound_to(&rec.reasons));
    if matches!(spec.mode, Mode::Monitor(_)) {
        rules = crate::rules::monitor::plan(&rules).0;
    }
    let fmt = Formatter {
        clock: if spec.view.date {
            Clock::local(rec.header.realtime_offset_ns.into())
        } else {
            Clock::monotonic()
        },
        reasons: &rec.reasons,
        kallsyms: &rec.kallsyms,
        detail: spec.view.detail,
        show_ret: spec.view.ret,
        latency_show: spec.view.latency_show,
        tiny: spec.view.tiny,
        color: spec.view.color,
    };
    let mut pipeline = Pipeline::stdout(fmt, &spec.mode, &spec.view, rules, None);
    if let Some(path) = &spec.pcap {
        let offset = rec.header.realtime_offset_ns.into();
        pipeline = pipeline.with_pcap(super::session::open_pcap(path, offset, spec.snaplen)?);
    }
    let mut admission = Admission::new(spec.filter, spec.mode.lifecycle());
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
            Ok(Input::Lost { at, .. }) => pipeline.events_lost(at),
            Ok(Input::Snapshot(snap)) => pipeline.snapshot(snap),
            Err(e) => {
                damage = Some(e);
                break;
            }
        }
    }
    pipeline.finish();
    if spec.pcap.is_some()
        && pipeline
            .pcap_result
            .as_ref()
            .is_some_and(|r| matches!(r, Ok(0)))
    {
        log::warn!(
            "no packet bytes to write: the recording holds none (record with --pcap or --record-bytes)"
        );
    }
    super::session::pcap_outcome(spec.pcap.as_deref(), pipeline.pcap_result.take())?;
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
        ));
    }
    if rec.end.is_none() {
        log::warn!(
            "{}: the recording has no end frame: the run was killed before it finished writing",
            rec.path.display()
        );
    }
    Ok(())
}
