//! Which rules `--monitor` runs, and the probes it attaches for them. A
//! rule qualifies when it reports an anomaly (level warn or error), a
//! single event decides it — no `after`, `before` or `seen` — and its
//! condition pins the probes it can hold on (a probe, a group, or
//! `drop`/`free`/`clone`). Monitor mode then attaches only those probes
//! and evaluates each event alone, without lifecycles.

use super::compile::{flag_probes, Cond, Level, Rule};
use crate::catalogue::table::{RetKind, PROBES};
use crate::events::{flags, Event};
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

/// The return values the kernel can keep to itself in monitor mode: per
/// probe with an exit, a bit for each value 0..=63 on which none of
/// `rules` can hold, whatever else the event carries. An exit with such a
/// value (0, NF_ACCEPT, XDP_PASS: the normal outcome of most calls) is
/// dropped in the kernel instead of crossing the ring buffer to be
/// evaluated and found unremarkable. Only probes with a non-zero mask are
/// listed.
pub fn quiet_returns(rules: &[Rule], probes: &[u32]) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for &probe in probes {
        if PROBES
            .get(probe as usize)
            .is_none_or(|p| p.ret == RetKind::None)
        {
            continue;
        }
        let mut mask = 0u64;
        for v in 0..64i64 {
            let ev = exit_event(probe, v);
            let reportable = rules
                .iter()
                .any(|r| super::eval::decided_by_ret(&r.cond, &ev) != Some(false));
            if !reportable {
                mask |= 1 << v;
            }
        }
        if mask != 0 {
            out.push((probe, mask));
        }
    }
    out
}

/// An exit event of `probe` returning `ret`, and nothing else known.
fn exit_event(probe: u32, ret: i64) -> Event {
    Event {
        flags: flags::RET,
        ret: Some(ret),
        ..Event::new(0, 0, probe)
    }
}
