//! Which LibTorch the trainer runs on: one rule for every node (docs/gpu.md, "One
//! LibTorch per process").
//!
//! The worker (`trainer-worker`) is linked against LibTorch's core libraries
//! (`libtorch_cpu.so`, `libc10.so`) and finds them through its run path, which names
//! the folder `just setup` prepared on the build machine. CUDA comes from
//! `libtorch_cuda.so`, loaded at run time. Mixing the two (core libraries of one build,
//! CUDA library of another) loads, then fails in ways nobody can read, so:
//!
//! - When this process is shown a GPU, the CUDA LibTorch is the first torch/lib folder
//!   found (`$CROSSOVER_TORCH_LIB` alone when set; else the one `just setup-cuda`
//!   linked; else PyTorch under /opt/torch/.venv) that holds `libtorch_cuda.so` and
//!   passes [`check`]: PyTorch 2.11 (what tch 0.24 binds), built with CUDA, and a driver
//!   new enough for that CUDA. The worker then runs with that folder first on
//!   `LD_LIBRARY_PATH`, so every LibTorch library, core and CUDA, comes from it.
//! - Otherwise the worker uses the LibTorch it was built against; when this machine
//!   lacks it (a build copied to another machine), any torch/lib found with PyTorch 2.11
//!   stands in for it.
//! - When a folder fails its check, the worker is told why (`$CROSSOVER_CUDA_UNUSABLE`)
//!   so `device: auto` and `device: cuda` fail with that reason while `device: cpu`
//!   still runs.
//!
//! Every decision here is a pure function of what the launcher read, tested as tables.

use std::path::{Path, PathBuf};

/// Environment variable naming a torch/lib folder (the only one searched when set).
pub const TORCH_LIB_ENV: &str = "CROSSOVER_TORCH_LIB";
/// Set by the launcher for the worker: why no CUDA LibTorch was offered to it.
pub const UNUSABLE_ENV: &str = "CROSSOVER_CUDA_UNUSABLE";
/// Set by the launcher for the worker: the LibTorch folder it chose, or `build`.
pub const LAUNCHED_ENV: &str = "CROSSOVER_LIBTORCH";
/// States the NVIDIA driver version where it cannot be read (a container without
/// /proc/driver/nvidia and nvidia-smi).
pub const DRIVER_ENV: &str = "CROSSOVER_NVIDIA_DRIVER";
/// PyTorch's own lib folder on the project's GPU nodes.
pub const SYSTEM_TORCH_LIB: &str = "/opt/torch/.venv/lib/python3.12/site-packages/torch/lib";
/// The LibTorch release tch 0.24 binds (its C++ API changes between releases).
pub const LIBTORCH_RELEASE: &str = "2.11";
/// The worker binary, beside the launcher.
pub const WORKER: &str = "trainer-worker";
pub const CUDA_LIBRARY: &str = "libtorch_cuda.so";
pub const CORE_LIBRARY: &str = "libtorch_cpu.so";

/// What to do when no usable CUDA LibTorch is found, in every such error.
pub const CUDA_HELP: &str = "on a GPU node run `just setup-cuda` (it finds PyTorch 2.11 with CUDA under /opt/torch/.venv or installs torch==2.11.0 into ~/.cache/crossover/torch-cuda), or set CROSSOVER_TORCH_LIB to the torch/lib folder of a PyTorch 2.11 CUDA install; on a CPU-only machine use `device: cpu`";

/// The folder `just setup-cuda` links to the torch/lib folder it prepared.
pub fn recorded_folder() -> PathBuf {
    jobspec::cache_root().join("torch-cuda-lib")
}

/// Folders searched for a PyTorch torch/lib, in order: only `explicit` when given,
/// else the recorded folder, then the system one.
pub fn search_folders(explicit: Option<PathBuf>, recorded: PathBuf) -> Vec<PathBuf> {
    match explicit {
        Some(folder) => vec![folder],
        None => vec![recorded, PathBuf::from(SYSTEM_TORCH_LIB)],
    }
}

/// The GPU this process is shown, described for an error: a CUDA_VISIBLE_DEVICES list
/// (empty, `-1` or `NoDevFiles` hide every GPU), an NVIDIA device node, or a GPU
/// `nvidia-smi -L` lists (`smi` is only asked when needed).
pub fn gpu_shown(
    cuda_visible: Option<&str>,
    device_node: bool,
    smi: impl FnOnce() -> Option<String>,
) -> Option<String> {
    if let Some(list) = cuda_visible.map(str::trim) {
        return match list {
            "" | "-1" | "NoDevFiles" => None,
            list => Some(format!("CUDA_VISIBLE_DEVICES={list}")),
        };
    }
    if device_node {
        return Some("/dev/nvidia0".into());
    }
    smi().and_then(|text| {
        text.lines()
            .find(|line| line.starts_with("GPU"))
            .map(str::to_owned)
    })
}

