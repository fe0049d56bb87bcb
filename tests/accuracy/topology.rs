//! The namespaces a case runs in, dual-stack, on subnets of its own
//! (198.18.0.0/15 and fd00:4e54::/32, never routed), and the variables its
//! commands use (`{b}`, `{b6}`, `{s_if}`...). Everything lives inside the
//! namespaces, so deleting them, on drop and also when a case panics,
//! removes links, routes, qdiscs and firewall rules with them.
//!
//! A topology is built with one `ip -batch` in the root namespace (the
//! namespaces, and the veth pairs created straight into them) and one per
//! namespace (addresses, routes, links up): in the emulated guests each
//! process start costs a noticeable fraction of a second.

use super::cases::Topology;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::process::{Command, Output, Stdio};

const PREFIX: &str = "nta";

pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", args[0]))
}

/// Runs `ip [-n NS] -batch -` on `lines`; panics with its error.
fn ip_batch(ns: Option<&str>, lines: &[String]) {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ip -batch");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.join("\n").as_bytes())
        .expect("feed ip -batch");
    let out = child.wait_with_output().expect("ip -batch");
    assert!(
        out.status.success(),
        "ip{} -batch failed: {}\n{}",
        ns.map(|n| format!(" -n {n}")).unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr),
        lines.join("\n")
    );
}

/// Deletes namespaces of matrix runs whose process is gone.
pub fn remove_stale() {
    let list = String::from_utf8_lossy(&run(&["ip", "netns", "list"]).stdout).into_owned();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(&format!("{PREFIX}-")) else {
            continue;
        };
        if let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = run(&["ip", "netns", "del", name]);
            }
        }
    }
}

