//! `nettrace rules lint`: check rule files as CI would, with no root and
//! no BPF. Exit 0 clean, 1 errors (or warnings with --deny-warnings), 2
//! usage or I/O error.

use super::args::{LintArgs, LintFormat};
use crate::kernel::btf::{DropReasons, KernelBtf};
use crate::rules::compile::{compile, KernelFacts, Layer};
use crate::rules::diag::{self, Code};

pub fn run(args: &LintArgs) -> i32 {
    if args.explain {
        for code in Code::ALL {
            println!(
                "{code}  {:<7}  {}",
                code.severity().as_str(),
                code.meaning()
            );
        }
        return 0;
    }
    let mut given = Vec::new();
    for p in &args.paths {
        match Layer::read(p) {
            Ok(l) if l.files.is_empty() => {
                eprintln!("nettrace: no .rules files in {}", p.display());
                return 2;
            }
            Ok(l) => given.push(l),
            Err(e) => {
                eprintln!("nettrace: cannot read rules: {e}");
                return 2;
            }
        }
    }
    let builtin = Layer::builtin();
    // Linting the pack itself (rules.d) must not read as overriding it.
    let is_pack = given
        .iter()
        .flat_map(|l| &l.files)
        .any(|f| builtin.files.iter().any(|b| b.text == f.text));
    let report_builtin = given.is_empty();
    let mut layers = Vec::new();
    if report_builtin || (!args.no_default_rules && !is_pack) {
        layers.push(builtin);
    }
    let first_reported = if report_builtin { 0 } else { layers.len() };
    layers.extend(given);
    let reported: Vec<std::path::PathBuf> = layers[first_reported..]
        .iter()
        .flat_map(|l| l.files.iter().map(|f| f.path.clone()))
        .collect();

    let (reasons, have_kernel) = match kernel_reasons(args) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("nettrace: {msg}");
            return 2;
        }
    };
    let compiled = compile(
        &layers,
        &KernelFacts {
            reasons: &reasons,
            have_kernel,
        },
    );
    let mut diags: Vec<_> = compiled
        .diagnostics
        .into_iter()
        .filter(|d| reported.contains(&d.file))
        .collect();
    diags.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    let rules: usize = reported
        .iter()
        .filter_map(|p| compiled.parsed_per_file.get(p))
        .sum();
    let (errors, warnings) = diag::counts(&diags);
    match args.format {
        LintFormat::Text => {
            for d in &diags {
                println!("{}", d.render_text());
            }
            println!(
                "{} error{}, {} warning{} in {} file{} ({} rules)",
                errors,
                if errors == 1 { "" } else { "s" },
                warnings,
                if warnings == 1 { "" } else { "s" },
                reported.len(),
                if reported.len() == 1 { "" } else { "s" },
                rules
            );
            // Which of the reported rules --monitor runs, and why not the others.
            let mine: Vec<_> = compiled
                .rules
                .iter()
                .filter(|r| reported.contains(&r.file))
                .collect();
            use crate::rules::monitor::{monitor_probes, NotMonitored};
            let left_out: Vec<(&str, NotMonitored)> = mine
                .iter()
                .filter_map(|r| monitor_probes(r).err().map(|why| (r.id.as_str(), why)))
                .collect();
            let info = left_out
                .iter()
                .filter(|(_, w)| *w == NotMonitored::Info)
                .count();
            let others: Vec<String> = left_out
                .iter()
                .filter(|(_, w)| *w != NotMonitored::Info)
                .map(|(id, why)| format!("{id}: {}", why.reason()))
                .collect();
            println!(
                "--monitor runs {} of these {} rules ({info} info rules left out{}{})",
                mine.len() - left_out.len(),
                mine.len(),
                if others.is_empty() { "" } else { "; also " },
                others.join(", ")
            );
        }
        LintFormat::Json => println!("{}", diag::render_json(&diags, reported.len(), rules)),
        LintFormat::Sarif => println!("{}", diag::render_sarif(&diags)),
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        1
    } else {
        0
    }
}

/// Drop reasons of `--btf FILE`, else of the running kernel when its BTF
/// is readable, else none (names are then checked against the kernels
/// nettrace knows).
fn kernel_reasons(args: &LintArgs) -> anyhow::Result<(DropReasons, bool)> {
    match &args.btf {
        Some(p) => KernelBtf::load(Some(p))
            .map(|b| (b.drop_reasons(), true))
            .map_err(|e| anyhow::anyhow!("--btf {}: {e}", p.display())),
        None => Ok(match KernelBtf::load(None) {
            Ok(b) => (b.drop_reasons(), true),
            Err(_) => (DropReasons::default(), false),
        }),
    }
}
