//! `--metrics ADDR:PORT`: counters of a monitor run in the Prometheus text
//! format, served over HTTP (tiny_http) from a thread of its own. The
//! label sets are bounded (rules are few; drop locations are capped), so
//! memory stays flat on long runs. Metric names: docs/monitor.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Distinct (reason, location) pairs kept; later ones count as `other`.
pub const MAX_DROP_SERIES: usize = 1024;

#[derive(Debug, Default)]
pub struct Metrics {
    /// (rule, level) -> findings reported.
    pub findings: BTreeMap<(String, &'static str), u64>,
    /// rule -> findings suppressed by the rate limits.
    pub suppressed: BTreeMap<String, u64>,
    /// (reason, location symbol) -> drops seen.
    pub drops: BTreeMap<(String, String), u64>,
    pub events: u64,
    pub lost: u64,
    /// Events the kernel did not send because of `--rate-kernel`.
    pub kernel_limited: u64,
    pub probes_attached: u64,
}

pub type Shared = Arc<Mutex<Metrics>>;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn count_drop(&mut self, reason: String, location: String) {
        let key = if self.drops.len() >= MAX_DROP_SERIES
            && !self.drops.contains_key(&(reason.clone(), location.clone()))
        {
            (reason, "other".to_string())
        } else {
            (reason, location)
        };
        *self.drops.entry(key).or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        head(
            &mut s,
            "nettrace_findings_total",
            "Findings reported, by rule and level.",
            "counter",
        );
        for ((rule, level), v) in &self.findings {
            let rule = label(rule);
            let _ = writeln!(
                s,
                "nettrace_findings_total{{rule=\"{rule}\",level=\"{level}\"}} {v}"
            );
        }
        head(
            &mut s,
            "nettrace_findings_suppressed_total",
            "Findings not reported because of the rate limits, by rule.",
            "counter",
        );
        for (rule, v) in &self.suppressed {
            let rule = label(rule);
            let _ = writeln!(
                s,
                "nettrace_findings_suppressed_total{{rule=\"{rule}\"}} {v}"
            );
        }
        head(
            &mut s,
            "nettrace_drops_total",
            "Packets dropped, by drop reason and location (function).",
            "counter",
        );
        for ((reason, loc), v) in &self.drops {
            let (reason, loc) = (label(reason), label(loc));
            let _ = writeln!(
                s,
                "nettrace_drops_total{{reason=\"{reason}\",location=\"{loc}\"}} {v}"
            );
        }
        for (name, help, kind, v) in [
            (
                "nettrace_events_total",
                "Events received from the kernel.",
                "counter",
                self.events,
            ),
            (
                "nettrace_events_lost_total",
                "Events lost because the ring buffer was full.",
                "counter",
                self.lost,
            ),
            (
                "nettrace_events_rate_limited_total",
                "Events the kernel did not send because of --rate-kernel.",
                "counter",
                self.kernel_limited,
            ),
            (
                "nettrace_probes_attached",
                "Probes attached.",
                "gauge",
                self.probes_attached,
            ),
        ] {
            head(&mut s, name, help, kind);
            let _ = writeln!(s, "{name} {v}");
        }
        s
    }
}

fn head(s: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Why `--metrics` cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeError {
    #[error("--metrics: cannot listen on {addr} ({reason})")]
    Listen { addr: String, reason: String },
    #[error("--metrics: {0} is not an IP address")]
    NotIp(String),
    #[error("--metrics: cannot start the server thread ({0})")]
    Thread(String),
}

/// Serves `GET /metrics` on `addr` until the process ends. Anything else
/// gets 404 (or 405 for other methods); requests tiny_http cannot parse
/// get its 400. Err: the address cannot be bound.
pub fn serve(addr: &str, metrics: Shared) -> Result<std::net::SocketAddr, ServeError> {
    let server = tiny_http::Server::http(addr).map_err(|e| ServeError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| ServeError::NotIp(addr.to_string()))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let (code, body) = match (req.method(), req.url()) {
                    (tiny_http::Method::Get, "/metrics") => {
                        (200, metrics.lock().map(|m| m.render()).unwrap_or_default())
                    }
                    (tiny_http::Method::Get, _) => (404, "not found: try /metrics\n".into()),
                    _ => (405, "only GET /metrics\n".into()),
                };
                let header = tiny_http::Header::from_bytes(
                    &b"Content-Type"[..],
                    &b"text/plain; version=0.0.4; charset=utf-8"[..],
                )
                .expect("a valid header");
                let resp = tiny_http::Response::from_string(body)
                    .with_status_code(code)
                    .with_header(header);
                let _ = req.respond(resp);
            }
        })
        .map_err(|e| ServeError::Thread(e.to_string()))?;
    Ok(bound)
}
