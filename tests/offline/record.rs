//! Recordings, replay, JSON output and rule tests, without a kernel: a
//! recording reads back as written; the pipeline prints the same bytes from
//! a recording as from the events themselves; damaged files are reported
//! with their offset and replayed up to the damage; JSON lines read back
//! into the documented types; `rules test` passes on the pack and reports
//! failures readably.

use crate::support::nettrace;
use nettrace::events::Event;
use nettrace::kernel::btf::DropReasons;
use nettrace::kernel::kallsyms::Kallsyms;
use nettrace::output::Format as OutputFormat;
use nettrace::pipeline::Pipeline;
use nettrace::record::read::{Input, ReadError, Recording};
use nettrace::record::script::{self, ScriptEvent};
use nettrace::record::write::Recorder;
use nettrace::record::{End, Header};
use nettrace::spec::{DiagSpec, Mode, RuleSource, ViewSpec};
use proptest::prelude::*;
use std::path::Path;

/// A forwarded ping dropped by netfilter, a UDP datagram consumed, and a
/// clone: three packets, interleaved.
const EVENTS: &str = r#"
- {probe: ip_forward, pkt: {proto: icmp, src: 10.0.0.1, dst: 10.0.1.2}}
- {probe: udp_rcv, skb: 2, pkt: {proto: udp, src: "10.0.0.3:5000", dst: "10.0.0.4:53"}}
- {probe: nft_do_chain, ret: NF_DROP, nf: {table: filter, chain: FORWARD, nft: true}}
- {probe: skb_clone, skb: 2, clone: 3}
- {probe: nf_hook_slow, ret: NF_DROP, nf: {family: ipv4, hook: FORWARD}}
- {probe: kfree_skb, drop: NETFILTER_DROP, at: nf_hook_slow+0x92}
- {probe: consume_skb, skb: 3}
- {probe: consume_skb, skb: 2, t: 400000}
"#;

fn script() -> script::Script {
    let list: Vec<ScriptEvent> = serde_yaml::from_str(EVENTS).unwrap();
    script::build(&list).unwrap()
}

fn header(reasons: &DropReasons) -> Header {
    Header {
        nettrace: "test".into(),
        created: "2026-11-26T00:00:00Z".into(),
        kernel: "6.1.0-test".into(),
        command: vec!["nettrace".into(), "--diag".into()],
        probes: nettrace::catalogue::table::PROBES
            .iter()
            .map(|p| p.name.to_string())
            .collect(),
        drop_reasons: reasons.pairs(),
        rst_reasons: reasons.rst_pairs(),
        realtime_offset_ns: 1_700_000_000_000_000_000,
    }
}

/// Ticks as a live run makes them: every 100 ms from the first event.
fn inputs(events: &[Event]) -> Vec<Input> {
    let mut out = Vec::new();
    let mut next_tick = events[0].ts + 100_000_000;
    for ev in events {
        while ev.ts > next_tick {
            out.push(Input::Tick(next_tick));
            next_tick += 100_000_000;
        }
        out.push(Input::Event(ev.clone()));
    }
    out.push(Input::Tick(next_tick + 1_000_000_000));
    out
}

fn write(path: &Path, s: &script::Script, inputs: &[Input]) {
    let mut r = Recorder::create(path, &header(&s.reasons)).unwrap();
    for i in inputs {
        match i {
            Input::Event(ev) => r.event(ev, &s.kallsyms),
            Input::Tick(t) => r.tick(*t),
            Input::Snapshot(snap) => r.snapshot(snap),
            Input::Lost { at, total } => r.lost(*at, *total),
        }
    }
    r.finish(&End { events: 8, lost: 0 }).unwrap();
}

/// What the pipeline prints for these inputs.
fn print(
    inputs: impl IntoIterator<Item = Input>,
    kallsyms: &Kallsyms,
    reasons: &DropReasons,
    mode: Mode,
    diag: bool,
    format: OutputFormat,
) -> String {
    run_pipeline(inputs, kallsyms, reasons, mode, diag, format, None)
}

