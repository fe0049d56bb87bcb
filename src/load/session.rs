//! A loaded and attached BPF object, and what user space reads from it
//! while it runs: losses, rate-limited events, drop stacks, the hook
//! functions of a netfilter hook, the kprobe.multi cookie table. Dropping
//! it detaches every link at once.

use super::error::{step, LoadError};
use super::generic;
use super::plan::{Mechanism, SkipReason};
use crate::kernel::kallsyms::Kallsyms;
use libbpf_rs::{Link, MapCore, MapFlags, Object};
use std::collections::HashMap;

/// What happened to each planned probe.
#[derive(Debug, Default, Clone)]
pub struct AttachReport {
    pub attached: Vec<(u32, Mechanism)>,
    pub skipped: Vec<(u32, SkipReason)>,
}

impl AttachReport {
    pub fn count_by_mechanism(&self) -> Vec<(Mechanism, usize)> {
        let mut m: HashMap<Mechanism, usize> = HashMap::new();
        for (_, mech) in &self.attached {
            *m.entry(*mech).or_default() += 1;
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort();
        v
    }
}

/// A loaded and attached BPF object.
pub struct Session {
    // Links first: they detach before the object closes.
    pub(super) links: Vec<Link>,
    pub(super) object: Object,
    pub report: AttachReport,
    /// (symbol, cookie) of each function attached through kprobe.multi.
    pub(super) multi_cookies: Vec<(String, u64)>,
}

impl Session {
    /// Events the ring buffer had no room for, summed over CPUs.
    pub fn lost_events(&self) -> u64 {
        self.percpu_sum("lost", 0)
    }

