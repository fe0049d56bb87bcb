//! Recordings (`--record FILE`, `nettrace replay FILE`): every input of a
//! run's output pipeline — decoded events and the clock ticks at which
//! finished packets were looked for — plus what decoding them elsewhere
//! needs (drop-reason names, the kernel symbols the events point at, the
//! probe names behind probe ids). docs/recording.md describes the format.
//!
//! Layout: `NTREC\0`, a little-endian u16 format version, then frames of
//! `[kind: u8][length: u32 LE][payload]`. The first frame is the JSON
//! header; events are `events::Event`s in fixed-width fields (`codec`;
//! format 1 used postcard); symbols precede the first event that needs
//! them; an end frame closes a complete file.

pub mod codec;
pub mod read;
pub mod script;
pub mod write;

use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 6] = b"NTREC\0";
/// The format this nettrace writes. Version 1: `Event` as of nettrace 0.1,
/// postcard-encoded. Version 2: the same `Event`, in `codec`'s fixed-width
/// fields. Version 3: events may carry a latency span, and counter
/// snapshots (`events::snapshot`, postcard) of the aggregating modes.
/// Version 4: a second presence byte in event frames, for the span, a TCP
/// reset's reason and the socket's state; the header names reset reasons.
/// Version 5: lost-events frames (`kind::LOST`), and events may carry the
/// packet's bytes (`--pcap`, `--record-bytes`). Version 6: netfilter facts
/// may carry the hook's devices, the skb's mark and conntrack state.
pub const FORMAT_VERSION: u16 = 6;
/// Formats this nettrace reads.
pub const READABLE_VERSIONS: &[u16] = &[1, 2, 3, 4, 5, 6];
/// No frame is this large; a larger length means a damaged file.
pub const MAX_FRAME: u32 = 1 << 20;

/// Frame kinds.
pub mod kind {
    pub const HEADER: u8 = b'H';
    pub const SYMBOL: u8 = b'S';
    pub const EVENT: u8 = b'E';
    pub const TICK: u8 = b'T';
    pub const SNAPSHOT: u8 = b'C';
    /// The kernel's count of lost events had grown at this time: u64 LE
    /// time, u64 LE total lost so far (format 5).
    pub const LOST: u8 = b'L';
    pub const END: u8 = b'X';
}

/// What a recording says about itself and its kernel (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The nettrace version that wrote it.
    pub nettrace: String,
    /// When the run started (RFC 3339, UTC).
    pub created: String,
    /// `uname -r` of the traced kernel.
    pub kernel: String,
    /// The mode and flags of the live run, for the reader's information.
    pub command: Vec<String>,
    /// Probe names by probe id (ids differ between nettrace versions).
    pub probes: Vec<String>,
    /// The kernel's drop reasons (value, name).
    pub drop_reasons: Vec<(u32, String)>,
    /// The kernel's TCP reset reasons (value, name; format 4, empty before 6.10).
    #[serde(default)]
    pub rst_reasons: Vec<(u32, String)>,
    /// CLOCK_REALTIME - CLOCK_MONOTONIC at the start (ns), for `--date`.
    pub realtime_offset_ns: i64,
}

/// A kernel symbol an event points at: its start address and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    pub start: u64,
    pub name: String,
}

/// The end frame: how the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub events: u64,
    /// Events the kernel could not deliver (ring buffer full).
    pub lost: u64,
}
