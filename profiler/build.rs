//! Builds the eBPF programs (`profiler-ebpf`) with nightly through aya-build and puts
//! the object in `OUT_DIR`. With `AYA_BUILD_SKIP=1` (machines without bpf-linker, e.g. a
//! docs-only build) it writes an empty object instead so the crate still compiles;
//! loading then fails with a clear error at run time.
use std::{env, fs, path::PathBuf};

fn main() -> anyhow::Result<()> {
    let out_dir =
        PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| anyhow::anyhow!("OUT_DIR not set"))?);
    let object = out_dir.join("lockprof-probes");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        fs::write(&object, [])?;
        fs::write(out_dir.join("lockprof-go-probes"), [])?;
        return Ok(());
    }
    let ebpf = aya_build::Package {
        name: "profiler-ebpf",
        root_dir: "../profiler-ebpf",
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::Nightly)
}
