//! Everything printed on stdout: packet summaries, event and drop lines,
//! timestamps, JSON lines, and the pipeline that decides what is printed
//! when. Diagnostics and progress go to stderr through `log`.

pub mod diagnosis;
pub mod json;
pub mod lines;
pub mod metrics;
pub mod packet;
pub mod pipeline;
pub mod text;
pub mod time;
