//! Which rules `--monitor` runs, and the probes it attaches for them. A
//! rule qualifies when it reports an anomaly (level warn or error), a
//! single event decides it — no `after`, `before` or `seen` — and its
//! condition pins the probes it can hold on (a probe, a group, or
//! `drop`/`free`/`clone`). Monitor mode then attaches only those probes
//! and evaluates each event alone, without lifecycles.

use super::compile::{flag_probes, Cond, Level, Rule};
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

/// The probes monitor mode attaches for `rule`, or why it does not run it.
pub fn monitor_probes(rule: &Rule) -> Result<Vec<u32>, NotMonitored> {
    if rule.level < Level::Warn {
        return Err(NotMonitored::Info);
    }
    if has_order(&rule.cond) {
        return Err(NotMonitored::Order);
    }
    rule.on_probes.clone().ok_or(NotMonitored::AnyProbe)
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