/// `gpu_shown` on this process' environment and machine.
pub fn visible_gpu() -> Option<String> {
    let listed = || {
        let output = std::process::Command::new("nvidia-smi")
            .arg("-L")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        output.status.success().then_some(text)
    };
    gpu_shown(
        std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(),
        Path::new("/dev/nvidia0").exists(),
        listed,
    )
}

/// A PyTorch install's torch/lib folder and what its `torch/version.py` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    pub lib: PathBuf,
    /// `2.11.0+cu130`
    pub version: String,
    /// `13.0`; None for a CPU-only build.
    pub cuda: Option<String>,
    /// Whether `libtorch_cuda.so` is in `lib`.
    pub has_cuda_library: bool,
}

impl Install {
    /// Whether it is the LibTorch release the worker was built for (any patch, any
    /// CUDA or CPU build).
    pub fn is_release(&self) -> bool {
        self.version
            .strip_prefix(LIBTORCH_RELEASE)
            .is_some_and(|rest| rest.starts_with('.'))
    }
}

/// `__version__` and `cuda` from the text of torch/version.py.
pub fn parse_version_py(text: &str) -> Result<(String, Option<String>), String> {
    let value = |name: &str| -> Option<Option<String>> {
        text.lines().find_map(|line| {
            let (left, right) = line.split_once('=')?;
            // `cuda: Optional[str] = '13.0'` or `__version__ = '2.11.0'`.
            let key = left.split(':').next()?.trim();
            (key == name).then(|| {
                let right = right.trim();
                let quoted = right
                    .strip_prefix('\'')
                    .and_then(|rest| rest.strip_suffix('\''))
                    .or_else(|| right.strip_prefix('"').and_then(|r| r.strip_suffix('"')));
                quoted.map(str::to_owned)
            })
        })
    };
    let version = value("__version__")
        .flatten()
        .ok_or("no `__version__ = '...'` line")?;
    let cuda = value("cuda").flatten();
    Ok((version, cuda))
}

/// Read the install whose lib folder is `lib` (its version.py is `lib/../version.py`).
/// None when the folder holds no `libtorch_cpu.so`; an error when it does but its
/// version cannot be read.
pub fn read_install(lib: &Path) -> Option<Result<Install, String>> {
    if !lib.join(CORE_LIBRARY).exists() {
        return None;
    }
    let version_py = lib.join("..").join("version.py");
    Some(
        std::fs::read_to_string(&version_py)
            .map_err(|error| format!("{}: {error}", version_py.display()))
            .and_then(|text| {
                parse_version_py(&text).map_err(|why| format!("{}: {why}", version_py.display()))
            })
            .map(|(version, cuda)| Install {
                lib: lib.to_path_buf(),
                version,
                cuda,
                has_cuda_library: lib.join(CUDA_LIBRARY).exists(),
            }),
    )
}

/// An NVIDIA driver version (`580.65.06`) as numbers, compared part by part.
pub fn parse_driver(text: &str) -> Option<Vec<u32>> {
    // /proc/driver/nvidia/version: "NVRM version: NVIDIA UNIX x86_64 Kernel Module
    // 570.86.15  Fri ..."; nvidia-smi --query-gpu=driver_version: "570.86.15".
    text.split_whitespace().find_map(|word| {
        let parts: Vec<u32> = word
            .split('.')
            .map(|part| part.parse().ok())
            .collect::<Option<_>>()?;
        (parts.len() >= 2 && parts[0] >= 100).then_some(parts)
    })
}

/// The oldest driver that runs a CUDA major release (NVIDIA's minor-version
/// compatibility table: any 12.x on >= 525.60.13, any 13.x on >= 580.65.06).
pub fn min_driver(cuda_major: u32) -> Option<&'static str> {
    match cuda_major {
        11 => Some("450.80.02"),
        12 => Some("525.60.13"),
        13 => Some("580.65.06"),
        _ => None,
    }
}

