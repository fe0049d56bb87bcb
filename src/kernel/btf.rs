//! Kernel facts read from BTF: drop-reason names, function and tracepoint
//! argument types. The running kernel's `/sys/kernel/btf/vmlinux` is the
//! default source; `--btf FILE` names another (any raw BTF blob, e.g. one
//! extracted with tools/extract-btf). Module BTF is loaded on demand.

use super::btf_blob::{kind, Blob, RawType, View};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("no kernel BTF at {0}: this kernel was built without CONFIG_DEBUG_INFO_BTF; pass --btf FILE with the kernel's BTF")]
    Missing(PathBuf),
    #[error("no BTF file at {0}: check the path given to --btf (tools/extract-btf makes one from a vmlinuz)")]
    FileMissing(PathBuf),
    #[error("cannot read BTF from {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

/// The kernel's BTF, plus module BTF loaded when a lookup needs it.
pub struct KernelBtf {
    vmlinux: Blob,
    path: PathBuf,
    module_dir: Option<PathBuf>,
    modules: std::cell::RefCell<HashMap<String, Option<std::rc::Rc<Blob>>>>,
}

/// The C spelling of a type, enough to compare argument types.
pub type TypeName = String;

impl KernelBtf {
    /// Frees the parsed BTF (the vmlinux blob alone is some 10 MB on a 6.x
    /// kernel): for a run that has planned and attached, and asks no more.
    /// Later lookups find nothing.
    pub fn release(&mut self) {
        self.vmlinux = Blob::empty();
        self.modules.borrow_mut().clear();
    }

    /// Loads `path`, or the running kernel's BTF when `path` is None.
    pub fn load(path: Option<&Path>) -> Result<KernelBtf, BtfError> {
        let (path, module_dir) = match path {
            Some(p) => (p.to_path_buf(), None),
            None => (
                PathBuf::from(VMLINUX_BTF),
                Some(PathBuf::from("/sys/kernel/btf")),
            ),
        };
        if !path.exists() {
            return Err(if module_dir.is_some() {
                BtfError::Missing(path)
            } else {
                BtfError::FileMissing(path)
            });
        }
        let unreadable = |reason: String| BtfError::Unreadable {
            path: path.clone(),
            reason,
        };
        let data = std::fs::read(&path).map_err(|e| unreadable(e.to_string()))?;
        let vmlinux = Blob::parse(data, None).map_err(unreadable)?;
        Ok(KernelBtf {
            vmlinux,
            path,
            module_dir,
            modules: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn module(&self, name: &str) -> Option<std::rc::Rc<Blob>> {
        let dir = self.module_dir.as_ref()?;
        self.modules
            .borrow_mut()
            .entry(name.to_string())
            .or_insert_with(|| {
                let data = std::fs::read(dir.join(name)).ok()?;
                Blob::parse(data, Some(&self.vmlinux))
                    .ok()
                    .map(std::rc::Rc::new)
            })
            .clone()
    }

    /// The loaded module whose BTF describes function `name`, when vmlinux's
    /// does not: what kallsyms would say, without reading kallsyms. Parses
    /// every module's BTF the first time (a few milliseconds natively).
    pub fn function_module(&self, name: &str) -> Option<String> {
        let dir = self.module_dir.as_ref()?;
        let mut modules: Vec<String> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n != "vmlinux")
            .collect();
        modules.sort();
        modules.into_iter().find(|m| {
            self.module(m).is_some_and(|b| {
                View::new(&b, Some(&self.vmlinux))
                    .find(name, kind::FUNC)
                    .is_some()
            })
        })
    }

    /// Whether vmlinux's BTF describes function `name` (a kfunc, say).
    pub fn has_vmlinux_function(&self, name: &str) -> bool {
        self.view().find(name, kind::FUNC).is_some()
    }

    /// Whether BTF describes function `name`, in vmlinux or a loaded module.
    pub fn has_function(&self, name: &str) -> bool {
        self.has_vmlinux_function(name) || self.function_module(name).is_some()
    }

    fn view(&self) -> View<'_> {
        View::new(&self.vmlinux, None)
    }

    /// `enum skb_drop_reason` as value → name (without the
    /// `SKB_DROP_REASON_` prefix), and `enum sk_rst_reason` (without
    /// `SK_RST_REASON_`; 6.10+). Empty when the kernel has none.
    pub fn drop_reasons(&self) -> DropReasons {
        let names = self
            .enum_members("skb_drop_reason")
            .into_iter()
            .map(|(name, value)| (value, strip_reason_prefix(&name).to_string()))
            .collect();
        let rst = self
            .enum_members("sk_rst_reason")
            .into_iter()
            .map(|(name, value)| {
                let short = name.strip_prefix("SK_RST_REASON_").unwrap_or(&name);
                (value, short.to_string())
            })
            .collect();
        DropReasons { names, rst }
    }

    /// The members of `enum NAME` as (name, value; low 32 bits for an
    /// ENUM64), in declaration order. Empty when BTF has no such enum.
    pub fn enum_members(&self, enum_name: &str) -> Vec<(String, u32)> {
        let btf = self.view();
        let found = btf
            .find(enum_name, kind::ENUM)
            .or_else(|| btf.find(enum_name, kind::ENUM64));
        let Some((id, t)) = found else {
            return Vec::new();
        };
        (0..t.vlen as usize)
            .map(|i| {
                let (name_off, value) = if t.kind == kind::ENUM {
                    btf.pair(&t, id, i)
                } else {
                    btf.enum64_member(&t, id, i)
                };
                (btf.name(name_off).to_string(), value)
            })
            .collect()
    }

    /// The argument types of a kernel function, looking in `module`'s BTF
    /// when the function is not in vmlinux. None when BTF does not know it.
    pub fn function_params(&self, name: &str, module: Option<&str>) -> Option<Signature> {
        if let Some(sig) = func_signature(self.view(), name) {
            return Some(sig);
        }
        let module = module?;
        let m = self.module(module)?;
        let mut sig = func_signature(View::new(&m, Some(&self.vmlinux)), name)?;
        sig.module = Some(module.to_string());
        Some(sig)
    }

    /// The argument types of a tracepoint (without the leading context
    /// pointer), from its `btf_trace_<event>` typedef. None when BTF lacks it,
    /// which also means tp_btf cannot attach to it.
    pub fn tracepoint_params(&self, event: &str) -> Option<Signature> {
        let btf = self.view();
        let (_, typedef) = btf.find(&format!("btf_trace_{event}"), kind::TYPEDEF)?;
        let ptr = btf.get(typedef.size_or_type)?;
        let proto_id = ptr.size_or_type;
        let mut sig = proto_signature(btf, proto_id)?;
        if !sig.params.is_empty() {
            sig.params.remove(0);
        }
        Some(sig)
    }
}

/// A function's parameter types and return type, as C spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub params: Vec<TypeName>,
    pub ret: TypeName,
    /// The module whose BTF describes it (None: vmlinux).
    pub module: Option<String>,
}

