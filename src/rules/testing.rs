//! Rule tests (`nettrace rules test`): each case is a recording or a
//! hand-written event list (`record::script`) with the findings it must
//! give — rule, level, count — and the rules that must not fire. Cases
//! run through the same lifecycle grouping and evaluation as a live run.

use super::compile::Rule;
use super::eval::{evaluate, RuleSet};
use super::graph::LifeGraph;
use super::root::root_cause;
use crate::kernel::btf::DropReasons;
use crate::kernel::kallsyms::Kallsyms;
use crate::lifecycle::{Context, Tracker};
use crate::record::read::{Input, ReadError, Recording};
use crate::record::script::{self, ScriptEvent};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A `.test.yaml` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    pub tests: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// Hand-written events.
    #[serde(default)]
    pub events: Option<Vec<ScriptEvent>>,
    /// A recording (`--record`), relative to the test file.
    #[serde(default)]
    pub recording: Option<PathBuf>,
    /// Findings that must appear.
    #[serde(default)]
    pub expect: Vec<Expect>,
    /// Rules that must not fire.
    #[serde(default)]
    pub absent: Vec<String>,
    /// The root cause a packet must have (`rules::root`); other packets'
    /// root causes must be this rule or one of `also`.
    #[serde(default)]
    pub root: Option<RootExpect>,
    /// Healthy traffic: no warning or error on any packet, but from the
    /// rules in `allow`.
    #[serde(default)]
    pub clean: bool,
    #[serde(default)]
    pub allow: Vec<String>,
    /// Run as though the kernel had lost events while the case's packets
    /// were traced.
    #[serde(default)]
    pub events_lost: bool,
    /// Run as though tracing had stopped while the packets were active.
    #[serde(default)]
    pub cut_short: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootExpect {
    pub rule: String,
    /// `warn` or `error` (default: not checked).
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub also: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub rule: String,
    /// `info`, `warn` or `error` (default: not checked).
    #[serde(default)]
    pub level: Option<String>,
    /// Exact number of findings (default: at least one).
    #[serde(default)]
    pub count: Option<usize>,
}

