//! Kernel facts read from BTF: drop-reason names, function and tracepoint
//! argument types. The running kernel's `/sys/kernel/btf/vmlinux` is the
//! default source; `--btf FILE` names another (any raw BTF blob, e.g. one
//! extracted with tools/extract-btf). Module BTF is loaded on demand.

use btf_rs::{Btf, BtfType, Type};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("no kernel BTF at {0}: this kernel was built without CONFIG_DEBUG_INFO_BTF; pass --btf FILE with the kernel's BTF")]
    Missing(PathBuf),
    #[error("cannot read BTF from {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

/// The kernel's BTF, plus module BTF loaded when a lookup needs it.
pub struct KernelBtf {
    vmlinux: Btf,
    path: PathBuf,
    module_dir: Option<PathBuf>,
    modules: std::cell::RefCell<HashMap<String, Option<std::rc::Rc<Btf>>>>,
}

/// The C spelling of a type, enough to compare argument types.
pub type TypeName = String;

impl KernelBtf {
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
            return Err(BtfError::Missing(path));
        }
        let vmlinux = Btf::from_file(&path).map_err(|e| BtfError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
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

    fn module(&self, name: &str) -> Option<std::rc::Rc<Btf>> {
        let dir = self.module_dir.as_ref()?;
        self.modules
            .borrow_mut()
            .entry(name.to_string())
            .or_insert_with(|| {
                Btf::from_split_file(dir.join(name), &self.vmlinux)
                    .ok()
                    .map(std::rc::Rc::new)
            })
            .clone()
    }

    /// `enum skb_drop_reason` as value → name (without the
    /// `SKB_DROP_REASON_` prefix). Empty when the kernel has no drop reasons.
    pub fn drop_reasons(&self) -> DropReasons {
        let mut names = HashMap::new();
        if let Ok(types) = self.vmlinux.resolve_types_by_name("skb_drop_reason") {
            for t in types {
                if let Type::Enum(e) = t {
                    for m in &e.members {
                        if let Ok(n) = self.vmlinux.resolve_name(m) {
                            names.insert(m.val(), strip_reason_prefix(&n).to_string());
                        }
                    }
                }
            }
        }
        DropReasons { names }
    }

    /// The argument types of a kernel function, looking in `module`'s BTF
    /// when the function is not in vmlinux. None when BTF does not know it.
    pub fn function_params(&self, name: &str, module: Option<&str>) -> Option<Signature> {
        if let Some(sig) = func_signature(&self.vmlinux, name) {
            return Some(sig);
        }
        let m = self.module(module?)?;
        func_signature(&m, name)
    }

    /// The argument types of a tracepoint (without the leading context
    /// pointer), from its `btf_trace_<event>` typedef. None when BTF lacks it,
    /// which also means tp_btf cannot attach to it.
    pub fn tracepoint_params(&self, event: &str) -> Option<Signature> {
        let btf = &self.vmlinux;
        let ty = btf
            .resolve_types_by_name(&format!("btf_trace_{event}"))
            .ok()?
            .into_iter()
            .find(|t| matches!(t, Type::Typedef(_)))?;
        let ptr = btf.resolve_chained_type(ty.as_btf_type()?).ok()?;
        let proto = btf.resolve_chained_type(ptr.as_btf_type()?).ok()?;
        let mut sig = proto_signature(btf, &proto)?;
        if !sig.params.is_empty() {
            sig.params.remove(0);
        }
        Some(sig)
    }

    /// Whether BTF knows a type of this name (any kind).
    pub fn has_type(&self, name: &str) -> bool {
        self.vmlinux.resolve_ids_by_name(name).is_ok()
    }
}

/// A function's parameter types and return type, as C spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub params: Vec<TypeName>,
    pub ret: TypeName,
}

fn func_signature(btf: &Btf, name: &str) -> Option<Signature> {
    let funcs = btf.resolve_types_by_name(name).ok()?;
    let func = funcs.into_iter().find(|t| matches!(t, Type::Func(_)))?;
    let proto = btf.resolve_chained_type(func.as_btf_type()?).ok()?;
    proto_signature(btf, &proto)
}

fn proto_signature(btf: &Btf, proto: &Type) -> Option<Signature> {
    let Type::FuncProto(fp) = proto else {
        return None;
    };
    let params = fp
        .parameters
        .iter()
        .map(|p| {
            p.get_type_id()
                .ok()
                .map(|id| type_name(btf, id, 0))
                .unwrap_or_default()
        })
        .collect();
    Some(Signature {
        params,
        ret: type_name(btf, fp.return_type_id(), 0),
    })
}

/// Spells a type like C does, dropping qualifiers: `struct sk_buff *`.
pub fn type_name(btf: &Btf, id: u32, depth: u32) -> TypeName {
    if id == 0 {
        return "void".into();
    }
    if depth > 16 {
        return "?".into();
    }
    let Ok(t) = btf.resolve_type_by_id(id) else {
        return "?".into();
    };
    let named = |prefix: &str, t: &dyn BtfType| {
        let n = btf.resolve_name(t).unwrap_or_default();
        if prefix.is_empty() {
            n
        } else {
            format!("{prefix} {n}")
        }
    };
    let inner = |t: &dyn BtfType| {
        t.get_type_id()
            .map(|i| type_name(btf, i, depth + 1))
            .unwrap_or_else(|_| "?".into())
    };
    match &t {
        Type::Ptr(p) => format!("{} *", inner(p)),
        Type::Const(c) => inner(c),
        Type::Volatile(v) => inner(v),
        Type::Restrict(r) => inner(r),
        Type::TypeTag(tt) => inner(tt),
        Type::Typedef(td) => named("", td),
        Type::Struct(s) => named("struct", s),
        Type::Union(u) => named("union", u),
        Type::Enum(e) => named("enum", e),
        Type::Enum64(e) => named("enum", e),
        Type::Int(i) => named("", i),
        Type::Fwd(f) => named("struct", f),
        Type::Void => "void".into(),
        other => other.name().to_string(),
    }
}

fn strip_reason_prefix(n: &str) -> &str {
    n.strip_prefix("SKB_DROP_REASON_")
        .or_else(|| n.strip_prefix("SKB_"))
        .unwrap_or(n)
}

/// Drop-reason names of one kernel.
#[derive(Debug, Clone, Default)]
pub struct DropReasons {
    names: HashMap<u32, String>,
}

/// The high bits of a drop reason name a subsystem (6.4+).
const SUBSYS_SHIFT: u32 = 16;

impl DropReasons {
    pub fn from_pairs<I: IntoIterator<Item = (u32, String)>>(pairs: I) -> DropReasons {
        DropReasons {
            names: pairs.into_iter().collect(),
        }
    }

    /// Every (value, name) including MAX: what a recording keeps.
    pub fn pairs(&self) -> Vec<(u32, String)> {
        let mut v: Vec<(u32, String)> = self.names.iter().map(|(k, n)| (*k, n.clone())).collect();
        v.sort();
        v
    }

    /// Number of named reasons (0: the kernel has no drop reasons).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
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
        let mut v: Vec<(u32, &str)> = self
            .names
            .iter()
            .filter(|(_, n)| n.as_str() != "MAX")
            .map(|(k, n)| (*k, n.as_str()))
            .collect();
        v.sort();
        v
    }

    pub fn value_of(&self, name: &str) -> Option<u32> {
        self.names.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
    }
}
