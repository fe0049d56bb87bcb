//! The operating-system side of reading a network namespace's firewall:
//! finding the namespace by its inode, running the firewall's own tools
//! inside it, and a cheap fingerprint of its rulesets that changes when a
//! rule does — nftables' generation id (which iptables-nft bumps too) and
//! a hash of each legacy iptables and ebtables table without its
//! counters. Nothing here changes the firewall or loads a module: legacy
//! iptables tables are asked for only when `ip_tables_names` lists them,
//! ebtables tables only when a drop showed them in the namespace (asking
//! for another can create it), nftables only when its module is loaded.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A network namespace, held open.
pub struct Netns {
    pub inode: u64,
    /// None: the namespace nettrace runs in.
    file: Option<File>,
    sockets: Sockets,
}

impl Netns {
    /// Finds the namespace with this inode: nettrace's own, a named one
    /// (`ip netns`), or that of any process.
    pub fn open(inode: u64) -> io::Result<Netns> {
        let own = std::fs::metadata("/proc/self/ns/net")?.ino();
        if own == inode {
            return Ok(Netns {
                inode,
                file: None,
                sockets: Sockets::default(),
            });
        }
        let named = std::fs::read_dir("/run/netns")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path());
        let procs = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .map(|e| e.path().join("ns/net"));
        for path in named.chain(procs) {
            if std::fs::metadata(&path).is_ok_and(|m| m.ino() == inode) {
                if let Ok(file) = File::open(&path) {
                    return Ok(Netns {
                        inode,
                        file: Some(file),
                        sockets: Sockets::default(),
                    });
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("network namespace {inode} is gone (no process or /run/netns entry holds it)"),
        ))
    }

    /// Runs `program args` inside the namespace; its stdout, or why not.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stderr(Stdio::piped());
        if let Some(f) = &self.file {
            let fd = f.as_raw_fd();
            // SAFETY: setns is async-signal-safe, and the child only calls
            // it on a descriptor it inherited open.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let out = cmd.output().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("{program} is not installed"),
            _ => format!("{program}: {e}"),
        })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "{program} {}: {}",
                args.join(" "),
                err.lines().next().unwrap_or("failed")
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Changes when any rule of the namespace does; also says which
    /// firewalls have rules here. `ebtables`: the legacy ebtables tables
    /// known to exist here.
    pub fn fingerprint(&mut self, ebtables: &[String]) -> io::Result<Fingerprint> {
        let sockets = &mut self.sockets;
        let file = self.file.as_ref();
        let mut read = || {
            sockets.open();
            sockets.read(ebtables)
        };
        match file {
            None => Ok(read()),
            Some(target) => inside(target, read),
        }
    }
}

/// Runs `f` inside the namespace of `target`, on a thread of its own that
/// ends with it: nettrace's own threads never leave their namespace
/// (sockets made in `f` stay in the target one).
fn inside<T: Send>(target: &File, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let fd = target.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a descriptor the caller holds open; it moves
            // only this thread.
            if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace reader failed")))
    })
}

/// What a namespace's rulesets are, as far as a fingerprint tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: u64,
    /// Legacy iptables has tables (IPv4, IPv6).
    pub legacy: (bool, bool),
    /// nf_tables is loaded.
    pub nft: bool,
    /// The legacy ebtables tables that answered.
    pub ebtables: Vec<String>,
}

fn legacy_tables(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

fn raw_socket(family: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2); the descriptor is owned from here on.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether a module is in the kernel already, so that using it loads
/// nothing: loaded, built in, or a kernel without loadable modules.
fn module_present(name: &str) -> bool {
    if !Path::new("/proc/modules").exists() || Path::new("/sys/module").join(name).exists() {
        return true;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let builtin = Path::new("/lib/modules")
        .join(release.trim())
        .join("modules.builtin");
    std::fs::read_to_string(builtin)
        .is_ok_and(|b| b.lines().any(|l| l.ends_with(&format!("/{name}.ko"))))
}

/// The legacy ebtables tables whose modules are loaded (`ebtable_filter`
/// is `filter`): before 5.11 the events cannot name the table, and those
/// kernels create every loaded table in every namespace.
pub fn ebtables_modules() -> Vec<String> {
    std::fs::read_to_string("/proc/modules")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.strip_prefix("ebtable_"))
        .map(str::to_string)
        .collect()
}

/// A netfilter netlink socket, if nf_tables is loaded (asking without it
/// would load it).
fn nft_socket() -> io::Result<OwnedFd> {
    if !module_present("nf_tables") {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "nf_tables is not loaded",
        ));
    }
    // SAFETY: socket(2); the descriptor is owned from here on.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: setsockopt with a timeval of the right size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
    }
    Ok(fd)
}

