//! The aggregating modes' output: `--func-stats` tables and
//! `--latency-summary` histograms, for one interval (the difference of two
//! snapshots) and for the whole run, as text or JSON lines.

use super::json::{self, JsonFuncHit, JsonHistogram, JsonHistogramSlot};
use super::lines::{duration, Formatter};
use crate::catalogue::table::probe_by_id;
use crate::events::snapshot::Histogram;
use std::fmt::Write as _;

/// Percentiles the summaries report.
const QUANTILES: [(f64, &str); 4] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")];

/// `1 packet`, `2 packets`.
fn counted(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Hits per probe, busiest first, ties by name.
fn sorted_hits(hits: &[(u32, u64)]) -> Vec<(&'static str, u64)> {
    let mut v: Vec<(&'static str, u64)> = hits
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(id, n)| (probe_by_id(*id).map_or("?", |p| p.name), *n))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

/// A `--func-stats` table: `title` (with the time when `ts` is given),
/// then one line per probe hit.
pub fn func_table_text(
    fmt: &Formatter<'_>,
    ts: Option<u64>,
    title: &str,
    hits: &[(u32, u64)],
) -> String {
    let sorted = sorted_hits(hits);
    let total: u64 = sorted.iter().map(|(_, n)| n).sum();
    let mut s = String::new();
    if let Some(ts) = ts {
        let _ = write!(s, "[{}] ", fmt.clock.format(ts));
    }
    let _ = writeln!(
        s,
        "{title}: {} on {}",
        counted(total, "hit"),
        counted(sorted.len() as u64, "probe")
    );
    for (name, n) in sorted {
        let _ = writeln!(s, "    {name:<32} {n:>12}");
    }
    s.push('\n');
    s
}

/// A `--func-stats` JSON line.
pub fn func_table_json(
    fmt: &Formatter<'_>,
    ts: u64,
    interval_ns: Option<u64>,
    hits: &[(u32, u64)],
) -> String {
    let functions = sorted_hits(hits)
        .into_iter()
        .map(|(probe, hits)| JsonFuncHit {
            probe: probe.to_string(),
            hits,
        })
        .collect();
    json::func_stats_line(fmt, ts, interval_ns, functions)
}

/// The bars of a log2 histogram, bcc-style.
fn bars(h: &Histogram) -> String {
    let last = h.slots.iter().rposition(|n| *n > 0);
    let Some(last) = last else {
        return String::new();
    };
    let first = h.slots.iter().position(|n| *n > 0).unwrap_or(0);
    let peak = h.slots.iter().copied().max().unwrap_or(1).max(1);
    let mut s = String::from("         usecs                  : count      distribution\n");
    for k in first..=last {
        let (lo, hi) = Histogram::slot_range(k);
        let n = h.slots[k];
        let width = ((n as f64 / peak as f64) * 40.0).round() as usize;
        let width = if n > 0 { width.max(1) } else { 0 };
        let _ = writeln!(
            s,
            "    {lo:>10} -> {:<10}     : {n:<10} |{:<40}|",
            hi - 1,
            "*".repeat(width)
        );
    }
    s
}

/// `p50 <= 64us, p90 <= 128us, ...`
fn quantile_text(h: &Histogram) -> String {
    QUANTILES
        .iter()
        .filter_map(|(q, name)| {
            h.quantile_bound_us(*q)
                .map(|b| format!("{name} < {}", duration(b * 1000)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `--latency-summary` or `--rtt` histogram of one interval (`ts`
/// given) or of the whole run (with mean, maximum and percentiles); `unit`
/// is what one count is (`packet`, `update`).
pub fn histogram_text(
    fmt: &Formatter<'_>,
    ts: Option<u64>,
    title: &str,
    unit: &str,
    h: &Histogram,
    total: bool,
) -> String {
    let mut s = String::new();
    if let Some(ts) = ts {
        let _ = write!(s, "[{}] ", fmt.clock.format(ts));
    }
    let _ = write!(s, "{title}: {}", counted(h.count, unit));
    if let Some(mean) = h.mean_ns() {
        let _ = write!(s, ", mean {}", duration(mean));
    }
    if total && h.count > 0 {
        let _ = write!(s, ", max {}, {}", duration(h.max_ns), quantile_text(h));
    }
    s.push('\n');
    s.push_str(&bars(h));
    s.push('\n');
    s
}

/// A `--latency-summary` (`kind` latency_histogram) or `--rtt`
/// (rtt_histogram) JSON line.
pub fn histogram_json(
    kind: json::Kind,
    fmt: &Formatter<'_>,
    ts: u64,
    interval_ns: Option<u64>,
    h: &Histogram,
) -> String {
    let slots = h
        .slots
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| {
            let (lo, hi) = Histogram::slot_range(k);
            JsonHistogramSlot {
                from_us: lo,
                to_us: hi,
                count: *n,
            }
        })
        .collect();
    let quantile = |q: f64| h.quantile_bound_us(q);
    json::histogram_line(
        kind,
        fmt,
        ts,
        interval_ns,
        JsonHistogram {
            count: h.count,
            mean_ns: h.mean_ns(),
            max_ns: (interval_ns.is_none() && h.count > 0).then_some(h.max_ns),
            p50_below_us: quantile(0.5),
            p90_below_us: quantile(0.9),
            p99_below_us: quantile(0.99),
            p999_below_us: quantile(0.999),
            slots,
        },
    )
}
