//! 1. Put LibTorch's library folder on the binaries' rpath so they run without
//!    LD_LIBRARY_PATH. torch-sys publishes the folder through its `links = "tch"`
//!    metadata as DEP_TCH_LIBTORCH_LIB (see docs/setup.md, "LibTorch").
//! 2. Compile csrc/fused_ops.cpp (fused AdamW and the foreach gradient norm, which tch
//!    does not expose) and csrc/dist.cpp (c10d collectives for data parallelism)
//!    against the headers beside that folder.
//! 3. Compile dist.cpp's ProcessGroupNCCL part only when `$CROSSOVER_NCCL_INCLUDE`
//!    names a folder with nccl.h and the CUDA headers are found too (in the folders
//!    of `$CROSSOVER_CUDA_INCLUDE`, else `$CUDA_HOME/include`, else
//!    /usr/local/cuda/include). ProcessGroupNCCL.hpp needs both and its sizes depend
//!    on them, so they must be those LibTorch was built with: for the torch 2.11 cu130
//!    wheel, the nvidia-nccl-cu13 wheel's include/ and the CUDA 13.0 ones
//!    (nvidia/cu13/include, with the nvidia-cuda-crt and nvidia-cuda-cccl 13.0
//!    wheels). Nothing links libtorch_cuda.so either way.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=csrc/fused_ops.cpp");
    println!("cargo:rerun-if-changed=csrc/dist.cpp");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    for variable in [NCCL_INCLUDE_ENV, CUDA_INCLUDE_ENV, "CUDA_HOME"] {
        println!("cargo:rerun-if-env-changed={variable}");
    }
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
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/fused_ops.cpp")
        .file("csrc/dist.cpp")
        .include(&include);
    if let Some(folders) = nccl_includes(&include) {
        build.define("CROSSOVER_WITH_NCCL", None);
        build.define("USE_C10D_NCCL", None);
        for folder in folders {
            build.include(folder);
        }
    }
    build
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .opt_level(2)
        .compile("crossover_csrc");
}

/// Folder holding nccl.h, for the NCCL process group.
const NCCL_INCLUDE_ENV: &str = "CROSSOVER_NCCL_INCLUDE";
/// Folders (a PATH-style list) holding the CUDA headers, when not `$CUDA_HOME/include`.
const CUDA_INCLUDE_ENV: &str = "CROSSOVER_CUDA_INCLUDE";
/// The CUDA headers ProcessGroupNCCL.hpp reaches (through ATen/cuda/CUDAContext.h):
/// the runtime and its crt/ part, CCCL's nv/target, cuBLAS, cuSPARSE, cuSOLVER.
const CUDA_HEADERS: [&str; 7] = [
    "cuda_runtime_api.h",
    "crt/host_config.h",
    "nv/target",
    "cublas_v2.h",
    "cublasLt.h",
    "cusparse.h",
    "cusolverDn.h",
];

/// The extra include folders of dist.cpp's NCCL part (nccl.h's, the CUDA ones, and
/// LibTorch's C++ API folder, which c10d's logger.hpp needs) when nccl.h was asked
/// for and every header is there; else None, with a warning if it was asked for.
fn nccl_includes(libtorch_include: &Path) -> Option<Vec<PathBuf>> {
    let nccl = PathBuf::from(std::env::var_os(NCCL_INCLUDE_ENV).filter(|value| !value.is_empty())?);
    if !nccl.join("nccl.h").is_file() {
        println!(
            "cargo:warning={NCCL_INCLUDE_ENV}={} holds no nccl.h; building without the NCCL process group",
            nccl.display()
        );
        return None;
    }
    let cuda: Vec<PathBuf> =
        match std::env::var_os(CUDA_INCLUDE_ENV).filter(|value| !value.is_empty()) {
            Some(list) => std::env::split_paths(&list).collect(),
            None => [
                std::env::var_os("CUDA_HOME").map(|home| Path::new(&home).join("include")),
                Some(PathBuf::from("/usr/local/cuda/include")),
            ]
            .into_iter()
            .flatten()
            .take(1)
            .collect(),
        };
    let missing: Vec<&str> = CUDA_HEADERS
        .into_iter()
        .filter(|header| !cuda.iter().any(|folder| folder.join(header).exists()))
        .collect();
    if !missing.is_empty() {
        let looked: Vec<String> = cuda
            .iter()
            .map(|folder| folder.display().to_string())
            .collect();
        println!(
            "cargo:warning=nccl.h found in {} but not {} in [{}] (set {CUDA_INCLUDE_ENV}); building without the NCCL process group",
            nccl.display(),
            missing.join(", "),
            looked.join(", ")
        );
        return None;
    }
    let mut folders = vec![nccl];
    folders.extend(cuda);
    folders.push(libtorch_include.join("torch/csrc/api/include"));
    Some(folders)
}
