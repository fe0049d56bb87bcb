//! Micro-benchmarks of the per-event user-space path: decoding a ring
//! buffer record, formatting an event line, grouping a packet's events,
//! and evaluating the default rule pack over a packet's lifecycle.
//!
//!   cargo bench --bench pipeline

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use nettrace::lifecycle::Tracker;
use nettrace::output::lines::Formatter;
use nettrace::output::time::Clock;
use nettrace::record::script::{self, ScriptEvent};
use nettrace::rules::eval::evaluate;
use nettrace::rules::graph::LifeGraph;

const PACKET: &str = r#"
- {probe: napi_gro_receive_entry, pkt: {proto: tcp, src: "10.0.0.1:40000", dst: "10.1.0.1:80", flags: A}}
- {probe: __netif_receive_skb_core}
- {probe: ip_rcv}
- {probe: nf_hook_slow, ret: NF_ACCEPT, nf: {family: ipv4, hook: PRE_ROUTING}}
- {probe: ip_rcv_finish}
- {probe: ip_local_deliver}
- {probe: nf_hook_slow, ret: NF_ACCEPT, nf: {family: ipv4, hook: LOCAL_IN}}
- {probe: tcp_v4_rcv}
- {probe: skb_clone, clone: 2}
- {probe: kfree_skb, drop: NO_SOCKET, at: tcp_v4_rcv+0x81}
- {probe: consume_skb, skb: 2}
"#;

fn benches(c: &mut Criterion) {
    let list: Vec<ScriptEvent> = serde_yaml::from_str(PACKET).unwrap();
    let s = script::build(&list).unwrap();
    let rules = nettrace::rules::eval::RuleSet::new(
        nettrace::rules::load_for_run(&[], true, Some(&s.reasons))
            .unwrap()
            .bound_to(&s.reasons),
    );
    let fmt = Formatter {
        clock: Clock::monotonic(),
        reasons: &s.reasons,
        kallsyms: &s.kallsyms,
        detail: false,
        show_ret: false,
        latency_show: false,
        tiny: false,
        color: false,
    };
    let raw = vec![0u8; std::mem::size_of::<nettrace::abi::nt_event>()];
    c.bench_function("decode one record", |b| {
        b.iter(|| nettrace::events::Event::decode(black_box(&raw)).unwrap())
    });
    c.bench_function("format one event line", |b| {
        b.iter(|| fmt.event_line(black_box(&s.events[3])))
    });
    c.bench_function("group one packet (11 events)", |b| {
        b.iter(|| {
            let mut t = Tracker::new();
            for e in &s.events {
                t.push(e.clone());
            }
            t.drain()
        })
    });
    let mut t = Tracker::new();
    for e in &s.events {
        t.push(e.clone());
    }
    let ctx = t.drain().pop().unwrap();
    c.bench_function("evaluate the default pack on one packet", |b| {
        b.iter(|| {
            let graph = LifeGraph::new(&ctx.events);
            evaluate(black_box(&rules), &graph)
        })
    });
    c.bench_function("diagnose and render one packet", |b| {
        b.iter(|| nettrace::output::diagnosis::diagnose(&fmt, &rules, black_box(&ctx)))
    });
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
