//! Formatters and sinks: packet summaries, event and drop lines,
//! timestamps, findings, JSON lines and Prometheus metrics. They render what
//! the pipeline hands them and hold no run state of their own. Diagnostics
//! and progress go to stderr through `log`.

pub mod aggregate;
pub mod diagnosis;
pub mod json;
pub mod lines;
pub mod metrics;
pub mod packet;
pub mod pcap;
pub mod text;
pub mod time;

/// How data is printed on stdout: the original's text shapes, or JSON lines
/// (docs/json.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// `--color`: when text output is colored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set (https://no-color.org)
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to color, given where stdout goes and NO_COLOR.
    pub fn enabled(self, format: Format) -> bool {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        format == Format::Text
            && match self {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => !no_color && std::io::stdout().is_terminal(),
            }
    }
}