pub struct Net {
    /// role -> namespace name.
    pub namespaces: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.values() {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

/// One end of a veth pair: namespace role, interface, IPv4 and IPv6
/// address (none for a bridge port).
struct End<'a> {
    role: &'a str,
    ifname: String,
    addrs: Option<(String, String)>,
}

/// What building a topology does, gathered before anything runs, in the
/// order it runs: the namespaces; their sysctls (before any interface
/// exists, so that new interfaces take the defaults); the veth pairs; then
/// in each namespace, in the topology's order, addresses, links up and
/// routes. Each end is configured before its link comes up, so nothing
/// arrives on an interface that is not ready for it.
#[derive(Default)]
struct Plan {
    /// `ip -batch` lines in the root namespace: `netns add`.
    namespaces: Vec<String>,
    /// role -> sysctl settings.
    sysctls: BTreeMap<String, Vec<String>>,
    /// `ip -batch` lines in the root namespace: the veth pairs.
    links: Vec<String>,
    /// role -> `ip -n NS -batch` lines.
    inside: BTreeMap<String, Vec<String>>,
}

impl Net {
    /// Builds the topology for case number `n` (its subnets: 2n and 2n+1).
    pub fn new(topology: Topology, n: u32) -> Net {
        let mut net = Net {
            namespaces: BTreeMap::new(),
            vars: BTreeMap::new(),
        };
        let roles: &[&str] = match topology {
            Topology::Lo => &["a"],
            Topology::Pair => &["a", "b"],
            Topology::Router => &["c", "r", "s"],
            Topology::Bridge => &["a", "b", "br"],
        };
        let mut plan = Plan::default();
        for role in roles {
            let name = format!("{PREFIX}-{}-{n}-{role}", std::process::id());
            let _ = run(&["ip", "netns", "del", &name]);
            plan.namespaces.push(format!("netns add {name}"));
            net.namespaces.insert(role.to_string(), name);
            plan.inside
                .entry(role.to_string())
                .or_default()
                .push("link set lo up".into());
            // IPv6 addresses usable at once (no duplicate address
            // detection, link-local addresses included).
            plan.sysctls.entry(role.to_string()).or_default().extend([
                "net.ipv6.conf.all.accept_dad=0".to_string(),
                "net.ipv6.conf.default.accept_dad=0".to_string(),
            ]);
        }
        let (n1, n2) = (2 * n, 2 * n + 1);
        let v4 = |subnet: u32, host: u32| format!("198.18.{subnet}.{host}");
        let v6 = |subnet: u32, host: u32| format!("fd00:4e54:{subnet:x}::{host:x}");
        let end = |role: &'static str, ifname: String, subnet: u32, host: u32| End {
            role,
            ifname,
            addrs: Some((v4(subnet, host), v6(subnet, host))),
        };
        match topology {
            Topology::Lo => {
                net.var("a", "127.0.0.1");
                net.var("a6", "::1");
            }
            Topology::Pair => {
                let (a_if, b_if) = (format!("nt{n}a"), format!("nt{n}b"));
                net.link(
                    &mut plan,
                    end("a", a_if.clone(), n1, 1),
                    end("b", b_if.clone(), n1, 2),
                );
                for (k, v) in [
                    ("a", v4(n1, 1)),
                    ("b", v4(n1, 2)),
                    ("a6", v6(n1, 1)),
                    ("b6", v6(n1, 2)),
                    ("a_if", a_if),
                    ("b_if", b_if),
                    // On-link addresses nobody answers for.
                    ("ghost", v4(n1, 99)),
                    ("ghost6", v6(n1, 0x99)),
                ] {
                    net.var(k, &v);
                }
            }
            Topology::Router => {
                let ifs = [
                    format!("nt{n}c"),
                    format!("nt{n}ri"),
                    format!("nt{n}ro"),
                    format!("nt{n}s"),
                ];
                net.link(
                    &mut plan,
                    end("c", ifs[0].clone(), n1, 2),
                    end("r", ifs[1].clone(), n1, 1),
                );
                net.link(
                    &mut plan,
                    end("r", ifs[2].clone(), n2, 1),
                    end("s", ifs[3].clone(), n2, 2),
                );
                plan.sysctls.entry("r".into()).or_default().extend([
                    "net.ipv4.ip_forward=1".to_string(),
                    "net.ipv6.conf.all.forwarding=1".to_string(),
                ]);
                for (role, gw4, gw6) in [("c", v4(n1, 1), v6(n1, 1)), ("s", v4(n2, 1), v6(n2, 1))] {
                    let lines = plan.inside.entry(role.into()).or_default();
                    lines.push(format!("route add default via {gw4}"));
                    lines.push(format!("route add ::/0 via {gw6}"));
                }
                for (k, v) in [
                    ("c", v4(n1, 2)),
                    ("r_in", v4(n1, 1)),
                    ("r_out", v4(n2, 1)),
                    ("s", v4(n2, 2)),
                    ("c6", v6(n1, 2)),
                    ("r_in6", v6(n1, 1)),
                    ("r_out6", v6(n2, 1)),
                    ("s6", v6(n2, 2)),
                    ("c_if", ifs[0].clone()),
                    ("r_in_if", ifs[1].clone()),
                    ("r_out_if", ifs[2].clone()),
                    ("s_if", ifs[3].clone()),
                    // An address beyond the server, reachable only
                    // through routes a case adds.
                    ("far", format!("198.19.{n}.1")),
                    ("far6", format!("fd00:4e55:{n:x}::1")),
                ] {
                    net.var(k, &v);
                }
            }
            Topology::Bridge => {
                plan.inside.entry("br".into()).or_default().extend([
                    "link add br0 type bridge".to_string(),
                    "link set br0 up".to_string(),
                ]);
                for (role, host, port) in [("a", 1, "p1"), ("b", 2, "p2")] {
                    let inner = format!("nt{n}{role}");
                    net.link(
                        &mut plan,
                        end(role, inner.clone(), n1, host),
                        End {
                            role: "br",
                            ifname: port.to_string(),
                            addrs: None,
                        },
                    );
                    plan.inside
                        .entry("br".into())
                        .or_default()
                        .push(format!("link set {port} master br0"));
                    net.var(role, &v4(n1, host));
                    net.var(&format!("{role}6"), &v6(n1, host));
                    net.var(&format!("{role}_if"), &inner);
                }
            }
        }
        ip_batch(None, &plan.namespaces);
        for (role, settings) in &plan.sysctls {
            let mut args = vec![
                "ip",
                "netns",
                "exec",
                &net.namespaces[role],
                "sysctl",
                "-qw",
            ];
            args.extend(settings.iter().map(String::as_str));
            let out = run(&args);
            assert!(
                out.status.success(),
                "sysctl in {role} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !plan.links.is_empty() {
            ip_batch(None, &plan.links);
        }
        for role in roles {
            if let Some(lines) = plan.inside.get(*role) {
                ip_batch(Some(&net.namespaces[*role]), lines);
            }
        }
        net.wait_until_up();
        for (role, ns) in net.namespaces.clone() {
            let inode = std::fs::metadata(format!("/run/netns/{ns}"))
                .map(|m| m.ino().to_string())
                .unwrap_or_default();
            net.var(&format!("inode_{role}"), &inode);
            net.var(&format!("ns_{role}"), &ns);
        }
        net
    }