/// The sockets a namespace's fingerprint is read through, made inside it.
#[derive(Default)]
struct Sockets {
    nft: Option<OwnedFd>,
    ip4: Option<OwnedFd>,
    ip6: Option<OwnedFd>,
}

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETGEN: u16 = 16;
const NFT_MSG_NEWGEN: u16 = 15;
const NFTA_GEN_ID: u16 = 1;
const IPT_SO_GET_INFO: i32 = 64;
const IPT_SO_GET_ENTRIES: i32 = 65;
/// `struct ipt_getinfo`: name[32], valid_hooks, hook_entry[5], underflow[5], num_entries, size.
const GETINFO_LEN: usize = 32 + 4 + 20 + 20 + 4 + 4;
/// `struct ipt_get_entries`: name[32], size, then the entries (8-aligned).
const GET_ENTRIES_HEAD: usize = 40;
const EBT_SO_GET_INFO: i32 = 128;
const EBT_SO_GET_ENTRIES: i32 = 129;

/// `struct ebt_replace`, as EBT_SO_GET_INFO fills it and EBT_SO_GET_ENTRIES
/// reads where to copy the entries.
#[repr(C)]
struct EbtReplace {
    name: [u8; 32],
    valid_hooks: u32,
    nentries: u32,
    entries_size: u32,
    hook_entry: [*mut libc::c_void; 6],
    num_counters: u32,
    counters: *mut libc::c_void,
    entries: *mut libc::c_void,
}

/// getsockopt(2) into `buf`, telling the kernel `len` bytes; whether it
/// answered.
///
/// # Safety
/// The kernel may write up to `len` bytes at `buf` (for EBT_SO_GET_ENTRIES
/// also where the struct there points).
unsafe fn get_sockopt<T>(fd: &OwnedFd, level: i32, name: i32, buf: *mut T, len: usize) -> bool {
    let mut len = len as u32;
    libc::getsockopt(fd.as_raw_fd(), level, name, buf.cast(), &mut len) == 0
}

