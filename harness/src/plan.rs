//! The plan table: one row per job with the values that vary, and totals.

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
        row.extend(
            job.values
                .iter()
                .map(|(_, value)| value.to_string().trim_matches('"').to_owned()),
        );
        let job_tokens = job.config.planned_tokens();
        let job_flops = job.config.planned_flops().unwrap_or(f64::NAN);
        row.push(TokenCount(job_tokens).to_string());
        row.push(format!("{job_flops:.2e}"));
        tokens += job_tokens;
        flops += job_flops;
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "{} jobs, {} training tokens, {:.3e} FLOPs, {:.1} H100 GPU-hours at {:.0}% MFU\n",
        sweep.jobs.len(),
        TokenCount(tokens),
        flops,
        flops / (H100_BF16_FLOPS * mfu) / 3600.0,
        mfu * 100.0
    ));
    if let Some(rate) = tokens_per_s {
        out.push_str(&format!(
            "estimated {:.1} hours at {rate:.0} tokens/s\n",
            tokens as f64 / rate / 3600.0
        ));
    }
    out
}

pub fn csv(sweep: &Sweep) -> String {
    let mut out = format!("id,{},tokens,flops\n", sweep.axes.join(","));
    for job in &sweep.jobs {
        let values: Vec<String> = job
            .values
            .iter()
            .map(|(_, value)| quote(&value.to_string()))
            .collect();
        let flops = job.config.planned_flops().unwrap_or(f64::NAN);
        out.push_str(&format!(
            "{},{},{},{flops:e}\n",
            job.id,
            values.join(","),
            job.config.planned_tokens()
        ));
    }
    out
}

fn quote(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
