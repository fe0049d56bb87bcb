//! The command line: parse flags, build the validated `RunSpec`
//! (`spec.rs`), hand it to `run`, and turn every way a run can fail into
//! one line on stderr and a documented exit code (`run::error`).

pub mod args;
pub mod filter;
pub mod generate;
pub mod lint;
pub mod manpages;
pub mod rules_test;
pub mod spec;

use crate::run::error::{ExitCode, Fatal};
use args::Args;

/// `--version`: the release, the commit, the libbpf linked in, and the
/// BPF objects' fingerprint (of their sources and compiler: two binaries
/// with the same one load the same programs).
fn long_version() -> String {
    // SAFETY: plain getters of constants compiled into libbpf.
    let (major, minor) = unsafe {
        (
            libbpf_sys::libbpf_major_version(),
            libbpf_sys::libbpf_minor_version(),
        )
    };
    format!(
        "{}\ngit revision: {}\nlibbpf: {major}.{minor}\nBPF objects: {} ({} probes)",
        env!("CARGO_PKG_VERSION"),
        env!("NETTRACE_GIT_REV"),
        env!("NETTRACE_BPF_FINGERPRINT"),
        crate::catalogue::table::PROBES.len()
    )
}

/// `long_version()`, made once for clap (which keeps `&'static str`s).
pub fn version_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(long_version)
}

/// Runs nettrace with the process arguments; returns the exit code.
pub fn main() -> i32 {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Args::command()
        .long_version(version_text())
        .try_get_matches()
        .and_then(|m| Args::from_arg_matches(&m).map(|a| (a, m)));
    let args = match parsed {
        Ok((a, m)) => {
            if let Some(flag) = live_flag_before_subcommand(&a, &m) {
                eprintln!(
                    "nettrace: `{flag}` before the subcommand applies to live runs only; give the subcommand's flags after it (see nettrace help {})",
                    m.subcommand_name().unwrap_or("")
                );
                return ExitCode::Usage as i32;
            }
            a
        }
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return 0;
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!(
                "nettrace: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::Usage as i32;
        }
    };
    init_logging(&args);
    let result = match &args.command {
        Some(args::Command::Rules {
            action: args::RulesAction::Lint(lint),
        }) => return lint::run(lint),
        Some(args::Command::Rules {
            action: args::RulesAction::Test(t),
        }) => return rules_test::run(t),
        Some(args::Command::Generate { dir }) => return generate::run(dir),
        Some(args::Command::DropReasons { btf }) => return generate::drop_reasons(btf.as_deref()),
        Some(args::Command::Replay(r)) => {
            spec::replay(r).and_then(|spec| crate::run::replay::run(&spec, &r.file))
        }
        None => run(&args),
    };
    match result {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("nettrace: {}", f.message);
            f.code as i32
        }
    }
}

/// A top-level flag other than -v/--debug given with a subcommand, which
/// would otherwise be silently ignored (`nettrace --diag replay FILE`).
fn live_flag_before_subcommand(args: &Args, m: &clap::ArgMatches) -> Option<String> {
    args.command.as_ref()?;
    m.ids()
        .map(|id| id.as_str())
        .filter(|id| !matches!(*id, "verbose" | "debug"))
        .find(|id| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| format!("--{}", id.replace('_', "-")))
}

/// Which of libbpf's messages --debug shows: 0 none, 1 its warnings and
/// notes (a refused program's verifier log among them), 2 also its debug
/// chatter (NETTRACE_LIBBPF_DEBUG=1, or NETTRACE_VERIFIER_STATS=1 whose
/// statistics come at that level).
static LIBBPF_LOG: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    let shown = match level {
        libbpf_rs::PrintLevel::Debug => 2,
        _ => 1,
    };
    if LIBBPF_LOG.load(std::sync::atomic::Ordering::Relaxed) >= shown {
        if crate::load::VERIFIER_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
            let msg = msg.trim_end();
            eprintln!("libbpf: {}", msg.strip_prefix("libbpf: ").unwrap_or(msg));
        } else {
            log::debug!("libbpf: {}", msg.trim_end());
        }
    }
}

fn init_logging(args: &Args) {
    let level = if args.debug {
        log::LevelFilter::Debug
    } else if args.verbose {
        log::LevelFilter::Info
    } else {
        log::LevelFilter::Warn
    };
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .format_target(false)
        .target(env_logger::Target::Stderr)
        .try_init();
    // libbpf explains refused programs at length; keep that for --debug.
    // Its debug level (every CO-RE relocation: thousands of lines) only on
    // request: formatting it cost start-up seconds under emulation, and
    // the start-up benchmarks run with --debug for their phase times.
    let chatter = ["NETTRACE_LIBBPF_DEBUG", "NETTRACE_VERIFIER_STATS"]
        .into_iter()
        .any(crate::load::env_switch);
    let libbpf_log = match (args.debug || args.bpf_debug, chatter) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 2,
    };
    LIBBPF_LOG.store(libbpf_log, std::sync::atomic::Ordering::Relaxed);
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_print)));
}

fn run(args: &Args) -> Result<(), Fatal> {
    if args.list || args.trace.as_deref() == Some("?") {
        return crate::run::check::list(&spec::probes_to_report(args));
    }
    // Flags are checked before anything touches the kernel.
    let spec = spec::live(args)?;
    if args.check {
        if let Some(flag) = [
            (args.view.pcap.is_some(), "--pcap"),
            (args.record.is_some(), "--record"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
        {
            return Err(Fatal::usage(format!(
                "--check traces nothing, so {flag} would write nothing: drop one of them"
            )));
        }
        return crate::run::check::check(&spec.probes);
    }
    // Broken rules stop the run before anything touches the kernel.
    let rules = crate::run::session::load_rules(&spec.mode)?;
    if spec.mode.lifecycle() && spec.filter.flags & crate::abi::filter_flags::NARROWING == 0 {
        log::warn!(
            "no filter: every packet's lifecycle is traced, which costs CPU on a busy host (narrow it with -p, --addr, --port...)"
        );
    }
    crate::run::session::run(&spec, rules.as_ref())
}
