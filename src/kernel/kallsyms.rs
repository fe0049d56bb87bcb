//! Kernel symbols from `/proc/kallsyms`: which functions exist (and in which
//! module), and address → `symbol+0xoff` for drop locations and stacks.
//! Addresses read as zero (no privilege) make symbolization unavailable,
//! which is reported rather than printing wrong names.

use std::fmt;
use std::io;
use std::path::Path;

pub const KALLSYMS: &str = "/proc/kallsyms";

/// No kernel function is this large; a larger offset means "not a symbol".
const MAX_FUNCTION_SIZE: u64 = 1 << 20;

/// A parsed symbol table. Names are kept in one string and looked up
/// through a hash-sorted index, so a 6.x table (150-250k entries) costs a
/// few allocations, not one per symbol.
#[derive(Default)]
pub struct Kallsyms {
    /// Function symbols sorted by address.
    text: Vec<Symbol>,
    names: String,
    /// Module names; `Symbol::module` is an index into it plus one.
    modules: Vec<String>,
    /// (hash of name, index into `text`), sorted: equal names in address
    /// order, so a name's first entry is its vmlinux one when both exist.
    by_name: Vec<(u64, u32)>,
    addresses_visible: bool,
}

#[derive(Clone, Copy)]
struct Symbol {
    address: u64,
    name_start: u32,
    name_len: u16,
    /// 0: vmlinux; n: `modules[n - 1]`.
    module: u16,
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

    /// Reads the file a line at a time: the whole of a 6.x kallsyms (10 MB
    /// and more) is never held at once.
    pub fn from_file(path: &Path) -> io::Result<Kallsyms> {
        Self::from_reader(io::BufReader::new(std::fs::File::open(path)?))
    }

    pub fn parse(text: &str) -> Kallsyms {
        Self::from_reader(text.as_bytes()).expect("reading from memory does not fail")
    }

    fn from_reader(mut reader: impl io::BufRead) -> io::Result<Kallsyms> {
        let mut k = Kallsyms::default();
        let mut line = String::new();
        while reader.read_line(&mut line)? > 0 {
            k.add_line(line.trim_end_matches(['\n', '\r']));
            line.clear();
        }
        k.names.shrink_to_fit();
        k.text.shrink_to_fit();
        k.text.sort_by_key(|e| e.address);
        k.by_name = k
            .text
            .iter()
            .enumerate()
            .map(|(i, e)| (super::name_hash(k.name(e).as_bytes()), i as u32))
            .collect();
        k.by_name.sort_unstable();
        Ok(k)
    }

    /// One line: `<address> <type> <name>[\t[<module>]]`, as the kernel
    /// writes it; only functions are kept.
    fn add_line(&mut self, line: &str) {
        let Some((addr, rest)) = line.split_once(' ') else {
            return;
        };
        let Some((kind, rest)) = rest.split_once(' ') else {
            return;
        };
        if !matches!(kind, "t" | "T" | "w" | "W") {
            return;
        }
        let (name, module) = match rest.split_once('\t') {
            Some((name, m)) => (name, Some(m.trim_start_matches('[').trim_end_matches(']'))),
            None => (rest, None),
        };
        let Ok(address) = u64::from_str_radix(addr, 16) else {
            return;
        };
        if address != 0 {
            self.addresses_visible = true;
        }
        let module = match module {
            None => 0,
            Some(m) => {
                // kallsyms lists a module's symbols together.
                if self.modules.last().map(String::as_str) != Some(m) {
                    self.modules.push(m.to_string());
                }
                self.modules.len().min(u16::MAX as usize) as u16
            }
        };
        let name_len = name.len().min(u16::MAX as usize) as u16;
        let name_start = self.names.len() as u32;
        self.names.push_str(&name[..name_len as usize]);
        self.text.push(Symbol {
            address,
            name_start,
            name_len,
            module,
        });
    }

    fn name(&self, e: &Symbol) -> &str {
        &self.names[e.name_start as usize..e.name_start as usize + e.name_len as usize]
    }

    /// The first symbol of this exact name.
    fn lookup(&self, name: &str) -> Option<&Symbol> {
        let h = super::name_hash(name.as_bytes());
        let first = self.by_name.partition_point(|(k, _)| *k < h);
        self.by_name[first..]
            .iter()
            .take_while(|(k, _)| *k == h)
            .map(|(_, i)| &self.text[*i as usize])
            .find(|e| self.name(e) == name)
    }

    /// Frees the name index (a quarter of the table's memory): later lookups
    /// by name find nothing; address lookups are unchanged.
    pub fn release_name_index(&mut self) {
        self.by_name = Vec::new();
    }

    /// Whether real addresses are visible (root, or kptr_restrict allows).
    pub fn addresses_visible(&self) -> bool {
        self.addresses_visible
    }

    /// Whether a function of this exact name exists.
    pub fn has_function(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// The address of the first function of this exact name (None when
    /// absent or addresses are hidden).
    pub fn address_of(&self, name: &str) -> Option<u64> {
        if !self.addresses_visible {
            return None;
        }
        self.lookup(name).map(|e| e.address)
    }

    /// The module a function lives in (None: vmlinux or unknown).
    pub fn module_of(&self, name: &str) -> Option<&str> {
        let module = self.lookup(name)?.module;
        (module > 0).then(|| self.modules[module as usize - 1].as_str())
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
        let idx = match self.text.binary_search_by_key(&addr, |e| e.address) {
            Ok(i) => i,
            Err(0) => return None,
            Err(i) => i - 1,
        };
        let symbol = &self.text[idx];
        let start = symbol.address;
        // Past the end of the last function (BPF JIT images, module
        // holes) the nearest symbol is meaningless.
        if addr - start > MAX_FUNCTION_SIZE {
            return None;
        }
        Some(Location {
            symbol: self.name(symbol),
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
