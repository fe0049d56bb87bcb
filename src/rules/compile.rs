//! Checking and compiling rules: names resolved against the catalogue and
//! the kernel's drop reasons, values typed by their field, every problem
//! reported as a diagnostic (the lint is this module run without a
//! kernel). A rule with an error is left out; the others compile.

use super::ast::{self, CmpOp, Expr, Flag, OrderOp, RuleAst, Span, Spanned};
use super::diag::{did_you_mean, Code, Diagnostic, SourceFile};
use crate::catalogue::retnames;
use crate::catalogue::table::{ProbeDef, RetKind, GROUPS, PROBES};
use crate::kernel::btf::DropReasons;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

/// Drop-reason names of the kernels nettrace is tested on.
const KNOWN_REASONS: &str = include_str!("known-drop-reasons.txt");

pub fn known_reasons() -> impl Iterator<Item = &'static str> {
    KNOWN_REASONS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

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

/// A message or advice with `{field}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Field(String),
    /// `[...]`: printed only when every placeholder in it has a value.
    Optional(Vec<Part>),
}

pub const PLACEHOLDERS: &[&str] = &[
    "probe",
    "group",
    "ret",
    "reason",
    "location",
    "saddr",
    "daddr",
    "sport",
    "dport",
    "proto",
    "ifname",
    "nf.family",
    "nf.hook",
    "nf.table",
    "nf.chain",
    "nf.verdict",
    "nf.hooks",
];

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
            .any(|d| d.severity == super::diag::Severity::Error)
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
                        let code = if e.outside_rules { Code::E0003 } else { Code::E0001 };
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
    shadowing(&mut out, layers);
    explained_ids(&mut out, layers);
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

