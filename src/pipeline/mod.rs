//! The path every decoded event takes: packet lifecycles (`lifecycle`),
//! diagnosis or monitor rules (`rules`), then the sinks of `output` (text,
//! JSON, metrics). A live run and a replay feed the same pipeline the same
//! inputs (events, and the clock ticks at which finished packets are looked
//! for), so they print the same bytes. `admission` is the kernel's filter
//! and tracked-skb map, for replays.

pub mod admission;
pub mod limiter;

use crate::events::snapshot::{Counters, Snapshot};
use crate::events::Event;
use crate::lifecycle::{Context, Tracker};
use crate::output::lines::Formatter;
use crate::output::pcap::PcapWriter;
use crate::output::{aggregate, diagnosis, json, metrics, Format};
use crate::rules::compile::{Level, Rule};
use crate::rules::eval::RuleSet;
use crate::spec::{Mode, RttSpec, ViewSpec};
pub use limiter::Limiter;
use std::io::Write;

/// What the pipeline does with each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Every event as it arrives.
    Basic,
    /// Drops only; with their call stacks.
    Drop { stack: bool },
    /// One block per packet (lifecycle and `--diag`).
    Lifecycle,
    /// Each event alone through the single-event rules.
    Monitor,
    /// `--latency`: the spans the kernel sends, at least `min_ns` long.
    Latency { min_ns: u64 },
    /// `--rtt-detail`: every update whose srtt and minrtt reach the
    /// `--filter-srtt`/`--filter-minrtt` bounds (the kernel checks them
    /// live; a replay again).
    Rtt {
        min_srtt_us: u32,
        min_minrtt_us: u32,
    },
    /// `--func-stats`, `--latency-summary`: the kernel's counters.
    Aggregate,
}

/// The aggregating modes' state: the first and the latest snapshot.
#[derive(Default)]
struct Aggregate {
    first: Option<Snapshot>,
    last: Option<Snapshot>,
}

/// `--diag`: the rules and what to print.
struct Diag {
    rules: RuleSet,
    quiet: bool,
    keep: bool,
}

/// `--monitor`: the rules, the rate limits and the counters.
struct Monitor {
    rules: RuleSet,
    limiter: Limiter,
    /// Prefix lines with syslog levels for journald (`--journal`).
    journal: bool,
    metrics: Option<metrics::Shared>,
}

/// Per-run output state.
pub struct Pipeline<'a> {
    pub fmt: Formatter<'a>,
    stage: Stage,
    tracker: Option<Tracker>,
    diag: Option<Diag>,
    monitor: Option<Monitor>,
    aggregate: Aggregate,
    limit: Option<u64>,
    format: Format,
    out: Box<dyn Write + 'a>,
    /// The text of one event, reused (no allocation per printed event).
    line: String,
    /// Packets, drops or events printed.
    pub printed: u64,
    /// Events received, printed or not.
    pub events: u64,
    pub broken_pipe: bool,
    /// `--diag` without `--diag-keep` found an error: the run ends.
    pub done: bool,
    /// `--pcap`: the printed packets' bytes, annotated.
    pcap: Option<PcapWriter<Box<dyn Write + 'a>>>,
    /// `--pcap`, after `finish`: packets written, or the write error.
    pub pcap_result: Option<std::io::Result<u64>>,
}