/// A legacy ebtables table's rules, hashed (its counters are kept apart
/// from the entries, so the blob changes only with the rules). None: no
/// such table.
fn ebtables_hash(fd: &OwnedFd, name: &str) -> Option<u64> {
    let mut info = EbtReplace {
        name: [0; 32],
        valid_hooks: 0,
        nentries: 0,
        entries_size: 0,
        hook_entry: [std::ptr::null_mut(); 6],
        num_counters: 0,
        counters: std::ptr::null_mut(),
        entries: std::ptr::null_mut(),
    };
    let n = name.len().min(31);
    info.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    let info_ptr: *mut EbtReplace = &mut info;
    let size = std::mem::size_of::<EbtReplace>();
    // SAFETY: the struct is `size` bytes.
    if !unsafe { get_sockopt(fd, libc::SOL_IP, EBT_SO_GET_INFO, info_ptr, size) } {
        return None;
    }
    let mut entries = vec![0u8; info.entries_size as usize];
    info.entries = entries.as_mut_ptr().cast();
    info.num_counters = 0;
    let info_ptr: *mut EbtReplace = &mut info;
    // SAFETY: the kernel reads the struct, and writes entries_size bytes
    // to `entries`, a buffer of that size that outlives the call; the
    // length it checks is the struct's and the entries' together.
    if !unsafe {
        get_sockopt(
            fd,
            libc::SOL_IP,
            EBT_SO_GET_ENTRIES,
            info_ptr,
            size + entries.len(),
        )
    } {
        return None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (info.valid_hooks, info.nentries).hash(&mut h);
    entries.hash(&mut h);
    Some(h.finish())
}

impl Sockets {
    /// Opens what is missing (nf_tables may be loaded since).
    fn open(&mut self) {
        if self.nft.is_none() {
            self.nft = nft_socket().ok();
        }
        if self.ip4.is_none() {
            self.ip4 = raw_socket(libc::AF_INET).ok();
        }
        if self.ip6.is_none() {
            self.ip6 = raw_socket(libc::AF_INET6).ok();
        }
    }

    /// nftables' ruleset generation; None without nf_tables.
    fn nft_generation(&self) -> Option<u32> {
        let fd = self.nft.as_ref()?.as_raw_fd();
        let mut req = [0u8; 20];
        req[0..4].copy_from_slice(&20u32.to_ne_bytes());
        req[4..6].copy_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN).to_ne_bytes());
        req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        // SAFETY: send and recv on our socket with buffers of the lengths given.
        let sent = unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) };
        if sent < 0 {
            return None;
        }
        let mut buf = [0u8; 512];
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        let n = usize::try_from(n).ok()?;
        let msg = &buf[..n];
        let kind = u16::from_ne_bytes([*msg.get(4)?, *msg.get(5)?]);
        if kind != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN {
            return None;
        }
        let mut at = 20;
        while at + 4 <= msg.len() {
            let len = usize::from(u16::from_ne_bytes([msg[at], msg[at + 1]]));
            let kind = u16::from_ne_bytes([msg[at + 2], msg[at + 3]]) & 0x3fff;
            if len < 4 {
                break;
            }
            if kind == NFTA_GEN_ID && at + 8 <= msg.len() {
                return Some(u32::from_be_bytes([
                    msg[at + 4],
                    msg[at + 5],
                    msg[at + 6],
                    msg[at + 7],
                ]));
            }
            at += (len + 3) & !3;
        }
        None
    }

    /// A legacy table's rules without their counters, hashed.
    fn legacy_hash(
        fd: &OwnedFd,
        level: i32,
        name: &str,
        entry_layout: (usize, usize),
    ) -> Option<u64> {
        let mut info = [0u8; GETINFO_LEN];
        info[..name.len().min(31)].copy_from_slice(&name.as_bytes()[..name.len().min(31)]);
        // SAFETY: the buffer is GETINFO_LEN bytes.
        if !unsafe { get_sockopt(fd, level, IPT_SO_GET_INFO, info.as_mut_ptr(), GETINFO_LEN) } {
            return None;
        }
        let size = u32::from_ne_bytes(info[GETINFO_LEN - 4..].try_into().ok()?) as usize;
        let mut buf = vec![0u8; GET_ENTRIES_HEAD + size];
        buf[..name.len().min(31)].copy_from_slice(&name.as_bytes()[..name.len().min(31)]);
        buf[32..36].copy_from_slice(&(size as u32).to_ne_bytes());
        // SAFETY: the buffer is buf.len() bytes.
        if !unsafe { get_sockopt(fd, level, IPT_SO_GET_ENTRIES, buf.as_mut_ptr(), buf.len()) } {
            return None;
        }
        // Zero each entry's counters (they change with every packet).
        let (next_at, counters_at) = entry_layout;
        let entries = &mut buf[GET_ENTRIES_HEAD..];
        let mut at = 0;
        while at + counters_at + 16 <= entries.len() {
            let next = usize::from(u16::from_ne_bytes([
                entries[at + next_at],
                entries[at + next_at + 1],
            ]));
            entries[at + counters_at..at + counters_at + 16].fill(0);
            if next == 0 {
                break;
            }
            at += next;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        info.hash(&mut h);
        buf.hash(&mut h);
        Some(h.finish())
    }

    /// Read inside the namespace: the legacy table names are those of the
    /// calling thread's namespace.
    fn read(&self, ebtables: &[String]) -> Fingerprint {
        let legacy4 = legacy_tables(Path::new("/proc/thread-self/net/ip_tables_names"));
        let legacy6 = legacy_tables(Path::new("/proc/thread-self/net/ip6_tables_names"));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.nft_generation().hash(&mut h);
        // ipt_entry: next_offset at 90, counters at 96; ip6t_entry: 142, 152.
        for (fd, level, names, layout) in [
            (&self.ip4, libc::SOL_IP, &legacy4, (90, 96)),
            (&self.ip6, libc::SOL_IPV6, &legacy6, (142, 152)),
        ] {
            names.hash(&mut h);
            if let Some(fd) = fd {
                for name in names {
                    Self::legacy_hash(fd, level, name, layout).hash(&mut h);
                }
            }
        }
        let mut answered = Vec::new();
        if let Some(fd) = &self.ip4 {
            for name in ebtables {
                if let Some(t) = ebtables_hash(fd, name) {
                    (name, t).hash(&mut h);
                    answered.push(name.clone());
                }
            }
        }
        Fingerprint {
            hash: h.finish(),
            legacy: (!legacy4.is_empty(), !legacy6.is_empty()),
            nft: self.nft.is_some(),
            ebtables: answered,
        }
    }
}
