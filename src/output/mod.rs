//! Everything printed on stdout: packet summaries, event and drop lines,
//! timestamps. Diagnostics and progress go to stderr through `log`.

pub mod diagnosis;
pub mod lines;
pub mod packet;
pub mod time;
