//! Analyses across rules: a rule shadowed by an earlier one with the same
//! condition, `explains` patterns that cover no rule, conditions that can
//! never hold, and the probes whose return value some rule tests.

use super::*;
use crate::rules::diag::Code;

/// W0204: an `explains` pattern that covers no loaded rule (a typo, or a
/// rule of a pack that is not loaded).
pub(super) fn explained_ids(out: &mut Compiled, layers: &[Layer]) {
    let mut diags = Vec::new();
    for r in &out.rules {
        for p in &r.explains {
            let covers = out
                .rules
                .iter()
                .any(|o| o.id != r.id && pattern_covers(&p.value, &o.id));
            if covers {
                continue;
            }
            let Some(file) = layers
                .iter()
                .flat_map(|l| &l.files)
                .find(|f| f.path == r.file)
            else {
                continue;
            };
            let help = did_you_mean(&p.value, out.rules.iter().map(|o| o.id.as_str()))
                .or_else(|| Some("name rule ids, or a prefix ending in `*`".into()));
            diags.push(file.diagnostic(
                Code::W0204,
                p.span,
                format!("`explains {}` covers no loaded rule", p.value),
                help,
            ));
        }
    }
    out.diagnostics.extend(diags);
}

/// W0202: a rule whose condition is exactly an earlier rule's adds a
/// second finding on the same events (or, for a fallback, never fires).
pub(super) fn shadowing(out: &mut Compiled, layers: &[Layer]) {
    let mut seen: HashMap<(String, bool), usize> = HashMap::new();
    for (i, r) in out.rules.iter().enumerate() {
        let key = (format!("{:?}", r.cond), r.fallback);
        if let Some(&first) = seen.get(&key) {
            let earlier = &out.rules[first];
            if let Some(file) = layers
                .iter()
                .flat_map(|l| &l.files)
                .find(|f| f.path == r.file)
            {
                let what = if r.fallback {
                    "this fallback never fires"
                } else {
                    "both give a finding on the same events"
                };
                out.diagnostics.push(file.diagnostic(
                    Code::W0202,
                    r.id_span,
                    format!(
                        "rule `{}` has the same condition as `{}`: {what}",
                        r.id, earlier.id
                    ),
                    Some("merge them, or make one condition narrower".into()),
                ));
            }
        } else {
            seen.insert(key, i);
        }
    }
}

/// Why a condition can never hold, for the obvious cases: a conjunction
/// of disjoint probe sets, two different exact values for one field, or
/// a test together with its negation.
pub fn never_matches(c: &Cond) -> Option<String> {
    match c {
        Cond::Const(false) => Some("the condition is always false".into()),
        Cond::Probes(ids) if ids.is_empty() => Some("it names no probe".into()),
        Cond::And(items) => {
            let mut probes: Option<HashSet<u32>> = None;
            let mut exact: HashMap<Field, &Val> = HashMap::new();
            let printed: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
            for (n, item) in items.iter().enumerate() {
                if let Some(why) = never_matches(item) {
                    return Some(why);
                }
                match item {
                    Cond::Probes(ids) => {
                        let set: HashSet<u32> = ids.iter().copied().collect();
                        let merged: HashSet<u32> = match probes {
                            None => set,
                            Some(p) => p.intersection(&set).copied().collect(),
                        };
                        if merged.is_empty() {
                            return Some("its probe tests exclude each other".into());
                        }
                        probes = Some(merged);
                    }
                    Cond::Test(f, CmpOp::Eq, vals)
                        if vals.len() == 1 && !matches!(vals[0], Val::RetName(..)) =>
                    {
                        if let Some(prev) = exact.get(f) {
                            if *prev != &vals[0] {
                                return Some("one field must equal two different values".into());
                            }
                        }
                        exact.insert(*f, &vals[0]);
                    }
                    Cond::Not(inner) => {
                        let me = format!("{inner:?}");
                        if printed.iter().enumerate().any(|(m, p)| m != n && *p == me) {
                            return Some("it requires a test and its negation".into());
                        }
                    }
                    _ => {}
                }
            }
            None
        }
        Cond::Or(items) => {
            let reasons: Vec<String> = items.iter().filter_map(never_matches).collect();
            (reasons.len() == items.len()).then(|| reasons.join("; "))
        }
        Cond::Order(_, inner) => never_matches(inner),
        _ => None,
    }
}

/// Probes whose return value some rule tests: their exit programs must be
/// loaded for the rule to ever hold. (Over-approximated: every probe named
/// in a rule that tests `ret` anywhere.)
pub fn ret_tested_probes(rules: &[Rule]) -> Vec<u32> {
    fn tests_ret(c: &Cond) -> bool {
        match c {
            Cond::Test(Field::Ret, _, _) => true,
            Cond::And(v) | Cond::Or(v) => v.iter().any(tests_ret),
            Cond::Not(x) | Cond::Order(_, x) => tests_ret(x),
            _ => false,
        }
    }
    fn probes(c: &Cond, out: &mut Vec<u32>) {
        match c {
            Cond::Probes(ids) => out.extend(ids),
            Cond::And(v) | Cond::Or(v) => v.iter().for_each(|x| probes(x, out)),
            Cond::Not(x) | Cond::Order(_, x) => probes(x, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for r in rules.iter().filter(|r| tests_ret(&r.cond)) {
        probes(&r.cond, &mut out);
    }
    out.sort_unstable();
    out.dedup();
    out
}
