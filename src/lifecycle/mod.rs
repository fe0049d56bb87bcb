//! Packet lifecycles: grouping events into one context per packet, across
//! clones and copies, until every skb of the context is freed or dropped.
//!
//! The BPF side remembers which skbs matched the filters (so a packet stays
//! tracked after NAT rewrites it) and marks their later events `TRACKED`.
//! Here, events are appended to their skb's context; a clone event adds the
//! new skb to it; a free or drop retires an skb. A context whose skbs are
//! all retired is finished after a short grace period (exit events of
//! functions that freed the skb arrive after the free), and a context that
//! stays silent too long is flushed as incomplete. The number of open
//! contexts is capped, so memory stays bounded on long runs.
//!
//! A context also says what it may be missing: events the kernel lost
//! (ring buffer full) while the packet was traced, or its end, when the
//! run stopped or the cap forced it out while the packet was still active.
//! Rules must not read the absence of an event as proof on such a context.
//!
//! Time here is CLOCK_MONOTONIC nanoseconds, the clock of event
//! timestamps: an event's activity counts at its own timestamp, and the
//! caller says when to look for finished contexts (the live loop at the
//! current time, a replay at the times the recording noted), so a live
//! run and its replay make the same decisions.

pub mod identity;

use crate::events::{flags, Event};
use rustc_hash::FxHashMap as HashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

/// How long a finished context waits for late events.
pub const GRACE: Duration = Duration::from_millis(200);
/// How long a context may stay silent before it is flushed as incomplete.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Open contexts kept at most; beyond, the oldest is flushed as incomplete.
pub const MAX_OPEN: usize = 65_536;

/// Events kept per context; a packet looping through a misconfigured
/// path would otherwise grow one context without bound.
pub const MAX_EVENTS: usize = 4096;

/// Room for the first events when a context opens: growing from 0 goes
/// 4, 8, 16 anyway; starting at 8 skips the small steps, each a copy of
/// the events so far. (On the 5M-event replay of BENCHMARKS.md, 8 against
/// 4 runs 1.4% fewer instructions at the same peak RSS; 16 held 139 MB
/// instead of 94, as contexts wait out their grace period before shrinking.)
const FIRST_EVENTS: usize = 8;

/// A packet's life as seen so far.
#[derive(Debug, Clone)]
pub struct Context {
    pub id: u64,
    /// Every skb of the context, in order of appearance.
    pub skbs: Vec<u64>,
    pub events: Vec<Event>,
    /// False when flushed before every skb was freed.
    pub complete: bool,
    /// Events past MAX_EVENTS, counted but not kept.
    pub truncated: u64,
    /// skbs of this context that came back for another packet before any
    /// probe saw them freed (their free path has no probe on this kernel).
    pub free_unseen: Vec<u64>,
    /// The kernel lost events while this packet was traced: any of its
    /// events may be missing.
    pub events_lost: bool,
    /// Flushed while the packet was still active (the run ended, or the cap
    /// forced it out): events after its last one may be missing. A context
    /// flushed after IDLE_TIMEOUT of silence is incomplete but not cut
    /// short: that silence is itself an observation.
    pub cut_short: bool,
    live: Vec<u64>,
    last_activity: u64,
    finished_at: Option<u64>,
}

impl Context {
    /// Whether every event of `ev`'s skb here is younger than `ev`.
    fn started_after(&self, ev: &Event) -> bool {
        self.events
            .iter()
            .filter(|e| e.skb == ev.skb)
            .all(|e| e.ts > ev.ts)
    }

    /// Events in time order (events of several CPUs arrive interleaved).
    pub fn sorted_events(&self) -> Vec<&Event> {
        let mut v: Vec<&Event> = self.events.iter().collect();
        v.sort_by_key(|e| e.ts);
        v
    }
}

