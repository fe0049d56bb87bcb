//! Grouping events into packet contexts: clones join, frees finish, a
//! reused skb address starts a new context, silence expires a context.

use nettrace::events::{flags, Event};
use nettrace::lifecycle::{Tracker, GRACE, IDLE_TIMEOUT};
use std::time::Duration;

/// Tracker time (monotonic ns) `d` after `t0`.
fn at(t0: u64, d: Duration) -> u64 {
    t0 + d.as_nanos() as u64
}

fn ev(ts: u64, skb: u64, fl: u32) -> Event {
    Event {
        flags: fl,
        ..Event::new(ts, skb, 0)
    }
}

#[test]
fn clones_join_and_the_context_ends_when_all_skbs_are_freed() {
    // Tracker time is event time: the last event is at 50 ns.
    let t0: u64 = 50;
    let mut t = Tracker::new();
    t.push(ev(10, 0xa, 0));
    let mut clone = ev(20, 0xa, flags::TRACKED | flags::CLONE | flags::RET);
    clone.clone = Some(0xb);
    t.push(clone);
    t.push(ev(40, 0xb, flags::TRACKED));
    t.push(ev(30, 0xa, flags::TRACKED | flags::FREE));
    assert!(
        t.take_ready(at(t0, GRACE * 2)).is_empty(),
        "0xb is still alive"
    );
    t.push(ev(50, 0xb, flags::TRACKED | flags::FREE | flags::DROP));
    assert!(
        t.take_ready(t0).is_empty(),
        "grace period for late exit events"
    );
    let done = t.take_ready(at(t0, GRACE));
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
    let t0: u64 = 2;
    let mut t = Tracker::new();
    t.push(ev(1, 0xa, flags::FREE));
    // Same address, not marked tracked: the memory was reused.
    t.push(ev(2, 0xa, 0));
    assert_eq!(t.open_contexts(), 2);
    let first = t.take_ready(at(t0, GRACE));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].events.len(), 1);
    let late = t.take_ready(at(t0, IDLE_TIMEOUT + Duration::from_millis(1)));
    assert_eq!(late.len(), 1);
    assert!(!late[0].complete);
    assert_eq!(t.expired, 1);
}

#[test]
fn a_looping_packet_keeps_a_bounded_context() {
    use nettrace::lifecycle::MAX_EVENTS;
    let t0: u64 = MAX_EVENTS as u64 + 20;
    let mut t = Tracker::new();
    for i in 0..(MAX_EVENTS as u64 + 10) {
        t.push(ev(i, 0xa, flags::TRACKED));
    }
    t.push(ev(
        MAX_EVENTS as u64 + 20,
        0xa,
        flags::TRACKED | flags::FREE,
    ));
    let ctx = t.take_ready(at(t0, GRACE)).pop().unwrap();
    assert_eq!(ctx.events.len(), MAX_EVENTS);
    assert_eq!(ctx.truncated, 11);
    assert!(ctx.complete);
}

#[test]
fn an_untracked_event_at_a_live_address_is_a_new_packet() {
    // The kernel reused skb 0xa for a new packet before any probe saw the
    // old one freed: the new event comes without the tracked mark.
    let t0: u64 = 40;
    let mut t = Tracker::new();
    t.push(ev(10, 0xa, 0));
    t.push(ev(20, 0xa, flags::TRACKED));
    t.push(ev(30, 0xa, flags::REUSED));
    t.push(ev(40, 0xa, flags::TRACKED | flags::FREE));
    let done = t.take_ready(at(t0, GRACE));
    assert_eq!(done.len(), 2, "{done:?}");
    let (old, new) = (&done[0], &done[1]);
    assert_eq!(old.events.len(), 2);
    assert_eq!(old.free_unseen, vec![0xa]);
    assert!(old.complete);
    assert_eq!(new.events.len(), 2);
    assert!(new.free_unseen.is_empty());
}

#[test]
fn a_recycled_skb_is_told_apart_by_packet_identity() {
    use nettrace::catalogue::table::probe;
    use nettrace::events::PacketSource;
    let udp = |ip_id: u16, name: &str, netns: u32| {
        let mut e = ev(0, 0xa, flags::TRACKED);
        e.probe = probe(name).unwrap().id;
        e.netns = netns;
        e.pkt.source = PacketSource::Header;
        (e.pkt.l3_proto, e.pkt.l4_proto, e.pkt.sport, e.pkt.dport) = (0x0800, 17, 1000, 53);
        e.pkt.saddr = Some("198.18.0.1".parse().unwrap());
        e.pkt.daddr = Some("198.18.0.2".parse().unwrap());
        e.pkt.ip_id = ip_id;
        e
    };
    use nettrace::lifecycle::identity::is_new_packet;
    let rx_b = udp(7, "__netif_receive_skb_core", 2);
    // Same flow, another IP id: another packet.
    assert!(is_new_packet(&rx_b, &udp(8, "__netif_receive_skb_core", 2)));
    // Same packet moving on.
    assert!(!is_new_packet(&rx_b, &udp(7, "consume_skb", 0)));
    // NAT rewrote the address: the same packet.
    let mut natted = udp(7, "net_dev_queue", 2);
    natted.pkt.saddr = Some("198.18.9.9".parse().unwrap());
    assert!(!is_new_packet(&rx_b, &natted));
    // Received in namespace 2, queued for transmission in namespace 1:
    // a new packet (a forwarded one is queued where it was received).
    assert!(is_new_packet(&rx_b, &udp(7, "net_dev_queue", 1)));
    assert!(!is_new_packet(&rx_b, &udp(7, "net_dev_queue", 2)));
}

