//! The `trainer` launcher on this CPU machine (issue 28, items 1 and 2): which LibTorch
//! the worker runs on when a GPU is shown, and the errors when the node's PyTorch is
//! unusable or would mix with the build's. The PyTorch installs here are fakes with
//! links to the build's real libraries, a `version.py` as wheels write it, and an empty
//! `libtorch_cuda.so` (so loading CUDA fails the way a broken install does).

use e2e::{binary, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The build's LibTorch lib folder (`just setup` links it as .libtorch).
fn build_lib() -> PathBuf {
    std::fs::canonicalize(workspace_root().join(".libtorch/lib"))
        .expect(".libtorch: run `just setup`")
}

/// A fake PyTorch install under `root`: torch/version.py saying `version` and `cuda`,
/// torch/lib holding links to the build's libraries except those in `files` (written
/// with the given bytes). Returns its torch/lib.
fn fake_torch(root: &Path, version: &str, cuda: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let torch = root.join("torch");
    let lib = torch.join("lib");
    std::fs::create_dir_all(&lib).expect("torch/lib");
    std::fs::write(
        torch.join("version.py"),
        format!("__version__ = '{version}'\ncuda: Optional[str] = {cuda}\n"),
    )
    .expect("version.py");
    for entry in std::fs::read_dir(build_lib()).expect("build lib") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if files.iter().all(|(file, _)| name != *file) {
            std::os::unix::fs::symlink(entry.path(), lib.join(&name)).expect("link");
        }
    }
    for (file, bytes) in files {
        std::fs::write(lib.join(file), bytes).expect("file");
    }
    lib
}

/// `trainer bench` on `device` for one tiny step, with `env` set.
fn bench(device: &str, env: &[(&str, &Path)], gpu: &str) -> Output {
    let mut command = Command::new(binary("trainer"));
    command
        .args([
            "bench",
            "--device",
            device,
            "--presets",
            "tiny",
            "--steps",
            "1",
        ])
        .args([
            "--warmup",
            "0",
            "--repeat",
            "1",
            "--batch-size",
            "1",
            "--seq-len",
            "8",
        ])
        .args(["--threads", "1"])
        .env("CUDA_VISIBLE_DEVICES", gpu)
        .env_remove("CROSSOVER_TORCH_LIB")
        .env_remove("CROSSOVER_NVIDIA_DRIVER")
        .env_remove("LD_LIBRARY_PATH");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("trainer starts")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// With a GPU shown and a node PyTorch that passes its checks, every LibTorch library
/// comes from that folder: a broken libc10.so there stops the worker at load time,
/// which proves the folder went first on the library path; without a GPU shown the
/// same install is left alone and the build's LibTorch runs.
#[test]
fn a_gpu_node_runs_every_libtorch_library_from_one_folder() {
    let folder = tempfile::tempdir().expect("temp dir");
    let lib = fake_torch(
        folder.path(),
        "2.11.0+cu130",
        "'13.0'",
        &[("libc10.so", b""), ("libtorch_cuda.so", b"")],
    );
    let driver = Path::new("580.95.05");
    let env = [
        ("CROSSOVER_TORCH_LIB", lib.as_path()),
        ("CROSSOVER_NVIDIA_DRIVER", driver),
    ];
    let output = bench("cpu", &env, "0");
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("libc10.so"),
        "the node's libc10.so was not loaded: {error}"
    );
    let output = bench("cpu", &env, "");
    assert!(output.status.success(), "{}", stderr(&output));
}

/// A node PyTorch that passes its checks but whose CUDA library does not load: the
/// error names that file and the loader's reason (the core libraries came from the
/// same folder, so nothing was mixed).
#[test]
fn a_broken_cuda_library_is_named() {
    let folder = tempfile::tempdir().expect("temp dir");
    let lib = fake_torch(
        folder.path(),
        "2.11.0+cu130",
        "'13.0'",
        &[("libtorch_cuda.so", b"")],
    );
    let driver = Path::new("580.95.05");
    let env = [
        ("CROSSOVER_TORCH_LIB", lib.as_path()),
        ("CROSSOVER_NVIDIA_DRIVER", driver),
    ];
    let output = bench("cuda", &env, "0");
    assert!(!output.status.success());
    let error = stderr(&output);
    let cuda = lib.join("libtorch_cuda.so");
    assert!(
        error.contains(&format!("{} does not load", cuda.display())) && error.contains("too short"),
        "{error}"
    );
}

/// The checks' reasons reach the job: no driver answers here, a CPU-only PyTorch, an
/// old release. `device: cpu` still runs on such a node.
#[test]
fn an_unusable_node_pytorch_fails_cuda_jobs_with_the_reason() {
    let cases = [
        (
            "2.11.0+cu130",
            "'13.0'",
            None,
            "no NVIDIA driver answers here",
        ),
        (
            "2.11.0+cu130",
            "'13.0'",
            Some("570.86.15"),
            "needs NVIDIA driver >= 580.65.06",
        ),
        ("2.11.0+cpu", "None", Some("580.95.05"), "a CPU-only build"),
        (
            "2.10.0+cu128",
            "'12.8'",
            Some("580.95.05"),
            "built for LibTorch 2.11",
        ),
    ];
    for (version, cuda, driver, expected) in cases {
        let folder = tempfile::tempdir().expect("temp dir");
        let lib = fake_torch(folder.path(), version, cuda, &[("libtorch_cuda.so", b"")]);
        let driver = driver.map(PathBuf::from);
        let mut env = vec![("CROSSOVER_TORCH_LIB", lib.as_path())];
        if let Some(driver) = &driver {
            env.push(("CROSSOVER_NVIDIA_DRIVER", driver.as_path()));
        }
        let output = bench("cuda", &env, "0");
        assert!(!output.status.success(), "{version}");
        let error = stderr(&output);
        assert!(
            error.contains("passed the launcher's checks") && error.contains(expected),
            "{expected} in {error}"
        );
        let output = bench("cpu", &env, "0");
        assert!(output.status.success(), "{version}: {}", stderr(&output));
    }
}

/// The worker started without the launcher (or with a GPU hidden) runs on the build's
/// core libraries; it refuses a CUDA library from another build instead of mixing.
#[test]
fn a_cuda_library_from_another_build_is_refused() {
    let folder = tempfile::tempdir().expect("temp dir");
    let lib = fake_torch(
        folder.path(),
        "2.11.0+cu130",
        "'13.0'",
        &[
            ("libtorch_cpu.so", b"another build"),
            ("libtorch_cuda.so", b""),
        ],
    );
    let output = bench("cuda", &[("CROSSOVER_TORCH_LIB", lib.as_path())], "");
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("must not be mixed")
            && error.contains(&format!("LD_LIBRARY_PATH={}", lib.display())),
        "{error}"
    );
}
