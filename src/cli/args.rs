//! Command-line flags. Each flag is declared once here (name, help, value
//! parser); `filter.rs` turns the raw values into the BPF filter and
//! `spec.rs` checks them against the chosen mode in one place.

use crate::load::plan::{ProbeMode, TpMode};
use crate::output::{ColorChoice, Format};
use clap::Parser;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "nettrace",
    version,
    about = "Trace packets through the Linux kernel with eBPF: where each went, where and why it was dropped",
    long_about = None,
    after_help = "Modes: default = one block per packet (lifecycle), --diag (lifecycle plus diagnosis rules), --drop (drop monitor), --basic (every probe hit as it happens), --monitor (always-on anomaly reporting, docs/monitor.md), --latency / --latency-summary (packet latency, measured in the kernel), --func-stats (hits per probe, counted in the kernel), --rtt / --rtt-detail (TCP RTT at each update of the kernel's estimate), --sock (socket-level probes with each socket's state; docs/modes.md), --check (what this kernel supports).\nRecordings: --record FILE keeps a run; `nettrace replay FILE` prints it again without root (docs/recording.md).\nRule files: `nettrace rules lint [PATH...]` checks them, `nettrace rules test [PATH...]` runs their tests, without root (docs/rules.md).\n\
Status lines (`begin trace...`, `end trace...`) and logs go to stderr; data goes to stdout.\n\
Exit codes: 0 ok, 1 runtime error, 2 bad usage, 3 missing privileges, 4 kernel lacks what is needed (BTF, probes), 5 BPF load refused."
)]
pub struct Args {
    #[command(flatten)]
    pub filters: FilterFlags,

    #[command(flatten)]
    pub view: ViewFlags,

    /// With --diag: when netfilter drops a packet, list every hook function registered on that hook (needs function probes)
    #[arg(long, help_heading = "Diagnosis")]
    pub hooks: bool,
    /// With --monitor: serve Prometheus metrics at http://ADDR:PORT/metrics (a bare PORT listens on 127.0.0.1)
    #[arg(long, value_name = "ADDR:PORT", help_heading = "Monitor")]
    pub metrics: Option<String>,
    /// Events per second per CPU the kernel sends at most; the rest are counted in the kernel and
    /// never copied out (0: no limit). Bounds the cost of floods, in any mode
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Monitor")]
    pub rate_kernel: u32,
    /// Write every event of the run (and what is needed to decode it elsewhere) to FILE, for `nettrace replay` and `rules test` (docs/recording.md)
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub record: Option<PathBuf>,
    /// With --record: capture the packets' bytes into the recording, as --pcap does (a replay can then
    /// write them with --pcap)
    #[arg(long, help_heading = "Output")]
    pub record_bytes: bool,
    /// Report what this kernel supports and how many probes would attach, then exit
    #[arg(long, help_heading = "Modes")]
    pub check: bool,
    /// List the probe groups and probes (what is off by default, what this kernel can attach), then exit
    #[arg(long, help_heading = "Modes")]
    pub list: bool,

