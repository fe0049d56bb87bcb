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

    /// The namespace's inode, as `--netns` takes it.
    pub fn inode(&self) -> String {
        must(
            "stat",
            &["-L", "-c", "%i", &format!("/run/netns/{}", self.name)],
        )
        .trim()
        .to_string()
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
    /// a's and b's ends of the veth pair.
    pub a_if: String,
    pub b_if: String,
}

impl TwoHosts {
    pub fn new(tag: &str) -> TwoHosts {
        remove_stale();
        let n = NEXT_SUBNET.fetch_add(1, Ordering::Relaxed) + (std::process::id() % 50) * 4;
        let a = Netns::new(&format!("{tag}-a"));
        let b = Netns::new(&format!("{tag}-b"));
        let (a_addr, b_addr) = (format!("198.18.{n}.1"), format!("198.18.{n}.2"));
        link(
            &a,
            &format!("nt{n}a"),
            &format!("{a_addr}/24"),
            &b,
            &format!("nt{n}b"),
            &format!("{b_addr}/24"),
        );
        TwoHosts {
            a,
            b,
            a_addr,
            b_addr,
            a_if: format!("nt{n}a"),
            b_if: format!("nt{n}b"),
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

/// Links two namespaces with a veth pair and addresses both ends.
fn link(a: &Netns, a_if: &str, a_cidr: &str, b: &Netns, b_if: &str, b_cidr: &str) {
    a.exec(&[
        "ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if,
    ]);
    a.exec(&["ip", "link", "set", b_if, "netns", &b.name]);
    a.exec(&["ip", "addr", "add", a_cidr, "dev", a_if]);
    b.exec(&["ip", "addr", "add", b_cidr, "dev", b_if]);
    a.exec(&["ip", "link", "set", a_if, "up"]);
    b.exec(&["ip", "link", "set", b_if, "up"]);
}

fn next_subnets() -> (u32, u32) {
    let n = NEXT_SUBNET.fetch_add(2, Ordering::Relaxed) + (std::process::id() % 50) * 4;
    (n, n + 1)
}

/// client ── router ── server: the router forwards between two subnets.
/// `masquerade()` makes it SNAT the client's traffic to its own address.
pub struct Router {
    pub client: Netns,
    pub router: Netns,
    pub server: Netns,
    pub client_addr: String,
    pub server_addr: String,
    /// The router's address on the server side (the SNAT source).
    pub router_outside: String,
    pub outside_if: String,
}

impl Router {
    pub fn new(tag: &str) -> Router {
        remove_stale();
        let (n1, n2) = next_subnets();
        let client = Netns::new(&format!("{tag}-c"));
        let router = Netns::new(&format!("{tag}-r"));
        let server = Netns::new(&format!("{tag}-s"));
        let (ci, ri, ro, so) = (
            format!("198.18.{n1}.2"),
            format!("198.18.{n1}.1"),
            format!("198.18.{n2}.1"),
            format!("198.18.{n2}.2"),
        );
        let outside_if = format!("nt{n2}o");
        link(
            &client,
            &format!("nt{n1}c"),
            &format!("{ci}/24"),
            &router,
            &format!("nt{n1}i"),
            &format!("{ri}/24"),
        );
        link(
            &router,
            &outside_if,
            &format!("{ro}/24"),
            &server,
            &format!("nt{n2}s"),
            &format!("{so}/24"),
        );
        router.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        client.exec(&["ip", "route", "add", "default", "via", &ri]);
        server.exec(&["ip", "route", "add", "default", "via", &ro]);
        Router {
            client,
            router,
            server,
            client_addr: ci,
            server_addr: so,
            router_outside: ro,
            outside_if,
        }
    }

    /// The router drops ICMP from the client in FORWARD, with `iptables`
    /// (nft flavour) or `iptables-legacy`.
    pub fn drop_client_icmp(&self, iptables: &str) {
        drop_icmp_from(&self.router, iptables, &self.client_addr);
    }

    /// SNAT the client's traffic leaving towards the server.
    pub fn masquerade(&self) {
        self.router.exec(&[
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            &self.outside_if,
            "-j",
            "MASQUERADE",
        ]);
    }
}

/// `ns` drops forwarded ICMP from `src` (iptables FORWARD chain).
pub fn drop_icmp_from(ns: &Netns, iptables: &str, src: &str) {
    ns.exec(&[
        iptables, "-A", "FORWARD", "-p", "icmp", "-s", src, "-j", "DROP",
    ]);
}

/// Two hosts on a bridge in a third namespace: `a` ── br0 ── `b`.
pub struct Bridge {
    pub a: Netns,
    pub b: Netns,
    /// The namespace holding br0 and its ports p1, p2.
    pub switch: Netns,
    pub a_addr: String,
    pub b_addr: String,
}

impl Bridge {
    pub fn new(tag: &str) -> Bridge {
        remove_stale();
        let (n, _) = next_subnets();
        let a = Netns::new(&format!("{tag}-a"));
        let b = Netns::new(&format!("{tag}-b"));
        let switch = Netns::new(&format!("{tag}-br"));
        let (a_addr, b_addr) = (format!("198.18.{n}.1"), format!("198.18.{n}.2"));
        switch.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        switch.exec(&["ip", "link", "set", "br0", "up"]);
        for (host, addr, port) in [(&a, &a_addr, "p1"), (&b, &b_addr, "p2")] {
            let inner = format!("nt{n}{port}");
            host.exec(&[
                "ip", "link", "add", &inner, "type", "veth", "peer", "name", port,
            ]);
            host.exec(&["ip", "link", "set", port, "netns", &switch.name]);
            host.exec(&["ip", "addr", "add", &format!("{addr}/24"), "dev", &inner]);
            host.exec(&["ip", "link", "set", &inner, "up"]);
            switch.exec(&["ip", "link", "set", port, "master", "br0"]);
            switch.exec(&["ip", "link", "set", port, "up"]);
        }
        Bridge {
            a,
            b,
            switch,
            a_addr,
            b_addr,
        }
    }
}

/// Pings `dst` from `ns`: `count` echo requests, one second apart at most,
/// bounded by a deadline. Returns whether any reply came back.
pub fn ping(ns: &Netns, dst: &str, count: u32) -> bool {
    let count = count.to_string();
    let deadline = "10".to_string();
    let mut args = vec!["netns", "exec", &ns.name, "ping", "-n", "-q", "-i", "0.2"];
    args.extend_from_slice(&["-c", &count, "-w", &deadline, dst]);
    run("ip", &args).status.success()
}

/// One TCP connection attempt from `ns` to `dst:port`, bounded to 5 s.
/// Returns whether it connected.
pub fn tcp_connect(ns: &Netns, dst: &str, port: u16) -> bool {
    let script = format!(
        "import socket,sys\ns=socket.socket()\ns.settimeout(5)\ntry:\n s.connect(('{dst}',{port}))\nexcept OSError:\n sys.exit(1)"
    );
    let args = ["netns", "exec", &ns.name, "python3", "-c", &script];
    run("ip", &args).status.success()
}

/// One blocking `send` of `bytes` over loopback TCP in `ns`, to `port`,
/// that returns on another CPU than it entered on: the sending thread is
/// pinned to the first CPU, blocks in the kernel for want of buffer space
/// (the receiver reads nothing yet), is moved to the second CPU, and only
/// then is the data read. Returns the script's report, `sent N` on success.
pub fn send_across_cpus(ns: &Netns, port: u16, bytes: usize) -> String {
    let script = format!(
        "import os,socket,threading,time\n\
         cpus=sorted(os.sched_getaffinity(0))\n\
         assert len(cpus)>=2,'needs two CPUs'\n\
         srv=socket.socket(); srv.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,4096)\n\
         srv.bind(('127.0.0.1',{port})); srv.listen(1)\n\
         cli=socket.socket(); cli.setsockopt(socket.SOL_SOCKET,socket.SO_SNDBUF,4096)\n\
         cli.connect(('127.0.0.1',{port})); conn,_=srv.accept()\n\
         tid=[]; sent=[]\n\
         def send():\n\
         \x20tid.append(threading.get_native_id()); os.sched_setaffinity(0,{{cpus[0]}})\n\
         \x20sent.append(cli.send(b'x'*{bytes}))\n\
         t=threading.Thread(target=send); t.start(); time.sleep(1)\n\
         os.sched_setaffinity(tid[0],{{cpus[1]}})\n\
         got=0\n\
         while got<{bytes}: got+=len(conn.recv(1<<20))\n\
         t.join(); print('sent',sent[0])\n"
    );
    let out = run("ip", &["netns", "exec", &ns.name, "python3", "-c", &script]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A packet socket (what tcpdump opens) listening on an interface inside a
/// namespace, so that the kernel clones each packet for it. Closed on drop.
pub struct PacketTap {
    child: std::process::Child,
}

impl PacketTap {
    pub fn open(ns: &Netns, ifname: &str) -> PacketTap {
        let script = format!(
            "import socket,sys\ns=socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))\n\
             s.bind(('{ifname}', 0))\nprint('ready', flush=True)\nwhile True: s.recv(65535)"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the packet socket");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("packet socket ready");
        assert_eq!(line.trim(), "ready", "packet socket did not open");
        PacketTap { child }
    }
}

impl Drop for PacketTap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Delays every packet `ifname` in `ns` sends by `ms` (netem).
pub fn netem_delay(ns: &Netns, ifname: &str, ms: u32) {
    let delay = format!("{ms}ms");
    ns.exec(&[
        "tc", "qdisc", "add", "dev", ifname, "root", "netem", "delay", &delay,
    ]);
}

/// Sends `count` UDP datagrams from `ns` (port 4000) to `dst:port`, where
/// a socket in `receiver` holds them unread for `hold_ms` after the first
/// arrives (it peeks at it), then closes: the close drops them.
pub fn udp_left_in_queue(
    ns: &Netns,
    receiver: &Netns,
    dst: &str,
    port: u16,
    count: u32,
    hold_ms: u32,
) {
    let server = format!(
        "import socket,time\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('{dst}',{port}))\n\
         s.settimeout(10); s.recv(100, socket.MSG_PEEK)\n\
         time.sleep({hold_ms}/1000)\n\
         s.close()\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &receiver.name, "python3", "-c", &server])
        .spawn()
        .expect("spawn the UDP receiver");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let client = format!(
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('', 4000))\n\
         for _ in range({count}): s.sendto(b'nettrace-test', ('{dst}', {port}))"
    );
    ns.exec(&["python3", "-c", &client]);
    let _ = child.wait();
}

/// Drops `percent` of the packets `ifname` in `ns` sends (netem).
pub fn netem_loss(ns: &Netns, ifname: &str, percent: u32) {
    let loss = format!("{percent}%");
    ns.exec(&[
        "tc", "qdisc", "add", "dev", ifname, "root", "netem", "loss", &loss,
    ]);
}

/// A TCP stream from `client` to a server in `server` on `dst:port`:
/// `chunks` sends of `bytes` each, `pause_ms` apart, then a close. The
/// server reads to the end and closes. Returns the client's report,
/// `sent N` on success.
pub fn tcp_stream(
    client: &Netns,
    server: &Netns,
    dst: &str,
    port: u16,
    chunks: u32,
    bytes: usize,
    pause_ms: u32,
) -> String {
    let serve = format!(
        "import socket\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{dst}',{port})); s.listen(1); s.settimeout(30)\n\
         c,_=s.accept(); c.settimeout(30)\n\
         while c.recv(1<<16): pass\n\
         c.close(); s.close()\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &server.name, "python3", "-c", &serve])
        .spawn()
        .expect("spawn the TCP server");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let send = format!(
        "import socket,time\n\
         c=socket.create_connection(('{dst}',{port}),timeout=30)\n\
         n=0\n\
         for _ in range({chunks}):\n\
         \x20c.sendall(b'x'*{bytes}); n+={bytes}; time.sleep({pause_ms}/1000)\n\
         c.close(); print('sent',n)\n"
    );
    let out = run(
        "ip",
        &["netns", "exec", &client.name, "python3", "-c", &send],
    );
    let _ = child.wait();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