/// Groups events into contexts.
///
/// Finding the contexts ready to print must not scan every open context
/// at every tick: at tens of thousands of packets a second, the contexts
/// waiting out their grace period number thousands, and the scan took two
/// thirds of nettrace's CPU. Two time-ordered queues say which contexts to
/// look at: `finishing` (when each finished) and `idle_check` (when each
/// was last seen active, refreshed lazily). An entry can be stale (the
/// context went on, or is gone); a popped entry is checked against the
/// context itself.
#[derive(Default)]
pub struct Tracker {
    open: HashMap<u64, Context>,
    by_skb: HashMap<u64, u64>,
    /// Context ids in creation order, with removed ones among them until
    /// they are skipped or compacted away.
    order: VecDeque<u64>,
    finishing: BinaryHeap<Reverse<(u64, u64)>>,
    idle_check: BinaryHeap<Reverse<(u64, u64)>>,
    next_id: u64,
    /// Contexts flushed incomplete because of the cap or the idle timeout.
    pub expired: u64,
    /// Contexts whose first event is at or before this time (ns) open
    /// with `events_lost`: the kernel lost events of packets whose later
    /// events are still to come (`events_lost`).
    lost_until: u64,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    pub fn open_contexts(&self) -> usize {
        self.open.len()
    }

    /// Adds one event; returns contexts the cap forced out.
    pub fn push(&mut self, ev: Event) -> Vec<Context> {
        let mut out = Vec::new();
        let now = ev.ts;
        // Only the kernel knows whether an skb is still the packet it
        // tracked: an event without the tracked mark starts a new packet,
        // even at an address a context still holds (its free was not seen).
        // Except an event older than the context: a function's exit reports
        // its entry's time and mark, so it arrives after events that fired
        // inside it.
        let known = self.by_skb.get(&ev.skb).copied();
        let existing = known.filter(|id| {
            let ctx = &self.open[id];
            let is_new = |p: &Event| identity::is_new_packet(p, &ev);
            (ev.flags & flags::TRACKED != 0 || ctx.started_after(&ev))
                && !ctx
                    .events
                    .iter()
                    .rev()
                    .find(|e| e.skb == ev.skb)
                    .is_some_and(is_new)
        });
        if existing.is_none() {
            if let Some(old) = known {
                self.retire_unseen(old, ev.skb, now);
            }
        }
        let id = match existing {
            Some(id) => id,
            None => {
                if self.open.len() >= MAX_OPEN {
                    if let Some(c) = self.evict_oldest() {
                        out.push(c);
                    }
                }
                let id = self.next_id;
                self.next_id += 1;
                self.open.insert(
                    id,
                    Context {
                        id,
                        skbs: vec![ev.skb],
                        events: Vec::with_capacity(FIRST_EVENTS),
                        complete: true,
                        truncated: 0,
                        free_unseen: Vec::new(),
                        events_lost: now <= self.lost_until,
                        cut_short: false,
                        live: vec![ev.skb],
                        last_activity: now,
                        finished_at: None,
                    },
                );
                self.order.push_back(id);
                self.idle_check.push(Reverse((now, id)));
                self.by_skb.insert(ev.skb, id);
                id
            }
        };
        let ctx = self.open.get_mut(&id).expect("context exists");
        ctx.last_activity = ctx.last_activity.max(now);
        if let Some(child) = ev.clone {
            if !ctx.skbs.contains(&child) {
                ctx.skbs.push(child);
            }
            if !ctx.live.contains(&child) {
                ctx.live.push(child);
            }
            self.by_skb.insert(child, id);
            ctx.finished_at = None;
        }
        let mut finished = false;
        if ev.flags & flags::FREE != 0 {
            ctx.live.retain(|s| *s != ev.skb);
            if ctx.live.is_empty() {
                ctx.finished_at = Some(ctx.last_activity);
                self.finishing.push(Reverse((ctx.last_activity, id)));
                finished = true;
            }
        }
        if ctx.events.len() < MAX_EVENTS {
            ctx.events.push(ev);
        } else {
            ctx.truncated += 1;
        }
        if finished {
            // Most held events belong to finished packets waiting out their
            // grace period: give back the vector's growth slack (in place).
            ctx.events.shrink_to_fit();
        }
        out
    }