/// W0204: an `explains` pattern that covers no loaded rule (a typo, or a
/// rule of a pack that is not loaded).
fn explained_ids(out: &mut Compiled, layers: &[Layer]) {
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
fn shadowing(out: &mut Compiled, layers: &[Layer]) {
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

struct Checker<'a> {
    file: &'a SourceFile,
    kernel: &'a KernelFacts<'a>,
    diags: Vec<Diagnostic>,
}

/// Probes a `ret` test may refer to: those the enclosing conjunction names.
type Scope = Option<Vec<&'static ProbeDef>>;

impl Checker<'_> {
    fn err(
        &mut self,
        code: Code,
        span: Span,
        msg: impl Into<String>,
        help: Option<String>,
    ) {
        self.diags.push(self.file.diagnostic(code, span, msg, help));
    }

    fn rule(&mut self, a: &RuleAst) -> Option<Rule> {
        let errors_before = self.error_count();
        for r in &a.repeated {
            self.err(
                Code::E0002,
                r.span,
                format!("`{}` given twice in rule `{}`", r.value, a.id.value),
                Some("keep one".into()),
            );
        }
        let head = Span {
            start: a.span.start,
            end: a.id.span.end,
        };
        if a.when.is_none() {
            self.err(
                Code::E0101,
                head,
                format!("rule `{}` has no `when`", a.id.value),
                Some("add `when CONDITION`".into()),
            );
        }
        let level = match &a.level {
            None => {
                self.err(
                    Code::E0102,
                    head,
                    format!("rule `{}` has no `level`", a.id.value),
                    Some("add `level info|warn|error`".into()),
                );
                None
            }
            Some(l) => match l.value.as_str() {
                "info" => Some(Level::Info),
                "warn" => Some(Level::Warn),
                "error" => Some(Level::Error),
                other => {
                    let help = did_you_mean(other, ["info", "warn", "error"])
                        .or_else(|| Some("levels are info, warn, error".into()));
                    self.err(Code::E0104, l.span, format!("unknown level `{other}`"), help);
                    None
                }
            },
        };
        let message = match &a.message {
            None => {
                self.err(
                    Code::E0103,
                    head,
                    format!("rule `{}` has no `message`", a.id.value),
                    Some("add `message \"...\"`".into()),
                );
                None
            }
            Some(m) => self.template(m),
        };
        let advice = a.advice.as_ref().and_then(|m| self.template(m));
        if level == Some(Level::Error) && a.advice.is_none() && !a.fallback {
            self.err(
                Code::W0203,
                head,
                format!("error-level rule `{}` gives no advice", a.id.value),
                Some("add `advice \"...\"`: what should the operator do?".into()),
            );
        }
        let cond = a.when.as_ref().map(|w| self.expr(w, &None));
        // Errors make conditions false; saying so again would be noise.
        if self.error_count() > errors_before {
            return None;
        }
        if let Some(c) = &cond {
            if let Some(why) = never_matches(c) {
                let span = a.when.as_ref().map(|w| w.span).unwrap_or(head);
                self.err(
                    Code::W0201,
                    span,
                    format!("rule `{}` can never match: {why}", a.id.value),
                    None,
                );
            }
        }
        if self.error_count() > errors_before {
            return None;
        }
        let (line, _) = self.file.line_col(a.span.start);
        let cond = cond?;
        Some(Rule {
            on_probes: cond.probes(),
            id: a.id.value.clone(),
            level: level?,
            message: message?,
            advice,
            tags: a.tags.iter().map(|t| t.value.clone()).collect(),
            see: a.see.iter().map(|t| t.value.clone()).collect(),
            fallback: a.fallback,
            explains: a.explains.clone(),
            cond,
            file: self.file.path.clone(),
            line,
            id_span: a.id.span,
        })
    }

    fn error_count(&self) -> usize {
        self.diags
            .iter()
            .filter(|d| d.severity == super::diag::Severity::Error)
            .count()
    }

    /// A message or advice: literal text, `{field}` placeholders, and
    /// `[...]` groups that print only when all their placeholders have a
    /// value (`[[`, `]]`, `{{`, `}}` are literal brackets and braces).
    fn template(&mut self, s: &Spanned<String>) -> Option<Vec<Part>> {
        let text = &s.value;
        let mut stack: Vec<(Vec<Part>, usize)> = vec![(Vec::new(), 0)];
        let mut lit = String::new();
        let mut i = 0;
        let mut ok = true;
        // +1: the opening quote of the string literal.
        let at = |i: usize, len: usize| Span {
            start: s.span.start + 1 + i,
            end: s.span.start + 1 + i + len,
        };
        fn flush(lit: &mut String, parts: &mut Vec<Part>) {
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(lit)));
            }
        }
        while i < text.len() {
            let rest = &text[i..];
            if let Some(pair) = ["{{", "}}", "[[", "]]"]
                .iter()
                .find(|p| rest.starts_with(**p))
            {
                lit.push_str(&pair[..1]);
                i += 2;
            } else if rest.starts_with('[') {
                flush(&mut lit, &mut stack.last_mut().expect("root").0);
                stack.push((Vec::new(), i));
                i += 1;
            } else if rest.starts_with(']') {
                if stack.len() == 1 {
                    self.err(
                        Code::E0141,
                        at(i, 1),
                        "`]` closes no `[` group",
                        Some("write `]]` for a literal bracket".into()),
                    );
                    ok = false;
                    i += 1;
                    continue;
                }
                let (mut parts, start) = stack.pop().expect("group");
                flush(&mut lit, &mut parts);
                if !parts
                    .iter()
                    .any(|p| matches!(p, Part::Field(_) | Part::Optional(_)))
                {
                    self.err(
                        Code::E0141,
                        at(start, i + 1 - start),
                        "a `[...]` group without a placeholder is always printed",
                        Some("put the placeholder that may be missing inside it, or drop the brackets (`[[` for a literal one)".into()),
                    );
                    ok = false;
                }
                stack
                    .last_mut()
                    .expect("root")
                    .0
                    .push(Part::Optional(parts));
                i += 1;
            } else if rest.starts_with('{') {
                let Some(end) = rest.find('}') else {
                    lit.push('{');
                    i += 1;
                    continue;
                };
                let name = &rest[1..end];
                if PLACEHOLDERS.contains(&name) {
                    let parts = &mut stack.last_mut().expect("root").0;
                    flush(&mut lit, parts);
                    parts.push(Part::Field(name.to_string()));
                } else {
                    let help = did_you_mean(name, PLACEHOLDERS.iter().copied()).or_else(|| {
                        Some(format!(
                            "placeholders: {}; `{{{{` for a brace",
                            PLACEHOLDERS.join(", ")
                        ))
                    });
                    self.err(
                        Code::E0140,
                        at(i, end + 1),
                        format!("unknown placeholder `{{{name}}}`"),
                        help,
                    );
                    ok = false;
                }
                i += end + 1;
            } else {
                let ch = rest.chars().next().expect("char");
                lit.push(ch);
                i += ch.len_utf8();
            }
        }
        if stack.len() > 1 {
            let start = stack[1].1;
            self.err(
                Code::E0141,
                at(start, 1),
                "`[` group is never closed",
                Some("close it with `]`, or write `[[` for a literal bracket".into()),
            );
            return None;
        }
        let mut parts = stack.pop().expect("root").0;
        flush(&mut lit, &mut parts);
        ok.then_some(parts)
    }

    fn expr(&mut self, e: &Spanned<Expr>, scope: &Scope) -> Cond {
        match &e.value {
            Expr::Or(items) => Cond::Or(items.iter().map(|i| self.expr(i, scope)).collect()),
            Expr::And(items) => {
                // Probes named directly in this conjunction give `ret` its
                // meaning: resolve them first, then the other tests.
                let mut named: Scope = scope.clone();
                let mut done: Vec<Option<Cond>> = vec![None; items.len()];
                for (slot, item) in done.iter_mut().zip(items) {
                    if matches!(item.value, Expr::Probe(_) | Expr::Group(_)) {
                        let probes = self.resolve_probes(item);
                        *slot = Some(probe_cond(&probes));
                        named = Some(match named {
                            None => probes,
                            Some(prev) => prev
                                .into_iter()
                                .filter(|x| probes.iter().any(|y| y.id == x.id))
                                .collect(),
                        });
                    }
                }
                Cond::And(
                    items
                        .iter()
                        .zip(done)
                        .map(|(i, c)| c.unwrap_or_else(|| self.expr(i, &named)))
                        .collect(),
                )
            }
            Expr::Not(inner) => Cond::Not(Box::new(self.expr(inner, scope))),
            Expr::Order(op, inner) => Cond::Order(*op, Box::new(self.expr(inner, &None))),
            Expr::Probe(_) | Expr::Group(_) => probe_cond(&self.resolve_probes(e)),
            Expr::Flag(f) => Cond::Flag(*f),
            Expr::Field { field, op, values } => self.field(e.span, field, *op, values, scope),
        }
    }

    /// The probes a probe or group test names; unknown names are reported.
    fn resolve_probes(&mut self, e: &Spanned<Expr>) -> Vec<&'static ProbeDef> {
        match &e.value {
            Expr::Probe(names) => {
                let mut out = Vec::new();
                for n in names {
                    match PROBES.iter().find(|p| p.name == n.value) {
                        Some(p) => out.push(p),
                        None => {
                            let help = did_you_mean(&n.value, PROBES.iter().map(|p| p.name))
                                .or_else(|| Some("`nettrace -t ?` lists the probes".into()));
                            self.err(
                                Code::E0110,
                                n.span,
                                format!("unknown probe `{}`", n.value),
                                help,
                            );
                        }
                    }
                }
                out
            }
            Expr::Group(g) => {
                if !GROUPS.iter().any(|x| x.name == g.value) {
                    let help = did_you_mean(&g.value, GROUPS.iter().map(|x| x.name))
                        .or_else(|| Some("`nettrace -t ?` lists the groups".into()));
                    self.err(
                        Code::E0111,
                        g.span,
                        format!("unknown group `{}`", g.value),
                        help,
                    );
                }
                group_probes(&g.value)
            }
            _ => Vec::new(),
        }
    }

    fn field(
        &mut self,
        span: Span,
        name: &Spanned<String>,
        op: CmpOp,
        values: &[Spanned<String>],
        scope: &Scope,
    ) -> Cond {
        let Some(field) = FIELDS
            .iter()
            .find(|(n, _)| *n == name.value)
            .map(|(_, f)| *f)
        else {
            let help = did_you_mean(&name.value, FIELDS.iter().map(|(n, _)| *n)).or_else(|| {
                Some(format!(
                    "fields: {}; or probe, group, drop, free, clone",
                    FIELDS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            });
            self.err(
                Code::E0112,
                name.span,
                format!("unknown field `{}`", name.value),
                help,
            );
            return Cond::Const(false);
        };
        let allowed: &[CmpOp] = match field {
            Field::Ret | Field::Sport | Field::Dport | Field::Port | Field::Len => &[
                CmpOp::Eq,
                CmpOp::Ne,
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge,
                CmpOp::In,
            ],
            Field::TcpFlags => &[CmpOp::Has, CmpOp::Eq, CmpOp::Ne],
            Field::IcmpCode => &[CmpOp::Eq, CmpOp::Ne, CmpOp::In, CmpOp::Lt, CmpOp::Gt],
            _ => &[CmpOp::Eq, CmpOp::Ne, CmpOp::In],
        };
        if !allowed.contains(&op) {
            let ops: Vec<&str> = allowed.iter().map(|o| o.as_str()).collect();
            self.err(
                Code::E0116,
                span,
                format!("`{}` cannot be used with `{}`", op.as_str(), name.value),
                Some(format!("`{}` takes {}", name.value, ops.join(" "))),
            );
            return Cond::Const(false);
        }
        if field == Field::Ret {
            match scope {
                None => {
                    self.err(
                        Code::E0120,
                        name.span,
                        "`ret` is tested without naming the probe",
                        Some("write `probe NAME and ret ...`: a return value means something only for its function".into()),
                    );
                    return Cond::Const(false);
                }
                Some(probes) => {
                    for p in probes {
                        if !p.has_ret() {
                            self.err(
                                Code::E0121,
                                name.span,
                                format!("probe `{}` has no return value to test", p.name),
                                Some(
                                    "only function probes with `ret` in probes.yaml report one"
                                        .into(),
                                ),
                            );
                            return Cond::Const(false);
                        }
                    }
                }
            }
        }
        let mut vals = Vec::new();
        for v in values {
            match self.value(field, v, scope) {
                Some(x) => vals.push(x),
                None => return Cond::Const(false),
            }
        }
        Cond::Test(field, op, vals)
    }

    fn value(&mut self, field: Field, v: &Spanned<String>, scope: &Scope) -> Option<Val> {
        let s = v.value.as_str();
        let bad = |this: &mut Self, what: &str| {
            this.err(Code::E0115, v.span, format!("`{s}` is not {what}"), None);
            None
        };
        match field {
            Field::Ret => {
                if let Ok(n) = s.parse::<i64>() {
                    return Some(Val::Range(n, n));
                }
                let probes = scope.as_deref().unwrap_or(&[]);
                for p in probes {
                    let kinds: Vec<RetKind> = p.signatures.iter().map(|sig| sig.ret).collect();
                    if !kinds.iter().any(|k| retnames::lookup(*k, s).is_some()) {
                        let names = retnames::all_names(p.ret);
                        let help =
                            did_you_mean(s, names.iter().map(String::as_str)).or_else(|| {
                                Some(if names.is_empty() {
                                    format!("`{}` returns a plain number", p.name)
                                } else {
                                    format!(
                                        "names for `{}`: {}",
                                        p.name,
                                        names
                                            .iter()
                                            .take(8)
                                            .cloned()
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    )
                                })
                            });
                        self.err(
                            Code::E0114,
                            v.span,
                            format!("`{s}` is not a return value of `{}`", p.name),
                            help,
                        );
                        return None;
                    }
                }
                Some(Val::RetName(
                    s.to_string(),
                    Box::new(RetKind::ALL.map(|k| retnames::lookup(k, s))),
                ))
            }
            Field::Reason => {
                let in_kernel = self.kernel.reasons.value_of(s);
                let known = known_reasons().any(|k| k == s);
                if in_kernel.is_none() && !known {
                    let mut candidates: Vec<&str> = known_reasons().collect();
                    candidates.extend(self.kernel.reasons.names().iter().map(|(_, n)| *n));
                    let help = did_you_mean(s, candidates)
                    .or_else(|| Some("drop reasons are the names of enum skb_drop_reason without SKB_DROP_REASON_".into()));
                    self.err(Code::E0113, v.span, format!("unknown drop reason `{s}`"), help);
                    return None;
                }
                if in_kernel.is_none() && self.kernel.have_kernel {
                    self.err(
                        Code::N0302,
                        v.span,
                        format!("this kernel does not define drop reason `{s}`"),
                        Some("the test is false here; fine for rules shared across kernels".into()),
                    );
                }
                Some(Val::Reason(s.to_string(), in_kernel))
            }
            Field::Proto => match crate::vocab::proto::by_name(s).ok_or(()) {
                Ok(crate::vocab::proto::Proto::L3(p)) => Some(Val::L3(p)),
                Ok(crate::vocab::proto::Proto::L4(p)) => Some(Val::L4(p)),
                Err(_) => {
                    let help = did_you_mean(s, crate::vocab::proto::names());
                    self.err(
                        Code::E0114,
                        v.span,
                        format!("unknown protocol `{s}`"),
                        help.or_else(|| {
                            Some(format!("protocols: {}", crate::vocab::proto::names_line()))
                        }),
                    );
                    None
                }
            },
            Field::Saddr | Field::Daddr | Field::Addr => {
                let (addr, len) = match s.split_once('/') {
                    Some((a, l)) => (a, l.parse::<u8>().ok()),
                    None => (s, None),
                };
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    return bad(self, "an IPv4/IPv6 address or prefix (10.0.0.0/8)");
                };
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let len = match (s.contains('/'), len) {
                    (false, _) => max,
                    (true, Some(l)) if l <= max => l,
                    _ => return bad(self, "a valid prefix length"),
                };
                Some(Val::Net(ip, len))
            }
            Field::Sport | Field::Dport | Field::Port => match s.parse::<u16>() {
                Ok(n) => Some(Val::Range(n.into(), n.into())),
                Err(_) => bad(self, "a port number (0-65535)"),
            },
            Field::Len => match s.parse::<u32>() {
                Ok(n) => Some(Val::Range(n.into(), n.into())),
                Err(_) => bad(self, "a length in bytes"),
            },
            Field::TcpFlags => match crate::vocab::tcp::parse_tcp_flags(s) {
                Ok(bits) if bits != 0 => Some(Val::Flags(bits)),
                _ => bad(self, "TCP flags (letters SAPRFUEC, or names syn,ack)"),
            },
            Field::Ifname | Field::NfTable | Field::NfChain | Field::Location => {
                Some(Val::Str(s.to_string()))
            }
            Field::LocationGroup => {
                if !GROUPS.iter().any(|g| g.name == s) {
                    let help = did_you_mean(s, GROUPS.iter().map(|x| x.name))
                        .or_else(|| Some("`nettrace -t ?` lists the groups".into()));
                    self.err(Code::E0111, v.span, format!("unknown group `{s}`"), help);
                    return None;
                }
                let mut names: Vec<&'static str> = group_probes(s)
                    .into_iter()
                    .filter(|p| !p.is_tracepoint())
                    .flat_map(|p| std::iter::once(p.name).chain(p.symbols.iter().copied()))
                    .collect();
                names.sort_unstable();
                names.dedup();
                Some(Val::Names(names))
            }
            Field::IcmpType => {
                if let Ok(n) = s.parse::<u8>() {
                    return Some(Val::Range(n.into(), n.into()));
                }
                match ICMP_TYPES.iter().find(|(n, _, _)| *n == s) {
                    Some((_, v4, v6)) => Some(Val::IcmpType(*v4, *v6)),
                    None => {
                        let names: Vec<&str> = ICMP_TYPES.iter().map(|(n, _, _)| *n).collect();
                        let help = did_you_mean(s, names.iter().copied())
                            .or_else(|| Some(format!("a number, or one of: {}", names.join(", "))));
                        self.err(Code::E0114, v.span, format!("unknown ICMP type `{s}`"), help);
                        None
                    }
                }
            }
            Field::IcmpCode => match s.parse::<u8>() {
                Ok(n) => Some(Val::Range(n.into(), n.into())),
                Err(_) => bad(self, "an ICMP code (0-255)"),
            },
            Field::NfFamily | Field::NfHook => {
                use crate::catalogue::nfnames::{family_by_name, hook_by_name, FAMILIES, HOOKS};
                let (found, names): (Option<u8>, Vec<&str>) = if field == Field::NfFamily {
                    (
                        family_by_name(s),
                        FAMILIES.iter().map(|(n, _)| *n).collect(),
                    )
                } else {
                    (hook_by_name(s), HOOKS.iter().map(|(n, _)| *n).collect())
                };
                match found {
                    Some(n) => Some(Val::Range(n.into(), n.into())),
                    None => {
                        let help = did_you_mean(s, names.iter().copied())
                            .or_else(|| Some(format!("one of: {}", names.join(", "))));
                        self.err(Code::E0114, v.span, format!("unknown value `{s}`"), help);
                        None
                    }
                }
            }
            Field::NfVerdict => match retnames::lookup(RetKind::NfVerdict, s) {
                Some((lo, hi)) => Some(Val::Range(lo, hi)),
                None => {
                    let names = retnames::all_names(RetKind::NfVerdict);
                    let help = did_you_mean(s, names.iter().map(String::as_str))
                        .or_else(|| Some(format!("verdicts: {}", names.join(", "))));
                    self.err(Code::E0114, v.span, format!("unknown verdict `{s}`"), help);
                    None
                }
            },
        }
    }
}

fn probe_cond(probes: &[&'static ProbeDef]) -> Cond {
    let mut ids: Vec<u32> = probes.iter().map(|p| p.id).collect();
    ids.sort_unstable();
    Cond::Probes(ids)
}

/// Probes of a group and of its child groups.
pub fn group_probes(name: &str) -> Vec<&'static ProbeDef> {
    PROBES
        .iter()
        .filter(|p| {
            p.group == name
                || GROUPS
                    .iter()
                    .any(|g| g.name == p.group && g.parent == Some(name))
        })
        .collect()
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
