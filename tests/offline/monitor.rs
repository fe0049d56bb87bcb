//! Monitor mode without a kernel: which rules it runs and on which probes,
//! the rate limits, finding lines (text, journald, JSON) and the metrics
//! text.

use nettrace::catalogue::table::PROBES;
use nettrace::output::metrics::{Metrics, MAX_DROP_SERIES};
use nettrace::output::Format as OutputFormat;
use nettrace::pipeline::{Limiter, Pipeline};
use nettrace::record::script::{self, ScriptEvent};
use nettrace::rules::monitor::{monitor_probes, plan, quiet_returns, NotMonitored};
use nettrace::spec::{Mode, MonitorSpec, RuleSource, ViewSpec};

fn pack() -> Vec<nettrace::rules::compile::Rule> {
    let reasons = script::known_reasons();
    nettrace::rules::load_for_run(&[], true, Some(&reasons))
        .unwrap()
        .bound_to(&reasons)
}

fn names(ids: &[u32]) -> Vec<&'static str> {
    ids.iter().map(|i| PROBES[*i as usize].name).collect()
}

#[test]
fn monitor_runs_single_event_warnings_and_errors_on_their_probes() {
    let rules = pack();
    let by_id = |id: &str| rules.iter().find(|r| r.id == id).unwrap();
    assert_eq!(
        names(&monitor_probes(by_id("nf.hook-drop")).unwrap()),
        ["nf_hook_slow"]
    );
    assert_eq!(
        names(&monitor_probes(by_id("tcp.send-reset")).unwrap()),
        ["tcp_v4_send_reset", "tcp_v6_send_reset"]
    );
    assert!(names(&monitor_probes(by_id("drop.NO_SOCKET")).unwrap()).contains(&"kfree_skb"));
    assert_eq!(
        monitor_probes(by_id("nat.drop-after-nat")),
        Err(NotMonitored::Order)
    );
    assert_eq!(monitor_probes(by_id("life.freed")), Err(NotMonitored::Info));
    let (kept, probes) = plan(&rules);
    assert!(
        kept.len() > 100 && kept.len() < rules.len(),
        "{}",
        kept.len()
    );
    let probe_names = names(&probes);
    // Info rules do not bring their probes: consume_skb fires for every packet.
    assert!(!probe_names.contains(&"consume_skb"), "{probe_names:?}");
    assert!(probe_names.contains(&"kfree_skb"));
}

#[test]
fn the_kernel_keeps_the_return_values_no_monitored_rule_reports() {
    let rules = pack();
    let (kept, probes) = plan(&rules);
    let quiet = quiet_returns(&kept, &probes);
    let mask = |name: &str| {
        let id = nettrace::catalogue::table::probe(name).unwrap().id;
        quiet.iter().find(|(p, _)| *p == id).map_or(0, |(_, m)| *m)
    };
    // `ret != NET_XMIT_SUCCESS`: success (0) is quiet, every other value is sent.
    assert_eq!(mask("__dev_queue_xmit"), 1);
    // `ret == NF_DROP`: nf_hook_slow returns 1 to accept (quiet) and
    // -EPERM to drop (outside 0..=63: always sent).
    assert_eq!(mask("nf_hook_slow") & 0b10, 0b10);
    // `ret == false` is reported, true is not.
    assert_eq!(mask("tcp_in_window") & 0b11, 0b10);
    // Drops (no return value) are never kept back.
    assert_eq!(mask("kfree_skb"), 0);
    // A rule that does not decide on the return value alone keeps every
    // value of its probe.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.rules"),
        "rule site.big-xmit {\n    when    probe __dev_queue_xmit and len > 1000\n    level   warn\n    message \"big\"\n}\n",
    )
    .unwrap();
    let reasons = script::known_reasons();
    let site = nettrace::rules::load_for_run(&[dir.path().to_path_buf()], true, Some(&reasons))
        .unwrap()
        .bound_to(&reasons);
    let (kept, probes) = plan(&site);
    let quiet = quiet_returns(&kept, &probes);
    let xmit = PROBES
        .iter()
        .find(|p| p.name == "__dev_queue_xmit")
        .unwrap()
        .id;
    assert!(!quiet.iter().any(|(p, _)| *p == xmit), "{quiet:?}");
    assert!(!quiet.is_empty());
}

