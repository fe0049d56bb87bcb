//! `nettrace generate DIR`: the man page and the shell completions, made
//! from the clap definitions in `args.rs`, so that what a package installs
//! says exactly what `--help` says.

use super::args::Args;
use clap::CommandFactory;
use std::path::Path;

/// The files `generate` writes: (name, what).
pub const FILES: [(&str, &str); 4] = [
    ("nettrace.8", "man page"),
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
    for (shell, (file, _)) in [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .zip(&FILES[1..])
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
