//! The packet filter exists twice: in BPF (`filter_pkt`,
//! bpf-templates/filter.bpf.h) for live runs, and in Rust
//! (`pipeline::admission::matches`) for replays. This test compiles the C natively
//! and runs both on the same generated filters and packets: a replay keeps
//! exactly the packets the kernel would have kept.

use nettrace::abi::{filter_flags as bits, nt_event, nt_filter, nt_pkt};
use nettrace::events::Event;
use nettrace::pipeline::admission::matches;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::io::Write;
use std::process::{Command, Stdio};

const HARNESS: &str = r#"
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
#ifndef __always_inline
#define __always_inline inline
#endif
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#include "nettrace.h"
volatile struct nt_filter FILTER;
#include "filter.bpf.h"
int main(void)
{
	struct nt_filter f;
	struct nt_pkt p;

	printf("%zu %zu\n", sizeof(f), sizeof(p));
	while (fread(&f, sizeof(f), 1, stdin) == 1 && fread(&p, sizeof(p), 1, stdin) == 1) {
		memcpy((void *)&FILTER, &f, sizeof(f));
		putchar(filter_pkt(&p) ? '1' : '0');
	}
	return 0;
}
"#;

/// The C filter, built once per test run.
fn harness() -> std::path::PathBuf {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let src = dir.join("harness.c");
    std::fs::write(&src, HARNESS).expect("write harness");
    let bin = dir.join("harness");
    let clang = std::env::var("NETTRACE_CLANG").unwrap_or_else(|_| "clang".into());
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/bpf-templates");
    let out = Command::new(&clang)
        .args(["-O1", "-Wall", "-Werror", "-I", templates, "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("{clang} (needed to build nettrace too): {e}"));
    assert!(
        out.status.success(),
        "compiling the C filter failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

fn bytes_of<T>(v: &T) -> &[u8] {
    // SAFETY: the skeleton's types are plain old data.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// Addresses, ports and protocols from small sets, so that filters match
/// often enough to test both answers.
fn addr(family: u8, pick: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    if family == 4 {
        a[..4].copy_from_slice(&[10, 0, 0, pick % 3]);
    } else {
        a[0] = 0xfd;
        a[15] = pick % 3;
    }
    a
}

fn family() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![0u8, 4, 6])
}

fn port() -> impl Strategy<Value = u16> {
    prop::sample::select(vec![0u16, 53, 80, 443])
}

fn l4() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![1u8, 6, 17, 58, 132])
}

fn l3() -> impl Strategy<Value = u16> {
    prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806])
}

prop_compose! {
    fn packet()(family in family(), s in 0u8..3, d in 0u8..3, l3 in l3(), l4 in l4(),
                sport in port(), dport in port(), flags in any::<u8>(), len in 60u32..70)
        -> nt_pkt {
        let mut p = nt_pkt::default();
        if family != 0 {
            p.saddr = addr(family, s);
            p.daddr = addr(family, d);
        }
        (p.family, p.l3_proto, p.l4_proto) = (family, l3, l4);
        (p.sport, p.dport, p.tcp_flags, p.len) = (sport, dport, flags, len);
        p.source = 1;
        p
    }
}

prop_compose! {
    fn filter()(on in (0u32..(1 << 12), 0u32..(1 << 12), 0u32..(1 << 12)), fs in family(), fd in family(), fa in family(),
                s in 0u8..3, d in 0u8..3, a in 0u8..3, l3 in l3(), l4 in l4(),
                sport in port(), dport in port(), port in port(), flags in 0u8..0x20,
                lo in 58u32..66, span in 0u32..6)
        -> nt_filter {
        let mut f = nt_filter {
            // A few filters at a time (each on with p = 1/8); --pid and
            // --netns are checked apart from the packet in BPF.
            flags: on.0 & on.1 & on.2 & !(bits::PID | bits::NETNS),
            ..Default::default()
        };
        (f.saddr, f.saddr_family) = (addr(fs.max(4), s), fs.max(4));
        (f.daddr, f.daddr_family) = (addr(fd.max(4), d), fd.max(4));
        (f.addr, f.addr_family) = (addr(fa.max(4), a), fa.max(4));
        (f.l3_proto, f.l4_proto) = (l3, l4);
        (f.sport, f.dport, f.port, f.tcp_flags) = (sport, dport, port, flags);
        (f.len_min, f.len_max) = (lo, lo + span);
        f
    }
}

#[test]
fn the_bpf_filter_and_the_replay_filter_agree() {
    let bin = harness();
    let cases: Vec<(nt_filter, nt_pkt)> = {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = (filter(), packet());
        (0..20_000)
            .map(|_| strategy.new_tree(&mut runner).expect("case").current())
            .collect()
    };
    let mut input = Vec::new();
    for (f, p) in &cases {
        input.extend_from_slice(bytes_of(f));
        input.extend_from_slice(bytes_of(p));
    }
    let mut child = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the C filter");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("feed the C filter");
    let out = child.wait_with_output().expect("C filter output");
    let text = String::from_utf8(out.stdout).expect("ascii");
    let (sizes, answers) = text.split_once('\n').expect("sizes line");
    assert_eq!(
        sizes,
        format!(
            "{} {}",
            std::mem::size_of::<nt_filter>(),
            std::mem::size_of::<nt_pkt>()
        ),
        "the C and Rust layouts differ"
    );
    assert_eq!(answers.len(), cases.len());
    let mut kept = 0;
    for ((f, p), c) in cases.iter().zip(answers.chars()) {
        let raw = nt_event {
            pkt: *p,
            ..Default::default()
        };
        let rust = matches(f, &Event::from_raw(&raw));
        assert_eq!(
            rust,
            c == '1',
            "filter {f:?} on packet {p:?}: BPF says {c}, Rust says {rust}"
        );
        kept += usize::from(rust);
    }
    // Both answers are exercised.
    assert!(kept > 500 && kept < cases.len() - 500, "kept {kept}");
}