/// `print`, also writing the pcapng capture into `pcap` when given.
fn run_pipeline(
    inputs: impl IntoIterator<Item = Input>,
    kallsyms: &Kallsyms,
    reasons: &DropReasons,
    mode: Mode,
    diag: bool,
    format: OutputFormat,
    pcap: Option<crate::support::Capture>,
) -> String {
    let buf = crate::support::Capture::default();
    let (mode, rules) = if diag {
        let diag = DiagSpec {
            rules: RuleSource {
                paths: Vec::new(),
                defaults: true,
            },
            quiet: false,
            keep: true,
            hooks: false,
        };
        let rules = nettrace::rules::load_for_run(&[], true, Some(reasons))
            .unwrap()
            .bound_to(reasons);
        (Mode::Diag(diag), rules)
    } else {
        (mode, Vec::new())
    };
    let view = ViewSpec {
        format,
        ..Default::default()
    };
    let fmt = crate::support::plain_formatter(reasons, kallsyms);
    let mut p = Pipeline::new(fmt, &mode, &view, rules, None, Box::new(buf.clone()));
    if let Some(out) = pcap {
        let out: Box<dyn std::io::Write> = Box::new(out);
        p = p.with_pcap(
            nettrace::output::pcap::PcapWriter::new(out, 1_700_000_000_000_000_000, 256).unwrap(),
        );
    }
    for i in inputs {
        match i {
            Input::Event(ev) => p.event(ev),
            Input::Tick(t) => p.tick(t),
            Input::Snapshot(snap) => p.snapshot(snap),
            Input::Lost { at, .. } => p.events_lost(at),
        }
    }
    p.finish();
    drop(p);
    buf.text()
}

#[test]
fn a_recording_reads_back_as_written() {
    let s = script();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ntrec");
    let want = inputs(&s.events);
    write(&path, &s, &want);
    let rec = Recording::open(&path).unwrap();
    assert!(rec.damage.is_none());
    assert_eq!(rec.end, Some(End { events: 8, lost: 0 }));
    assert_eq!(rec.header, header(&s.reasons));
    let got: Vec<Input> = rec.inputs().unwrap().map(Result::unwrap).collect();
    assert_eq!(got, want);
    // Only the symbols the events point at travel with them.
    assert_eq!(rec.kallsyms.len(), 1);
}

/// A recording made by a nettrace whose catalogue numbered the probes
/// otherwise (here: in reverse) replays with our ids, spans included.
#[test]
fn probe_ids_of_another_catalogue_are_read_as_ours() {
    use nettrace::catalogue::table::{probe, PROBES};
    use nettrace::events::Span;
    let s = script();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.ntrec");
    let mut other = header(&s.reasons);
    other.probes.reverse();
    let theirs = |name: &str| other.probes.iter().position(|p| p == name).unwrap() as u32;
    let mut ev = s.events[0].clone();
    ev.probe = theirs("ip_rcv");
    ev.span = Some(Box::new(Span {
        first_ts: ev.ts - 1_000,
        end_ts: ev.ts,
        first_probe: theirs("ip_rcv"),
        end_probe: theirs("tcp_v4_rcv"),
    }));
    let mut r = Recorder::create(&path, &other).unwrap();
    r.event(&ev, &s.kallsyms);
    r.finish(&End { events: 1, lost: 0 }).unwrap();
    let rec = Recording::open(&path).unwrap();
    let got: Vec<Input> = rec.inputs().unwrap().map(Result::unwrap).collect();
    let [Input::Event(back)] = got.as_slice() else {
        panic!("{got:?}")
    };
    let ours = |name: &str| probe(name).unwrap().id;
    assert_ne!(theirs("ip_rcv"), ours("ip_rcv"), "{} probes", PROBES.len());
    assert_eq!(back.probe, ours("ip_rcv"));
    let span = back.span.as_deref().unwrap();
    assert_eq!(
        (span.first_probe, span.end_probe),
        (ours("ip_rcv"), ours("tcp_v4_rcv"))
    );
}

