//! A reader for raw BTF blobs (`/sys/kernel/btf/*`, `--btf FILE`) that
//! indexes only what nettrace asks of a kernel: functions, the
//! `btf_trace_*` typedefs behind tracepoints, and enums by name. Types are
//! decoded on demand from the blob's bytes.
//!
//! It replaces a general BTF library that decoded and named every one of
//! vmlinux's ~150,000 types at each start: 0.2 s natively and 2 s under
//! the emulated test kernels, the largest part of start-up.

use super::name_hash;

const MAGIC: u16 = 0xeb9f;
const HEADER_MIN: usize = 24;
const TYPE_HEADER: usize = 12;

/// BTF type kinds (include/uapi/linux/btf.h).
pub mod kind {
    pub const INT: u8 = 1;
    pub const PTR: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const UNION: u8 = 5;
    pub const ENUM: u8 = 6;
    pub const FWD: u8 = 7;
    pub const TYPEDEF: u8 = 8;
    pub const VOLATILE: u8 = 9;
    pub const CONST: u8 = 10;
    pub const RESTRICT: u8 = 11;
    pub const FUNC: u8 = 12;
    pub const FUNC_PROTO: u8 = 13;
    pub const VAR: u8 = 14;
    pub const DATASEC: u8 = 15;
    pub const FLOAT: u8 = 16;
    pub const DECL_TAG: u8 = 17;
    pub const TYPE_TAG: u8 = 18;
    pub const ENUM64: u8 = 19;
}

/// One parsed blob: its bytes, where each type starts, and a name index of
/// the kinds nettrace looks up. A split blob (module BTF) numbers its types
/// and strings after its base's.
pub struct Blob {
    data: Vec<u8>,
    types: std::ops::Range<usize>,
    strings: std::ops::Range<usize>,
    /// Byte offset (in `data`) of each type, by id minus `first_id`.
    offsets: Vec<u32>,
    first_id: u32,
    first_string: u32,
    /// Named FUNC, TYPEDEF and ENUM/ENUM64 types: (hash of name, id).
    /// Sorted by hash; equal hashes are told apart by comparing names.
    names: Vec<(u64, u32)>,
}

