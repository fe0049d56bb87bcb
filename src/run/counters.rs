//! The aggregating modes' counters, read from the kernel's per-CPU maps
//! into a `Snapshot` (`--func-stats`: `func_hits`; `--latency-summary`:
//! `latency_hist`; `--rtt`: `rtt_hist`).

use crate::abi::{nt_hist, HIST_SLOTS};
use crate::events::snapshot::{Counters, Histogram, Snapshot};
use crate::load::session::Session;
use crate::spec::Mode;

/// The counters of `mode` now, None for a mode that keeps none. `probes`:
/// the attached probes' ids.
pub fn read(session: &Session, mode: &Mode, probes: &[u32], now: u64) -> Option<Snapshot> {
    let counters = match mode {
        Mode::FuncStats => Counters::FuncHits(
            probes
                .iter()
                .map(|id| {
                    let per_cpu = session.percpu_words("func_hits", *id);
                    (*id, per_cpu.iter().filter_map(|w| w.first()).sum())
                })
                .collect(),
        ),
        Mode::Latency(l) if l.summary => Counters::Latency(histogram(session, "latency_hist")),
        Mode::Rtt(r) if !r.detail => Counters::Rtt(histogram(session, "rtt_hist")),
        _ => return None,
    };
    Some(Snapshot { ts: now, counters })
}

/// A per-CPU `struct nt_hist` map, summed.
fn histogram(session: &Session, map: &str) -> Histogram {
    let mut h = Histogram::empty();
    for words in session.percpu_words(map, 0) {
        h.add(&histogram_of(&words));
    }
    h
}

/// One CPU's `struct nt_hist`, as u64 words (every field is one).
fn histogram_of(words: &[u64]) -> Histogram {
    use std::mem::offset_of;
    let word = |byte: usize| words.get(byte / 8).copied().unwrap_or(0);
    let slots = offset_of!(nt_hist, slots);
    Histogram {
        slots: (0..HIST_SLOTS).map(|k| word(slots + 8 * k)).collect(),
        count: word(offset_of!(nt_hist, count)),
        sum_ns: word(offset_of!(nt_hist, sum_ns)),
        max_ns: word(offset_of!(nt_hist, max_ns)),
    }
}
