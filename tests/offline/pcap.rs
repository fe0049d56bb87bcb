//! pcapng export without a kernel: the writer's blocks read back as
//! written, tshark (where installed; required in CI) opens every file
//! without a warning, a fuzzed writer never produces a file it rejects,
//! bytes records pair with their events, and a replay writes the same
//! capture as the live pipeline.

use crate::support::Capture;
use nettrace::events::bytes::{self, BytesRecord, Captured, Link, Pairing};
use nettrace::events::Event;
use nettrace::output::pcap::PcapWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use proptest::prelude::*;
use std::path::Path;

/// An IPv4 UDP datagram 10.0.0.1:5000 -> 10.0.0.2:5555 carrying `payload`.
fn udp_packet(payload: &[u8]) -> Vec<u8> {
    let total = (28 + payload.len()) as u16;
    let mut p = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = !p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .fold(0u32, |a, w| {
            let s = a + w;
            (s & 0xffff) + (s >> 16)
        }) as u16;
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&5000u16.to_be_bytes());
    p.extend_from_slice(&5555u16.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// A broadcast ARP request from 10.0.0.1 for 10.0.0.2, as an Ethernet frame.
fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 2]);
    f
}

fn event(ts: u64, probe: &str, ifindex: u32, netns: u32, captured: Captured) -> Event {
    let id = nettrace::catalogue::table::probe(probe)
        .expect("a probe")
        .id;
    let mut ev = Event::new(ts, 0xffff_8880_0000_1000, id);
    ev.ifindex = ifindex;
    ev.netns = netns;
    ev.bytes = Some(Box::new(captured));
    ev
}

fn raw(data: Vec<u8>) -> Captured {
    Captured {
        link: Link::Raw,
        orig_len: data.len() as u32,
        data: data.into(),
    }
}

/// Writes `packets` (event, comment) and returns the file's bytes.
fn write(packets: &[(Event, String)], snaplen: u32) -> Vec<u8> {
    let out = Capture::default();
    let mut w = PcapWriter::new(out.clone(), 1_700_000_000_000_000_000, snaplen).unwrap();
    for (ev, comment) in packets {
        w.packet(ev, comment);
    }
    assert_eq!(w.finish().unwrap(), packets.len() as u64);
    out.bytes()
}

/// tshark, where installed; CI installs it (tools/setup test) and a test
/// that needs it fails there without it.
fn tshark() -> Option<&'static str> {
    // Looked up once: the fuzz test asks for every case.
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        std::process::Command::new("tshark")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found {
        return Some("tshark");
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "tshark is missing: tools/setup test installs it"
    );
    eprintln!("tshark not installed: the tshark checks are skipped");
    None
}

