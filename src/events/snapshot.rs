//! What the aggregating modes read from the kernel instead of events: the
//! counters the BPF side keeps (`func_hits`, `latency_hist`), summed over
//! CPUs, as of one moment. Counters only grow during a run, so what
//! happened in an interval is the difference of two snapshots.

use crate::abi::HIST_SLOTS;
use serde::{Deserialize, Serialize};

/// A log2 histogram of durations (`struct nt_hist`): `slots[k]` counts
/// values in [2^k, 2^(k+1)) microseconds, `slots[0]` also 0.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Histogram {
    pub slots: Vec<u64>,
    pub count: u64,
    pub sum_ns: u64,
    /// The longest value seen in the whole run (not per interval).
    pub max_ns: u64,
}

impl Histogram {
    /// An empty histogram of the kernel's size.
    pub fn empty() -> Histogram {
        Histogram {
            slots: vec![0; HIST_SLOTS],
            ..Default::default()
        }
    }

    /// What was added since `earlier`.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        Histogram {
            slots: self
                .slots
                .iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(earlier.slots.get(i).copied().unwrap_or(0)))
                .collect(),
            count: self.count.saturating_sub(earlier.count),
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
            max_ns: self.max_ns,
        }
    }

    /// Adds one CPU's (or one value's) counts.
    pub fn add(&mut self, other: &Histogram) {
        if self.slots.len() < other.slots.len() {
            self.slots.resize(other.slots.len(), 0);
        }
        for (a, b) in self.slots.iter_mut().zip(&other.slots) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Counts one value, as the kernel's `hist_add` does.
    pub fn record(&mut self, ns: u64) {
        let us = ns / 1000;
        let slot = if us == 0 { 0 } else { us.ilog2() as usize };
        if self.slots.len() < HIST_SLOTS {
            self.slots.resize(HIST_SLOTS, 0);
        }
        let slot = slot.min(self.slots.len() - 1);
        self.slots[slot] += 1;
        self.count += 1;
        self.sum_ns += ns;
        self.max_ns = self.max_ns.max(ns);
    }

    /// The range of slot `k` in microseconds, `[lo, hi)`.
    pub fn slot_range(k: usize) -> (u64, u64) {
        if k == 0 {
            (0, 2)
        } else {
            (1u64 << k, 1u64 << (k + 1))
        }
    }

    /// The upper bound (microseconds) of the slot holding quantile `q`
    /// (0 < q <= 1): at least a fraction `q` of the values are below it.
    /// None when empty.
    pub fn quantile_bound_us(&self, q: f64) -> Option<u64> {
        let total: u64 = self.slots.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (k, n) in self.slots.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(Histogram::slot_range(k).1);
            }
        }
        None
    }

    /// The mean in nanoseconds.
    pub fn mean_ns(&self) -> Option<u64> {
        (self.count > 0).then(|| self.sum_ns / self.count)
    }
}

/// The kernel's counters of one aggregating mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Counters {
    /// `--func-stats`: hits per probe id (probes never hit are left out).
    FuncHits(Vec<(u32, u64)>),
    /// `--latency-summary`: every skb's span.
    Latency(Histogram),
    /// `--rtt`: the srtt after every update (appended last: recordings
    /// number the variants).
    Rtt(Histogram),
}

/// The counters at one moment (CLOCK_MONOTONIC ns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub ts: u64,
    pub counters: Counters,
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn quantiles_are_the_bounds_of_the_slots_that_hold_them() {
        let mut h = Histogram::empty();
        for us in [1, 3, 5, 100, 100, 100, 100, 100, 100, 5000] {
            h.record(us * 1000);
        }
        // 1us -> slot 0 [0,2); 3 -> slot 1 [2,4); 5 -> slot 2 [4,8);
        // 100 -> slot 6 [64,128); 5000 -> slot 12 [4096,8192).
        assert_eq!(h.quantile_bound_us(0.1), Some(2));
        assert_eq!(h.quantile_bound_us(0.5), Some(128));
        assert_eq!(h.quantile_bound_us(0.9), Some(128));
        assert_eq!(h.quantile_bound_us(0.99), Some(8192));
        assert_eq!(h.count, 10);
        assert_eq!(h.max_ns, 5_000_000);
        assert_eq!(h.mean_ns(), Some(560_900));
        assert_eq!(Histogram::empty().quantile_bound_us(0.5), None);
    }

    #[test]
    fn an_interval_is_the_difference_of_two_snapshots() {
        let mut a = Histogram::empty();
        a.record(10_000);
        let mut b = a.clone();
        b.record(10_000);
        b.record(1_000_000);
        let d = b.since(&a);
        assert_eq!(d.count, 2);
        assert_eq!(d.slots.iter().sum::<u64>(), 2);
        assert_eq!(d.sum_ns, 1_010_000);
    }
}
