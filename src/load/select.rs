//! Which catalogue probes a run wants: the default set, or the groups and
//! probe names given with `-t`. Naming a group or probe explicitly includes
//! it even when it is off by default; `all` selects every probe.

use crate::catalogue::table::{group, group_probes, ChildProbes, ProbeDef, PROBES};

/// Resolves a `-t` list. Unknown names are an error naming them.
pub fn select(trace: Option<&str>) -> Result<Vec<&'static ProbeDef>, String> {
    let Some(list) = trace else {
        return Ok(PROBES.iter().filter(|p| p.default_on).collect());
    };
    named(list, "-t/--trace")
}

/// Resolves a list of groups and probe names given with `flag`
/// (`--trace-stack`, `--trace-exclude`...). Unknown names are an error
/// naming them and the flag.
pub fn named(list: &str, flag: &str) -> Result<Vec<&'static ProbeDef>, String> {
    let mut picked = vec![false; PROBES.len()];
    for token in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if token == "all" {
            picked.iter_mut().for_each(|p| *p = true);
        } else if let Some(g) = group(token) {
            for p in group_probes(g.name, ChildProbes::DefaultOn) {
                picked[p.id as usize] = true;
            }
        } else if let Some(p) = crate::catalogue::table::probe(token) {
            picked[p.id as usize] = true;
        } else {
            return Err(format!(
                "unknown group or probe `{token}` for {flag}; `nettrace -t ?` lists them"
            ));
        }
    }
    Ok(PROBES.iter().filter(|p| picked[p.id as usize]).collect())
}
