//! `--check` (what this kernel supports, and how many probes per group
//! would attach and how) and `--list` / `-t ?` (the group tree).

use super::error::{ExitCode, Fatal};
use super::kernel::{open_kernel, Exits};
use crate::catalogue::table::{GROUPS, PROBES};
use crate::load::attach::PlannedProbe;
use crate::load::plan::{Decision, Mechanism};
use crate::spec::ProbeSpec;
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn yes_no(r: &crate::kernel::caps::Support) -> String {
    match r {
        Ok(()) => "yes".into(),
        Err(e) => format!("no ({e})"),
    }
}

/// Group label `parent/child` in tree order.
fn group_label(name: &str) -> String {
    match GROUPS
        .iter()
        .find(|g| g.name == name)
        .and_then(|g| g.parent)
    {
        Some(parent) => format!("{parent}/{name}"),
        None => name.to_string(),
    }
}

fn mech_counts(planned: &[&PlannedProbe]) -> (BTreeMap<Mechanism, usize>, usize) {
    let mut by = BTreeMap::new();
    let mut skipped = 0;
    for p in planned {
        match &p.decision {
            Decision::Attach { mechanism, .. } => *by.entry(*mechanism).or_default() += 1,
            Decision::Skip(_) => skipped += 1,
        }
    }
    (by, skipped)
}

