//! Records the LibTorch folder the worker is linked against (`$LIBTORCH`, set by
//! .cargo/config.toml to the .libtorch link `just setup` makes), resolved, so the
//! launcher can tell whether this machine still has it (a packed build copied to a
//! GPU node does not).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let lib = std::env::var_os("LIBTORCH")
        .map(std::path::PathBuf::from)
        .map(|root| std::fs::canonicalize(&root).unwrap_or(root).join("lib"))
        .map(|lib| lib.display().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=CROSSOVER_BUILD_LIBTORCH_LIB={lib}");
}