    /// Waits (up to 5 s) until every interface is operationally up: the
    /// kernel applies a carrier change later (link watch), and until then
    /// IPv6 has no routes on the link, so its first packets would be
    /// dropped for want of one.
    fn wait_until_up(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for ns in self.namespaces.values() {
            loop {
                let out = run(&["ip", "-n", ns, "-br", "link", "show"]);
                let text = String::from_utf8_lossy(&out.stdout);
                let waiting = text
                    .lines()
                    .filter(|l| !l.starts_with("lo "))
                    .any(|l| l.split_whitespace().nth(1) != Some("UP"));
                if !waiting || std::time::Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }

    pub fn var(&mut self, k: &str, v: &str) {
        self.vars.insert(k.to_string(), v.to_string());
    }

    /// Plans a veth pair from `x` to `y`, each end created in its
    /// namespace with a fixed MAC address (`{mac_X_if}` for static
    /// neighbour entries), addressed and up.
    fn link(&mut self, plan: &mut Plan, x: End<'_>, y: End<'_>) {
        let mac = |e: &End<'_>| {
            let h = e
                .ifname
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
            format!(
                "02:4e:{:02x}:{:02x}:{:02x}:{:02x}",
                h >> 24,
                (h >> 16) & 0xff,
                (h >> 8) & 0xff,
                h & 0xff
            )
        };
        plan.links.push(format!(
            "link add {} address {} netns {} type veth peer name {} address {} netns {}",
            x.ifname,
            mac(&x),
            self.namespaces[x.role],
            y.ifname,
            mac(&y),
            self.namespaces[y.role]
        ));
        for e in [&x, &y] {
            let lines = plan.inside.entry(e.role.to_string()).or_default();
            if let Some((a4, a6)) = &e.addrs {
                lines.push(format!("addr add {a4}/24 dev {}", e.ifname));
                lines.push(format!("addr add {a6}/64 dev {} nodad", e.ifname));
            }
            lines.push(format!("link set {} up", e.ifname));
            // Keyed by interface: `expand` finds it through `{X_if}`.
            self.vars.insert(format!("mac:{}", e.ifname), mac(e));
        }
    }

    /// `{name}` replaced by the topology's variables; `{mac_X_if}` is the
    /// MAC address of interface `{X_if}`.
    pub fn expand(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in &self.vars {
            if k.starts_with("mac:") {
                continue;
            }
            out = out.replace(&format!("{{{k}}}"), v);
            if k.ends_with("_if") {
                if let Some(mac) = self.vars.get(&format!("mac:{v}")) {
                    out = out.replace(&format!("{{mac_{k}}}"), mac);
                }
            }
        }
        out
    }

    /// The command line that runs `cmd` in namespace `role` (`host`: the
    /// namespace nettrace runs in).
    pub fn command(&self, role: &str, cmd: &str) -> Command {
        let cmd = self.expand(cmd);
        let mut c = if role == "host" {
            Command::new("sh")
        } else {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.namespaces[role], "sh"]);
            c
        };
        c.args(["-c", &cmd]);
        c
    }

    /// Runs a setup command; panics with its output when it fails.
    pub fn exec(&self, role: &str, cmd: &str) {
        let out = self
            .command(role, cmd)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{cmd}`: {e}"));
        assert!(
            out.status.success(),
            "`{}` in {role} failed: {}{}",
            self.expand(cmd),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
