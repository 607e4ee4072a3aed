//! The PyTorch reference (`bench/reference.py`): the case as it needs it, where the
//! script is, and running it.

use crate::bench::case::BenchCase;
use crate::bench::throughput::{GRAD_CLIP, LR, WEIGHT_DECAY};
use jobspec::{DeviceSpec, DlmConfig, ModelShape, Precision, padded_vocab};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the PyTorch reference needs to rebuild a case: the resolved shape and sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferenceCase {
    pub shape: ModelShape,
    pub vocab: usize,
    pub vocab_rows: usize,
    pub objective: String,
    pub batch_size: usize,
    pub seq_len: usize,
    pub steps: usize,
    pub warmup_steps: usize,
    pub threads: usize,
    pub device: String,
    pub precision: Precision,
    pub compile: bool,
    pub lr: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub dlm_eps: f64,
}

impl ReferenceCase {
    pub fn new(case: &BenchCase, precision: Precision, compile: bool) -> Result<Self, String> {
        let shape = ModelShape::preset(&case.preset)
            .ok_or_else(|| format!("unknown preset `{}`", case.preset))?;
        let device = match case.device.parse::<DeviceSpec>()? {
            DeviceSpec::Cuda(index) => format!("cuda:{index}"),
            _ => "cpu".into(),
        };
        Ok(Self {
            shape,
            vocab: case.vocab,
            vocab_rows: padded_vocab(case.vocab),
            objective: case.objective.clone(),
            batch_size: case.batch_size,
            seq_len: case.seq_len,
            steps: case.steps,
            warmup_steps: case.warmup_steps,
            threads: case.threads,
            device,
            precision,
            compile,
            lr: LR,
            weight_decay: WEIGHT_DECAY,
            grad_clip: GRAD_CLIP,
            dlm_eps: DlmConfig::default().eps,
        })
    }
}

/// Where the PyTorch reference script is: `$CROSSOVER_REFERENCE`, `bench/reference.py`
/// under the working folder, or `reference.py` beside this executable (gpu-check).
pub fn reference_script() -> Option<PathBuf> {
    let explicit = std::env::var_os("CROSSOVER_REFERENCE").map(PathBuf::from);
    let local = PathBuf::from("bench/reference.py");
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("reference.py")));
    [explicit, Some(local), beside]
        .into_iter()
        .flatten()
        .find(|path| path.is_file())
}

/// Run the reference script: `python reference.py COMMAND ARG`, parsing its JSON.
pub fn run_reference<T: for<'de> Deserialize<'de>>(
    python: &Path,
    command: &str,
    argument: &str,
) -> Result<T, String> {
    let script = reference_script().ok_or(
        "bench/reference.py not found: run from the repository root or set CROSSOVER_REFERENCE",
    )?;
    let output = std::process::Command::new(python)
        .arg(&script)
        .arg(command)
        .arg(argument)
        .output()
        .map_err(|error| {
            format!(
                "cannot start {} ({error}); `just setup-torch` makes a PyTorch 2.11 virtual environment",
                python.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "{} {} {command} failed:\n{}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|error| {
        format!(
            "{} printed no result ({error}): {}",
            script.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
