//! The checker: walks one rule's syntax tree, resolves probe and group
//! names against the catalogue, checks fields and operators, and reports
//! every problem as a diagnostic with its place in the file.

use super::*;
use crate::catalogue::table::{group_probes, ChildProbes};
use crate::rules::ast::{CmpOp, Expr, RuleAst, Span, Spanned};
use crate::rules::diag::{did_you_mean, Code, Diagnostic, SourceFile};

pub(super) struct Checker<'a> {
    pub(super) file: &'a SourceFile,
    pub(super) kernel: &'a KernelFacts<'a>,
    pub(super) diags: Vec<Diagnostic>,
}

/// Probes a `ret` test may refer to: those the enclosing conjunction names.
pub(super) type Scope = Option<Vec<&'static ProbeDef>>;

impl Checker<'_> {
    pub(super) fn err(
        &mut self,
        code: Code,
        span: Span,
        msg: impl Into<String>,
        help: Option<String>,
    ) {
        self.diags.push(self.file.diagnostic(code, span, msg, help));
    }

    pub(super) fn rule(&mut self, a: &RuleAst) -> Option<Rule> {
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
                    self.err(
                        Code::E0104,
                        l.span,
                        format!("unknown level `{other}`"),
                        help,
                    );
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
            .filter(|d| d.severity() == crate::rules::diag::Severity::Error)
            .count()
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
                group_probes(&g.value, ChildProbes::All)
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
            Field::Ifname | Field::NfTable | Field::NfChain | Field::NfRule | Field::Location => {
                &[CmpOp::Eq, CmpOp::Ne, CmpOp::In, CmpOp::Contains]
            }
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
}

pub(super) fn probe_cond(probes: &[&'static ProbeDef]) -> Cond {
    let mut ids: Vec<u32> = probes.iter().map(|p| p.id).collect();
    ids.sort_unstable();
    Cond::Probes(ids)
}
