//! Which rules `--monitor` runs, and the probes it attaches for them. A
//! rule qualifies when it reports an anomaly (level warn or error), a
//! single event decides it — no `after`, `before` or `seen` — and its
//! condition pins the probes it can hold on (a probe, a group, or
//! `drop`/`free`/`clone`). Monitor mode then attaches only those probes
//! and evaluates each event alone, without lifecycles.

use super::compile::{Cond, Level, Rule};
use crate::catalogue::table::{Extra, PROBES};
use crate::rules::ast::Flag;

/// Why a rule is left out of monitor mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotMonitored {
    /// An info rule: monitor mode reports anomalies only.
    Info,
    /// It looks at the order of a packet's events.
    Order,
    /// It can hold on an event of any probe (no probe, group or drop/free/clone test).
    AnyProbe,
}

impl NotMonitored {
    pub fn reason(self) -> &'static str {
        match self {
            NotMonitored::Info => "info level",
            NotMonitored::Order => "looks at the order of events",
            NotMonitored::AnyProbe => "names no probe, group or drop/free/clone",
        }
    }
}

fn has_order(c: &Cond) -> bool {
    match c {
        Cond::Order(..) => true,
        Cond::And(v) | Cond::Or(v) => v.iter().any(has_order),
        Cond::Not(x) => has_order(x),
        _ => false,
    }
}

fn flag_probes(f: Flag) -> Vec<u32> {
    PROBES
        .iter()
        .filter(|p| match f {
            Flag::Drop => p.extra == Some(Extra::Drop),
            Flag::Free => matches!(p.extra, Some(Extra::Free | Extra::Drop)),
            Flag::Clone => p.extra == Some(Extra::Clone),
        })
        .map(|p| p.id)
        .collect()
}

/// The probes an event must come from for `c` to hold (sorted); None:
/// any probe might do.
fn probes_of(c: &Cond) -> Option<Vec<u32>> {
    match c {
        Cond::Probes(ids) => Some(ids.clone()),
        Cond::Flag(f) => Some(flag_probes(*f)),
        Cond::Const(false) => Some(Vec::new()),
        Cond::And(v) => v
            .iter()
            .filter_map(probes_of)
            .reduce(|a, b| a.into_iter().filter(|x| b.contains(x)).collect()),
        Cond::Or(v) => {
            let mut all = Vec::new();
            for x in v {
                all.extend(probes_of(x)?);
            }
            all.sort_unstable();
            all.dedup();
            Some(all)
        }
        _ => None,
    }
}

/// The probes monitor mode attaches for `rule`, or why it does not run it.
pub fn monitor_probes(rule: &Rule) -> Result<Vec<u32>, NotMonitored> {
    if rule.level < Level::Warn {
        return Err(NotMonitored::Info);
    }
    if has_order(&rule.cond) {
        return Err(NotMonitored::Order);
    }
    let mut ids = probes_of(&rule.cond).ok_or(NotMonitored::AnyProbe)?;
    ids.sort_unstable();
    Ok(ids)
}

/// The rules monitor mode runs (in evaluation order) and the probes they
/// need, plus the drop probes (drops are counted by reason and location).
pub fn plan(rules: &[Rule]) -> (Vec<Rule>, Vec<u32>) {
    let mut kept = Vec::new();
    let mut probes = flag_probes(Flag::Drop);
    for r in rules {
        if let Ok(ids) = monitor_probes(r) {
            probes.extend(ids);
            kept.push(r.clone());
        }
    }
    probes.sort_unstable();
    probes.dedup();
    (kept, probes)
}
