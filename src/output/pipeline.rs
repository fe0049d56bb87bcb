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
use crate::rules::compile::{Level, Rule};
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
}

/// `--diag`: the rules and what to print.
pub struct DiagMode {
    pub rules: Vec<Rule>,
    pub quiet: bool,
    pub keep: bool,
}

/// Per-run output state.
pub struct Pipeline<'a> {
    pub fmt: Formatter<'a>,
    mode: Mode,
    tracker: Option<Tracker>,
    diag: Option<DiagMode>,
    limit: Option<u64>,
    format: OutputFormat,
    out: Box<dyn Write + 'a>,
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
            limit,
            format,
            out,
            printed: 0,
            events: 0,
            broken_pipe: false,
            done: false,
        }
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
    pub fn event(&mut self, ev: Event) {
        if self.finished() {
            return;
        }
        self.events += 1;
        if let Some(tracker) = self.tracker.as_mut() {
            let forced = tracker.push(ev);
            self.print_contexts(forced);
            return;
        }
        let text = match (self.mode, self.format) {
            (Mode::Drop { .. }, _) if !ev.is_drop() => return,
            (Mode::Drop { stack }, OutputFormat::Text) => {
                let mut text = self.fmt.drop_line(&ev);
                text.push('\n');
                if stack && !ev.stack.is_empty() {
                    text.push_str(&self.fmt.stack_block(&ev.stack));
                }
                text
            }
            (Mode::Drop { .. }, OutputFormat::Json) => json::line(json::Kind::Drop, &self.fmt, &ev),
            (_, OutputFormat::Text) => {
                let mut text = self.fmt.event_line(&ev);
                text.push('\n');
                text
            }
            (_, OutputFormat::Json) => json::line(json::Kind::Event, &self.fmt, &ev),
        };
        self.write(&text);
        self.printed += 1;
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
                let text = match self.format {
                    OutputFormat::Text => self.fmt.context_block(&c),
                    OutputFormat::Json => json::context_line(&self.fmt, &c, None),
                };
                self.write(&text);
                self.printed += 1;
                continue;
            };
            let d = super::diagnosis::diagnose(&self.fmt, &diag.rules, &c);
            if diag.quiet && d.worst < Some(Level::Warn) {
                continue;
            }
            let stop = d.worst == Some(Level::Error) && !diag.keep;
            let text = match self.format {
                OutputFormat::Text => d.text,
                OutputFormat::Json => json::context_line(&self.fmt, &c, Some((&diag.rules, &d))),
            };
            self.write(&text);
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
