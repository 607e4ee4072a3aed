//! The plan table: one row per job with the values that vary, and totals.

use crate::target::plain;
use jobspec::{Sweep, TokenCount};

/// Peak dense bf16 throughput of an H100 SXM, for GPU-hour estimates.
const H100_BF16_FLOPS: f64 = 989e12;

pub fn render(sweep: &Sweep, tokens_per_s: Option<f64>, mfu: f64) -> String {
    let mut out = format!("sweep {} ({})\n", sweep.name, sweep.path.display());
    let mut header = vec!["id".to_owned()];
    header.extend(sweep.axes.iter().cloned());
    header.extend(["tokens".into(), "FLOPs".into()]);
    let mut rows = vec![header];
    let (mut tokens, mut flops) = (0u64, 0.0f64);
    for job in &sweep.jobs {
        let mut row = vec![job.id.clone()];
        row.extend(job.values.iter().map(|(_, value)| plain(value)));
        let job_tokens = job.config.planned_tokens();
        let job_flops = job.config.planned_flops().unwrap_or(f64::NAN);
        row.push(TokenCount(job_tokens).to_string());
        row.push(format!("{job_flops:.2e}"));
        tokens += job_tokens;
        flops += job_flops;
        rows.push(row);
    }
    out.push_str(&align(&rows));
    out.push_str(&summary(sweep, tokens, flops, tokens_per_s, mfu));
    out
}

fn summary(sweep: &Sweep, tokens: u64, flops: f64, tokens_per_s: Option<f64>, mfu: f64) -> String {
    let mut out = format!(
        "{} jobs, {} training tokens, {:.3e} FLOPs, {:.1} H100 GPU-hours at {:.0}% MFU\n",
        sweep.jobs.len(),
        TokenCount(tokens),
        flops,
        flops / (H100_BF16_FLOPS * mfu) / 3600.0,
        mfu * 100.0
    );
    if sweep.duplicates > 0 {
        out.push_str(&format!(
            "{} duplicate jobs dropped (same resolved config as an earlier one)\n",
            sweep.duplicates
        ));
    }
    if let Some(rate) = tokens_per_s {
        out.push_str(&format!(
            "estimated {:.1} hours at {rate:.0} tokens/s (one worker)\n",
            tokens as f64 / rate / 3600.0
        ));
    }
    out
}

/// Left-aligned columns separated by two spaces.
pub fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .map(|row| row.get(column).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `harness bench-plan`: plan a generated sweep of `jobs` jobs and report the time
/// and peak resident memory (VmHWM).
pub fn bench(jobs: usize) -> anyhow::Result<String> {
    let folder = std::env::temp_dir().join(format!("harness-bench-plan-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    let seeds: Vec<String> = (0..jobs.div_ceil(4)).map(|seed| seed.to_string()).collect();
    let text = format!(
        "name: bench\nbase:\n  model: {{ preset: 1b }}\n  data: {{ corpus: c4, tokenizer: gpt2, seq_len: 2048, unique_tokens: 1B, val_tokens: 10M }}\n  train: {{ epochs: 4, batch_size: 256, lr: 2e-4 }}\ngrid:\n  objective: [ar, dlm]\n  data.unique_tokens: [1B, 2B]\n  seed: [{}]\n",
        seeds.join(", ")
    );
    let path = folder.join("bench.yaml");
    std::fs::write(&path, text)?;
    let start = std::time::Instant::now();
    let sweep = jobspec::store::load_sweep(&path)?;
    let rendered = render(&sweep, None, 0.4);
    let csv = jobspec::store::plan_csv(&sweep);
    std::fs::write(folder.join("plan.csv"), &csv)?;
    let seconds = start.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&folder)?;
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
            Some(line.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    Ok(format!(
        "planned {} jobs in {seconds:.2}s ({:.1} us/job), table {} bytes, plan.csv {} bytes, peak memory (VmHWM) {peak}",
        sweep.jobs.len(),
        seconds * 1e6 / sweep.jobs.len().max(1) as f64,
        rendered.len(),
        csv.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sweep shipped in sweeps/ plans: valid jobs, FLOPs and GPU-hours printed.
    #[test]
    fn every_shipped_sweep_plans() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sweeps");
        let mut planned = 0;
        for entry in std::fs::read_dir(&folder).expect("sweeps/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|ext| ext != "yaml") {
                continue;
            }
            let sweep = jobspec::store::load_sweep(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let table = render(&sweep, Some(1e6), 0.4);
            assert!(table.contains("GPU-hours"), "{table}");
            assert!(
                !table.contains("NaN"),
                "{}: unknown FLOPs\n{table}",
                path.display()
            );
            planned += 1;
        }
        assert!(planned >= 5, "smoke, demo and the three study sweeps");
    }
}
