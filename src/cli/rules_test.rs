//! `nettrace rules test [PATH...]`: runs rule test files (`*.test.yaml`)
//! against the built-in pack plus the rule files found with them, and
//! reports each failing case with what was expected and what was found.

use super::args::RulesTestArgs;
use crate::rules::compile::Layer;
use crate::rules::eval::RuleSet;
use crate::rules::testing::{self, Coverage, TestFile};
use anyhow::{anyhow, bail, Context as _};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The built-in pack's tests (rules.d/tests), embedded at build time.
static BUILTIN_TESTS: include_dir::Dir<'_> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/rules.d/tests");

const TEST_SUFFIX: &str = ".test.yaml";

/// Test files and rule layers named by the paths: a directory gives its
/// `.test.yaml` files (and those of its `tests/`), and its `.rules` files.
fn collect(paths: &[PathBuf]) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut tests = Vec::new();
    let mut rule_dirs = Vec::new();
    for p in paths {
        if p.is_dir() {
            for dir in [p.clone(), p.join("tests")] {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.to_string_lossy().ends_with(TEST_SUFFIX))
                    .collect();
                found.sort();
                tests.extend(found);
            }
            let has_rules = std::fs::read_dir(p)
                .map_err(|e| anyhow!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok())
                .any(|e| e.path().extension().is_some_and(|x| x == "rules"));
            if has_rules {
                rule_dirs.push(p.clone());
            }
        } else if p.to_string_lossy().ends_with(TEST_SUFFIX) {
            tests.push(p.clone());
        } else if p.extension().is_some_and(|x| x == "rules") {
            rule_dirs.push(p.clone());
        } else if !p.exists() {
            bail!("{}: no such file or directory", p.display());
        } else {
            bail!(
                "{}: neither a directory, a .rules file nor a {TEST_SUFFIX} file",
                p.display()
            );
        }
    }
    Ok((tests, rule_dirs))
}

/// Whether a rule directory is the built-in pack itself (`rules.d` of
/// this build): it is already loaded, not an override.
fn is_builtin_pack(dir: &Path) -> bool {
    let Ok(layer) = Layer::read(dir) else {
        return false;
    };
    let builtin = Layer::builtin();
    layer.files.len() == builtin.files.len()
        && layer
            .files
            .iter()
            .zip(&builtin.files)
            .all(|(a, b)| a.text == b.text)
}

pub fn run(args: &RulesTestArgs) -> i32 {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nettrace: {e}");
            2
        }
    }
}

fn run_inner(args: &RulesTestArgs) -> anyhow::Result<i32> {
    let (mut files, mut rule_dirs): (Vec<(PathBuf, TestFile)>, Vec<PathBuf>) =
        (Vec::new(), Vec::new());
    if args.paths.is_empty() {
        let mut embedded: Vec<_> = BUILTIN_TESTS
            .files()
            .filter(|f| f.path().to_string_lossy().ends_with(TEST_SUFFIX))
            .collect();
        embedded.sort_by_key(|f| f.path());
        for f in embedded {
            let path = Path::new("rules.d/tests").join(f.path());
            let text = f
                .contents_utf8()
                .with_context(|| format!("{}: not UTF-8", path.display()))?;
            files.push((path.clone(), testing::parse(&path, text)?));
        }
    } else {
        let (tests, dirs) = collect(&args.paths)?;
        if tests.is_empty() {
            bail!(
                "no {TEST_SUFFIX} files in {}",
                args.paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for t in tests {
            let parsed = testing::read_file(&t)?;
            files.push((t, parsed));
        }
        rule_dirs = dirs
            .into_iter()
            .filter(|d| args.no_default_rules || !is_builtin_pack(d))
            .collect();
    }
    // Rules compile to drop-reason numbers, and kernels number reasons
    // differently: each case's events get the rules compiled for the
    // numbering they carry (a recording's own table, or the one
    // hand-written events are built with), each numbering once.
    let reasons = crate::record::script::known_reasons();
    let loaded = crate::rules::load_for_run(&rule_dirs, !args.no_default_rules, Some(&reasons))?;
    for n in loaded.override_notes() {
        eprintln!("note: {n}");
    }
    let rules = crate::rules::eval::RuleSet::new(loaded.bound_to(&reasons));
    let mut compiled: Vec<(crate::kernel::btf::DropReasons, Rc<RuleSet>)> =
        vec![(reasons, Rc::new(rules))];
    let mut rules_for = |reasons: &crate::kernel::btf::DropReasons| {
        if let Some((_, r)) = compiled.iter().find(|(known, _)| known == reasons) {
            return Rc::clone(r);
        }
        let rules = Rc::new(RuleSet::new(loaded.bound_to(reasons)));
        compiled.push((reasons.clone(), Rc::clone(&rules)));
        rules
    };
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    let mut coverage = Coverage::default();
    for (path, file) in &files {
        let dir = path.parent().unwrap_or(Path::new("."));
        for case in &file.tests {
            coverage.add(case);
            match testing::run_case(&mut rules_for, case, dir) {
                Ok(o) if o.failures.is_empty() => passed += 1,
                Ok(o) => {
                    failed += 1;
                    println!("FAIL {}: {}", path.display(), o.name);
                    for f in &o.failures {
                        println!("    {f}");
                    }
                }
                Err(e) => {
                    broken += 1;
                    println!("BROKEN {}: {}: {e}", path.display(), case.name);
                }
            }
        }
    }
    let rules = Rc::clone(&compiled[0].1);
    let (not_fired, not_silent) = coverage.missing(&rules);
    let uncovered = !not_fired.is_empty() || !not_silent.is_empty();
    if args.require_coverage && uncovered {
        if !not_fired.is_empty() {
            println!("no test fires: {}", not_fired.join(", "));
        }
        if !not_silent.is_empty() {
            println!("no test proves silent: {}", not_silent.join(", "));
        }
    }
    println!(
        "{passed} passed, {failed} failed, {broken} broken ({} files, {} rules; {} rules without a firing test, {} without a silent one)",
        files.len(),
        rules.len(),
        not_fired.len(),
        not_silent.len()
    );
    Ok(if broken > 0 {
        2
    } else if failed > 0 || (args.require_coverage && uncovered) {
        1
    } else {
        0
    })
}