    /// Probe groups or probe names to trace, comma-separated; `all` for every probe (`-t ?` lists them). The lifecycle mode always adds the free, drop and clone probes
    #[arg(
        short = 't',
        long = "trace",
        value_name = "GROUPS",
        help_heading = "Probes"
    )]
    pub trace: Option<String>,
    /// Only these probes (comma-separated names) may start a packet's context; the others follow packets already started
    #[arg(long, value_name = "FUNCS", help_heading = "Probes")]
    pub trace_matcher: Option<String>,
    /// Never attach these probes (comma-separated names or groups)
    #[arg(long, value_name = "FUNCS", help_heading = "Probes")]
    pub trace_exclude: Option<String>,
    /// Print the kernel call stack of every event of these probes (comma-separated names)
    #[arg(long, value_name = "FUNCS", help_heading = "Probes")]
    pub trace_stack: Option<String>,
    /// With --latency/--latency-summary: a packet's span ends at these probes (comma-separated names) instead of its free
    #[arg(long, value_name = "FUNCS", help_heading = "Latency")]
    pub trace_free: Option<String>,
    /// Do not follow clones: a clone is a packet of its own
    #[arg(long, help_heading = "Probes")]
    pub trace_noclone: bool,
    /// With --latency/--latency-summary: the span ends at the free itself (default: at the last event before it)
    #[arg(long, help_heading = "Latency")]
    pub latency_free: bool,
    /// Trace every probe with no filter at all (refused without it: the whole stack's traffic, at a cost)
    #[arg(long, help_heading = "Probes")]
    pub force: bool,
    /// How kernel functions are probed
    #[arg(long, value_enum, default_value_t = ProbeMode::Auto, help_heading = "Probes")]
    pub probe_mode: ProbeMode,
    /// How tracepoints are attached
    #[arg(long, value_enum, default_value_t = TpMode::Auto, help_heading = "Probes")]
    pub tp_mode: TpMode,
    /// Read kernel BTF from FILE instead of /sys/kernel/btf/vmlinux
    #[arg(long, value_name = "FILE", help_heading = "Probes")]
    pub btf: Option<PathBuf>,

    /// Log progress to stderr: attach details, then events, open contexts and losses every 2 s
    #[arg(short = 'v', help_heading = "Logging")]
    pub verbose: bool,
    /// Log debugging detail to stderr, with libbpf's warnings (a refused program's verifier log); NETTRACE_LIBBPF_DEBUG=1 adds libbpf's debug messages
    #[arg(long, help_heading = "Logging")]
    pub debug: bool,
    /// Show the BPF programs' own debug output (each program's decision: filtered out, matched, sent,
    /// lost; from the kernel's trace_pipe, as `bpf:` lines) and the verifier log of any program the
    /// kernel refuses (as `libbpf:` lines). Costs a trace_pipe write per probe hit: for debugging, not
    /// for production
    #[arg(long, help_heading = "Logging")]
    pub bpf_debug: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Work with diagnosis rule files
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Run a recording (`--record FILE`) through the same pipeline as a live run, without root or BPF:
    /// the same flags print the same output. Exit codes: 0 ok, 1 the recording is damaged (what
    /// came before the damage is printed), 2 usage error or unreadable/unsupported recording.
    Replay(Box<ReplayArgs>),
    /// Write the man pages nettrace(8), nettrace-rules(5) and nettrace-drop-reasons(7) and the bash,
    /// zsh and fish completions, generated from these very flags, docs/rules.md and the rule pack,
    /// into DIR (for packages: they cannot drift from --help). Exit codes: 0 ok, 1 a file could not
    /// be written.
    Generate {
        /// Where to write nettrace.8, nettrace-rules.5, nettrace-drop-reasons.7, nettrace.bash,
        /// _nettrace and nettrace.fish
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// List the drop reasons of the running kernel (from its BTF, or of --btf FILE), each with the
    /// rule pack's explanation: level, meaning and advice (the man page nettrace-drop-reasons(7)
    /// lists those of every tested kernel). Exit codes: 0 ok, 4 no BTF.
    DropReasons {
        /// Read the reasons from this BTF file instead of /sys/kernel/btf/vmlinux
        #[arg(long, value_name = "FILE")]
        btf: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A recording made with `--record`
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub filters: FilterFlags,
    #[command(flatten)]
    pub view: ViewFlags,
}

#[derive(Debug, clap::Subcommand)]
pub enum RulesAction {
    /// Check rule files without root or BPF: every problem in every file, as file:line:col.
    /// Exit codes: 0 clean, 1 errors (or warnings with --deny-warnings), 2 usage or I/O error.
    Lint(LintArgs),
    /// Run rule tests: recordings or hand-written event files with the findings expected of them
    /// (docs/rules.md, "Testing rules"). Exit codes: 0 all pass, 1 a test failed (or a rule lacks
    /// a test, with --require-coverage), 2 usage error or a broken test file.
    Test(RulesTestArgs),
}

#[derive(Debug, clap::Args)]
pub struct RulesTestArgs {
    /// Test files (`.test.yaml`) or directories holding them; rule files found next to them
    /// are loaded on top of the built-in pack (default: the built-in pack's own tests, rules.d/tests)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Test the given rule files alone, not on top of the built-in pack
    #[arg(long)]
    pub no_default_rules: bool,
    /// Fail unless every rule has a test that fires it and one that must not fire it
    #[arg(long)]
    pub require_coverage: bool,
}

#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Rule files or directories of `.rules` files, checked together on top of the
    /// built-in pack (default: the built-in pack itself)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
    /// Check drop reasons against this kernel BTF file (default: the running kernel's, if readable)
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
    /// Fail (exit 1) on warnings too
    #[arg(long)]
    pub deny_warnings: bool,
    /// Check the given files alone, not on top of the built-in pack
    #[arg(long)]
    pub no_default_rules: bool,
    /// List every diagnostic code and what it means, then exit
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
}

