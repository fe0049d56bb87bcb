//! Kernel symbols from `/proc/kallsyms`: which functions exist (and in which
//! module), and address → `symbol+0xoff` for drop locations and stacks.
//! Addresses read as zero (no privilege) make symbolization unavailable,
//! which is reported rather than printing wrong names.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;

pub const KALLSYMS: &str = "/proc/kallsyms";

/// No kernel function is this large; a larger offset means "not a symbol".
const MAX_FUNCTION_SIZE: u64 = 1 << 20;

/// A parsed symbol table. Names are kept in one string to stay compact
/// (the 6.x tables have 150-250k entries).
#[derive(Default)]
pub struct Kallsyms {
    /// (address, start of name in `names`, name length), sorted by address.
    text: Vec<(u64, u32, u16)>,
    names: String,
    /// Function name → module (None for vmlinux).
    functions: HashMap<String, Option<String>>,
    addresses_visible: bool,
}

/// A resolved address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location<'a> {
    pub symbol: &'a str,
    pub offset: u64,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:#x}", self.symbol, self.offset)
    }
}

impl Kallsyms {
    pub fn load() -> io::Result<Kallsyms> {
        Self::from_file(Path::new(KALLSYMS))
    }

    pub fn from_file(path: &Path) -> io::Result<Kallsyms> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    pub fn parse(text: &str) -> Kallsyms {
        let mut k = Kallsyms::default();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let module = it
                .next()
                .map(|m| m.trim_start_matches('[').trim_end_matches(']').to_string());
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                continue;
            }
            if addr != 0 {
                k.addresses_visible = true;
            }
            k.functions.entry(name.to_string()).or_insert(module);
            let start = k.names.len() as u32;
            let len = name.len().min(u16::MAX as usize) as u16;
            k.names.push_str(&name[..len as usize]);
            k.text.push((addr, start, len));
        }
        k.text.sort_by_key(|e| e.0);
        k
    }

    /// Whether real addresses are visible (root, or kptr_restrict allows).
    pub fn addresses_visible(&self) -> bool {
        self.addresses_visible
    }

    /// Whether a function of this exact name exists.
    pub fn has_function(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    /// The module a function lives in (None: vmlinux or unknown).
    pub fn module_of(&self, name: &str) -> Option<&str> {
        self.functions.get(name).and_then(|m| m.as_deref())
    }

    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The symbol containing `addr`, or None when it is outside the table.
    pub fn resolve(&self, addr: u64) -> Option<Location<'_>> {
        if !self.addresses_visible || addr == 0 {
            return None;
        }
        let idx = match self.text.binary_search_by_key(&addr, |e| e.0) {
            Ok(i) => i,
            Err(0) => return None,
            Err(i) => i - 1,
        };
        let (start, name_start, len) = self.text[idx];
        // Past the end of the last function (BPF JIT images, module
        // holes) the nearest symbol is meaningless.
        if addr - start > MAX_FUNCTION_SIZE {
            return None;
        }
        Some(Location {
            symbol: &self.names[name_start as usize..name_start as usize + len as usize],
            offset: addr - start,
        })
    }

    /// `symbol+0xoff`, or the raw address when it cannot be resolved.
    pub fn describe(&self, addr: u64) -> String {
        match self.resolve(addr) {
            Some(l) => l.to_string(),
            None => format!("{addr:#x}"),
        }
    }
}
