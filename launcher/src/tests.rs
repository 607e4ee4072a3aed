use super::*;

fn install(version: &str, cuda: Option<&str>, has_cuda_library: bool) -> Install {
    Install {
        lib: PathBuf::from("/node/torch/lib"),
        version: version.into(),
        cuda: cuda.map(str::to_owned),
        has_cuda_library,
    }
}

#[test]
fn explicit_folder_is_the_only_one_searched() {
    let recorded = PathBuf::from("/cache/torch-cuda-lib");
    assert_eq!(
        search_folders(Some(PathBuf::from("/x")), recorded.clone()),
        [PathBuf::from("/x")]
    );
    assert_eq!(
        search_folders(None, recorded.clone()),
        [recorded, PathBuf::from(SYSTEM_TORCH_LIB)]
    );
}

#[test]
fn which_gpu_is_shown() {
    let smi_gpu = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)\n";
    // (CUDA_VISIBLE_DEVICES, /dev/nvidia0, nvidia-smi -L, what is shown)
    type Case<'a> = (Option<&'a str>, bool, Option<&'a str>, Option<&'a str>);
    let cases: [Case; 9] = [
        (None, false, None, None),
        (
            None,
            false,
            Some(smi_gpu),
            Some("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)"),
        ),
        (None, false, Some("No devices were found\n"), None),
        (None, true, None, Some("/dev/nvidia0")),
        (Some("0,1"), false, None, Some("CUDA_VISIBLE_DEVICES=0,1")),
        (
            Some("GPU-1234"),
            false,
            None,
            Some("CUDA_VISIBLE_DEVICES=GPU-1234"),
        ),
        (Some(""), true, Some(smi_gpu), None),
        (Some("-1"), true, Some(smi_gpu), None),
        (Some("NoDevFiles"), true, Some(smi_gpu), None),
    ];
    for (visible, node, smi, shown) in cases {
        assert_eq!(
            gpu_shown(visible, node, || smi.map(str::to_owned)).as_deref(),
            shown,
            "{visible:?} {node} {smi:?}"
        );
    }
}

#[test]
fn version_py_of_real_wheels() {
    let cu130 = "from typing import Optional\n__version__ = '2.11.0+cu130'\ndebug = False\ncuda: Optional[str] = '13.0'\nhip: Optional[str] = None\n";
    assert_eq!(
        parse_version_py(cu130),
        Ok(("2.11.0+cu130".into(), Some("13.0".into())))
    );
    let cpu = "__version__ = \"2.11.0+cpu\"\ncuda: Optional[str] = None\n";
    assert_eq!(parse_version_py(cpu), Ok(("2.11.0+cpu".into(), None)));
    // Older wheels wrote `cuda = '12.1'` without the annotation.
    let old = "__version__ = '2.1.0'\ncuda = '12.1'\n";
    assert_eq!(
        parse_version_py(old),
        Ok(("2.1.0".into(), Some("12.1".into())))
    );
    assert!(parse_version_py("debug = False\n").is_err());
}

#[test]
fn driver_versions_as_the_driver_prints_them() {
    let proc_text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.86.15  Fri Jan 10 2025\nGCC version:  gcc version 12.3.0\n";
    assert_eq!(parse_driver(proc_text), Some(vec![570, 86, 15]));
    let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build";
    assert_eq!(parse_driver(open), Some(vec![580, 65, 6]));
    assert_eq!(parse_driver("550.54\n"), Some(vec![550, 54]));
    assert_eq!(parse_driver("no driver"), None);
    assert_eq!(min_driver(13), Some("580.65.06"));
    assert_eq!(min_driver(12), Some("525.60.13"));
    assert_eq!(min_driver(10), None);
    assert_eq!(dotted(&[580, 65, 6]), "580.65.06");
    assert_eq!(dotted(&[550, 54]), "550.54");
}

#[test]
fn each_check_names_what_to_install() {
    let new_driver = [580, 95, 5];
    let old_driver = [570, 86, 15];
    type Case<'a> = (Install, Option<&'a [u32]>, Option<&'a str>);
    let cases: [Case; 8] = [
        (
            install("2.11.0+cu130", Some("13.0"), true),
            Some(&new_driver),
            None,
        ),
        // Exactly the minimum passes.
        (
            install("2.11.0+cu130", Some("13.0"), true),
            Some(&[580, 65, 6]),
            None,
        ),
        (
            install("2.11.0+cu126", Some("12.6"), true),
            Some(&old_driver),
            None,
        ),
        (
            install("2.11.0+cu130", Some("13.0"), true),
            Some(&old_driver),
            Some("needs NVIDIA driver >= 580.65.06; this node's driver is 570.86.15"),
        ),
        (
            install("2.10.0+cu128", Some("12.8"), true),
            Some(&new_driver),
            Some("is PyTorch 2.10.0+cu128, but this trainer is built for LibTorch 2.11"),
        ),
        (
            install("2.11.0+cpu", None, false),
            Some(&new_driver),
            Some("a CPU-only build"),
        ),
        (
            install("2.11.0+cu130", Some("13.0"), false),
            Some(&new_driver),
            Some("holds no libtorch_cuda.so"),
        ),
        (
            install("2.11.0+cu130", Some("13.0"), true),
            None,
            Some("no NVIDIA driver answers here"),
        ),
    ];
    for (install, driver, expected) in cases {
        let result = check(&install, driver);
        match expected {
            None => assert_eq!(result, Ok(()), "{install:?}"),
            Some(text) => {
                let error = result.expect_err("must fail");
                assert!(error.contains(text), "{text} in {error}");
            }
        }
    }
}

