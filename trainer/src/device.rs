//! Where a job runs, and how fast that device can go.
//!
//! One trainer binary serves CPU and CUDA. It is built against LibTorch's CPU
//! libraries; when CUDA is asked for, LibTorch's CUDA library (`libtorch_cuda.so`) is
//! loaded at run time with `RTLD_GLOBAL`, and its static initialisers register the
//! CUDA backend before the first CUDA call (reference/libtorch.md, "GPU"). A machine
//! without that library gets an error saying what to install instead of a loader
//! crash at start.
//!
//! Where the library is looked for, in order:
//! 1. `$CROSSOVER_TORCH_LIB` (a folder holding `libtorch_cuda.so`; only there when set);
//! 2. the folder `just setup-cuda` recorded: `<cache>/torch-cuda-lib`;
//! 3. `/opt/torch/.venv/lib/python3.12/site-packages/torch/lib` (PyTorch on the GPU
//!    nodes this project is tested on).

use jobspec::{DeviceSpec, Precision};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::{Device, Kind};

pub use launcher::{CUDA_HELP, SYSTEM_TORCH_LIB, TORCH_LIB_ENV, recorded_folder, search_folders};
/// Environment variable overriding the device's peak FLOP/s (in TFLOP/s) for MFU.
pub const PEAK_TFLOPS_ENV: &str = "CROSSOVER_PEAK_TFLOPS";
const CUDA_LIBRARY: &str = launcher::CUDA_LIBRARY;

/// The device a job asks for, resolved on this machine. `auto` is CUDA device 0 when
/// LibTorch's CUDA library loads and sees a GPU, the CPU when this machine shows no
/// GPU, and an error with the loader's reason when it shows one that CUDA cannot use
/// (a 1B job must not train on the CPU for days by accident).
pub fn select(spec: DeviceSpec) -> Result<Device, String> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Auto => {
            let cuda = cuda_device(0);
            let visible = cuda.is_err().then(launcher::visible_gpu).flatten();
            resolve_auto(cuda, visible)
        }
        DeviceSpec::Cuda(index) => cuda_device(index),
    }
}

/// `device: auto` given what CUDA said and which GPU, if any, this machine shows.
pub fn resolve_auto(
    cuda: Result<Device, String>,
    visible: Option<String>,
) -> Result<Device, String> {
    match (cuda, visible) {
        (Ok(device), _) => Ok(device),
        (Err(_), None) => Ok(Device::Cpu),
        (Err(reason), Some(gpu)) => Err(format!(
            "device: auto sees a GPU here ({gpu}) but cannot use it, and will not fall back to the CPU silently: {reason}. Set `train.device: cpu` (or `--device cpu`) to train on the CPU on purpose"
        )),
    }
}

fn cuda_device(index: usize) -> Result<Device, String> {
    let library = load_cuda()?;
    let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    if count == 0 {
        return Err(format!(
            "CUDA was asked for and {} loaded, but LibTorch sees no CUDA device (CUDA_VISIBLE_DEVICES={}): check `nvidia-smi` and the driver, or use `device: cpu`",
            library.display(),
            std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into())
        ));
    }
    if index >= count {
        return Err(format!(
            "cuda:{index} was asked for but only {count} CUDA device(s) are visible (cuda:0..cuda:{})",
            count - 1
        ));
    }
    Ok(Device::Cuda(index))
}

/// The CUDA index of local rank `local_rank` when the process sees `visible` GPUs:
/// the only one when each rank is shown its own (Slurm's `--gpus-per-task=1`), else
/// the rank's own among all of the node's.
pub fn rank_gpu(local_rank: usize, visible: usize) -> Result<usize, String> {
    match visible {
        0 => Err("no CUDA device is visible to this rank".into()),
        1 => Ok(0),
        _ if local_rank < visible => Ok(local_rank),
        _ => Err(format!(
            "local rank {local_rank} needs a GPU of its own but this process sees {visible} (cuda:0..cuda:{}); give each rank one GPU or a node's ranks all of them",
            visible - 1
        )),
    }
}

