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

/// Why rules cannot run: a file could not be read, or the rules have
/// errors (every error diagnostic, to render).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read rules from {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the rules have errors (check them with `nettrace rules lint`):\n{}", render_errors(.0))]
    Invalid(Vec<diag::Diagnostic>),
}

fn render_errors(diags: &[diag::Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.render_text())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compiled rules ready to evaluate, with the diagnostics that did not
/// stop them (overrides of built-in rules, N0301; drop reasons the
/// checked kernel lacks, N0302).
pub struct Loaded {
    pub rules: Vec<compile::Rule>,
    pub diagnostics: Vec<diag::Diagnostic>,
}

impl Loaded {
    /// One line per rule that replaced a built-in one, for stderr.
    pub fn override_notes(&self) -> Vec<String> {
        self.diagnostics
            .iter()
            .filter(|d| d.code == diag::Code::N0301)
            .map(|d| format!("{}:{}: {}", d.file.display(), d.line, d.message))
            .collect()
    }

    /// The rules, their drop-reason names numbered as `reasons` numbers
    /// them (the kernel or the recording the events come from).
    pub fn bound_to(&self, reasons: &crate::kernel::btf::DropReasons) -> Vec<compile::Rule> {
        let mut rules = self.rules.clone();
        for r in &mut rules {
            r.cond.bind_reasons(reasons);
        }
        rules
    }
}

/// The rules of a run: the built-in pack (unless `defaults` is false) then
/// each site path, checked against the kernel's drop reasons when given.
pub fn load_for_run(
    site: &[std::path::PathBuf],
    defaults: bool,
    reasons: Option<&crate::kernel::btf::DropReasons>,
) -> Result<Loaded, LoadError> {
    let mut layers = Vec::new();
    if defaults {
        layers.push(compile::Layer::builtin());
    }
    for p in site {
        layers.push(compile::Layer::read(p).map_err(|source| LoadError::Read {
            path: p.display().to_string(),
            source,
        })?);
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
        return Err(LoadError::Invalid(
            compiled
                .diagnostics
                .into_iter()
                .filter(|d| d.severity() == diag::Severity::Error)
                .collect(),
        ));
    }
    Ok(Loaded {
        rules: compiled.rules,
        diagnostics: compiled.diagnostics,
    })
}
