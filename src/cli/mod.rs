//! The command line: parse flags, check them, set up the kernel side and
//! run the chosen mode. Every way the run can fail ends here as one line on
//! stderr and a documented exit code (`exit.rs`).

pub mod args;
pub mod check;
pub mod exit;
pub mod filter;
pub mod lint;
pub mod replay;
pub mod rules_test;
pub mod trace;

use args::Args;
use exit::{ExitCode, Fatal};

/// Runs nettrace with the process arguments; returns the exit code.
pub fn main() -> i32 {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Args::command()
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
        Some(args::Command::Replay(r)) => replay::run(r),
        None => run(&args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => match e.downcast::<Fatal>() {
            Ok(f) => {
                eprintln!("nettrace: {}", f.message);
                f.code as i32
            }
            Err(e) => {
                eprintln!("nettrace: {e:#}");
                ExitCode::Runtime as i32
            }
        },
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
        log::debug!("libbpf: {}", msg.trim_end());
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
    let libbpf_log = match (args.debug, chatter) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 2,
    };
    LIBBPF_LOG.store(libbpf_log, std::sync::atomic::Ordering::Relaxed);
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_print)));
}

/// The rules of a `--diag` or `--monitor` run (none otherwise), checked
/// against the drop reasons of the kernel the events come from; overrides
/// of built-in rules are noted on stderr.
pub fn view_rules(
    view: &args::ViewFlags,
    reasons: &crate::kernel::btf::DropReasons,
) -> Result<Vec<crate::rules::compile::Rule>, Fatal> {
    if !view.diag && !view.monitor {
        return Ok(Vec::new());
    }
    let (rules, notes) =
        crate::rules::load_for_run(&view.rules, !view.no_default_rules, Some(reasons))
            .map_err(Fatal::usage)?;
    for n in notes {
        log::warn!("{n}");
    }
    Ok(rules)
}

/// Flag combinations of what is printed, for live runs and replays.
pub fn check_view(view: &args::ViewFlags, hooks: bool) -> Result<(), Fatal> {
    if view.drop_stack && !view.drop {
        return Err(Fatal::usage("--drop-stack needs --drop"));
    }
    // The blamed hook functions are shown in the analysis result only.
    if (view.diag_quiet
        || view.diag_keep
        || hooks
        || !view.rules.is_empty()
        || view.no_default_rules)
        && !view.diag
    {
        return Err(Fatal::usage(
            "--diag-quiet, --diag-keep, --hooks, --rules and --no-default-rules go with --diag",
        ));
    }
    if view.diag && (view.drop || view.basic) {
        return Err(Fatal::usage(
            "--diag diagnoses packet lifecycles; it does not combine with --drop or --basic",
        ));
    }
    if view.drop && view.basic {
        return Err(Fatal::usage(
            "--drop and --basic are different modes; pick one",
        ));
    }
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Flags are checked before anything touches the kernel.
    let filter = args.filters.to_filter().map_err(Fatal::usage)?;
    let list = args.list || args.trace.as_deref() == Some("?");
    let selection = if list {
        Vec::new()
    } else {
        crate::load::select::select(args.trace.as_deref()).map_err(Fatal::usage)?
    };
    check_view(&args.view, args.hooks)?;
    if args.metrics.is_some() && !args.view.monitor {
        return Err(Fatal::usage("--metrics goes with --monitor").into());
    }
    if args.view.monitor && (args.trace.is_some() || args.view.ret) && !list {
        return Err(Fatal::usage(
            "--monitor attaches the probes its rules need; -t and --ret apply to tracing modes",
        )
        .into());
    }
    if args.view.drop && (args.trace.is_some() || args.view.ret) && !list {
        return Err(Fatal::usage(
            "--drop watches the kfree_skb tracepoint only; -t and --ret apply to tracing modes",
        )
        .into());
    }
    if list {
        return check::list(args);
    }
    if args.check {
        return check::check(args);
    }
    if args.view.diag || args.view.monitor {
        // Broken rules stop the run before anything touches the kernel.
        crate::rules::load_for_run(&args.view.rules, !args.view.no_default_rules, None)
            .map_err(Fatal::usage)?;
    }
    if !args.view.drop && !args.view.basic && !args.view.monitor && filter.flags == 0 {
        log::warn!(
            "no filter: every packet's lifecycle is traced, which costs CPU on a busy host (narrow it with -p, --addr, --port...)"
        );
    }
    trace::run(args, filter, selection)
}