/// Load `libtorch_cuda.so` once per process; the path it came from, or why not.
pub fn load_cuda() -> Result<&'static Path, String> {
    static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let loaded = LOADED.get_or_init(|| {
        if let Some(why) = std::env::var(launcher::UNUSABLE_ENV)
            .ok()
            .filter(|why| !why.is_empty())
        {
            return Err(format!(
                "CUDA was asked for but no LibTorch with CUDA here passed the launcher's checks: {why}"
            ));
        }
        let explicit = std::env::var_os(TORCH_LIB_ENV)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        let folders = search_folders(explicit, recorded_folder());
        let Some(library) = folders
            .iter()
            .map(|folder| folder.join(CUDA_LIBRARY))
            .find(|path| path.is_file())
        else {
            let looked: Vec<String> = folders
                .iter()
                .map(|folder| folder.display().to_string())
                .collect();
            return Err(format!(
                "CUDA was asked for but LibTorch's CUDA library ({CUDA_LIBRARY}) is not installed here (looked in {}): {CUDA_HELP}",
                looked.join(", ")
            ));
        };
        one_build(core_library().as_deref(), &library)?;
        open_global(&library).map_err(|message| {
            format!(
                "CUDA was asked for but {} does not load ({message}); it must come from PyTorch 2.11 with its CUDA libraries: {CUDA_HELP}",
                library.display()
            )
        })?;
        Ok(library)
    });
    loaded.as_deref().map_err(Clone::clone)
}

/// The LibTorch core library (`libtorch_cpu.so`) this process runs on, as mapped.
pub fn core_library() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    mapped_library(&maps, launcher::CORE_LIBRARY)
}

/// The file a library named `name` (`libtorch_cpu.so`) is mapped from, in the text
/// of /proc/self/maps (the kernel shows the path the loader opened, links resolved).
pub fn mapped_library(maps: &str, name: &str) -> Option<PathBuf> {
    maps.lines().find_map(|line| {
        let path = line.split_whitespace().nth(5)?;
        (Path::new(path).file_name()? == name).then(|| PathBuf::from(path))
    })
}

/// Refuse to load `cuda_library` unless the core library this process runs on
/// (`core`, from /proc/self/maps) is the very file beside it: LibTorch's CUDA part of
/// one build on the core of another loads, then fails where nobody can read why.
pub fn one_build(core: Option<&Path>, cuda_library: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let folder = cuda_library.parent().unwrap_or(Path::new("."));
    let beside = folder.join(launcher::CORE_LIBRARY);
    let identity = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|meta| (meta.dev(), meta.ino()))
    };
    let Some(core) = core else {
        // Not linked dynamically against LibTorch (cannot happen with tch's build):
        // nothing to mix.
        return Ok(());
    };
    if identity(core).is_some_and(|file| Some(file) == identity(&beside)) {
        return Ok(());
    }
    Err(format!(
        "CUDA was asked for but LibTorch's core library was loaded from {} while its CUDA library is {}: two LibTorch builds must not be mixed. Start jobs with `trainer` (it puts one torch/lib folder first on LD_LIBRARY_PATH; `trainer-worker` alone runs on the LibTorch it was built with), or run it with LD_LIBRARY_PATH={}",
        core.display(),
        cuda_library.display(),
        folder.display()
    ))
}

/// dlopen(path, RTLD_NOW | RTLD_GLOBAL), keeping the library for the whole process.
#[allow(unsafe_code)]
fn open_global(path: &Path) -> Result<(), String> {
    let name = CString::new(path.as_os_str().as_bytes()).map_err(|error| error.to_string())?;
    // SAFETY: `name` is a valid NUL-terminated path. The handle is never closed: the
    // library's registrations must live as long as the process.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if !handle.is_null() {
        return Ok(());
    }
    // SAFETY: dlerror returns null or a NUL-terminated string owned by the loader,
    // copied out at once.
    let message = unsafe {
        let text = libc::dlerror();
        if text.is_null() {
            "unknown loader error".to_owned()
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    };
    Err(message)
}

/// The element type of matmuls and attention for a precision.
pub fn compute_kind(precision: Precision) -> Kind {
    match precision {
        Precision::Bf16 => Kind::BFloat16,
        Precision::Auto | Precision::Fp32 => Kind::Float,
    }
}

