//! Drop-reason names come from BTF, and differ between kernels: fixtures
//! made by tools/make-btf-fixture from Debian 6.1, 6.12 and the 6.18 host.

use nettrace::kernel::btf::{DropReasons, KernelBtf};
use std::path::PathBuf;

fn fixture(kernel: &str) -> DropReasons {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/btf/drop-reasons-{kernel}.btf"));
    KernelBtf::load(Some(&path))
        .expect("fixture loads")
        .drop_reasons()
}

#[test]
fn netfilter_drop_numbering_differs_between_kernels() {
    let (k61, k612, k618) = (fixture("6.1"), fixture("6.12"), fixture("6.18"));
    assert_eq!(k61.value_of("NETFILTER_DROP"), Some(7));
    assert_eq!(k612.value_of("NETFILTER_DROP"), Some(11));
    assert_eq!(k618.value_of("NETFILTER_DROP"), Some(12));
    assert_eq!(k61.name(7), "NETFILTER_DROP");
    assert_eq!(k618.name(12), "NETFILTER_DROP");
    assert_eq!(k618.name(3), "NO_SOCKET");
    assert_eq!(k61.name(2), "NO_SOCKET");
    assert_eq!(k618.name(0), "NOT_DROPPED_YET");
    assert!(k618.len() > k61.len());
}

#[test]
fn unknown_and_subsystem_reasons_are_named_not_invented() {
    let r = fixture("6.18");
    assert_eq!(r.name(60_000), "UNKNOWN_60000");
    assert_eq!(r.name((3 << 16) | 5), "SUBSYS_3:5");
    assert!(DropReasons::default().is_empty());
}

#[test]
fn missing_btf_names_the_fix() {
    let err = KernelBtf::load(Some(std::path::Path::new("/nonexistent/vmlinux")))
        .err()
        .expect("missing file is an error")
        .to_string();
    assert!(err.contains("--btf FILE"), "{err}");
}
