//! The syntax tree of a rule file, as written: names are still strings,
//! every piece carries its byte span in the file for diagnostics. Parsing
//! goes rule by rule (`split_rules`), so one broken rule yields one syntax
//! error and the others still parse.

use pest::iterators::Pair;
use pest::Parser as _;
use serde::Serialize;

#[derive(pest_derive::Parser)]
#[grammar = "rules/grammar.pest"]
struct RuleParser;

/// Byte range in the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleAst {
    pub id: Spanned<String>,
    /// The whole rule, `rule` to `}`.
    pub span: Span,
    pub when: Option<Spanned<Expr>>,
    pub level: Option<Spanned<String>>,
    pub message: Option<Spanned<String>>,
    pub advice: Option<Spanned<String>>,
    pub tags: Vec<Spanned<String>>,
    pub see: Vec<Spanned<String>>,
    pub fallback: bool,
    /// Rules whose findings this rule's finding explains (ids or `prefix*`).
    pub explains: Vec<Spanned<String>>,
    /// Clauses given twice (the first is kept): name and span of the repeat.
    pub repeated: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OrderOp {
    After,
    Before,
    Seen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Flag {
    Drop,
    Free,
    Clone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Has,
    In,
    /// Text containing the value (`nf.rule contains "-j LOG"`).
    Contains,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Has => "has",
            CmpOp::In => "in",
            CmpOp::Contains => "contains",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Expr {
    Or(Vec<Spanned<Expr>>),
    And(Vec<Spanned<Expr>>),
    Not(Box<Spanned<Expr>>),
    Order(OrderOp, Box<Spanned<Expr>>),
    Probe(Vec<Spanned<String>>),
    Group(Spanned<String>),
    Flag(Flag),
    Field {
        field: Spanned<String>,
        op: CmpOp,
        /// One value, or several for `in [..]`. Strings lose their quotes.
        values: Vec<Spanned<String>>,
    },
}

/// A syntax error: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
    /// Text before the first rule that is neither blank nor a comment.
    pub outside_rules: bool,
}

/// Splits a file into rule chunks: (byte offset, text). A chunk starts at
/// a line whose first word is `rule`; strings cannot span lines, so such a
/// line is never inside one. Text before the first rule that is not blank
/// or a comment comes back as a chunk of its own (and fails to parse).
pub fn split_rules(src: &str) -> Vec<(usize, &str)> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in src.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("rule")
            && trimmed[4..]
                .chars()
                .next()
                .is_none_or(|c| c.is_whitespace() || c == '{')
        {
            starts.push(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    let mut chunks = Vec::new();
    let first = starts.first().copied().unwrap_or(src.len());
    let preamble = &src[..first];
    if preamble
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    {
        chunks.push((0, preamble));
    }
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(src.len());
        chunks.push((s, &src[s..e]));
    }
    chunks
}

/// Parses every rule of a file; each chunk gives a rule or a syntax error.
pub fn parse_file(src: &str) -> Vec<Result<RuleAst, SyntaxError>> {
    split_rules(src)
        .into_iter()
        .map(|(offset, text)| {
            if !text.trim_start().starts_with("rule") {
                let lead = text.len() - text.trim_start().len();
                let first_line = text.trim_start().lines().next().unwrap_or("");
                return Err(SyntaxError {
                    span: Span {
                        start: offset + lead,
                        end: offset + lead + first_line.len(),
                    },
                    message: "text outside any rule: a file holds only `rule ID { ... }` and `#` comments".into(),
                    outside_rules: true,
                });
            }
            parse_rule(text, offset)
        })
        .collect()
}

/// Keyword tokens carry no information past the grammar.
fn not_keyword(p: &Pair<'_, Rule>) -> bool {
    !matches!(
        p.as_rule(),
        Rule::kw_and
            | Rule::kw_or
            | Rule::kw_in
            | Rule::kw_rule
            | Rule::kw_when
            | Rule::kw_level
            | Rule::kw_message
            | Rule::kw_advice
            | Rule::kw_tags
            | Rule::kw_see
            | Rule::kw_fallback
            | Rule::kw_explains
            | Rule::kw_probe
            | Rule::kw_group
            | Rule::open_brace
            | Rule::close_brace
            | Rule::open_paren
            | Rule::close_paren
    )
}

fn span_of(p: &Pair<'_, Rule>, offset: usize) -> Span {
    let s = p.as_span();
    Span {
        start: offset + s.start(),
        end: offset + s.end(),
    }
}

fn spanned_str(p: &Pair<'_, Rule>, offset: usize) -> Spanned<String> {
    Spanned {
        value: p.as_str().to_string(),
        span: span_of(p, offset),
    }
}

/// A string literal's value, escapes resolved; the span covers the quotes.
fn string_value(p: Pair<'_, Rule>, offset: usize) -> Spanned<String> {
    let span = span_of(&p, offset);
    let inner = p
        .into_inner()
        .find(not_keyword)
        .map(|i| i.as_str())
        .unwrap_or("");
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    Spanned { value: out, span }
}

/// Parses one rule chunk that starts at `offset` in its file.
pub fn parse_rule(text: &str, offset: usize) -> Result<RuleAst, SyntaxError> {
    let mut pairs = RuleParser::parse(Rule::single_rule, text).map_err(|e| {
        let (start, end) = match e.location {
            pest::error::InputLocation::Pos(p) => (p, p),
            pest::error::InputLocation::Span((s, e)) => (s, e),
        };
        SyntaxError {
            span: Span {
                start: offset + start,
                end: offset + end.max(start),
            },
            message: describe_pest_error(&e.variant, text, start),
            outside_rules: false,
        }
    })?;
    let rule_def = pairs
        .next()
        .and_then(|p| p.into_inner().find(not_keyword))
        .expect("single_rule holds a rule_def");
    let span = span_of(&rule_def, offset);
    let mut inner = rule_def.into_inner().filter(not_keyword);
    let id = spanned_str(&inner.next().expect("rule id"), offset);
    let mut rule = RuleAst {
        id,
        span,
        when: None,
        level: None,
        message: None,
        advice: None,
        tags: Vec::new(),
        see: Vec::new(),
        fallback: false,
        explains: Vec::new(),
        repeated: Vec::new(),
    };
    for clause in inner {
        let clause_span = span_of(&clause, offset);
        let kind = clause.as_rule();
        let name = match kind {
            Rule::when_clause => "when",
            Rule::level_clause => "level",
            Rule::message_clause => "message",
            Rule::advice_clause => "advice",
            Rule::tags_clause => "tags",
            Rule::see_clause => "see",
            Rule::explains_clause => "explains",
            _ => "fallback",
        };
        let already = match kind {
            Rule::when_clause => rule.when.is_some(),
            Rule::level_clause => rule.level.is_some(),
            Rule::message_clause => rule.message.is_some(),
            Rule::advice_clause => rule.advice.is_some(),
            Rule::tags_clause => !rule.tags.is_empty(),
            Rule::fallback_clause => rule.fallback,
            Rule::explains_clause => !rule.explains.is_empty(),
            _ => false,
        };
        if already {
            rule.repeated.push(Spanned {
                value: name.to_string(),
                span: clause_span,
            });
            continue;
        }
        let mut parts = clause.into_inner().filter(not_keyword);
        match kind {
            Rule::when_clause => {
                let e = parts.next().expect("when expr");
                rule.when = Some(expr(e, offset));
            }
            Rule::level_clause => {
                rule.level = parts.next().map(|w| spanned_str(&w, offset));
            }
            Rule::message_clause => {
                rule.message = parts.next().map(|s| string_value(s, offset));
            }
            Rule::advice_clause => {
                rule.advice = parts.next().map(|s| string_value(s, offset));
            }
            Rule::tags_clause => {
                rule.tags = parts.map(|w| spanned_str(&w, offset)).collect();
            }
            Rule::see_clause => {
                if let Some(s) = parts.next() {
                    rule.see.push(string_value(s, offset));
                }
            }
            Rule::explains_clause => {
                rule.explains = parts.map(|w| spanned_str(&w, offset)).collect();
            }
            _ => rule.fallback = true,
        }
    }
    Ok(rule)
}

fn expr(p: Pair<'_, Rule>, offset: usize) -> Spanned<Expr> {
    let span = span_of(&p, offset);
    match p.as_rule() {
        Rule::expr | Rule::and_expr => {
            let is_or = p.as_rule() == Rule::expr;
            let mut items: Vec<Spanned<Expr>> = p
                .into_inner()
                .filter(not_keyword)
                .map(|c| expr(c, offset))
                .collect();
            if items.len() == 1 {
                return items.pop().expect("one item");
            }
            Spanned {
                value: if is_or {
                    Expr::Or(items)
                } else {
                    Expr::And(items)
                },
                span,
            }
        }
        Rule::unary => {
            let mut inner: Vec<Pair<'_, Rule>> = p.into_inner().filter(not_keyword).collect();
            let primary = expr(inner.pop().expect("primary"), offset);
            inner.into_iter().rev().fold(primary, |acc, not| Spanned {
                span: Span {
                    start: span_of(&not, offset).start,
                    end: acc.span.end,
                },
                value: Expr::Not(Box::new(acc)),
            })
        }
        Rule::order_test => {
            let mut inner = p.into_inner().filter(not_keyword);
            let op = match inner.next().expect("order op").as_str().trim() {
                "after" => OrderOp::After,
                "before" => OrderOp::Before,
                _ => OrderOp::Seen,
            };
            let e = expr(inner.next().expect("order expr"), offset);
            Spanned {
                value: Expr::Order(op, Box::new(e)),
                span,
            }
        }
        Rule::probe_test => {
            let target = p.into_inner().find(not_keyword).expect("probe name");
            let names = if target.as_rule() == Rule::word_list {
                target
                    .into_inner()
                    .filter(not_keyword)
                    .map(|w| spanned_str(&w, offset))
                    .collect()
            } else {
                vec![spanned_str(&target, offset)]
            };
            Spanned {
                value: Expr::Probe(names),
                span,
            }
        }
        Rule::group_test => {
            let w = p.into_inner().find(not_keyword).expect("group name");
            Spanned {
                value: Expr::Group(spanned_str(&w, offset)),
                span,
            }
        }
        Rule::flag_test => {
            let flag = match p.as_str().trim() {
                "drop" => Flag::Drop,
                "free" => Flag::Free,
                _ => Flag::Clone,
            };
            Spanned {
                value: Expr::Flag(flag),
                span,
            }
        }
        Rule::field_test => {
            let mut inner = p.into_inner().filter(not_keyword);
            let field = spanned_str(&inner.next().expect("field"), offset);
            let op_pair = inner.next().expect("operator");
            let op = match op_pair.as_str().trim() {
                "==" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                ">=" => CmpOp::Ge,
                "has" => CmpOp::Has,
                "contains" => CmpOp::Contains,
                _ => CmpOp::In,
            };
            let v = inner.next().expect("value");
            let values = if v.as_rule() == Rule::value_list {
                v.into_inner()
                    .filter(not_keyword)
                    .map(|x| value(x, offset))
                    .collect()
            } else {
                vec![value(v, offset)]
            };
            Spanned {
                value: Expr::Field { field, op, values },
                span,
            }
        }
        other => unreachable!("unexpected {other:?} in an expression"),
    }
}

fn value(p: Pair<'_, Rule>, offset: usize) -> Spanned<String> {
    if p.as_rule() == Rule::string {
        string_value(p, offset)
    } else {
        spanned_str(&p, offset)
    }
}

/// Turns pest's expectation lists into words an operator reads.
fn describe_pest_error(v: &pest::error::ErrorVariant<Rule>, text: &str, at: usize) -> String {
    let found = text[at..]
        .split(|c: char| c.is_whitespace())
        .next()
        .filter(|s| !s.is_empty())
        .map(|s| format!("`{}`", s.chars().take(24).collect::<String>()))
        .unwrap_or_else(|| "the end of the rule".into());
    match v {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut wanted: Vec<&str> =
                positives.iter().filter_map(|r| expected_name(*r)).collect();
            wanted.sort_unstable();
            wanted.dedup();
            if wanted.is_empty() {
                format!("unexpected {found}")
            } else {
                format!("expected {}, found {found}", wanted.join(" or "))
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    }
}

fn expected_name(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::rule_def | Rule::kw_rule => "`rule ID {`",
        Rule::open_brace => "`{`",
        Rule::close_brace => "`}`",
        Rule::open_paren => "`(`",
        Rule::close_paren => "`)`",
        Rule::kw_and | Rule::kw_or => "`and`, `or`",
        Rule::kw_in => "`in`",
        Rule::kw_when
        | Rule::kw_level
        | Rule::kw_message
        | Rule::kw_advice
        | Rule::kw_tags
        | Rule::kw_see
        | Rule::kw_fallback
        | Rule::kw_explains => {
            "a clause (when, level, message, advice, tags, see, explains, fallback) or `}`"
        }
        Rule::kw_probe | Rule::kw_group => "a condition",
        Rule::rule_id => "a rule id",
        Rule::when_clause
        | Rule::level_clause
        | Rule::message_clause
        | Rule::advice_clause
        | Rule::tags_clause
        | Rule::see_clause
        | Rule::fallback_clause
        | Rule::explains_clause => {
            "a clause (when, level, message, advice, tags, see, explains, fallback) or `}`"
        }
        Rule::id_pattern => "a rule id or an id prefix ending in `*`",
        Rule::expr | Rule::and_expr | Rule::unary => "a condition",
        Rule::order_test | Rule::order_op => "a condition",
        Rule::probe_test | Rule::group_test | Rule::flag_test | Rule::field_test => "a condition",
        Rule::not_op => "a condition",
        Rule::cmp_op | Rule::in_op => "an operator (== != < <= > >= has in)",
        Rule::word => "a name",
        Rule::word_list | Rule::value_list => "a `[...]` list",
        Rule::string => "a quoted string",
        Rule::bare => "a value",
        Rule::EOI => "the end of the rule",
        _ => return None,
    })
}