/// Why a test file cannot be read, or a case cannot run (the case itself
/// is broken, as opposed to failing).
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("{}: cannot read ({source})", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a test file: the YAML parser's message, at file:line:col when
    /// it knows where.
    #[error("{}{}: {source}", path.display(), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Yaml {
        path: PathBuf,
        at: Option<(usize, usize)>,
        source: serde_yaml::Error,
    },
    /// Hand-written events that do not build (`record::script`).
    #[error(transparent)]
    Events(#[from] script::ScriptError),
    #[error(transparent)]
    Recording(#[from] ReadError),
    #[error("give either `events` or `recording`")]
    NoEvents,
    /// A case names a rule no loaded rule has; `help` is a suggestion.
    #[error("no loaded rule has the id `{id}`{}", help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownRule { id: String, help: Option<String> },
}

/// A case's outcome: what failed (empty: passed).
pub struct CaseOutcome {
    pub name: String,
    pub failures: Vec<String>,
}

/// Reads and parses a test file; Err renders as one line with
/// file:line:col.
pub fn read_file(path: &Path) -> Result<TestFile, TestError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<TestFile, TestError> {
    serde_yaml::from_str(text).map_err(|source| TestError::Yaml {
        path: path.to_path_buf(),
        at: source.location().map(|l| (l.line(), l.column())),
        source,
    })
}

/// A case's events, grouped into finished contexts, with the kernel facts
/// they refer to: the recording's own drop-reason numbering and symbols,
/// or those the hand-written events were built with.
pub struct CaseEvents {
    pub contexts: Vec<Context>,
    pub reasons: DropReasons,
    pub kallsyms: Kallsyms,
}

/// The finished contexts of a case's events.
pub fn case_events(case: &TestCase, dir: &Path) -> Result<CaseEvents, TestError> {
    let mut tracker = Tracker::new();
    let mut contexts = Vec::new();
    let (reasons, kallsyms) = match (&case.events, &case.recording) {
        (Some(list), None) => {
            let built = script::build(list)?;
            for ev in built.events {
                contexts.extend(tracker.push(ev));
            }
            // The events written are the packets' whole lives: what is
            // still open went silent (not `cut_short`, unless the case says).
            contexts.extend(tracker.take_ready(u64::MAX));
            (built.reasons, built.kallsyms)
        }
        (None, Some(file)) => {
            let rec = Recording::open(&dir.join(file))?;
            if let Some(d) = &rec.damage {
                return Err(d.clone().into());
            }
            for input in rec.inputs()? {
                match input? {
                    Input::Event(ev) => contexts.extend(tracker.push(ev)),
                    Input::Tick(now) => contexts.extend(tracker.take_ready(now)),
                    Input::Lost { at, .. } => tracker.events_lost(at),
                    // Counters hold no packets to diagnose.
                    Input::Snapshot(_) => {}
                }
            }
            (rec.reasons, rec.kallsyms)
        }
        _ => return Err(TestError::NoEvents),
    };
    contexts.extend(tracker.drain());
    Ok(CaseEvents {
        contexts,
        reasons,
        kallsyms,
    })
}

fn level_matches(want: &str, got: &str) -> bool {
    let want = if want == "warning" { "warn" } else { want };
    want == got
}

/// Runs one case against `rules`, compiled for the drop-reason numbering
/// of the case's events (`rules_for`); Err: the case itself is broken (bad
/// events, unknown rule).
pub fn run_case(
    rules_for: &mut dyn FnMut(&DropReasons) -> std::rc::Rc<RuleSet>,
    case: &TestCase,
    dir: &Path,
) -> Result<CaseOutcome, TestError> {
    let mut input = case_events(case, dir)?;
    for ctx in &mut input.contexts {
        ctx.events_lost |= case.events_lost;
        ctx.cut_short |= case.cut_short;
    }
    let rules = rules_for(&input.reasons);
    let known: BTreeSet<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    for id in case
        .expect
        .iter()
        .map(|e| e.rule.as_str())
        .chain(case.absent.iter().map(|s| s.as_str()))
        .chain(case.allow.iter().map(|s| s.as_str()))
        .chain(case.root.iter().flat_map(|r| {
            std::iter::once(r.rule.as_str()).chain(r.also.iter().map(|s| s.as_str()))
        }))
    {
        if !known.contains(id) {
            return Err(TestError::UnknownRule {
                id: id.to_string(),
                help: super::diag::did_you_mean(id, known.iter().copied()),
            });
        }
    }
    // rule id -> levels of its findings
    let mut found: BTreeMap<&str, Vec<&'static str>> = BTreeMap::new();
    // root causes, each once: (rule id, level)
    let mut roots: Vec<(&str, &'static str)> = Vec::new();
    for ctx in &input.contexts {
        let graph = LifeGraph::of(ctx).with_symbols(&input.kallsyms);
        let findings = evaluate(&rules, &graph);
        for f in &findings {
            let r = &rules[f.rule];
            found.entry(r.id.as_str()).or_default().push(r.level.name());
        }
        if let Some(i) = root_cause(&rules, &graph, &findings) {
            let r = &rules[findings[i].rule];
            let root = (r.id.as_str(), r.level.name());
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
    }
    let mut failures = Vec::new();
    for e in &case.expect {
        let levels = found.get(e.rule.as_str()).cloned().unwrap_or_default();
        let n = levels.len();
        match e.count {
            Some(want) if n != want => failures.push(format!(
                "expected {want} finding(s) of {}, found {n}",
                e.rule
            )),
            None if n == 0 => failures.push(format!("expected {} to fire; it did not", e.rule)),
            _ => {}
        }
        if let (Some(want), Some(got)) = (&e.level, levels.first()) {
            if !level_matches(want, got) {
                failures.push(format!("expected {} at level {want}, found {got}", e.rule));
            }
        }
    }
    for id in &case.absent {
        if let Some(levels) = found.get(id.as_str()) {
            failures.push(format!(
                "expected {id} not to fire; it fired {} time(s)",
                levels.len()
            ));
        }
    }
    if let Some(want) = &case.root {
        let hit = roots.iter().any(|(id, level)| {
            *id == want.rule
                && want
                    .level
                    .as_deref()
                    .is_none_or(|w| level_matches(w, level))
        });
        if !hit {
            failures.push(format!(
                "expected {}{} as a packet's root cause",
                want.rule,
                want.level
                    .as_deref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default()
            ));
        }
        let strays: Vec<String> = roots
            .iter()
            .filter(|(id, _)| *id != want.rule && !want.also.iter().any(|a| a == id))
            .map(|(id, l)| format!("{id} ({l})"))
            .collect();
        if !strays.is_empty() {
            failures.push(format!("other packets blamed on: {}", strays.join(", ")));
        }
    }
    if case.clean {
        let alarms: Vec<String> = found
            .iter()
            .filter(|(id, levels)| {
                !case.allow.iter().any(|a| a == *id) && levels.iter().any(|l| *l != "info")
            })
            .map(|(id, l)| format!("{id} ({})", l[0]))
            .collect();
        if !alarms.is_empty() {
            failures.push(format!(
                "expected no warning or error; found {}",
                alarms.join(", ")
            ));
        }
    }
    if !failures.is_empty() {
        let all: Vec<String> = found
            .iter()
            .map(|(id, l)| format!("{id} ({} x{})", l[0], l.len()))
            .collect();
        failures.push(format!(
            "found: {}{}",
            if all.is_empty() {
                "no findings".to_string()
            } else {
                all.join(", ")
            },
            if roots.is_empty() {
                String::new()
            } else {
                format!(
                    "; root causes: {}",
                    roots
                        .iter()
                        .map(|(id, l)| format!("{id} ({l})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
    }
    Ok(CaseOutcome {
        name: case.name.clone(),
        failures,
    })
}

/// Which rules the cases fire and which they prove silent.
#[derive(Default)]
pub struct Coverage {
    pub fired: BTreeSet<String>,
    pub silent: BTreeSet<String>,
}

impl Coverage {
    pub fn add(&mut self, case: &TestCase) {
        if let Some(r) = &case.root {
            self.fired.insert(r.rule.clone());
        }
        for e in &case.expect {
            if e.count != Some(0) {
                self.fired.insert(e.rule.clone());
            } else {
                self.silent.insert(e.rule.clone());
            }
        }
        self.silent.extend(case.absent.iter().cloned());
    }

    /// Rules without a firing test, and rules without a silent one.
    pub fn missing(&self, rules: &[Rule]) -> (Vec<String>, Vec<String>) {
        let ids = rules.iter().map(|r| r.id.clone());
        let not_fired = ids.clone().filter(|id| !self.fired.contains(id)).collect();
        let not_silent = ids.filter(|id| !self.silent.contains(id)).collect();
        (not_fired, not_silent)
    }
}
