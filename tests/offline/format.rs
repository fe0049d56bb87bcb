//! Output shapes, pinned by snapshots: every protocol summary, the drop
//! line, the --detail and --date shapes, named return values.

use nettrace::catalogue::table::{probe, RetKind};
use nettrace::events::{flags, Event, Packet, PacketSource};
use nettrace::kernel::btf::DropReasons;
use nettrace::kernel::kallsyms::Kallsyms;
use nettrace::output::lines::{describe_ret, Formatter};
use nettrace::output::packet::summary;
use nettrace::output::time::Clock;
use nettrace::vocab::tcp::{parse_tcp_flags, tcp_flags};

fn pkt(l3: u16, l4: u8, s: &str, d: &str) -> Packet {
    Packet {
        source: PacketSource::Header,
        l3_proto: l3,
        l4_proto: l4,
        saddr: Some(s.parse().unwrap()),
        daddr: Some(d.parse().unwrap()),
        ..Packet::empty()
    }
}

#[test]
fn packet_summaries() {
    let mut tcp = pkt(0x0800, 6, "127.0.0.1", "127.0.0.1");
    (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.tcp_flags) = (40392, 9999, 3067626996, 0, 0x02);
    let mut tcp6 = pkt(0x86dd, 6, "fd00::1", "fd00::2");
    (tcp6.sport, tcp6.dport, tcp6.seq, tcp6.ack, tcp6.tcp_flags) = (22, 50000, 1, 2, 0x18);
    let mut udp = pkt(0x0800, 17, "198.18.0.1", "198.18.0.2");
    (udp.sport, udp.dport) = (5353, 53);
    let mut ping = pkt(0x0800, 1, "169.254.128.15", "172.27.0.6");
    (ping.icmp_type, ping.icmp_seq, ping.icmp_id) = (8, 48220, 7);
    let mut pong6 = pkt(0x86dd, 58, "fd00::2", "fd00::1");
    (pong6.icmp_type, pong6.icmp_seq, pong6.icmp_id) = (129, 3, 9);
    let mut unreach = pkt(0x0800, 1, "10.0.0.1", "10.0.0.2");
    (unreach.icmp_type, unreach.icmp_code) = (3, 3);
    let mut arp_req = pkt(0x0806, 0, "10.0.0.1", "10.0.0.2");
    arp_req.arp_op = 1;
    let mut arp_rep = pkt(0x0806, 0, "10.0.0.2", "10.0.0.1");
    arp_rep.arp_op = 2;
    let gre = pkt(0x0800, 47, "10.0.0.1", "10.0.0.2");
    let mut from_sock = pkt(0x0800, 6, "10.0.0.1", "10.0.0.2");
    (from_sock.source, from_sock.sport, from_sock.dport) = (PacketSource::Socket, 1234, 80);
    let mut none = Packet::empty();
    none.len = 60;
    let all: Vec<String> = [
        tcp, tcp6, udp, ping, pong6, unreach, arp_req, arp_rep, gre, from_sock, none,
    ]
    .iter()
    .map(summary)
    .collect();
    insta::assert_snapshot!("packet_summaries", all.join("\n"));
}

#[test]
fn tcp_flag_letters_round_trip() {
    assert_eq!(tcp_flags(0x12), "SA");
    assert_eq!(tcp_flags(0x14), "AR");
    assert_eq!(tcp_flags(0x18), "AP");
    assert_eq!(parse_tcp_flags("ar"), Ok(0x14));
    assert_eq!(parse_tcp_flags("rst,ACK"), Ok(0x14));
    assert_eq!(
        parse_tcp_flags("X"),
        Err(nettrace::vocab::tcp::UnknownFlag("X".into()))
    );
}

fn drop_event() -> Event {
    let mut p = pkt(0x0800, 6, "127.0.0.1", "127.0.0.1");
    (p.sport, p.dport, p.seq, p.tcp_flags) = (43582, 9999, 3819454691, 0x02);
    Event {
        flags: flags::DROP | flags::FREE,
        location: Some(0xffffffff81a00081),
        reason: Some(3),
        cpu: 40,
        ifindex: 2,
        netns: 4026531840,
        comm: "swapper/40".into(),
        ifname: "ens5".into(),
        pkt: p,
        ..Event::new(
            146_136_576_123,
            0xffff888f97730ee0,
            probe("kfree_skb").unwrap().id,
        )
    }
}