/// tshark's reading of `file` with `args`: (stdout, stderr); panics when
/// tshark fails.
fn run_tshark(tshark: &str, file: &Path, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(tshark)
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .expect("run tshark");
    let stderr = String::from_utf8_lossy(&out.stderr)
        .lines()
        // tshark says so whenever root runs it.
        .filter(|l| !l.contains("Running as user \"root\""))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(out.status.success(), "tshark failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn a_capture_reads_back_block_by_block() {
    let payload = b"nettrace-pcap-payload";
    let packets = vec![
        (
            event(1_000, "ip_rcv", 3, 4026531840, raw(udp_packet(payload))),
            "nettrace: captured at ip_rcv\npath: ip_rcv +0.000us".to_string(),
        ),
        (
            event(2_000, "kfree_skb", 3, 4026531840, raw(udp_packet(payload))),
            "nettrace: dropped at kfree_skb\ndrop: reason NO_SOCKET, in __udp4_lib_rcv+0x4bc (kfree_skb)".to_string(),
        ),
        (
            event(
                3_000,
                "__netif_receive_skb_core",
                3,
                4026531840,
                Captured {
                    link: Link::Ethernet,
                    orig_len: 60,
                    data: arp_frame().into(),
                },
            ),
            "an ARP request".to_string(),
        ),
    ];
    let file = write(&packets, 256);
    let mut reader = PcapNgReader::new(&file[..]).unwrap();
    let mut interfaces = Vec::new();
    let mut epbs = Vec::new();
    while let Some(block) = reader.next_block() {
        match block.unwrap() {
            Block::InterfaceDescription(idb) => interfaces.push(idb.into_owned()),
            Block::EnhancedPacket(epb) => epbs.push(epb.into_owned()),
            other => panic!("unexpected block {other:?}"),
        }
    }
    // One interface per link type: the ARP frame is Ethernet.
    assert_eq!(interfaces.len(), 2);
    assert_eq!(interfaces[0].linktype, DataLink::RAW);
    assert_eq!(interfaces[1].linktype, DataLink::ETHERNET);
    assert!(interfaces[0]
        .options
        .contains(&InterfaceDescriptionOption::IfDescription(
            "nettrace, netns 4026531840, ifindex 3".into()
        )));
    assert_eq!(epbs.len(), 3);
    assert_eq!(
        epbs.iter().map(|e| e.interface_id).collect::<Vec<_>>(),
        [0, 0, 1]
    );
    assert_eq!(&epbs[0].data[..], &udp_packet(payload)[..]);
    assert_eq!(epbs[2].original_len, 60);
    // Monotonic 1000 ns plus the realtime offset.
    assert_eq!(
        epbs[0].timestamp.as_nanos(),
        1_700_000_000_000_000_000 + 1_000
    );
    assert!(epbs[1]
        .options
        .contains(&EnhancedPacketOption::Comment(packets[1].1.clone().into())));
    // ip_rcv receives: inbound; kfree_skb says nothing of a direction.
    let flags = |i: usize| {
        epbs[i].options.iter().find_map(|o| match o {
            EnhancedPacketOption::Flags(f) => Some(*f),
            _ => None,
        })
    };
    assert_eq!(flags(1), None);
}

#[test]
fn the_snap_length_cuts_the_bytes_not_the_length() {
    let data = udp_packet(&[0x5a; 400]);
    let file = write(
        &[(event(1, "ip_rcv", 1, 1, raw(data.clone())), String::new())],
        64,
    );
    let mut reader = PcapNgReader::new(&file[..]).unwrap();
    let mut epb = None;
    while let Some(block) = reader.next_block() {
        if let Block::EnhancedPacket(e) = block.unwrap() {
            epb = Some(e.into_owned());
        }
    }
    let epb = epb.expect("a packet block");
    assert_eq!(&epb.data[..], &data[..64]);
    assert_eq!(epb.original_len as usize, data.len());
}

#[test]
fn tshark_reads_the_capture_and_finds_packets_by_their_comment() {
    let Some(tshark) = tshark() else { return };
    let packets = vec![
        (
            event(1_000, "ip_rcv", 3, 7, raw(udp_packet(b"first"))),
            "nettrace: captured at ip_rcv".to_string(),
        ),
        (
            event(2_000, "kfree_skb", 3, 7, raw(udp_packet(b"second"))),
            "nettrace: dropped at kfree_skb\ndrop: reason NETFILTER_DROP, in nf_hook_slow+0x92 (kfree_skb)".to_string(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pcapng");
    std::fs::write(&path, write(&packets, 256)).unwrap();
    let (all, stderr) = run_tshark(tshark, &path, &[]);
    assert!(stderr.is_empty(), "tshark warned: {stderr}");
    assert_eq!(all.lines().count(), 2, "{all}");
    let (dropped, _) = run_tshark(
        tshark,
        &path,
        &[
            "-Y",
            "frame.comment contains \"NETFILTER_DROP\"",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "udp.dstport",
            "-e",
            "data.data",
        ],
    );
    assert_eq!(dropped.trim(), "10.0.0.1\t5555\t7365636f6e64", "{dropped}");
}

fn any_captured() -> impl Strategy<Value = Captured> {
    (
        prop_oneof![Just(Link::Raw), Just(Link::Ethernet)],
        proptest::collection::vec(any::<u8>(), 0..1536),
        0u32..70_000,
    )
        .prop_map(|(link, data, extra)| Captured {
            link,
            orig_len: data.len() as u32 + extra,
            data: data.into(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the bytes, names and comments (empty, long, any Unicode),
    /// every block reads back and tshark opens the file without a word.
    #[test]
    fn the_writer_never_writes_a_file_tshark_rejects(
        packets in proptest::collection::vec(
            (any_captured(), "\\PC{0,300}", "[a-z0-9@.-]{0,15}", 0u32..4, 0u32..3, 0u64..1u64 << 40),
            1..6,
        ),
        snaplen in 1u32..=1536,
    ) {
        let packets: Vec<(Event, String)> = packets
            .into_iter()
            .map(|(captured, comment, ifname, ifindex, netns, ts)| {
                let mut ev = event(ts, "ip_rcv", ifindex, netns, captured);
                ev.ifname = nettrace::events::ShortName::new(&ifname);
                (ev, comment)
            })
            .collect();
        let file = write(&packets, snaplen);
        let mut reader = PcapNgReader::new(&file[..]).unwrap();
        let mut n = 0;
        while let Some(block) = reader.next_block() {
            if let Block::EnhancedPacket(epb) = block.unwrap() {
                prop_assert!(epb.data.len() <= snaplen as usize);
                n += 1;
            }
        }
        prop_assert_eq!(n, packets.len());
        if let Some(tshark) = tshark() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.pcapng");
            std::fs::write(&path, &file).unwrap();
            let (_, complaints) = run_tshark(tshark, &path, &[]);
            prop_assert!(complaints.is_empty(), "tshark: {complaints}");
        }
    }
}

/// A bytes record as the BPF side lays it out (`struct nt_bytes`).
fn bytes_record(ts: u64, skb: u64, link: u8, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; 8];
    r.extend_from_slice(&ts.to_ne_bytes());
    r.extend_from_slice(&skb.to_ne_bytes());
    r.extend_from_slice(&orig_len.to_ne_bytes());
    r.extend_from_slice(&(data.len() as u16).to_ne_bytes());
    r.push(link);
    r.push(0);
    r.extend_from_slice(data);
    r
}

#[test]
fn bytes_records_decode_and_pair_with_their_events() {
    let rec = bytes_record(10, 0xa, nettrace::abi::link::RAW, 100, &[0x45, 0, 0, 100]);
    assert!(bytes::is_bytes_record(&rec));
    let decoded = bytes::decode(&rec).unwrap();
    assert_eq!(
        decoded,
        BytesRecord {
            ts: 10,
            skb: 0xa,
            captured: Captured {
                link: Link::Raw,
                orig_len: 100,
                data: vec![0x45, 0, 0, 100].into(),
            },
        }
    );
    // A record shorter than it says, or of an unknown link type: refused.
    assert!(bytes::decode(&rec[..rec.len() - 1]).is_none());
    assert!(bytes::decode(&bytes_record(1, 1, 9, 4, &[0; 4])).is_none());
    // An event record starts with its (nonzero) time.
    let mut event_like = rec.clone();
    event_like[0] = 1;
    assert!(!bytes::is_bytes_record(&event_like));

    let mut pairing = Pairing::new();
    pairing.push(decoded.clone());
    pairing.push(BytesRecord {
        ts: 20,
        ..decoded.clone()
    });
    assert!(pairing.take(10, 0xb).is_none(), "another skb");
    assert_eq!(pairing.take(20, 0xa).map(|c| c.orig_len), Some(100));
    assert!(pairing.take(10, 0xa).is_some());
    assert!(pairing.take(10, 0xa).is_none(), "taken once");
    // Bounded: the oldest records age out, counted.
    for ts in 0..Pairing::CAPACITY as u64 + 5 {
        pairing.push(BytesRecord {
            ts,
            ..decoded.clone()
        });
    }
    assert_eq!(pairing.unpaired, 5);
    assert!(pairing.take(0, 0xa).is_none());
}
