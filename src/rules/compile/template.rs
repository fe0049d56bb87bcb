//! Messages and advice: literal text, `{field}` placeholders, and `[...]`
//! groups printed only when their placeholders have values. `Placeholder`
//! is the one list of what a message may name, defined by one table of
//! variants and names: the checker accepts exactly these names, and the
//! renderer (output::diagnosis) fills each with an exhaustive match, so
//! the two cannot drift apart.

use super::check::Checker;
use crate::rules::ast::{Span, Spanned};
use crate::rules::diag::{did_you_mean, Code};

/// A message or advice with `{field}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Field(Placeholder),
    /// `[...]`: printed only when every placeholder in it has a value.
    Optional(Vec<Part>),
}

/// Defines `Placeholder` from one table: a variant exists only with the
/// name it is written as, and `ALL` (what the checker accepts and lists in
/// help) cannot leave one out.
macro_rules! placeholders {
    ($($variant:ident $name:literal,)*) => {
        /// What a `{...}` in a message may name: a fact of the event it is
        /// shown on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Placeholder {
            $($variant,)*
        }

        impl Placeholder {
            /// Every placeholder, in the order help texts list them.
            pub const ALL: &'static [Placeholder] = &[$(Placeholder::$variant,)*];

            /// As written between braces.
            pub fn name(self) -> &'static str {
                match self {
                    $(Placeholder::$variant => $name,)*
                }
            }
        }
    };
}

placeholders! {
    Probe "probe",
    Group "group",
    Ret "ret",
    Reason "reason",
    RstReason "rst_reason",
    Location "location",
    Saddr "saddr",
    Daddr "daddr",
    Sport "sport",
    Dport "dport",
    Proto "proto",
    Ifname "ifname",
    NfFamily "nf.family",
    NfHook "nf.hook",
    NfTable "nf.table",
    NfChain "nf.chain",
    NfVerdict "nf.verdict",
    NfRule "nf.rule",
    NfHooks "nf.hooks",
}

impl Placeholder {
    pub fn by_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.iter().copied().find(|p| p.name() == name)
    }
}

impl Checker<'_> {
    /// A message or advice: literal text, `{field}` placeholders, and
    /// `[...]` groups that print only when all their placeholders have a
    /// value (`[[`, `]]`, `{{`, `}}` are literal brackets and braces).
    pub(super) fn template(&mut self, s: &Spanned<String>) -> Option<Vec<Part>> {
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
                if let Some(p) = Placeholder::by_name(name) {
                    let parts = &mut stack.last_mut().expect("root").0;
                    flush(&mut lit, parts);
                    parts.push(Part::Field(p));
                } else {
                    let names = || Placeholder::ALL.iter().map(|p| p.name());
                    let help = did_you_mean(name, names()).or_else(|| {
                        Some(format!(
                            "placeholders: {}; `{{{{` for a brace",
                            names().collect::<Vec<_>>().join(", ")
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
}