/// Format 1 (events in postcard) is still read: the file of the test
/// above, its event frames re-encoded the way nettrace 0.1 wrote them.
#[test]
fn a_format_1_recording_reads_back() {
    use nettrace::record::{codec, kind};
    let s = script();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ntrec");
    let want = inputs(&s.events);
    write(&path, &s, &want);
    let v2 = std::fs::read(&path).unwrap();
    let mut v1 = v2[..6].to_vec();
    v1.extend_from_slice(&1u16.to_le_bytes());
    let mut at = 8;
    while at < v2.len() {
        let len = u32::from_le_bytes(v2[at + 1..at + 5].try_into().unwrap()) as usize;
        let mut payload = v2[at + 5..at + 5 + len].to_vec();
        if v2[at] == kind::EVENT {
            payload = postcard::to_stdvec(&codec::decode(&payload).unwrap()).unwrap();
        }
        v1.push(v2[at]);
        v1.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        v1.extend_from_slice(&payload);
        at += 5 + len;
    }
    assert_ne!(v1[8..], v2[8..], "the event frames changed encoding");
    std::fs::write(&path, &v1).unwrap();
    let rec = Recording::open(&path).unwrap();
    assert!(rec.damage.is_none());
    let got: Vec<Input> = rec.inputs().unwrap().map(Result::unwrap).collect();
    assert_eq!(got, want);
}

#[test]
fn replay_prints_what_the_events_print_in_every_mode() {
    let s = script();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ntrec");
    let live = inputs(&s.events);
    write(&path, &s, &live);
    let rec = Recording::open(&path).unwrap();
    for (mode, diag) in [
        (Mode::Lifecycle, false),
        (Mode::Lifecycle, true),
        (Mode::Basic, false),
        (Mode::Drop { stack: false }, false),
    ] {
        for format in [OutputFormat::Text, OutputFormat::Json] {
            let direct = print(
                live.clone(),
                &s.kallsyms,
                &s.reasons,
                mode.clone(),
                diag,
                format,
            );
            let replayed = print(
                rec.inputs().unwrap().map(Result::unwrap),
                &rec.kallsyms,
                &rec.reasons,
                mode.clone(),
                diag,
                format,
            );
            assert!(!direct.is_empty());
            assert_eq!(direct, replayed, "{mode:?} diag={diag} {format:?}");
        }
    }
}

#[test]
fn json_lines_read_back_into_the_documented_types() {
    use nettrace::output::json::{Kind, Line, VERSION};
    let s = script();
    let live = inputs(&s.events);
    let cases = [
        (Mode::Basic, false, Kind::Event, 8),
        (Mode::Drop { stack: false }, false, Kind::Drop, 1),
        (Mode::Lifecycle, false, Kind::Packet, 2),
        (Mode::Lifecycle, true, Kind::Packet, 2),
    ];
    for (mode, diag, kind, lines) in cases {
        let out = print(
            live.clone(),
            &s.kallsyms,
            &s.reasons,
            mode.clone(),
            diag,
            OutputFormat::Json,
        );
        let parsed: Vec<Line> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(parsed.len(), lines, "{mode:?}: {out}");
        for l in &parsed {
            assert_eq!(l.version, VERSION);
            assert_eq!(l.kind, kind);
        }
        if diag {
            let fwd = parsed
                .iter()
                .filter_map(|l| l.packet.as_ref())
                .find(|p| p.events[0].probe == "ip_forward")
                .unwrap();
            let findings = fwd.findings.as_ref().unwrap();
            let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
            assert!(rules.contains(&"nft.drop"), "{rules:?}");
            let drop = findings
                .iter()
                .find(|f| f.rule == "drop.NETFILTER_DROP")
                .unwrap();
            assert_eq!(drop.level, "error");
            assert_eq!(fwd.events[drop.event].probe, "kfree_skb");
            let d = fwd.events[drop.event].drop.as_ref().unwrap();
            assert_eq!(d.reason.as_deref(), Some("NETFILTER_DROP"));
            assert_eq!(d.location.as_deref(), Some("nf_hook_slow+0x92"));
        }
    }
    // An unknown field is refused: the types are the schema.
    let bad = r#"{"version":1,"type":"event","surprise":1}"#;
    assert!(serde_json::from_str::<Line>(bad).is_err());
}