#[test]
fn drop_event_and_detail_lines() {
    let ksyms = Kallsyms::parse(
        "ffffffff81a00000 T tcp_v4_rcv\nffffffff81a10000 t tcp_v4_do_rcv\nffffffff81b00000 T ip_rcv\n",
    );
    let reasons = DropReasons::from_pairs([(3, "NO_SOCKET".to_string())]);
    let none = DropReasons::default();
    let fmt = |detail, reasons| Formatter {
        clock: Clock::monotonic(),
        reasons,
        kallsyms: &ksyms,
        detail,
        show_ret: true,
        latency_show: false,
        tiny: false,
        color: false,
    };
    let ev = drop_event();
    let mut ret_ev = ev.clone();
    ret_ev.probe = probe("nf_hook_slow").unwrap().id;
    (ret_ev.flags, ret_ev.ret, ret_ev.reason, ret_ev.location) = (flags::RET, Some(-1), None, None);
    let lines = [
        fmt(false, &reasons).drop_line(&ev),
        fmt(false, &none).drop_line(&ev),
        fmt(false, &reasons).event_line(&ev),
        fmt(true, &reasons).event_line(&ev),
        fmt(false, &reasons).event_line(&ret_ev),
        fmt(false, &reasons).stack_block(&[0xffffffff81a00081, 0xffffffff81b00010, 0x10]),
    ];
    insta::assert_snapshot!("event_lines", lines.join("\n"));
}

/// `--color`: the drop reason in red on drop and event lines; none in
/// JSON, none with `never`, and `auto` only on a terminal.
#[test]
fn color_marks_drop_reasons_only_when_asked() {
    use nettrace::output::{ColorChoice, Format};
    let ksyms = Kallsyms::parse("ffffffff81a00000 T tcp_v4_rcv\n");
    let reasons = DropReasons::from_pairs([(3, "NO_SOCKET".to_string())]);
    let fmt = |color| Formatter {
        clock: Clock::monotonic(),
        reasons: &reasons,
        kallsyms: &ksyms,
        detail: false,
        show_ret: false,
        latency_show: false,
        tiny: false,
        color,
    };
    let ev = drop_event();
    let red = "\x1b[31mNO_SOCKET\x1b[0m";
    assert!(fmt(true).drop_line(&ev).contains(&format!("reason: {red}")));
    assert!(fmt(true)
        .event_line(&ev)
        .contains(&format!("*reason: {red}*")));
    assert!(!fmt(false).drop_line(&ev).contains('\x1b'));
    assert!(ColorChoice::Always.enabled(Format::Text));
    assert!(!ColorChoice::Always.enabled(Format::Json));
    assert!(!ColorChoice::Never.enabled(Format::Text));
    // Under the test harness stdout is a pipe or a file.
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        assert!(!ColorChoice::Auto.enabled(Format::Text));
    }
}

#[test]
fn date_shape() {
    let s = Clock::new(true).format(1_000_000_000);
    // 2026-11-25 13:20:01.123456
    assert_eq!(s.len(), 26, "{s}");
    assert_eq!(&s[4..5], "-");
    assert_eq!(&s[19..20], ".");
    assert_eq!(
        Clock::monotonic().format(1_272_349_614_564_123),
        "1272349.614564"
    );
}

#[test]
fn named_return_values() {
    let cases = [
        (RetKind::NfVerdict, 0, "0 (NF_DROP)"),
        (RetKind::NfVerdict, 1, "1 (NF_ACCEPT)"),
        // nftables' NF_DROP_REASON: NF_STOLEN with -EPERM above bit 16.
        (RetKind::NfVerdict, 65538, "65538 (NF_DROP, -EPERM)"),
        (RetKind::XdpAction, 1, "1 (XDP_DROP)"),
        (RetKind::XdpAction, 4, "4 (XDP_REDIRECT)"),
        (RetKind::GroResult, 4, "4 (GRO_CONSUMED)"),
        (RetKind::Errno, -22, "-22 (-EINVAL)"),
        (RetKind::NfHook, -1, "-1 (dropped, -EPERM)"),
        (RetKind::Pointer, 0, "0 (NULL)"),
        (RetKind::Bool, 1, "1 (true)"),
        (RetKind::Int, 7, "7"),
    ];
    for (k, v, want) in cases {
        assert_eq!(describe_ret(k, v), want);
    }
}

