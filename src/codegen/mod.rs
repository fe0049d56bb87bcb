//! Build-time generation of the BPF C and the Rust probe table from the
//! catalogue. Compiled into the library too, so tests can render a fixture
//! catalogue and snapshot the result.

pub mod render;
