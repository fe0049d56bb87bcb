//! The manual pages clap cannot make: nettrace-rules(5), the rule language,
//! converted from docs/rules.md (so the page and the reference cannot
//! drift), and nettrace-drop-reasons(7), every kernel drop reason explained
//! by the rule pack's own diagnosis of it. `nettrace drop-reasons` prints
//! the same explanations for the reasons the running kernel's BTF defines.

use crate::rules::compile::Part;

/// The rule language reference, as markdown.
const RULES_MD: &str = include_str!("../../docs/rules.md");

/// What the pack says of one drop reason: the rule `drop.<REASON>`.
pub struct Explained {
    pub reason: String,
    /// `info`, `warn` or `error`; None when the pack has no rule for it.
    pub level: Option<&'static str>,
    pub message: String,
    pub advice: String,
}

/// Explains each of `names` (without the SKB_DROP_REASON_ prefix) from the
/// built-in rule pack.
pub fn explain<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Explained> {
    let rules = crate::rules::load_for_run(&[], true, None)
        .map(|l| l.rules)
        .unwrap_or_default();
    names
        .into_iter()
        // The enum's markers, never the reason of a drop.
        .filter(|n| !matches!(*n, "NOT_DROPPED_YET" | "MAX"))
        .map(|name| {
            let id = format!("drop.{name}");
            match rules.iter().find(|r| r.id == id) {
                Some(r) => Explained {
                    reason: name.to_string(),
                    level: Some(r.level.name()),
                    message: template_text(&r.message),
                    advice: r.advice.as_deref().map(template_text).unwrap_or_default(),
                },
                None => Explained {
                    reason: name.to_string(),
                    level: None,
                    message: "no diagnosis in the rule pack (a reason newer than the pack, or one that only speaks through the generic drop rule)".into(),
                    advice: String::new(),
                },
            }
        })
        .collect()
}

/// A message template as written: `{placeholder}` and `[optional part]`.
fn template_text(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Lit(s) => s.clone(),
            Part::Field(f) => format!("{{{}}}", f.name()),
            Part::Optional(inner) => format!("[{}]", template_text(inner)),
        })
        .collect()
}

/// nettrace-drop-reasons(7): the reasons of `names`, explained.
pub fn drop_reasons_page(names: &[&str]) -> String {
    let mut page = format!(
        ".TH NETTRACE-DROP-REASONS 7 \"\" \"nettrace {}\" \"nettrace\"\n",
        env!("CARGO_PKG_VERSION")
    );
    page.push_str(
        ".SH NAME\nnettrace-drop-reasons \\- why the kernel dropped a packet, reason by reason\n",
    );
    page.push_str(&roff_paragraphs(&[
        ".SH DESCRIPTION",
        "Since Linux 5.17 the kernel passes a reason to kfree_skb when it drops a packet (enum skb_drop_reason); nettrace --drop prints it and nettrace --diag turns it into a finding with advice. Kernels differ in which reasons they define: this page lists the reasons of the kernels nettrace is tested on, read from their BTF. \\fBnettrace drop-reasons\\fR lists the reasons of the running kernel (or of --btf FILE), explained the same way; \\fBnettrace --check\\fR counts them.",
        "Each entry gives the level of the rule pack's finding (error: a packet that should have been delivered was lost; warn: a drop that is usually part of normal operation but worth noticing; info: not a loss worth acting on), its message and its advice. {location} and the other braces are filled in from the packet when the finding is printed; a part in [brackets] is printed only when its facts are known.",
        ".SH REASONS",
    ]));
    for e in explain(names.iter().copied()) {
        page.push_str(&format!(".TP\n.B {}\n", escape(&e.reason)));
        match e.level {
            Some(level) => page.push_str(&format!("({level}) {}\n", escape(&e.message))),
            None => page.push_str(&format!("{}\n", escape(&e.message))),
        }
        if !e.advice.is_empty() {
            page.push_str(&format!(".br\nAdvice: {}\n", escape(&e.advice)));
        }
    }
    page.push_str(".SH SEE ALSO\n.BR nettrace (8),\n.BR nettrace-rules (5)\n");
    page
}