    /// An skb of context `id` was reused before its free was seen.
    fn retire_unseen(&mut self, id: u64, skb: u64, now: u64) {
        let Some(ctx) = self.open.get_mut(&id) else {
            return;
        };
        if ctx.live.contains(&skb) {
            ctx.live.retain(|s| *s != skb);
            ctx.free_unseen.push(skb);
            if ctx.live.is_empty() {
                ctx.finished_at = Some(now);
                self.finishing.push(Reverse((now, id)));
            }
        }
        self.by_skb.remove(&skb);
    }

    fn remove(&mut self, id: u64) -> Option<Context> {
        let ctx = self.open.remove(&id)?;
        for s in &ctx.skbs {
            if self.by_skb.get(s) == Some(&id) {
                self.by_skb.remove(s);
            }
        }
        Some(ctx)
    }

    fn evict_oldest(&mut self) -> Option<Context> {
        while let Some(id) = self.order.pop_front() {
            if let Some(mut c) = self.remove(id) {
                c.complete = c.live.is_empty();
                c.cut_short = !c.complete;
                if !c.complete {
                    self.expired += 1;
                }
                return Some(c);
            }
        }
        None
    }

    /// Contexts finished (past the grace period) or idle too long, oldest
    /// first.
    pub fn take_ready(&mut self, now: u64) -> Vec<Context> {
        let grace = GRACE.as_nanos() as u64;
        let idle = IDLE_TIMEOUT.as_nanos() as u64;
        let mut ready = Vec::new();
        while let Some(&Reverse((t, id))) = self.finishing.peek() {
            if now.saturating_sub(t) < grace {
                break;
            }
            self.finishing.pop();
            if self.open.get(&id).is_some_and(|c| c.finished_at == Some(t)) {
                ready.push(id);
            }
        }
        let mut recheck = Vec::new();
        while let Some(&Reverse((t, id))) = self.idle_check.peek() {
            if now.saturating_sub(t) < idle {
                break;
            }
            self.idle_check.pop();
            let Some(c) = self.open.get(&id) else {
                continue;
            };
            if c.finished_at.is_none() && now.saturating_sub(c.last_activity) >= idle {
                ready.push(id);
            } else {
                // Active since, or finishing: looked at again when it
                // could next be idle (a finishing context that was long
                // silent, at the next tick).
                recheck.push(Reverse((c.last_activity, id)));
            }
        }
        self.idle_check.extend(recheck);
        // Oldest first, as they were opened.
        ready.sort_unstable();
        ready.dedup();
        let mut out = Vec::new();
        for id in ready {
            if let Some(mut c) = self.remove(id) {
                c.complete = c.finished_at.is_some();
                if !c.complete {
                    self.expired += 1;
                }
                out.push(c);
            }
        }
        self.compact();
        out
    }

    /// Drops what removed contexts left in the queues once they outnumber
    /// the open contexts, so memory follows the open contexts.
    fn compact(&mut self) {
        let slack = 2 * self.open.len() + 1024;
        if self.order.len() > slack {
            self.order.retain(|id| self.open.contains_key(id));
        }
        if self.finishing.len() > slack {
            let open = &self.open;
            self.finishing
                .retain(|Reverse((t, id))| open.get(id).is_some_and(|c| c.finished_at == Some(*t)));
        }
        if self.idle_check.len() > slack {
            let open = &self.open;
            self.idle_check
                .retain(|Reverse((_, id))| open.contains_key(id));
        }
    }

    /// Everything still open (at exit), oldest first.
    pub fn drain(&mut self) -> Vec<Context> {
        let ids: Vec<u64> = self.order.drain(..).collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(mut c) = self.remove(id) {
                c.complete = c.finished_at.is_some();
                c.cut_short = !c.complete;
                out.push(c);
            }
        }
        out
    }

    /// The kernel's count of lost events grew by `now` (checked after the
    /// ring buffer was drained): every open context may miss events, and so
    /// may packets whose remaining events arrive within GRACE.
    pub fn events_lost(&mut self, now: u64) {
        for c in self.open.values_mut() {
            c.events_lost = true;
        }
        self.lost_until = self.lost_until.max(now + GRACE.as_nanos() as u64);
    }
}
