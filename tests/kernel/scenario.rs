//! Network scenarios for kernel tests: namespaces joined by veth pairs,
//! addressed from 198.18.0.0/15 (the benchmarking range, never routed).
//! Everything a scenario creates lives inside its namespaces, so deleting
//! them (on drop, also while a test panics) removes links and firewall
//! rules too. Leftovers of an interrupted run are removed when the next
//! scenario starts.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

const PREFIX: &str = "ntt";

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Runs a command and panics with its output when it fails.
pub fn must(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deletes namespaces left by test processes that no longer exist.
fn remove_stale() {
    let list = String::from_utf8_lossy(&run("ip", &["netns", "list"]).stdout).into_owned();
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(&format!("{PREFIX}-")) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = run("ip", &["netns", "del", name]);
            }
        }
    }
}

static NEXT_SUBNET: AtomicU32 = AtomicU32::new(1);

/// A network namespace owned by the test.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("{PREFIX}-{}-{tag}", std::process::id());
        let _ = run("ip", &["netns", "del", &name]);
        must("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace; panics on failure.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        must("ip", &full)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// Two hosts on one veth pair: `a` (x.x.n.1) and `b` (x.x.n.2).
pub struct TwoHosts {
    pub a: Netns,
    pub b: Netns,
    pub a_addr: String,
    pub b_addr: String,
}

impl TwoHosts {
    pub fn new(tag: &str) -> TwoHosts {
        remove_stale();
        let n = NEXT_SUBNET.fetch_add(1, Ordering::Relaxed) + (std::process::id() % 50) * 4;
        let a = Netns::new(&format!("{tag}-a"));
        let b = Netns::new(&format!("{tag}-b"));
        let (a_addr, b_addr) = (format!("198.18.{n}.1"), format!("198.18.{n}.2"));
        let veth_a = format!("nt{n}a");
        let veth_b = format!("nt{n}b");
        a.exec(&[
            "ip", "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b,
        ]);
        a.exec(&["ip", "link", "set", &veth_b, "netns", &b.name]);
        a.exec(&["ip", "addr", "add", &format!("{a_addr}/24"), "dev", &veth_a]);
        b.exec(&["ip", "addr", "add", &format!("{b_addr}/24"), "dev", &veth_b]);
        a.exec(&["ip", "link", "set", &veth_a, "up"]);
        b.exec(&["ip", "link", "set", &veth_b, "up"]);
        TwoHosts {
            a,
            b,
            a_addr,
            b_addr,
        }
    }
}

/// Sends one UDP datagram from inside `ns`, from `sport` to `dst:dport`.
pub fn send_udp(ns: &Netns, sport: u16, dst: &str, dport: u16) {
    let script = format!(
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('', {sport})); \
         s.sendto(b'nettrace-test', ('{dst}', {dport}))"
    );
    ns.exec(&["python3", "-c", &script]);
}

/// Tries one TCP connection to `addr:port` on loopback (expected refused).
pub fn tcp_connect_refused(port: u16) {
    let r = std::net::TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        std::time::Duration::from_secs(5),
    );
    assert!(r.is_err(), "something listens on port {port}");
}

/// A TCP port with no listener on loopback, for "closed port" tests.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}
