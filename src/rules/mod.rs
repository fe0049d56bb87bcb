//! The rule language: rule files are parsed (`ast`), checked and compiled
//! against the catalogue and the kernel's drop reasons (`compile`, which
//! also produces every lint diagnostic), and evaluated over a packet's
//! lifecycle graph (`graph`, `eval`). Diagnoses are data in `rules.d/`;
//! nothing here knows a particular diagnosis.

pub mod ast;
pub mod compile;
pub mod diag;
pub mod eval;
pub mod graph;
pub mod monitor;
pub mod root;
pub mod testing;

/// The default pack, `rules.d/*.rules`, embedded at build time (sorted by
/// file name, the order rules are evaluated in).
pub static BUILTIN_RULES: std::sync::LazyLock<Vec<(&'static str, &'static str)>> =
    std::sync::LazyLock::new(|| {
        static DIR: include_dir::Dir<'_> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/rules.d");
        let mut files: Vec<(&str, &str)> = DIR
            .files()
            .filter(|f| f.path().extension().is_some_and(|e| e == "rules"))
            .filter_map(|f| Some((f.path().file_name()?.to_str()?, f.contents_utf8()?)))
            .collect();
        files.sort();
        files
    });

/// The rules of a `--diag` run: the built-in pack (unless `defaults` is
/// false) then each site path, checked against the kernel's drop reasons
/// when given. Err holds the rendered errors (a run must not start);
/// Ok holds the rules and one-line notes for stderr (overrides).
pub fn load_for_run(
    site: &[std::path::PathBuf],
    defaults: bool,
    reasons: Option<&crate::kernel::btf::DropReasons>,
) -> Result<(Vec<compile::Rule>, Vec<String>), String> {
    let mut layers = Vec::new();
    if defaults {
        layers.push(compile::Layer::builtin());
    }
    for p in site {
        layers.push(
            compile::Layer::read(p)
                .map_err(|e| format!("cannot read rules from {}: {e}", p.display()))?,
        );
    }
    let empty = crate::kernel::btf::DropReasons::default();
    let compiled = compile::compile(
        &layers,
        &compile::KernelFacts {
            reasons: reasons.unwrap_or(&empty),
            have_kernel: reasons.is_some(),
        },
    );
    if compiled.has_errors() {
        let errors: Vec<String> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.severity == diag::Severity::Error)
            .map(|d| d.render_text())
            .collect();
        return Err(format!(
            "the rules have errors (check them with `nettrace rules lint`):\n{}",
            errors.join("\n")
        ));
    }
    let notes = compiled
        .diagnostics
        .iter()
        .filter(|d| d.code == diag::Code::N0301)
        .map(|d| format!("{}:{}: {}", d.file.display(), d.line, d.message))
        .collect();
    Ok((compiled.rules, notes))
}
