//! Put LibTorch's library folder on the binaries' rpath so they run without
//! LD_LIBRARY_PATH. torch-sys publishes the folder through its `links = "tch"`
//! metadata as DEP_TCH_LIBTORCH_LIB (see README, "LibTorch").
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Resolve the .libtorch link so a binary keeps working from any folder.
        let resolved = std::fs::canonicalize(&lib).map_or(lib, |p| p.display().to_string());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{resolved}");
    }
}
