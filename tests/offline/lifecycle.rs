//! Grouping events into packet contexts: clones join, frees finish, a
//! reused skb address starts a new context, silence expires a context.

use nettrace::events::{flags, Event, Packet};
use nettrace::lifecycle::{Tracker, GRACE, IDLE_TIMEOUT};
use std::time::{Duration, Instant};

fn ev(ts: u64, skb: u64, fl: u32) -> Event {
    Event {
        ts,
        skb,
        probe: 0,
        flags: fl,
        ret: None,
        location: None,
        clone: None,
        reason: None,
        stack_id: None,
        pid: 0,
        cpu: 0,
        ifindex: 0,
        netns: 0,
        comm: String::new(),
        ifname: String::new(),
        pkt: Packet::empty(),
    }
}

#[test]
fn clones_join_and_the_context_ends_when_all_skbs_are_freed() {
    let t0 = Instant::now();
    let mut t = Tracker::new();
    t.push(ev(10, 0xa, 0), t0);
    let mut clone = ev(20, 0xa, flags::TRACKED | flags::CLONE | flags::RET);
    clone.clone = Some(0xb);
    t.push(clone, t0);
    t.push(ev(40, 0xb, flags::TRACKED), t0);
    t.push(ev(30, 0xa, flags::TRACKED | flags::FREE), t0);
    assert!(
        t.take_ready(t0 + GRACE * 2).is_empty(),
        "0xb is still alive"
    );
    t.push(ev(50, 0xb, flags::TRACKED | flags::FREE | flags::DROP), t0);
    assert!(
        t.take_ready(t0).is_empty(),
        "grace period for late exit events"
    );
    let done = t.take_ready(t0 + GRACE);
    assert_eq!(done.len(), 1);
    let c = &done[0];
    assert!(c.complete);
    assert_eq!(c.skbs, vec![0xa, 0xb]);
    let ts: Vec<u64> = c.sorted_events().iter().map(|e| e.ts).collect();
    assert_eq!(ts, vec![10, 20, 30, 40, 50]);
    assert_eq!(t.open_contexts(), 0);
}

#[test]
fn a_reused_address_is_a_new_packet_and_silence_expires() {
    let t0 = Instant::now();
    let mut t = Tracker::new();
    t.push(ev(1, 0xa, flags::FREE), t0);
    // Same address, not marked tracked: the memory was reused.
    t.push(ev(2, 0xa, 0), t0);
    assert_eq!(t.open_contexts(), 2);
    let first = t.take_ready(t0 + GRACE);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].events.len(), 1);
    let late = t.take_ready(t0 + IDLE_TIMEOUT + Duration::from_millis(1));
    assert_eq!(late.len(), 1);
    assert!(!late[0].complete);
    assert_eq!(t.expired, 1);
}

#[test]
fn a_looping_packet_keeps_a_bounded_context() {
    use nettrace::lifecycle::MAX_EVENTS;
    let t0 = Instant::now();
    let mut t = Tracker::new();
    for i in 0..(MAX_EVENTS as u64 + 10) {
        t.push(ev(i, 0xa, flags::TRACKED), t0);
    }
    t.push(ev(u64::MAX, 0xa, flags::TRACKED | flags::FREE), t0);
    let ctx = t.take_ready(t0 + GRACE).pop().unwrap();
    assert_eq!(ctx.events.len(), MAX_EVENTS);
    assert_eq!(ctx.truncated, 11);
    assert!(ctx.complete);
}
