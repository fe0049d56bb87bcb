//! Turning filter flags into the in-kernel filter (`struct nt_filter`),
//! rejecting bad values with a message that names the flag and the fix.

use crate::abi::{filter_flags as bits, nt_filter};
use crate::vocab::proto::{self, Proto};
use std::net::IpAddr;

/// A filter flag's value refused, with the flag and the fix in its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("unknown protocol `{0}` for --proto; use one of: {names}", names = proto::names_line())]
    Protocol(String),
    #[error("invalid address `{value}` for {flag}: expected an IPv4 (10.0.0.1) or IPv6 (fd00::1) address")]
    Address { flag: String, value: String },
    #[error("invalid port `{value}` for {flag}: expected a number from 0 to 65535")]
    Port { flag: String, value: String },
    #[error("invalid pid `{0}` for --pid: expected a process id")]
    Pid(String),
    #[error("invalid namespace `{0}` for --netns: expected the inode number of a network namespace (see `lsns -t net`)")]
    Netns(String),
    #[error(
        "--netns-current: cannot read /proc/self/ns/net ({0}); give the inode with --netns instead"
    )]
    CurrentNetns(String),
    #[error(
        "invalid length `{0}` for --pkt-len: expected N or MIN-MAX in bytes, e.g. 100 or 64-1500"
    )]
    Length(String),
    #[error("invalid length `{0}` for --pkt-len: the minimum is above the maximum")]
    LengthOrder(String),
    #[error("empty --tcp-flags: {TCP_FLAGS_HELP}")]
    NoTcpFlags,
    #[error("invalid TCP flag `{bad}` in --tcp-flags `{value}`: {TCP_FLAGS_HELP}")]
    TcpFlag { bad: String, value: String },
}

const TCP_FLAGS_HELP: &str =
    "use letters FSRPAUEC (e.g. SA) or names fin,syn,rst,psh,ack,urg,ece,cwr";

pub fn parse_proto(s: &str) -> Result<Proto, FlagError> {
    proto::by_name(s).ok_or_else(|| FlagError::Protocol(s.to_string()))
}

pub fn parse_addr(flag: &str, s: &str) -> Result<IpAddr, FlagError> {
    s.parse().map_err(|_| FlagError::Address {
        flag: flag.to_string(),
        value: s.to_string(),
    })
}

pub fn parse_port(flag: &str, s: &str) -> Result<u16, FlagError> {
    s.parse().map_err(|_| FlagError::Port {
        flag: flag.to_string(),
        value: s.to_string(),
    })
}

pub fn parse_pid(s: &str) -> Result<u32, FlagError> {
    s.parse().map_err(|_| FlagError::Pid(s.to_string()))
}

/// `--netns`: a network namespace inode, as `ls -i /proc/PID/ns/net` or
/// `ip netns identify`/`lsns -t net` show it (`net:[4026531840]` is accepted too).
pub fn parse_netns(s: &str) -> Result<u32, FlagError> {
    let digits = s.trim().trim_start_matches("net:[").trim_end_matches(']');
    digits
        .parse::<u32>()
        .ok()
        .filter(|&n| n != 0)
        .ok_or_else(|| FlagError::Netns(s.to_string()))
}

/// `--pkt-len`: `N` or `MIN-MAX`, bytes of the skb (`skb->len`) at the probe.
pub fn parse_pkt_len(s: &str) -> Result<(u32, u32), FlagError> {
    let num = |t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|_| FlagError::Length(s.to_string()))
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(s)?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(FlagError::LengthOrder(s.to_string()));
    }
    Ok((lo, hi))
}

/// `--tcp-flags`: the flags that must all be set, as letters (`SA`, the
/// original's style) or names (`syn,ack`).
pub fn parse_tcp_flags(s: &str) -> Result<u8, FlagError> {
    if s.trim().is_empty() {
        return Err(FlagError::NoTcpFlags);
    }
    crate::vocab::tcp::parse_tcp_flags(s).map_err(|bad| FlagError::TcpFlag {
        bad: bad.0,
        value: s.to_string(),
    })
}

fn set_addr(dst: &mut [u8; 16], family: &mut u8, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            dst[..4].copy_from_slice(&v4.octets());
            *family = 4;
        }
        IpAddr::V6(v6) => {
            dst.copy_from_slice(&v6.octets());
            *family = 6;
        }
    }
}

