//! Which catalogue probes a run wants: the default set, or the groups and
//! probe names given with `-t`. Naming a group or probe explicitly includes
//! it even when it is off by default; `all` selects every probe.

use crate::catalogue::table::{group, ProbeDef, GROUPS, PROBES};

/// Resolves a `-t` list. Unknown names are an error naming them.
pub fn select(trace: Option<&str>) -> Result<Vec<&'static ProbeDef>, String> {
    let Some(list) = trace else {
        return Ok(PROBES.iter().filter(|p| p.default_on).collect());
    };
    let mut picked = vec![false; PROBES.len()];
    for token in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if token == "all" {
            picked.iter_mut().for_each(|p| *p = true);
        } else if let Some(g) = group(token) {
            for p in PROBES.iter() {
                let leaf = p.group == g.name;
                let child_of = GROUPS
                    .iter()
                    .any(|c| c.name == p.group && c.parent == Some(g.name));
                // Naming a parent keeps its default-off children off.
                if leaf || (child_of && p.default_on) {
                    picked[p.id as usize] = true;
                }
            }
        } else if let Some(p) = PROBES.iter().find(|p| p.name == token) {
            picked[p.id as usize] = true;
        } else {
            return Err(format!(
                "unknown group or probe `{token}` for -t/--trace; `nettrace -t ?` lists them"
            ));
        }
    }
    Ok(PROBES.iter().filter(|p| picked[p.id as usize]).collect())
}
