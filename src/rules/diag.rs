//! Lint diagnostics: a stable code, a severity, a place in a file, a
//! message and help; rendered as text (with the source line and a caret),
//! JSON or SARIF. Every code is a `Code`, defined with its severity and
//! meaning in one table (and listed in `docs/rules.md`).

use super::ast::Span;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Defines `Code` from one table: a variant cannot exist without its
/// severity and meaning (`rules lint --explain`, SARIF, docs/rules.md).
macro_rules! codes {
    ($($code:ident $severity:ident $meaning:literal,)*) => {
        /// A lint diagnostic's stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($code,)*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$code,)*];

            /// As printed: `E0114`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$code => stringify!($code),)*
                }
            }

            pub fn severity(self) -> Severity {
                match self {
                    $(Code::$code => Severity::$severity,)*
                }
            }

            /// What it means, in one line.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$code => $meaning,)*
                }
            }
        }
    };
}

codes! {
    E0001 Error "syntax error",
    E0002 Error "a clause given twice in one rule",
    E0003 Error "text outside any rule",
    E0101 Error "rule without `when`",
    E0102 Error "rule without `level`",
    E0103 Error "rule without `message`",
    E0104 Error "unknown level",
    E0110 Error "unknown probe",
    E0111 Error "unknown group",
    E0112 Error "unknown field",
    E0113 Error "unknown drop reason",
    E0114 Error "unknown named value for this field or probe",
    E0117 Error "unknown TCP reset reason",
    E0115 Error "value of the wrong type for this field",
    E0116 Error "operator not valid for this field",
    E0120 Error "`ret` tested without naming the probe",
    E0121 Error "`ret` tested on a probe without a return value",
    E0130 Error "duplicate rule id",
    E0140 Error "unknown placeholder in a message or advice",
    E0141 Error "a `[...]` group in a message that is unbalanced or holds no placeholder",
    N0301 Note "a rule replaces an earlier one with the same id",
    N0302 Note "a drop reason this kernel does not define",
    N0303 Note "a TCP reset reason this kernel does not define",
    W0201 Warning "a rule that can never match",
    W0202 Warning "a rule shadowed by another with the same condition",
    W0203 Warning "an error-level rule without advice",
    W0204 Warning "`explains` names no loaded rule",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    /// Always `code.severity()` (private: a diagnostic is made only by
    /// `SourceFile::diagnostic`, so it cannot disagree with its code);
    /// a field so JSON keeps it in place.
    severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    #[serde(skip)]
    pub span: Span,
    pub message: String,
    /// Shown under the caret: "did you mean ...", the accepted values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The source line, for the text rendering.
    #[serde(skip)]
    pub source_line: String,
}

/// A file's text with line starts, to turn byte spans into line:col.
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path: path.to_path_buf(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self.text[start..offset.min(self.text.len())]
            .chars()
            .count()
            + 1;
        (line, col)
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    pub fn diagnostic(
        &self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Diagnostic {
        let (line, col) = self.line_col(span.start);
        Diagnostic {
            code,
            severity: code.severity(),
            file: self.path.clone(),
            line,
            col,
            span,
            message: message.into(),
            help,
            source_line: self.line_text(line).to_string(),
        }
    }
}

impl Diagnostic {
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// rustc-style text: header, location, source line, caret, help.
    pub fn render_text(&self) -> String {
        let mut s = format!(
            "{}[{}]: {}\n",
            self.severity.as_str(),
            self.code,
            self.message
        );
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(
            s,
            "{pad}--> {}:{}:{}",
            self.file.display(),
            self.line,
            self.col
        );
        let _ = writeln!(s, "{pad} |");
        let _ = writeln!(s, "{} | {}", self.line, self.source_line);
        let width = (self.span.end.saturating_sub(self.span.start))
            .max(1)
            .min(self.source_line.len().saturating_sub(self.col - 1).max(1));
        let _ = write!(
            s,
            "{pad} | {}{}",
            " ".repeat(self.col - 1),
            "^".repeat(width)
        );
        if let Some(h) = &self.help {
            let _ = write!(s, " {h}");
        }
        s.push('\n');
        s
    }
}

/// (errors, warnings) among diagnostics.
pub fn counts(diags: &[Diagnostic]) -> (usize, usize) {
    let of = |s| diags.iter().filter(|d| d.severity == s).count();
    (of(Severity::Error), of(Severity::Warning))
}

/// `--format json`: one object with every diagnostic and the counts.
pub fn render_json(diags: &[Diagnostic], files: usize, rules: usize) -> String {
    let (errors, warnings) = counts(diags);
    serde_json::to_string_pretty(&serde_json::json!({
        "files": files,
        "rules": rules,
        "errors": errors,
        "warnings": warnings,
        "diagnostics": diags,
    }))
    .expect("diagnostics serialize")
}

/// `--format sarif`: SARIF 2.1.0, for code-scanning dashboards.
pub fn render_sarif(diags: &[Diagnostic]) -> String {
    let rules: Vec<serde_json::Value> = Code::ALL
        .iter()
        .map(|c| serde_json::json!({"id": c.as_str(), "shortDescription": {"text": c.meaning()}}))
        .collect();
    let results: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "note",
            };
            let text = match &d.help {
                Some(h) => format!("{} ({h})", d.message),
                None => d.message.clone(),
            };
            serde_json::json!({
                "ruleId": d.code,
                "level": level,
                "message": {"text": text},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": d.file.display().to_string()},
                    "region": {"startLine": d.line, "startColumn": d.col}
                }}]
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "nettrace rules lint",
                "informationUri": "https://github.com/OpenCloudOS/nettrace",
                "rules": rules
            }},
            "results": results
        }]
    }))
    .expect("sarif serializes")
}

/// "did you mean `x`?" for the closest candidate, when close enough.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let wrong_l = wrong.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&wrong_l, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.82)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}
