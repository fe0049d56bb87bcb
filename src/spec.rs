//! What a run is asked to do, validated: one `Mode` and the options that
//! mode accepts. The command line builds a `RunSpec` (cli::spec) and
//! refuses flags the chosen mode does not take; the live run, the replay
//! and the pipeline read only this.

use crate::abi::nt_filter;
use crate::catalogue::table::ProbeDef;
use crate::load::plan::{ProbeMode, TpMode};
use crate::output::Format;
use std::path::PathBuf;

/// The rule files of a `--diag` or `--monitor` run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSource {
    /// `--rules`: site rule files or directories, after the built-in pack.
    pub paths: Vec<PathBuf>,
    /// Whether the built-in pack loads (`--no-default-rules` turns it off).
    pub defaults: bool,
}

/// `--diag`: the lifecycle, diagnosed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagSpec {
    pub rules: RuleSource,
    /// `--diag-quiet`: print only packets with a warning or an error.
    pub quiet: bool,
    /// `--diag-keep`: go on after a packet with an error.
    pub keep: bool,
    /// `--hooks`: list the hook functions of the hook that dropped a packet.
    pub hooks: bool,
}

/// `--monitor`: single-event rules, rate-limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSpec {
    pub rules: RuleSource,
    /// Findings per second per rule, and in all (0: no limit).
    pub rate_per_rule: u32,
    pub rate_total: u32,
    /// `--journal`: syslog priorities at the start of lines.
    pub journal: bool,
    /// `--metrics`: where to serve Prometheus metrics (`ADDR:PORT`).
    pub metrics: Option<String>,
}

/// `--latency` and `--latency-summary`: how long each skb takes, from its
/// first matched event to its end, measured in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySpec {
    /// `--latency-summary`: a log2 histogram every second and percentiles
    /// at the end, instead of a line per skb.
    pub summary: bool,
    /// `--min-latency`: skbs faster than this (ns) are not reported.
    pub min_ns: u64,
    /// `--latency-free`: the span ends at the free itself, not at the last
    /// event before it.
    pub free: bool,
}

/// `--rtt` and `--rtt-detail`: the kernel's TCP RTT estimate at each
/// update (`tcp_ack_update_rtt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttSpec {
    /// `--rtt-detail`: one line per update instead of a histogram.
    pub detail: bool,
    /// `--filter-srtt`: updates whose new srtt is below this (us) are skipped.
    pub min_srtt_us: u32,
    /// `--filter-minrtt`: updates whose minimum RTT is below this (us) are skipped.
    pub min_minrtt_us: u32,
}

/// What a run does with the events. Exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One block per packet (the default).
    Lifecycle,
    /// One block per packet with the rules' findings.
    Diag(DiagSpec),
    /// One line per dropped packet; `stack`: with its call stack.
    Drop { stack: bool },
    /// Every probe hit as it arrives.
    Basic,
    /// Findings of single-event rules as they happen.
    Monitor(MonitorSpec),
    /// Each skb's latency (`--latency`) or their histogram
    /// (`--latency-summary`).
    Latency(LatencySpec),
    /// Hits per probe, counted in the kernel (`--func-stats`).
    FuncStats,
    /// TCP RTT updates (`--rtt`, `--rtt-detail`).
    Rtt(RttSpec),
    /// Socket-level probes with the socket's state (`--sock`).
    Sock,
}

impl Mode {
    /// Whether events are grouped into packet lifecycles (the kernel then
    /// tracks the skbs that matched).
    pub fn lifecycle(&self) -> bool {
        matches!(self, Mode::Lifecycle | Mode::Diag(_) | Mode::Latency(_))
    }

    /// Whether printed units are packet contexts built in user space.
    pub fn contexts(&self) -> bool {
        matches!(self, Mode::Lifecycle | Mode::Diag(_))
    }

    /// Whether the kernel aggregates and user space reads its counters
    /// every second (`Snapshot`s) rather than events.
    pub fn aggregates(&self) -> bool {
        matches!(
            self,
            Mode::FuncStats
                | Mode::Latency(LatencySpec { summary: true, .. })
                | Mode::Rtt(RttSpec { detail: false, .. })
        )
    }

    /// The rules this mode evaluates.
    pub fn rules(&self) -> Option<&RuleSource> {
        match self {
            Mode::Diag(d) => Some(&d.rules),
            Mode::Monitor(m) => Some(&m.rules),
            _ => None,
        }
    }

