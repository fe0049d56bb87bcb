//! The default mode on the running kernel: one block per packet.

use crate::runner::{require_root, start};
use crate::scenario::{ping, TwoHosts};
use std::time::Duration;

#[test]
fn ping_between_namespaces_gives_one_block_per_packet() {
    if !require_root("ping_gives_one_block_per_packet") {
        return;
    }
    let net = TwoHosts::new("life");
    let tracer = start(&["-p", "icmp", "--addr", &net.a_addr]);
    let basic = start(&["--basic", "-p", "icmp", "--addr", &net.a_addr]);
    let other = start(&["-p", "icmp", "--addr", "198.19.255.253"]);
    assert!(ping(&net.a, &net.b_addr, 1));
    let request = format!("ICMP: {} -> {} ping request", net.a_addr, net.b_addr);
    tracer
        .wait_line(Duration::from_secs(30), |l| l.contains(&request))
        .expect("a block for the ping request");
    std::thread::sleep(Duration::from_secs(1));
    let out = tracer.stop().stdout;
    // The block holding the request: a header naming the skb, then events
    // in time order from transmit to receive, ending with the free.
    // Without clone probes (tracepoint-only kernels) the sender's copy of
    // the request can stand in a block of its own: take the fullest block.
    let block_with_request = out
        .split(|l| l.is_empty())
        .filter(|b| b.iter().any(|l| l.contains(&request)))
        .max_by_key(|b| b.len())
        .expect("request block");
    assert!(
        block_with_request[0].starts_with("***************** ")
            && block_with_request[0].ends_with(" ***************"),
        "no context header: {block_with_request:?}"
    );
    let probes: Vec<&str> = block_with_request
        .iter()
        .skip(1)
        .filter_map(|l| l.split('[').nth(2)?.split(']').next())
        .map(str::trim)
        .collect();
    for want in [
        "net_dev_queue",
        "net_dev_xmit",
        "__netif_receive_skb_core",
        "consume_skb",
    ] {
        assert!(
            probes.contains(&want),
            "{want} missing from {block_with_request:?}"
        );
    }
    let pos = |p: &str| probes.iter().position(|x| *x == p).unwrap();
    assert!(
        pos("net_dev_queue") < pos("__netif_receive_skb_core"),
        "{probes:?}"
    );
    // --basic: the same events, no blocks.
    let basic_out = basic.stop().stdout;
    assert!(basic_out
        .iter()
        .any(|l| l.contains(&request) && l.contains("[net_dev_queue")));
    assert!(
        !basic_out.iter().any(|l| l.starts_with("*****")),
        "{basic_out:?}"
    );
    // Another address: nothing.
    let other_out = other.stop().stdout;
    assert!(
        !other_out.iter().any(|l| l.contains(&net.a_addr)),
        "{other_out:?}"
    );
}
