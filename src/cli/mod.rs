//! The command line: parse flags, check them, set up the kernel side and
//! run the chosen mode. Every way the run can fail ends here as one line on
//! stderr and a documented exit code (`exit.rs`).

pub mod args;
pub mod check;
pub mod exit;
pub mod filter;
pub mod lint;
pub mod trace;

use args::Args;
use clap::Parser;
use exit::{ExitCode, Fatal};

/// Runs nettrace with the process arguments; returns the exit code.
pub fn main() -> i32 {
    let args = match Args::try_parse() {
        Ok(a) => a,
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
    if let Some(args::Command::Rules {
        action: args::RulesAction::Lint(lint),
    }) = &args.command
    {
        return lint::run(lint);
    }
    match run(&args) {
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

static LIBBPF_DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn libbpf_print(_level: libbpf_rs::PrintLevel, msg: String) {
    if LIBBPF_DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
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
    LIBBPF_DEBUG.store(args.debug, std::sync::atomic::Ordering::Relaxed);
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_print)));
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Flags are checked before anything touches the kernel.
    let filter = filter::build_filter(&filter::FilterArgs {
        saddr: args.saddr.as_deref(),
        daddr: args.daddr.as_deref(),
        addr: args.addr.as_deref(),
        sport: args.sport.as_deref(),
        dport: args.dport.as_deref(),
        port: args.port.as_deref(),
        proto: args.proto.as_deref(),
        pid: args.pid.as_deref(),
        netns: args.netns.as_deref(),
        netns_current: if args.netns_current {
            Some(filter::current_netns().map_err(Fatal::usage)?)
        } else {
            None
        },
        pkt_len: args.pkt_len.as_deref(),
        tcp_flags: args.tcp_flags.as_deref(),
    })
    .map_err(Fatal::usage)?;
    let list = args.list || args.trace.as_deref() == Some("?");
    let selection = if list {
        Vec::new()
    } else {
        crate::load::select::select(args.trace.as_deref()).map_err(Fatal::usage)?
    };
    if args.drop_stack && !args.drop {
        return Err(Fatal::usage("--drop-stack needs --drop").into());
    }
    // The blamed hook functions are shown in the analysis result only.
    if (args.diag_quiet
        || args.diag_keep
        || args.hooks
        || !args.rules.is_empty()
        || args.no_default_rules)
        && !args.diag
    {
        return Err(Fatal::usage(
            "--diag-quiet, --diag-keep, --hooks, --rules and --no-default-rules go with --diag",
        )
        .into());
    }
    if args.diag && (args.drop || args.basic) {
        return Err(Fatal::usage(
            "--diag diagnoses packet lifecycles; it does not combine with --drop or --basic",
        )
        .into());
    }
    if args.drop && args.basic {
        return Err(Fatal::usage("--drop and --basic are different modes; pick one").into());
    }
    if args.drop && (args.trace.is_some() || args.ret) && !list {
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
    if args.diag {
        // Broken rules stop the run before anything touches the kernel.
        crate::rules::load_for_run(&args.rules, !args.no_default_rules, None)
            .map_err(Fatal::usage)?;
    }
    if !args.drop && !args.basic && filter.flags == 0 {
        log::warn!(
            "no filter: every packet's lifecycle is traced, which costs CPU on a busy host (narrow it with -p, --addr, --port...)"
        );
    }
    trace::run(args, filter, selection)
}
