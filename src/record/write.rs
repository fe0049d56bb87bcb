//! Writing a recording while a live run goes on. A write error stops the
//! recording (with a warning and a failed run at the end), never the trace.

use super::{codec, kind, End, Header, Symbol, FORMAT_VERSION, MAGIC};
use crate::events::Event;
use crate::kernel::kallsyms::Kallsyms;
use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why a recording failed: it could not be created, or a write failed
/// (the recording stops at the first).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("--record: cannot create {path} ({source})")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("--record: writing {path} failed ({source}); the recording stops here")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

pub struct Recorder {
    path: PathBuf,
    out: Option<BufWriter<std::fs::File>>,
    symbols: HashSet<u64>,
    /// The first write error; the recording stopped there.
    pub error: Option<RecordError>,
    frame: Vec<u8>,
}

impl Recorder {
    /// Creates FILE and writes the header.
    pub fn create(path: &Path, header: &Header) -> Result<Recorder, RecordError> {
        let file = std::fs::File::create(path).map_err(|source| RecordError::Create {
            path: path.display().to_string(),
            source,
        })?;
        let mut r = Recorder {
            path: path.to_path_buf(),
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            symbols: HashSet::new(),
            error: None,
            frame: Vec::new(),
        };
        let mut start = MAGIC.to_vec();
        start.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        r.raw(&start);
        let json = serde_json::to_vec(header).expect("the header serializes");
        r.frame(kind::HEADER, &json);
        match r.error.take() {
            Some(e) => Err(e),
            None => Ok(r),
        }
    }

    /// One event, after the symbols its addresses resolve to.
    pub fn event(&mut self, ev: &Event, kallsyms: &Kallsyms) {
        if self.out.is_none() {
            return;
        }
        let hooks = ev.nf.iter().flat_map(|nf| nf.hooks.iter());
        for addr in ev.location.iter().chain(hooks).chain(ev.stack.iter()) {
            if let Some(loc) = kallsyms.resolve(*addr) {
                let start = addr - loc.offset;
                if self.symbols.insert(start) {
                    let sym = Symbol {
                        start,
                        name: loc.symbol.to_string(),
                    };
                    let bytes = postcard::to_stdvec(&sym).expect("symbols serialize");
                    self.frame(kind::SYMBOL, &bytes);
                }
            }
        }
        let mut buf = std::mem::take(&mut self.frame);
        buf.clear();
        codec::encode(ev, &mut buf);
        self.frame(kind::EVENT, &buf);
        self.frame = buf;
    }

    /// An aggregating mode's counters.
    pub fn snapshot(&mut self, snap: &crate::events::snapshot::Snapshot) {
        let bytes = postcard::to_stdvec(snap).expect("snapshots serialize");
        self.frame(kind::SNAPSHOT, &bytes);
    }

    /// The pipeline looked for finished packets at `now`.
    pub fn tick(&mut self, now: u64) {
        self.frame(kind::TICK, &now.to_le_bytes());
    }

    /// The kernel had lost `total` events by `now` (written when it grew).
    pub fn lost(&mut self, now: u64, total: u64) {
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&now.to_le_bytes());
        payload[8..].copy_from_slice(&total.to_le_bytes());
        self.frame(kind::LOST, &payload);
    }

    /// Closes the recording; Err if any write failed.
    pub fn finish(mut self, end: &End) -> Result<(), RecordError> {
        let bytes = postcard::to_stdvec(end).expect("the end frame serializes");
        self.frame(kind::END, &bytes);
        if let Some(mut out) = self.out.take() {
            if let Err(e) = out.flush() {
                self.fail(e);
            }
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn frame(&mut self, kind: u8, payload: &[u8]) {
        let mut head = [0u8; 5];
        head[0] = kind;
        head[1..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        self.raw(&head);
        self.raw(payload);
    }

    fn raw(&mut self, bytes: &[u8]) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.write_all(bytes) {
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, source: std::io::Error) {
        if self.error.is_none() {
            let e = RecordError::Write {
                path: self.path.display().to_string(),
                source,
            };
            log::error!("{e}");
            self.error = Some(e);
        }
        self.out = None;
    }
}
