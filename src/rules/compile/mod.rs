//! Checking and compiling rules: names resolved against the catalogue and
//! the kernel's drop reasons, values typed by their field, every problem
//! reported as a diagnostic (the lint is this module run without a
//! kernel). A rule with an error is left out; the others compile.
//!
//! This file holds the compiled forms (`Rule`, `Cond`, `Val`) and the
//! entry point; `check` walks a rule's syntax tree, `typing` types the
//! values a test compares with, `template` parses messages and their
//! placeholders, and `analyses` looks across rules (shadowing, conditions
//! that never hold, return values tested).

mod analyses;
mod check;
mod template;
mod typing;

pub use analyses::{never_matches, ret_tested_probes};
use check::Checker;
pub use template::{Part, Placeholder};

use super::ast::{self, CmpOp, Flag, OrderOp, Span, Spanned};
use super::diag::{did_you_mean, Code, Diagnostic, SourceFile};
use crate::catalogue::retnames;
use crate::catalogue::table::{ProbeDef, RetKind, GROUPS, PROBES};
use crate::kernel::btf::DropReasons;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    /// Lower case, as JSON, metrics and rule tests name it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// As the seed prints it in `ANALYSIS RESULT`.
    pub fn label(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// Event fields a rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Ret,
    Reason,
    /// The reason of a TCP reset the stack sent (`tcp_send_reset`, 6.10+).
    RstReason,
    Proto,
    Saddr,
    Daddr,
    Addr,
    Sport,
    Dport,
    Port,
    TcpFlags,
    Len,
    Ifname,
    NfFamily,
    NfHook,
    NfTable,
    NfChain,
    NfVerdict,
    /// The firewall rule that decided a netfilter drop, as its tool
    /// prints it (src/firewall).
    NfRule,
    /// The function a drop happened in (`tcp_v4_rcv`), from kallsyms.
    Location,
    /// The catalogue group of that function, when it is a probe.
    LocationGroup,
    IcmpType,
    IcmpCode,
}

const FIELDS: &[(&str, Field)] = &[
    ("ret", Field::Ret),
    ("reason", Field::Reason),
    ("rst_reason", Field::RstReason),
    ("proto", Field::Proto),
    ("saddr", Field::Saddr),
    ("daddr", Field::Daddr),
    ("addr", Field::Addr),
    ("sport", Field::Sport),
    ("dport", Field::Dport),
    ("port", Field::Port),
    ("tcp.flags", Field::TcpFlags),
    ("len", Field::Len),
    ("ifname", Field::Ifname),
    ("nf.family", Field::NfFamily),
    ("nf.hook", Field::NfHook),
    ("nf.table", Field::NfTable),
    ("nf.chain", Field::NfChain),
    ("nf.verdict", Field::NfVerdict),
    ("nf.rule", Field::NfRule),
    ("location", Field::Location),
    ("location.group", Field::LocationGroup),
    ("icmp.type", Field::IcmpType),
    ("icmp.code", Field::IcmpCode),
];

/// ICMP and ICMPv6 message types by name: (name, ICMP type, ICMPv6 type).
pub const ICMP_TYPES: &[(&str, Option<u8>, Option<u8>)] = &[
    ("echo-reply", Some(0), Some(129)),
    ("echo-request", Some(8), Some(128)),
    ("dest-unreachable", Some(3), Some(1)),
    ("packet-too-big", None, Some(2)),
    ("source-quench", Some(4), None),
    ("redirect", Some(5), Some(137)),
    ("time-exceeded", Some(11), Some(3)),
    ("parameter-problem", Some(12), Some(4)),
    ("router-solicitation", Some(10), Some(133)),
    ("router-advertisement", Some(9), Some(134)),
    ("neighbour-solicitation", None, Some(135)),
    ("neighbour-advertisement", None, Some(136)),
];

