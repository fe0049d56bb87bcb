//! The probe catalogue: the schema of `probes.yaml` (checked at build time)
//! and, at run time, the probe and group table generated from it.

pub mod nfnames;
pub mod retnames;
pub mod schema;
pub mod table;