fn roff_paragraphs(lines: &[&str]) -> String {
    let mut out = String::new();
    for l in lines {
        if l.starts_with('.') {
            out.push_str(l);
        } else {
            out.push_str(".PP\n");
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

/// nettrace-rules(5): docs/rules.md in roff.
pub fn rules_page() -> String {
    let mut out = format!(
        "'\\\" t\n.TH NETTRACE-RULES 5 \"\" \"nettrace {}\" \"nettrace\"\n.SH NAME\nnettrace-rules \\- the diagnosis rule language of nettrace\n",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(&markdown_to_roff(RULES_MD));
    out.push_str(".SH FILES\n.TP\n.I /etc/nettrace/rules.d/*.rules\nsite rules, read after the built-in pack by --diag and --monitor (unless --no-site-rules)\n");
    out.push_str(".SH SEE ALSO\n.BR nettrace (8),\n.BR nettrace-drop-reasons (7)\n");
    out
}

/// The subset of markdown the docs use: headings, paragraphs, lists, code
/// blocks, tables, and inline code, bold, italics and links.
pub fn markdown_to_roff(md: &str) -> String {
    let mut out = String::new();
    let mut lines = md.lines().peekable();
    let mut first_heading = true;
    while let Some(line) = lines.next() {
        if line.starts_with("```") {
            out.push_str(".PP\n.RS 4\n.nf\n");
            for code in lines.by_ref() {
                if code.starts_with("```") {
                    break;
                }
                out.push_str(&protect_line(&escape(code).replace('-', "\\-")));
                out.push('\n');
            }
            out.push_str(".fi\n.RE\n");
        } else if let Some(h) = line.strip_prefix("### ") {
            out.push_str(&format!(".SS \"{}\"\n", plain(h)));
        } else if let Some(h) = line.strip_prefix("## ") {
            out.push_str(&format!(".SH \"{}\"\n", plain(h).to_uppercase()));
        } else if let Some(h) = line.strip_prefix("# ") {
            // The document's title: the page's NAME says it already.
            if !first_heading {
                out.push_str(&format!(".SH \"{}\"\n", plain(h).to_uppercase()));
            }
            first_heading = false;
        } else if line.starts_with('|') {
            let mut rows = vec![line];
            while let Some(next) = lines.peek().filter(|l| l.starts_with('|')) {
                rows.push(next);
                lines.next();
            }
            out.push_str(&table(&rows));
        } else if let Some(item) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            let text = join_continued(item, &mut lines, |l| {
                l.starts_with("  ") && !l.trim().is_empty()
            });
            out.push_str(".IP \\(bu 2\n");
            out.push_str(&protect_line(&inline(&text)));
            out.push('\n');
        } else if line.trim().is_empty() {
            continue;
        } else {
            let text = join_continued(line.trim(), &mut lines, |l| {
                !l.trim().is_empty()
                    && !l.starts_with('#')
                    && !l.starts_with("```")
                    && !l.starts_with('|')
                    && !l.starts_with("- ")
            });
            out.push_str(".PP\n");
            out.push_str(&protect_line(&inline(&text)));
            out.push('\n');
        }
    }
    out
}

/// `first` joined with the lines after it that `continues` accepts (a
/// wrapped paragraph or list item), consumed from `lines`.
fn join_continued<'a>(
    first: &str,
    lines: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
    continues: impl Fn(&str) -> bool,
) -> String {
    let mut text = first.to_string();
    while let Some(cont) = lines.next_if(|l| continues(l)) {
        text.push(' ');
        text.push_str(cont.trim());
    }
    text
}

/// A markdown table as a tbl(1) table; the separator row is dropped.
fn table(rows: &[&str]) -> String {
    let cells = |row: &str| -> Vec<String> {
        row.trim()
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect()
    };
    let body: Vec<Vec<String>> = rows
        .iter()
        .filter(|r| !r.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')))
        .map(|r| cells(r))
        .collect();
    let columns = body.iter().map(Vec::len).max().unwrap_or(1);
    let mut out = String::from(".PP\n.TS\nallbox;\n");
    let format: Vec<&str> = (0..columns)
        .map(|i| if i + 1 == columns { "lx" } else { "l" })
        .collect();
    out.push_str(&format!("{}.\n", format.join(" ")));
    for row in body {
        let cols: Vec<String> = (0..columns)
            .map(|i| {
                format!(
                    "T{{\n{}\nT}}",
                    protect_line(&inline(row.get(i).map_or("", |c| c)))
                )
            })
            .collect();
        out.push_str(&cols.join("\t"));
        out.push('\n');
    }
    out.push_str(".TE\n");
    out
}

/// Backslashes escaped for roff, and characters beyond ASCII written as
/// groff's `\[uXXXX]` (troff reads its input as Latin-1).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_char(&mut out, c);
    }
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\e"),
        c if c.is_ascii() => out.push(c),
        c => out.push_str(&format!("\\[u{:04X}]", c as u32)),
    }
}