/// A typed value of a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// A number, or a named range (`NF_DROP` of nf_hook is any negative).
    Range(i64, i64),
    /// A return-value name, resolved by the event's probe's return kind:
    /// its range under each kind (`RetKind as usize`), looked up once here
    /// instead of by name at every event.
    RetName(String, Box<[Option<(i64, i64)>; RetKind::ALL.len()]>),
    /// A drop reason by name; its value is None when the kernel does not
    /// define it (the test is then false).
    Reason(String, Option<u32>),
    /// A TCP reset reason by name, bound like `Reason`.
    RstReason(String, Option<u32>),
    L3(u16),
    L4(u8),
    Net(IpAddr, u8),
    Str(String),
    Flags(u8),
    /// Function names (a `location.group` test: the group's functions).
    Names(Vec<&'static str>),
    /// An ICMP type by name: its value for ICMP and for ICMPv6.
    IcmpType(Option<u8>, Option<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Const(bool),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Order(OrderOp, Box<Cond>),
    /// The event's probe is one of these ids (sorted).
    Probes(Vec<u32>),
    Flag(Flag),
    Test(Field, CmpOp, Vec<Val>),
}

impl Cond {
    /// The probes an event must come from for this condition to hold on
    /// it (sorted); None: any probe might do. A conjunction is pinned by
    /// any of its parts, a disjunction by all of them; `after`/`before`/
    /// `seen` speak of other events and pin nothing.
    pub fn probes(&self) -> Option<Vec<u32>> {
        match self {
            Cond::Probes(ids) => Some(ids.clone()),
            Cond::Flag(f) => Some(flag_probes(*f)),
            Cond::Const(false) => Some(Vec::new()),
            Cond::And(v) => v
                .iter()
                .filter_map(Cond::probes)
                .reduce(|a, b| a.into_iter().filter(|x| b.contains(x)).collect()),
            Cond::Or(v) => {
                let mut all = Vec::new();
                for x in v {
                    all.extend(x.probes()?);
                }
                all.sort_unstable();
                all.dedup();
                Some(all)
            }
            _ => None,
        }
    }
}

/// The probes whose events can carry a flag: drops come from the drop
/// probes, frees from free and drop probes, clones from clone probes.
pub fn flag_probes(f: Flag) -> Vec<u32> {
    PROBES
        .iter()
        .filter(|p| flag_possible(f, p))
        .map(|p| p.id)
        .collect()
}

/// Whether events of `probe` can carry the flag (see `flag_probes`).
pub fn flag_possible(f: Flag, probe: &crate::catalogue::table::ProbeDef) -> bool {
    use crate::catalogue::table::Extra;
    match f {
        Flag::Drop => probe.extra == Some(Extra::Drop),
        Flag::Free => matches!(probe.extra, Some(Extra::Free | Extra::Drop)),
        Flag::Clone => probe.extra == Some(Extra::Clone),
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub level: Level,
    pub message: Vec<Part>,
    pub advice: Option<Vec<Part>>,
    pub tags: Vec<String>,
    pub see: Vec<String>,
    pub fallback: bool,
    /// Rules (ids, or prefixes ending in `*`) whose findings on the same
    /// packet are consequences of this one's: they are not its root cause.
    pub explains: Vec<Spanned<String>>,
    pub cond: Cond,
    /// The probes an event must come from for `cond` to hold on it
    /// (sorted; None: any probe): evaluation skips the rule elsewhere.
    pub on_probes: Option<Vec<u32>>,
    pub file: PathBuf,
    pub line: usize,
    /// Where the id is written, for diagnostics about the whole rule.
    pub id_span: Span,
}

/// Rule files given together: the default pack, or one `--rules DIR`.
/// A later layer's rule replaces an earlier one with the same id.
pub struct Layer {
    pub files: Vec<SourceFile>,
}

impl Layer {
    /// Reads `path`: a `.rules` file, or a directory of them (sorted).
    pub fn read(path: &std::path::Path) -> std::io::Result<Layer> {
        let mut paths = Vec::new();
        if path.is_dir() {
            for entry in std::fs::read_dir(path)? {
                let p = entry?.path();
                if p.extension().is_some_and(|e| e == "rules") {
                    paths.push(p);
                }
            }
            paths.sort();
        } else {
            paths.push(path.to_path_buf());
        }
        let mut files = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            files.push(SourceFile::new(&p, text));
        }
        Ok(Layer { files })
    }

    /// The default pack, built into the binary (rules.d/ at build time).
    pub fn builtin() -> Layer {
        Layer {
            files: super::BUILTIN_RULES
                .iter()
                .map(|(name, text)| {
                    SourceFile::new(&PathBuf::from(format!("rules.d/{name}")), text.to_string())
                })
                .collect(),
        }
    }
}

/// What checking produced: rules that compiled, in evaluation order, and
/// every diagnostic.
pub struct Compiled {
    pub rules: Vec<Rule>,
    pub diagnostics: Vec<Diagnostic>,
    /// Rules parsed (compiled or not), for the lint summary.
    pub parsed: usize,
    pub parsed_per_file: HashMap<PathBuf, usize>,
    pub files: usize,
}

impl Compiled {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity() == super::diag::Severity::Error)
    }
}

