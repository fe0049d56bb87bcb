//! The words every stage shares, each defined once: protocol numbers and
//! names, TCP flag letters, the drop-reason names of the tested kernels. Nothing here knows about BPF, rules or output;
//! every other module may use it.

pub mod drop_reasons;
pub mod family;
pub mod proto;
pub mod rst_reasons;
pub mod tcp;