/// A line that would start with a control character starts with `\&`.
fn protect_line(line: &str) -> String {
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}")
    } else {
        line.to_string()
    }
}

/// Heading text: markup removed, quotes kept out of the macro argument.
fn plain(text: &str) -> String {
    escape(&text.replace(['`', '*'], "").replace('"', "'"))
}

/// Inline markup: `code` bold, **bold** bold, *em* italic, [text](url) text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        if c == '`' {
            if let Some(end) = after.find('`') {
                out.push_str(&format!(
                    "\\fB{}\\fR",
                    escape(&after[..end]).replace('-', "\\-")
                ));
                rest = &after[end + 1..];
                continue;
            }
        } else if rest.starts_with("**") {
            if let Some(end) = rest[2..].find("**") {
                out.push_str(&format!("\\fB{}\\fR", inline(&rest[2..2 + end])));
                rest = &rest[2 + end + 2..];
                continue;
            }
        } else if c == '*' && after.chars().next().is_some_and(|n| !n.is_whitespace()) {
            if let Some(end) = after.find('*') {
                out.push_str(&format!("\\fI{}\\fR", inline(&after[..end])));
                rest = &after[end + 1..];
                continue;
            }
        } else if c == '[' {
            if let Some((label, tail)) = after.split_once("](") {
                if let Some(close) = tail.find(')') {
                    if !label.contains('[') {
                        out.push_str(&inline(label));
                        rest = &tail[close + 1..];
                        continue;
                    }
                }
            }
        }
        push_char(&mut out, c);
        rest = after;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_roff() {
        let roff = markdown_to_roff(
            "# Title\n\nSome `--diag` and **bold** text,\ncontinued [here](x.md).\n\n## A section\n\n- item one\n  wrapped\n\n```\n.rules -x\n```\n\n| a | b |\n|---|---|\n| `x` | y |\n",
        );
        insta::assert_snapshot!(roff);
    }

    #[test]
    fn every_heading_of_the_reference_is_in_the_page() {
        let page = rules_page();
        for h in RULES_MD.lines().filter_map(|l| l.strip_prefix("## ")) {
            let h = plain(h).to_uppercase();
            assert!(
                page.contains(&format!(".SH \"{h}\"")),
                "missing section {h}"
            );
        }
    }

    #[test]
    fn drop_reasons_are_explained_by_their_rules() {
        let e = explain(["NO_SOCKET", "NOT_A_REASON_ANY_KERNEL_HAS"]);
        assert!(e[0].level.is_some(), "drop.NO_SOCKET is in the pack");
        assert!(!e[0].message.is_empty());
        assert_eq!(e[1].level, None);
    }
}