    /// What one printed unit is, for the summary line.
    pub fn unit(&self) -> &'static str {
        match self {
            Mode::Lifecycle | Mode::Diag(_) => "packets",
            Mode::Drop { .. } => "drops",
            Mode::Basic => "events",
            Mode::Monitor(_) => "findings",
            Mode::Latency(l) if l.summary => "histograms",
            Mode::Latency(_) => "packets",
            Mode::FuncStats => "tables",
            Mode::Rtt(r) if r.detail => "updates",
            Mode::Rtt(_) => "histograms",
            Mode::Sock => "events",
        }
    }

    /// The flag that chose this mode, for messages.
    pub fn flag(&self) -> &'static str {
        match self {
            Mode::Lifecycle => "the lifecycle mode",
            Mode::Diag(_) => "--diag",
            Mode::Drop { .. } => "--drop",
            Mode::Basic => "--basic",
            Mode::Monitor(_) => "--monitor",
            Mode::Latency(l) if l.summary => "--latency-summary",
            Mode::Latency(_) => "--latency",
            Mode::FuncStats => "--func-stats",
            Mode::Rtt(r) if r.detail => "--rtt-detail",
            Mode::Rtt(_) => "--rtt",
            Mode::Sock => "--sock",
        }
    }

    /// `--hooks`.
    pub fn hooks(&self) -> bool {
        matches!(self, Mode::Diag(d) if d.hooks)
    }

    /// `--drop-stack`.
    pub fn drop_stack(&self) -> bool {
        matches!(self, Mode::Drop { stack: true })
    }
}

/// How events are printed, in every mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewSpec {
    /// `--detail`: skb, CPU, interface, pid, command, netns.
    pub detail: bool,
    /// `--date`: wall-clock times.
    pub date: bool,
    /// `--ret`: return values on event lines (and their exits loaded).
    pub ret: bool,
    /// `-c`: stop after this many printed units.
    pub count: Option<u64>,
    /// `--latency-show`: the time since the packet's previous event on
    /// every event line of a packet.
    pub latency_show: bool,
    /// `--tiny-show`: after a packet's first line, only time, probe and skb.
    pub tiny: bool,
    /// `--color`: levels and drop reasons in color (text output only).
    pub color: bool,
    pub format: Format,
}

/// The `--trace-*` controls: roles of chosen probes in the kernel.
#[derive(Debug, Clone, Default)]
pub struct TraceControls {
    /// `--trace-matcher`: only these may start a packet's context.
    pub matcher: Vec<&'static ProbeDef>,
    /// `--trace-stack`: the kernel stack is collected on these.
    pub stack: Vec<&'static ProbeDef>,
    /// `--trace-free`: these end a packet's timed span (latency modes).
    pub end: Vec<&'static ProbeDef>,
    /// `--trace-exclude`: never attached.
    pub exclude: Vec<&'static ProbeDef>,
    /// `--trace-noclone`: clones do not join their packet.
    pub noclone: bool,
}

/// Which probes a live run may attach and how.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// `-t`: the probes chosen (the catalogue's defaults without it). The
    /// mode adds or replaces what it needs (`run::select`).
    pub selection: Vec<&'static ProbeDef>,
    pub trace: TraceControls,
    pub probe_mode: ProbeMode,
    pub tp_mode: TpMode,
    /// `--btf`: kernel BTF from this file.
    pub btf: Option<PathBuf>,
}

/// A validated run, live or replayed.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub mode: Mode,
    pub filter: nt_filter,
    pub view: ViewSpec,
    pub probes: ProbeSpec,
    /// `--record`: keep every event in this file.
    pub record: Option<PathBuf>,
    /// `--pcap`: write the printed packets' bytes to this file.
    pub pcap: Option<PathBuf>,
    /// Bytes the kernel captures per packet (`--pcap`, `--record-bytes`;
    /// 0: none).
    pub snaplen: u32,
    /// `--rate-kernel`: events per second per CPU the kernel sends.
    pub rate_kernel: u32,
    /// `-v`: progress on stderr every 2 s.
    pub progress: bool,
    /// `--bpf-debug`: the programs print their decisions (trace_pipe).
    pub bpf_debug: bool,
}
