//! Build step: probes.yaml → validated catalogue → BPF C (minijinja) →
//! BPF object and skeleton (clang via libbpf-cargo) → Rust probe table.
//! A catalogue error stops the build with a message naming the entry.

use std::env;
use std::fs;
use std::path::PathBuf;

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
    for object in &render::OBJECTS {
        let c_path = out.join(format!("{}.bpf.c", object.name));
        fs::write(&c_path, render::render_bpf(&cat, &template, object)?)?;
        compile(&clang, &templates, &c_path, &out, object.name, &[], false)?;
        if object.direct_variant {
            let name = format!("{}-direct", object.name);
            let direct = ["-DNT_DIRECT_LOADS=1".to_string()];
            compile(&clang, &templates, &c_path, &out, &name, &direct, false)?;
        }
    }
    let nr_probes = format!("-DNT_NR_PROBES={}", cat.probes.len());
    let layout = templates.join("layout.bpf.c");
    compile(
        &clang,
        &templates,
        &layout,
        &out,
        "layout",
        &[nr_probes],
        true,
    )?;
    let caps = templates.join("caps.bpf.c");
    compile(&clang, &templates, &caps, &out, "caps", &[], true)?;
    Ok(())
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