/// A type as stored: kind, name, `vlen`, and the size-or-type word.
#[derive(Debug, Clone, Copy)]
pub struct RawType {
    pub kind: u8,
    pub name_off: u32,
    pub vlen: u16,
    /// The referenced type for PTR, TYPEDEF, qualifiers, FUNC; the return
    /// type for FUNC_PROTO; the size for INT, STRUCT, ENUM...
    pub size_or_type: u32,
    /// Byte offset of the kind-specific data that follows the header.
    extra: usize,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// Bytes of kind-specific data after a type's 12-byte header.
fn extra_len(kind: u8, vlen: usize) -> Option<usize> {
    Some(match kind {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * vlen,
        kind::ENUM | kind::FUNC_PROTO => 8 * vlen,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        _ => return None,
    })
}

impl Blob {
    /// Parses a standalone blob (vmlinux), or a split one on top of `base`.
    pub fn parse(data: Vec<u8>, base: Option<&Blob>) -> Result<Blob, String> {
        let magic = data
            .get(0..2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or("file too short for a BTF header")?;
        if magic != MAGIC {
            return Err(if magic == MAGIC.swap_bytes() {
                "BTF of the other byte order".into()
            } else {
                "not a BTF blob (bad magic)".into()
            });
        }
        let field = |i: usize| u32_at(&data, 4 + 4 * i).ok_or("truncated BTF header");
        let hdr_len = field(0)? as usize;
        let (type_off, type_len) = (field(1)? as usize, field(2)? as usize);
        let (str_off, str_len) = (field(3)? as usize, field(4)? as usize);
        if hdr_len < HEADER_MIN {
            return Err("BTF header too short".into());
        }
        let types = hdr_len + type_off..hdr_len + type_off + type_len;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        if types.end > data.len() || strings.end > data.len() {
            return Err("BTF sections run past the end of the file".into());
        }
        let (first_id, first_string) = match base {
            Some(b) => (b.next_id(), b.first_string + b.strings.len() as u32),
            None => (1, 0),
        };
        let mut blob = Blob {
            data,
            types,
            strings,
            offsets: Vec::new(),
            first_id,
            first_string,
            names: Vec::new(),
        };
        blob.index(base)?;
        Ok(blob)
    }

    fn index(&mut self, base: Option<&Blob>) -> Result<(), String> {
        let mut at = self.types.start;
        let mut offsets = Vec::with_capacity(self.types.len() / 24);
        let mut names = Vec::new();
        while at < self.types.end {
            let t = self
                .raw_at(at)
                .ok_or_else(|| format!("truncated type at byte {at}"))?;
            let extra = extra_len(t.kind, t.vlen as usize)
                .ok_or_else(|| format!("unknown BTF kind {} at byte {at}", t.kind))?;
            if matches!(
                t.kind,
                kind::FUNC | kind::TYPEDEF | kind::ENUM | kind::ENUM64
            ) && t.name_off != 0
            {
                let id = self.first_id + offsets.len() as u32;
                let name = self.name_bytes(t.name_off, base);
                names.push((name_hash(name), id));
            }
            offsets.push(at as u32);
            at += TYPE_HEADER + extra;
        }
        if at != self.types.end {
            return Err("the last BTF type runs past its section".into());
        }
        names.sort_unstable();
        self.offsets = offsets;
        self.names = names;
        Ok(())
    }

    /// A blob with no types: every lookup finds nothing.
    pub fn empty() -> Blob {
        Blob {
            data: Vec::new(),
            types: 0..0,
            strings: 0..0,
            offsets: Vec::new(),
            first_id: 1,
            first_string: 0,
            names: Vec::new(),
        }
    }

    /// The id the next blob split on this one starts at.
    fn next_id(&self) -> u32 {
        self.first_id + self.offsets.len() as u32
    }

    fn raw_at(&self, at: usize) -> Option<RawType> {
        let name_off = u32_at(&self.data, at)?;
        let info = u32_at(&self.data, at + 4)?;
        let size_or_type = u32_at(&self.data, at + 8)?;
        Some(RawType {
            kind: ((info >> 24) & 0x1f) as u8,
            name_off,
            vlen: (info & 0xffff) as u16,
            size_or_type,
            extra: at + TYPE_HEADER,
        })
    }

    fn name_bytes<'a>(&'a self, off: u32, base: Option<&'a Blob>) -> &'a [u8] {
        if off < self.first_string {
            return base.map(|b| b.name_bytes(off, None)).unwrap_or_default();
        }
        let start = self.strings.start + (off - self.first_string) as usize;
        let rest = self.data.get(start..self.strings.end).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    fn u32_in_extra(&self, t: &RawType, index: usize) -> u32 {
        u32_at(&self.data, t.extra + 4 * index).unwrap_or(0)
    }
}

/// A blob with the base it was split from: what lookups go through.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub blob: &'a Blob,
    pub base: Option<&'a Blob>,
}

impl<'a> View<'a> {
    pub fn new(blob: &'a Blob, base: Option<&'a Blob>) -> View<'a> {
        View { blob, base }
    }

    /// The type of this id (0 is void: None).
    pub fn get(&self, id: u32) -> Option<RawType> {
        let blob = self.blob_of(id);
        let idx = id.checked_sub(blob.first_id)? as usize;
        blob.raw_at(*blob.offsets.get(idx)? as usize)
    }

    fn blob_of(&self, id: u32) -> &'a Blob {
        match self.base {
            Some(b) if id < self.blob.first_id => b,
            _ => self.blob,
        }
    }

    pub fn name(&self, off: u32) -> &'a str {
        std::str::from_utf8(self.blob.name_bytes(off, self.base)).unwrap_or("")
    }

    /// Ids of the indexed types (FUNC, TYPEDEF, ENUM, ENUM64) of this name
    /// and kind, in this blob and then its base.
    pub fn find(&self, name: &str, want: u8) -> Option<(u32, RawType)> {
        let h = name_hash(name.as_bytes());
        let views = [Some(*self), self.base.map(|b| View::new(b, None))];
        for view in views.into_iter().flatten() {
            let names = &view.blob.names;
            let first = names.partition_point(|(k, _)| *k < h);
            for &(_, id) in names[first..].iter().take_while(|(k, _)| *k == h) {
                match view.get(id) {
                    Some(t) if t.kind == want && view.name(t.name_off) == name => {
                        return Some((id, t))
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// The i-th FUNC_PROTO parameter's type id, or ENUM member's name
    /// offset: the first word of each vlen entry (8 bytes each).
    pub fn pair(&self, t: &RawType, id: u32, i: usize) -> (u32, u32) {
        let blob = self.blob_of(id);
        (blob.u32_in_extra(t, 2 * i), blob.u32_in_extra(t, 2 * i + 1))
    }

    /// The i-th ENUM64 member: (name offset, low 32 bits of the value).
    pub fn enum64_member(&self, t: &RawType, id: u32, i: usize) -> (u32, u32) {
        let blob = self.blob_of(id);
        (blob.u32_in_extra(t, 3 * i), blob.u32_in_extra(t, 3 * i + 1))
    }
}