/// Filters, shared by live runs and `replay`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterFlags {
    /// Filter: source IPv4/IPv6 address
    #[arg(short = 's', long, value_name = "ADDR", help_heading = "Filters")]
    pub saddr: Option<String>,
    /// Filter: destination IPv4/IPv6 address
    #[arg(short = 'd', long, value_name = "ADDR", help_heading = "Filters")]
    pub daddr: Option<String>,
    /// Filter: source or destination address
    #[arg(long, value_name = "ADDR", help_heading = "Filters")]
    pub addr: Option<String>,
    /// Filter: source TCP/UDP port
    #[arg(
        short = 'S',
        long,
        value_name = "PORT",
        allow_hyphen_values = true,
        help_heading = "Filters"
    )]
    pub sport: Option<String>,
    /// Filter: destination TCP/UDP port
    #[arg(
        short = 'D',
        long,
        value_name = "PORT",
        allow_hyphen_values = true,
        help_heading = "Filters"
    )]
    pub dport: Option<String>,
    /// Filter: source or destination TCP/UDP port
    #[arg(
        short = 'P',
        long,
        value_name = "PORT",
        allow_hyphen_values = true,
        help_heading = "Filters"
    )]
    pub port: Option<String>,
    /// Filter: protocol, L3 (ip, ipv6, arp) or L4 (tcp, udp, icmp, icmpv6, igmp, gre, esp, ah, sctp, udplite)
    #[arg(short = 'p', long, value_name = "PROTO", help_heading = "Filters")]
    pub proto: Option<String>,
    /// Filter: process id current when the probe fired
    #[arg(
        long,
        value_name = "PID",
        allow_hyphen_values = true,
        help_heading = "Filters"
    )]
    pub pid: Option<String>,
    /// Filter: network namespace inode (`lsns -t net`, `ls -i /proc/PID/ns/net`)
    #[arg(
        long,
        value_name = "INODE",
        help_heading = "Filters",
        conflicts_with = "netns_current"
    )]
    pub netns: Option<String>,
    /// Filter: only the network namespace nettrace runs in (`ip netns exec NS nettrace --netns-current`)
    #[arg(long, help_heading = "Filters")]
    pub netns_current: bool,
    /// Filter: packet length in bytes at the probe (skb->len), N or MIN-MAX
    #[arg(long, value_name = "LEN", help_heading = "Filters")]
    pub pkt_len: Option<String>,
    /// Filter: TCP packets with all these flags set: letters FSRPAUEC (SA) or names (syn,ack)
    #[arg(long, value_name = "FLAGS", help_heading = "Filters")]
    pub tcp_flags: Option<String>,
    /// Also report the skbs of non-IP sockets (vsock, netlink, unix...); by default they are left out and counted per family in the exit summary
    #[arg(long, help_heading = "Filters")]
    pub non_ip: bool,
}