#[test]
fn an_exit_event_older_than_the_context_joins_it() {
    // nf_hook_slow reports at its exit, with its entry's time and its
    // entry's (untracked) mark, after nf_conntrack_in that ran inside it.
    let t0: u64 = 30;
    let mut t = Tracker::new();
    t.push(ev(20, 0xa, 0));
    t.push(ev(10, 0xa, 0));
    t.push(ev(30, 0xa, flags::TRACKED | flags::FREE));
    let done = t.take_ready(at(t0, GRACE));
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].events.len(), 3);
    assert!(done[0].free_unseen.is_empty());
}

#[test]
fn a_long_silent_context_retired_by_reuse_waits_out_its_grace_period() {
    // The first packet is silent past the idle timeout; then its address
    // comes back for another packet, which retires it (finished now).
    let reuse = at(1, IDLE_TIMEOUT + Duration::from_millis(10));
    let mut t = Tracker::new();
    t.push(ev(1, 0xa, 0));
    t.push(ev(reuse, 0xa, 0));
    assert_eq!(t.open_contexts(), 2);
    assert!(
        t.take_ready(reuse).is_empty(),
        "finished at the reuse: neither idle nor past its grace period"
    );
    let done = t.take_ready(at(reuse, GRACE));
    assert_eq!(done.len(), 1);
    assert!(done[0].complete);
    assert_eq!(done[0].free_unseen, vec![0xa]);
    assert_eq!(t.open_contexts(), 1);
    assert_eq!(t.expired, 0);
}

#[test]
fn ready_contexts_come_out_in_the_order_they_opened() {
    let mut t = Tracker::new();
    // Opened 0xa, 0xb, 0xc; freed in the opposite order.
    for (ts, skb) in [(1, 0xa), (2, 0xb), (3, 0xc)] {
        t.push(ev(ts, skb, 0));
    }
    for (ts, skb) in [(4, 0xc), (5, 0xb), (6, 0xa)] {
        t.push(ev(ts, skb, flags::TRACKED | flags::FREE));
    }
    let done = t.take_ready(at(6, GRACE));
    let first_skbs: Vec<u64> = done.iter().map(|c| c.skbs[0]).collect();
    assert_eq!(first_skbs, vec![0xa, 0xb, 0xc]);
}

#[test]
fn contexts_say_what_they_may_be_missing() {
    let ms = |n: u64| n * 1_000_000;
    let mut t = Tracker::new();
    // Open during a loss: marked. Opened within GRACE of it: marked (its
    // first events may be the lost ones). Opened later: not.
    t.push(ev(ms(1), 0xa, 0));
    t.events_lost(ms(2));
    t.push(ev(ms(2) + ms(150), 0xb, 0));
    t.push(ev(ms(2) + ms(250), 0xc, 0));
    for skb in [0xa, 0xb, 0xc] {
        t.push(ev(ms(300), skb, flags::TRACKED | flags::FREE));
    }
    // A packet still active when the run ends is cut short; one that went
    // silent for IDLE_TIMEOUT is incomplete but not cut short.
    let silent_at = ms(400);
    t.push(ev(silent_at, 0xd, 0));
    let idle = t.take_ready(at(silent_at, IDLE_TIMEOUT));
    let by_skb = |cs: &[nettrace::lifecycle::Context], skb| {
        cs.iter()
            .find(|c| c.skbs == vec![skb])
            .map(|c| (c.complete, c.events_lost, c.cut_short))
    };
    assert_eq!(by_skb(&idle, 0xa), Some((true, true, false)));
    assert_eq!(by_skb(&idle, 0xb), Some((true, true, false)));
    assert_eq!(by_skb(&idle, 0xc), Some((true, false, false)));
    assert_eq!(by_skb(&idle, 0xd), Some((false, false, false)));
    t.push(ev(at(silent_at, IDLE_TIMEOUT) + 1, 0xe, 0));
    let rest = t.drain();
    assert_eq!(by_skb(&rest, 0xe), Some((false, false, true)));
}
