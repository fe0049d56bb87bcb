//! Build step: probes.yaml → validated catalogue → BPF C (minijinja) →
//! BPF object and skeleton (clang via libbpf-cargo) → Rust probe table.
//! A catalogue error stops the build with a message naming the entry.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "src/catalogue/schema.rs"]
#[allow(dead_code)]
pub mod schema;
mod catalogue {
    pub use super::schema;
}
#[path = "src/codegen/render.rs"]
#[allow(dead_code)]
mod render;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let templates = root.join("bpf-templates");
    for f in ["probes.yaml", "bpf-templates"] {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    for entry in fs::read_dir(&templates)? {
        println!("cargo:rerun-if-changed={}", entry?.path().display());
    }

    let yaml = fs::read_to_string(root.join("probes.yaml"))?;
    let cat = schema::Catalogue::from_yaml(&yaml).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("invalid probe catalogue:\n  {}", list.join("\n  "))
    })?;

    let template = fs::read_to_string(templates.join("nettrace.bpf.c.j2"))?;
    fs::write(out.join("probe_table.rs"), render::render_rust(&cat))?;
    let clang = env::var("NETTRACE_CLANG").unwrap_or_else(|_| "clang".into());
    git_revision(&root);
    // The BPF objects' identity: their sources and compiler. `--version`
    // prints it; an unchanged one skips the compile (the build script
    // reruns for a new git revision too, and the compile takes minutes).
    let fingerprint = bpf_fingerprint(&root, &templates, &clang)?;
    println!("cargo:rustc-env=NETTRACE_BPF_FINGERPRINT={fingerprint:016x}");
    println!("cargo:rerun-if-env-changed=NETTRACE_CLANG");
    let stamp = out.join("bpf-objects.stamp");
    if fs::read_to_string(&stamp).ok() == Some(format!("{fingerprint:016x}")) {
        return Ok(());
    }
    let _ = fs::remove_file(&stamp);
    let shared = shared_objects(&out, fingerprint);
    if let Some(dir) = &shared {
        if restore_objects(dir, &out).is_ok() {
            fs::write(&stamp, format!("{fingerprint:016x}"))?;
            return Ok(());
        }
    }
    // (source, object name, extra clang arguments, with a skeleton)
    let mut jobs: Vec<(PathBuf, String, Vec<String>, bool)> = Vec::new();
    for object in &render::OBJECTS {
        let c_path = out.join(format!("{}.bpf.c", object.name));
        fs::write(&c_path, render::render_bpf(&cat, &template, object)?)?;
        jobs.push((c_path.clone(), object.name.to_string(), Vec::new(), false));
        if object.direct_variant {
            let direct = vec!["-DNT_DIRECT_LOADS=1".to_string()];
            jobs.push((c_path, format!("{}-direct", object.name), direct, false));
        }
    }
    let nr_probes = format!("-DNT_NR_PROBES={}", cat.probes.len());
    jobs.push((
        templates.join("layout.bpf.c"),
        "layout".into(),
        vec![nr_probes],
        true,
    ));
    jobs.push((
        templates.join("caps.bpf.c"),
        "caps".into(),
        Vec::new(),
        true,
    ));
    // The objects are independent and each clang is one thread: compile
    // them side by side (minutes one after another).
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(source, name, extra, skeleton)| {
                let (clang, templates, out) = (&clang, &templates, &out);
                scope.spawn(move || compile(clang, templates, source, out, name, extra, *skeleton))
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("a BPF compile panicked"))?
        })
    })?;
    if let Some(dir) = &shared {
        // A cache that cannot be written costs the next build a compile,
        // nothing else.
        let _ = publish_objects(&out, dir);
    }
    fs::write(&stamp, format!("{fingerprint:016x}"))?;
    Ok(())
}

/// Where the objects of `fingerprint` are shared by every run of this
/// build script in one target directory: `cargo clippy` and `cargo build`
/// run it with OUT_DIRs of their own, and the compile takes minutes.
/// OUT_DIR is `<target>/[<triple>/]<profile>/build/<package>-<hash>/out`.
fn shared_objects(out: &Path, fingerprint: u64) -> Option<PathBuf> {
    let target = out.ancestors().nth(4)?;
    Some(
        target
            .join("bpf-objects")
            .join(format!("{fingerprint:016x}")),
    )
}

