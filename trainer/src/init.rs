//! Write the job folders a sweep implies, so `trainer init sweeps/smoke.yaml` followed
//! by `trainer run <job>` works without the harness. The logic lives in
//! `jobspec::store`, shared with `harness run`.

use crate::error::Result;
use std::path::{Path, PathBuf};

/// Create `<results>/sweep.yaml`, `plan.csv` and `jobs/<id>/{job.yaml,status.json}`;
/// existing job folders (same id = same config) are left untouched. Returns the job
/// folders in grid order.
pub fn write_sweep(sweep_path: &Path, results: &Path) -> Result<Vec<PathBuf>> {
    Ok(jobspec::store::write_sweep(sweep_path, results)?)
}