/// The kernel facts a check uses.
pub struct KernelFacts<'a> {
    /// The checked kernel's drop reasons (empty: none known, e.g. no BTF).
    pub reasons: &'a DropReasons,
    /// Whether `reasons` came from a kernel (so that absence means something).
    pub have_kernel: bool,
}

pub fn compile(layers: &[Layer], kernel: &KernelFacts<'_>) -> Compiled {
    let mut out = Compiled {
        rules: Vec::new(),
        diagnostics: Vec::new(),
        parsed: 0,
        parsed_per_file: HashMap::new(),
        files: 0,
    };
    // id -> (layer, index in out.rules, file, span)
    let mut ids: HashMap<String, (usize, Option<usize>, PathBuf, usize)> = HashMap::new();
    for (layer_no, layer) in layers.iter().enumerate() {
        for file in &layer.files {
            out.files += 1;
            for parsed in ast::parse_file(&file.text) {
                let ast = match parsed {
                    Ok(a) => a,
                    Err(e) => {
                        let code = if e.outside_rules {
                            Code::E0003
                        } else {
                            Code::E0001
                        };
                        out.diagnostics
                            .push(file.diagnostic(code, e.span, e.message, None));
                        continue;
                    }
                };
                out.parsed += 1;
                *out.parsed_per_file.entry(file.path.clone()).or_default() += 1;
                let mut checker = Checker {
                    file,
                    kernel,
                    diags: Vec::new(),
                };
                let rule = checker.rule(&ast);
                out.diagnostics.append(&mut checker.diags);
                let (line, _) = file.line_col(ast.span.start);
                // Ids count whether or not the rule compiled: a duplicate
                // of a broken rule is still a duplicate.
                match ids.get(&ast.id.value).cloned() {
                    Some((l, _, prev_file, prev_line)) if l == layer_no => {
                        out.diagnostics.push(file.diagnostic(
                            Code::E0130,
                            ast.id.span,
                            format!("duplicate rule id `{}`", ast.id.value),
                            Some(format!(
                                "first defined at {}:{prev_line}",
                                prev_file.display()
                            )),
                        ));
                    }
                    Some((_, idx, prev_file, prev_line)) => {
                        out.diagnostics.push(file.diagnostic(
                            Code::N0301,
                            ast.id.span,
                            format!("rule `{}` replaces the earlier one", ast.id.value),
                            Some(format!("defined at {}:{prev_line}", prev_file.display())),
                        ));
                        ids.insert(
                            ast.id.value.clone(),
                            (layer_no, idx, file.path.clone(), line),
                        );
                        if let Some(rule) = rule {
                            match idx {
                                Some(i) => out.rules[i] = rule,
                                None => out.rules.push(rule),
                            }
                        }
                    }
                    None => {
                        let idx = rule.as_ref().map(|_| out.rules.len());
                        ids.insert(
                            ast.id.value.clone(),
                            (layer_no, idx, file.path.clone(), line),
                        );
                        if let Some(rule) = rule {
                            out.rules.push(rule);
                        }
                    }
                }
            }
        }
    }
    analyses::shadowing(&mut out, layers);
    analyses::explained_ids(&mut out, layers);
    out
}

/// Whether an `explains` pattern (an id, or a prefix ending in `*`)
/// covers a rule id.
pub fn pattern_covers(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}

impl Cond {
    /// Gives every drop-reason name its number in `reasons`, the numbering
    /// of the kernel the events come from (None where it lacks the name:
    /// the test is then false there).
    pub fn bind_reasons(&mut self, reasons: &DropReasons) {
        match self {
            Cond::And(items) | Cond::Or(items) => {
                items.iter_mut().for_each(|c| c.bind_reasons(reasons))
            }
            Cond::Not(c) | Cond::Order(_, c) => c.bind_reasons(reasons),
            Cond::Test(_, _, vals) => {
                for v in vals {
                    match v {
                        Val::Reason(name, value) => *value = reasons.rule_value_of(name),
                        Val::RstReason(name, value) => *value = reasons.rst_value_of(name),
                        _ => {}
                    }
                }
            }
            Cond::Const(_) | Cond::Probes(_) | Cond::Flag(_) => {}
        }
    }
}

impl Rule {
    /// Whether this rule's findings explain `other`'s on the same packet.
    pub fn explains(&self, other: &Rule) -> bool {
        self.id != other.id
            && self
                .explains
                .iter()
                .any(|p| pattern_covers(&p.value, &other.id))
    }
}