/// What is printed and how, shared by live runs and `replay`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ViewFlags {
    /// Production monitoring: report findings of the rules that one event decides (return values,
    /// drop reasons, resets, verdicts) as they happen, attaching only the probes they need, with no
    /// per-packet lifecycle (docs/monitor.md)
    #[arg(long, help_heading = "Modes")]
    pub monitor: bool,
    /// With --monitor: findings per second per rule at most; the rest are counted (0: no limit) [default: 10]
    #[arg(long, value_name = "N", help_heading = "Monitor")]
    pub rate_per_rule: Option<u32>,
    /// With --monitor: findings per second in all at most; the rest are counted (0: no limit) [default: 100]
    #[arg(long, value_name = "N", help_heading = "Monitor")]
    pub rate_total: Option<u32>,
    /// With --monitor: start lines with syslog priorities (<3> error, <4> warning, <6> info) for journald
    #[arg(long, help_heading = "Monitor")]
    pub journal: bool,
    /// Drop monitor: one line per dropped packet with reason and location
    #[arg(long, help_heading = "Modes")]
    pub drop: bool,
    /// With --drop: print the kernel call stack of each drop
    #[arg(long, help_heading = "Modes")]
    pub drop_stack: bool,
    /// Print every probe hit as it arrives, without per-packet contexts
    #[arg(long, help_heading = "Modes")]
    pub basic: bool,
    /// Latency mode: one line per packet (its clones included) with the time from its first matched event to its last before the free, measured in the kernel (docs/modes.md)
    #[arg(long, help_heading = "Modes")]
    pub latency: bool,
    /// Latency histogram: a log2 histogram of packet latencies kept in the kernel, printed every second, with percentiles at the end
    #[arg(long, help_heading = "Modes")]
    pub latency_summary: bool,
    /// With --latency: only packets at least this slow (microseconds)
    #[arg(long, value_name = "US", help_heading = "Latency")]
    pub min_latency: Option<u64>,
    /// Function statistics: hits per probe counted in the kernel (no event per hit), a sorted table every second and at the end
    #[arg(long, help_heading = "Modes")]
    pub func_stats: bool,
    /// TCP RTT: a log2 histogram of the kernel's smoothed RTT at every update (tcp_ack_update_rtt), printed every second, with percentiles at the end; needs kprobes or fentry (docs/modes.md)
    #[arg(long, help_heading = "Modes")]
    pub rtt: bool,
    /// TCP RTT, one line per update: the socket's addresses and ports, this ACK's sample, srtt and minrtt
    #[arg(long, help_heading = "Modes")]
    pub rtt_detail: bool,
    /// With --rtt or --rtt-detail: only updates whose new srtt is at least this (milliseconds; checked in the kernel)
    #[arg(long, value_name = "MS", help_heading = "RTT")]
    pub filter_srtt: Option<u32>,
    /// With --rtt or --rtt-detail: only updates whose minimum RTT is at least this (milliseconds; checked in the kernel)
    #[arg(long, value_name = "MS", help_heading = "RTT")]
    pub filter_minrtt: Option<u32>,
    /// Socket tracing: the socket-level probes (TCP state, congestion, retransmission, timers) on a struct sock, one line each with the socket's state, RTT, window and queue memory; the filters apply to the socket's addresses and ports
    #[arg(long, help_heading = "Modes")]
    pub sock: bool,
    /// In lifecycle modes: the time since the packet's previous event on every event line
    #[arg(long, help_heading = "Output")]
    pub latency_show: bool,
    /// In lifecycle modes: after a packet's first line, only time, probe and skb
    #[arg(long, help_heading = "Output")]
    pub tiny_show: bool,
    /// Diagnose each packet's lifecycle with the rules: findings on the event lines and an ANALYSIS RESULT
    #[arg(long, help_heading = "Diagnosis")]
    pub diag: bool,
    /// With --diag: print only packets with a warning or an error
    #[arg(long, help_heading = "Diagnosis")]
    pub diag_quiet: bool,
    /// With --diag: keep tracing after a packet with an error (default: stop after the first)
    #[arg(long, help_heading = "Diagnosis")]
    pub diag_keep: bool,
    /// With --diag or --monitor: add the rules in DIR (or a .rules file) after the built-in pack; repeatable. A rule with a built-in id replaces it
    #[arg(long = "rules", value_name = "DIR", help_heading = "Diagnosis")]
    pub rules: Vec<PathBuf>,
    /// With --diag or --monitor: do not load the built-in rule pack
    #[arg(long, help_heading = "Diagnosis")]
    pub no_default_rules: bool,
    /// With --diag or --monitor: do not load the site rules in /etc/nettrace/rules.d (loaded by default
    /// when that directory exists, after the built-in pack and before --rules)
    #[arg(long, help_heading = "Diagnosis")]
    pub no_site_rules: bool,
    /// Show function return values (fexit/kretprobe), named where their meaning is known
    #[arg(long, help_heading = "Probes")]
    pub ret: bool,
    /// Show the skb address, CPU, interface, pid, command and netns of each event
    #[arg(long, help_heading = "Output")]
    pub detail: bool,
    /// Print wall-clock date and time instead of seconds since boot
    #[arg(long, help_heading = "Output")]
    pub date: bool,
    /// Stop after N packets (lifecycle), drops (--drop) or events (--basic)
    #[arg(short = 'c', long, value_name = "N", help_heading = "Output")]
    pub count: Option<u64>,

    /// Color in text output: levels (errors red, warnings yellow) and drop reasons; auto colors on a terminal unless NO_COLOR is set
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, help_heading = "Output")]
    pub color: ColorChoice,

    /// Output format: text (the original's shapes) or JSON lines, one object per event, drop or packet (docs/json.md)
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = "Output")]
    pub output: Format,

    /// Also write the printed packets to FILE as pcapng for Wireshark or tshark: each packet's bytes at its first event and at its drop, with a comment (frame.comment) giving its path, drop reason and, with --diag or --monitor, the findings (docs/pcap.md). Lifecycle, --diag, --drop, --basic and --monitor
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub pcap: Option<PathBuf>,
    /// With --pcap or --record-bytes: bytes captured per packet at most (1-1536); only the kernel's linear part of a packet is read
    #[arg(long, value_name = "N", help_heading = "Output")]
    pub snaplen: Option<u32>,
}