#[test]
fn a_truncated_recording_replays_up_to_the_damage() {
    let s = script();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ntrec");
    write(&path, &s, &inputs(&s.events));
    let full = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.ntrec");
    // Cut in the middle of the last event frame.
    std::fs::write(&cut, &full[..full.len() - 30]).unwrap();
    let rec = Recording::open(&cut).unwrap();
    let damage = rec.damage.clone().expect("damage found");
    let msg = damage.to_string();
    assert!(msg.contains("damaged at byte offset"), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    let events = rec
        .inputs()
        .unwrap()
        .filter(|i| matches!(i, Ok(Input::Event(_))))
        .count();
    assert_eq!(events, 7, "every event before the damage");
}

#[test]
fn unknown_versions_and_other_files_are_refused() {
    let s = script();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ntrec");
    write(&path, &s, &inputs(&s.events));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[6] = 99;
    std::fs::write(&path, &bytes).unwrap();
    match Recording::open(&path) {
        Err(ReadError::Version {
            found: 99, writer, ..
        }) => assert_eq!(writer, "test"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("version 99 accepted"),
    }
    std::fs::write(&path, b"{\"not\": \"a recording\"}").unwrap();
    let err = Recording::open(&path).err().unwrap().to_string();
    assert!(err.contains("not a nettrace recording"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    /// Any damage — a flipped byte, a cut — is an error or a shorter
    /// replay, never a panic or an allocation the frame length asked for.
    #[test]
    fn damaged_recordings_never_panic(
        pos in 0usize..2000, byte in any::<u8>(), cut in 0usize..2000
    ) {
        let s = script();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ntrec");
        write(&path, &s, &inputs(&s.events));
        let mut bytes = std::fs::read(&path).unwrap();
        let pos = pos % bytes.len();
        bytes[pos] = byte;
        bytes.truncate(bytes.len() - cut % bytes.len());
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(rec) = Recording::open(&path) {
            for i in rec.inputs().unwrap() {
                if i.is_err() { break; }
            }
        }
    }
}

#[test]
fn the_replay_command_prints_the_recording_and_reports_damage() {
    let s = script();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ntrec");
    let live = inputs(&s.events);
    write(&path, &s, &live);
    let p = path.to_str().unwrap();
    let (code, out, err) = nettrace(&["replay", p, "--diag", "--diag-keep"]);
    assert_eq!(code, 0, "{err}");
    let direct = print(
        live,
        &s.kallsyms,
        &s.reasons,
        Mode::Lifecycle,
        true,
        OutputFormat::Text,
    );
    assert_eq!(out, direct);
    // Filters narrow the replay as the kernel filter would have.
    let (code, out, err) = nettrace(&["replay", p, "-p", "udp"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("UDP: 10.0.0.3:5000"), "{out}");
    assert!(!out.contains("ICMP"), "{out}");
    // The clone (skb 3) follows its parent even though -p would not match it alone.
    assert!(out.contains("***************** 2,3 *"), "{out}");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
    let (code, out, err) = nettrace(&["replay", p, "--basic"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.lines().count(), 7, "{out}");
    assert!(err.contains("damaged at byte offset"), "{err}");
    assert!(err.contains("everything before it was replayed"), "{err}");
    let (code, _, err) = nettrace(&["replay", "/nonexistent.ntrec"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read the recording"), "{err}");
}

#[test]
fn rules_test_passes_on_the_pack_with_full_coverage() {
    let (code, out, err) = nettrace(&["rules", "test", "--require-coverage"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" 0 failed, 0 broken"), "{out}");
    assert!(
        out.contains("0 rules without a firing test, 0 without a silent one"),
        "{out}"
    );
}

/// The matrix's recordings from real kernels (tools/accuracy --fixtures):
/// every fault still names its root cause and every healthy case stays
/// clean under the current rule pack.
#[test]
fn the_accuracy_recordings_still_get_their_diagnoses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/accuracy");
    let (code, out, err) = nettrace(&["rules", "test", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" 0 failed, 0 broken"), "{out}");
    let passed: usize = out
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 50, "only {passed} recorded cases ran:\n{out}");
}

/// `rules test` reads drop reasons through each recording's own table: an
/// iptables DROP recorded on any kernel is NETFILTER_DROP, whatever number
/// that kernel gives it.
#[test]
fn recorded_drop_reasons_decode_with_the_recordings_kernel_table() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/accuracy");
    let mut kernels = Vec::new();
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let rec = entry.unwrap().path().join("nft-input-drop.ntrec");
        if rec.exists() {
            kernels.push(rec);
        }
    }
    assert!(
        !kernels.is_empty(),
        "no nft-input-drop recording under {fixtures:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("tests:\n");
    for rec in &kernels {
        yaml += &format!(
            "  - name: {name}\n    recording: {path}\n    expect: [{{rule: drop.NETFILTER_DROP, level: error}}]\n    absent: [drop.DUP_FRAG, drop.NOT_SPECIFIED]\n",
            name = rec.parent().unwrap().file_name().unwrap().to_string_lossy(),
            path = rec.display()
        );
    }
    std::fs::write(dir.path().join("decode.test.yaml"), yaml).unwrap();
    let (code, out, err) = nettrace(&["rules", "test", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{} passed, 0 failed, 0 broken", kernels.len())),
        "{out}"
    );
}

#[test]
fn rules_test_reports_a_wrong_expectation_readably() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.rules"),
        "rule site.ssh-drop {\n    when probe nft_do_chain and ret == NF_DROP and dport == 22\n    level error\n    message \"ssh is dropped\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("site.test.yaml"),
        r#"tests:
  - name: ssh dropped
    events:
      - {probe: nft_do_chain, ret: NF_DROP, nf: {table: t, chain: c, nft: true}, pkt: {proto: tcp, src: "10.0.0.1:4000", dst: "10.0.0.2:22", flags: S}}
    expect: [{rule: site.ssh-drop, level: error}]
  - name: wrong on purpose
    events:
      - {probe: nft_do_chain, ret: NF_ACCEPT, nf: {table: t, chain: c, nft: true}, pkt: {proto: tcp, src: "10.0.0.1:4000", dst: "10.0.0.2:22", flags: S}}
    expect: [{rule: site.ssh-drop}]
    absent: [nft.accept]
"#,
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, _) = nettrace(&["rules", "test", d]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL ") && out.contains("site.test.yaml: wrong on purpose"),
        "{out}"
    );
    assert!(
        out.contains("    expected site.ssh-drop to fire; it did not"),
        "{out}"
    );
    assert!(
        out.contains("    expected nft.accept not to fire; it fired 1 time(s)"),
        "{out}"
    );
    assert!(out.contains("    found: nft.accept (info x1)"), "{out}");
    assert!(out.contains("1 passed, 1 failed, 0 broken"), "{out}");
    // A typo in a rule id is a broken test, not a silent pass.
    std::fs::write(
        dir.path().join("site.test.yaml"),
        "tests:\n  - name: typo\n    events: [{probe: nft_do_chain}]\n    absent: [nft.acept]\n",
    )
    .unwrap();
    let (code, out, _) = nettrace(&["rules", "test", d]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("no loaded rule has the id `nft.acept`"),
        "{out}"
    );
    // A YAML mistake names the file, line and column.
    std::fs::write(
        dir.path().join("site.test.yaml"),
        "tests:\n  - name: x\n    evnts: []\n",
    )
    .unwrap();
    let (code, _, err) = nettrace(&["rules", "test", d]);
    assert_eq!(code, 2);
    assert!(err.contains("site.test.yaml:3:"), "{err}");
}

#[test]
fn live_flags_before_a_subcommand_are_refused_not_ignored() {
    let (code, _, err) = nettrace(&["--diag", "replay", "/tmp/none.ntrec"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`--diag` before the subcommand applies to live runs only"),
        "{err}"
    );
    // Logging flags apply to subcommands too.
    let (code, _, err) = nettrace(&["-v", "rules", "test", "--no-default-rules", "/nonexistent"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent: no such file or directory"),
        "{err}"
    );
}

/// The kernel-side modes' inputs: span events (`--latency`) and counter
/// snapshots (`--func-stats`, `--latency-summary`) read back from a
/// recording as written, and print the same text and JSON; the text is
/// held by snapshots.
#[test]
fn spans_and_counter_snapshots_record_and_print() {
    use nettrace::events::snapshot::{Counters, Histogram, Snapshot};
    use nettrace::events::Span;
    use nettrace::spec::LatencySpec;
    let s = script();
    let probe = |name: &str| nettrace::catalogue::table::probe(name).unwrap().id;
    let mut spans = Vec::new();
    for (i, ms) in [3u64, 45, 120].iter().enumerate() {
        let mut ev = s.events[0].clone();
        ev.ts = 2_000_000_000 + i as u64 * 1_000_000_000;
        ev.span = Some(Box::new(Span {
            first_ts: ev.ts - ms * 1_000_000,
            end_ts: ev.ts,
            first_probe: probe("ip_rcv"),
            end_probe: probe("tcp_v4_rcv"),
        }));
        spans.push(Input::Event(ev));
    }
    let hist = |values: &[u64]| {
        let mut h = Histogram::empty();
        values.iter().for_each(|v| h.record(*v));
        h
    };
    let latency = [
        Snapshot {
            ts: 1_000_000_000,
            counters: Counters::Latency(Histogram::empty()),
        },
        Snapshot {
            ts: 2_000_000_000,
            counters: Counters::Latency(hist(&[1_500, 40_000, 41_000, 3_000_000])),
        },
        Snapshot {
            ts: 3_000_000_000,
            counters: Counters::Latency(hist(&[1_500, 40_000, 41_000, 3_000_000, 90_000])),
        },
    ];
    let hits =
        |n: u64| Counters::FuncHits(vec![(probe("ip_rcv"), n), (probe("tcp_v4_rcv"), n / 2)]);
    let func = [
        Snapshot {
            ts: 1_000_000_000,
            counters: hits(0),
        },
        Snapshot {
            ts: 2_000_000_000,
            counters: hits(10),
        },
        Snapshot {
            ts: 3_000_000_000,
            counters: hits(30),
        },
    ];
    // --sock: a state change and a reset with its reason.
    let mut change = nettrace::events::Event::new(4_000_000_000, 0, probe("inet_sock_set_state"));
    change.pkt = s.events[0].pkt.clone();
    change.pkt.source = nettrace::events::PacketSource::Socket;
    change.pkt.l4_proto = 6;
    (change.pkt.sport, change.pkt.dport) = (40000, 7200);
    change.sock = Some(Box::new(nettrace::events::SockFacts {
        state: 2,
        new_state: 1,
        protocol: 6,
        srtt_us: 20_400,
        minrtt_us: 20_100,
        snd_cwnd: 10,
        ssthresh: 0x7fff_ffff,
        sndbuf: 16384,
        rcvbuf: 131072,
        ..Default::default()
    }));
    let mut reset = change.clone();
    reset.ts += 1_000_000;
    reset.probe = probe("tcp_send_reset");
    reset.rst_reason = s.reasons.rst_value_of("TCP_ABORT_ON_CLOSE");
    reset.sock = Some(Box::new(nettrace::events::SockFacts {
        state: 1,
        ca_state: 4,
        retransmits: 2,
        pending: 1,
        protocol: 6,
        srtt_us: 20_400,
        minrtt_us: 20_100,
        rtt_us: 0,
        snd_cwnd: 1,
        ssthresh: 5,
        packets_out: 3,
        retrans_out: 1,
        total_retrans: 4,
        wmem_queued: 4096,
        rmem_alloc: 1000,
        sndbuf: 16384,
        rcvbuf: 131072,
        ..Default::default()
    }));
    let rtt = [
        Snapshot {
            ts: 1_000_000_000,
            counters: Counters::Rtt(Histogram::empty()),
        },
        Snapshot {
            ts: 2_000_000_000,
            counters: Counters::Rtt(hist(&[20_400_000, 21_000_000, 45_000_000])),
        },
    ];
    let modes: [(&str, Mode, Vec<Input>); 5] = [
        (
            "sock",
            Mode::Sock,
            vec![Input::Event(change), Input::Event(reset)],
        ),
        (
            "rtt_histogram",
            Mode::Rtt(nettrace::spec::RttSpec {
                detail: false,
                min_srtt_us: 0,
                min_minrtt_us: 0,
            }),
            rtt.into_iter().map(Input::Snapshot).collect(),
        ),
        (
            "latency_spans",
            Mode::Latency(LatencySpec {
                summary: false,
                min_ns: 10_000_000,
                free: false,
            }),
            spans,
        ),
        (
            "latency_histogram",
            Mode::Latency(LatencySpec {
                summary: true,
                min_ns: 0,
                free: false,
            }),
            latency.into_iter().map(Input::Snapshot).collect(),
        ),
        (
            "func_stats",
            Mode::FuncStats,
            func.into_iter().map(Input::Snapshot).collect(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, mode, inputs) in modes {
        let path = dir.path().join(format!("{name}.ntrec"));
        write(&path, &s, &inputs);
        let rec = Recording::open(&path).unwrap();
        let read: Vec<Input> = rec.inputs().unwrap().map(Result::unwrap).collect();
        assert_eq!(read, inputs, "{name}");
        for format in [OutputFormat::Text, OutputFormat::Json] {
            let direct = print(
                inputs.clone(),
                &s.kallsyms,
                &s.reasons,
                mode.clone(),
                false,
                format,
            );
            let replayed = print(
                read.clone(),
                &rec.kallsyms,
                &rec.reasons,
                mode.clone(),
                false,
                format,
            );
            assert_eq!(direct, replayed, "{name}");
            if format == OutputFormat::Json {
                for l in direct.lines() {
                    serde_json::from_str::<nettrace::output::json::Line>(l)
                        .unwrap_or_else(|e| panic!("{e}: {l}"));
                }
            }
            insta::assert_snapshot!(format!("{name}_{format:?}"), direct);
        }
    }
}

/// `--filter-srtt`/`--filter-minrtt` on an `--rtt-detail` replay keep
/// the updates the kernel would have sent.
#[test]
fn rtt_detail_replays_apply_the_rtt_filters() {
    let s = script();
    let update = |ts: u64, srtt_us: u32, minrtt_us: u32| {
        let mut ev = nettrace::events::Event::new(
            ts,
            0,
            nettrace::catalogue::table::probe("tcp_ack_update_rtt")
                .unwrap()
                .id,
        );
        ev.pkt = s.events[0].pkt.clone();
        ev.sock = Some(Box::new(nettrace::events::SockFacts {
            state: 1,
            protocol: 6,
            srtt_us,
            minrtt_us,
            rtt_us: srtt_us,
            ..Default::default()
        }));
        Input::Event(ev)
    };
    let inputs = vec![
        update(1_000_000_000, 20_000, 19_000),
        update(2_000_000_000, 45_000, 19_000),
        update(3_000_000_000, 45_000, 40_000),
    ];
    let rtt = |min_srtt_us, min_minrtt_us| {
        Mode::Rtt(nettrace::spec::RttSpec {
            detail: true,
            min_srtt_us,
            min_minrtt_us,
        })
    };
    let lines = |mode| {
        print(
            inputs.clone(),
            &s.kallsyms,
            &s.reasons,
            mode,
            false,
            OutputFormat::Text,
        )
        .lines()
        .count()
    };
    assert_eq!(lines(rtt(0, 0)), 3);
    assert_eq!(lines(rtt(30_000, 0)), 2);
    assert_eq!(lines(rtt(30_000, 30_000)), 1);
}

/// A live run notes when the kernel's count of lost events grew; replay
/// marks the same packets, and no finding rests on an event they may miss.
#[test]
fn lost_events_travel_with_the_recording_and_withhold_absence_findings() {
    let list: Vec<ScriptEvent> = serde_yaml::from_str(
        r#"
- {probe: net_dev_queue, pkt: {proto: udp, src: "10.0.0.1:5000", dst: "10.0.0.2:53"}}
- {probe: consume_skb}
"#,
    )
    .unwrap();
    let s = script::build(&list).unwrap();
    let clean = inputs(&s.events);
    let mut lossy = clean.clone();
    let first = s.events[0].ts;
    lossy.insert(
        1,
        Input::Lost {
            at: first,
            total: 3,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ntrec");
    write(&path, &s, &lossy);
    let rec = Recording::open(&path).unwrap();
    let got: Vec<Input> = rec.inputs().unwrap().map(Result::unwrap).collect();
    assert_eq!(got, lossy);
    let diag = |inputs: Vec<Input>| {
        print(
            inputs,
            &s.kallsyms,
            &s.reasons,
            Mode::Lifecycle,
            true,
            OutputFormat::Text,
        )
    };
    let without = diag(clean);
    assert!(without.contains("never reached the driver"), "{without}");
    let with = diag(got);
    assert!(!with.contains("never reached the driver"), "{with}");
    assert!(
        with.contains("(events were lost while this packet was traced"),
        "{with}"
    );
}

/// Packet bytes travel in the recording (format 5): a replay writes the
/// capture the live pipeline wrote, byte for byte.
#[test]
fn replay_writes_the_capture_the_live_run_wrote() {
    use nettrace::events::bytes::{Captured, Link};
    let list: Vec<ScriptEvent> = serde_yaml::from_str(
        r#"
- {probe: ip_rcv, pkt: {proto: udp, src: "10.0.0.1:5000", dst: "10.0.0.2:9999"}}
- {probe: kfree_skb, drop: NO_SOCKET, at: __udp4_lib_rcv+0x4bc}
"#,
    )
    .unwrap();
    let mut s = script::build(&list).unwrap();
    for (i, ev) in s.events.iter_mut().enumerate() {
        ev.bytes = Some(Box::new(Captured {
            link: Link::Raw,
            orig_len: 46 + i as u32,
            data: vec![0x45, 0, 0, 46, i as u8].into(),
        }));
    }
    let live = inputs(&s.events);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ntrec");
    write(&path, &s, &live);
    let rec = Recording::open(&path).unwrap();
    let replayed: Vec<Input> = rec.inputs().unwrap().map(Result::unwrap).collect();
    assert_eq!(replayed, live, "the bytes read back as written");
    let capture = |inputs: Vec<Input>, kallsyms: &Kallsyms, reasons: &DropReasons| {
        let out = crate::support::Capture::default();
        run_pipeline(
            inputs,
            kallsyms,
            reasons,
            Mode::Lifecycle,
            true,
            OutputFormat::Text,
            Some(out.clone()),
        );
        out.bytes()
    };
    let from_live = capture(live, &s.kallsyms, &s.reasons);
    let from_replay = capture(replayed, &rec.kallsyms, &rec.reasons);
    assert_eq!(from_live, from_replay);
    let text = String::from_utf8_lossy(&from_live);
    assert!(text.contains("reason NO_SOCKET"), "{text}");
    assert!(
        text.contains("drop.NO_SOCKET"),
        "the findings are in the comment: {text}"
    );
}