fn func_signature(btf: View<'_>, name: &str) -> Option<Signature> {
    let (_, func) = btf.find(name, kind::FUNC)?;
    proto_signature(btf, func.size_or_type)
}

fn proto_signature(btf: View<'_>, proto_id: u32) -> Option<Signature> {
    let proto = btf.get(proto_id)?;
    if proto.kind != kind::FUNC_PROTO {
        return None;
    }
    let params = (0..proto.vlen as usize)
        .map(|i| type_name(btf, btf.pair(&proto, proto_id, i).1, 0))
        .collect();
    Some(Signature {
        params,
        ret: type_name(btf, proto.size_or_type, 0),
        module: None,
    })
}

/// Spells a type like C does, dropping qualifiers: `struct sk_buff *`.
pub fn type_name(btf: View<'_>, id: u32, depth: u32) -> TypeName {
    if id == 0 {
        return "void".into();
    }
    if depth > 16 {
        return "?".into();
    }
    let Some(t): Option<RawType> = btf.get(id) else {
        return "?".into();
    };
    let named = |prefix: &str| {
        let n = btf.name(t.name_off);
        if prefix.is_empty() {
            n.to_string()
        } else {
            format!("{prefix} {n}")
        }
    };
    let inner = || type_name(btf, t.size_or_type, depth + 1);
    match t.kind {
        kind::PTR => format!("{} *", inner()),
        kind::CONST | kind::VOLATILE | kind::RESTRICT | kind::TYPE_TAG => inner(),
        kind::TYPEDEF | kind::INT => named(""),
        kind::STRUCT | kind::FWD => named("struct"),
        kind::UNION => named("union"),
        kind::ENUM | kind::ENUM64 => named("enum"),
        other => kind_name(other).into(),
    }
}

/// What a type of a kind nettrace does not spell prints as.
fn kind_name(k: u8) -> &'static str {
    match k {
        kind::ARRAY => "array",
        kind::FUNC => "func",
        kind::FUNC_PROTO => "func-proto",
        kind::VAR => "var",
        kind::DATASEC => "datasec",
        kind::FLOAT => "float",
        kind::DECL_TAG => "decl-tag",
        _ => "?",
    }
}

fn strip_reason_prefix(n: &str) -> &str {
    n.strip_prefix("SKB_DROP_REASON_")
        .or_else(|| n.strip_prefix("SKB_"))
        .unwrap_or(n)
}

