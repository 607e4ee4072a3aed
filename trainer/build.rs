//! 1. Put LibTorch's library folder on the binaries' rpath so they run without
//!    LD_LIBRARY_PATH. torch-sys publishes the folder through its `links = "tch"`
//!    metadata as DEP_TCH_LIBTORCH_LIB (see docs/setup.md, "LibTorch").
//! 2. Compile csrc/fused_ops.cpp (fused AdamW and the foreach gradient norm, which tch
//!    does not expose) against the headers beside that folder.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=csrc/fused_ops.cpp");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not report LibTorch's library folder; run `just setup` first");
    };
    // Resolve the .libtorch link so a binary keeps working from any folder.
    let resolved = std::fs::canonicalize(&lib).unwrap_or_else(|_| PathBuf::from(&lib));
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", resolved.display());
    let include = resolved
        .parent()
        .map(|root| root.join("include"))
        .filter(|include| include.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no include/ folder beside {}; LibTorch's headers are needed",
                resolved.display()
            )
        });
    cc::Build::new()
        .cpp(true)
        .file("csrc/fused_ops.cpp")
        .include(&include)
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .opt_level(2)
        .compile("crossover_fused_ops");
}