/// The launcher's choice of LibTorch as one table of cases (driver, folders found,
/// what each holds): about 100 lines, one row per situation a node can be in.
#[test]
fn one_libtorch_per_process() {
    let driver = [580, 95, 5];
    let good = |folder: &str| {
        (
            PathBuf::from(folder),
            Some(Ok(Install {
                lib: PathBuf::from(folder),
                ..install("2.11.0+cu130", Some("13.0"), true)
            })),
        )
    };
    let cpu_only = (
        PathBuf::from("/cpu/lib"),
        Some(Ok(Install {
            lib: PathBuf::from("/cpu/lib"),
            ..install("2.11.0+cpu", None, false)
        })),
    );
    let absent = (PathBuf::from("/none"), None);
    let unreadable = (
        PathBuf::from("/broken/lib"),
        Some(Err("/broken/version.py: no such file".to_owned())),
    );
    let gpu = Some("CUDA_VISIBLE_DEVICES=0");
    let use_lib = |folder: &str| Launch {
        lib: Some(PathBuf::from(folder)),
        unusable: None,
    };
    // A GPU node: the first folder that passes, every library from it.
    assert_eq!(
        choose(
            gpu,
            &[absent.clone(), good("/node/lib")],
            Some(&driver),
            true
        ),
        Ok(use_lib("/node/lib"))
    );
    assert_eq!(
        choose(
            gpu,
            &[cpu_only.clone(), good("/node/lib")],
            Some(&driver),
            true
        ),
        Ok(use_lib("/node/lib"))
    );
    // No folder passes: the build's LibTorch, with the reasons for the worker.
    let launch = choose(
        gpu,
        &[cpu_only.clone(), unreadable.clone()],
        Some(&driver),
        true,
    )
    .expect("the build's LibTorch");
    assert_eq!(launch.lib, None);
    let why = launch.unusable.expect("reasons");
    assert!(
        why.contains("CPU-only build") && why.contains("no such file"),
        "{why}"
    );
    // A driver too old for the CUDA build: not used, and the worker says why.
    let launch = choose(gpu, &[good("/node/lib")], Some(&[535, 0]), true).expect("launch");
    assert_eq!(launch.lib, None);
    assert!(
        launch
            .unusable
            .expect("reason")
            .contains("needs NVIDIA driver")
    );
    // Nothing found at all: the worker's own "not installed" error applies.
    assert_eq!(
        choose(gpu, std::slice::from_ref(&absent), Some(&driver), true),
        Ok(Launch {
            lib: None,
            unusable: None
        })
    );
    // No GPU shown: the build's LibTorch, even with a CUDA install present.
    assert_eq!(
        choose(None, &[good("/node/lib")], None, true),
        Ok(Launch {
            lib: None,
            unusable: None
        })
    );
    // A copied build on a machine without its LibTorch: any 2.11 stands in.
    assert_eq!(
        choose(None, std::slice::from_ref(&cpu_only), None, false),
        Ok(use_lib("/cpu/lib"))
    );
    let launch =
        choose(gpu, std::slice::from_ref(&cpu_only), Some(&driver), false).expect("launch");
    assert_eq!(launch.lib, Some(PathBuf::from("/cpu/lib")));
    assert!(launch.unusable.is_some());
    let error = choose(None, &[absent, unreadable], None, false).expect_err("nothing to run on");
    assert!(
        error.contains("LibTorch 2.11 is not on this machine") && error.contains("/broken/lib"),
        "{error}"
    );
}

#[test]
fn the_chosen_folder_goes_first_on_the_library_path() {
    let lib = Path::new("/node/torch/lib");
    assert_eq!(library_path(lib, None), "/node/torch/lib");
    assert_eq!(library_path(lib, Some("")), "/node/torch/lib");
    assert_eq!(
        library_path(lib, Some("/usr/local/cuda/lib64")),
        "/node/torch/lib:/usr/local/cuda/lib64"
    );
}
