//! The words every stage shares, each defined once: protocol numbers and
//! names, TCP flag letters. Nothing here knows about BPF, rules or output;
//! every other module may use it.

pub mod proto;
pub mod tcp;
