//! The path every event takes once decoded: grouping into packet
//! lifecycles, diagnosis, and printing as text or JSON lines. A live run
//! and a replay feed the same pipeline the same inputs (events, and the
//! clock ticks at which finished packets are looked for), so they print
//! the same bytes.

use super::json;
use super::lines::Formatter;
use crate::cli::args::OutputFormat;
use crate::events::Event;
use crate::lifecycle::{Context, Tracker};
use crate::rules::compile::Level;
use crate::rules::eval::RuleSet;
use std::io::Write;

/// What a run prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every event as it arrives.
    Basic,
    /// Drops only (`--drop`); with their call stacks (`--drop-stack`).
    Drop { stack: bool },
    /// One block per packet (default, and `--diag`).
    Lifecycle,
    /// `--monitor`: each event alone through the single-event rules.
    Monitor,
}

/// `--diag`: the rules and what to print.
pub struct DiagMode {
    pub rules: RuleSet,
    pub quiet: bool,
    pub keep: bool,
}

/// `--monitor`: the rules, the rate limits and the counters.
pub struct MonitorMode {
    pub rules: RuleSet,
    pub limiter: Limiter,
    /// Prefix lines with syslog levels for journald (`--journal`).
    pub journal: bool,
    pub metrics: Option<super::metrics::Shared>,
}

/// Findings per second, per rule and in all, counted in windows of one
/// second of event time that open with the first finding after the last
/// window closed (so a replay suppresses what the live run did).
pub struct Limiter {
    per_rule: u32,
    total: u32,
    window_start: Option<u64>,
    rule_count: Vec<u32>,
    total_count: u32,
    /// Findings suppressed, per rule.
    pub suppressed: Vec<u64>,
}

impl Limiter {
    /// `0` is no limit.
    pub fn new(rules: usize, per_rule: u32, total: u32) -> Limiter {
        Limiter {
            per_rule,
            total,
            window_start: None,
            rule_count: vec![0; rules],
            total_count: 0,
            suppressed: vec![0; rules],
        }
    }

    pub fn allow(&mut self, rule: usize, ts: u64) -> bool {
        if self
            .window_start
            .is_none_or(|start| ts >= start.saturating_add(1_000_000_000))
        {
            self.window_start = Some(ts);
            self.rule_count.iter_mut().for_each(|c| *c = 0);
            self.total_count = 0;
        }
        let over = (self.per_rule > 0 && self.rule_count[rule] >= self.per_rule)
            || (self.total > 0 && self.total_count >= self.total);
        if over {
            self.suppressed[rule] += 1;
            return false;
        }
        self.rule_count[rule] += 1;
        self.total_count += 1;
        true
    }
}

/// Per-run output state.
pub struct Pipeline<'a> {
    pub fmt: Formatter<'a>,
    mode: Mode,
    tracker: Option<Tracker>,
    diag: Option<DiagMode>,
    monitor: Option<MonitorMode>,
    limit: Option<u64>,
    format: OutputFormat,
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
}

impl<'a> Pipeline<'a> {
    pub fn new(
        fmt: Formatter<'a>,
        mode: Mode,
        diag: Option<DiagMode>,
        limit: Option<u64>,
        format: OutputFormat,
        out: Box<dyn Write + 'a>,
    ) -> Pipeline<'a> {
        Pipeline {
            fmt,
            mode,
            tracker: (mode == Mode::Lifecycle).then(Tracker::new),
            diag,
            monitor: None,
            limit,
            format,
            out,
            line: String::new(),
            printed: 0,
            events: 0,
            broken_pipe: false,
            done: false,
        }
    }

    /// Monitor mode's rules, limits and counters.
    pub fn with_monitor(mut self, monitor: MonitorMode) -> Self {
        self.monitor = Some(monitor);
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
        if self.mode == Mode::Monitor {
            self.monitor_event(&ev);
            return;
        }
        if let Some(tracker) = self.tracker.as_mut() {
            let forced = tracker.push(ev);
            self.print_contexts(forced);
            return;
        }
        if matches!(self.mode, Mode::Drop { .. }) && !ev.is_drop() {
            return;
        }
        let mut text = std::mem::take(&mut self.line);
        text.clear();
        match (self.mode, self.format) {
            (Mode::Drop { stack }, OutputFormat::Text) => {
                text.push_str(&self.fmt.drop_line(&ev));
                text.push('\n');
                if stack && !ev.stack.is_empty() {
                    text.push_str(&self.fmt.stack_block(&ev.stack));
                }
            }
            (Mode::Drop { .. }, OutputFormat::Json) => {
                text.push_str(&json::line(json::Kind::Drop, &self.fmt, &ev))
            }
            (_, OutputFormat::Text) => {
                self.fmt.push_event_line(&mut text, &ev);
                text.push('\n');
            }
            (_, OutputFormat::Json) => {
                text.push_str(&json::line(json::Kind::Event, &self.fmt, &ev))
            }
        }
        self.write(&text);
        self.line = text;
        self.printed += 1;
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
        for f in &findings {
            let rule = &m.rules[f.rule];
            if m.limiter.allow(f.rule, ev.ts) {
                lines.push(match self.format {
                    OutputFormat::Text => {
                        super::diagnosis::finding_line(&self.fmt, rule, ev, m.journal)
                    }
                    OutputFormat::Json => json::finding_line(&self.fmt, rule, ev),
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

    /// The end of the run: print every packet still open.
    pub fn finish(&mut self) {
        if let Some(tracker) = self.tracker.as_mut() {
            let rest = tracker.drain();
            self.print_contexts(rest);
        }
        self.flush();
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

    fn print_contexts(&mut self, contexts: Vec<Context>) {
        for c in contexts {
            if self.finished() {
                return;
            }
            let Some(diag) = &self.diag else {
                let mut text = std::mem::take(&mut self.line);
                text.clear();
                match self.format {
                    OutputFormat::Text => self.fmt.push_context_block(&mut text, &c, |_, _| {}),
                    OutputFormat::Json => text.push_str(&json::context_line(&self.fmt, &c, None)),
                }
                self.write(&text);
                self.line = text;
                self.printed += 1;
                continue;
            };
            // One text buffer serves every packet (no allocation per packet).
            let buf = std::mem::take(&mut self.line);
            let d = super::diagnosis::diagnose_into(&self.fmt, &diag.rules, &c, buf);
            if diag.quiet && d.worst < Some(Level::Warn) {
                self.line = d.text;
                continue;
            }
            let stop = d.worst == Some(Level::Error) && !diag.keep;
            match self.format {
                OutputFormat::Text => self.write(&d.text),
                OutputFormat::Json => {
                    let line = json::context_line(&self.fmt, &c, Some((&diag.rules, &d)));
                    self.write(&line);
                }
            }
            self.line = d.text;
            self.printed += 1;
            if stop {
                if self.format == OutputFormat::Text {
                    self.write("analysis finished!\n\n");
                }
                self.done = true;
            }
        }
    }
}