/// Dense peak TFLOP/s of a GPU by its `nvidia-smi` name: bf16 tensor cores for bf16,
/// TF32 for fp32 (vendor data sheets, without sparsity). None when unknown.
///
/// Names are matched by whole words (split at spaces and dashes, `NVIDIA` dropped), the
/// longest entry first, so `L40` is not taken for `L4` nor `H200 NVL` for `H200`.
pub fn peak_tflops_for(name: &str, precision: Precision) -> Option<f64> {
    const TABLE: [(&str, f64); 15] = [
        ("GH200", 989.4),
        ("H200 NVL", 835.5),
        ("H200", 989.4),
        ("H100 PCIE", 756.5),
        ("H100 NVL", 835.5),
        ("H100", 989.4),
        ("B200", 2250.0),
        ("A100", 312.0),
        ("L40S", 362.05),
        ("L40", 181.05),
        ("A10G", 70.0),
        ("A10", 125.0),
        ("L4", 121.0),
        ("RTX 4090", 165.2),
        ("RTX 3090", 71.0),
    ];
    let words: Vec<String> = name
        .to_ascii_uppercase()
        .split([' ', '-', '_'])
        .filter(|word| !word.is_empty() && *word != "NVIDIA")
        .map(str::to_owned)
        .collect();
    let matches = |entry: &str| {
        let wanted: Vec<&str> = entry.split(' ').collect();
        words
            .windows(wanted.len())
            .any(|window| window.iter().zip(&wanted).all(|(word, want)| word == want))
    };
    let mut entries: Vec<&(&str, f64)> = TABLE.iter().collect();
    entries.sort_by_key(|(entry, _)| std::cmp::Reverse(entry.split(' ').count()));
    let bf16 = entries
        .into_iter()
        .find(|(entry, _)| matches(entry))
        .map(|&(_, tflops)| tflops)?;
    Some(match precision {
        Precision::Bf16 | Precision::Auto => bf16,
        Precision::Fp32 => bf16 / 2.0,
    })
}

/// The name `nvidia-smi` gives the GPU behind LibTorch's `cuda:index`, honouring
/// CUDA_VISIBLE_DEVICES (indices or GPU UUIDs, which `nvidia-smi -i` takes alike).
pub fn gpu_name(index: usize) -> Option<String> {
    let physical = match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(list) if !list.trim().is_empty() => list.split(',').nth(index)?.trim().to_owned(),
        _ => index.to_string(),
    };
    let output = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader", "-i"])
        .arg(physical)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// Peak FLOP/s used for MFU: `explicit` (TFLOP/s) or `$CROSSOVER_PEAK_TFLOPS` if set,
/// else the GPU's data-sheet figure; None on a CPU unless given.
pub fn peak_flops(device: Device, precision: Precision, explicit: Option<f64>) -> Option<f64> {
    let from_env = || {
        std::env::var(PEAK_TFLOPS_ENV)
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
    };
    let tflops = explicit.or_else(from_env).or_else(|| match device {
        Device::Cuda(index) => gpu_name(index).and_then(|name| peak_tflops_for(&name, precision)),
        _ => None,
    })?;
    (tflops > 0.0).then_some(tflops * 1e12)
}

