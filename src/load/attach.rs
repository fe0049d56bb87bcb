//! Opening, configuring, loading and attaching the generated BPF object
//! according to a plan. Everything not in the plan is switched off before
//! load, so one program this kernel refuses cannot fail the others. Links
//! are kept in one vector: dropping the session detaches everything at once.

use super::plan::{Decision, Mechanism, SkipReason};
use crate::catalogue::table::{ProbeDef, PROBES};
use crate::codegen::render::prog_name;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags};
use std::collections::HashMap;
use std::mem::MaybeUninit;

pub mod skel {
    #![allow(
        clippy::all,
        clippy::pedantic,
        dead_code,
        unused_imports,
        non_snake_case,
        non_camel_case_types
    )]
    include!(concat!(env!("OUT_DIR"), "/nettrace.skel.rs"));
}

pub use skel::types::{nt_config, nt_event, nt_filter};

/// One probe to load, as planned.
#[derive(Debug, Clone)]
pub struct PlannedProbe {
    pub probe: &'static ProbeDef,
    pub decision: Decision,
    /// Load the exit program too (return values wanted).
    pub with_exit: bool,
}

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
    pub skel: skel::NettraceSkel<'static>,
    links: Vec<Link>,
    pub report: AttachReport,
}

/// Run-wide settings written to .rodata before load.
pub struct LoadSettings {
    pub filter: nt_filter,
    pub config: nt_config,
    /// Kernel BTF for CO-RE relocations when not /sys/kernel/btf/vmlinux.
    pub btf_path: Option<std::path::PathBuf>,
}

fn set_rodata(open: &mut skel::OpenNettraceSkel<'static>, settings: &LoadSettings, ret_on: &[u8]) {
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .expect("the BPF object has a .rodata section");
    rodata.FILTER = settings.filter;
    rodata.CONFIG = settings.config;
    for (slot, v) in rodata.RET_ON.iter_mut().zip(ret_on) {
        *slot = *v;
    }
}

/// Loads the object with the planned programs and attaches them.
pub fn load(plan: &[PlannedProbe], settings: &LoadSettings) -> anyhow::Result<Session> {
    // The skeleton borrows its object storage for its whole life; one
    // session per run, so the storage is simply leaked.
    let storage: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
        Box::leak(Box::new(MaybeUninit::uninit()));
    let btf_path = settings
        .btf_path
        .as_ref()
        .map(|p| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()))
        .transpose()?;
    let opts = libbpf_sys::bpf_object_open_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as libbpf_sys::size_t,
        btf_custom_path: btf_path.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        ..Default::default()
    };
    let mut open = skel::NettraceSkelBuilder::default().open_opts(opts, storage)?;

    // program name -> attach target (None: the target is given at attach)
    let mut wanted: HashMap<String, Option<String>> = HashMap::new();
    let mut ret_on = vec![0u8; PROBES.len()];
    for p in plan {
        let Decision::Attach {
            mechanism,
            target,
            variant,
        } = &p.decision
        else {
            continue;
        };
        let preset =
            matches!(mechanism, Mechanism::Fentry | Mechanism::TpBtf).then(|| target.clone());
        wanted.insert(
            prog_name(mechanism.entry_prefix(), p.probe.name, *variant),
            preset.clone(),
        );
        if p.with_exit {
            if let Some(prefix) = mechanism.exit_prefix() {
                wanted.insert(prog_name(prefix, p.probe.name, *variant), preset);
                ret_on[p.probe.id as usize] = 1;
            }
        }
    }
    set_rodata(&mut open, settings, &ret_on);
    for mut prog in open.open_object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        match wanted.get(&name) {
            Some(target) => {
                prog.set_autoload(true);
                if let Some(t) = target {
                    prog.set_attach_target(0, Some(t.clone()))?;
                }
            }
            None => prog.set_autoload(false),
        }
    }
    let skel = open.load()?;

    let mut links = Vec::new();
    let mut report = AttachReport::default();
    {
        let progs: HashMap<String, libbpf_rs::ProgramMut<'_>> = skel
            .object()
            .progs_mut()
            .filter(|p| wanted.contains_key(p.name().to_string_lossy().as_ref()))
            .map(|p| (p.name().to_string_lossy().into_owned(), p))
            .collect();
        for p in plan {
            let (mechanism, target, variant) = match &p.decision {
                Decision::Attach {
                    mechanism,
                    target,
                    variant,
                } => (*mechanism, target.as_str(), *variant),
                Decision::Skip(r) => {
                    report.skipped.push((p.probe.id, r.clone()));
                    continue;
                }
            };
            let attach_one = |prefix: &str, ret: bool| -> Result<Link, String> {
                let name = prog_name(prefix, p.probe.name, variant);
                let prog = progs
                    .get(&name)
                    .ok_or_else(|| format!("program {name} missing"))?;
                let r = match mechanism {
                    Mechanism::Fentry | Mechanism::TpBtf => prog.attach(),
                    Mechanism::Kprobe => prog.attach_kprobe(ret, target),
                    Mechanism::RawTp => prog.attach_raw_tracepoint(target),
                };
                r.map_err(|e| {
                    let s = e.to_string();
                    format!(
                        "{} attach failed: {}",
                        mechanism,
                        s.lines().next().unwrap_or(&s)
                    )
                })
            };
            let mut result = attach_one(mechanism.entry_prefix(), false).map(|l| vec![l]);
            if let (Ok(ls), true, Some(prefix)) =
                (&mut result, p.with_exit, mechanism.exit_prefix())
            {
                match attach_one(prefix, true) {
                    Ok(l) => ls.push(l),
                    Err(e) => result = Err(e),
                }
            }
            match result {
                Ok(ls) => {
                    links.extend(ls);
                    report.attached.push((p.probe.id, mechanism));
                }
                Err(e) => report.skipped.push((p.probe.id, SkipReason::Mechanism(e))),
            }
        }
    }
    Ok(Session {
        skel,
        links,
        report,
    })
}

impl Session {
    /// Events the ring buffer had no room for, summed over CPUs.
    pub fn lost_events(&self) -> u64 {
        let key = 0u32.to_ne_bytes();
        match self.skel.maps.lost.lookup_percpu(&key, MapFlags::ANY) {
            Ok(Some(values)) => values
                .iter()
                .filter_map(|v| {
                    v.get(..8)
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
        let frames = match self.skel.maps.stacks.lookup(&key, MapFlags::ANY) {
            Ok(Some(bytes)) => bytes
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                .take_while(|a| *a != 0)
                .collect(),
            _ => Vec::new(),
        };
        let _ = self.skel.maps.stacks.delete(&key);
        frames
    }

    pub fn links(&self) -> usize {
        self.links.len()
    }
}
