//! `nettrace generate DIR`: the man pages and the shell completions, made
//! from the clap definitions in `args.rs` (and docs/rules.md and the rule
//! pack, `manpages`), so that what a package installs says exactly what
//! `--help` and the reference say.

use super::args::Args;
use clap::CommandFactory;
use std::path::Path;

/// The files `generate` writes: (name, what).
pub const FILES: [(&str, &str); 6] = [
    ("nettrace.8", "man page"),
    ("nettrace-rules.5", "man page of the rule language"),
    (
        "nettrace-drop-reasons.7",
        "man page of the kernel's drop reasons",
    ),
    ("nettrace.bash", "bash completion"),
    ("_nettrace", "zsh completion"),
    ("nettrace.fish", "fish completion"),
];

/// Writes every file of `FILES` into `dir` (created if missing).
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    use clap_complete::Shell;
    std::fs::create_dir_all(dir)?;
    let cmd = Args::command().long_version(super::version_text());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut page)?;
    std::fs::write(dir.join(FILES[0].0), page)?;
    std::fs::write(dir.join(FILES[1].0), super::manpages::rules_page())?;
    let known: Vec<&str> = crate::vocab::drop_reasons::known().collect();
    std::fs::write(
        dir.join(FILES[2].0),
        super::manpages::drop_reasons_page(&known),
    )?;
    for (shell, (file, _)) in [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .zip(&FILES[3..])
    {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "nettrace", &mut out);
        std::fs::write(dir.join(file), out)?;
    }
    Ok(())
}

/// The `generate` subcommand: exit code 0, or 1 with the reason.
pub fn run(dir: &Path) -> i32 {
    match write_all(dir) {
        Ok(()) => {
            for (file, what) in FILES {
                eprintln!("{}: {what}", dir.join(file).display());
            }
            0
        }
        Err(e) => {
            eprintln!("nettrace: cannot write into {}: {e}", dir.display());
            1
        }
    }
}

/// `nettrace drop-reasons`: the running kernel's drop reasons (or those of
/// `--btf FILE`), each with the rule pack's explanation. Exit codes: 0, or 4
/// without BTF.
pub fn drop_reasons(btf: Option<&Path>) -> i32 {
    let btf = match crate::kernel::btf::KernelBtf::load(btf) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("nettrace: {e}");
            return crate::run::error::ExitCode::KernelLacks as i32;
        }
    };
    let reasons = btf.drop_reasons();
    if reasons.is_empty() {
        println!(
            "{} defines no drop reasons (enum skb_drop_reason came in Linux 5.17): --drop reports the drop location only",
            btf.path().display()
        );
        return 0;
    }
    let names: Vec<&str> = reasons.names().into_iter().map(|(_, n)| n).collect();
    for e in super::manpages::explain(names) {
        match e.level {
            Some(level) => println!("{} ({level})", e.reason),
            None => println!("{}", e.reason),
        }
        println!("    {}", e.message);
        if !e.advice.is_empty() {
            println!("    advice: {}", e.advice);
        }
    }
    0
}
