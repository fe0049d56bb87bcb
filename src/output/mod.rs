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
