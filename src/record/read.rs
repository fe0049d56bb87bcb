//! Reading a recording back. `Recording::open` reads the header and scans
//! the frames once (symbols, and where the file is damaged, if it is);
//! `inputs` then streams the events and ticks that come before any damage.
//! Every problem is a `ReadError` naming the file offset and the frame;
//! nothing in a file can make the reader panic or allocate without bound.

use super::{codec, kind, End, Header, Symbol, MAGIC, MAX_FRAME, READABLE_VERSIONS};
use crate::catalogue::table::probe;
use crate::events::snapshot::{Counters, Snapshot};
use crate::events::Event;
use crate::kernel::btf::DropReasons;
use crate::kernel::kallsyms::Kallsyms;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot read the recording ({why})")]
    Io { path: String, why: String },
    #[error("{path}: not a nettrace recording (it does not start with NTREC); record one with `nettrace --record FILE`")]
    NotRecording { path: String },
    #[error("{path}: recording format {found} is not one this nettrace {ours} reads ({readable}); replay it with the nettrace that wrote it ({writer})")]
    Version {
        path: String,
        found: u16,
        ours: String,
        readable: String,
        writer: String,
    },
    #[error("{path}: damaged at byte offset {offset} (frame {frame}): {what}")]
    Damaged {
        path: String,
        offset: u64,
        frame: u64,
        what: String,
    },
}

/// One input of the output pipeline. The event is not boxed: the pipeline
/// takes it by value at once, and a box per event cost an allocation and
/// a copy on replay's hot path.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Input {
    Event(Event),
    Tick(u64),
    /// An aggregating mode's counters (format 3).
    Snapshot(Snapshot),
    /// The kernel's count of lost events had grown by this time.
    Lost {
        at: u64,
        total: u64,
    },
}

/// An opened recording.
pub struct Recording {
    pub path: PathBuf,
    pub header: Header,
    /// The symbols the events point at, as a symbol table.
    pub kallsyms: Kallsyms,
    pub reasons: DropReasons,
    /// The end frame, when the run ended cleanly.
    pub end: Option<End>,
    /// Where the scan found the file damaged; inputs stop before it.
    pub damage: Option<ReadError>,
    /// Byte offset where the frames end (or the damage begins).
    good_until: u64,
    /// Recorded probe id → this nettrace's probe id.
    probe_ids: Vec<Option<u32>>,
    /// The file's format version (how its events are encoded).
    version: u16,
}

struct Frames {
    r: BufReader<std::fs::File>,
    path: String,
    offset: u64,
    index: u64,
    /// The file's length: a frame that says it runs past it is truncated.
    file_len: u64,
    /// The last frame's payload, when it did not lie whole in the reader's
    /// buffer (reused: one allocation per file, not per frame).
    payload: Vec<u8>,
    /// Bytes of the reader's buffer the last frame was lent from, consumed
    /// at the next call.
    lent: usize,
}

impl Frames {
    fn damaged(&self, offset: u64, what: impl Into<String>) -> ReadError {
        ReadError::Damaged {
            path: self.path.clone(),
            offset,
            frame: self.index,
            what: what.into(),
        }
    }

