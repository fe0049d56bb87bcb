//! Loading: choosing probes (`select`), deciding per probe how it attaches
//! on this kernel (`plan`), and loading/attaching the BPF object (`attach`).

pub mod attach;
pub mod generic;
pub mod plan;
pub mod select;
