//! Why loading failed: the error every loading step returns, naming the
//! libbpf step that refused.

/// Why the BPF object could not be loaded and attached.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// libbpf refused a step: opening, loading (the verifier), attaching.
    #[error("{step}: {source}")]
    Libbpf {
        step: String,
        source: libbpf_rs::Error,
    },
    /// The object lacks what this build expects of it: a rebuild is due.
    #[error("{0}")]
    Object(String),
}

/// Names the libbpf step that failed.
pub(super) fn step(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> LoadError {
    let step = what.into();
    move |source| LoadError::Libbpf { step, source }
}