    /// The next frame, None at a clean end of file. Frames whose kind
    /// `wanted` refuses are stepped over unread, with an empty payload.
    fn next_of(&mut self, wanted: impl Fn(u8) -> bool) -> Option<Result<(u8, &[u8]), ReadError>> {
        self.r.consume(std::mem::take(&mut self.lent));
        let at = self.offset;
        let mut head = [0u8; 5];
        // A frame that lies whole in the reader's buffer is lent from it:
        // most do, and a replay then copies no event bytes.
        let buffered = match self.r.fill_buf() {
            Ok(b) => b,
            Err(e) => return Some(Err(self.damaged(at, format!("read error: {e}")))),
        };
        let lendable = buffered.len() >= 5;
        if lendable {
            head.copy_from_slice(&buffered[..5]);
        } else {
            match read_full(&mut self.r, &mut head) {
                Ok(0) => return None,
                Ok(5) => {}
                Ok(n) => {
                    return Some(Err(self.damaged(
                        at,
                        format!("truncated: the file ends {n} bytes into a frame header"),
                    )))
                }
                Err(e) => return Some(Err(self.damaged(at, format!("read error: {e}")))),
            }
        }
        let kind = head[0];
        if ![
            kind::HEADER,
            kind::SYMBOL,
            kind::EVENT,
            kind::TICK,
            kind::SNAPSHOT,
            kind::LOST,
            kind::END,
        ]
        .contains(&kind)
        {
            return Some(Err(
                self.damaged(at, format!("unknown frame kind {kind:#04x}"))
            ));
        }
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME {
            return Some(Err(self.damaged(
                at,
                format!("a frame of {len} bytes (at most {MAX_FRAME})"),
            )));
        }
        let end = at + 5 + len as u64;
        if end > self.file_len {
            return Some(Err(self.damaged(
                at,
                format!(
                    "truncated: the frame says {len} bytes, the file holds {}",
                    self.file_len.saturating_sub(at + 5)
                ),
            )));
        }
        self.offset = end;
        self.index += 1;
        // The rest of the frame: its payload, and its header too when that
        // was only looked at in the buffer.
        let rest = len as usize + if lendable { 5 } else { 0 };
        if !wanted(kind) {
            // Stepped over, copying nothing: BufReader moves within its
            // buffer when it can and seeks the file otherwise.
            if let Err(e) = self.r.seek_relative(rest as i64) {
                return Some(Err(self.damaged(at, format!("read error: {e}"))));
            }
            return Some(Ok((kind, &[])));
        }
        if lendable && self.r.buffer().len() >= rest {
            self.lent = rest;
            return Some(Ok((kind, &self.r.buffer()[5..rest])));
        }
        if lendable {
            self.r.consume(5);
        }
        let mut payload = std::mem::take(&mut self.payload);
        payload.resize(len as usize, 0);
        let read = read_full(&mut self.r, &mut payload);
        self.payload = payload;
        match read {
            Ok(n) if n == len as usize => {}
            Ok(n) => {
                return Some(Err(self.damaged(
                    at,
                    format!("truncated: the frame says {len} bytes, the file holds {n}"),
                )))
            }
            Err(e) => return Some(Err(self.damaged(at, format!("read error: {e}")))),
        }
        Some(Ok((kind, &self.payload)))
    }