/// The files the BPF compile leaves in OUT_DIR.
fn bpf_outputs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if [".bpf.o", ".bpf.c", ".skel.rs"]
            .iter()
            .any(|x| name.ends_with(x))
        {
            files.push(path);
        }
    }
    Ok(files)
}

/// Copies the compiled objects into the shared directory, whole or not at
/// all (written beside it, then renamed), and removes the objects of
/// other fingerprints (each set is tens of megabytes).
fn publish_objects(out: &Path, dir: &Path) -> anyhow::Result<()> {
    let parent = dir.parent().ok_or_else(|| anyhow::anyhow!("no parent"))?;
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    for f in bpf_outputs(out)? {
        fs::copy(&f, tmp.join(f.file_name().unwrap_or_default()))?;
    }
    // The skeletons name their object by OUT_DIR's absolute path.
    fs::write(tmp.join("out-dir"), out.to_string_lossy().as_bytes())?;
    if fs::rename(&tmp, dir).is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    for entry in fs::read_dir(parent)?.flatten() {
        if entry.path() != dir {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Copies shared objects into this OUT_DIR, pointing the skeletons at it.
fn restore_objects(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let origin = fs::read_to_string(dir.join("out-dir"))?;
    for f in bpf_outputs(dir)? {
        let to = out.join(f.file_name().unwrap_or_default());
        if f.to_string_lossy().ends_with(".skel.rs") {
            let text = fs::read_to_string(&f)?;
            fs::write(&to, text.replace(&origin, &out.to_string_lossy()))?;
        } else {
            fs::copy(&f, &to)?;
        }
    }
    Ok(())
}

/// FNV-1a over every BPF input: probes.yaml, the templates (sorted by
/// name) and the compiler's name and version.
fn bpf_fingerprint(
    root: &std::path::Path,
    templates: &std::path::Path,
    clang: &str,
) -> anyhow::Result<u64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(&fs::read(root.join("probes.yaml"))?);
    let mut files: Vec<PathBuf> = fs::read_dir(templates)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    for f in files {
        feed(f.to_string_lossy().as_bytes());
        feed(&fs::read(&f)?);
    }
    feed(clang.as_bytes());
    let version = std::process::Command::new(clang).arg("--version").output();
    if let Ok(v) = version {
        feed(&v.stdout);
    }
    Ok(h)
}

/// `NETTRACE_GIT_REV`: the commit built (a packager may set it; `unknown`
/// outside a git checkout), for `--version`.
fn git_revision(root: &std::path::Path) {
    println!("cargo:rerun-if-env-changed=NETTRACE_GIT_REV");
    let rev = env::var("NETTRACE_GIT_REV").ok().or_else(|| {
        let git = root.join(".git");
        println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
        let head = fs::read_to_string(git.join("HEAD")).ok()?;
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed={}", git.join(r).display());
            println!(
                "cargo:rerun-if-changed={}",
                git.join("packed-refs").display()
            );
        }
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=NETTRACE_GIT_REV={}",
        rev.unwrap_or_else(|| "unknown".into())
    );
}

fn hint(clang: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("compiling the BPF programs with {clang} failed: {e:#}\n(install clang: apt-get install clang llvm libelf-dev zlib1g-dev pkg-config)")
}

/// Compiles one BPF source; with `skeleton`, also generates its Rust
/// skeleton. The main object has none: it is opened at run time.
fn compile(
    clang: &str,
    templates: &std::path::Path,
    source: &std::path::Path,
    out: &std::path::Path,
    name: &str,
    extra: &[String],
    skeleton: bool,
) -> anyhow::Result<()> {
    let mut args = vec![
        "-g".to_string(),
        "-O2".into(),
        "-Wall".into(),
        "-Wno-unused-function".into(),
        format!("-I{}", templates.display()),
    ];
    args.extend(extra.iter().cloned());
    let mut b = libbpf_cargo::SkeletonBuilder::new();
    b.source(source)
        .obj(out.join(format!("{name}.bpf.o")))
        .clang(clang)
        .reference_obj(true)
        .clang_args(args);
    let r = if skeleton {
        b.build_and_generate(out.join(format!("{name}.skel.rs")))
    } else {
        b.build()
    };
    r.map_err(|e| hint(clang, e))
}