    /// `--latency`: skbs whose span could not end because their free went
    /// unseen (they came back for another packet), summed over CPUs.
    /// The skbs of non-IP sockets left out (no `--non-ip`), by address
    /// family: (AF_*, count) for each family seen.
    pub fn non_ip_skbs(&self) -> Vec<(u8, u64)> {
        (0..64u8)
            .map(|af| {
                let per_cpu = self.percpu_words("non_ip", af.into());
                (af, per_cpu.iter().filter_map(|w| w.first()).sum())
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn unended_spans(&self) -> u64 {
        self.percpu_sum("unended", 0)
    }

    /// `--latency`: packets whose span is still open (no end seen yet), at
    /// most `limit` counted. Reads the whole `spans` map.
    pub fn open_spans(&self, limit: usize) -> u64 {
        let Some(map) = self.map("spans") else {
            return 0;
        };
        map.keys()
            .take(limit)
            .filter_map(|k| map.lookup(&k, MapFlags::ANY).ok().flatten())
            .filter(|v| {
                let at = std::mem::offset_of!(crate::abi::nt_span_state, ended);
                v.get(at..at + 4).is_some_and(|b| b.iter().all(|x| *x == 0))
            })
            .count() as u64
    }

    /// Events `--rate-kernel` kept the kernel from sending, summed over
    /// CPUs (`struct nt_limiter.suppressed`).
    pub fn rate_limited_events(&self) -> u64 {
        self.percpu_sum("limiter", 16)
    }

    /// Fills the kprobe.multi programs' cookie table (`km_cookies`) with
    /// the attached functions' addresses from kallsyms, the multiplier
    /// last: until it is written the programs ask the kernel, so no
    /// program reads a half-filled table. Returns the table (None without
    /// kprobe.multi functions or visible addresses); `km_misses` then
    /// restarts from zero.
    pub fn fill_multi_cookies(
        &self,
        kallsyms: &Kallsyms,
    ) -> Result<Option<generic::CookieTable>, LoadError> {
        // NETTRACE_COOKIE_SEARCH=1 leaves the table empty, so that every
        // program asks the kernel: the fallback's test and benchmarks.
        if self.multi_cookies.is_empty()
            || !kallsyms.addresses_visible()
            || super::env_switch("NETTRACE_COOKIE_SEARCH")
        {
            return Ok(None);
        }
        let functions: Vec<(u64, u64)> = self
            .multi_cookies
            .iter()
            .filter_map(|(symbol, cookie)| Some((kallsyms.address_of(symbol)?, *cookie)))
            .collect();
        let table = generic::cookie_table(&functions);
        let map = self
            .map("km_cookies")
            .ok_or_else(|| LoadError::Object("no km_cookies map".into()))?;
        let slot_bytes = |ip: u64, cookie: u64| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&ip.to_ne_bytes());
            b[8..].copy_from_slice(&cookie.to_ne_bytes());
            b
        };
        for &(slot, ip, cookie) in &table.slots {
            map.update(&slot.to_ne_bytes(), &slot_bytes(ip, cookie), MapFlags::ANY)
                .map_err(step("filling km_cookies"))?;
        }
        map.update(
            &(generic::KM_SLOTS as u32).to_ne_bytes(),
            &slot_bytes(table.mul, 0),
            MapFlags::ANY,
        )
        .map_err(step("filling km_cookies"))?;
        // The misses counted so far are hits before the table was in.
        let misses = self
            .map("km_misses")
            .ok_or_else(|| LoadError::Object("no km_misses map".into()))?;
        let zeros =
            vec![vec![0u8; 8]; libbpf_rs::num_possible_cpus().map_err(step("counting CPUs"))?];
        misses
            .update_percpu(&0u32.to_ne_bytes(), &zeros, MapFlags::ANY)
            .map_err(step("clearing km_misses"))?;
        Ok(Some(table))
    }

    /// kprobe.multi hits the cookie table could not answer (the kernel's
    /// search did), summed over CPUs; None without kprobe.multi functions.
    pub fn multi_cookie_misses(&self) -> Option<u64> {
        (!self.multi_cookies.is_empty()).then(|| self.percpu_sum("km_misses", 0))
    }

    /// Entry `key` of the per-CPU array `map` as u64 words, one list per
    /// CPU (empty when the map or entry is missing).
    pub fn percpu_words(&self, map: &str, key: u32) -> Vec<Vec<u64>> {
        match self
            .map(map)
            .and_then(|m| m.lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY).ok())
        {
            Some(Some(values)) => values
                .iter()
                .map(|v| {
                    v.chunks_exact(8)
                        .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                        .collect()
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The u64 at `offset` of a one-entry per-CPU array, summed over CPUs.
    fn percpu_sum(&self, map: &str, offset: usize) -> u64 {
        let key = 0u32.to_ne_bytes();
        match self
            .map(map)
            .and_then(|m| m.lookup_percpu(&key, MapFlags::ANY).ok())
        {
            Some(Some(values)) => values
                .iter()
                .filter_map(|v| {
                    v.get(offset..offset + 8)
                        .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                })
                .sum(),
            _ => 0,
        }
    }

    /// The kernel stack recorded under `id`, innermost frame first; the
    /// entry is removed so the map does not fill up on long runs.
    pub fn take_stack(&self, id: i32) -> Vec<u64> {
        if id < 0 {
            return Vec::new();
        }
        let key = (id as u32).to_ne_bytes();
        let Some(stacks) = self.map("stacks") else {
            return Vec::new();
        };
        let frames = match stacks.lookup(&key, MapFlags::ANY) {
            Ok(Some(bytes)) => bytes
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                .take_while(|a| *a != 0)
                .collect(),
            _ => Vec::new(),
        };
        let _ = stacks.delete(&key);
        frames
    }

    /// `--hooks`: the hook functions last seen on family `pf`'s `hook`.
    pub fn hook_functions(&self, pf: u8, hook: u8) -> Vec<u64> {
        let slot = crate::abi::hook_slot(pf, hook).to_ne_bytes();
        let Some(map) = self.map("nf_hooks") else {
            return Vec::new();
        };
        match map.lookup(&slot, MapFlags::ANY) {
            Ok(Some(bytes)) if bytes.len() >= 8 => {
                let count = u32::from_ne_bytes(bytes[..4].try_into().unwrap_or([0; 4])) as usize;
                bytes[8..]
                    .chunks_exact(8)
                    .take(count)
                    .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// One of the object's maps, by name.
    pub fn map(&self, name: &str) -> Option<libbpf_rs::Map<'_>> {
        self.object.maps().find(|m| m.name() == name)
    }

    pub fn links(&self) -> usize {
        self.links.len()
    }

    /// Detaches every program. Each detach waits for an RCU grace period
    /// in the kernel; closing the links from many threads lets those waits
    /// overlap instead of adding up (seconds per hundred probes otherwise).
    pub fn detach(&mut self) {
        let links = std::mem::take(&mut self.links);
        if links.len() < 8 {
            return drop(links);
        }
        let threads = 32.min(links.len());
        let mut buckets: Vec<Vec<Link>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, l) in links.into_iter().enumerate() {
            buckets[i % threads].push(l);
        }
        std::thread::scope(|s| {
            for b in buckets {
                s.spawn(move || drop(b));
            }
        });
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.detach();
    }
}