fn fmt_counts(by: &BTreeMap<Mechanism, usize>) -> String {
    if by.is_empty() {
        return "-".into();
    }
    by.iter()
        .map(|(m, n)| format!("{m}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders the capability report; returns it and whether nettrace can run.
pub fn check_report(probes: &ProbeSpec) -> Result<(String, bool), Fatal> {
    let kernel = open_kernel(probes.btf.as_deref(), crate::kernel::caps::Wanted::ALL)?;
    let caps = &kernel.caps;
    let mut s = String::new();
    let _ = writeln!(s, "kernel:        {}", caps.release);
    let _ = writeln!(s, "BTF:           yes ({})", kernel.btf.path().display());
    let _ = writeln!(s, "fentry:        {}", yes_no(&caps.fentry));
    let _ = writeln!(s, "kprobe:        {}", yes_no(&caps.kprobe));
    let _ = writeln!(
        s,
        "kprobe.multi:  {}",
        if kernel.kprobe_multi() {
            "yes (fprobe: all functions in one link)"
        } else if caps.kprobe.is_ok() {
            "no (kernel without fprobe: one link per function)"
        } else {
            "no"
        }
    );
    let _ = writeln!(s, "tp_btf:        {}", yes_no(&caps.tp_btf));
    let _ = writeln!(s, "raw_tp:        {}", yes_no(&caps.raw_tp));
    let _ = writeln!(s, "ring buffer:   {}", yes_no(&caps.ringbuf));
    let _ = writeln!(
        s,
        "drop reasons:  {}",
        if caps.drop_reasons == 0 {
            "none (kernel before 5.17: drops carry no reason)".to_string()
        } else {
            format!("{} (enum skb_drop_reason)", caps.drop_reasons)
        }
    );
    let _ = writeln!(
        s,
        "kallsyms:      {}",
        if kernel.kallsyms().addresses_visible() {
            format!("{} functions, addresses visible", kernel.kallsyms().len())
        } else {
            "addresses hidden: locations print as raw addresses".into()
        }
    );
    let all: Vec<_> = PROBES.iter().collect();
    let planned = kernel.plan(
        &all,
        probes.probe_mode,
        probes.tp_mode,
        &Exits {
            all: true,
            lifecycle: true,
            tested: Vec::new(),
        },
    );
    let _ = writeln!(
        s,
        "probe mode:    {:?} (functions), {:?} (tracepoints)",
        probes.probe_mode, probes.tp_mode
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "{:<26} {:>10}   how", "group", "attachable");
    let mut leaves: Vec<&str> = Vec::new();
    for g in GROUPS {
        if !GROUPS.iter().any(|c| c.parent == Some(g.name)) {
            leaves.push(g.name);
        }
    }
    for leaf in leaves {
        let in_group: Vec<&PlannedProbe> =
            planned.iter().filter(|p| p.probe.group == leaf).collect();
        if in_group.is_empty() {
            continue;
        }
        let (by, _) = mech_counts(&in_group);
        let n: usize = by.values().sum();
        let _ = writeln!(
            s,
            "{:<26} {:>10}   {}",
            group_label(leaf),
            format!("{n}/{}", in_group.len()),
            fmt_counts(&by)
        );
    }
    let everything: Vec<&PlannedProbe> = planned.iter().collect();
    let (by, skipped) = mech_counts(&everything);
    let n: usize = by.values().sum();
    let _ = writeln!(
        s,
        "\ntotal: {n} of {} probes attachable ({}); {skipped} not attachable on this kernel",
        PROBES.len(),
        fmt_counts(&by)
    );
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for p in &planned {
        if let Decision::Skip(r) = &p.decision {
            *reasons.entry(r.to_string()).or_default() += 1;
        }
    }
    for (why, count) in reasons {
        let _ = writeln!(s, "  {count:>4} skipped: {why}");
    }
    let can_run =
        caps.tp_btf.is_ok() || caps.raw_tp.is_ok() || caps.fentry.is_ok() || caps.kprobe.is_ok();
    Ok((s, can_run && n > 0))
}

pub fn check(probes: &ProbeSpec) -> Result<(), Fatal> {
    let (report, can_run) = check_report(probes)?;
    print!("{report}");
    if !can_run {
        return Err(Fatal::new(
            ExitCode::KernelLacks,
            "nettrace cannot attach any probe on this kernel",
        ));
    }
    Ok(())
}

/// `--list` / `-t ?`: the group tree and probes. With privileges, each
/// probe also says how it would attach here, or why not.
pub fn list(probes: &ProbeSpec) -> Result<(), Fatal> {
    let kernel = if crate::kernel::caps::privileged() {
        open_kernel(
            probes.btf.as_deref(),
            crate::kernel::caps::Wanted::for_run(
                probes.probe_mode == crate::load::plan::ProbeMode::Fentry,
            )
            .tested(),
        )
        .ok()
    } else {
        None
    };
    let all: Vec<_> = PROBES.iter().collect();
    let planned = kernel
        .as_ref()
        .map(|k| k.plan(&all, probes.probe_mode, probes.tp_mode, &Exits::default()));
    let mut s = String::new();
    for g in GROUPS.iter().filter(|g| g.parent.is_none()) {
        let _ = writeln!(s, "{}: {}", g.name, g.description);
        let children: Vec<_> = GROUPS.iter().filter(|c| c.parent == Some(g.name)).collect();
        let leaves = if children.is_empty() {
            vec![g]
        } else {
            children
        };
        for leaf in leaves {
            if leaf.name != g.name {
                let off = if leaf.default_on {
                    ""
                } else {
                    " [off by default]"
                };
                let _ = writeln!(s, "  {}: {}{off}", leaf.name, leaf.description);
            }
            for p in PROBES.iter().filter(|p| p.group == leaf.name) {
                let off = if p.default_on {
                    ""
                } else {
                    " [off by default]"
                };
                let how = match planned.as_ref().map(|pl| &pl[p.id as usize].decision) {
                    Some(Decision::Attach {
                        mechanism, target, ..
                    }) if target != p.name => {
                        format!(" ({mechanism}: {target})")
                    }
                    Some(Decision::Attach { mechanism, .. }) => format!(" ({mechanism})"),
                    Some(Decision::Skip(r)) => format!(" (not here: {r})"),
                    None => String::new(),
                };
                let kind = if p.is_tracepoint() { "tracepoint " } else { "" };
                let _ = writeln!(s, "      {kind}{}{off}{how}", p.name);
            }
        }
    }
    if planned.is_none() {
        let _ = writeln!(s, "\n(run as root to see what this kernel can attach)");
    }
    print!("{s}");
    Ok(())
}