/// The raw filter values, as given on the command line.
#[derive(Debug, Default, Clone)]
pub struct FilterArgs<'a> {
    pub saddr: Option<&'a str>,
    pub daddr: Option<&'a str>,
    pub addr: Option<&'a str>,
    pub sport: Option<&'a str>,
    pub dport: Option<&'a str>,
    pub port: Option<&'a str>,
    pub proto: Option<&'a str>,
    pub pid: Option<&'a str>,
    pub netns: Option<&'a str>,
    /// The inode of nettrace's own network namespace, for `--netns-current`.
    pub netns_current: Option<u32>,
    pub pkt_len: Option<&'a str>,
    pub tcp_flags: Option<&'a str>,
    /// `--non-ip`.
    pub non_ip: bool,
}

impl super::args::FilterFlags {
    /// The filter these flags ask for; the first bad value is reported.
    pub fn to_filter(&self) -> Result<nt_filter, FlagError> {
        build_filter(&FilterArgs {
            saddr: self.saddr.as_deref(),
            daddr: self.daddr.as_deref(),
            addr: self.addr.as_deref(),
            sport: self.sport.as_deref(),
            dport: self.dport.as_deref(),
            port: self.port.as_deref(),
            proto: self.proto.as_deref(),
            pid: self.pid.as_deref(),
            netns: self.netns.as_deref(),
            netns_current: if self.netns_current {
                Some(current_netns()?)
            } else {
                None
            },
            pkt_len: self.pkt_len.as_deref(),
            tcp_flags: self.tcp_flags.as_deref(),
            non_ip: self.non_ip,
        })
    }
}

/// Builds the BPF filter; the first bad value is reported.
pub fn build_filter(a: &FilterArgs<'_>) -> Result<nt_filter, FlagError> {
    let mut f = nt_filter::default();
    if let Some(s) = a.saddr {
        set_addr(&mut f.saddr, &mut f.saddr_family, parse_addr("--saddr", s)?);
        f.flags |= bits::SADDR;
    }
    if let Some(s) = a.daddr {
        set_addr(&mut f.daddr, &mut f.daddr_family, parse_addr("--daddr", s)?);
        f.flags |= bits::DADDR;
    }
    if let Some(s) = a.addr {
        set_addr(&mut f.addr, &mut f.addr_family, parse_addr("--addr", s)?);
        f.flags |= bits::ADDR;
    }
    if let Some(s) = a.sport {
        f.sport = parse_port("--sport", s)?;
        f.flags |= bits::SPORT;
    }
    if let Some(s) = a.dport {
        f.dport = parse_port("--dport", s)?;
        f.flags |= bits::DPORT;
    }
    if let Some(s) = a.port {
        f.port = parse_port("--port", s)?;
        f.flags |= bits::PORT;
    }
    if let Some(s) = a.proto {
        match parse_proto(s)? {
            Proto::L3(p) => {
                f.l3_proto = p;
                f.flags |= bits::L3;
            }
            Proto::L4(p) => {
                f.l4_proto = p;
                f.flags |= bits::L4;
            }
        }
    }
    if let Some(s) = a.pid {
        f.pid = parse_pid(s)?;
        f.flags |= bits::PID;
    }
    if let Some(s) = a.netns {
        f.netns = parse_netns(s)?;
        f.flags |= bits::NETNS;
    }
    if let Some(inode) = a.netns_current {
        f.netns = inode;
        f.flags |= bits::NETNS;
    }
    if let Some(s) = a.pkt_len {
        (f.len_min, f.len_max) = parse_pkt_len(s)?;
        f.flags |= bits::LEN;
    }
    if let Some(s) = a.tcp_flags {
        f.tcp_flags = parse_tcp_flags(s)?;
        f.flags |= bits::TCP_FLAGS;
    }
    if a.non_ip {
        f.flags |= bits::NON_IP;
    }
    Ok(f)
}

/// The inode of the network namespace this process runs in.
pub fn current_netns() -> Result<u32, FlagError> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino() as u32)
        .map_err(|e| FlagError::CurrentNetns(e.to_string()))
}