impl<'a> Pipeline<'a> {
    /// The pipeline of `mode`, printing to `out`. `rules` are the mode's
    /// compiled rules (for `--monitor`, those it can run on single events);
    /// `metrics` is where `--metrics` counts.
    pub fn new(
        fmt: Formatter<'a>,
        mode: &Mode,
        view: &ViewSpec,
        rules: Vec<Rule>,
        metrics: Option<metrics::Shared>,
        out: Box<dyn Write + 'a>,
    ) -> Pipeline<'a> {
        let stage = match mode {
            Mode::Lifecycle | Mode::Diag(_) => Stage::Lifecycle,
            Mode::Drop { stack } => Stage::Drop { stack: *stack },
            Mode::Basic => Stage::Basic,
            Mode::Monitor(_) => Stage::Monitor,
            Mode::Latency(l) if l.summary => Stage::Aggregate,
            Mode::Latency(l) => Stage::Latency { min_ns: l.min_ns },
            Mode::FuncStats | Mode::Rtt(RttSpec { detail: false, .. }) => Stage::Aggregate,
            Mode::Rtt(r) => Stage::Rtt {
                min_srtt_us: r.min_srtt_us,
                min_minrtt_us: r.min_minrtt_us,
            },
            Mode::Sock => Stage::Basic,
        };
        let (diag, monitor) = match mode {
            Mode::Diag(d) => (
                Some(Diag {
                    rules: RuleSet::new(rules),
                    quiet: d.quiet,
                    keep: d.keep,
                }),
                None,
            ),
            Mode::Monitor(m) => (
                None,
                Some(Monitor {
                    limiter: Limiter::new(rules.len(), m.rate_per_rule, m.rate_total),
                    rules: RuleSet::new(rules),
                    journal: m.journal,
                    metrics,
                }),
            ),
            _ => (None, None),
        };
        Pipeline {
            fmt,
            stage,
            tracker: (stage == Stage::Lifecycle).then(Tracker::new),
            diag,
            monitor,
            aggregate: Aggregate::default(),
            limit: view.count,
            format: view.format,
            out,
            line: String::new(),
            printed: 0,
            events: 0,
            broken_pipe: false,
            done: false,
            pcap: None,
            pcap_result: None,
        }
    }

    /// The pipeline of `mode`, printing to stdout.
    pub fn stdout(
        fmt: Formatter<'a>,
        mode: &Mode,
        view: &ViewSpec,
        rules: Vec<Rule>,
        metrics: Option<metrics::Shared>,
    ) -> Pipeline<'a> {
        // 64 KiB: a write(2) per ~400 event lines instead of per ~50. The
        // tracing loop flushes on every tick, so output still trails the
        // packets by at most the tick.
        let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        Pipeline::new(fmt, mode, view, rules, metrics, Box::new(out))
    }

    /// Also writes the bytes of what it prints to `pcap` (`--pcap`).
    pub fn with_pcap(mut self, pcap: PcapWriter<Box<dyn Write + 'a>>) -> Pipeline<'a> {
        self.pcap = Some(pcap);
        self
    }

    /// Findings suppressed by the rate limits, per rule id (monitor mode).
    pub fn suppressed(&self) -> Vec<(String, u64)> {
        self.monitor.as_ref().map_or_else(Vec::new, |m| {
            m.rules
                .iter()
                .zip(&m.limiter.suppressed)
                .filter(|(_, n)| **n > 0)
                .map(|(r, n)| (r.id.clone(), *n))
                .collect()
        })
    }

    /// Whether the run should stop reading: the output is gone, `--count`
    /// is reached or `--diag` found its error.
    pub fn finished(&self) -> bool {
        self.broken_pipe || self.done || self.limit.is_some_and(|n| self.printed >= n)
    }

    /// Open packets (lifecycle mode).
    pub fn open_contexts(&self) -> usize {
        self.tracker.as_ref().map_or(0, |t| t.open_contexts())
    }

    /// Packets flushed before their end was seen (lifecycle mode).
    pub fn expired(&self) -> u64 {
        self.tracker.as_ref().map_or(0, |t| t.expired)
    }

    /// One event, decoded and complete (hook functions and stack filled).
    #[inline(always)]
    pub fn event(&mut self, ev: Event) {
        if self.finished() {
            return;
        }
        self.events += 1;
        if self.stage == Stage::Monitor {
            self.monitor_event(&ev);
            return;
        }
        if let Some(tracker) = self.tracker.as_mut() {
            let forced = tracker.push(ev);
            self.print_contexts(forced);
            return;
        }
        if matches!(self.stage, Stage::Drop { .. }) && !ev.is_drop() {
            return;
        }
        if self.stage == Stage::Aggregate {
            return;
        }
        if let Stage::Latency { min_ns } = self.stage {
            if ev.span.as_deref().is_none_or(|s| s.ns() < min_ns) {
                return;
            }
        }
        if let Stage::Rtt {
            min_srtt_us,
            min_minrtt_us,
        } = self.stage
        {
            // A minrtt of 0 is none known yet, as the kernel's ~0: it
            // passes there.
            let below = |s: &crate::events::SockFacts| {
                s.srtt_us < min_srtt_us || (s.minrtt_us != 0 && s.minrtt_us < min_minrtt_us)
            };
            if ev.sock.as_deref().is_none_or(below) {
                return;
            }
        }
        let mut text = std::mem::take(&mut self.line);
        text.clear();
        match (self.stage, self.format) {
            (Stage::Latency { .. }, Format::Text) => {
                text.push_str(&self.fmt.span_line(&ev).unwrap_or_default());
                text.push('\n');
            }
            (Stage::Latency { .. }, Format::Json) => {
                text.push_str(&json::line(json::Kind::Latency, &self.fmt, &ev))
            }
            (Stage::Drop { stack }, Format::Text) => {
                text.push_str(&self.fmt.drop_line(&ev));
                text.push('\n');
                if stack && !ev.stack.is_empty() {
                    text.push_str(&self.fmt.stack_block(&ev.stack));
                }
            }
            (Stage::Drop { .. }, Format::Json) => {
                text.push_str(&json::line(json::Kind::Drop, &self.fmt, &ev))
            }
            (_, Format::Text) => {
                self.fmt.push_event_line(&mut text, &ev);
                text.push('\n');
                if !ev.stack.is_empty() {
                    text.push_str(&self.fmt.stack_block(&ev.stack));
                }
            }
            (_, Format::Json) => text.push_str(&json::line(json::Kind::Event, &self.fmt, &ev)),
        }
        self.write(&text);
        self.line = text;
        self.printed += 1;
        if let Some(pcap) = self.pcap.as_mut().filter(|_| ev.bytes.is_some()) {
            pcap.packet(&ev, &crate::output::pcap::event_comment(&self.fmt, &ev));
        }
    }

    /// Monitor mode: the findings of one event, rate-limited, and the
    /// counters.
    fn monitor_event(&mut self, ev: &Event) {
        let Some(m) = self.monitor.as_mut() else {
            return;
        };
        let graph = crate::rules::graph::LifeGraph::new([ev]).with_symbols(self.fmt.kallsyms);
        let findings = crate::rules::eval::evaluate(&m.rules, &graph);
        let mut lines = Vec::new();
        let mut counted = Vec::new();
        let mut reported = Vec::new();
        for f in &findings {
            let rule = &m.rules[f.rule];
            if m.limiter.allow(f.rule, ev.ts) {
                reported.push(rule);
                lines.push(match self.format {
                    Format::Text => diagnosis::finding_line(&self.fmt, rule, ev, m.journal),
                    Format::Json => json::finding_line(&self.fmt, rule, ev),
                });
                counted.push((rule.id.clone(), rule.level.name(), true));
            } else {
                counted.push((rule.id.clone(), rule.level.name(), false));
            }
        }
        if let Some(metrics) = &m.metrics {
            if let Ok(mut mx) = metrics.lock() {
                mx.events += 1;
                for (id, level, reported) in counted {
                    if reported {
                        *mx.findings.entry((id, level)).or_default() += 1;
                    } else {
                        *mx.suppressed.entry(id).or_default() += 1;
                    }
                }
                if ev.is_drop() {
                    let reason = ev
                        .reason
                        .map_or_else(|| "unknown".into(), |r| self.fmt.reasons.name(r));
                    let location = ev
                        .location
                        .and_then(|a| self.fmt.kallsyms.resolve(a).map(|l| l.symbol.to_string()))
                        .unwrap_or_else(|| "unknown".into());
                    mx.count_drop(reason, location);
                }
            }
        }
        if let Some(pcap) = self.pcap.as_mut().filter(|_| !reported.is_empty()) {
            pcap.packet(
                ev,
                &crate::output::pcap::findings_comment(&self.fmt, ev, &reported),
            );
        }
        for l in lines {
            self.write(&l);
            self.printed += 1;
        }
    }

    /// The clock reached `now` (CLOCK_MONOTONIC ns): print the packets
    /// that finished (past their grace period) or went idle.
    pub fn tick(&mut self, now: u64) {
        if let Some(tracker) = self.tracker.as_mut() {
            let ready = tracker.take_ready(now);
            self.print_contexts(ready);
        }
    }

    /// The kernel's count of lost events grew by `now`: the packets being
    /// traced may miss events (`Tracker::events_lost`). Called before
    /// `tick(now)`, so packets finishing at this tick are marked too.
    pub fn events_lost(&mut self, now: u64) {
        if let Some(tracker) = self.tracker.as_mut() {
            tracker.events_lost(now);
        }
    }

    /// The kernel's counters as of `snap.ts` (aggregating modes): what
    /// changed since the previous snapshot is printed.
    pub fn snapshot(&mut self, snap: Snapshot) {
        if self.stage != Stage::Aggregate || self.finished() {
            return;
        }
        let Some(previous) = self.aggregate.last.replace(snap.clone()) else {
            self.aggregate.first = Some(snap);
            return;
        };
        if let Some(text) = self.counters_text(&snap, &previous, true) {
            self.write(&text);
            self.printed += 1;
        }
    }

    /// The aggregating modes' end-of-run totals.
    fn print_totals(&mut self) {
        let (Some(first), Some(last)) = (&self.aggregate.first, &self.aggregate.last) else {
            return;
        };
        if let Some(text) = self.counters_text(last, first, false) {
            self.write(&text);
        }
    }

    /// What the counters gained from `before` to `now`: one interval's
    /// table or histogram (None when nothing changed), or with
    /// `interval` false the whole run's, with its percentiles.
    fn counters_text(&self, now: &Snapshot, before: &Snapshot, interval: bool) -> Option<String> {
        let span = now.ts.saturating_sub(before.ts);
        let secs = span as f64 / 1e9;
        let (title, at, interval_ns) = if interval {
            (format!("in the last {secs:.2}s"), Some(now.ts), Some(span))
        } else {
            (format!("in all ({secs:.2}s)"), None, None)
        };
        let fmt = &self.fmt;
        match (&now.counters, &before.counters) {
            (Counters::FuncHits(n), Counters::FuncHits(b)) => {
                let hits = hits_since(n, b);
                if interval && hits.is_empty() {
                    return None;
                }
                Some(match self.format {
                    Format::Text => {
                        aggregate::func_table_text(fmt, at, &format!("probe hits {title}"), &hits)
                    }
                    Format::Json => aggregate::func_table_json(fmt, now.ts, interval_ns, &hits),
                })
            }
            (Counters::Latency(n), Counters::Latency(b)) | (Counters::Rtt(n), Counters::Rtt(b)) => {
                let h = n.since(b);
                if interval && h.count == 0 {
                    return None;
                }
                let (what, unit, kind) = match now.counters {
                    Counters::Rtt(_) => ("TCP srtt", "update", json::Kind::RttHistogram),
                    _ => ("packet latency", "packet", json::Kind::LatencyHistogram),
                };
                Some(match self.format {
                    Format::Text => aggregate::histogram_text(
                        fmt,
                        at,
                        &format!("{what} {title}"),
                        unit,
                        &h,
                        !interval,
                    ),
                    Format::Json => aggregate::histogram_json(kind, fmt, now.ts, interval_ns, &h),
                })
            }
            _ => None,
        }
    }

    /// The end of the run: print every packet still open.
    pub fn finish(&mut self) {
        if let Some(tracker) = self.tracker.as_mut() {
            let rest = tracker.drain();
            self.print_contexts(rest);
        }
        if self.stage == Stage::Aggregate && !self.broken_pipe {
            self.print_totals();
        }
        self.flush();
        if let Some(pcap) = self.pcap.take() {
            self.pcap_result = Some(pcap.finish());
        }
    }

    pub fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            self.note_write_error(&e);
        }
    }

    fn write(&mut self, text: &str) {
        if let Err(e) = self.out.write_all(text.as_bytes()) {
            self.note_write_error(&e);
        }
    }

    fn note_write_error(&mut self, e: &std::io::Error) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            self.broken_pipe = true;
        }
    }

    fn write_pcap(&mut self, c: &Context, diag: Option<(&RuleSet, &diagnosis::Diagnosis)>) {
        if let Some(pcap) = self.pcap.as_mut() {
            write_context_pcap(pcap, &self.fmt, c, diag);
        }
    }

    fn print_contexts(&mut self, contexts: Vec<Context>) {
        for c in contexts {
            if self.finished() {
                return;
            }
            let Some(diag) = &self.diag else {
                let mut text = std::mem::take(&mut self.line);
                text.clear();
                match self.format {
                    Format::Text => self.fmt.push_context_block(&mut text, &c, |_, _| {}),
                    Format::Json => text.push_str(&json::context_line(&self.fmt, &c, None)),
                }
                self.write(&text);
                self.line = text;
                self.printed += 1;
                self.write_pcap(&c, None);
                continue;
            };
            // One text buffer serves every packet (no allocation per packet).
            let buf = std::mem::take(&mut self.line);
            let d = diagnosis::diagnose_into(&self.fmt, &diag.rules, &c, buf);
            if diag.quiet && d.worst < Some(Level::Warn) {
                self.line = d.text;
                continue;
            }
            let stop = d.worst == Some(Level::Error) && !diag.keep;
            match self.format {
                Format::Text => self.write(&d.text),
                Format::Json => {
                    let line = json::context_line(&self.fmt, &c, Some((&diag.rules, &d)));
                    self.write(&line);
                }
            }
            if let (Some(pcap), Some(diag)) = (self.pcap.as_mut(), self.diag.as_ref()) {
                write_context_pcap(pcap, &self.fmt, &c, Some((&diag.rules, &d)));
            }
            self.line = d.text;
            self.printed += 1;
            if stop {
                if self.format == Format::Text {
                    self.write("analysis finished!\n\n");
                }
                self.done = true;
            }
        }
    }
}

/// The captured events of a printed packet, each with the packet's story.
fn write_context_pcap<W: Write>(
    pcap: &mut PcapWriter<W>,
    fmt: &Formatter<'_>,
    c: &Context,
    diag: Option<(&RuleSet, &diagnosis::Diagnosis)>,
) {
    for ev in c.events.iter().filter(|e| e.bytes.is_some()) {
        pcap.packet(ev, &crate::output::pcap::context_comment(fmt, c, ev, diag));
    }
}

/// Hits per probe since `before` (probes with none left out).
fn hits_since(now: &[(u32, u64)], before: &[(u32, u64)]) -> Vec<(u32, u64)> {
    now.iter()
        .map(|(id, n)| {
            let earlier = before.iter().find(|(b, _)| b == id).map_or(0, |(_, n)| *n);
            (*id, n.saturating_sub(earlier))
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}
