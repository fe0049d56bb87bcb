//! The rule language: rule files are parsed (`ast`), checked and compiled
//! against the catalogue and the kernel's drop reasons (`compile`, which
//! also produces every lint diagnostic), and evaluated over a packet's
//! lifecycle graph (`graph`, `eval`). Diagnoses are data in `rules.d/`;
//! nothing here knows a particular diagnosis.

pub mod ast;
pub mod compile;
pub mod diag;

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