#[test]
fn kallsyms_resolution() {
    let k = Kallsyms::parse(
        "0000000000000000 A fixed_percpu_data\nffffffff81000000 T _text\nffffffff81a00000 T tcp_v4_rcv\nffffffffc0000000 t nft_do_chain\t[nf_tables]\n",
    );
    assert!(k.addresses_visible());
    assert_eq!(k.describe(0xffffffff81a00081), "tcp_v4_rcv+0x81");
    assert_eq!(k.module_of("nft_do_chain"), Some("nf_tables"));
    assert!(k.has_function("tcp_v4_rcv"));
    // Far past the last symbol is not "last symbol + huge offset".
    assert_eq!(k.describe(0xffffffffc8000000), "0xffffffffc8000000");
    let hidden = Kallsyms::parse("0000000000000000 T tcp_v4_rcv\n");
    assert!(!hidden.addresses_visible());
    assert_eq!(hidden.describe(0xffffffff81a00081), "0xffffffff81a00081");
    // Once attached, a run frees the name index: addresses still resolve.
    let mut k = k;
    k.release_name_index();
    assert!(!k.has_function("tcp_v4_rcv"));
    assert_eq!(k.describe(0xffffffff81a00081), "tcp_v4_rcv+0x81");
}

/// A ping request's whole life on a veth pair, with the clone a packet
/// socket takes: the lifecycle block in each output shape.
#[test]
fn context_blocks() {
    use nettrace::lifecycle::{Tracker, GRACE};
    let mut p = pkt(0x0800, 1, "198.18.1.1", "198.18.1.2");
    (p.icmp_type, p.icmp_seq, p.icmp_id, p.len) = (8, 1, 4242, 84);
    let at = |ts: u64, skb: u64, name: &str, fl: u32| Event {
        flags: fl,
        pid: 1234,
        cpu: 1,
        ifindex: 3,
        netns: 4026532281,
        comm: "ping".into(),
        ifname: "nt1b".into(),
        pkt: p.clone(),
        ..Event::new(ts, skb, probe(name).unwrap().id)
    };
    let (skb, copy) = (0xffff888004a1c000, 0xffff888004a1d100);
    let tracked = flags::TRACKED;
    let mut clone = at(
        5_000_300_000,
        skb,
        "skb_clone",
        tracked | flags::CLONE | flags::RET,
    );
    clone.clone = Some(copy);
    let mut nf = at(5_000_200_000, skb, "nf_hook_slow", tracked | flags::RET);
    nf.ret = Some(1);
    let mut source = p.clone();
    source.source = PacketSource::Socket;
    let mut first = at(5_000_100_000, skb, "ip_output", 0);
    first.pkt = source;
    let events = vec![
        first,
        nf,
        clone,
        // Out of order on purpose: CPUs deliver interleaved.
        at(5_000_500_000, copy, "consume_skb", tracked | flags::FREE),
        at(5_000_400_000, skb, "ip_rcv", tracked),
        at(5_000_600_000, skb, "icmp_rcv", tracked),
        at(5_000_700_000, skb, "consume_skb", tracked | flags::FREE),
    ];
    let t0: u64 = 10_000_000_000;
    let mut tracker = Tracker::new();
    for e in events {
        tracker.push(e);
    }
    let ctx = tracker
        .take_ready(t0 + GRACE.as_nanos() as u64)
        .pop()
        .expect("finished context");
    let mut open = Tracker::new();
    open.push(at(9_000_000_000, 0xffff888004a1e200, "ip_rcv", 0));
    let incomplete = open.drain().pop().unwrap();
    let ksyms = Kallsyms::parse("");
    let reasons = DropReasons::default();
    let fmt = |clock, detail| Formatter {
        clock,
        reasons: &reasons,
        kallsyms: &ksyms,
        detail,
        show_ret: true,
        latency_show: false,
        tiny: false,
        color: false,
    };
    // 2026-11-25 00:00:00 UTC, minus the 5 s of uptime in the events.
    let wall = Clock::wall_utc(1_795_564_800_000_000_000 - 5_000_000_000);
    let blocks = [
        fmt(Clock::monotonic(), false).context_block(&ctx),
        fmt(Clock::monotonic(), true).context_block(&ctx),
        fmt(wall, false).context_block(&ctx),
        fmt(Clock::monotonic(), false).context_block(&incomplete),
    ];
    insta::assert_snapshot!("context_blocks", blocks.concat());
}