#[test]
fn the_limiter_counts_what_it_suppresses_per_rule_and_in_all() {
    let s = 1_000_000_000u64;
    let mut l = Limiter::new(2, 2, 3);
    let allowed: Vec<bool> = [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4)]
        .iter()
        .map(|(rule, t)| l.allow(*rule, 10 * s + t))
        .collect();
    // Rule 0 gets 2, rule 1 gets the third overall slot, then none.
    assert_eq!(allowed, [true, true, false, true, false]);
    assert_eq!(l.suppressed, [1, 1]);
    // A second after the window opened, counting starts again.
    assert!(l.allow(0, 11 * s));
    assert!(l.allow(0, 11 * s + 5));
    assert!(!l.allow(0, 11 * s + 6));
    let mut unlimited = Limiter::new(1, 0, 0);
    assert!((0..1000).all(|i| unlimited.allow(0, i)));
}

fn monitor_output(format: OutputFormat, journal: bool, metrics: bool) -> (String, Option<Metrics>) {
    let list: Vec<ScriptEvent> = serde_yaml::from_str(
        r#"
- {probe: nf_hook_slow, ret: NF_DROP, nf: {family: ipv4, hook: FORWARD}, pkt: {proto: icmp, src: 10.0.0.1, dst: 10.0.1.2}}
- {probe: kfree_skb, drop: NETFILTER_DROP, at: nf_hook_slow+0x92}
- {probe: consume_skb, skb: 2, pkt: {proto: udp, src: "10.0.0.3:5000", dst: "10.0.0.4:53"}}
"#,
    )
    .unwrap();
    let s = script::build(&list).unwrap();
    let rules = plan(&pack()).0;
    let buf = crate::support::Capture::default();
    let shared = metrics.then(nettrace::output::metrics::Shared::default);
    let fmt = crate::support::plain_formatter(&s.reasons, &s.kallsyms);
    let mode = Mode::Monitor(MonitorSpec {
        rules: RuleSource::default(),
        rate_per_rule: 10,
        rate_total: 100,
        journal,
        metrics: None,
    });
    let view = ViewSpec {
        format,
        ..Default::default()
    };
    let mut p = Pipeline::new(
        fmt,
        &mode,
        &view,
        rules,
        shared.clone(),
        Box::new(buf.clone()),
    );
    for ev in s.events {
        p.event(ev);
    }
    p.finish();
    drop(p);
    let text = buf.text();
    let m = shared.map(|m| std::mem::take(&mut *m.lock().unwrap()));
    (text, m)
}

#[test]
fn findings_print_one_line_each() {
    let (text, _) = monitor_output(OutputFormat::Text, false, false);
    insta::assert_snapshot!("monitor_text", text);
    let (journal, _) = monitor_output(OutputFormat::Text, true, false);
    let prefixes: Vec<&str> = journal.lines().map(|l| &l[..3]).collect();
    assert_eq!(prefixes, ["<3>", "<3>"], "{journal}");
    let (json, _) = monitor_output(OutputFormat::Json, false, false);
    for l in json.lines() {
        let line: nettrace::output::json::Line = serde_json::from_str(l).unwrap();
        assert_eq!(line.kind, nettrace::output::json::Kind::Finding);
        assert!(line.finding.is_some() && line.event.is_some());
    }
    assert_eq!(json.lines().count(), 2);
}

#[test]
fn metrics_count_findings_and_drops_in_prometheus_text() {
    let (_, m) = monitor_output(OutputFormat::Text, false, true);
    let m = m.unwrap();
    assert_eq!(m.events, 3);
    let text = m.render();
    insta::assert_snapshot!("monitor_metrics", text);
    // Label sets stay bounded on long runs.
    let mut big = Metrics::default();
    for i in 0..(MAX_DROP_SERIES + 50) {
        big.count_drop("NOT_SPECIFIED".into(), format!("f{i}"));
    }
    assert_eq!(big.drops.len(), MAX_DROP_SERIES + 1);
    assert_eq!(
        big.drops[&("NOT_SPECIFIED".to_string(), "other".to_string())],
        50
    );
}
