//! Writes a synthetic recording for the user-space throughput benchmark
//! (tools/bench): packets with realistic lives — receive, netfilter,
//! routing, a clone for a packet socket now and then, and a free or a drop
//! with a reason — interleaved as CPUs deliver them, with the 100 ms ticks
//! of a live run.
//!
//!   cargo bench --bench synthetic -- OUT.ntrec EVENTS

use nettrace::catalogue::table::PROBES;
use nettrace::events::{flags, Event, NfFacts, Packet, PacketSource};
use nettrace::kernel::btf::DropReasons;
use nettrace::kernel::kallsyms::Kallsyms;
use nettrace::record::write::Recorder;
use nettrace::record::{End, Header};
use std::net::{IpAddr, Ipv4Addr};

fn probe(name: &str) -> u32 {
    PROBES
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no probe {name}"))
        .id
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (Some(out), Some(events)) = (args.first(), args.get(1)) else {
        eprintln!("usage: cargo bench --bench synthetic -- OUT.ntrec EVENTS");
        std::process::exit(2);
    };
    let want: u64 = events.parse().expect("EVENTS is a number");
    let reasons = nettrace::record::script::known_reasons();
    let kallsyms =
        Kallsyms::parse("ffffffff81a00000 t nf_hook_slow\nffffffff81b00000 t tcp_v4_rcv\n");
    let header = Header {
        nettrace: env!("CARGO_PKG_VERSION").into(),
        created: "2026-11-26T00:00:00Z".into(),
        kernel: "synthetic".into(),
        command: vec!["synthetic".into()],
        probes: PROBES.iter().map(|p| p.name.to_string()).collect(),
        drop_reasons: DropReasons::pairs(&reasons),
        rst_reasons: Vec::new(),
        realtime_offset_ns: 0,
    };
    let mut rec = Recorder::create(std::path::Path::new(out), &header).expect("create");
    let path = [
        "napi_gro_receive_entry",
        "__netif_receive_skb_core",
        "ip_rcv",
        "nf_hook_slow",
        "ip_rcv_finish",
        "ip_local_deliver",
        "nf_hook_slow",
        "tcp_v4_rcv",
    ]
    .map(probe);
    let (clone, consume, kfree) = (probe("skb_clone"), probe("consume_skb"), probe("kfree_skb"));
    let no_socket = reasons.value_of("NO_SOCKET").unwrap();
    let nf_drop = reasons.value_of("NETFILTER_DROP").unwrap();
    // 64 packets in flight at a time, their events interleaved.
    let in_flight = 64u64;
    let mut written = 0u64;
    let mut ts = 1_000_000_000_000u64;
    let mut next_tick = ts + 100_000_000;
    let mut packet = 0u64;
    while written < want {
        let batch: Vec<u64> = (packet..packet + in_flight).collect();
        packet += in_flight;
        let steps = path.len() + 2;
        for step in 0..steps {
            for &n in &batch {
                ts += 1000;
                let skb = 0xffff_8880_0000_0000 + (n % 4096) * 0x100 + (n / 4096 % 2) * 0x80;
                let mut pkt = Packet::empty();
                pkt.source = PacketSource::Header;
                pkt.l3_proto = 0x0800;
                pkt.l4_proto = 6;
                pkt.saddr = Some(IpAddr::V4(Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8)));
                pkt.daddr = Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)));
                pkt.sport = 40000 + (n % 20000) as u16;
                pkt.dport = 80;
                pkt.seq = n as u32;
                pkt.tcp_flags = 0x10;
                pkt.ip_id = n as u16;
                pkt.len = 1500;
                let mut ev = Event::new(ts, skb, 0);
                ev.pkt = pkt;
                if step > 0 {
                    ev.flags |= flags::TRACKED;
                }
                if step < path.len() {
                    ev.probe = path[step];
                    if ev.probe == path[3] {
                        ev.flags |= flags::RET;
                        ev.ret = Some(1);
                        ev.nf = Some(Box::new(NfFacts {
                            pf_hook: Some((2, if step == 3 { 0 } else { 1 })),
                            ..NfFacts::default()
                        }));
                    }
                } else if step == path.len() {
                    if n % 16 != 0 {
                        continue;
                    }
                    ev.probe = clone;
                    ev.flags |= flags::CLONE | flags::RET;
                    ev.clone = Some(skb + 0x40);
                } else {
                    // The end: every 10th packet dropped, the rest consumed;
                    // the clones of every 16th are consumed too.
                    if n % 10 == 0 {
                        ev.probe = kfree;
                        ev.flags |= flags::DROP | flags::FREE;
                        ev.reason = Some(if n % 20 == 0 { nf_drop } else { no_socket });
                        ev.location = Some(0xffffffff81b00081);
                    } else {
                        ev.probe = consume;
                        ev.flags |= flags::FREE;
                    }
                    if n % 16 == 0 {
                        let mut c = ev.clone();
                        c.skb = skb + 0x40;
                        c.probe = consume;
                        c.flags = flags::TRACKED | flags::FREE;
                        rec.event(&c, &kallsyms);
                        written += 1;
                    }
                }
                rec.event(&ev, &kallsyms);
                written += 1;
                while ts >= next_tick {
                    rec.tick(next_tick);
                    next_tick += 100_000_000;
                }
            }
        }
    }
    rec.tick(ts + 1_000_000_000);
    rec.finish(&End {
        events: written,
        lost: 0,
    })
    .expect("write the recording");
    eprintln!("{written} events of {packet} packets written to {out}");
}