    /// The next frame with its payload.
    fn next(&mut self) -> Option<Result<(u8, &[u8]), ReadError>> {
        self.next_of(|_| true)
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn open_frames(path: &Path) -> Result<(Frames, u16), ReadError> {
    let p = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| ReadError::Io {
        path: p.clone(),
        why: e.to_string(),
    })?;
    let file_len = file
        .metadata()
        .map_err(|e| ReadError::Io {
            path: p.clone(),
            why: e.to_string(),
        })?
        .len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut start = [0u8; 8];
    let n = read_full(&mut r, &mut start).map_err(|e| ReadError::Io {
        path: p.clone(),
        why: e.to_string(),
    })?;
    if n < 8 || &start[..6] != MAGIC {
        return Err(ReadError::NotRecording { path: p });
    }
    let version = u16::from_le_bytes([start[6], start[7]]);
    Ok((
        Frames {
            r,
            path: p,
            offset: 8,
            index: 0,
            file_len,
            payload: Vec::new(),
            lent: 0,
        },
        version,
    ))
}

impl Recording {
    /// Reads the header and scans the file. Err: nothing can be replayed.
    pub fn open(path: &Path) -> Result<Recording, ReadError> {
        let (mut frames, version) = open_frames(path)?;
        let header = match frames.next() {
            Some(Ok((kind::HEADER, json))) => serde_json::from_slice::<Header>(json)
                .map_err(|e| frames.damaged(8, format!("the header is not valid ({e})")))?,
            Some(Ok(_)) | None => {
                return Err(frames.damaged(8, "the recording has no header frame"));
            }
            Some(Err(e)) => return Err(e),
        };
        if !READABLE_VERSIONS.contains(&version) {
            return Err(ReadError::Version {
                path: frames.path.clone(),
                found: version,
                ours: env!("CARGO_PKG_VERSION").to_string(),
                readable: READABLE_VERSIONS
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                writer: header.nettrace.clone(),
            });
        }
        let mut symbols = String::new();
        let mut end = None;
        let mut damage = None;
        loop {
            let at = frames.offset;
            // The scan wants symbols and the end; events and ticks are
            // decoded by `inputs`, so here they are only stepped over.
            match frames
                .next_of(|k| ![kind::EVENT, kind::TICK, kind::SNAPSHOT, kind::LOST].contains(&k))
            {
                None => break,
                Some(Err(e)) => {
                    damage = Some(e);
                    break;
                }
                Some(Ok((kind::SYMBOL, bytes))) => match postcard::from_bytes::<Symbol>(bytes) {
                    Ok(s) if !s.name.contains(char::is_whitespace) && !s.name.is_empty() => {
                        symbols.push_str(&format!("{:x} t {}\n", s.start, s.name));
                    }
                    _ => {
                        damage = Some(frames.damaged(at, "a symbol frame does not decode"));
                        break;
                    }
                },
                Some(Ok((kind::END, bytes))) => match postcard::from_bytes::<End>(bytes) {
                    Ok(e) => end = Some(e),
                    Err(e) => {
                        damage = Some(
                            frames.damaged(at, format!("the end frame does not decode ({e})")),
                        );
                        break;
                    }
                },
                Some(Ok((kind::HEADER, _))) => {
                    damage = Some(frames.damaged(at, "a second header frame"));
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
        let good_until = match &damage {
            Some(ReadError::Damaged { offset, .. }) => *offset,
            _ => frames.offset,
        };
        let probe_ids = header
            .probes
            .iter()
            .map(|name| probe(name).map(|p| p.id))
            .collect();
        Ok(Recording {
            path: path.to_path_buf(),
            kallsyms: Kallsyms::parse(&symbols),
            reasons: DropReasons::from_pairs(header.drop_reasons.clone())
                .with_rst(header.rst_reasons.clone()),
            header,
            end,
            damage,
            good_until,
            probe_ids,
            version,
        })
    }

    /// Streams the events and ticks before any damage, in recorded order.
    /// Events of probes this nettrace does not know are counted in
    /// `Inputs::unknown_probe` and skipped. An event that does not decode
    /// ends the stream with its error.
    pub fn inputs(&self) -> Result<Inputs<'_>, ReadError> {
        let (frames, _) = open_frames(&self.path)?;
        Ok(Inputs {
            rec: self,
            frames,
            ended: false,
            unknown_probe: 0,
        })
    }
}

pub struct Inputs<'a> {
    rec: &'a Recording,
    frames: Frames,
    ended: bool,
    /// Events skipped because their probe is not in this nettrace's catalogue.
    pub unknown_probe: u64,
}

impl Iterator for Inputs<'_> {
    type Item = Result<Input, ReadError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        while !self.ended {
            let at = self.frames.offset;
            if at >= self.rec.good_until {
                self.ended = true;
                return None;
            }
            let (kind, bytes) = match self.frames.next()? {
                Ok(f) => f,
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e));
                }
            };
            match kind {
                kind::EVENT => {
                    let decoded = match self.rec.version {
                        1 => postcard::from_bytes::<Event>(bytes).map_err(|e| e.to_string()),
                        v => codec::decode_format(bytes, v).map_err(|e| e.to_string()),
                    };
                    let mut ev = match decoded {
                        Ok(ev) => ev,
                        Err(e) => {
                            self.ended = true;
                            return Some(Err(self
                                .frames
                                .damaged(at, format!("an event does not decode ({e})"))));
                        }
                    };
                    let ours = |id: u32| self.rec.probe_ids.get(id as usize).copied().flatten();
                    match ours(ev.probe) {
                        Some(id) => ev.probe = id,
                        None => {
                            self.unknown_probe += 1;
                            continue;
                        }
                    }
                    // A span names the probes it began and ended at: ours too
                    // (one this nettrace lacks is shown as `?`).
                    if let Some(span) = ev.span.as_deref_mut() {
                        span.first_probe = ours(span.first_probe).unwrap_or(u32::MAX);
                        span.end_probe = ours(span.end_probe).unwrap_or(u32::MAX);
                    }
                    return Some(Ok(Input::Event(ev)));
                }
                kind::TICK => {
                    let Ok(raw) = <[u8; 8]>::try_from(bytes) else {
                        self.ended = true;
                        return Some(Err(self.frames.damaged(at, "a tick frame is not 8 bytes")));
                    };
                    return Some(Ok(Input::Tick(u64::from_le_bytes(raw))));
                }
                kind::LOST => {
                    let Ok(raw) = <[u8; 16]>::try_from(bytes) else {
                        self.ended = true;
                        return Some(Err(self
                            .frames
                            .damaged(at, "a lost-events frame is not 16 bytes")));
                    };
                    let word =
                        |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().expect("8 bytes"));
                    return Some(Ok(Input::Lost {
                        at: word(0),
                        total: word(8),
                    }));
                }
                kind::SNAPSHOT => {
                    let Ok(mut snap) = postcard::from_bytes::<Snapshot>(bytes) else {
                        self.ended = true;
                        return Some(Err(self
                            .frames
                            .damaged(at, "a counter snapshot does not decode")));
                    };
                    // Probe ids are this recording's; map them to ours.
                    if let Counters::FuncHits(hits) = &mut snap.counters {
                        let ids = &self.rec.probe_ids;
                        hits.retain_mut(|(id, _)| match ids.get(*id as usize).copied().flatten() {
                            Some(ours) => {
                                *id = ours;
                                true
                            }
                            None => false,
                        });
                    }
                    return Some(Ok(Input::Snapshot(snap)));
                }
                _ => {}
            }
        }
        None
    }
}