/// A driver version as NVIDIA writes it (`580.65.06`: the parts after the first have
/// two digits).
fn dotted(parts: &[u32]) -> String {
    parts
        .iter()
        .enumerate()
        .map(|(index, part)| match index {
            0 => part.to_string(),
            _ => format!("{part:02}"),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether `install` can give this node CUDA: PyTorch 2.11, a CUDA build with
/// `libtorch_cuda.so`, and `driver` (None: none answered) new enough for its CUDA.
pub fn check(install: &Install, driver: Option<&[u32]>) -> Result<(), String> {
    let lib = install.lib.display();
    let version = &install.version;
    if !install.is_release() {
        return Err(format!(
            "{lib} is PyTorch {version}, but this trainer is built for LibTorch {LIBTORCH_RELEASE} (tch 0.24 binds one release): install torch=={LIBTORCH_RELEASE}.0 (`just setup-cuda` does) or point {TORCH_LIB_ENV} at the torch/lib of one"
        ));
    }
    let Some(cuda) = &install.cuda else {
        return Err(format!(
            "{lib} is PyTorch {version}, a CPU-only build: install a CUDA build of torch=={LIBTORCH_RELEASE}.0 (`just setup-cuda`; PyPI's Linux wheel is CUDA 13)"
        ));
    };
    if !install.has_cuda_library {
        return Err(format!(
            "{lib} is PyTorch {version} (CUDA {cuda}) but holds no {CUDA_LIBRARY}: reinstall it"
        ));
    }
    let Some(driver) = driver else {
        return Err(format!(
            "no NVIDIA driver answers here (/proc/driver/nvidia/version, nvidia-smi), so CUDA {cuda} cannot run: check the node's driver, or state its version in ${DRIVER_ENV} when a container hides it"
        ));
    };
    let major = cuda
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok());
    let Some(minimum) = major.and_then(min_driver) else {
        return Err(format!(
            "{lib} is PyTorch {version} built for CUDA {cuda}, which this launcher does not know the driver needs of: use a CUDA 12 or 13 build"
        ));
    };
    let needed = parse_driver(minimum).unwrap_or_default();
    if driver < needed.as_slice() {
        return Err(format!(
            "{lib} is PyTorch {version} built for CUDA {cuda}, which needs NVIDIA driver >= {minimum}; this node's driver is {}: ask for a newer driver, or install a PyTorch {LIBTORCH_RELEASE} built for an older CUDA (e.g. from https://download.pytorch.org/whl/cu126) and point {TORCH_LIB_ENV} at its torch/lib",
            dotted(driver)
        ));
    }
    Ok(())
}

/// How the worker is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The torch/lib put first on `LD_LIBRARY_PATH` (and given as
    /// `$CROSSOVER_TORCH_LIB`); None: the worker's own (build) LibTorch.
    pub lib: Option<PathBuf>,
    /// Why CUDA is not offered, when a GPU is shown and a torch/lib was found but
    /// failed its check.
    pub unusable: Option<String>,
}

/// The decision. `gpu`: the GPU this process is shown; `installs`: what each search
/// folder holds, in order (None: no LibTorch there); `driver`: the driver version, if
/// one answers; `build_present`: whether the LibTorch the worker was linked against
/// is on this machine.
pub fn choose(
    gpu: Option<&str>,
    installs: &[(PathBuf, Option<Result<Install, String>>)],
    driver: Option<&[u32]>,
    build_present: bool,
) -> Result<Launch, String> {
    let mut reasons = Vec::new();
    if gpu.is_some() {
        for (folder, install) in installs {
            match install {
                None => {}
                Some(Err(why)) => reasons.push(why.clone()),
                Some(Ok(install)) => match check(install, driver) {
                    Ok(()) => {
                        return Ok(Launch {
                            lib: Some(folder.clone()),
                            unusable: None,
                        });
                    }
                    Err(why) => reasons.push(why),
                },
            }
        }
    }
    let unusable = (!reasons.is_empty()).then(|| reasons.join("; "));
    if build_present {
        return Ok(Launch {
            lib: None,
            unusable,
        });
    }
    // A build copied to a machine without its LibTorch: any 2.11 install will do for
    // the core libraries (CUDA stays off unless it passed above).
    let stand_in = installs.iter().find_map(|(folder, install)| match install {
        Some(Ok(install)) if install.is_release() => Some(folder),
        _ => None,
    });
    match stand_in {
        Some(folder) => Ok(Launch {
            lib: Some(folder.clone()),
            unusable: unusable.or_else(|| gpu.map(|_| "no CUDA LibTorch passed its checks".into())),
        }),
        None => {
            let looked: Vec<String> = installs
                .iter()
                .map(|(folder, _)| folder.display().to_string())
                .collect();
            Err(format!(
                "LibTorch {LIBTORCH_RELEASE} is not on this machine: the trainer was built against a LibTorch that is not here, and no PyTorch {LIBTORCH_RELEASE} was found in {}. Run `just setup` (it prepares LibTorch and builds here), or `just setup-cuda` on a GPU node, or set {TORCH_LIB_ENV} to the torch/lib folder of a PyTorch {LIBTORCH_RELEASE} install",
                looked.join(", ")
            ))
        }
    }
}

/// The LibTorch lib folder the worker was linked against (build.rs).
pub const BUILD_LIB: &str = env!("CROSSOVER_BUILD_LIBTORCH_LIB");

/// What the launcher reads from this machine to decide.
#[derive(Clone, Debug)]
pub struct Facts {
    pub gpu: Option<String>,
    pub installs: Vec<(PathBuf, Option<Result<Install, String>>)>,
    pub driver: Option<Vec<u32>>,
    pub build_present: bool,
}

impl Facts {
    pub fn read() -> Facts {
        let explicit = std::env::var_os(TORCH_LIB_ENV)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        let installs = search_folders(explicit, recorded_folder())
            .into_iter()
            .map(|folder| {
                let install = read_install(&folder);
                (folder, install)
            })
            .collect();
        let gpu = visible_gpu();
        let driver = gpu.as_ref().and_then(|_| driver_version());
        Facts {
            gpu,
            installs,
            driver,
            build_present: Path::new(BUILD_LIB).join(CORE_LIBRARY).exists(),
        }
    }

    pub fn decide(&self) -> Result<Launch, String> {
        choose(
            self.gpu.as_deref(),
            &self.installs,
            self.driver.as_deref(),
            self.build_present,
        )
    }

    /// What `trainer libtorch` prints: what was found and what was chosen, and why.
    pub fn report(&self) -> String {
        let mut lines = vec![format!(
            "GPU shown: {}",
            self.gpu.as_deref().unwrap_or("none")
        )];
        lines.push(format!(
            "NVIDIA driver: {}",
            self.driver
                .as_deref()
                .map_or_else(|| "none answers".into(), dotted)
        ));
        lines.push(format!(
            "build's LibTorch: {BUILD_LIB} ({})",
            if self.build_present {
                "present"
            } else {
                "not on this machine"
            }
        ));
        for (folder, install) in &self.installs {
            let what = match install {
                None => "no LibTorch there".to_owned(),
                Some(Err(why)) => why.clone(),
                Some(Ok(install)) => {
                    let verdict = match check(install, self.driver.as_deref()) {
                        Ok(()) => "usable for CUDA".to_owned(),
                        Err(why) => format!("not usable for CUDA: {why}"),
                    };
                    format!(
                        "PyTorch {} (CUDA {}): {verdict}",
                        install.version,
                        install.cuda.as_deref().unwrap_or("none")
                    )
                }
            };
            lines.push(format!("candidate {}: {what}", folder.display()));
        }
        lines.push(match self.decide() {
            Ok(Launch { lib: Some(lib), .. }) => format!(
                "chosen: every LibTorch library from {} (first on LD_LIBRARY_PATH)",
                lib.display()
            ),
            Ok(Launch { lib: None, .. }) if self.gpu.is_some() => {
                format!("chosen: the build's LibTorch ({BUILD_LIB}); CUDA jobs cannot run here")
            }
            Ok(Launch { lib: None, .. }) => format!("chosen: the build's LibTorch ({BUILD_LIB})"),
            Err(why) => format!("chosen: nothing: {why}"),
        });
        lines.join("\n")
    }
}

/// The NVIDIA driver's version: `$CROSSOVER_NVIDIA_DRIVER`, the kernel module's
/// /proc/driver/nvidia/version, or `nvidia-smi`.
fn driver_version() -> Option<Vec<u32>> {
    if let Ok(stated) = std::env::var(DRIVER_ENV) {
        return parse_driver(&stated);
    }
    if let Some(version) = std::fs::read_to_string("/proc/driver/nvidia/version")
        .ok()
        .and_then(|text| parse_driver(&text))
    {
        return Some(version);
    }
    let output = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=driver_version", "--format=csv,noheader"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| parse_driver(&String::from_utf8_lossy(&output.stdout)))
        .flatten()
}

/// `LD_LIBRARY_PATH` with `first` in front of what it held.
pub fn library_path(first: &Path, current: Option<&str>) -> String {
    match current.filter(|value| !value.is_empty()) {
        Some(rest) => format!("{}:{rest}", first.display()),
        None => first.display().to_string(),
    }
}

#[cfg(test)]
mod tests;