/// Drop-reason names of one kernel, and the names of the reasons of the
/// TCP resets it sends (kept together: both are what a kernel calls its
/// reasons, and both travel to every consumer of the other).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropReasons {
    names: HashMap<u32, String>,
    rst: HashMap<u32, String>,
}

/// The drop-reason name rules use for "this kernel gives no drop reasons"
/// (before 5.17): a drop there can be told apart from another only by its
/// location and its packet's path.
pub const NO_REASONS: &str = "NONE";

/// The high bits of a drop reason name a subsystem (6.4+).
const SUBSYS_SHIFT: u32 = 16;

impl DropReasons {
    pub fn from_pairs<I: IntoIterator<Item = (u32, String)>>(pairs: I) -> DropReasons {
        DropReasons {
            names: pairs.into_iter().collect(),
            rst: HashMap::new(),
        }
    }

    /// With these reset-reason names (value, name).
    pub fn with_rst<I: IntoIterator<Item = (u32, String)>>(mut self, pairs: I) -> DropReasons {
        self.rst = pairs.into_iter().collect();
        self
    }

    /// Every reset reason (value, name): what a recording keeps.
    pub fn rst_pairs(&self) -> Vec<(u32, String)> {
        sorted_pairs(&self.rst)
    }

    /// A reset reason's name; an unknown value as `UNKNOWN_<n>`.
    pub fn rst_name(&self, value: u32) -> String {
        match self.rst.get(&value) {
            Some(n) => n.clone(),
            None => format!("UNKNOWN_{value}"),
        }
    }

    /// Every reset reason's name, sorted by value (the `MAX` sentinel excluded).
    pub fn rst_names(&self) -> Vec<(u32, &str)> {
        sorted_names(&self.rst)
    }

    pub fn rst_value_of(&self, name: &str) -> Option<u32> {
        value_named(&self.rst, name)
    }

    /// Every (value, name) including MAX: what a recording keeps.
    pub fn pairs(&self) -> Vec<(u32, String)> {
        sorted_pairs(&self.names)
    }

    /// Number of named reasons (0: the kernel has no drop reasons).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of an event's drop reason, or None when it has none or the
    /// kernel defines no reasons (before 5.17 the field is a meaningless 0).
    /// Every printer of a drop reason asks here.
    pub fn event_reason(&self, reason: Option<u32>) -> Option<String> {
        reason.filter(|_| !self.is_empty()).map(|r| self.name(r))
    }

    /// The reason's name; unknown values are shown as numbers, reasons of a
    /// subsystem (mac80211, openvswitch...) as `SUBSYS_<n>:<code>`.
    pub fn name(&self, value: u32) -> String {
        if let Some(n) = self.names.get(&value) {
            return n.clone();
        }
        if value >> SUBSYS_SHIFT != 0 {
            return format!(
                "SUBSYS_{}:{}",
                value >> SUBSYS_SHIFT,
                value & ((1 << SUBSYS_SHIFT) - 1)
            );
        }
        format!("UNKNOWN_{value}")
    }

    /// Every name, sorted by value (the `MAX` sentinel excluded).
    pub fn names(&self) -> Vec<(u32, &str)> {
        sorted_names(&self.names)
    }

    pub fn value_of(&self, name: &str) -> Option<u32> {
        value_named(&self.names, name)
    }

    /// The value a rule's `reason == NAME` matches: the kernel's. On a
    /// kernel without drop reasons (before 5.17) a drop's reason field
    /// reads 0, and `NONE` ([`NO_REASONS`]) matches it; no name does there
    /// but `NONE`, and `NONE` matches nothing where the kernel has reasons.
    /// (Not `NOT_SPECIFIED`: a rule that reads that name as "the kernel
    /// chose to give no reason here", such as a TCP function freeing a
    /// segment it handled, would call every drop of an old kernel there
    /// harmless.)
    pub fn rule_value_of(&self, name: &str) -> Option<u32> {
        if self.is_empty() {
            return (name == NO_REASONS).then_some(0);
        }
        if name == NO_REASONS {
            return None;
        }
        self.value_of(name)
    }
}

/// Every (value, name) of an enum's names, sorted by value.
fn sorted_pairs(names: &HashMap<u32, String>) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = names.iter().map(|(k, n)| (*k, n.clone())).collect();
    v.sort();
    v
}

/// Every name of an enum, sorted by value, without the `MAX` sentinel.
fn sorted_names(names: &HashMap<u32, String>) -> Vec<(u32, &str)> {
    let mut v: Vec<(u32, &str)> = names
        .iter()
        .filter(|(_, n)| n.as_str() != "MAX")
        .map(|(k, n)| (*k, n.as_str()))
        .collect();
    v.sort();
    v
}

fn value_named(names: &HashMap<u32, String>, name: &str) -> Option<u32> {
    names.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
}