/// A short description for logs: `cpu (2 threads)`, `cuda:0 NVIDIA H100 80GB HBM3`.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cuda(index) => format!(
            "cuda:{index} {}",
            gpu_name(index).unwrap_or_else(|| "(unknown GPU)".into())
        ),
        _ => format!("cpu ({} threads)", tch::get_num_threads()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_library_is_found_in_the_process_map() {
        let maps = "7f0000000000-7f0000001000 r-xp 00000000 fd:01 123 /usr/lib/libc.so.6\n\
7f0000002000-7f0000003000 r-xp 00000000 fd:01 456 /cache/libtorch/lib/libtorch_cpu.so\n\
7f0000004000-7f0000005000 rw-p 00000000 00:00 0 \n";
        assert_eq!(
            mapped_library(maps, "libtorch_cpu.so"),
            Some(PathBuf::from("/cache/libtorch/lib/libtorch_cpu.so"))
        );
        assert_eq!(mapped_library(maps, "libtorch_cuda.so"), None);
    }

    /// The CUDA library is loaded only beside the very core library in use; a link to
    /// that file counts as the same file.
    #[test]
    fn cuda_from_another_build_is_refused() {
        let folder = tempfile::tempdir().expect("temp dir");
        let ours = folder.path().join("ours");
        let other = folder.path().join("other");
        let linked = folder.path().join("linked");
        for lib in [&ours, &other, &linked] {
            std::fs::create_dir(lib).expect("folder");
            std::fs::write(lib.join("libtorch_cuda.so"), b"").expect("file");
        }
        std::fs::write(ours.join("libtorch_cpu.so"), b"core").expect("core");
        std::fs::write(other.join("libtorch_cpu.so"), b"core").expect("another core");
        std::os::unix::fs::symlink(ours.join("libtorch_cpu.so"), linked.join("libtorch_cpu.so"))
            .expect("link");
        let core = ours.join("libtorch_cpu.so");
        assert_eq!(
            one_build(Some(&core), &ours.join("libtorch_cuda.so")),
            Ok(())
        );
        assert_eq!(
            one_build(Some(&core), &linked.join("libtorch_cuda.so")),
            Ok(())
        );
        let error = one_build(Some(&core), &other.join("libtorch_cuda.so")).expect_err("mixed");
        assert!(
            error.contains("must not be mixed")
                && error.contains(&format!("LD_LIBRARY_PATH={}", other.display())),
            "{error}"
        );
        assert_eq!(one_build(None, &other.join("libtorch_cuda.so")), Ok(()));
    }

    #[test]
    fn peak_table() {
        let cases = [
            ("NVIDIA H100 80GB HBM3", Precision::Bf16, Some(989.4)),
            ("NVIDIA H100 PCIe", Precision::Bf16, Some(756.5)),
            ("NVIDIA H200", Precision::Bf16, Some(989.4)),
            ("NVIDIA H100 80GB HBM3", Precision::Fp32, Some(494.7)),
            ("NVIDIA A100-SXM4-80GB", Precision::Bf16, Some(312.0)),
            ("NVIDIA L4", Precision::Bf16, Some(121.0)),
            ("NVIDIA L40", Precision::Bf16, Some(181.05)),
            ("NVIDIA L40S", Precision::Bf16, Some(362.05)),
            ("NVIDIA H200 NVL", Precision::Bf16, Some(835.5)),
            ("NVIDIA H100 NVL", Precision::Bf16, Some(835.5)),
            ("NVIDIA GH200 480GB", Precision::Bf16, Some(989.4)),
            ("NVIDIA A10", Precision::Bf16, Some(125.0)),
            ("NVIDIA A10G", Precision::Bf16, Some(70.0)),
            ("NVIDIA GeForce RTX 4090", Precision::Bf16, Some(165.2)),
            ("Tesla T4", Precision::Bf16, None),
            ("NVIDIA H1000", Precision::Bf16, None),
        ];
        for (name, precision, expected) in cases {
            assert_eq!(peak_tflops_for(name, precision), expected, "{name}");
        }
    }

    /// `device: auto` falls back to the CPU only when no GPU is shown.
    #[test]
    fn auto_device_fails_loudly_when_a_gpu_is_shown() {
        let failed = || Err::<Device, String>("libtorch_cuda.so: cannot open".into());
        let gpu = || Some("CUDA_VISIBLE_DEVICES=0".to_owned());
        assert_eq!(resolve_auto(Ok(Device::Cuda(0)), None), Ok(Device::Cuda(0)));
        assert_eq!(resolve_auto(failed(), None), Ok(Device::Cpu));
        let error = resolve_auto(failed(), gpu()).expect_err("a shown GPU");
        assert!(
            error.contains("cannot open") && error.contains("device: cpu"),
            "{error}"
        );
    }

    #[test]
    fn each_rank_finds_its_gpu() {
        // (local rank, visible GPUs, index or error)
        let cases = [
            (0, 8, Some(0)),
            (5, 8, Some(5)),
            (5, 1, Some(0)),
            (0, 1, Some(0)),
            (3, 2, None),
            (0, 0, None),
        ];
        for (rank, visible, expected) in cases {
            assert_eq!(
                rank_gpu(rank, visible).ok(),
                expected,
                "rank {rank} of {visible}"
            );
        }
    }

    #[test]
    fn cpu_peak_only_when_given() {
        assert_eq!(
            peak_flops(Device::Cpu, Precision::Fp32, Some(1.5)),
            Some(1.5e12)
        );
        assert_eq!(peak_flops(Device::Cpu, Precision::Fp32, Some(0.0)), None);
    }
}
