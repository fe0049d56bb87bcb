//! Packet bytes (`--pcap`): the records the BPF side sends ahead of an
//! event (`struct nt_bytes`), and pairing them with their event.
//!
//! A bytes record precedes its event in the ring, but not always directly:
//! an entry whose event waits for the function's exit sends its bytes at
//! entry, and other records come between. The pairing keeps the latest
//! records by (ts, skb) and hands each to the event with that ts and skb;
//! a record whose event never comes (it was lost, or the exit dropped it)
//! ages out of the bounded queue.

use crate::abi::{link, nt_bytes};
use std::collections::VecDeque;

/// How a capture's first byte is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The network header of an IPv4 or IPv6 packet (LINKTYPE_RAW).
    Raw,
    /// An Ethernet frame's MAC header (LINKTYPE_ETHERNET).
    Ethernet,
}

impl Link {
    pub fn code(self) -> u8 {
        match self {
            Link::Raw => link::RAW,
            Link::Ethernet => link::ETH,
        }
    }

    pub fn from_code(code: u8) -> Option<Link> {
        match code {
            link::RAW => Some(Link::Raw),
            link::ETH => Some(Link::Ethernet),
            _ => None,
        }
    }
}

/// A packet's bytes as the kernel held them at one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub link: Link,
    /// The packet's length from the first byte on (`data` may hold fewer:
    /// the snap length, or the end of the linear part).
    pub orig_len: u32,
    pub data: Box<[u8]>,
}

/// A decoded bytes record: the capture and the event it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytesRecord {
    pub ts: u64,
    pub skb: u64,
    pub captured: Captured,
}

const HEADER: usize = std::mem::offset_of!(nt_bytes, data);

/// Whether a ring-buffer record is a bytes record (its first 8 bytes are
/// 0; an event's are its timestamp).
pub fn is_bytes_record(data: &[u8]) -> bool {
    data.len() >= HEADER && data[..8] == [0; 8]
}

/// Decodes a bytes record; None when it is malformed (too short for what
/// it says it holds, or of an unknown link type).
pub fn decode(data: &[u8]) -> Option<BytesRecord> {
    if !is_bytes_record(data) {
        return None;
    }
    let word = |at: usize| u64::from_ne_bytes(data[at..at + 8].try_into().expect("8 bytes"));
    let ts = word(std::mem::offset_of!(nt_bytes, ts));
    let skb = word(std::mem::offset_of!(nt_bytes, skb));
    let at = std::mem::offset_of!(nt_bytes, orig_len);
    let orig_len = u32::from_ne_bytes(data[at..at + 4].try_into().expect("4 bytes"));
    let at = std::mem::offset_of!(nt_bytes, caplen);
    let caplen = u16::from_ne_bytes(data[at..at + 2].try_into().expect("2 bytes")) as usize;
    let link = Link::from_code(data[std::mem::offset_of!(nt_bytes, link)])?;
    let bytes = data.get(HEADER..HEADER + caplen)?;
    Some(BytesRecord {
        ts,
        skb,
        captured: Captured {
            link,
            orig_len: orig_len.max(caplen as u32),
            data: bytes.into(),
        },
    })
}

/// Records waiting for their events.
#[derive(Debug, Default)]
pub struct Pairing {
    waiting: VecDeque<BytesRecord>,
    /// Records dropped unpaired because the queue was full.
    pub unpaired: u64,
}

impl Pairing {
    /// Records kept at most: an exit comes after the records of the calls
    /// inside its function, a few dozen at most.
    pub const CAPACITY: usize = 512;

    pub fn new() -> Pairing {
        Pairing::default()
    }

    pub fn push(&mut self, record: BytesRecord) {
        if self.waiting.len() >= Self::CAPACITY {
            self.waiting.pop_front();
            self.unpaired += 1;
        }
        self.waiting.push_back(record);
    }

    /// The capture of the event at `ts` on `skb`, if one came.
    pub fn take(&mut self, ts: u64, skb: u64) -> Option<Captured> {
        if self.waiting.is_empty() {
            return None;
        }
        // Newest first: most events follow their record at once.
        let at = self
            .waiting
            .iter()
            .rposition(|r| r.ts == ts && r.skb == skb)?;
        self.waiting.remove(at).map(|r| r.captured)
    }
}
