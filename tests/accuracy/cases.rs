//! The matrix as written in `cases.yaml`: each case's topology, the
//! commands that set it up and make its traffic, the filter nettrace runs
//! with, and what the diagnosis must say, per kernel.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// One namespace `a`; traffic on its loopback.
    Lo,
    /// `a` ⇄ `b` on one veth pair.
    Pair,
    /// `c` ⇄ `r` ⇄ `s`: a client, a forwarding router, a server.
    Router,
    /// `a` ⇄ `br` ⇄ `b`: two hosts on a bridge in namespace `br`.
    Bridge,
}

/// A command and the namespace it runs in: `{b: "iptables ..."}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct NsCommand(pub BTreeMap<String, String>);

impl NsCommand {
    /// (namespace role, command).
    pub fn parts(&self) -> (&str, &str) {
        let (role, cmd) = self.0.iter().next().expect("checked: one entry");
        (role, cmd)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub title: String,
    /// The issue's area this case covers (netfilter, routing, ...).
    pub area: String,
    pub topology: Topology,
    #[serde(default)]
    pub setup: Vec<NsCommand>,
    /// Long-running programs (servers), started before nettrace; each
    /// prints `ready` once it listens. Killed when the case ends.
    #[serde(default)]
    pub serve: Vec<NsCommand>,
    pub traffic: Vec<NsCommand>,
    /// nettrace's filter flags.
    pub trace: String,
    /// Seconds to wait after the traffic before stopping nettrace.
    #[serde(default = "default_settle")]
    pub settle: f64,
    pub expect: Expect,
    /// What a kernel with tracepoints only (no kprobes, no fentry) can
    /// and cannot see of this case, for the host's table.
    pub tracepoints: String,
    /// Other expectations on named kernels (`5.10`, `6.1`, `6.12`, `host`).
    #[serde(default)]
    pub on: BTreeMap<String, KernelExpect>,
}

fn default_settle() -> f64 {
    1.5
}

/// What the diagnosis must say.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    /// A fault: the root cause of the faulty packet.
    Root(RootExpect),
    /// Healthy traffic: `clean`, no warning or error.
    Clean(CleanWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CleanWord {
    Clean,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootExpect {
    pub root: String,
    pub level: String,
    /// Other root causes that may appear on other packets of the case
    /// (consequences that are diagnoses in their own right).
    #[serde(default)]
    pub also: Vec<String>,
}

/// A kernel's own expectation, or why that kernel cannot see the case.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum KernelExpect {
    Blind { blind: String },
    Expect(Expect),
}

impl Case {
    pub fn is_fault(&self) -> bool {
        matches!(self.expect, Expect::Root(_))
    }

    /// What this kernel must show, or why it cannot (Err).
    pub fn expectation(&self, kernel: &str) -> Result<&Expect, &str> {
        match self.on.get(kernel) {
            Some(KernelExpect::Blind { blind }) => Err(blind),
            Some(KernelExpect::Expect(e)) => Ok(e),
            None => Ok(&self.expect),
        }
    }

    /// Namespace roles of the topology.
    pub fn roles(&self) -> &'static [&'static str] {
        match self.topology {
            Topology::Lo => &["a"],
            Topology::Pair => &["a", "b"],
            Topology::Router => &["c", "r", "s"],
            Topology::Bridge => &["a", "b", "br"],
        }
    }
}

impl Matrix {
    pub fn read(path: &std::path::Path) -> Result<Matrix, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let m: Matrix = serde_yaml::from_str(&text).map_err(|e| match e.location() {
            Some(l) => format!("{}:{}:{}: {e}", path.display(), l.line(), l.column()),
            None => format!("{}: {e}", path.display()),
        })?;
        Ok(m)
    }

    /// Every problem the file has that YAML alone does not catch.
    pub fn problems(&self, rule_ids: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        for c in &self.cases {
            if !ids.insert(&c.id) {
                out.push(format!("{}: duplicate case id", c.id));
            }
            for cmd in c.setup.iter().chain(&c.serve).chain(&c.traffic) {
                if cmd.0.len() != 1 {
                    out.push(format!("{}: a command names exactly one namespace", c.id));
                    continue;
                }
                let (role, _) = cmd.parts();
                if role != "host" && !c.roles().contains(&role) {
                    out.push(format!(
                        "{}: no namespace `{role}` in this topology (has {})",
                        c.id,
                        c.roles().join(", ")
                    ));
                }
            }
            let mut expects = vec![("any", &c.expect)];
            for (k, e) in &c.on {
                if !["5.10", "6.1", "6.12", "host"].contains(&k.as_str()) {
                    out.push(format!(
                        "{}: unknown kernel `{k}` (5.10, 6.1, 6.12, host)",
                        c.id
                    ));
                }
                if let KernelExpect::Expect(e) = e {
                    expects.push((k.as_str(), e));
                    if e.is_root() != c.is_fault() {
                        out.push(format!("{}: kernel {k} changes fault into healthy", c.id));
                    }
                }
            }
            for (k, e) in expects {
                if let Expect::Root(r) = e {
                    for id in std::iter::once(&r.root).chain(&r.also) {
                        if !rule_ids.contains(id) {
                            out.push(format!("{} ({k}): no rule `{id}` in rules.d", c.id));
                        }
                    }
                    if !["warn", "error"].contains(&r.level.as_str()) {
                        out.push(format!(
                            "{} ({k}): a root cause is a warn or an error, not `{}`",
                            c.id, r.level
                        ));
                    }
                }
            }
        }
        let faults = self.cases.iter().filter(|c| c.is_fault()).count();
        let healthy = self.cases.len() - faults;
        if faults < 25 {
            out.push(format!(
                "{faults} fault cases; the matrix needs at least 25"
            ));
        }
        if healthy < 10 {
            out.push(format!(
                "{healthy} healthy cases; the matrix needs at least 10"
            ));
        }
        out
    }
}

impl Expect {
    pub fn is_root(&self) -> bool {
        matches!(self, Expect::Root(_))
    }

    /// As the report prints it.
    pub fn describe(&self) -> String {
        match self {
            Expect::Clean(_) => "clean".into(),
            Expect::Root(r) => format!("{} ({})", r.root, r.level),
        }
    }
}
